//! Storage secrets: the create rule and the update rules.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::credentials::Credentials;
use crate::enums::{AuthMethod, SecretType, StorageMode, VaultType};
use crate::error::{FieldError, ValidationErrors, kind};
use crate::ids::{LocationId, SecretId, SubjectId, TeamId, VaultConnectionId};
use crate::text::{Description, Name};
use crate::vault::{FieldMappings, RawFieldMapping};

/// Where a stored secret's credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretStorage {
    /// In the configured credential store, under the secret's id, at `StorageSecret::credentials_version`.
    Managed,
    /// In the team's vault, through a vault connection.
    External {
        vault_connection_id: VaultConnectionId,
        field_mappings: FieldMappings,
    },
}

impl SecretStorage {
    pub fn mode(&self) -> StorageMode {
        match self {
            SecretStorage::Managed => StorageMode::Managed,
            SecretStorage::External { .. } => StorageMode::External,
        }
    }
}

/// A storage secret's metadata. Credentials are never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSecret {
    pub id: SecretId,
    pub team_id: TeamId,
    pub name: Name,
    pub description: Option<Description>,
    pub secret_type: SecretType,
    pub auth_method: AuthMethod,
    pub storage: SecretStorage,
    /// Version of the credentials (managed: the credential-store version; external: bumped
    /// whenever the field mappings change). Starts at 1.
    pub credentials_version: i64,
    pub credentials_updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub created_by: SubjectId,
    pub updated_at: DateTime<Utc>,
    pub updated_by: SubjectId,
}

/// A create request as it arrives. `None` means absent or `null`.
#[derive(Debug, Default)]
pub struct CreateSecretInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub secret_type: Option<String>,
    pub auth_method: Option<String>,
    pub credentials: Option<Vec<(String, SecretString)>>,
    pub vault_connection_id: Option<String>,
    pub field_mappings: Option<Vec<RawFieldMapping>>,
}

/// Where a new secret's credentials will be.
#[derive(Debug, Clone)]
pub enum NewSecretStorage {
    Managed(Credentials),
    External {
        vault_connection_id: VaultConnectionId,
        field_mappings: FieldMappings,
    },
}

/// A checked create request.
#[derive(Debug, Clone)]
pub struct NewStorageSecret {
    pub name: Name,
    pub description: Option<Description>,
    pub secret_type: SecretType,
    pub auth_method: AuthMethod,
    pub storage: NewSecretStorage,
}

/// A vault connection that the request names and that exists in the secret's team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownVault {
    pub id: VaultConnectionId,
    pub vault_type: VaultType,
}

pub(crate) fn parse_enum<T: std::str::FromStr<Err = crate::enums::UnknownVariant>>(
    errors: &mut ValidationErrors,
    loc: &str,
    value: Option<&str>,
    required: bool,
) -> Option<T> {
    match value {
        None if required => {
            errors.push(FieldError::new(&[loc], kind::MISSING, "is required"));
            None
        }
        None => None,
        Some(v) => errors.check(
            v.parse::<T>()
                .map_err(|e| FieldError::new(&[loc], kind::INVALID_ENUM, e.to_string())),
        ),
    }
}

fn pair_error(loc: &str, secret_type: SecretType, method: AuthMethod) -> FieldError {
    let valid: Vec<&str> = secret_type.auth_methods().iter().map(|m| m.as_str()).collect();
    FieldError::new(
        &[loc],
        kind::INVALID_PAIR,
        format!(
            "auth method {method} is not valid for secret type {secret_type}; valid: {}",
            valid.join(", ")
        ),
    )
}

/// Empty collections count as absent: `"credentials": {}` next to a vault reference is
/// what the published API reference's own example sends.
fn given<T>(value: Option<Vec<T>>) -> Option<Vec<T>> {
    value.filter(|v| !v.is_empty())
}

impl NewStorageSecret {
    /// Check a create request. `vault` is the connection named by `vault_connection_id`,
    /// looked up in the team by the caller (`None` when absent, malformed or not found).
    ///
    /// Rules: name 1–255, description ≤ 2000, a valid (secret_type, auth_method) pair,
    /// and exactly one storage mode — `credentials`, or `vault_connection_id` together with
    /// `field_mappings` — each checked against the auth method (and vault type).
    pub fn parse(
        input: CreateSecretInput,
        vault: Option<KnownVault>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = match input.name {
            Some(n) => errors.check(Name::parse_at("name", n)),
            None => {
                errors.push(FieldError::new(&["name"], kind::MISSING, "is required"));
                None
            }
        };
        let description = input
            .description
            .and_then(|d| errors.check(Description::parse_at("description", d)));
        let secret_type: Option<SecretType> =
            parse_enum(&mut errors, "secret_type", input.secret_type.as_deref(), true);
        let auth_method: Option<AuthMethod> =
            parse_enum(&mut errors, "auth_method", input.auth_method.as_deref(), true);
        let method = match (secret_type, auth_method) {
            (Some(t), Some(m)) if !t.accepts(m) => {
                errors.push(pair_error("auth_method", t, m));
                None
            }
            (_, m) => m,
        };

        let credentials = given(input.credentials);
        let mappings = given(input.field_mappings);
        let storage = match (credentials, input.vault_connection_id, mappings) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                errors.push(FieldError::new(
                    &["credentials"],
                    kind::NOT_ALLOWED,
                    "give either credentials or vault_connection_id with field_mappings, not both",
                ));
                None
            }
            (None, None, None) => {
                errors.push(FieldError::new(
                    &["credentials"],
                    kind::MISSING,
                    "give credentials, or vault_connection_id with field_mappings",
                ));
                None
            }
            (Some(raw), None, None) => method
                .and_then(|m| errors.collect(Some("credentials"), Credentials::parse(m, raw, now)))
                .map(NewSecretStorage::Managed),
            (None, vault_id, raw_mappings) => {
                if raw_mappings.is_none() {
                    errors.push(FieldError::new(
                        &["field_mappings"],
                        kind::MISSING,
                        "is required with vault_connection_id",
                    ));
                }
                let known = match (vault_id, vault) {
                    (None, _) => {
                        errors.push(FieldError::new(
                            &["vault_connection_id"],
                            kind::MISSING,
                            "is required with field_mappings",
                        ));
                        None
                    }
                    (Some(_), None) => {
                        errors.push(FieldError::new(
                            &["vault_connection_id"],
                            kind::NOT_FOUND,
                            "must be the id of a vault connection of this team",
                        ));
                        None
                    }
                    (Some(_), Some(v)) => Some(v),
                };
                match (known, method, raw_mappings) {
                    (Some(v), Some(m), Some(raw)) => errors
                        .collect(Some("field_mappings"), FieldMappings::parse(v.vault_type, m, raw))
                        .map(|field_mappings| NewSecretStorage::External {
                            vault_connection_id: v.id,
                            field_mappings,
                        }),
                    _ => None,
                }
            }
        };
        match (name, secret_type, method, storage) {
            (Some(name), Some(secret_type), Some(auth_method), Some(storage)) if errors.is_empty() => Ok(Self {
                name,
                description,
                secret_type,
                auth_method,
                storage,
            }),
            _ => Err(errors),
        }
    }
}

/// An update request as it arrives. `description: Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct UpdateSecretInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub secret_type: Option<String>,
    pub auth_method: Option<String>,
    pub credentials: Option<Vec<(String, SecretString)>>,
    pub field_mappings: Option<Vec<RawFieldMapping>>,
}

/// A location linked to a secret, as far as the update rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedLocation {
    pub id: LocationId,
    pub name: String,
    pub location_type: SecretType,
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateRejection {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Changing `secret_type` while linked locations have another type (409).
    #[error("secret_type cannot change to {secret_type}: {} linked location(s) have another type", .locations.len())]
    LocationTypeMismatch {
        secret_type: SecretType,
        locations: Vec<LinkedLocation>,
    },
}

/// A checked update. Only the fields that change are `Some`.
#[derive(Debug, Clone, Default)]
pub struct SecretUpdate {
    pub name: Option<Name>,
    pub description: Option<Option<Description>>,
    pub secret_type: Option<SecretType>,
    pub auth_method: Option<AuthMethod>,
    /// New credentials (managed secrets): a rotation.
    pub credentials: Option<Credentials>,
    /// New field mappings (external secrets).
    pub field_mappings: Option<FieldMappings>,
}

impl SecretUpdate {
    /// Check an update against the secret as it is now:
    /// - the resulting (secret_type, auth_method) pair must be valid;
    /// - `credentials` are checked against the new or existing auth method, `field_mappings`
    ///   against it and the connection's `vault_type`;
    /// - when the auth method changes to one with other fields, new credentials (managed) or
    ///   field mappings (external) must come in the same request;
    /// - external secrets reject `credentials`, managed ones reject `field_mappings`, and
    ///   both together are rejected;
    /// - changing `secret_type` needs every linked location to have that type (409).
    pub fn parse(
        input: UpdateSecretInput,
        current: &StorageSecret,
        linked: &[LinkedLocation],
        vault_type: Option<VaultType>,
        now: DateTime<Utc>,
    ) -> Result<Self, UpdateRejection> {
        let mut errors = ValidationErrors::new();
        let name = input.name.and_then(|n| errors.check(Name::parse_at("name", n)));
        let description = Description::parse_patch(&mut errors, input.description);
        let new_type: Option<SecretType> = parse_enum(&mut errors, "secret_type", input.secret_type.as_deref(), false);
        let new_method: Option<AuthMethod> =
            parse_enum(&mut errors, "auth_method", input.auth_method.as_deref(), false);
        let type_failed = input.secret_type.is_some() && new_type.is_none();
        let method_failed = input.auth_method.is_some() && new_method.is_none();

        let secret_type = new_type.unwrap_or(current.secret_type);
        let method = new_method.unwrap_or(current.auth_method);
        let pair_ok = secret_type.accepts(method);
        if !pair_ok && !type_failed && !method_failed {
            let loc = if new_method.is_some() {
                "auth_method"
            } else {
                "secret_type"
            };
            errors.push(pair_error(loc, secret_type, method));
        }

        let external = matches!(current.storage, SecretStorage::External { .. });
        // As in create (docs/DECISIONS.md): an empty object or list counts as absent, so
        // the update reference's own example (`"credentials": {}` next to `field_mappings`) is one mode.
        let credentials_raw = given(input.credentials);
        let mappings_raw = given(input.field_mappings);
        if credentials_raw.is_some() && mappings_raw.is_some() {
            errors.push(FieldError::new(
                &["field_mappings"],
                kind::NOT_ALLOWED,
                "cannot be given together with credentials",
            ));
        }
        if external && credentials_raw.is_some() {
            errors.push(FieldError::new(
                &["credentials"],
                kind::NOT_ALLOWED,
                "an external vault secret's credentials are managed in the vault; update field_mappings instead",
            ));
        }
        if !external && mappings_raw.is_some() {
            errors.push(FieldError::new(
                &["field_mappings"],
                kind::NOT_ALLOWED,
                "a managed secret has no field mappings; send credentials to rotate it",
            ));
        }
        let fields_change = method.credential_fields() != current.auth_method.credential_fields();
        if pair_ok && fields_change {
            let names: Vec<&str> = method.credential_fields().iter().map(|f| f.as_str()).collect();
            if !external && credentials_raw.is_none() {
                errors.push(FieldError::new(
                    &["credentials"],
                    kind::MISSING,
                    format!(
                        "auth method {method} needs other fields ({}); send new credentials in the same request",
                        names.join(", ")
                    ),
                ));
            }
            if external && mappings_raw.is_none() {
                errors.push(FieldError::new(
                    &["field_mappings"],
                    kind::MISSING,
                    format!(
                        "auth method {method} needs other fields ({}); send new field_mappings in the same request",
                        names.join(", ")
                    ),
                ));
            }
        }
        let method_usable = pair_ok && !method_failed;
        let credentials = match credentials_raw {
            Some(raw) if !external && method_usable => {
                errors.collect(Some("credentials"), Credentials::parse(method, raw, now))
            }
            _ => None,
        };
        let field_mappings = match (mappings_raw, vault_type) {
            (Some(raw), Some(vt)) if external && method_usable => {
                errors.collect(Some("field_mappings"), FieldMappings::parse(vt, method, raw))
            }
            // Never accept mappings unchecked: without the connection's vault type their
            // references cannot be checked, and dropping them would leave the old ones
            // under a changed auth method.
            (Some(_), None) if external && method_usable => {
                errors.push(FieldError::new(
                    &["field_mappings"],
                    kind::NOT_FOUND,
                    "the secret's vault connection was not found; its references cannot be checked",
                ));
                None
            }
            _ => None,
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        if let Some(t) = new_type.filter(|t| *t != current.secret_type) {
            let mismatched: Vec<LinkedLocation> = linked.iter().filter(|l| l.location_type != t).cloned().collect();
            if !mismatched.is_empty() {
                return Err(UpdateRejection::LocationTypeMismatch {
                    secret_type: t,
                    locations: mismatched,
                });
            }
        }
        Ok(Self {
            name,
            description,
            secret_type: new_type,
            auth_method: new_method,
            credentials,
            field_mappings,
        })
    }
}
