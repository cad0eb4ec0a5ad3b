//! `/v1/teams/{team_id}/virtual-accounts`: a team's machine identities and their
//! tokens. A token is shown once, in the create and regenerate answers.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use custodian_domain::{NewVirtualAccountInput, TeamId, VirtualAccount, VirtualAccountId};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::extract::parse_id;
use crate::fields::in_body;
use crate::pagination::{self, ListBody};
use crate::teams::ListQuery;
use crate::{ApiError, ApiJson, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(paths(list_accounts, create_account, delete_account, regenerate_token))]
pub(crate) struct Doc;

/// Registers the routes inside the team's scope ([`crate::TEAM_SCOPE`]).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/virtual-accounts", web::get().to(list_accounts))
        .route("/virtual-accounts", web::post().to(create_account))
        .route("/virtual-accounts/{id}", web::delete().to(delete_account))
        .route(
            "/virtual-accounts/{id}/regenerate-token",
            web::post().to(regenerate_token),
        );
}

/// A new virtual account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountBody {
    /// 1–255 characters, unique in the team.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    name: Option<String>,
    /// `viewer`, `operator` or `admin` (never `owner`).
    #[serde(default)]
    #[schema(value_type = crate::secrets::AccountRoleName, required = true)]
    role: Option<String>,
    /// When the account and its tokens stop working (RFC 3339, in the future); never when
    /// absent.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

impl From<NewAccountBody> for NewVirtualAccountInput {
    fn from(body: NewAccountBody) -> Self {
        NewVirtualAccountInput {
            name: body.name,
            role: body.role,
            expires_at: body.expires_at,
        }
    }
}

/// How long the replaced token keeps working.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegenerateBody {
    /// Seconds the old token keeps working (0: it stops at once); the configured default
    /// when absent, at most the configured maximum.
    #[serde(default)]
    grace_period_seconds: Option<u32>,
}

/// A virtual account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountResponse {
    id: String,
    team_id: String,
    name: String,
    /// `viewer`, `operator` or `admin`.
    role: &'static str,
    /// `null`: never expires.
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<VirtualAccount> for AccountResponse {
    fn from(account: VirtualAccount) -> Self {
        AccountResponse {
            id: account.id.to_string(),
            team_id: account.team_id.to_string(),
            name: account.name.as_str().to_owned(),
            role: account.role.as_str(),
            expires_at: account.expires_at,
            created_at: account.created_at,
        }
    }
}

/// A created virtual account with its token, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedAccount {
    #[serde(flatten)]
    account: AccountResponse,
    /// The account's bearer token (`cus_…`). Only this answer ever holds it.
    token: String,
}

/// A virtual account's new token, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct RegeneratedToken {
    #[serde(flatten)]
    account: AccountResponse,
    /// The new bearer token (`cus_…`). Only this answer ever holds it.
    token: String,
    /// Until when the tokens it replaces keep working (now, for a grace period of 0).
    old_token_expires_at: DateTime<Utc>,
}

/// The team's virtual accounts, by name (viewer). Never their tokens.
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/virtual-accounts",
    tag = "teams",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id"), ListQuery),
    responses(
        (status = 200, description = "A page of virtual accounts", body = ListBody<AccountResponse>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such team, or not one of the caller's", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_accounts(
    state: web::Data<ApiState>,
    caller: Authenticated,
    team_id: web::Path<String>,
    query: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let team_id: TeamId = parse_id(&team_id)?;
    let query = query.into_inner();
    let page = pagination::page(query.limit, query.offset)?;
    let accounts = state
        .custodian
        .list_virtual_accounts(&caller.subject, team_id, page)
        .await?;
    Ok(HttpResponse::Ok().json(ListBody::new(accounts, page, AccountResponse::from)))
}

/// Create a virtual account with its first token (admin).
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/virtual-accounts",
    tag = "teams",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id")),
    request_body = NewAccountBody,
    responses(
        (status = 201, description = "The account and its token, shown once", body = CreatedAccount),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below admin", body = ErrorBody),
        (status = 404, description = "No such team, or not one of the caller's", body = ErrorBody),
        (status = 409, description = "`duplicate_name`", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ValidationBody),
    )
)]
async fn create_account(
    state: web::Data<ApiState>,
    caller: Authenticated,
    team_id: web::Path<String>,
    body: ApiJson<NewAccountBody>,
) -> Result<HttpResponse, ApiError> {
    let team_id: TeamId = parse_id(&team_id)?;
    let (account, issued) = state
        .custodian
        .create_virtual_account(&caller.subject, &caller.context, team_id, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Created().json(CreatedAccount {
        account: AccountResponse::from(account),
        token: issued.token.expose_secret().to_owned(),
    }))
}

/// Delete a virtual account and its tokens (admin).
#[utoipa::path(
    delete,
    path = "/v1/teams/{team_id}/virtual-accounts/{id}",
    tag = "teams",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, description = "The team's id"),
        ("id" = String, Path, description = "The virtual account's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below admin", body = ErrorBody),
        (status = 404, description = "No such account in the caller's team", body = ErrorBody),
    )
)]
async fn delete_account(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team_id, id) = path.into_inner();
    let team_id: TeamId = parse_id(&team_id)?;
    let id: VirtualAccountId = parse_id(&id)?;
    state
        .custodian
        .delete_virtual_account(&caller.subject, &caller.context, team_id, id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replace a virtual account's tokens with a new one (admin). The old tokens keep working
/// for the grace period, then answer 401. The body may be left out (default grace period).
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/virtual-accounts/{id}/regenerate-token",
    tag = "teams",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, description = "The team's id"),
        ("id" = String, Path, description = "The virtual account's id"),
    ),
    request_body(content = Option<RegenerateBody>),
    responses(
        (status = 200, description = "The new token, shown once", body = RegeneratedToken),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below admin", body = ErrorBody),
        (status = 404, description = "No such account in the caller's team", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A grace period over the maximum", body = ValidationBody),
    )
)]
async fn regenerate_token(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let (team_id, id) = path.into_inner();
    let team_id: TeamId = parse_id(&team_id)?;
    let id: VirtualAccountId = parse_id(&id)?;
    let body = optional_body::<RegenerateBody>(&req, payload).await?;
    let custodian = &state.custodian;
    let grace = match body.grace_period_seconds {
        Some(seconds) => Duration::seconds(i64::from(seconds)),
        None => custodian.settings().token_grace_period,
    };
    let (account, issued) = custodian
        .regenerate_virtual_account_token(&caller.subject, &caller.context, team_id, id, body.grace_period_seconds)
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(RegeneratedToken {
        old_token_expires_at: issued.record.created_at + grace,
        account: AccountResponse::from(account),
        token: issued.token.expose_secret().to_owned(),
    }))
}

/// The body as [`ApiJson`] reads it, or the default when the request has none: a
/// `Content-Length` of 0, or neither a length, a chunked body nor a `Content-Type`.
async fn optional_body<T>(req: &HttpRequest, payload: web::Payload) -> Result<T, actix_web::Error>
where
    T: Default + DeserializeOwned + 'static,
{
    let headers = req.headers();
    let no_body = match headers.get(header::CONTENT_LENGTH) {
        Some(length) => length.as_bytes() == b"0",
        None => headers.get(header::TRANSFER_ENCODING).is_none() && headers.get(header::CONTENT_TYPE).is_none(),
    };
    if no_body {
        return Ok(T::default());
    }
    let mut payload = payload.into_inner();
    Ok(ApiJson::<T>::from_request(req, &mut payload).await?.into_inner())
}
