//! Vault connections: `/v1/teams/{team_id}/vault-connections`.
//!
//! `access_token` and `client_secret` become `SecretString`s while the body is read and
//! go to the credential store; no response holds them.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_core::VaultRotationInput;
use custodian_domain::{TeamId, VaultConnection, VaultConnectionId, VaultConnectionInput, VaultSettings};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::extract::{parse_id, parse_ids};
use crate::fields::{absent_or_null, in_body, secret_string};
use crate::pagination::{ListBody, page};
use crate::secrets::{VaultTypeName, VerificationBody};
use crate::{ApiError, ApiJson, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(paths(
    create_vault_connection,
    list_vault_connections,
    get_vault_connection,
    update_vault_connection,
    rotate_vault_connection,
    verify_vault_connection,
    delete_vault_connection
))]
pub(crate) struct Doc;

/// Registers the routes inside the team's scope ([`crate::TEAM_SCOPE`]).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/vault-connections")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::post().to(create_vault_connection))
            .route(web::get().to(list_vault_connections)),
    )
    .service(
        web::resource("/vault-connections/{connection_id}")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::get().to(get_vault_connection))
            .route(web::patch().to(update_vault_connection))
            .route(web::delete().to(delete_vault_connection)),
    )
    .service(
        web::resource("/vault-connections/{connection_id}/rotate")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::post().to(rotate_vault_connection)),
    )
    .service(
        web::resource("/vault-connections/{connection_id}/verify")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::post().to(verify_vault_connection)),
    );
}

/// A new vault connection. 1Password: `access_token` (`ops_…`). Doppler:
/// `access_token` (`dp.st.…`), `project`, `config`. Infisical: `client_id`,
/// `client_secret`, `project_id`, `environment`, optional `secret_path` (default `/`),
/// optional `api_url` (a self-hosted instance). A field of another vault type is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateVaultConnectionBody {
    /// Connection name.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    name: Option<String>,
    #[schema(value_type = VaultTypeName, required = true)]
    vault_type: Option<String>,
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// Vault access token (1Password and Doppler). Never returned.
    #[serde(default, deserialize_with = "secret_string")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 4096)]
    access_token: Option<SecretString>,
    /// Infisical client ID of the machine identity.
    #[schema(min_length = 1, max_length = 255)]
    client_id: Option<String>,
    /// Infisical client secret of the machine identity. Never returned.
    #[serde(default, deserialize_with = "secret_string")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1000)]
    client_secret: Option<SecretString>,
    /// Doppler project slug.
    #[schema(min_length = 1, max_length = 255)]
    project: Option<String>,
    /// Doppler config name.
    #[schema(min_length = 1, max_length = 255)]
    config: Option<String>,
    /// Infisical project ID.
    #[schema(min_length = 1, max_length = 255)]
    project_id: Option<String>,
    /// Infisical environment slug (`dev`, `prod`, …).
    #[schema(min_length = 1, max_length = 100)]
    environment: Option<String>,
    /// Infisical folder of the secrets, starting with `/` (default `/`).
    #[schema(max_length = 500)]
    secret_path: Option<String>,
    /// A self-hosted Infisical's URL (`https://…`); absent: the deployment's Infisical.
    /// Loopback, private and link-local addresses are refused unless the deployment
    /// allows them.
    #[schema(min_length = 1, max_length = 2048)]
    api_url: Option<String>,
}

impl From<CreateVaultConnectionBody> for VaultConnectionInput {
    fn from(body: CreateVaultConnectionBody) -> Self {
        VaultConnectionInput {
            name: body.name,
            vault_type: body.vault_type,
            description: body.description,
            access_token: body.access_token,
            client_id: body.client_id,
            client_secret: body.client_secret,
            project: body.project,
            config: body.config,
            project_id: body.project_id,
            environment: body.environment,
            secret_path: body.secret_path,
            api_url: body.api_url,
        }
    }
}

/// A change of name or description; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateVaultConnectionBody {
    #[schema(min_length = 1, max_length = 255)]
    name: Option<String>,
    #[serde(default, deserialize_with = "absent_or_null")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    description: Option<Option<String>>,
}

/// New secret settings: a new `access_token` (1Password, Doppler), or a new `client_id`
/// and `client_secret` (Infisical).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateVaultConnectionBody {
    #[serde(default, deserialize_with = "secret_string")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 4096)]
    access_token: Option<SecretString>,
    #[schema(min_length = 1, max_length = 255)]
    client_id: Option<String>,
    #[serde(default, deserialize_with = "secret_string")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1000)]
    client_secret: Option<SecretString>,
}

impl From<RotateVaultConnectionBody> for VaultRotationInput {
    fn from(body: RotateVaultConnectionBody) -> Self {
        VaultRotationInput {
            access_token: body.access_token,
            client_id: body.client_id,
            client_secret: body.client_secret,
        }
    }
}

/// The page of the connection list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VaultConnectionListQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
}

/// A vault connection with its non-secret settings (those of its vault type). Never a
/// token or client secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VaultConnectionResponse {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    #[schema(value_type = VaultTypeName)]
    vault_type: &'static str,
    /// When the connection last authenticated against its vault; `null` until verified
    /// (and again after a rotation).
    #[schema(required = true)]
    last_verified_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    created_by: String,
    /// Doppler.
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<String>,
    /// Doppler.
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<String>,
    /// Infisical.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// Infisical.
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<String>,
    /// Infisical.
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    /// Infisical.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_path: Option<String>,
    /// Infisical: the self-hosted instance, when the connection names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_url: Option<String>,
}

impl From<&VaultConnection> for VaultConnectionResponse {
    fn from(c: &VaultConnection) -> Self {
        let mut body = VaultConnectionResponse {
            id: c.id.to_string(),
            name: c.name.as_str().to_owned(),
            description: c.description.as_ref().map(|d| d.as_str().to_owned()),
            vault_type: c.vault_type().as_str(),
            last_verified_at: c.last_verified_at,
            created_at: c.created_at,
            created_by: c.created_by.to_string(),
            project: None,
            config: None,
            client_id: None,
            project_id: None,
            environment: None,
            secret_path: None,
            api_url: None,
        };
        match &c.settings {
            VaultSettings::OnePassword => {}
            VaultSettings::Doppler { project, config } => {
                body.project = Some(project.clone());
                body.config = Some(config.clone());
            }
            VaultSettings::Infisical {
                client_id,
                project_id,
                environment,
                secret_path,
                api_url,
            } => {
                body.client_id = Some(client_id.clone());
                body.project_id = Some(project_id.clone());
                body.environment = Some(environment.clone());
                body.secret_path = Some(secret_path.clone());
                body.api_url = api_url.clone();
            }
        }
        body
    }
}

/// A vault connection and the number of secrets that use it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VaultConnectionDetails {
    #[serde(flatten)]
    connection: VaultConnectionResponse,
    /// How many storage secrets read their credentials through it.
    secret_count: u64,
}

/// Connect the team to its external vault (admin). The tier's vault-connection limit
/// applies.
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/vault-connections",
    tag = "vault-connections",
    security(("bearer" = [])),
    params(("team_id" = String, Path, format = "uuid", description = "The team")),
    request_body = CreateVaultConnectionBody,
    responses(
        (status = 201, description = "The connection was created", body = VaultConnectionResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team, or `tier_limit_exceeded`", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 409, description = "The name is taken in the team", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Every failing field", body = ValidationBody),
    )
)]
async fn create_vault_connection(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<CreateVaultConnectionBody>,
) -> Result<HttpResponse, ApiError> {
    let team: TeamId = parse_id(&path)?;
    let connection = state
        .custodian
        .create_vault_connection(&caller.subject, &caller.context, team, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Created().json(VaultConnectionResponse::from(&connection)))
}

/// The team's vault connections (viewer).
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/vault-connections",
    tag = "vault-connections",
    security(("bearer" = [])),
    params(("team_id" = String, Path, format = "uuid", description = "The team"), VaultConnectionListQuery),
    responses(
        (status = 200, description = "One page of connections", body = ListBody<VaultConnectionResponse>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_vault_connections(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    query: ApiQuery<VaultConnectionListQuery>,
) -> Result<HttpResponse, ApiError> {
    let team: TeamId = parse_id(&path)?;
    let query = query.into_inner();
    let page = page(query.limit, query.offset)?;
    let found = state
        .custodian
        .list_vault_connections(&caller.subject, team, page)
        .await?;
    Ok(HttpResponse::Ok().json(ListBody::new(found, page, |c| VaultConnectionResponse::from(&c))))
}

/// A vault connection and how many secrets use it (viewer).
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/vault-connections/{connection_id}",
    tag = "vault-connections",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("connection_id" = String, Path, format = "uuid", description = "The vault connection"),
    ),
    responses(
        (status = 200, description = "The connection", body = VaultConnectionDetails),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such connection in the team", body = ErrorBody),
    )
)]
async fn get_vault_connection(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, VaultConnectionId>(&path)?;
    let (connection, secret_count) = state.custodian.get_vault_connection(&caller.subject, team, id).await?;
    Ok(HttpResponse::Ok().json(VaultConnectionDetails {
        connection: VaultConnectionResponse::from(&connection),
        secret_count,
    }))
}

/// Rename a vault connection or change its description (admin).
#[utoipa::path(
    patch,
    path = "/v1/teams/{team_id}/vault-connections/{connection_id}",
    tag = "vault-connections",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("connection_id" = String, Path, format = "uuid", description = "The vault connection"),
    ),
    request_body = UpdateVaultConnectionBody,
    responses(
        (status = 200, description = "The connection as it is now", body = VaultConnectionResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such connection in the team", body = ErrorBody),
        (status = 409, description = "The name is taken in the team", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Every failing field", body = ValidationBody),
    )
)]
async fn update_vault_connection(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<UpdateVaultConnectionBody>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, VaultConnectionId>(&path)?;
    let body = body.into_inner();
    let connection = state
        .custodian
        .update_vault_connection(&caller.subject, &caller.context, team, id, body.name, body.description)
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(VaultConnectionResponse::from(&connection)))
}

/// Give a vault connection new secret settings (admin). `last_verified_at` is cleared
/// until the next verification.
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/vault-connections/{connection_id}/rotate",
    tag = "vault-connections",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("connection_id" = String, Path, format = "uuid", description = "The vault connection"),
    ),
    request_body = RotateVaultConnectionBody,
    responses(
        (status = 200, description = "The connection as it is now", body = VaultConnectionResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such connection in the team", body = ErrorBody),
        (status = 409, description = "`stale_write` when concurrent rotations kept overtaking this one (a rotation is otherwise made again over the one that committed first)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Every failing field", body = ValidationBody),
    )
)]
async fn rotate_vault_connection(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<RotateVaultConnectionBody>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, VaultConnectionId>(&path)?;
    let connection = state
        .custodian
        .rotate_vault_connection(&caller.subject, &caller.context, team, id, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(VaultConnectionResponse::from(&connection)))
}

/// Authenticate against the vault now (operator); success sets `last_verified_at`.
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/vault-connections/{connection_id}/verify",
    tag = "vault-connections",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("connection_id" = String, Path, format = "uuid", description = "The vault connection"),
    ),
    responses(
        (status = 200, description = "The outcome, verified or not", body = VerificationBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an operator of the team", body = ErrorBody),
        (status = 404, description = "No such connection in the team", body = ErrorBody),
        (status = 503, description = "The database or the credential store does not answer", body = ErrorBody),
    )
)]
async fn verify_vault_connection(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, VaultConnectionId>(&path)?;
    let verification = state
        .custodian
        .verify_vault_connection(&caller.subject, &caller.context, team, id)
        .await?;
    Ok(HttpResponse::Ok().json(VerificationBody::from(verification)))
}

/// Delete a vault connection and its stored secret (admin).
#[utoipa::path(
    delete,
    path = "/v1/teams/{team_id}/vault-connections/{connection_id}",
    tag = "vault-connections",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("connection_id" = String, Path, format = "uuid", description = "The vault connection"),
    ),
    responses(
        (status = 204, description = "The connection is gone"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such connection in the team", body = ErrorBody),
        (status = 409, description = "`vault_connection_in_use`: secrets use it", body = ErrorBody),
    )
)]
async fn delete_vault_connection(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, VaultConnectionId>(&path)?;
    state
        .custodian
        .delete_vault_connection(&caller.subject, &caller.context, team, id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::decode_body;

    #[test]
    fn secret_settings_are_read_as_secrets_and_never_printed() {
        let body: CreateVaultConnectionBody = decode_body(
            br#"{"name":"i","vault_type":"infisical","client_id":"id","client_secret":"st.canary-77","project_id":"p","environment":"prod"}"#,
        )
        .unwrap();
        assert!(!format!("{body:?}").contains("canary-77"));
        let rotation: RotateVaultConnectionBody = decode_body(br#"{"access_token":"ops_canary-88"}"#).unwrap();
        assert!(!format!("{rotation:?}").contains("canary-88"));
        let input = VaultConnectionInput::from(body);
        assert!(input.client_secret.is_some() && input.access_token.is_none());
    }

    #[test]
    fn a_patch_takes_only_name_and_description() {
        assert!(decode_body::<UpdateVaultConnectionBody>(br#"{"description":null}"#).is_ok());
        assert!(decode_body::<UpdateVaultConnectionBody>(br#"{"project":"other"}"#).is_err());
    }
}
