//! Shared fixtures: a fixed clock, valid credentials per auth method, error helpers.

use chrono::{DateTime, TimeZone, Utc};
use custodian_domain::{
    AuthMethod, CreateSecretInput, FieldError, RawFieldMapping, SecretStorage, StorageSecret, ValidationErrors,
    VaultConnectionId, VaultType,
};
use secrecy::SecretString;

/// The fixed "now" of every test (SAS expiry is checked against it).
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// Raw credential pairs as the HTTP layer hands them over.
pub(crate) fn raw(pairs: &[(&str, &str)]) -> Vec<(String, SecretString)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
        .collect()
}

/// A base64 Azure account key: 64 bytes, 88 characters.
pub(crate) const AZURE_KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

/// A SAS URL that expires long after [`now`].
pub(crate) const SAS_URL: &str = "https://custodiantest.blob.core.windows.net/backups?sv=2022-11-02&sp=racwdl&st=2026-01-01&se=2030-01-01T00:00:00Z&spr=https&sig=c2lnbmF0dXJl%3D";

/// A well-formed GCS service-account key file.
pub(crate) fn gcs_json() -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "custodian-test",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
        "client_email": "svc@custodian-test.iam.gserviceaccount.com",
        "client_id": "123456789012345678901",
        "token_uri": "https://oauth2.googleapis.com/token"
    })
    .to_string()
}

/// A valid credential set for `method`, with the fields of its schema.
pub(crate) fn valid_credentials(method: AuthMethod) -> Vec<(String, SecretString)> {
    match method {
        AuthMethod::AzureAccountKey => raw(&[("account_name", "custodiantest"), ("account_key", AZURE_KEY)]),
        AuthMethod::AzureSasUrl => raw(&[("sas_url", SAS_URL)]),
        AuthMethod::GcsServiceAccount => raw(&[("service_account_json", &gcs_json())]),
        AuthMethod::B2ApplicationKey => raw(&[
            ("application_key_id", "0041234567890ab0000000001"),
            ("application_key", "K004abcdefghijklmnopqrstuvwxyz0"),
        ]),
        _ => raw(&[
            ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
            ("secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ]),
    }
}

/// A complete, valid create request for a managed secret.
pub(crate) fn managed_input(
    secret_type: &str,
    auth_method: &str,
    credentials: Vec<(String, SecretString)>,
) -> CreateSecretInput {
    CreateSecretInput {
        name: Some("backups".to_owned()),
        description: Some("nightly backups".to_owned()),
        secret_type: Some(secret_type.to_owned()),
        auth_method: Some(auth_method.to_owned()),
        credentials: Some(credentials),
        vault_connection_id: None,
        field_mappings: None,
    }
}

/// A stored secret as the update rules see it.
pub(crate) fn stored_secret(method: AuthMethod, storage: SecretStorage) -> StorageSecret {
    let t = now();
    StorageSecret {
        id: uuid::Uuid::from_u128(1).into(),
        team_id: uuid::Uuid::from_u128(2).into(),
        name: custodian_domain::Name::parse_at("name", "backups").expect("fixture name is valid"),
        description: None,
        secret_type: method.secret_type(),
        auth_method: method,
        storage,
        credentials_version: 1,
        credentials_updated_at: t,
        created_at: t,
        created_by: uuid::Uuid::from_u128(3).into(),
        updated_at: t,
        updated_by: uuid::Uuid::from_u128(3).into(),
    }
}

/// A valid reference for a vault of `vault_type`, distinct per field.
pub(crate) fn valid_reference(vault_type: VaultType, field: &str) -> String {
    match vault_type {
        VaultType::OnePassword => format!("op://Storage/backups/{field}"),
        VaultType::Doppler => field.to_uppercase(),
        VaultType::Infisical => format!("/storage/{}", field.to_uppercase()),
    }
}

/// Valid field mappings for `method` in a vault of `vault_type`.
pub(crate) fn valid_mappings(vault_type: VaultType, method: AuthMethod) -> Vec<RawFieldMapping> {
    method
        .credential_fields()
        .iter()
        .map(|f| RawFieldMapping {
            field_name: f.as_str().to_owned(),
            reference: valid_reference(vault_type, f.as_str()),
        })
        .collect()
}

/// The id of the vault connection used by external-secret fixtures.
pub(crate) fn vault_id() -> VaultConnectionId {
    uuid::Uuid::from_u128(42).into()
}

/// Every error path, joined with `.` (`credentials.access_key_id`).
pub(crate) fn paths(errors: &ValidationErrors) -> Vec<String> {
    errors.errors().iter().map(FieldError::path).collect()
}

/// The error at exactly `path`, failing the test with the full list when there is none.
pub(crate) fn error_at<'a>(errors: &'a ValidationErrors, path: &[&str]) -> &'a FieldError {
    errors
        .errors()
        .iter()
        .find(|e| e.loc.iter().map(String::as_str).eq(path.iter().copied()))
        .unwrap_or_else(|| panic!("no error at {path:?}; errors: {:?}", paths(errors)))
}

/// Assert an error of `kind` at `path`.
pub(crate) fn assert_error(errors: &ValidationErrors, path: &[&str], kind: &str) {
    let e = error_at(errors, path);
    assert_eq!(e.kind, kind, "kind at {path:?}: {e}; all: {:?}", paths(errors));
    assert!(!e.msg.is_empty(), "error at {path:?} must say which rule failed");
}

/// A complete, valid create request for an external secret.
pub(crate) fn external_input(vault_type: VaultType, method: AuthMethod) -> CreateSecretInput {
    CreateSecretInput {
        name: Some("backups".to_owned()),
        description: None,
        secret_type: Some(method.secret_type().as_str().to_owned()),
        auth_method: Some(method.as_str().to_owned()),
        credentials: None,
        vault_connection_id: Some(vault_id().to_string()),
        field_mappings: Some(valid_mappings(vault_type, method)),
    }
}

/// The vault connection fixture, as the caller found it in the team.
pub(crate) fn known_vault(vault_type: VaultType) -> custodian_domain::KnownVault {
    custodian_domain::KnownVault {
        id: vault_id(),
        vault_type,
    }
}

/// The external storage of a stored secret whose mappings were valid for `method`.
pub(crate) fn external_storage(vault_type: VaultType, method: AuthMethod) -> SecretStorage {
    SecretStorage::External {
        vault_connection_id: vault_id(),
        field_mappings: custodian_domain::FieldMappings::parse(vault_type, method, valid_mappings(vault_type, method))
            .expect("fixture mappings are valid"),
    }
}
