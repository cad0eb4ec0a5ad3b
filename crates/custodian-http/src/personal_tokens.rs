//! `/api/svc/v1/personal-access-tokens`: the calling user's personal access
//! tokens. A token is shown once, in the create answer; lists never hold one.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_core::SubjectSummary;
use custodian_domain::{TokenId, TokenRecord};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::ApiState;
use crate::pagination;
use crate::secret_groups::SubjectBody;
use crate::svc_envelope::{self, Empty, ListData, SvcCaller, SvcError, SvcErrorBody, SvcJson, SvcQuery};

#[derive(OpenApi)]
#[openapi(paths(create_token, list_tokens, delete_token))]
pub(crate) struct Doc;

const TOKENS: &str = "/api/svc/v1/personal-access-tokens";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(TOKENS, web::post().to(create_token))
        .route(TOKENS, web::get().to(list_tokens))
        .route(
            "/api/svc/v1/personal-access-tokens/{id}",
            web::delete().to(delete_token),
        );
}

/// A new personal access token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct NewTokenBody {
    /// 3–36 characters of `[a-z][a-z0-9-]*`.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 3, max_length = 36, pattern = "^[a-z][a-z0-9-]*$")]
    name: Option<String>,
    /// When the token stops working (RFC 3339, in the future); never when absent.
    #[serde(default)]
    expiration_date: Option<DateTime<Utc>>,
}

/// A personal access token's record (never the token), in the shape TrueFoundry's SDK reads
/// its tokens in (its `VirtualAccount` model).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PersonalToken {
    id: String,
    name: String,
    /// Always `personal-access-token`.
    #[serde(rename = "type")]
    #[schema(example = "personal-access-token")]
    kind: &'static str,
    tenant_name: String,
    /// The user who holds the token (who created it).
    created_by_subject: SubjectBody,
    /// The id of the user who holds the token.
    account_id: String,
    /// When the token stops working; `null`: never.
    expiration_date: Option<DateTime<Utc>>,
    /// Whether it has stopped working for its age.
    is_expired: bool,
    created_at: DateTime<Utc>,
    /// A token never changes: the time it was created.
    updated_at: DateTime<Utc>,
    /// The last request the token authenticated; `null`: never used.
    last_used_at: Option<DateTime<Utc>>,
    /// The same as `lastUsedAt`.
    last_accessed_at: Option<DateTime<Utc>>,
}

impl PersonalToken {
    fn of(record: TokenRecord, holder: &SubjectSummary, tenant: &str, now: DateTime<Utc>) -> Self {
        PersonalToken {
            id: record.id.to_string(),
            name: record.name.map(|n| n.as_str().to_owned()).unwrap_or_default(),
            kind: "personal-access-token",
            tenant_name: tenant.to_owned(),
            created_by_subject: SubjectBody::of(holder),
            account_id: holder.id.to_string(),
            expiration_date: record.expires_at,
            is_expired: record.expires_at.is_some_and(|at| at <= now),
            created_at: record.created_at,
            updated_at: record.created_at,
            last_used_at: record.last_used_at,
            last_accessed_at: record.last_used_at,
        }
    }
}

/// A created token: its record under `data` and the token itself, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    data: PersonalToken,
    /// The bearer token (`cus_…`). Only this answer ever holds it.
    token: String,
}

/// A page of the caller's tokens.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TokenListQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
    /// Only tokens whose name contains this (ignoring case).
    #[serde(rename = "nameSearchQuery")]
    name_search_query: Option<String>,
}

/// Issue a personal access token to the calling user.
#[utoipa::path(
    post,
    path = "/api/svc/v1/personal-access-tokens",
    tag = "personal-access-tokens",
    security(("bearer" = [])),
    request_body = NewTokenBody,
    responses(
        (status = 200, description = "The token, shown once", body = CreatedToken),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "A virtual account cannot hold personal access tokens", body = SvcErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = SvcErrorBody),
        (status = 415, description = "The body is not JSON", body = SvcErrorBody),
        (status = 422, description = "A field breaks a rule", body = SvcErrorBody),
    )
)]
async fn create_token(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    body: SvcJson<NewTokenBody>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(caller) = caller;
    let body = body.0;
    let name = crate::fields::required(body.name, "name")?;
    let issued = state
        .custodian
        .create_personal_token(&caller.subject, &caller.context, &name, body.expiration_date)
        .await
        .map_err(svc_envelope::in_body)?;
    Ok(HttpResponse::Ok().json(CreatedToken {
        token: issued.token.expose_secret().to_owned(),
        data: PersonalToken::of(
            issued.record,
            &SubjectSummary::of(&caller.subject),
            &state.custodian.settings().tenant_name,
            chrono::Utc::now(),
        ),
    }))
}

/// The calling user's tokens, newest first; deleted tokens are not listed.
#[utoipa::path(
    get,
    path = "/api/svc/v1/personal-access-tokens",
    tag = "personal-access-tokens",
    security(("bearer" = [])),
    params(TokenListQuery),
    responses(
        (status = 200, description = "A page of tokens", body = ListData<PersonalToken>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "A virtual account has no personal access tokens", body = SvcErrorBody),
        (status = 422, description = "A bad query parameter", body = SvcErrorBody),
    )
)]
async fn list_tokens(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    query: SvcQuery<TokenListQuery>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(caller) = caller;
    let page = pagination::page(query.0.limit, query.0.offset)?;
    let tokens = state.custodian.list_personal_tokens(&caller.subject).await?;
    // A personal access token is only ever revoked by its deletion.
    let wanted = query.0.name_search_query.map(|q| q.to_lowercase());
    let live: Vec<TokenRecord> = tokens
        .into_iter()
        .filter(|t| t.revoked_at.is_none())
        .filter(|t| {
            wanted
                .as_deref()
                .is_none_or(|q| t.name.as_ref().is_some_and(|n| n.as_str().to_lowercase().contains(q)))
        })
        .collect();
    let holder = SubjectSummary::of(&caller.subject);
    let tenant = &state.custodian.settings().tenant_name;
    let now = chrono::Utc::now();
    Ok(HttpResponse::Ok().json(ListData::slice_of(live, page, |t| {
        PersonalToken::of(t, &holder, tenant, now)
    })))
}

/// Delete (revoke) one of the calling user's tokens; it stops working at once.
#[utoipa::path(
    delete,
    path = "/api/svc/v1/personal-access-tokens/{id}",
    tag = "personal-access-tokens",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Deleted: `{}`", body = Empty),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "A virtual account has no personal access tokens", body = SvcErrorBody),
        (status = 404, description = "No such token of the caller", body = SvcErrorBody),
    )
)]
async fn delete_token(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(caller) = caller;
    let id: TokenId = svc_envelope::parse_id(&id)?;
    state
        .custodian
        .revoke_personal_token(&caller.subject, &caller.context, id)
        .await?;
    Ok(HttpResponse::Ok().json(Empty {}))
}
