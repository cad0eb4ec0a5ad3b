//! Storage secrets: create, read, update (with credential rotation), delete, verify and
//! resolve, keeping SPEC §8's ordering between the credential store and the metadata row.

use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditAction, AuditEvent, CreateSecretInput, Credentials, KnownVault, LinkedLocation, NewSecretStorage,
    NewStorageSecret, Outcome, RequestContext, ResourceType, SecretId, SecretStorage, SecretUpdate, StorageSecret,
    Subject, TeamId, UpdateRejection, UpdateSecretInput, VaultConnection, VaultConnectionId, VaultReference,
    VaultSecret,
};
use custodian_ports::{CredentialKey, CredentialKind, Page, Paged, RepoError, SecretFilter, VaultAccess};
use secrecy::SecretString;

use crate::authz::Action;
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

    /// Remove a credential version whose row was not committed. A failure leaves an
    /// orphan that no row points at (harmless, removed by `custodian gc`); it is logged.
    async fn discard_version(&self, key: &CredentialKey, version: i64) {
        if let Err(error) = self.ports.credential_store.delete_version(key, version).await {
            tracing::error!(%key, version, %error, "could not remove uncommitted credentials; left for `custodian gc`");
        }
    }

    /// The vault connection `id` of `team`, or `None` when it does not exist there.
    async fn find_vault_connection(
        &self,
        team: TeamId,
        id: VaultConnectionId,
    ) -> Result<Option<VaultConnection>, CoreError> {
        match self.ports.vault_connections.get(team, id).await {
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
        let tier = self.ports.teams.get(team).await?.tier;
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
            let key = credential_key(&secret);
            self.ports
                .credential_store
                .put(&key, secret.credentials_version, &credentials.to_payload())
                .await?;
            if let Err(error) = self.ports.secrets.create(&secret, limit, &audit).await {
                self.discard_version(&key, secret.credentials_version).await;
                return Err(error.into());
            }
        } else {
            self.ports.secrets.create(&secret, limit, &audit).await?;
        }
        Ok(secret)
    }

    /// A secret's details (viewer).
    pub async fn get_secret(&self, subject: &Subject, team: TeamId, id: SecretId) -> Result<SecretDetails, CoreError> {
        self.authorize(subject, team, Action::ReadSecrets).await?;
        let secret = self.ports.secrets.get(team, id).await?;
        let locations = self.ports.locations.linked_to_secret(team, id).await?;
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
        Ok(self.ports.secrets.list(team, filter, page).await?)
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
        let current = self.ports.secrets.get(team, id).await?;
        let linked = self.ports.locations.linked_to_secret(team, id).await?;
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
            self.ports.secrets.update(&next, expected, &audit).await?;
            return Ok(next);
        };
        next.credentials_version = expected + 1;
        next.credentials_updated_at = now;
        let key = credential_key(&next);
        self.ports
            .credential_store
            .put(&key, next.credentials_version, &credentials.to_payload())
            .await?;
        let audit = self.secret_event(subject, ctx, AuditAction::Rotate, &next, Outcome::Success);
        if let Err(error) = self.ports.secrets.update(&next, expected, &audit).await {
            self.discard_version(&key, next.credentials_version).await;
            return Err(error.into());
        }
        if let Err(error) = self.ports.credential_store.prune(&key, next.credentials_version).await {
            tracing::warn!(%key, keep = next.credentials_version, %error, "could not prune old credential versions; left for `custodian gc`");
        }
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
        let current = self.ports.secrets.get(team, id).await?;
        let audit = self.secret_event(subject, ctx, AuditAction::Delete, &current, Outcome::Success);
        let deleted = self.ports.secrets.delete(team, id, &audit).await?;
        if deleted.storage == SecretStorage::Managed {
            let key = credential_key(&deleted);
            if let Err(error) = self.ports.credential_store.delete_all(&key).await {
                tracing::error!(%key, %error, "could not remove a deleted secret's credentials; left for `custodian gc`");
            }
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
        let secret = self.ports.secrets.get(team, id).await?;
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
        let secret = self.ports.secrets.get(team, secret_id).await?;
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
                let provider = self
                    .ports
                    .vault_providers
                    .get(&connection.vault_type())
                    .ok_or_else(|| {
                        CoreError::Internal(format!(
                            "no provider is configured for vault type {}",
                            connection.vault_type()
                        ))
                    })?;
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
    async fn vault_access(&self, connection: &VaultConnection) -> Result<VaultAccess, CoreError> {
        let key = CredentialKey {
            team_id: connection.team_id,
            kind: CredentialKind::VaultConnection,
            record_id: connection.id.as_uuid(),
        };
        let secret = self.ports.credential_store.get(&key, connection.secret_version).await?;
        Ok(VaultAccess {
            connection_id: connection.id,
            settings: connection.settings.clone(),
            secret: VaultSecret::from_stored(secret),
        })
    }
}
