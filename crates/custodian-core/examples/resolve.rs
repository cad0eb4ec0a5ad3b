//! Embedding Custodian in a Rust service: a data-transfer worker resolves the storage
//! credentials it needs at run time with `Custodian::resolve`.
//!
//! The composition here uses in-memory ports (`custodian-testkit`) so the example runs on
//! its own; a real service wires the SQL repositories and the local or SSM credential
//! store the same way, as `Arc<dyn Port>`s. The vault provider is a stand-in for Doppler.
//!
//! Run it with `cargo run -p custodian-core --example resolve`. It prints field names and
//! versions, never a credential value.

#![allow(clippy::print_stdout, reason = "an example reports to its terminal")]

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use custodian_core::{Custodian, NewTeamInput, NewVirtualAccountInput, Settings};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, CreateSecretInput, Credentials, DisplayName, Email, Outcome,
    RawFieldMapping, RequestContext, ResourceType, Subject, UpdateSecretInput, User, UserId, VaultConnectionInput,
    VaultReference, VaultType,
};
use custodian_ports::{AuditFilter, IdGenerator, Page, UuidV7Ids, VaultAccess, VaultError, VaultProvider};
use custodian_testkit::memory::MemoryRepos;
use secrecy::{ExposeSecret, SecretString};

/// A stand-in for the team's Doppler project: a fixed set of secrets by name.
struct FakeDoppler(HashMap<&'static str, &'static str>);

#[async_trait]
impl VaultProvider for FakeDoppler {
    fn vault_type(&self) -> VaultType {
        VaultType::Doppler
    }

    async fn verify(&self, _access: &VaultAccess) -> Result<(), VaultError> {
        Ok(())
    }

    async fn fetch(
        &self,
        _access: &VaultAccess,
        references: &[VaultReference],
    ) -> Result<Vec<SecretString>, VaultError> {
        references
            .iter()
            .map(|r| {
                self.0
                    .get(r.as_str())
                    .map(|v| SecretString::from(*v))
                    .ok_or_else(|| VaultError::ReferenceNotFound {
                        provider: VaultType::Doppler,
                        reference: r.as_str().to_owned(),
                    })
            })
            .collect()
    }
}

fn describe(credentials: &Credentials) -> String {
    format!(
        "{} with fields {:?}",
        credentials.auth_method(),
        credentials.field_names()
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // 1. Composition root: every port as `Arc<dyn Port>`.
    let repos = MemoryRepos::new();
    let set = repos.repositories();
    let doppler = FakeDoppler(HashMap::from([
        ("ARCHIVE_KEY_ID", "AKIAARCHIVEEXAMPLE"),
        ("ARCHIVE_SECRET", "archive-secret-example"),
    ]));
    let ports = repos.ports().with_vault_provider(Arc::new(doppler));
    let custodian = Custodian::new(ports, Settings::default());
    let ctx = RequestContext::default();

    // 2. What `custodian bootstrap` does once: a tenant admin.
    let admin = User {
        id: UserId::from_uuid(UuidV7Ids.new_id()),
        email: Email::parse_at("email", "admin@localhost").map_err(|e| e.to_string())?,
        display_name: DisplayName::parse_at("display_name", "Admin").map_err(|e| e.to_string())?,
        tenant_admin: true,
        created_at: Utc::now(),
    };
    let bootstrap = AuditEvent {
        id: AuditEventId::from_uuid(UuidV7Ids.new_id()),
        occurred_at: Utc::now(),
        team_id: None,
        actor_id: None,
        actor_kind: None,
        action: AuditAction::Create,
        resource_type: ResourceType::User,
        resource_id: Some(admin.id.as_uuid()),
        resource_name: Some(admin.email.as_str().to_owned()),
        outcome: Outcome::Success,
        detail: Some("bootstrap".into()),
        context: ctx.clone(),
    };
    set.users.create(&admin, None, &bootstrap).await?;
    let admin = Subject::User {
        id: admin.id,
        email: admin.email,
        display_name: admin.display_name,
        tenant_admin: true,
    };

    // 3. The team sets up a managed secret, an external one, and the worker's account.
    let team = custodian
        .create_team(
            &admin,
            &ctx,
            NewTeamInput {
                name: Some("data-platform".into()),
                ..NewTeamInput::default()
            },
        )
        .await?;
    let managed = custodian
        .create_secret(
            &admin,
            &ctx,
            team.id,
            CreateSecretInput {
                name: Some("landing-bucket".into()),
                secret_type: Some("s3".into()),
                auth_method: Some("s3_access_key".into()),
                credentials: Some(vec![
                    ("access_key_id".into(), SecretString::from("AKIALANDINGEXAMPLE")),
                    ("secret_access_key".into(), SecretString::from("landing-secret-v1")),
                ]),
                ..CreateSecretInput::default()
            },
        )
        .await?;
    let connection = custodian
        .create_vault_connection(
            &admin,
            &ctx,
            team.id,
            VaultConnectionInput {
                name: Some("doppler-prd".into()),
                vault_type: Some("doppler".into()),
                access_token: Some(SecretString::from("dp.st.prd.example-service-token")),
                project: Some("storage".into()),
                config: Some("prd".into()),
                ..VaultConnectionInput::default()
            },
        )
        .await?;
    let external = custodian
        .create_secret(
            &admin,
            &ctx,
            team.id,
            CreateSecretInput {
                name: Some("archive-bucket".into()),
                secret_type: Some("s3".into()),
                auth_method: Some("s3_access_key".into()),
                vault_connection_id: Some(connection.id.to_string()),
                field_mappings: Some(vec![
                    RawFieldMapping {
                        field_name: "access_key_id".into(),
                        reference: "ARCHIVE_KEY_ID".into(),
                    },
                    RawFieldMapping {
                        field_name: "secret_access_key".into(),
                        reference: "ARCHIVE_SECRET".into(),
                    },
                ]),
                ..CreateSecretInput::default()
            },
        )
        .await?;
    let (account, issued) = custodian
        .create_virtual_account(
            &admin,
            &ctx,
            team.id,
            NewVirtualAccountInput {
                name: Some("transfer-worker".into()),
                role: Some("operator".into()),
                expires_at: Some(Utc::now() + Duration::days(90)),
            },
        )
        .await?;
    println!(
        "team {} ({}): secrets {:?} and {:?}, account {:?}",
        team.name,
        team.id,
        managed.name.as_str(),
        external.name.as_str(),
        account.name.as_str()
    );

    // 4. The worker: authenticate with its token, then resolve what it needs.
    let worker = custodian.authenticate(&issued.token).await?;
    let landing = custodian.resolve(&worker, team.id, managed.id).await?;
    println!("resolved {:?}: {}", managed.name.as_str(), describe(&landing));
    let archive = custodian.resolve(&worker, team.id, external.id).await?;
    println!(
        "resolved {:?} through {}: {}",
        external.name.as_str(),
        connection.vault_type(),
        describe(&archive)
    );

    // 5. An admin rotates the managed credentials; the next resolution sees version 2.
    let rotated = custodian
        .update_secret(
            &admin,
            &ctx,
            team.id,
            managed.id,
            UpdateSecretInput {
                credentials: Some(vec![
                    ("access_key_id".into(), SecretString::from("AKIALANDINGEXAMPLE")),
                    ("secret_access_key".into(), SecretString::from("landing-secret-v2")),
                ]),
                ..UpdateSecretInput::default()
            },
        )
        .await?;
    let after = custodian.resolve(&worker, team.id, managed.id).await?;
    let secret_field = after
        .get(custodian_domain::CredentialField::SecretAccessKey)
        .ok_or("the rotated credentials lack secret_access_key")?;
    assert_eq!(secret_field.expose_secret(), "landing-secret-v2");
    println!(
        "rotated {:?} to credentials version {}; the worker now resolves the new value",
        managed.name.as_str(),
        rotated.credentials_version
    );

    // 6. Everything above is in the team's audit trail, without a single value.
    let trail = custodian
        .list_audit_events(&admin, team.id, &AuditFilter::default(), Page::default())
        .await?;
    let resolutions = trail.items.iter().filter(|e| e.action == AuditAction::Resolve).count();
    println!("audit trail: {} events, {resolutions} resolutions", trail.total);
    Ok(())
}
