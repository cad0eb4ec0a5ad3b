//! Storage secrets: create, read, update (with credential rotation) and delete. Managed
//! credentials follow the credential-write protocol (`credential_writes`); reading them
//! back is resolution's (`resolution`).

use custodian_domain::{
    AuditAction, AuditEvent, CreateSecretInput, KnownVault, LinkedLocation, NewSecretStorage, NewStorageSecret,
    Outcome, RequestContext, ResourceType, SecretId, SecretStorage, SecretUpdate, StorageSecret, Subject, TeamId,
    UpdateRejection, UpdateSecretInput, VaultConnection, VaultConnectionId,
};
use custodian_ports::{CleanupTask, Page, Paged, SecretFilter};

use crate::authz::Action;
use crate::credential_writes::{Attempt, credential_key};
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

    /// Create a storage secret (admin).
    ///
    /// Managed: when the credential store keeps its values in the repositories' database,
    /// the credentials are written as version 1 in the transaction of the row (checked
    /// against the team's storage-secret limit) and its audit event. Otherwise they are
    /// written to the store first, then the row is committed; when the commit fails,
    /// version 1 is removed again. External: the vault connection must exist in the team.
    pub async fn create_secret(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        input: CreateSecretInput,
    ) -> Result<StorageSecret, CoreError> {
        self.authorize_without_team_read(subject, team, Action::WriteSecrets)
            .await?;
        // The team's tier; `NotFound` for a team that does not exist.
        let tier = self.team_tier(team).await?;
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
            let payload = credentials.to_payload();
            let key = credential_key(&secret);
            let value = (&payload, &["credentials"][..]);
            match self.seal_for_commit(&key, secret.credentials_version, value).await? {
                // The credentials, the row and its audit event in one transaction.
                Some(sealed) => {
                    self.ports
                        .repos
                        .secrets
                        .create_with_credentials(&secret, limit, &audit, &sealed)
                        .await?
                }
                None => {
                    let commit = || self.ports.repos.secrets.create(&secret, limit, &audit);
                    self.store_then_commit(&key, secret.credentials_version, value, commit)
                        .await?
                }
            }
        } else {
            self.ports.repos.secrets.create(&secret, limit, &audit).await?;
        }
        Ok(secret)
    }

    /// A secret's details (viewer).
    pub async fn get_secret(&self, subject: &Subject, team: TeamId, id: SecretId) -> Result<SecretDetails, CoreError> {
        self.authorize_without_team_read(subject, team, Action::ReadSecrets)
            .await?;
        let (secret, locations) = self.ports.repos.secrets.get_with_locations(team, id).await?;
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

    /// Update a secret (admin) under the update rules.
    ///
    /// New credentials rotate a managed secret: version n+1 is written first, the row is
    /// committed only while it still points at version n, then older versions are pruned (a
    /// failure there is logged; the row already points at the new version). New field
    /// mappings of an external secret bump its version the same way, with nothing to store.
    /// When another change of the secret commits first, this one is made again over it
    /// (last writer wins, [`Custodian::last_writer_wins`]).
    pub async fn update_secret(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: SecretId,
        input: UpdateSecretInput,
    ) -> Result<StorageSecret, CoreError> {
        // Each attempt starts with the secret's lookup.
        self.authorize_without_team_read(subject, team, Action::WriteSecrets)
            .await?;
        self.last_writer_wins(|attempt| self.update_secret_once(subject, ctx, team, id, input.clone(), attempt))
            .await
    }

    /// One attempt of [`Custodian::update_secret`] over the secret as it is now.
    async fn update_secret_once(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: SecretId,
        input: UpdateSecretInput,
        attempt: Attempt,
    ) -> Result<StorageSecret, CoreError> {
        // The secret and the locations that use it, from one snapshot.
        let (current, linked) = self.ports.repos.secrets.get_with_locations(team, id).await?;
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
            if let SecretStorage::External {
                vault_connection_id, ..
            } = &next.storage
                && next.credentials_version != expected
            {
                // New mappings read other references: what the old ones read goes.
                self.vault_cache.invalidate(*vault_connection_id);
            }
            return Ok(next);
        };
        let key = credential_key(&next);
        next.credentials_version = self
            .store_next_version(&key, expected, (&credentials.to_payload(), &["credentials"]), attempt)
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
        self.authorize_without_team_read(subject, team, Action::WriteSecrets)
            .await?;
        let current = self.ports.repos.secrets.get(team, id).await?;
        let audit = self.secret_event(subject, ctx, AuditAction::Delete, &current, Outcome::Success);
        let deleted = self.ports.repos.secrets.delete(team, id, &audit).await?;
        if deleted.storage == SecretStorage::Managed {
            let key = credential_key(&deleted);
            self.clean_up_after_commit(&key, CleanupTask::DeleteAll).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
