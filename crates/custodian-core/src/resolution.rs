//! Reading credentials back: resolving a storage secret's credentials for a caller and
//! verifying them, for a storage secret, a location or a vault connection. Managed
//! credentials come from the credential store; external ones from the team's vault, through
//! the secret's field mappings and the vault connection's own secret. Every resolution and
//! verification is recorded in the audit trail.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditAction, Credentials, Outcome, RequestContext, ResourceType, SecretId, SecretStorage, StorageSecret, Subject,
    TeamId, VaultConnection, VaultConnectionId, VaultReference, VaultSecret, VaultType,
};
use custodian_ports::{Freshness, RepoError, VaultAccess, VaultError, VaultProvider};
use secrecy::SecretString;

use crate::authz::Action;
use crate::credential_writes::{connection_key, credential_key};
use crate::{CoreError, Custodian};

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

/// How the audit trail names `secret`.
fn secret_resource(secret: &StorageSecret) -> (ResourceType, Option<uuid::Uuid>, Option<&str>) {
    (
        ResourceType::StorageSecret,
        Some(secret.id.as_uuid()),
        Some(secret.name.as_str()),
    )
}

impl Custodian {
    /// The vault connection `id` of `team`, or `None` when it does not exist there.
    pub(crate) async fn find_vault_connection(
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
        self.authorize_without_team_read(subject, team, Action::VerifySecret)
            .await?;
        let secret = self.ports.repos.secrets.get(team, id).await?;
        self.verify_and_record(subject, ctx, &secret, secret_resource(&secret))
            .await
    }

    /// Check `secret`'s credentials and record the verification of `resource`.
    pub(crate) async fn verify_and_record(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        secret: &StorageSecret,
        resource: (ResourceType, Option<uuid::Uuid>, Option<&str>),
    ) -> Result<Verification, CoreError> {
        let loaded = self.load_credentials(secret, Freshness::Fresh).await;
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
        if let Err(error) = self
            .authorize_without_team_read(subject, team, Action::ResolveCredentials)
            .await
        {
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
        let resolved = self.load_credentials(&secret, Freshness::MayRevalidate).await;
        let outcome = if resolved.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = self.audit_event(
            subject,
            ctx,
            Some(team),
            AuditAction::Resolve,
            secret_resource(&secret),
            outcome,
        );
        event.detail = resolved.as_ref().err().map(|e| e.code().to_owned());
        self.record(&event).await?;
        resolved
    }

    /// The secret's current credentials, checked against its auth method.
    async fn load_credentials(&self, secret: &StorageSecret, freshness: Freshness) -> Result<Credentials, CoreError> {
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
                    .ok_or_else(|| CoreError::internal("a secret's vault connection is missing"))?;
                let access = self.vault_access(&connection).await?;
                let provider = self.vault_provider(connection.vault_type())?;
                let references: Vec<VaultReference> = field_mappings.iter().map(|m| m.reference.clone()).collect();
                let values = match freshness {
                    Freshness::MayRevalidate => self.vault_cache.fetch(provider, &access, &references).await?,
                    Freshness::Fresh => provider.fetch(&access, &references, Freshness::Fresh).await?,
                };
                if values.len() != references.len() {
                    return Err(CoreError::internal(format!(
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
            revision: connection.secret_version,
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
mod tests;
