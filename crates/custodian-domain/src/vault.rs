//! Vault connections and field mappings into a team's own vault.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::enums::{AuthMethod, CredentialField, VaultType};
use crate::error::{FieldError, ValidationErrors, kind};
use crate::text::{Description, Name, bounded};

/// A mapping as it arrives: which credential field, and where it lives in the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFieldMapping {
    pub field_name: String,
    pub reference: String,
}

/// A checked reference into a vault (`op://…`, a Doppler name, an Infisical key path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultReference(String);

impl VaultReference {
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(vault_type: VaultType, value: &str) -> Result<Self, String> {
        if value.trim().is_empty() {
            return Err("must not be empty or only whitespace".into());
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if value.trim() != value {
            return Err("must not start or end with whitespace".into());
        }
        if value.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        match vault_type {
            VaultType::OnePassword => check_op_reference(value)?,
            VaultType::Doppler => check_doppler_name(value)?,
            VaultType::Infisical => check_infisical_key_path(value)?,
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VaultReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn op_segment_ok(s: &str) -> bool {
    !s.trim().is_empty()
        && s.trim() == s
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'))
}

/// `op://vault/item[/section]/field`, optionally followed by `?query`.
fn check_op_reference(value: &str) -> Result<(), String> {
    const RULE: &str = "must be a 1Password secret reference op://vault/item[/section]/field";
    let rest = value.strip_prefix("op://").ok_or_else(|| RULE.to_owned())?;
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    let segments: Vec<&str> = path.split('/').collect();
    if !(3..=4).contains(&segments.len()) || !segments.iter().all(|s| op_segment_ok(s)) {
        return Err(RULE.to_owned());
    }
    Ok(())
}

/// Doppler secret names: `^[A-Z_][A-Z0-9_]*$`.
fn check_doppler_name(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        Ok(())
    } else {
        Err("must be a Doppler secret name: uppercase letters, digits and '_', not starting with a digit".into())
    }
}

/// An Infisical key, optionally under a `/`-separated folder path (`/aws/ACCESS_KEY`).
fn check_infisical_key_path(value: &str) -> Result<(), String> {
    let path = value.strip_prefix('/').unwrap_or(value);
    let ok = !path.is_empty()
        && path.split('/').all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err("must be an Infisical secret key, optionally with a folder path (/folder/KEY)".into())
    }
}

/// One credential field and where the vault keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    pub field: CredentialField,
    pub reference: VaultReference,
}

/// Exactly one mapping per required field of an auth method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMappings(Vec<FieldMapping>);

impl FieldMappings {
    /// Check `raw` for `method` in a vault of `vault_type`. Paths are relative to the list:
    /// `[i, "field_name"]`, `[i, "reference"]`, or `[]` for a field that has no mapping.
    pub fn parse(
        vault_type: VaultType,
        method: AuthMethod,
        raw: Vec<RawFieldMapping>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let expected = method.credential_fields();
        let mut mappings: Vec<FieldMapping> = Vec::with_capacity(raw.len());
        let mut named: Vec<CredentialField> = Vec::new();
        for (i, item) in raw.into_iter().enumerate() {
            let idx = i.to_string();
            let field = match item
                .field_name
                .parse::<CredentialField>()
                .ok()
                .filter(|f| expected.contains(f))
            {
                Some(f) if named.contains(&f) => {
                    errors.push(FieldError::new(
                        &[&idx, "field_name"],
                        kind::DUPLICATE,
                        format!("{f} is mapped more than once"),
                    ));
                    None
                }
                Some(f) => {
                    named.push(f);
                    Some(f)
                }
                None => {
                    let names: Vec<&str> = expected.iter().map(|f| f.as_str()).collect();
                    errors.push(FieldError::new(
                        &[&idx, "field_name"],
                        kind::UNKNOWN_FIELD,
                        format!("is not a credential field of {method}; expected: {}", names.join(", ")),
                    ));
                    None
                }
            };
            let reference = VaultReference::parse(vault_type, &item.reference)
                .map_err(|msg| {
                    let k = if item.reference.trim().is_empty() {
                        kind::BLANK
                    } else if item.reference.chars().count() > VaultReference::MAX_CHARS {
                        kind::TOO_LONG
                    } else if item.reference.trim() != item.reference {
                        kind::WHITESPACE
                    } else {
                        kind::INVALID_FORMAT
                    };
                    errors.push(FieldError::new(&[&idx, "reference"], k, msg));
                })
                .ok();
            if let (Some(field), Some(reference)) = (field, reference) {
                mappings.push(FieldMapping { field, reference });
            }
        }
        for field in expected {
            if !named.contains(field) {
                errors.push(FieldError::new(
                    &[],
                    kind::MISSING,
                    format!("needs a mapping for {field} (auth method {method})"),
                ));
            }
        }
        errors.finish(|| {
            mappings.sort_by_key(|m| expected.iter().position(|e| *e == m.field));
            Self(mappings)
        })
    }

    /// Rebuild from stored mappings without re-checking (the store only holds checked ones).
    pub fn from_stored(mappings: Vec<FieldMapping>) -> Self {
        Self(mappings)
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldMapping> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[FieldMapping] {
        &self.0
    }
}

/// A vault connection as it arrives. Secret settings are `SecretString` already.
#[derive(Debug, Default)]
pub struct VaultConnectionInput {
    pub name: Option<String>,
    pub vault_type: Option<String>,
    pub description: Option<String>,
    pub access_token: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub project: Option<String>,
    pub config: Option<String>,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub secret_path: Option<String>,
    /// Infisical only: a self-hosted instance's URL instead of the deployment's.
    pub api_url: Option<String>,
}

/// The settings of a vault connection that are not secret (returned by the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultSettings {
    OnePassword,
    Doppler {
        project: String,
        config: String,
    },
    Infisical {
        client_id: String,
        project_id: String,
        environment: String,
        secret_path: String,
        /// A self-hosted instance (`https://…`); `None`: the deployment's Infisical.
        api_url: Option<String>,
    },
}

impl VaultSettings {
    pub fn vault_type(&self) -> VaultType {
        match self {
            VaultSettings::OnePassword => VaultType::OnePassword,
            VaultSettings::Doppler { .. } => VaultType::Doppler,
            VaultSettings::Infisical { .. } => VaultType::Infisical,
        }
    }
}

/// The secret setting of a vault connection, kept in the credential store:
/// the access token (1Password, Doppler) or the client secret (Infisical).
#[derive(Clone)]
pub struct VaultSecret(SecretString);

impl fmt::Debug for VaultSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultSecret([REDACTED])")
    }
}

impl VaultSecret {
    pub fn from_stored(value: SecretString) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &SecretString {
        &self.0
    }
}

/// A checked request to create a vault connection.
#[derive(Debug, Clone)]
pub struct NewVaultConnection {
    pub name: Name,
    pub description: Option<Description>,
    pub settings: VaultSettings,
    pub secret: VaultSecret,
}

fn required_text(errors: &mut ValidationErrors, loc: &str, value: Option<&String>, max: usize) -> Option<String> {
    match value {
        None => {
            errors.push(FieldError::new(
                &[loc],
                kind::MISSING,
                "is required for this vault type",
            ));
            None
        }
        Some(v) => errors.check(bounded(loc, v, 1, max).map(|()| v.clone())),
    }
}

fn check_token(loc: &str, token: &SecretString, prefix: &str, what: &str) -> Result<(), FieldError> {
    let value = token.expose_secret();
    bounded(loc, value, 1, 4096)?;
    if !value.starts_with(prefix) {
        return Err(FieldError::new(
            &[loc],
            kind::INVALID_FORMAT,
            format!("must be a {what} (starts with \"{prefix}\")"),
        ));
    }
    if value.len() == prefix.len() || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FieldError::new(
            &[loc],
            kind::INVALID_FORMAT,
            format!("must be a {what}"),
        ));
    }
    Ok(())
}

impl NewVaultConnection {
    /// Check a create request: name 1–255, description ≤ 2000, the settings of its vault
    /// type with the bounds of the vault-connection reference, and no setting that belongs to another vault type.
    pub fn parse(input: VaultConnectionInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = match &input.name {
            Some(n) => errors.check(Name::parse_at("name", n.clone())),
            None => {
                errors.push(FieldError::new(&["name"], kind::MISSING, "is required"));
                None
            }
        };
        let description = input
            .description
            .as_ref()
            .and_then(|d| errors.check(Description::parse_at("description", d.clone())));
        let vault_type = match input.vault_type.as_deref() {
            None => {
                errors.push(FieldError::new(&["vault_type"], kind::MISSING, "is required"));
                None
            }
            Some(v) => errors.check(
                v.parse::<VaultType>()
                    .map_err(|e| FieldError::new(&["vault_type"], kind::INVALID_ENUM, e.to_string())),
            ),
        };
        let Some(vault_type) = vault_type else {
            return Err(errors);
        };

        let present: [(&str, bool); 9] = [
            ("access_token", input.access_token.is_some()),
            ("client_id", input.client_id.is_some()),
            ("client_secret", input.client_secret.is_some()),
            ("project", input.project.is_some()),
            ("config", input.config.is_some()),
            ("project_id", input.project_id.is_some()),
            ("environment", input.environment.is_some()),
            ("secret_path", input.secret_path.is_some()),
            ("api_url", input.api_url.is_some()),
        ];
        let allowed: &[&str] = match vault_type {
            VaultType::OnePassword => &["access_token"],
            VaultType::Doppler => &["access_token", "project", "config"],
            VaultType::Infisical => &[
                "client_id",
                "client_secret",
                "project_id",
                "environment",
                "secret_path",
                "api_url",
            ],
        };
        for (field, is_present) in present {
            if is_present && !allowed.contains(&field) {
                errors.push(FieldError::new(
                    &[field],
                    kind::NOT_ALLOWED,
                    format!("does not apply to vault type {vault_type}"),
                ));
            }
        }

        let token = |errors: &mut ValidationErrors, prefix: &str, what: &str| match &input.access_token {
            None => {
                errors.push(FieldError::new(
                    &["access_token"],
                    kind::MISSING,
                    "is required for this vault type",
                ));
                None
            }
            Some(t) => errors.check(check_token("access_token", t, prefix, what).map(|()| VaultSecret(t.clone()))),
        };
        let parsed = match vault_type {
            VaultType::OnePassword => {
                token(&mut errors, "ops_", "1Password service account token").map(|s| (VaultSettings::OnePassword, s))
            }
            VaultType::Doppler => {
                let secret = token(&mut errors, "dp.st.", "Doppler service token");
                let project = required_text(&mut errors, "project", input.project.as_ref(), 255);
                let config = required_text(&mut errors, "config", input.config.as_ref(), 255);
                match (secret, project, config) {
                    (Some(s), Some(project), Some(config)) => Some((VaultSettings::Doppler { project, config }, s)),
                    _ => None,
                }
            }
            VaultType::Infisical => {
                let client_id = required_text(&mut errors, "client_id", input.client_id.as_ref(), 255);
                let secret = match &input.client_secret {
                    None => {
                        errors.push(FieldError::new(
                            &["client_secret"],
                            kind::MISSING,
                            "is required for this vault type",
                        ));
                        None
                    }
                    Some(s) => errors
                        .check(bounded("client_secret", s.expose_secret(), 1, 1000).map(|()| VaultSecret(s.clone()))),
                };
                let project_id = required_text(&mut errors, "project_id", input.project_id.as_ref(), 255);
                let environment = required_text(&mut errors, "environment", input.environment.as_ref(), 100);
                let secret_path = errors.check(parse_secret_path(input.secret_path.as_deref()));
                let api_url = match input.api_url.as_deref() {
                    None => Some(None),
                    Some(url) => errors.check(parse_instance_url(url)).map(Some),
                };
                match (client_id, secret, project_id, environment, secret_path, api_url) {
                    (
                        Some(client_id),
                        Some(s),
                        Some(project_id),
                        Some(environment),
                        Some(secret_path),
                        Some(api_url),
                    ) => Some((
                        VaultSettings::Infisical {
                            client_id,
                            project_id,
                            environment,
                            secret_path,
                            api_url,
                        },
                        s,
                    )),
                    _ => None,
                }
            }
        };
        match (name, parsed) {
            (Some(name), Some((settings, secret))) if errors.is_empty() => Ok(Self {
                name,
                description,
                settings,
                secret,
            }),
            _ => Err(errors),
        }
    }
}

/// A self-hosted Infisical's URL: an absolute `https://` URL (plain `http://` too, for an
/// instance inside the network; whether the server may call it is the Infisical adapter's
/// check), at most 2048 characters, with no user name, password, query or fragment.
/// Whether it points at a loopback, private or link-local address is checked when it is
/// called, against what the deployment allows.
fn parse_instance_url(value: &str) -> Result<String, FieldError> {
    let loc = "api_url";
    bounded(loc, value, 1, 2048)?;
    let url = url::Url::parse(value)
        .map_err(|e| FieldError::new(&[loc], kind::INVALID_FORMAT, format!("must be a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(FieldError::new(
            &[loc],
            kind::INVALID_FORMAT,
            "must be an https:// URL of an Infisical instance",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(FieldError::new(
            &[loc],
            kind::INVALID_FORMAT,
            "must hold no user name, password, query or fragment",
        ));
    }
    Ok(value.to_owned())
}

/// Infisical `secret_path`: at most 500 characters, starts with `/`, default `/`.
fn parse_secret_path(value: Option<&str>) -> Result<String, FieldError> {
    let Some(path) = value else {
        return Ok("/".to_owned());
    };
    if path.chars().count() > 500 {
        return Err(FieldError::new(
            &["secret_path"],
            kind::TOO_LONG,
            "must be at most 500 characters",
        ));
    }
    if !path.starts_with('/') || path.contains("//") || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(
            &["secret_path"],
            kind::INVALID_FORMAT,
            "must be a folder path starting with '/' (e.g. /aws)",
        ));
    }
    Ok(path.to_owned())
}

/// New secret settings for a vault connection (`POST …/{id}/rotate`).
#[derive(Debug, Clone)]
pub struct VaultRotation {
    /// The new `client_id` (Infisical only); other settings never change.
    pub client_id: Option<String>,
    pub secret: VaultSecret,
}

impl VaultRotation {
    /// A new `access_token` (1Password, Doppler), or a new `client_id` + `client_secret` (Infisical).
    pub fn parse(
        vault_type: VaultType,
        access_token: Option<SecretString>,
        client_id: Option<String>,
        client_secret: Option<SecretString>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let rotation = match vault_type {
            VaultType::OnePassword | VaultType::Doppler => {
                for (field, present) in [
                    ("client_id", client_id.is_some()),
                    ("client_secret", client_secret.is_some()),
                ] {
                    if present {
                        errors.push(FieldError::new(
                            &[field],
                            kind::NOT_ALLOWED,
                            format!("does not apply to vault type {vault_type}"),
                        ));
                    }
                }
                let (prefix, what) = if vault_type == VaultType::Doppler {
                    ("dp.st.", "Doppler service token")
                } else {
                    ("ops_", "1Password service account token")
                };
                match access_token {
                    None => {
                        errors.push(FieldError::new(
                            &["access_token"],
                            kind::MISSING,
                            "is required to rotate this connection",
                        ));
                        None
                    }
                    Some(t) => errors.check(check_token("access_token", &t, prefix, what).map(|()| Self {
                        client_id: None,
                        secret: VaultSecret(t),
                    })),
                }
            }
            VaultType::Infisical => {
                if access_token.is_some() {
                    errors.push(FieldError::new(
                        &["access_token"],
                        kind::NOT_ALLOWED,
                        "does not apply to vault type infisical",
                    ));
                }
                let id = required_text(&mut errors, "client_id", client_id.as_ref(), 255);
                let secret = match client_secret {
                    None => {
                        errors.push(FieldError::new(
                            &["client_secret"],
                            kind::MISSING,
                            "is required to rotate this connection",
                        ));
                        None
                    }
                    Some(s) => {
                        errors.check(bounded("client_secret", s.expose_secret(), 1, 1000).map(|()| VaultSecret(s)))
                    }
                };
                match (id, secret) {
                    (Some(id), Some(secret)) => Some(Self {
                        client_id: Some(id),
                        secret,
                    }),
                    _ => None,
                }
            }
        };
        match rotation {
            Some(r) if errors.is_empty() => Ok(r),
            _ => Err(errors),
        }
    }
}

/// A vault connection's metadata. Its secret setting lives in the credential store, under
/// the connection's id, at `secret_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConnection {
    pub id: crate::ids::VaultConnectionId,
    pub team_id: crate::ids::TeamId,
    pub name: Name,
    pub description: Option<Description>,
    pub settings: VaultSettings,
    pub secret_version: i64,
    pub last_verified_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: crate::ids::SubjectId,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub updated_by: crate::ids::SubjectId,
}

impl VaultType {
    /// The request field that carries a connection's secret setting: the token of 1Password
    /// and Doppler, the client secret of Infisical's machine identity.
    pub const fn secret_field(self) -> &'static str {
        match self {
            VaultType::OnePassword | VaultType::Doppler => "access_token",
            VaultType::Infisical => "client_secret",
        }
    }
}

impl VaultConnection {
    pub fn vault_type(&self) -> VaultType {
        self.settings.vault_type()
    }
}
