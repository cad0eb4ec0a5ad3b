//! Typed credentials of a storage secret, held as `secrecy` values from parsing on.
//!
//! Format checks follow the providers' documented formats where the provider's format is certain (Azure,
//! GCS); S3-style keys are only checked for presence and padding, since providers differ.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::enums::{AuthMethod, CredentialField};
use crate::error::{FieldError, ValidationErrors, kind};

/// The longest single credential value accepted (a GCS key file is about 2.4 KiB).
pub const MAX_CREDENTIAL_VALUE_CHARS: usize = 8192;

/// A complete, checked credential set for one auth method.
///
/// `Debug` names the method and the fields present, never a value.
#[derive(Clone)]
pub struct Credentials {
    method: AuthMethod,
    /// One entry per field of `method.credential_fields()`, in that order.
    values: Vec<(CredentialField, SecretString)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("auth_method", &self.method)
            .field("fields", &self.field_names())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parse raw `(field name, value)` pairs for `method`, as of `now` (SAS expiry).
    ///
    /// Reports every failing field at once, each at path `[field name]`: a missing field,
    /// a field the method does not take, an empty or whitespace-padded value, a value
    /// over [`MAX_CREDENTIAL_VALUE_CHARS`], and the format checks of the method.
    pub fn parse(
        method: AuthMethod,
        raw: Vec<(String, SecretString)>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let expected = method.credential_fields();
        let mut values: Vec<(CredentialField, SecretString)> = Vec::with_capacity(expected.len());
        // Every field named so far, valid or not: a repeat is a duplicate either way.
        let mut named: Vec<CredentialField> = Vec::with_capacity(expected.len());

        for (name, value) in raw {
            let field = name.parse::<CredentialField>().ok().filter(|f| expected.contains(f));
            let Some(field) = field else {
                let names: Vec<&str> = expected.iter().map(|f| f.as_str()).collect();
                errors.push(FieldError::new(
                    &[&name],
                    kind::UNKNOWN_FIELD,
                    format!("is not a credential field of {method}; expected: {}", names.join(", ")),
                ));
                continue;
            };
            if named.contains(&field) {
                errors.push(FieldError::new(&[&name], kind::DUPLICATE, "is given more than once"));
                continue;
            }
            named.push(field);
            match check_value(method, field, value.expose_secret(), now) {
                Ok(()) => values.push((field, value)),
                Err(e) => errors.push(e),
            }
        }
        for field in expected {
            let seen = values.iter().any(|(f, _)| f == field);
            let failed = errors
                .errors()
                .iter()
                .any(|e| e.loc.first().map(String::as_str) == Some(field.as_str()));
            if !seen && !failed {
                errors.push(FieldError::new(
                    &[field.as_str()],
                    kind::MISSING,
                    format!("is required for auth method {method}"),
                ));
            }
        }
        errors.finish(|| {
            values.sort_by_key(|(f, _)| expected.iter().position(|e| e == f));
            Self { method, values }
        })
    }

    pub fn auth_method(&self) -> AuthMethod {
        self.method
    }

    /// The value of `field`, if this credential set has it.
    pub fn get(&self, field: CredentialField) -> Option<&SecretString> {
        self.values.iter().find(|(f, _)| *f == field).map(|(_, v)| v)
    }

    /// Names of the fields present (never values).
    pub fn field_names(&self) -> Vec<&'static str> {
        self.values.iter().map(|(f, _)| f.as_str()).collect()
    }

    /// The whole set as one JSON object `{"field": "value", …}`, for a credential store.
    pub fn to_payload(&self) -> SecretString {
        let map: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(f, v)| {
                (
                    f.as_str().to_owned(),
                    serde_json::Value::String(v.expose_secret().to_owned()),
                )
            })
            .collect();
        SecretString::from(serde_json::Value::Object(map).to_string())
    }

    /// Read back a payload written by [`to_payload`](Self::to_payload), checking it again
    /// against `method` (a stored payload is not trusted blindly).
    pub fn from_payload(
        method: AuthMethod,
        payload: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let parsed: serde_json::Value = serde_json::from_str(payload.expose_secret()).map_err(|_| {
            ValidationErrors::single(FieldError::new(
                &[],
                kind::INVALID_FORMAT,
                "stored credentials are not a JSON object",
            ))
        })?;
        let serde_json::Value::Object(map) = parsed else {
            return Err(FieldError::new(&[], kind::INVALID_FORMAT, "stored credentials are not a JSON object").into());
        };
        let mut raw = Vec::with_capacity(map.len());
        let mut errors = ValidationErrors::new();
        for (name, value) in map {
            match value {
                serde_json::Value::String(s) => raw.push((name, SecretString::from(s))),
                _ => errors.push(FieldError::new(&[&name], kind::INVALID_FORMAT, "must be a string")),
            }
        }
        let parsed = Self::parse(method, raw, now);
        match parsed {
            Ok(c) if errors.is_empty() => Ok(c),
            Ok(_) => Err(errors),
            Err(e) => {
                errors.extend(e);
                Err(errors)
            }
        }
    }
}

fn check_value(method: AuthMethod, field: CredentialField, value: &str, now: DateTime<Utc>) -> Result<(), FieldError> {
    let loc = field.as_str();
    if value.trim().is_empty() {
        return Err(FieldError::new(&[loc], kind::BLANK, "must not be empty"));
    }
    if value.trim() != value {
        return Err(FieldError::new(
            &[loc],
            kind::WHITESPACE,
            "must not start or end with whitespace",
        ));
    }
    if value.chars().count() > MAX_CREDENTIAL_VALUE_CHARS {
        return Err(FieldError::new(
            &[loc],
            kind::TOO_LONG,
            format!("must be at most {MAX_CREDENTIAL_VALUE_CHARS} characters"),
        ));
    }
    match (method, field) {
        (AuthMethod::AzureAccountKey, CredentialField::AccountName) => check_azure_account_name(value),
        (AuthMethod::AzureAccountKey, CredentialField::AccountKey) => check_azure_account_key(value),
        (AuthMethod::AzureSasUrl, CredentialField::SasUrl) => {
            // An expired token is well-formed: report it with its own kind.
            return check_sas_url(value, now).map_err(|(k, msg)| FieldError::new(&[loc], k, msg));
        }
        (AuthMethod::GcsServiceAccount, CredentialField::ServiceAccountJson) => check_gcs_json(value),
        _ => Ok(()),
    }
    .map_err(|msg| FieldError::new(&[loc], kind::INVALID_FORMAT, msg))
}

/// 3–24 lowercase letters and digits.
fn check_azure_account_name(value: &str) -> Result<(), String> {
    let ok = (3..=24).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err("must be 3-24 lowercase letters and digits (an Azure storage account name)".into())
    }
}

/// Base64 of a 512-bit key (64 bytes, 88 characters).
fn check_azure_account_key(value: &str) -> Result<(), String> {
    match base64::engine::general_purpose::STANDARD.decode(value) {
        Ok(bytes) if bytes.len() == 64 => Ok(()),
        _ => Err("must be the base64 encoding of a 64-byte Azure storage account key (88 characters)".into()),
    }
}

/// An https URL with `sv`, `sig` and `se` in its query and `se` not in the past.
/// Fails with the error kind (`expired` or `invalid_format`) and a message.
fn check_sas_url(value: &str, now: DateTime<Utc>) -> Result<(), (&'static str, String)> {
    check_sas_url_format(value, now)
        .map_err(|msg| (kind::INVALID_FORMAT, msg))?
        .map_err(|msg| (kind::EXPIRED, msg))
}

/// `Err` for a malformed URL; `Ok(Err)` for a well-formed one whose `se` is in the past.
fn check_sas_url_format(value: &str, now: DateTime<Utc>) -> Result<Result<(), String>, String> {
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URL".to_owned())?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err("must use https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name the storage account host".into());
    }
    let mut expiry = None;
    let mut missing: Vec<&str> = vec!["sv", "sig", "se"];
    for (key, val) in url.query_pairs() {
        if let Some(pos) = missing.iter().position(|m| *m == key)
            && !val.is_empty()
        {
            missing.remove(pos);
        }
        if key == "se" {
            expiry = Some(val.into_owned());
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "must carry the SAS parameters sv, sig and se (missing: {})",
            missing.join(", ")
        ));
    }
    let expiry = expiry.unwrap_or_default();
    let expires_at = parse_sas_time(&expiry).ok_or_else(|| "se must be an ISO-8601 date or UTC time".to_owned())?;
    if expires_at < now {
        return Ok(Err("SAS token has expired (se is in the past)".into()));
    }
    Ok(Ok(()))
}

fn parse_sas_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%MZ") {
        return Some(t.and_utc());
    }
    // A date alone means the end of that day is still valid; start of day is the strict reading.
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
}

/// A GCS service-account key file: JSON object with `type == "service_account"`,
/// `private_key` (PEM), `client_email`, `token_uri`.
fn check_gcs_json(value: &str) -> Result<(), String> {
    let parsed: serde_json::Value =
        serde_json::from_str(value).map_err(|_| "must be a service-account key file (JSON)".to_owned())?;
    let obj = parsed.as_object().ok_or_else(|| "must be a JSON object".to_owned())?;
    let text = |key: &str| {
        obj.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let mut problems = Vec::new();
    if obj.get("type").and_then(serde_json::Value::as_str) != Some("service_account") {
        problems.push("type must be \"service_account\"");
    }
    if !text("private_key").is_some_and(|k| k.contains("PRIVATE KEY")) {
        problems.push("private_key must be a PEM private key");
    }
    if !text("client_email").is_some_and(|e| e.contains('@')) {
        problems.push("client_email must be an email address");
    }
    if !text("token_uri").is_some_and(|u| u.starts_with("https://") || u.starts_with("http://")) {
        problems.push("token_uri must be a URL");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("is not a valid service-account key: {}", problems.join("; ")))
    }
}
