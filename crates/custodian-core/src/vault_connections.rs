//! Vault connections: a team's link to its external vault. Their secret setting (access
//! token or client secret) lives in the credential store with the same ordering as a
//! managed secret's credentials.

use custodian_domain::{
    AuditAction, AuditEvent, Description, LimitKind, Name, NewVaultConnection, Outcome, RequestContext, ResourceType,
    Subject, TeamId, ValidationErrors, VaultConnection, VaultConnectionId, VaultConnectionInput, VaultRotation,
    VaultSettings,
};
use custodian_ports::{CleanupTask, Page, Paged};
use secrecy::SecretString;

use crate::authz::Action;
use crate::credential_writes::{Attempt, connection_key};
use crate::resolution::{Verification, VerificationFailure};
use crate::{CoreError, Custodian};

/// New secret settings for a vault connection, as they arrive (`POST …/{id}/rotate`).
#[derive(Debug, Default, Clone)]
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
        self.authorize_without_team_read(subject, team, Action::WriteVaultConnections)
            .await?;
        // The team's tier; `NotFound` for a team that does not exist.
        let tier = self.ports.repos.teams.get(team).await?.tier;
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
        let commit = || self.ports.repos.vault_connections.create(&connection, limit, &audit);
        let field = connection.vault_type().secret_field();
        self.store_then_commit(
            &connection_key(&connection),
            connection.secret_version,
            (new.secret.expose(), &[field]),
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
        self.authorize_without_team_read(subject, team, Action::ReadVaultConnections)
            .await?;
        let connection = self.ports.repos.vault_connections.get(team, id).await?;
        let count = self.ports.repos.vault_connections.secret_count(team, id).await?;
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
        Ok(self.ports.repos.vault_connections.list(team, page).await?)
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
        let description = Description::parse_patch(&mut errors, description);
        if !errors.is_empty() {
            return Err(errors.into());
        }
        self.last_writer_wins(|_| async {
            let current = self.ports.repos.vault_connections.get(team, id).await?;
            let mut next = current.clone();
            if let Some(name) = &name {
                next.name = name.clone();
            }
            if let Some(description) = &description {
                next.description = description.clone();
            }
            next.updated_at = self.now();
            next.updated_by = subject.id();
            let audit = self.connection_event(subject, ctx, AuditAction::Update, &next, Outcome::Success);
            self.ports
                .repos
                .vault_connections
                .update(&next, current.secret_version, &audit)
                .await?;
            self.vault_cache.invalidate(id);
            Ok(next)
        })
        .await
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
        let rotated = self
            .last_writer_wins(|attempt| {
                self.rotate_vault_connection_once(subject, ctx, team, id, input.clone(), attempt)
            })
            .await?;
        // Other replicas see the new revision in the row; this one drops what it holds now.
        self.vault_cache.invalidate(id);
        Ok(rotated)
    }

    /// One attempt of [`Custodian::rotate_vault_connection`] over the connection as it is.
    async fn rotate_vault_connection_once(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: VaultConnectionId,
        input: VaultRotationInput,
        attempt: Attempt,
    ) -> Result<VaultConnection, CoreError> {
        let current = self.ports.repos.vault_connections.get(team, id).await?;
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
            .store_next_version(
                &key,
                expected,
                (rotation.secret.expose(), &[next.vault_type().secret_field()]),
                attempt,
            )
            .await?;
        let audit = self.connection_event(subject, ctx, AuditAction::Rotate, &next, Outcome::Success);
        self.commit_or_discard(
            &key,
            next.secret_version,
            self.ports.repos.vault_connections.update(&next, expected, &audit),
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
        self.authorize_without_team_read(subject, team, Action::VerifyVaultConnection)
            .await?;
        let connection = self.ports.repos.vault_connections.get(team, id).await?;
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
                    .repos
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
        self.authorize_without_team_read(subject, team, Action::WriteVaultConnections)
            .await?;
        let current = self.ports.repos.vault_connections.get(team, id).await?;
        let audit = self.connection_event(subject, ctx, AuditAction::Delete, &current, Outcome::Success);
        let deleted = self.ports.repos.vault_connections.delete(team, id, &audit).await?;
        self.vault_cache.invalidate(id);
        let key = connection_key(&deleted);
        self.clean_up_after_commit(&key, CleanupTask::DeleteAll).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
