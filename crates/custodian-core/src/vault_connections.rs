//! Vault connections: a team's link to its external vault. Their secret setting (access
//! token or client secret) lives in the credential store with the same ordering as a
//! managed secret's credentials (SPEC §8).

use custodian_domain::{
    AuditAction, AuditEvent, Description, LimitKind, Name, NewVaultConnection, Outcome, RequestContext, ResourceType,
    Subject, TeamId, ValidationErrors, VaultConnection, VaultConnectionId, VaultConnectionInput, VaultRotation,
    VaultSettings,
};
use custodian_ports::{CleanupTask, Page, Paged};
use secrecy::SecretString;

use crate::authz::Action;
use crate::credential_writes::connection_key;
use crate::resolution::{Verification, VerificationFailure};
use crate::{CoreError, Custodian};

/// New secret settings for a vault connection, as they arrive (`POST …/{id}/rotate`).
#[derive(Debug, Default)]
pub struct VaultRotationInput {
    pub access_token: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
}

impl Custodian {
    fn connection_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        connection: &VaultConnection,
        outcome: Outcome,
    ) -> AuditEvent {
        self.audit_event(
            subject,
            ctx,
            Some(connection.team_id),
            action,
            (
                ResourceType::VaultConnection,
                Some(connection.id.as_uuid()),
                Some(connection.name.as_str()),
            ),
            outcome,
        )
    }

    /// Create a vault connection (admin). Its secret is stored as version 1 first, then the
    /// row is committed with the team's vault-connection limit; when the commit fails the
    /// stored secret is removed again.
    pub async fn create_vault_connection(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        input: VaultConnectionInput,
    ) -> Result<VaultConnection, CoreError> {
        self.authorize(subject, team, Action::WriteVaultConnections).await?;
        let tier = self.ports.teams.get(team).await?.tier;
        let new = NewVaultConnection::parse(input)?;
        let now = self.now();
        let connection = VaultConnection {
            id: VaultConnectionId::from_uuid(self.ports.ids.new_id()),
            team_id: team,
            name: new.name,
            description: new.description,
            settings: new.settings,
            secret_version: 1,
            last_verified_at: None,
            created_at: now,
            created_by: subject.id(),
            updated_at: now,
            updated_by: subject.id(),
        };
        let audit = self.connection_event(subject, ctx, AuditAction::Create, &connection, Outcome::Success);
        let limit = self.limit(tier, LimitKind::VaultConnections);
        let commit = || self.ports.vault_connections.create(&connection, limit, &audit);
        self.store_then_commit(
            &connection_key(&connection),
            connection.secret_version,
            new.secret.expose(),
            commit,
        )
        .await?;
        Ok(connection)
    }

    /// A vault connection and the number of secrets that use it (viewer).
    pub async fn get_vault_connection(
        &self,
        subject: &Subject,
        team: TeamId,
        id: VaultConnectionId,
    ) -> Result<(VaultConnection, u64), CoreError> {
        self.authorize(subject, team, Action::ReadVaultConnections).await?;
        let connection = self.ports.vault_connections.get(team, id).await?;
        let count = self.ports.vault_connections.secret_count(team, id).await?;
        Ok((connection, count))
    }

    /// The team's vault connections (viewer).
    pub async fn list_vault_connections(
        &self,
        subject: &Subject,
        team: TeamId,
        page: Page,
    ) -> Result<Paged<VaultConnection>, CoreError> {
        self.authorize(subject, team, Action::ReadVaultConnections).await?;
        Ok(self.ports.vault_connections.list(team, page).await?)
    }

    /// Change a vault connection's name or description (admin); `description: Some(None)`
    /// clears it.
    pub async fn update_vault_connection(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: VaultConnectionId,
        name: Option<String>,
        description: Option<Option<String>>,
    ) -> Result<VaultConnection, CoreError> {
        self.authorize(subject, team, Action::WriteVaultConnections).await?;
        let mut errors = ValidationErrors::new();
        let name = name.and_then(|n| errors.check(Name::parse_at("name", n)));
        let description = match description {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => errors.check(Description::parse_at("description", d)).map(Some),
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let current = self.ports.vault_connections.get(team, id).await?;
        let mut next = current.clone();
        if let Some(name) = name {
            next.name = name;
        }
        if let Some(description) = description {
            next.description = description;
        }
        next.updated_at = self.now();
        next.updated_by = subject.id();
        let audit = self.connection_event(subject, ctx, AuditAction::Update, &next, Outcome::Success);
        self.ports
            .vault_connections
            .update(&next, current.secret_version, &audit)
            .await?;
        Ok(next)
    }

    /// Give a vault connection new secret settings (admin): a new `access_token`
    /// (1Password, Doppler) or a new `client_id` + `client_secret` (Infisical). Version n+1
    /// is stored first, the row is committed only while it still points at version n, then
    /// older versions are pruned; a failed commit removes version n+1 again.
    pub async fn rotate_vault_connection(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: VaultConnectionId,
        input: VaultRotationInput,
    ) -> Result<VaultConnection, CoreError> {
        self.authorize(subject, team, Action::WriteVaultConnections).await?;
        let current = self.ports.vault_connections.get(team, id).await?;
        let rotation = VaultRotation::parse(
            current.vault_type(),
            input.access_token,
            input.client_id,
            input.client_secret,
        )?;
        let expected = current.secret_version;
        let mut next = current;
        if let (
            Some(new_id),
            VaultSettings::Infisical {
                client_id: current_id, ..
            },
        ) = (rotation.client_id, &mut next.settings)
        {
            *current_id = new_id;
        }
        next.last_verified_at = None;
        next.updated_at = self.now();
        next.updated_by = subject.id();
        let key = connection_key(&next);
        next.secret_version = self
            .store_next_version(&key, expected, rotation.secret.expose())
            .await?;
        let audit = self.connection_event(subject, ctx, AuditAction::Rotate, &next, Outcome::Success);
        self.commit_or_discard(
            &key,
            next.secret_version,
            self.ports.vault_connections.update(&next, expected, &audit),
        )
        .await?;
        self.clean_up_after_commit(&key, CleanupTask::PruneBelow(next.secret_version))
            .await;
        Ok(next)
    }

    /// Authenticate against the connection's vault now (operator). Success sets
    /// `last_verified_at` (written with its audit event); a refusal or an unreachable
    /// provider is part of the answer and recorded as a failed verification.
    pub async fn verify_vault_connection(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: VaultConnectionId,
    ) -> Result<Verification, CoreError> {
        self.authorize(subject, team, Action::VerifyVaultConnection).await?;
        let connection = self.ports.vault_connections.get(team, id).await?;
        let access = self.vault_access(&connection).await?;
        let checked_at = self.now();
        let verified = match self.vault_provider(connection.vault_type()) {
            Ok(provider) => provider.verify(&access).await,
            Err(missing) => Err(missing),
        };
        match verified {
            Ok(()) => {
                let mut next = connection.clone();
                next.last_verified_at = Some(checked_at);
                let audit = self.connection_event(subject, ctx, AuditAction::Verify, &next, Outcome::Success);
                self.ports
                    .vault_connections
                    .update(&next, connection.secret_version, &audit)
                    .await?;
                Ok(Verification {
                    verified: true,
                    checked_at,
                    fields: Vec::new(),
                    error: None,
                })
            }
            Err(vault_error) => {
                let error = CoreError::from(vault_error);
                let mut event = self.connection_event(subject, ctx, AuditAction::Verify, &connection, Outcome::Failure);
                event.detail = Some(error.code().to_owned());
                self.record(&event).await?;
                Ok(Verification {
                    verified: false,
                    checked_at,
                    fields: Vec::new(),
                    error: Some(VerificationFailure {
                        code: error.code(),
                        message: error.to_string(),
                    }),
                })
            }
        }
    }

    /// Delete a vault connection (admin). `Conflict(VaultConnectionInUse)` while secrets use
    /// it. The row goes first; removing its stored secret afterwards is best effort.
    pub async fn delete_vault_connection(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: VaultConnectionId,
    ) -> Result<(), CoreError> {
        self.authorize(subject, team, Action::WriteVaultConnections).await?;
        let current = self.ports.vault_connections.get(team, id).await?;
        let audit = self.connection_event(subject, ctx, AuditAction::Delete, &current, Outcome::Success);
        let deleted = self.ports.vault_connections.delete(team, id, &audit).await?;
        let key = connection_key(&deleted);
        self.clean_up_after_commit(&key, CleanupTask::DeleteAll).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use custodian_domain::{Role, Tier, VaultType};
    use custodian_ports::{ConflictKind, CredentialKind, MockVaultProvider, RepoError, StoreError, VaultError};
    use mockall::Sequence;
    use secrecy::ExposeSecret;

    use super::*;
    use crate::Requirement;
    use crate::test_support::*;

    const TOKEN: &str = "dp.st.prd.a-very-secret-token";

    fn ctx() -> RequestContext {
        RequestContext::default()
    }

    fn doppler_input() -> VaultConnectionInput {
        VaultConnectionInput {
            name: Some("doppler".into()),
            vault_type: Some("doppler".into()),
            access_token: Some(SecretString::from(TOKEN)),
            project: Some("backend".into()),
            config: Some("prd".into()),
            ..VaultConnectionInput::default()
        }
    }

    fn admin(tier: Tier) -> Mocks {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin).team(team(tier));
        mocks
    }

    #[tokio::test]
    async fn a_connections_secret_is_stored_then_the_row_committed_with_the_limit() {
        let mut mocks = admin(Tier::Free);
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .withf(|key, version, value| {
                key.kind == CredentialKind::VaultConnection && *version == 1 && value.expose_secret() == TOKEN
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .vault_connections
            .expect_create()
            .withf(|connection, limit, audit| {
                connection.vault_type() == VaultType::Doppler
                    && *limit == Some(1)
                    && audit.resource_type == ResourceType::VaultConnection
                    && !format!("{connection:?}{audit:?}").contains("very-secret")
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| {
                Err(RepoError::LimitExceeded {
                    kind: LimitKind::VaultConnections,
                    limit: 1,
                })
            });
        mocks
            .store
            .expect_delete_version()
            .withf(|key, version| key.kind == CredentialKind::VaultConnection && *version == 1)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        let result = mocks
            .build()
            .create_vault_connection(&alice(), &ctx(), team_id(), doppler_input())
            .await;
        assert_eq!(
            result,
            Err(CoreError::LimitExceeded {
                kind: LimitKind::VaultConnections,
                limit: 1
            })
        );
    }

    #[tokio::test]
    async fn an_operator_cannot_create_a_connection() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Operator);
        let result = mocks
            .build()
            .create_vault_connection(&alice(), &ctx(), team_id(), doppler_input())
            .await;
        assert_eq!(
            result,
            Err(CoreError::Forbidden {
                needed: Requirement::Role(Role::Admin)
            })
        );
    }

    #[tokio::test]
    async fn a_rotation_stores_n_plus_1_and_commits_against_n() {
        let mut mocks = admin(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .withf(|_, version, value| *version == 4 && value.expose_secret() == "dp.st.prd.rotated-token")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .vault_connections
            .expect_update()
            .withf(|connection, expected, audit| {
                connection.secret_version == 4 && *expected == 3 && audit.action == AuditAction::Rotate
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::Stale)));
        mocks
            .store
            .expect_delete_version()
            .withf(|_, version| *version == 4)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        let result = mocks
            .build()
            .rotate_vault_connection(
                &alice(),
                &ctx(),
                team_id(),
                vault_id(),
                VaultRotationInput {
                    access_token: Some(SecretString::from("dp.st.prd.rotated-token")),
                    ..VaultRotationInput::default()
                },
            )
            .await;
        assert_eq!(result, Err(CoreError::Conflict(ConflictKind::Stale)));
    }

    #[tokio::test]
    async fn a_rotation_with_the_wrong_fields_stores_nothing() {
        let mut mocks = admin(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        let result = mocks
            .build()
            .rotate_vault_connection(
                &alice(),
                &ctx(),
                team_id(),
                vault_id(),
                VaultRotationInput {
                    client_id: Some("id".into()),
                    client_secret: Some(SecretString::from("s")),
                    ..VaultRotationInput::default()
                },
            )
            .await;
        assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["access_token"])));
    }

    fn verify_mocks(provider: MockVaultProvider) -> Mocks {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Operator);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        mocks
            .store
            .expect_get()
            .withf(|key, version| key.kind == CredentialKind::VaultConnection && *version == 3)
            .returning(|_, _| Ok(SecretString::from(TOKEN)));
        mocks.vaults.push(provider);
        mocks
    }

    fn provider(result: Result<(), VaultError>) -> MockVaultProvider {
        let mut provider = MockVaultProvider::new();
        provider.expect_vault_type().return_const(VaultType::Doppler);
        provider
            .expect_verify()
            .withf(|access| access.secret.expose().expose_secret() == TOKEN)
            .times(1)
            .returning(move |_| result.clone());
        provider
    }

    #[tokio::test]
    async fn a_successful_verification_sets_last_verified_at() {
        let mut mocks = verify_mocks(provider(Ok(())));
        mocks
            .vault_connections
            .expect_update()
            .withf(|connection, expected, audit| {
                connection.last_verified_at == Some(now())
                    && *expected == 3
                    && audit.action == AuditAction::Verify
                    && audit.outcome == Outcome::Success
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let verification = mocks
            .build()
            .verify_vault_connection(&alice(), &ctx(), team_id(), vault_id())
            .await
            .unwrap();
        assert!(verification.verified);
    }

    #[tokio::test]
    async fn a_refused_verification_is_answered_and_recorded() {
        let mut mocks = verify_mocks(provider(Err(VaultError::AuthFailed {
            provider: VaultType::Doppler,
        })));
        mocks
            .audit
            .expect_record()
            .withf(|event| event.outcome == Outcome::Failure && event.detail.as_deref() == Some("vault_auth_failed"))
            .times(1)
            .returning(|_| Ok(()));
        let verification = mocks
            .build()
            .verify_vault_connection(&alice(), &ctx(), team_id(), vault_id())
            .await
            .unwrap();
        assert!(!verification.verified);
        assert_eq!(verification.error.unwrap().code, "vault_auth_failed");
    }

    #[tokio::test]
    async fn a_vault_type_without_a_provider_is_answered_as_unavailable() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Operator);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        mocks.store.expect_get().returning(|_, _| Ok(SecretString::from(TOKEN)));
        mocks
            .audit
            .expect_record()
            .withf(|event| event.outcome == Outcome::Failure && event.detail.as_deref() == Some("vault_unavailable"))
            .times(1)
            .returning(|_| Ok(()));
        let verification = mocks
            .build()
            .verify_vault_connection(&alice(), &ctx(), team_id(), vault_id())
            .await
            .unwrap();
        assert!(!verification.verified);
        let error = verification.error.unwrap();
        assert_eq!(error.code, "vault_unavailable");
        assert!(error.message.contains("doppler"), "{}", error.message);
    }

    #[tokio::test]
    async fn delete_removes_the_row_then_the_stored_secret() {
        let mut mocks = admin(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        let mut seq = Sequence::new();
        mocks
            .vault_connections
            .expect_delete()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(doppler_connection()));
        mocks
            .store
            .expect_delete_all()
            .withf(|key| key.kind == CredentialKind::VaultConnection)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(StoreError::Internal("io".into())));
        mocks
            .cleanup
            .expect_record()
            .withf(|key, task, at| {
                key.kind == CredentialKind::VaultConnection
                    && key.team_id == team_id()
                    && key.record_id == vault_id().as_uuid()
                    && *task == CleanupTask::DeleteAll
                    && *at == now()
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        // The store failure is recorded for gc: the request succeeds.
        mocks
            .build()
            .delete_vault_connection(&alice(), &ctx(), team_id(), vault_id())
            .await
            .unwrap();
    }

    fn rotation_to(token: &str) -> VaultRotationInput {
        VaultRotationInput {
            access_token: Some(SecretString::from(token)),
            ..VaultRotationInput::default()
        }
    }

    #[tokio::test]
    async fn a_committed_rotation_prunes_below_the_new_version() {
        let mut mocks = admin(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .vault_connections
            .expect_update()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .store
            .expect_prune()
            .withf(|key, keep| key.kind == CredentialKind::VaultConnection && *keep == 4)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        // A successful prune records nothing: the cleanup mock has no expectation.
        let rotated = mocks
            .build()
            .rotate_vault_connection(&alice(), &ctx(), team_id(), vault_id(), rotation_to("dp.st.prd.new"))
            .await
            .unwrap();
        assert_eq!(rotated.secret_version, 4);
    }

    #[tokio::test]
    async fn a_failed_prune_after_a_rotation_is_recorded_for_gc() {
        let mut mocks = admin(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        mocks.store.expect_put().returning(|_, _, _| Ok(()));
        mocks.vault_connections.expect_update().returning(|_, _, _| Ok(()));
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_prune()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Err(store_down()));
        mocks
            .cleanup
            .expect_record()
            .withf(|key, task, _| {
                key.kind == CredentialKind::VaultConnection
                    && key.record_id == vault_id().as_uuid()
                    && *task == CleanupTask::PruneBelow(4)
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        let rotated = mocks
            .build()
            .rotate_vault_connection(&alice(), &ctx(), team_id(), vault_id(), rotation_to("dp.st.prd.new"))
            .await
            .unwrap();
        assert_eq!(rotated.secret_version, 4);
    }

    #[tokio::test]
    async fn a_connection_in_use_is_kept() {
        let mut mocks = admin(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        mocks
            .vault_connections
            .expect_delete()
            .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::VaultConnectionInUse)));
        assert_eq!(
            mocks
                .build()
                .delete_vault_connection(&alice(), &ctx(), team_id(), vault_id())
                .await,
            Err(CoreError::Conflict(ConflictKind::VaultConnectionInUse))
        );
    }
}
