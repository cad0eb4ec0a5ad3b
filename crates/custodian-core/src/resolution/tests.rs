//! Resolution and verification over mocked ports.

use custodian_domain::{AuthMethod, Role, VaultType};
use custodian_ports::{CredentialKind, MockVaultProvider, VaultError};
use secrecy::ExposeSecret;

use super::*;
use crate::Requirement;
use crate::test_support::*;

const KEY_ID: &str = "AKIAEXAMPLEKEYID";
const SECRET: &str = "wJalrXUtnFEMI-very-secret-value";

fn ctx() -> RequestContext {
    RequestContext::default()
}

fn payload_of(key_id: &str, secret: &str) -> String {
    Credentials::parse(AuthMethod::S3AccessKey, s3_credentials(key_id, secret), now())
        .unwrap()
        .to_payload()
        .expose_secret()
        .to_owned()
}

fn doppler_provider() -> MockVaultProvider {
    let mut provider = MockVaultProvider::new();
    provider.expect_vault_type().return_const(VaultType::Doppler);
    provider
}

fn operator_mocks(secret: StorageSecret) -> Mocks {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Operator).secret(secret);
    mocks
}

fn expect_audit(mocks: &mut Mocks, action: AuditAction, outcome: Outcome, resource_type: ResourceType) {
    mocks
        .audit
        .expect_record()
        .withf(move |event| {
            event.action == action
                && event.outcome == outcome
                && event.resource_type == resource_type
                && event.team_id == Some(team_id())
                && !format!("{event:?}").contains("secret-value")
        })
        .times(1)
        .returning(|_| Ok(()));
}

#[tokio::test]
async fn verify_loads_and_checks_managed_credentials() {
    let mut mocks = operator_mocks(managed_secret(3));
    let payload = payload_of(KEY_ID, SECRET);
    mocks
        .store
        .expect_get()
        .withf(|key, version| key.record_id == secret_id().as_uuid() && *version == 3)
        .returning(move |_, _| Ok(SecretString::from(payload.clone())));
    expect_audit(
        &mut mocks,
        AuditAction::Verify,
        Outcome::Success,
        ResourceType::StorageSecret,
    );
    let verification = mocks
        .build()
        .verify_secret(&alice(), &ctx(), team_id(), secret_id())
        .await
        .unwrap();
    assert!(verification.verified);
    assert_eq!(verification.fields, vec!["access_key_id", "secret_access_key"]);
    assert_eq!(verification.checked_at, now());
}

#[tokio::test]
async fn verify_reports_stored_credentials_that_fail_the_schema() {
    let mut mocks = operator_mocks(managed_secret(1));
    mocks
        .store
        .expect_get()
        .returning(|_, _| Ok(SecretString::from(r#"{"access_key_id":"AKIA"}"#)));
    expect_audit(
        &mut mocks,
        AuditAction::Verify,
        Outcome::Failure,
        ResourceType::StorageSecret,
    );
    let verification = mocks
        .build()
        .verify_secret(&alice(), &ctx(), team_id(), secret_id())
        .await
        .unwrap();
    assert!(!verification.verified);
    assert_eq!(verification.error.unwrap().code, "credentials_invalid");
}

#[tokio::test]
async fn a_viewer_cannot_verify() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Viewer);
    assert_eq!(
        mocks
            .build()
            .verify_secret(&alice(), &ctx(), team_id(), secret_id())
            .await,
        Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Operator)
        })
    );
}

fn external_mocks(provider: MockVaultProvider) -> Mocks {
    let mut mocks = operator_mocks(external_secret());
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    mocks
        .store
        .expect_get()
        .withf(|key, version| {
            key.kind == CredentialKind::VaultConnection && key.record_id == vault_id().as_uuid() && *version == 3
        })
        .returning(|_, _| Ok(SecretString::from("dp.st.prd.token-secret-value")));
    mocks.vaults.push(provider);
    mocks
}

#[tokio::test]
async fn verify_fetches_every_mapped_reference_of_an_external_secret() {
    let mut provider = doppler_provider();
    provider
        .expect_fetch()
        .withf(|access, references, freshness| {
            *freshness == custodian_ports::Freshness::Fresh
                && access.connection_id == vault_id()
                && access.secret.expose().expose_secret() == "dp.st.prd.token-secret-value"
                && references
                    .iter()
                    .map(VaultReference::as_str)
                    .eq(["S3_KEY_ID", "S3_SECRET"])
        })
        .times(1)
        .returning(|_, _, _| {
            Err(VaultError::ReferenceNotFound {
                provider: VaultType::Doppler,
                reference: "S3_SECRET".into(),
            })
        });
    let mut mocks = external_mocks(provider);
    expect_audit(
        &mut mocks,
        AuditAction::Verify,
        Outcome::Failure,
        ResourceType::StorageSecret,
    );
    let verification = mocks
        .build()
        .verify_secret(&alice(), &ctx(), team_id(), secret_id())
        .await
        .unwrap();
    assert!(!verification.verified);
    let error = verification.error.unwrap();
    assert_eq!(error.code, "vault_reference_not_found");
    assert!(error.message.contains("doppler"), "{}", error.message);
}

#[tokio::test]
async fn resolve_builds_external_credentials_from_the_mapped_fields() {
    let mut provider = doppler_provider();
    provider.expect_fetch().times(1).returning(|_, references, _| {
        Ok(references
            .iter()
            .map(|r| SecretString::from(format!("value-of-{}", r.as_str())))
            .collect())
    });
    let mut mocks = external_mocks(provider);
    expect_audit(
        &mut mocks,
        AuditAction::Resolve,
        Outcome::Success,
        ResourceType::StorageSecret,
    );
    let credentials = mocks.build().resolve(&alice(), team_id(), secret_id()).await.unwrap();
    let get = |f| credentials.get(f).unwrap().expose_secret().to_owned();
    assert_eq!(
        get(custodian_domain::CredentialField::AccessKeyId),
        "value-of-S3_KEY_ID"
    );
    assert_eq!(
        get(custodian_domain::CredentialField::SecretAccessKey),
        "value-of-S3_SECRET"
    );
}

#[tokio::test]
async fn resolve_returns_managed_credentials_and_records_it() {
    let mut mocks = operator_mocks(managed_secret(2));
    let payload = payload_of(KEY_ID, SECRET);
    mocks
        .store
        .expect_get()
        .withf(|_, version| *version == 2)
        .returning(move |_, _| Ok(SecretString::from(payload.clone())));
    expect_audit(
        &mut mocks,
        AuditAction::Resolve,
        Outcome::Success,
        ResourceType::StorageSecret,
    );
    let credentials = mocks
        .build()
        .resolve(&account(team_id(), Role::Operator), team_id(), secret_id())
        .await
        .unwrap();
    assert_eq!(credentials.auth_method(), AuthMethod::S3AccessKey);
    assert_eq!(
        credentials
            .get(custodian_domain::CredentialField::SecretAccessKey)
            .unwrap()
            .expose_secret(),
        SECRET
    );
    assert!(!format!("{credentials:?}").contains(SECRET));
}

#[tokio::test]
async fn a_vault_failure_fails_the_resolution_and_is_recorded() {
    let mut provider = doppler_provider();
    provider.expect_fetch().returning(|_, _, _| {
        Err(VaultError::RateLimited {
            provider: VaultType::Doppler,
            retry_after: None,
        })
    });
    let mut mocks = external_mocks(provider);
    expect_audit(
        &mut mocks,
        AuditAction::Resolve,
        Outcome::Failure,
        ResourceType::StorageSecret,
    );
    let result = mocks.build().resolve(&alice(), team_id(), secret_id()).await;
    assert_eq!(result.unwrap_err().code(), "vault_rate_limited");
}

#[tokio::test]
async fn a_viewer_is_denied_resolution_and_the_attempt_is_recorded() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Viewer);
    expect_audit(
        &mut mocks,
        AuditAction::Resolve,
        Outcome::Denied,
        ResourceType::StorageSecret,
    );
    assert_eq!(
        mocks.build().resolve(&alice(), team_id(), secret_id()).await.err(),
        Some(CoreError::Forbidden {
            needed: Requirement::Role(Role::Operator)
        })
    );
}

#[tokio::test]
async fn another_teams_account_cannot_resolve_and_learns_nothing() {
    let result = Mocks::new()
        .build()
        .resolve(&account(other_team_id(), Role::Admin), team_id(), secret_id())
        .await;
    assert_eq!(result.err(), Some(CoreError::NotFound));
}

#[tokio::test]
async fn a_resolution_that_cannot_be_audited_is_not_returned() {
    let mut mocks = operator_mocks(managed_secret(1));
    let payload = payload_of(KEY_ID, SECRET);
    mocks
        .store
        .expect_get()
        .returning(move |_, _| Ok(SecretString::from(payload.clone())));
    mocks
        .audit
        .expect_record()
        .returning(|_| Err(RepoError::Unavailable("down".into())));
    let result = mocks.build().resolve(&alice(), team_id(), secret_id()).await;
    assert!(matches!(result, Err(CoreError::Unavailable { .. })));
}

/// Resolutions share the cache: three resolves make one provider call, which may be
/// revalidated; a verification asks the provider afresh.
#[tokio::test]
async fn resolves_go_through_the_cache_and_a_verification_does_not() {
    let mut provider = doppler_provider();
    let answer = |references: &[VaultReference]| {
        Ok(references
            .iter()
            .map(|r| SecretString::from(format!("value-of-{}", r.as_str())))
            .collect())
    };
    provider
        .expect_fetch()
        .withf(|_, _, freshness| *freshness == custodian_ports::Freshness::MayRevalidate)
        .times(1)
        .returning(move |_, references, _| answer(references));
    provider
        .expect_fetch()
        .withf(|_, _, freshness| *freshness == custodian_ports::Freshness::Fresh)
        .times(1)
        .returning(move |_, references, _| answer(references));
    let mut mocks = external_mocks(provider);
    mocks.audit.expect_record().times(4).returning(|_| Ok(()));
    let custodian = mocks.build();
    for _ in 0..3 {
        custodian.resolve(&alice(), team_id(), secret_id()).await.unwrap();
    }
    let verification = custodian
        .verify_secret(&alice(), &ctx(), team_id(), secret_id())
        .await
        .unwrap();
    assert!(verification.verified);
}
