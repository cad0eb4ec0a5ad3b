//! Storage secrets: create, read, update (with credential rotation), delete, verify and
//! resolve, keeping SPEC §8's ordering between the credential store and the metadata row.

use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditAction, AuditEvent, CreateSecretInput, Credentials, KnownVault, LinkedLocation, NewSecretStorage,
    NewStorageSecret, Outcome, RequestContext, ResourceType, SecretId, SecretStorage, SecretUpdate, StorageSecret,
    Subject, TeamId, UpdateRejection, UpdateSecretInput, VaultConnection, VaultConnectionId, VaultReference,
    VaultSecret, VaultType,
};
use std::sync::Arc;

use custodian_ports::{
    CleanupTask, CredentialKey, CredentialKind, Page, Paged, RepoError, SecretFilter, StoreError, VaultAccess,
    VaultError, VaultProvider,
};
use secrecy::SecretString;

use crate::authz::Action;
use crate::vault_connections::connection_key;
use crate::{CoreError, Custodian};

/// A storage secret with what its detail view shows: the locations that use it and, for an
/// external secret, its vault connection. Never credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDetails {
    pub secret: StorageSecret,
    pub locations: Vec<LinkedLocation>,
    /// The vault connection of an external secret.
    pub vault_connection: Option<VaultConnection>,
}

/// The outcome of verifying a secret's credentials. Names the fields found, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub verified: bool,
    pub checked_at: DateTime<Utc>,
    /// Names of the credential fields that were found and passed their checks.
    pub fields: Vec<&'static str>,
    pub error: Option<VerificationFailure>,
}

/// Why a verification failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationFailure {
    /// `credentials_invalid`, `vault_unavailable`, `vault_auth_failed`,
    /// `vault_reference_not_found` or `vault_rate_limited`.
    pub code: &'static str,
    pub message: String,
}

/// Where a managed secret's credentials are kept.
pub(crate) fn credential_key(secret: &StorageSecret) -> CredentialKey {
    CredentialKey {
        team_id: secret.team_id,
        kind: CredentialKind::StorageSecret,
        record_id: secret.id.as_uuid(),
    }
}

/// How many taken version numbers a rotation steps over before it gives up (409).
const MAX_VERSIONS_SKIPPED: i64 = 5;

impl Custodian {
    fn secret_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        secret: &StorageSecret,
        outcome: Outcome,
    ) -> AuditEvent {
        self.audit_event(
            subject,
            ctx,
            Some(secret.team_id),
            action,
            (
                ResourceType::StorageSecret,
                Some(secret.id.as_uuid()),
                Some(secret.name.as_str()),
            ),
            outcome,
        )
    }

    /// SPEC §8's order for a new credential version: store `value` as `version` of `key`,
    /// then run `commit` (the row that points at it, with its audit event). When the commit
    /// fails, the version is removed again, so no row ever points at missing credentials.
    pub(crate) async fn store_then_commit<T, Commit>(
        &self,
        key: &CredentialKey,
        version: i64,
        value: &SecretString,
        commit: impl FnOnce() -> Commit,
    ) -> Result<T, CoreError>
    where
        Commit: Future<Output = Result<T, RepoError>>,
    {
        self.ports.credential_store.put(key, version, value).await?;
        self.commit_or_discard(key, version, commit()).await
    }

    /// Store `value` as the next version of a record whose row is at `current`, and answer
    /// the version written: `current + 1`, or a later one when that number is taken — by a
    /// version a failed rotation could not remove (it would block every rotation until
    /// `custodian gc`), or by a concurrent rotation (whichever commits first wins; the
    /// other's commit fails its version check and removes what it wrote). A version left
    /// over is pruned with the rest once a rotation commits.
    pub(crate) async fn store_next_version(
        &self,
        key: &CredentialKey,
        current: i64,
        value: &SecretString,
    ) -> Result<i64, CoreError> {
        let mut version = current + 1;
        loop {
            match self.ports.credential_store.put(key, version, value).await {
                Ok(()) => return Ok(version),
                Err(StoreError::AlreadyExists) if version < current + MAX_VERSIONS_SKIPPED => {
                    tracing::warn!(%key, version, "a credential version no row points at is in the way; writing the next one");
                    version += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Run `commit` for a version already stored; when it fails, remove the version again.
    pub(crate) async fn commit_or_discard<T>(
        &self,
        key: &CredentialKey,
        version: i64,
        commit: impl Future<Output = Result<T, RepoError>>,
    ) -> Result<T, CoreError> {
        match commit.await {
            Ok(committed) => Ok(committed),
            Err(error) => {
                self.discard_version(key, version).await;
                Err(error.into())
            }
        }
    }

    /// Remove a credential version whose row was not committed. When that fails too:
    /// version 1 belongs to a record whose row never existed, so every stored version of it
    /// is an orphan and `DeleteAll` is queued for `custodian gc`; a later version (a
    /// rotation that did not commit) stays in the store, logged by key and version, until
    /// the record's next rotation steps over it and prunes it ([`Self::store_next_version`]).
    async fn discard_version(&self, key: &CredentialKey, version: i64) {
        let Err(error) = self.ports.credential_store.delete_version(key, version).await else {
            return;
        };
        if version == 1 {
            match self
                .ports
                .repos
                .cleanup
                .record(key, CleanupTask::DeleteAll, self.now())
                .await
            {
                Ok(()) => tracing::warn!(
                    %key,
                    version,
                    %error,
                    "could not remove the credentials of a record that was not created; recorded for `custodian gc`"
                ),
                Err(record_error) => tracing::error!(
                    %key,
                    version,
                    %error,
                    %record_error,
                    "could not remove the credentials of a record that was not created, nor record it for `custodian gc`"
                ),
            }
        } else {
            tracing::error!(%key, version, %error, "could not remove an uncommitted credential version; the next rotation prunes it");
        }
    }

    /// The vault connection `id` of `team`, or `None` when it does not exist there.
    async fn find_vault_connection(
        &self,
        team: TeamId,
        id: VaultConnectionId,
    ) -> Result<Option<VaultConnection>, CoreError> {
        match self.ports.repos.vault_connections.get(team, id).await {
            Ok(c) => Ok(Some(c)),
            Err(RepoError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Create a storage secret (admin).
    ///
    /// Managed: the credentials are written to the store as version 1 first, then the row
    /// is committed with the team's storage-secret limit; when the commit fails, version 1
    /// is removed again. External: the vault connection must exist in the team.
    pub async fn create_secret(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        input: CreateSecretInput,
    ) -> Result<StorageSecret, CoreError> {
        self.authorize(subject, team, Action::WriteSecrets).await?;
        let tier = self.ports.repos.teams.get(team).await?.tier;
        let vault = match input
            .vault_connection_id
            .as_deref()
            .map(str::parse::<VaultConnectionId>)
        {
            Some(Ok(id)) => self.find_vault_connection(team, id).await?.map(|c| KnownVault {
                id: c.id,
                vault_type: c.vault_type(),
            }),
            Some(Err(_)) | None => None,
        };
        let now = self.now();
        let new = NewStorageSecret::parse(input, vault, now)?;
        let (storage, credentials) = match new.storage {
            NewSecretStorage::Managed(credentials) => (SecretStorage::Managed, Some(credentials)),
            NewSecretStorage::External {
                vault_connection_id,
                field_mappings,
            } => (
                SecretStorage::External {
                    vault_connection_id,
                    field_mappings,
                },
                None,
            ),
        };
        let secret = StorageSecret {
            id: SecretId::from_uuid(self.ports.ids.new_id()),
            team_id: team,
            name: new.name,
            description: new.description,
            secret_type: new.secret_type,
            auth_method: new.auth_method,
            storage,
            credentials_version: 1,
            credentials_updated_at: now,
            created_at: now,
            created_by: subject.id(),
            updated_at: now,
            updated_by: subject.id(),
        };
        let limit = self.limit(tier, custodian_domain::LimitKind::StorageSecrets);
        let audit = self.secret_event(subject, ctx, AuditAction::Create, &secret, Outcome::Success);
        if let Some(credentials) = credentials {
            let commit = || self.ports.repos.secrets.create(&secret, limit, &audit);
            let payload = credentials.to_payload();
            self.store_then_commit(&credential_key(&secret), secret.credentials_version, &payload, commit)
                .await?;
        } else {
            self.ports.repos.secrets.create(&secret, limit, &audit).await?;
        }
        Ok(secret)
    }

    /// A secret's details (viewer).
    pub async fn get_secret(&self, subject: &Subject, team: TeamId, id: SecretId) -> Result<SecretDetails, CoreError> {
        self.authorize(subject, team, Action::ReadSecrets).await?;
        let secret = self.ports.repos.secrets.get(team, id).await?;
        let locations = self.ports.repos.locations.linked_to_secret(team, id).await?;
        let vault_connection = match &secret.storage {
            SecretStorage::External {
                vault_connection_id, ..
            } => self.find_vault_connection(team, *vault_connection_id).await?,
            SecretStorage::Managed => None,
        };
        Ok(SecretDetails {
            secret,
            locations,
            vault_connection,
        })
    }

    /// The team's secrets matching `filter` (viewer).
    pub async fn list_secrets(
        &self,
        subject: &Subject,
        team: TeamId,
        filter: &SecretFilter,
        page: Page,
    ) -> Result<Paged<StorageSecret>, CoreError> {
        self.authorize(subject, team, Action::ReadSecrets).await?;
        Ok(self.ports.repos.secrets.list(team, filter, page).await?)
    }

    /// Update a secret (admin) under the rules of seed 001.
    ///
    /// New credentials rotate a managed secret: version n+1 is written first, the row is
    /// committed only while it still points at version n (`Conflict(Stale)` otherwise, and
    /// version n+1 is removed again), then older versions are pruned (a failure there is
    /// logged; the row already points at the new version). New field mappings of an
    /// external secret bump its version the same way, with nothing to store.
    pub async fn update_secret(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: SecretId,
        input: UpdateSecretInput,
    ) -> Result<StorageSecret, CoreError> {
        self.authorize(subject, team, Action::WriteSecrets).await?;
        let current = self.ports.repos.secrets.get(team, id).await?;
        let linked = self.ports.repos.locations.linked_to_secret(team, id).await?;
        let vault_type = match &current.storage {
            SecretStorage::External {
                vault_connection_id, ..
            } => self
                .find_vault_connection(team, *vault_connection_id)
                .await?
                .map(|c| c.vault_type()),
            SecretStorage::Managed => None,
        };
        let now = self.now();
        let update = SecretUpdate::parse(input, &current, &linked, vault_type, now).map_err(|r| match r {
            UpdateRejection::Invalid(errors) => CoreError::Validation(errors),
            UpdateRejection::LocationTypeMismatch { secret_type, locations } => {
                CoreError::LocationTypeMismatch { secret_type, locations }
            }
        })?;

        let expected = current.credentials_version;
        let mut next = current.clone();
        if let Some(name) = update.name {
            next.name = name;
        }
        if let Some(description) = update.description {
            next.description = description;
        }
        if let Some(secret_type) = update.secret_type {
            next.secret_type = secret_type;
        }
        if let Some(auth_method) = update.auth_method {
            next.auth_method = auth_method;
        }
        next.updated_at = now;
        next.updated_by = subject.id();
        if let Some(mappings) = update.field_mappings
            && let SecretStorage::External { field_mappings, .. } = &mut next.storage
        {
            *field_mappings = mappings;
            next.credentials_version = expected + 1;
            next.credentials_updated_at = now;
        }

        let Some(credentials) = update.credentials else {
            let audit = self.secret_event(subject, ctx, AuditAction::Update, &next, Outcome::Success);
            self.ports.repos.secrets.update(&next, expected, &audit).await?;
            return Ok(next);
        };
        let key = credential_key(&next);
        next.credentials_version = self
            .store_next_version(&key, expected, &credentials.to_payload())
            .await?;
        next.credentials_updated_at = now;
        let audit = self.secret_event(subject, ctx, AuditAction::Rotate, &next, Outcome::Success);
        self.commit_or_discard(
            &key,
            next.credentials_version,
            self.ports.repos.secrets.update(&next, expected, &audit),
        )
        .await?;
        self.clean_up_after_commit(&key, CleanupTask::PruneBelow(next.credentials_version))
            .await;
        Ok(next)
    }

    /// Delete a secret (admin). `Conflict(SecretInUse)` while locations use it. The row is
    /// removed first; removing the stored credentials afterwards is best effort (a failure
    /// is logged and left for `custodian gc`, and the request still succeeds).
    pub async fn delete_secret(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: SecretId,
    ) -> Result<(), CoreError> {
        self.authorize(subject, team, Action::WriteSecrets).await?;
        let current = self.ports.repos.secrets.get(team, id).await?;
        let audit = self.secret_event(subject, ctx, AuditAction::Delete, &current, Outcome::Success);
        let deleted = self.ports.repos.secrets.delete(team, id, &audit).await?;
        if deleted.storage == SecretStorage::Managed {
            let key = credential_key(&deleted);
            self.clean_up_after_commit(&key, CleanupTask::DeleteAll).await;
        }
        Ok(())
    }

    /// Verify a secret's credentials now (operator): managed ones are loaded from the store
    /// and checked against the auth method's schema; external ones are fetched from the
    /// vault, every mapped reference, and checked the same way. Recorded as an audit event
    /// with its outcome. Problems with the credentials are part of the answer; a failing
    /// database or credential store is an error.
    pub async fn verify_secret(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: SecretId,
    ) -> Result<Verification, CoreError> {
        self.authorize(subject, team, Action::VerifySecret).await?;
        let secret = self.ports.repos.secrets.get(team, id).await?;
        let resource = (
            ResourceType::StorageSecret,
            Some(secret.id.as_uuid()),
            Some(secret.name.as_str()),
        );
        self.verify_and_record(subject, ctx, &secret, resource).await
    }

    /// Check `secret`'s credentials and record the verification of `resource`.
    pub(crate) async fn verify_and_record(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        secret: &StorageSecret,
        resource: (ResourceType, Option<uuid::Uuid>, Option<&str>),
    ) -> Result<Verification, CoreError> {
        let loaded = self.load_credentials(secret).await;
        let checked_at = self.now();
        let verification = match loaded {
            Ok(credentials) => Verification {
                verified: true,
                checked_at,
                fields: credentials.field_names(),
                error: None,
            },
            Err(error @ (CoreError::Vault(_) | CoreError::InvalidCredentials(_))) => Verification {
                verified: false,
                checked_at,
                fields: Vec::new(),
                error: Some(VerificationFailure {
                    code: error.code(),
                    message: error.to_string(),
                }),
            },
            Err(error) => {
                let mut event = self.audit_event(
                    subject,
                    ctx,
                    Some(secret.team_id),
                    AuditAction::Verify,
                    resource,
                    Outcome::Failure,
                );
                event.detail = Some(format!("could not verify: {}", error.code()));
                self.record(&event).await?;
                return Err(error);
            }
        };
        let outcome = if verification.verified {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = self.audit_event(
            subject,
            ctx,
            Some(secret.team_id),
            AuditAction::Verify,
            resource,
            outcome,
        );
        event.detail = verification.error.as_ref().map(|e| e.code.to_owned());
        self.record(&event).await?;
        Ok(verification)
    }

    /// Resolve a storage secret's credentials (operator): the public API other Rust
    /// services embed. Managed credentials come from the credential store; external ones
    /// are fetched from the team's vault through the field mappings. Either way they are
    /// checked against the auth method's schema. Every resolution, successful or not, is
    /// recorded as an audit event, and one that cannot be recorded is not returned.
    pub async fn resolve(
        &self,
        subject: &Subject,
        team: TeamId,
        secret_id: SecretId,
    ) -> Result<Credentials, CoreError> {
        self.resolve_with_context(subject, &RequestContext::default(), team, secret_id)
            .await
    }

    /// [`resolve`](Self::resolve) with the context of the request that asks.
    pub async fn resolve_with_context(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        secret_id: SecretId,
    ) -> Result<Credentials, CoreError> {
        if let Err(error) = self.authorize(subject, team, Action::ResolveCredentials).await {
            if matches!(error, CoreError::Forbidden { .. }) {
                // A member without the role: the attempt belongs in the team's trail.
                let event = self.audit_event(
                    subject,
                    ctx,
                    Some(team),
                    AuditAction::Resolve,
                    (ResourceType::StorageSecret, Some(secret_id.as_uuid()), None),
                    Outcome::Denied,
                );
                self.record(&event).await?;
            }
            return Err(error);
        }
        let secret = self.ports.repos.secrets.get(team, secret_id).await?;
        let resolved = self.load_credentials(&secret).await;
        let outcome = if resolved.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = self.secret_event(subject, ctx, AuditAction::Resolve, &secret, outcome);
        event.detail = resolved.as_ref().err().map(|e| e.code().to_owned());
        self.record(&event).await?;
        resolved
    }

    /// The secret's current credentials, checked against its auth method.
    async fn load_credentials(&self, secret: &StorageSecret) -> Result<Credentials, CoreError> {
        match &secret.storage {
            SecretStorage::Managed => {
                let payload = self
                    .ports
                    .credential_store
                    .get(&credential_key(secret), secret.credentials_version)
                    .await?;
                Credentials::from_payload(secret.auth_method, &payload, self.now())
                    .map_err(CoreError::InvalidCredentials)
            }
            SecretStorage::External {
                vault_connection_id,
                field_mappings,
            } => {
                let connection = self
                    .find_vault_connection(secret.team_id, *vault_connection_id)
                    .await?
                    .ok_or_else(|| CoreError::Internal("a secret's vault connection is missing".into()))?;
                let access = self.vault_access(&connection).await?;
                let provider = self.vault_provider(connection.vault_type())?;
                let references: Vec<VaultReference> = field_mappings.iter().map(|m| m.reference.clone()).collect();
                let values = provider.fetch(&access, &references).await?;
                if values.len() != references.len() {
                    return Err(CoreError::Internal(format!(
                        "the {} provider answered {} values for {} references",
                        connection.vault_type(),
                        values.len(),
                        references.len()
                    )));
                }
                let raw: Vec<(String, SecretString)> = field_mappings
                    .iter()
                    .zip(values)
                    .map(|(m, v)| (m.field.as_str().to_owned(), v))
                    .collect();
                Credentials::parse(secret.auth_method, raw, self.now()).map_err(CoreError::InvalidCredentials)
            }
        }
    }

    /// Everything a provider needs to reach `connection`'s vault, its secret read from the
    /// credential store.
    pub(crate) async fn vault_access(&self, connection: &VaultConnection) -> Result<VaultAccess, CoreError> {
        let secret = self
            .ports
            .credential_store
            .get(&connection_key(connection), connection.secret_version)
            .await?;
        Ok(VaultAccess {
            connection_id: connection.id,
            settings: connection.settings.clone(),
            secret: VaultSecret::from_stored(secret),
        })
    }

    /// The configured provider of `vault_type`. A deployment without one answers as if the
    /// provider were unreachable (`vault_unavailable`, naming it), which the caller can
    /// act on; it is not an internal error.
    pub(crate) fn vault_provider(&self, vault_type: VaultType) -> Result<&Arc<dyn VaultProvider>, VaultError> {
        self.ports
            .vault_providers
            .get(&vault_type)
            .ok_or_else(|| VaultError::Unavailable {
                provider: vault_type,
                message: "this deployment has no provider configured for it".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use custodian_domain::{AuthMethod, LimitKind, RawFieldMapping, Role, SecretType, Tier, VaultType};
    use custodian_ports::{ConflictKind, MockVaultProvider, StoreError, VaultError};
    use mockall::Sequence;
    use secrecy::ExposeSecret;

    use super::*;
    use crate::Requirement;
    use crate::test_support::*;

    const KEY_ID: &str = "AKIAEXAMPLEKEYID";
    const SECRET: &str = "wJalrXUtnFEMI-very-secret-value";

    fn ctx() -> RequestContext {
        RequestContext::default()
    }

    fn managed_input() -> CreateSecretInput {
        CreateSecretInput {
            name: Some("prod-s3".into()),
            secret_type: Some("s3".into()),
            auth_method: Some("s3_access_key".into()),
            credentials: Some(s3_credentials(KEY_ID, SECRET)),
            ..CreateSecretInput::default()
        }
    }

    fn external_input(vault: &str) -> CreateSecretInput {
        CreateSecretInput {
            name: Some("prod-s3".into()),
            secret_type: Some("s3".into()),
            auth_method: Some("s3_access_key".into()),
            vault_connection_id: Some(vault.into()),
            field_mappings: Some(vec![
                RawFieldMapping {
                    field_name: "access_key_id".into(),
                    reference: "S3_KEY_ID".into(),
                },
                RawFieldMapping {
                    field_name: "secret_access_key".into(),
                    reference: "S3_SECRET".into(),
                },
            ]),
            ..CreateSecretInput::default()
        }
    }

    fn payload_of(key_id: &str, secret: &str) -> String {
        Credentials::parse(AuthMethod::S3AccessKey, s3_credentials(key_id, secret), now())
            .unwrap()
            .to_payload()
            .expose_secret()
            .to_owned()
    }

    fn admin_mocks(tier: Tier) -> Mocks {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin).team(team(tier));
        mocks
    }

    fn doppler_provider() -> MockVaultProvider {
        let mut provider = MockVaultProvider::new();
        provider.expect_vault_type().return_const(VaultType::Doppler);
        provider
    }

    #[tokio::test]
    async fn a_managed_secret_is_stored_as_version_1_then_committed_with_the_tier_limit() {
        let mut mocks = admin_mocks(Tier::Free);
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .withf(|key, version, value| {
                key.kind == CredentialKind::StorageSecret
                    && key.team_id == team_id()
                    && *version == 1
                    && value.expose_secret().contains(SECRET)
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .secrets
            .expect_create()
            .withf(|secret, limit, audit| {
                secret.storage == SecretStorage::Managed
                    && secret.credentials_version == 1
                    && *limit == Some(5)
                    && audit.action == AuditAction::Create
                    && audit.resource_type == ResourceType::StorageSecret
                    && audit.resource_id == Some(secret.id.as_uuid())
                    && audit.detail.is_none()
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        let secret = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), managed_input())
            .await
            .unwrap();
        assert_eq!(secret.name.as_str(), "prod-s3");
        assert_eq!(secret.created_by, alice_id().into());
        assert!(!format!("{secret:?}").contains(SECRET));
    }

    #[tokio::test]
    async fn a_failed_commit_removes_the_written_version() {
        let failures = [
            RepoError::LimitExceeded {
                kind: LimitKind::StorageSecrets,
                limit: 5,
            },
            RepoError::Conflict(ConflictKind::DuplicateName),
            RepoError::Unavailable("connection reset".into()),
        ];
        for failure in failures {
            let expected = CoreError::from(failure.clone());
            let mut mocks = admin_mocks(Tier::Free);
            let mut seq = Sequence::new();
            mocks
                .store
                .expect_put()
                .times(1)
                .in_sequence(&mut seq)
                .returning(|_, _, _| Ok(()));
            mocks
                .secrets
                .expect_create()
                .times(1)
                .in_sequence(&mut seq)
                .returning(move |_, _, _| Err(failure.clone()));
            mocks
                .store
                .expect_delete_version()
                .withf(|key, version| key.kind == CredentialKind::StorageSecret && *version == 1)
                .times(1)
                .in_sequence(&mut seq)
                .returning(|_, _| Ok(()));
            let result = mocks
                .build()
                .create_secret(&alice(), &ctx(), team_id(), managed_input())
                .await;
            assert_eq!(result, Err(expected));
        }
    }

    #[tokio::test]
    async fn a_create_whose_commit_and_undo_both_fail_queues_its_credentials_for_gc() {
        let mut mocks = admin_mocks(Tier::Pro);
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .secrets
            .expect_create()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Err(RepoError::Unavailable("connection reset".into())));
        mocks
            .store
            .expect_delete_version()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Err(store_down()));
        mocks
            .cleanup
            .expect_record()
            .withf(|key, task, _| key.kind == CredentialKind::StorageSecret && *task == CleanupTask::DeleteAll)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        let result = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), managed_input())
            .await;
        assert!(matches!(result, Err(CoreError::Unavailable { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn a_failed_put_commits_nothing() {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks.store.expect_put().times(1).returning(|_, _, _| Err(store_down()));
        // No expectation on secrets.create or delete_version: reaching them panics.
        let result = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), managed_input())
            .await;
        assert!(matches!(
            result,
            Err(CoreError::Unavailable {
                what: "the credential store",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn too_low_a_role_writes_nothing() {
        for role in [Role::Viewer, Role::Operator] {
            let mut mocks = Mocks::new();
            mocks.member(team_id(), alice_id(), role);
            let result = mocks
                .build()
                .create_secret(&alice(), &ctx(), team_id(), managed_input())
                .await;
            assert_eq!(
                result,
                Err(CoreError::Forbidden {
                    needed: Requirement::Role(Role::Admin)
                })
            );
        }
        let mut mocks = Mocks::new();
        mocks.stranger(alice_id());
        let result = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), managed_input())
            .await;
        assert_eq!(result, Err(CoreError::NotFound));
    }

    #[tokio::test]
    async fn invalid_credentials_are_refused_before_the_store_and_never_shown() {
        let mocks = admin_mocks(Tier::Pro);
        let mut input = managed_input();
        input.credentials = Some(s3_credentials(KEY_ID, " wJalrXUtnFEMI-very-secret-value"));
        let error = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), input)
            .await
            .unwrap_err();
        assert!(matches!(&error, CoreError::Validation(e) if e.has(&["credentials", "secret_access_key"])));
        let shown = format!("{error:?} {error}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[tokio::test]
    async fn an_external_secret_needs_a_vault_connection_of_the_team() {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Err(RepoError::NotFound));
        let result = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), external_input(&vault_id().to_string()))
            .await;
        assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["vault_connection_id"])));

        let mut mocks = admin_mocks(Tier::Pro);
        mocks
            .vault_connections
            .expect_get()
            .withf(|team, id| *team == team_id() && *id == vault_id())
            .returning(|_, _| Ok(doppler_connection()));
        mocks
            .secrets
            .expect_create()
            .withf(|secret, limit, _| {
                matches!(&secret.storage, SecretStorage::External { vault_connection_id, field_mappings }
                    if *vault_connection_id == vault_id() && field_mappings.as_slice().len() == 2)
                    && *limit == Some(100)
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let secret = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), external_input(&vault_id().to_string()))
            .await
            .unwrap();
        assert_eq!(secret.storage.mode(), custodian_domain::StorageMode::External);
    }

    fn rotation() -> UpdateSecretInput {
        UpdateSecretInput {
            credentials: Some(s3_credentials(KEY_ID, "the-new-secret-value")),
            ..UpdateSecretInput::default()
        }
    }

    fn update_mocks(current: StorageSecret) -> Mocks {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks.secret(current);
        mocks
            .locations
            .expect_linked_to_secret()
            .returning(|_, _| Ok(Vec::new()));
        mocks
    }

    #[tokio::test]
    async fn a_rotation_writes_n_plus_1_commits_against_n_then_prunes() {
        let mut mocks = update_mocks(managed_secret(4));
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .withf(|_, version, value| *version == 5 && value.expose_secret().contains("the-new-secret-value"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .secrets
            .expect_update()
            .withf(|secret, expected, audit| {
                secret.credentials_version == 5 && *expected == 4 && audit.action == AuditAction::Rotate
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .store
            .expect_prune()
            .withf(|_, keep| *keep == 5)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        let updated = mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
            .await
            .unwrap();
        assert_eq!(updated.credentials_version, 5);
        assert_eq!(updated.updated_by, alice_id().into());
    }

    #[tokio::test]
    async fn a_rotation_steps_over_a_version_left_behind_and_prunes_it_with_the_rest() {
        let mut mocks = update_mocks(managed_secret(4));
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .withf(|_, version, _| *version == 5)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Err(StoreError::AlreadyExists));
        mocks
            .store
            .expect_put()
            .withf(|_, version, _| *version == 6)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .secrets
            .expect_update()
            .withf(|next, expected, _| next.credentials_version == 6 && *expected == 4)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .store
            .expect_prune()
            .withf(|_, keep| *keep == 6)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        let updated = mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
            .await
            .unwrap();
        assert_eq!(updated.credentials_version, 6);
    }

    #[tokio::test]
    async fn a_rotation_gives_up_after_a_bounded_number_of_taken_versions() {
        let mut mocks = update_mocks(managed_secret(4));
        mocks
            .store
            .expect_put()
            .times(MAX_VERSIONS_SKIPPED as usize)
            .returning(|_, _, _| Err(StoreError::AlreadyExists));
        // No expectation on secrets.update: reaching it panics.
        let result = mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
            .await;
        assert_eq!(result, Err(CoreError::Conflict(ConflictKind::Stale)));
    }

    #[tokio::test]
    async fn a_rotation_whose_commit_fails_removes_the_new_version_and_prunes_nothing() {
        let mut mocks = update_mocks(managed_secret(4));
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .secrets
            .expect_update()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::Stale)));
        mocks
            .store
            .expect_delete_version()
            .withf(|_, version| *version == 5)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        let result = mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
            .await;
        assert_eq!(result, Err(CoreError::Conflict(ConflictKind::Stale)));
    }

    #[tokio::test]
    async fn a_rotation_whose_put_fails_commits_nothing() {
        let mut mocks = update_mocks(managed_secret(4));
        mocks
            .store
            .expect_put()
            .returning(|_, _, _| Err(StoreError::Rejected("value over 8 KiB".into())));
        let result = mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
            .await;
        assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["credentials"])));
    }

    #[tokio::test]
    async fn a_failed_prune_is_recorded_for_gc_and_does_not_fail_the_rotation() {
        let mut mocks = update_mocks(managed_secret(1));
        let mut seq = Sequence::new();
        mocks.store.expect_put().returning(|_, _, _| Ok(()));
        mocks.secrets.expect_update().returning(|_, _, _| Ok(()));
        mocks
            .store
            .expect_prune()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Err(StoreError::Internal("io".into())));
        mocks
            .cleanup
            .expect_record()
            .withf(|key, task, at| {
                key.kind == CredentialKind::StorageSecret
                    && key.team_id == team_id()
                    && key.record_id == secret_id().as_uuid()
                    && *task == CleanupTask::PruneBelow(2)
                    && *at == now()
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        let updated = mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
            .await
            .unwrap();
        assert_eq!(updated.credentials_version, 2);
    }

    #[tokio::test]
    async fn a_rotation_still_succeeds_when_neither_prune_nor_its_record_works() {
        let mut mocks = update_mocks(managed_secret(1));
        mocks.store.expect_put().returning(|_, _, _| Ok(()));
        mocks.secrets.expect_update().returning(|_, _, _| Ok(()));
        mocks
            .store
            .expect_prune()
            .times(1)
            .returning(|_, _| Err(StoreError::Internal("io".into())));
        mocks
            .cleanup
            .expect_record()
            .times(1)
            .returning(|_, _, _| Err(RepoError::Unavailable("timeout".into())));
        let updated = mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
            .await
            .unwrap();
        assert_eq!(updated.credentials_version, 2);
    }

    #[tokio::test]
    async fn a_rename_touches_no_credentials() {
        let mut mocks = update_mocks(managed_secret(3));
        mocks
            .secrets
            .expect_update()
            .withf(|secret, expected, audit| {
                secret.name.as_str() == "renamed"
                    && secret.credentials_version == 3
                    && *expected == 3
                    && audit.action == AuditAction::Update
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let input = UpdateSecretInput {
            name: Some("renamed".into()),
            ..UpdateSecretInput::default()
        };
        mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), input)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn changing_the_type_under_linked_locations_is_a_location_type_mismatch() {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks.secret(managed_secret(1));
        mocks.locations.expect_linked_to_secret().returning(|_, _| {
            Ok(vec![LinkedLocation {
                id: location_id(),
                name: "raw-bucket".into(),
                location_type: SecretType::S3,
            }])
        });
        let input = UpdateSecretInput {
            secret_type: Some("r2".into()),
            auth_method: Some("r2_access_key".into()),
            ..UpdateSecretInput::default()
        };
        match mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), input)
            .await
        {
            Err(CoreError::LocationTypeMismatch { secret_type, locations }) => {
                assert_eq!(secret_type, SecretType::R2);
                assert_eq!(locations.len(), 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn new_field_mappings_bump_an_external_secrets_version_without_the_store() {
        let mut mocks = update_mocks(external_secret());
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        mocks
            .secrets
            .expect_update()
            .withf(|secret, expected, _| {
                let SecretStorage::External { field_mappings, .. } = &secret.storage else {
                    return false;
                };
                secret.credentials_version == 2
                    && *expected == 1
                    && field_mappings.as_slice()[0].reference.as_str() == "NEW_KEY_ID"
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let input = UpdateSecretInput {
            field_mappings: Some(vec![
                RawFieldMapping {
                    field_name: "access_key_id".into(),
                    reference: "NEW_KEY_ID".into(),
                },
                RawFieldMapping {
                    field_name: "secret_access_key".into(),
                    reference: "NEW_SECRET".into(),
                },
            ]),
            ..UpdateSecretInput::default()
        };
        mocks
            .build()
            .update_secret(&alice(), &ctx(), team_id(), secret_id(), input)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn delete_commits_the_removal_then_deletes_every_version() {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks.secret(managed_secret(2));
        let mut seq = Sequence::new();
        mocks
            .secrets
            .expect_delete()
            .withf(|_, _, audit| audit.action == AuditAction::Delete)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(managed_secret(2)));
        mocks
            .store
            .expect_delete_all()
            .withf(|key| key.record_id == secret_id().as_uuid())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        // Nothing is recorded for gc: the cleanup mock has no expectation.
        mocks
            .build()
            .delete_secret(&alice(), &ctx(), team_id(), secret_id())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_failed_removal_after_delete_is_recorded_for_gc_and_the_delete_succeeds() {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks.secret(managed_secret(2));
        let mut seq = Sequence::new();
        mocks
            .secrets
            .expect_delete()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(managed_secret(2)));
        mocks
            .store
            .expect_delete_all()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(store_down()));
        mocks
            .cleanup
            .expect_record()
            .withf(|key, task, _| {
                key.kind == CredentialKind::StorageSecret
                    && key.record_id == secret_id().as_uuid()
                    && *task == CleanupTask::DeleteAll
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .build()
            .delete_secret(&alice(), &ctx(), team_id(), secret_id())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn deleting_an_external_secret_touches_neither_store_nor_queue() {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks.secret(external_secret());
        mocks
            .secrets
            .expect_delete()
            .times(1)
            .returning(|_, _, _| Ok(external_secret()));
        mocks
            .build()
            .delete_secret(&alice(), &ctx(), team_id(), secret_id())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_secret_in_use_keeps_its_credentials() {
        let mut mocks = admin_mocks(Tier::Pro);
        mocks.secret(managed_secret(2));
        mocks
            .secrets
            .expect_delete()
            .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::SecretInUse)));
        assert_eq!(
            mocks
                .build()
                .delete_secret(&alice(), &ctx(), team_id(), secret_id())
                .await,
            Err(CoreError::Conflict(ConflictKind::SecretInUse))
        );
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
            .withf(|access, references| {
                access.connection_id == vault_id()
                    && access.secret.expose().expose_secret() == "dp.st.prd.token-secret-value"
                    && references
                        .iter()
                        .map(VaultReference::as_str)
                        .eq(["S3_KEY_ID", "S3_SECRET"])
            })
            .times(1)
            .returning(|_, _| {
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
        provider.expect_fetch().times(1).returning(|_, references| {
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
        provider.expect_fetch().returning(|_, _| {
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

    #[tokio::test]
    async fn details_show_the_locations_and_the_vault_connection() {
        let mut mocks = Mocks::new();
        mocks
            .member(team_id(), alice_id(), Role::Viewer)
            .secret(external_secret());
        mocks.locations.expect_linked_to_secret().returning(|_, _| {
            Ok(vec![LinkedLocation {
                id: location_id(),
                name: "raw-bucket".into(),
                location_type: SecretType::S3,
            }])
        });
        mocks
            .vault_connections
            .expect_get()
            .returning(|_, _| Ok(doppler_connection()));
        let details = mocks
            .build()
            .get_secret(&alice(), team_id(), secret_id())
            .await
            .unwrap();
        assert_eq!(details.locations.len(), 1);
        assert_eq!(details.vault_connection.unwrap().id, vault_id());
    }
}
