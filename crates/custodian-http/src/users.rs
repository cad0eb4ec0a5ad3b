//! `/v1/users`: the tenant admin creates, lists, reads, changes and disables users.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_core::NewUserInput;
use custodian_domain::{User, UserId, UserPatchInput};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::extract::parse_id;
use crate::fields::{in_body, in_path};
use crate::pagination::{self, ListBody};
use crate::teams::ListQuery;
use crate::{ApiError, ApiJson, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(paths(create_user, list_users, get_user, update_user, delete_user))]
pub(crate) struct Doc;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/users", web::post().to(create_user))
        .route("/v1/users", web::get().to(list_users))
        .route("/v1/users/{user_id}", web::get().to(get_user))
        .route("/v1/users/{user_id}", web::patch().to(update_user))
        .route("/v1/users/{user_id}", web::delete().to(delete_user));
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserBody {
    /// `local@domain`, 3–254 characters, unique (compared and stored lower-cased).
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 3, max_length = 254)]
    email: Option<String>,
    /// 1–255 characters; the part of the email before `@` when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    display_name: Option<String>,
    /// Default `false`.
    #[serde(default)]
    tenant_admin: bool,
}

impl From<NewUserBody> for NewUserInput {
    fn from(body: NewUserBody) -> Self {
        NewUserInput {
            email: body.email,
            display_name: body.display_name,
            tenant_admin: body.tenant_admin,
        }
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserResponse {
    id: String,
    email: String,
    display_name: String,
    tenant_admin: bool,
    created_at: DateTime<Utc>,
    /// When a tenant admin disabled the user (every token of theirs refused); `null` when
    /// enabled.
    #[schema(required = true)]
    disabled_at: Option<DateTime<Utc>>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        UserResponse {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            tenant_admin: user.tenant_admin,
            created_at: user.created_at,
            disabled_at: user.disabled_at,
        }
    }
}

/// A created user with a first personal access token, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedUser {
    #[serde(flatten)]
    user: UserResponse,
    /// The user's first personal access token (`cus_…`). Only this answer ever holds it.
    token: String,
}

/// Create a user with a first personal access token (tenant admin).
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "identity",
    security(("bearer" = [])),
    request_body = NewUserBody,
    responses(
        (status = 201, description = "The user and their first token, shown once", body = CreatedUser),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not a tenant admin", body = ErrorBody),
        (status = 409, description = "`duplicate_email`", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ValidationBody),
    )
)]
async fn create_user(
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: ApiJson<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let (user, issued) = state
        .custodian
        .create_user(&caller.subject, &caller.context, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Created().json(CreatedUser {
        user: UserResponse::from(user),
        token: issued.token.expose_secret().to_owned(),
    }))
}

/// Every user, by email (tenant admin).
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "identity",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of users", body = ListBody<UserResponse>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not a tenant admin", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_users(
    state: web::Data<ApiState>,
    caller: Authenticated,
    query: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = pagination::page(query.limit, query.offset)?;
    let users = state.custodian.list_users(&caller.subject, page).await?;
    Ok(HttpResponse::Ok().json(ListBody::new(users, page, UserResponse::from)))
}

/// One user (tenant admin).
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}",
    tag = "identity",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not a tenant admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn get_user(
    state: web::Data<ApiState>,
    caller: Authenticated,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id: UserId = parse_id(&user_id)?;
    let user = state.custodian.get_user(&caller.subject, user_id).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}

/// A change of a user: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatchBody {
    /// 1–255 characters on one line.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    display_name: Option<String>,
    #[serde(default)]
    tenant_admin: Option<bool>,
    /// `true` disables the user: every token of theirs is refused from the next request on.
    /// `false` enables them again.
    #[serde(default)]
    disabled: Option<bool>,
}

impl From<UserPatchBody> for UserPatchInput {
    fn from(body: UserPatchBody) -> Self {
        UserPatchInput {
            display_name: body.display_name,
            tenant_admin: body.tenant_admin,
            disabled: body.disabled,
        }
    }
}

/// Change a user's display name or tenant admin, or disable or enable them (tenant admin).
/// A tenant admin cannot disable themselves or give up their own tenant admin.
#[utoipa::path(
    patch,
    path = "/v1/users/{user_id}",
    tag = "identity",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = UserPatchBody,
    responses(
        (status = 200, description = "The user as changed", body = UserResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not a tenant admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule (`self_lockout` for a change that would lock the caller out)", body = ValidationBody),
    )
)]
async fn update_user(
    state: web::Data<ApiState>,
    caller: Authenticated,
    user_id: web::Path<String>,
    body: ApiJson<UserPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let user_id: UserId = parse_id(&user_id)?;
    let user = state
        .custodian
        .update_user(&caller.subject, &caller.context, user_id, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}

/// Delete a user (tenant admin): their tokens and memberships go with them. Refused while
/// they are the only owner of a team (409 `last_owner`, naming the teams); a tenant admin
/// cannot delete themselves.
#[utoipa::path(
    delete,
    path = "/v1/users/{user_id}",
    tag = "identity",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted, with their tokens and memberships"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not a tenant admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`last_owner`: the user is the only owner of the teams named", body = ErrorBody),
        (status = 422, description = "`self_lockout`: the caller's own user", body = ValidationBody),
    )
)]
async fn delete_user(
    state: web::Data<ApiState>,
    caller: Authenticated,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id: UserId = parse_id(&user_id)?;
    state
        .custodian
        .delete_user(&caller.subject, &caller.context, user_id)
        .await
        .map_err(in_path)?;
    Ok(HttpResponse::NoContent().finish())
}
