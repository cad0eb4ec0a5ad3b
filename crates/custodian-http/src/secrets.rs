//! Storage secrets: `/v1/teams/{team_id}/secrets`.
//!
//! Credentials arrive as a JSON object of string values and become `SecretString`s while
//! the body is read; no response of these routes ever holds one. The module also holds the
//! wire pieces the other storage routes share: the enum schemas, the absent-or-null
//! distinction of PATCH bodies, and the `"body"` prefix of the core's field errors.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_core::{CoreError, SecretDetails, Verification};
use custodian_domain::{
    AuthMethod, CreateSecretInput, CredentialField, FieldError, RawFieldMapping, Role, SecretId, SecretStorage,
    SecretType, StorageSecret, TeamId, Tier, UpdateSecretInput, ValidationErrors, VaultType,
};
use custodian_ports::SecretFilter;
use secrecy::SecretString;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use crate::extract::{parse_id, parse_ids};
use crate::fields::{absent_or_null, in_body, parse_query_enum};
use crate::pagination::{ListBody, page};
use crate::{ApiError, ApiJson, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(
    paths(create_secret, list_secrets, get_secret, update_secret, delete_secret, verify_secret),
    components(schemas(
        SecretTypeName,
        AuthMethodName,
        VaultTypeName,
        CredentialsSchema,
        RoleName,
        AccountRoleName,
        TierName
    ))
)]
pub(crate) struct Doc;

/// Registers the routes inside the team's scope ([`crate::TEAM_SCOPE`]).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/secrets")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::post().to(create_secret))
            .route(web::get().to(list_secrets)),
    )
    .service(
        web::resource("/secrets/{secret_id}")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::get().to(get_secret))
            .route(web::patch().to(update_secret))
            .route(web::delete().to(delete_secret)),
    )
    .service(
        web::resource("/secrets/{secret_id}/verify")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::post().to(verify_secret)),
    );
}

fn string_enum_schema(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// The OpenAPI schema of the wire spelling of a domain enum.
macro_rules! enum_schema {
    ($schema:ident, $enum:ty, $description:literal) => {
        #[doc = $description]
        #[derive(Debug)]
        pub(crate) struct $schema;

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                string_enum_schema($description, <$enum>::ALL.iter().map(|v| v.as_str()))
            }
        }

        impl ToSchema for $schema {}
    };
}

enum_schema!(SecretTypeName, SecretType, "Cloud storage provider types.");
enum_schema!(
    AuthMethodName,
    AuthMethod,
    "Authentication mechanism identifiers for cloud storage credentials."
);
enum_schema!(VaultTypeName, VaultType, "External vault provider types.");
enum_schema!(
    RoleName,
    Role,
    "A role in a team, from least to most: `viewer`, `operator`, `admin`, `owner`."
);
enum_schema!(TierName, Tier, "A team's tier.");

/// The roles a virtual account may hold: every role but `owner`.
#[derive(Debug)]
pub(crate) struct AccountRoleName;

impl PartialSchema for AccountRoleName {
    fn schema() -> RefOr<Schema> {
        string_enum_schema(
            "A virtual account's role: `viewer`, `operator` or `admin` (never `owner`).",
            Role::ALL.iter().filter(|r| **r != Role::Owner).map(|r| r.as_str()),
        )
    }
}

impl ToSchema for AccountRoleName {}

/// What a reader needs to fill in one credential field.
fn credential_field_description(field: CredentialField) -> &'static str {
    match field {
        CredentialField::AccessKeyId => "The access key ID.",
        CredentialField::SecretAccessKey => "The secret access key.",
        CredentialField::AccountName => "The Azure storage account name: 3–24 lowercase letters and digits.",
        CredentialField::AccountKey => "An Azure storage account key: the base64 encoding of 64 bytes (88 characters).",
        CredentialField::SasUrl => {
            "An Azure SAS URL: `https` (`http` only for loopback hosts), naming the account host, with \
             `sv`, `sig` and `se` in its query; `se` (ISO 8601) must not be in the past."
        }
        CredentialField::ServiceAccountJson => {
            "A Google Cloud service-account key file as one JSON string: `type` \
             `\"service_account\"`, a PEM `private_key`, `client_email` and `token_uri`."
        }
        CredentialField::ApplicationKeyId => "The Backblaze B2 application key ID.",
        CredentialField::ApplicationKey => "The Backblaze B2 application key.",
    }
}

/// The auth methods grouped by the credential fields they take, in the domain's order.
fn credential_shapes() -> Vec<(&'static [CredentialField], Vec<AuthMethod>)> {
    let mut shapes: Vec<(&'static [CredentialField], Vec<AuthMethod>)> = Vec::new();
    for &method in AuthMethod::ALL {
        let fields = method.credential_fields();
        match shapes.iter_mut().find(|(known, _)| *known == fields) {
            Some((_, methods)) => methods.push(method),
            None => shapes.push((fields, vec![method])),
        }
    }
    shapes
}

/// `credentials`: one object shape per group of auth methods, every field of the shape
/// required and no other field allowed (the domain's list of fields per method), or the
/// empty object, which counts as absent.
#[derive(Debug)]
pub(crate) struct CredentialsSchema;

impl PartialSchema for CredentialsSchema {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "The credential fields of the secret's `auth_method`: every field its shape lists is \
             required, no other field is accepted, and each value is a string of 1–8192 characters \
             without leading or trailing whitespace. Stored encrypted, never returned in responses.",
        ));
        for (fields, methods) in credential_shapes() {
            let names: Vec<String> = methods.iter().map(|m| format!("`{}`", m.as_str())).collect();
            let mut shape = ObjectBuilder::new()
                .schema_type(Type::Object)
                .title(Some(fields.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" + ")))
                .description(Some(format!("For `auth_method` {}.", names.join(", "))))
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
            for field in fields {
                shape = shape
                    .property(
                        field.as_str(),
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(custodian_domain::credentials::MAX_CREDENTIAL_VALUE_CHARS))
                            .description(Some(credential_field_description(*field))),
                    )
                    .required(field.as_str());
            }
            one_of = one_of.item(shape);
        }
        // Deliberate: an empty object counts as absent (so an external secret may be sent
        // with `"credentials": {}`), and the document says so.
        one_of = one_of.item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .title(Some("empty"))
                .description(Some("`{}`: the same as no `credentials` at all."))
                .max_properties(Some(0)),
        );
        one_of.into()
    }
}

impl ToSchema for CredentialsSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "Credentials".into()
    }
}

/// `{"verified", "checked_at", "fields", "error"}`: the outcome of a verification. Names
/// the credential fields found, never their values.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerificationBody {
    verified: bool,
    checked_at: DateTime<Utc>,
    /// Names of the credential fields found and checked.
    fields: Vec<&'static str>,
    /// Why it failed; `null` when verified.
    #[schema(required = true)]
    error: Option<VerificationErrorBody>,
}

/// Why a verification failed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerificationErrorBody {
    /// `credentials_invalid`, `vault_unavailable`, `vault_auth_failed`,
    /// `vault_reference_not_found` or `vault_rate_limited`.
    code: &'static str,
    message: String,
}

impl From<Verification> for VerificationBody {
    fn from(v: Verification) -> Self {
        VerificationBody {
            verified: v.verified,
            checked_at: v.checked_at,
            fields: v.fields,
            error: v.error.map(|e| VerificationErrorBody {
                code: e.code,
                message: e.message,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Request bodies.

/// One credential value as sent: a string, or anything else (refused without keeping it).
enum CredentialValue {
    Text(SecretString),
    NotText,
}

impl<'de> Deserialize<'de> for CredentialValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = CredentialValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CredentialValue::Text(SecretString::from(v)))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CredentialValue::Text(SecretString::from(v)))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(CredentialValue::NotText)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(CredentialValue::NotText)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(CredentialValue::NotText)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(CredentialValue::NotText)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CredentialValue::NotText)
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CredentialValue::NotText)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(CredentialValue::NotText)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(CredentialValue::NotText)
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

/// `credentials`: a JSON object of string values, in the order sent (a repeated field
/// stays repeated, so the domain can call it a duplicate). `Debug` shows field names only.
pub(crate) struct CredentialsBody(Vec<(String, CredentialValue)>);

impl fmt::Debug for CredentialsBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

impl<'de> Deserialize<'de> for CredentialsBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = CredentialsBody;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of credential fields with string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value = map.next_value::<CredentialValue>()?;
                    fields.push((name, value));
                }
                Ok(CredentialsBody(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

impl CredentialsBody {
    /// The fields as the domain takes them; a value that is not a string is a 422 at
    /// `["body", "credentials", field]` that does not repeat the value.
    fn into_raw(self) -> Result<Vec<(String, SecretString)>, ApiError> {
        let mut errors = ValidationErrors::new();
        let mut raw = Vec::with_capacity(self.0.len());
        for (name, value) in self.0 {
            match value {
                CredentialValue::Text(secret) => raw.push((name, secret)),
                CredentialValue::NotText => errors.push(FieldError::new(
                    &["body", "credentials", &name],
                    "type_error",
                    "must be a string",
                )),
            }
        }
        if errors.is_empty() {
            Ok(raw)
        } else {
            Err(ApiError(CoreError::Validation(errors)))
        }
    }
}

/// Where one credential field is in the team's vault.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldMappingBody {
    /// A credential field of the auth method (`access_key_id`, …).
    field_name: String,
    /// Where its value is: `op://vault/item[/section]/field` (1Password), a secret name
    /// (Doppler), or a key with an optional folder path (Infisical).
    reference: String,
}

impl From<FieldMappingBody> for RawFieldMapping {
    fn from(body: FieldMappingBody) -> Self {
        RawFieldMapping {
            field_name: body.field_name,
            reference: body.reference,
        }
    }
}

fn mappings(body: Option<Vec<FieldMappingBody>>) -> Option<Vec<RawFieldMapping>> {
    body.map(|list| list.into_iter().map(RawFieldMapping::from).collect())
}

fn credentials(body: Option<CredentialsBody>) -> Result<Option<Vec<(String, SecretString)>>, ApiError> {
    body.map(CredentialsBody::into_raw).transpose()
}

/// A new storage secret: either `credentials` (stored by Custodian) or
/// `vault_connection_id` with `field_mappings` (read from the team's vault).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSecretBody {
    /// Secret name, unique in the team.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    name: Option<String>,
    #[schema(value_type = SecretTypeName, required = true)]
    secret_type: Option<String>,
    #[schema(value_type = AuthMethodName, required = true)]
    auth_method: Option<String>,
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// The credentials of a managed secret: the fields of `auth_method` (see `Credentials`).
    /// Never returned in responses.
    #[schema(value_type = Option<CredentialsSchema>)]
    credentials: Option<CredentialsBody>,
    /// The vault connection that resolves the credentials.
    #[schema(format = "uuid")]
    vault_connection_id: Option<String>,
    /// One mapping per credential field of the auth method.
    field_mappings: Option<Vec<FieldMappingBody>>,
}

impl CreateSecretBody {
    fn into_input(self) -> Result<CreateSecretInput, ApiError> {
        Ok(CreateSecretInput {
            name: self.name,
            description: self.description,
            secret_type: self.secret_type,
            auth_method: self.auth_method,
            credentials: credentials(self.credentials)?,
            vault_connection_id: self.vault_connection_id,
            field_mappings: mappings(self.field_mappings),
        })
    }
}

/// A change to a secret. Every field is optional; `description: null` clears
/// the description. `credentials` rotate a managed secret; `field_mappings` change an
/// external one; never both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateSecretBody {
    #[schema(min_length = 1, max_length = 255)]
    name: Option<String>,
    #[serde(default, deserialize_with = "absent_or_null")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    description: Option<Option<String>>,
    #[schema(value_type = Option<SecretTypeName>)]
    secret_type: Option<String>,
    #[schema(value_type = Option<AuthMethodName>)]
    auth_method: Option<String>,
    /// New credentials (managed secrets only): the fields of the secret's auth method, or of
    /// `auth_method` when it changes too (see `Credentials`).
    #[schema(value_type = Option<CredentialsSchema>)]
    credentials: Option<CredentialsBody>,
    /// New field mappings (external secrets only).
    field_mappings: Option<Vec<FieldMappingBody>>,
}

impl UpdateSecretBody {
    fn into_input(self) -> Result<UpdateSecretInput, ApiError> {
        Ok(UpdateSecretInput {
            name: self.name,
            description: self.description,
            secret_type: self.secret_type,
            auth_method: self.auth_method,
            credentials: credentials(self.credentials)?,
            field_mappings: mappings(self.field_mappings),
        })
    }
}

/// Filters and page of the secret list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SecretListQuery {
    /// Only secrets of this type.
    #[param(value_type = Option<SecretTypeName>)]
    secret_type: Option<String>,
    /// Case-insensitive part of the name.
    search: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Responses.

/// A secret's metadata. Never credentials.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretResponse {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    #[schema(value_type = SecretTypeName)]
    secret_type: &'static str,
    #[schema(value_type = AuthMethodName)]
    auth_method: &'static str,
    created_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    created_by: String,
}

impl From<&StorageSecret> for SecretResponse {
    fn from(s: &StorageSecret) -> Self {
        SecretResponse {
            id: s.id.to_string(),
            name: s.name.as_str().to_owned(),
            description: s.description.as_ref().map(|d| d.as_str().to_owned()),
            secret_type: s.secret_type.as_str(),
            auth_method: s.auth_method.as_str(),
            created_at: s.created_at,
            created_by: s.created_by.to_string(),
        }
    }
}

/// One secret of the list: its metadata, its storage mode and its last change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretListItem {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    #[schema(value_type = SecretTypeName)]
    secret_type: &'static str,
    #[schema(value_type = AuthMethodName)]
    auth_method: &'static str,
    /// `managed` or `external`.
    storage: &'static str,
    created_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    created_by: String,
    updated_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    updated_by: String,
}

impl From<StorageSecret> for SecretListItem {
    fn from(s: StorageSecret) -> Self {
        let base = SecretResponse::from(&s);
        SecretListItem {
            id: base.id,
            name: base.name,
            description: base.description,
            secret_type: base.secret_type,
            auth_method: base.auth_method,
            storage: s.storage.mode().as_str(),
            created_at: base.created_at,
            created_by: base.created_by,
            updated_at: s.updated_at,
            updated_by: s.updated_by.to_string(),
        }
    }
}

/// A location that uses the secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretLocationRef {
    #[schema(format = "uuid")]
    id: String,
    name: String,
}

/// A secret's details: the create response plus its storage, locations, vault
/// connection and credential version. Never credentials.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretDetailsResponse {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    #[schema(value_type = SecretTypeName)]
    secret_type: &'static str,
    #[schema(value_type = AuthMethodName)]
    auth_method: &'static str,
    created_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    created_by: String,
    updated_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    updated_by: String,
    /// `managed` (credentials in Custodian's store) or `external` (in the team's vault).
    storage: &'static str,
    location_count: usize,
    locations: Vec<SecretLocationRef>,
    /// External secrets: their vault connection; `null` for managed ones.
    #[schema(required = true, format = "uuid")]
    vault_connection_id: Option<String>,
    #[schema(required = true)]
    vault_connection_name: Option<String>,
    #[schema(required = true, value_type = Option<VaultTypeName>)]
    vault_type: Option<&'static str>,
    /// External secrets: `{field_name: reference}`; `null` for managed ones.
    #[schema(required = true)]
    external_field_mappings: Option<BTreeMap<String, String>>,
    /// Starts at 1; grows with every rotation (or change of field mappings).
    credentials_version: i64,
    credentials_updated_at: DateTime<Utc>,
}

impl From<SecretDetails> for SecretDetailsResponse {
    fn from(details: SecretDetails) -> Self {
        let SecretDetails {
            secret,
            locations,
            vault_connection,
        } = details;
        let base = SecretResponse::from(&secret);
        let (vault_connection_id, external_field_mappings) = match &secret.storage {
            SecretStorage::Managed => (None, None),
            SecretStorage::External {
                vault_connection_id,
                field_mappings,
            } => (
                Some(vault_connection_id.to_string()),
                Some(
                    field_mappings
                        .iter()
                        .map(|m| (m.field.as_str().to_owned(), m.reference.as_str().to_owned()))
                        .collect(),
                ),
            ),
        };
        SecretDetailsResponse {
            id: base.id,
            name: base.name,
            description: base.description,
            secret_type: base.secret_type,
            auth_method: base.auth_method,
            created_at: base.created_at,
            created_by: base.created_by,
            updated_at: secret.updated_at,
            updated_by: secret.updated_by.to_string(),
            storage: secret.storage.mode().as_str(),
            location_count: locations.len(),
            locations: locations
                .into_iter()
                .map(|l| SecretLocationRef {
                    id: l.id.to_string(),
                    name: l.name,
                })
                .collect(),
            vault_connection_id,
            vault_connection_name: vault_connection.as_ref().map(|c| c.name.as_str().to_owned()),
            vault_type: vault_connection.as_ref().map(|c| c.vault_type().as_str()),
            external_field_mappings,
            credentials_version: secret.credentials_version,
            credentials_updated_at: secret.credentials_updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Handlers.

/// Create a storage secret (admin).
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/secrets",
    tag = "secrets",
    security(("bearer" = [])),
    params(("team_id" = String, Path, format = "uuid", description = "The team")),
    request_body = CreateSecretBody,
    responses(
        (status = 201, description = "The secret was created", body = SecretResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team, or `tier_limit_exceeded`", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 409, description = "The name is taken in the team", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Every failing field", body = ValidationBody),
    )
)]
async fn create_secret(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<CreateSecretBody>,
) -> Result<HttpResponse, ApiError> {
    let team: TeamId = parse_id(&path)?;
    let input = body.into_inner().into_input()?;
    let secret = state
        .custodian
        .create_secret(&caller.subject, &caller.context, team, input)
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Created().json(SecretResponse::from(&secret)))
}

/// The team's secrets (viewer), by name.
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/secrets",
    tag = "secrets",
    security(("bearer" = [])),
    params(("team_id" = String, Path, format = "uuid", description = "The team"), SecretListQuery),
    responses(
        (status = 200, description = "One page of secrets", body = ListBody<SecretListItem>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_secrets(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    query: ApiQuery<SecretListQuery>,
) -> Result<HttpResponse, ApiError> {
    let team: TeamId = parse_id(&path)?;
    let query = query.into_inner();
    let page = page(query.limit, query.offset)?;
    let filter = SecretFilter {
        secret_type: parse_query_enum("secret_type", query.secret_type.as_deref())?,
        search: query.search.filter(|s| !s.is_empty()),
    };
    let found = state
        .custodian
        .list_secrets(&caller.subject, team, &filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(ListBody::new(found, page, SecretListItem::from)))
}

/// A secret's details (viewer). Never credentials.
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/secrets/{secret_id}",
    tag = "secrets",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("secret_id" = String, Path, format = "uuid", description = "The secret"),
    ),
    responses(
        (status = 200, description = "The secret", body = SecretDetailsResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such secret in the team", body = ErrorBody),
    )
)]
async fn get_secret(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, SecretId>(&path)?;
    let details = state.custodian.get_secret(&caller.subject, team, id).await?;
    Ok(HttpResponse::Ok().json(SecretDetailsResponse::from(details)))
}

/// Change a secret, or rotate its credentials (admin), under the update rules.
#[utoipa::path(
    patch,
    path = "/v1/teams/{team_id}/secrets/{secret_id}",
    tag = "secrets",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("secret_id" = String, Path, format = "uuid", description = "The secret"),
    ),
    request_body = UpdateSecretBody,
    responses(
        (status = 200, description = "The secret as it is now", body = SecretResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such secret in the team", body = ErrorBody),
        (status = 409, description = "`location_type_mismatch` (listing the locations), a taken name, or `stale_write` when concurrent changes of the secret kept overtaking this one (each change is otherwise made again over the one that committed first)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Every failing field", body = ValidationBody),
    )
)]
async fn update_secret(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<UpdateSecretBody>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, SecretId>(&path)?;
    let input = body.into_inner().into_input()?;
    let secret = state
        .custodian
        .update_secret(&caller.subject, &caller.context, team, id, input)
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(SecretResponse::from(&secret)))
}

/// Delete a secret and every stored version of its credentials (admin).
#[utoipa::path(
    delete,
    path = "/v1/teams/{team_id}/secrets/{secret_id}",
    tag = "secrets",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("secret_id" = String, Path, format = "uuid", description = "The secret"),
    ),
    responses(
        (status = 204, description = "The secret is gone"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such secret in the team", body = ErrorBody),
        (status = 409, description = "`secret_in_use`: locations use it", body = ErrorBody),
    )
)]
async fn delete_secret(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, SecretId>(&path)?;
    state
        .custodian
        .delete_secret(&caller.subject, &caller.context, team, id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Resolve the secret's credentials now and check them against the auth method
/// (operator). Answers the fields found, never their values.
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/secrets/{secret_id}/verify",
    tag = "secrets",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("secret_id" = String, Path, format = "uuid", description = "The secret"),
    ),
    responses(
        (status = 200, description = "The outcome, verified or not", body = VerificationBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an operator of the team", body = ErrorBody),
        (status = 404, description = "No such secret in the team", body = ErrorBody),
        (status = 503, description = "The database or the credential store does not answer", body = ErrorBody),
    )
)]
async fn verify_secret(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, SecretId>(&path)?;
    let verification = state
        .custodian
        .verify_secret(&caller.subject, &caller.context, team, id)
        .await?;
    Ok(HttpResponse::Ok().json(VerificationBody::from(verification)))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::extract::decode_body;

    #[test]
    fn credentials_keep_their_order_and_become_secrets() {
        let body: CreateSecretBody =
            decode_body(br#"{"name":"n","credentials":{"secret_access_key":"s3cr3t","access_key_id":"AKIA"}}"#)
                .unwrap();
        let raw = credentials(body.credentials).unwrap().unwrap();
        assert_eq!(raw[0].0, "secret_access_key");
        assert_eq!(raw[0].1.expose_secret(), "s3cr3t");
        assert_eq!(raw[1].0, "access_key_id");
    }

    #[test]
    fn a_credential_that_is_not_a_string_is_named_and_never_echoed() {
        let body: CreateSecretBody =
            decode_body(br#"{"credentials":{"access_key_id":12345678,"secret_access_key":["canary-9"]}}"#).unwrap();
        let debug = format!("{body:?}");
        assert!(!debug.contains("canary-9") && !debug.contains("12345678"), "{debug}");
        match credentials(body.credentials) {
            Err(ApiError(CoreError::Validation(errors))) => {
                assert!(errors.has(&["body", "credentials", "access_key_id"]));
                assert!(errors.has(&["body", "credentials", "secret_access_key"]));
                assert!(errors.errors().iter().all(|e| !e.msg.contains("canary-9")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credentials_that_are_not_an_object_are_a_type_error_at_credentials() {
        match decode_body::<CreateSecretBody>(br#"{"credentials":"canary-string"}"#) {
            Err(CoreError::Validation(errors)) => {
                assert_eq!(errors.errors()[0].loc, ["body", "credentials"]);
                assert!(!errors.errors()[0].msg.contains("canary-string"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_patch_tells_an_absent_description_from_a_null_one() {
        let absent: UpdateSecretBody = decode_body(br#"{"name":"n"}"#).unwrap();
        assert_eq!(absent.description, None);
        let null: UpdateSecretBody = decode_body(br#"{"description":null}"#).unwrap();
        assert_eq!(null.description, Some(None));
        let text: UpdateSecretBody = decode_body(br#"{"description":"d"}"#).unwrap();
        assert_eq!(text.description, Some(Some("d".to_owned())));
    }

    #[test]
    fn core_field_errors_are_placed_under_body() {
        let mut errors = ValidationErrors::new();
        errors.push(FieldError::new(
            &["credentials", "access_key_id"],
            "missing",
            "is required",
        ));
        errors.push(FieldError::new(&["query", "limit"], "out_of_range", "too big"));
        match in_body(CoreError::Validation(errors)) {
            ApiError(CoreError::Validation(placed)) => {
                assert!(placed.has(&["body", "credentials", "access_key_id"]));
                assert!(placed.has(&["query", "limit"]));
            }
            other => panic!("{other:?}"),
        }
    }
}
