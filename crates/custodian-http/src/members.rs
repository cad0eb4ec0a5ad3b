//! `/v1/teams/{team_id}/members`: a team's members and their roles.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_domain::{AddMemberInput, Membership, RoleChangeInput, TeamId, User, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::extract::parse_id;
use crate::fields::{in_body, required};
use crate::pagination::{self, ListBody};
use crate::teams::ListQuery;
use crate::{ApiError, ApiJson, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(paths(list_members, add_member, change_member_role, remove_member))]
pub(crate) struct Doc;

/// Registers the routes inside the team's scope ([`crate::TEAM_SCOPE`]).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/members", web::get().to(list_members))
        .route("/members", web::post().to(add_member))
        .route("/members/{user_id}", web::patch().to(change_member_role))
        .route("/members/{user_id}", web::delete().to(remove_member));
}

/// A user to add: exactly one of `email` and `user_id`, and a role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMemberBody {
    /// The user's email (3–254 characters, any case).
    #[serde(default)]
    #[schema(min_length = 3, max_length = 254)]
    email: Option<String>,
    /// The user's id.
    #[serde(default)]
    user_id: Option<String>,
    /// `viewer`, `operator`, `admin` or `owner` (granting `owner` needs owner).
    #[serde(default)]
    #[schema(value_type = crate::secrets::RoleName, required = true)]
    role: Option<String>,
}

impl From<NewMemberBody> for AddMemberInput {
    fn from(body: NewMemberBody) -> Self {
        AddMemberInput {
            email: body.email,
            user_id: body.user_id,
            role: body.role,
        }
    }
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberPatchBody {
    /// `viewer`, `operator`, `admin` or `owner` (granting or taking away `owner` needs owner).
    #[serde(default)]
    #[schema(value_type = crate::secrets::RoleName, required = true)]
    role: Option<String>,
}

/// A member of a team.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberResponse {
    user_id: String,
    email: String,
    display_name: String,
    /// `viewer`, `operator`, `admin` or `owner`.
    role: &'static str,
    /// When the user joined the team.
    created_at: DateTime<Utc>,
}

impl MemberResponse {
    fn new(membership: Membership, user: User) -> Self {
        MemberResponse {
            user_id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            role: membership.role.as_str(),
            created_at: membership.created_at,
        }
    }
}

/// The team's members, by email (viewer).
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/members",
    tag = "teams",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id"), ListQuery),
    responses(
        (status = 200, description = "A page of members", body = ListBody<MemberResponse>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such team, or not one of the caller's", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_members(
    state: web::Data<ApiState>,
    caller: Authenticated,
    team_id: web::Path<String>,
    query: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let team_id: TeamId = parse_id(&team_id)?;
    let query = query.into_inner();
    let page = pagination::page(query.limit, query.offset)?;
    let members = state.custodian.list_members(&caller.subject, team_id, page).await?;
    Ok(
        HttpResponse::Ok().json(ListBody::new(members, page, |(membership, user)| {
            MemberResponse::new(membership, user)
        })),
    )
}

/// Add a user to the team (admin; granting `owner` needs owner). The tier's member limit
/// applies.
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/members",
    tag = "teams",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id")),
    request_body = NewMemberBody,
    responses(
        (status = 201, description = "The new member", body = MemberResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below admin (owner to grant `owner`), or `tier_limit_exceeded`", body = ErrorBody),
        (status = 404, description = "No such team, or not one of the caller's", body = ErrorBody),
        (status = 409, description = "`already_member`", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or names no user", body = ValidationBody),
    )
)]
async fn add_member(
    state: web::Data<ApiState>,
    caller: Authenticated,
    team_id: web::Path<String>,
    body: ApiJson<NewMemberBody>,
) -> Result<HttpResponse, ApiError> {
    let team_id: TeamId = parse_id(&team_id)?;
    let custodian = &state.custodian;
    let membership = custodian
        .add_member(&caller.subject, &caller.context, team_id, body.into_inner().into())
        .await
        .map_err(in_body)?;
    let (membership, user) = custodian
        .get_member(&caller.subject, team_id, membership.user_id)
        .await?;
    Ok(HttpResponse::Created().json(MemberResponse::new(membership, user)))
}

/// Change a member's role (admin; granting or taking away `owner` needs owner).
#[utoipa::path(
    patch,
    path = "/v1/teams/{team_id}/members/{user_id}",
    tag = "teams",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, description = "The team's id"),
        ("user_id" = String, Path, description = "The member's user id"),
    ),
    request_body = MemberPatchBody,
    responses(
        (status = 200, description = "The member as they are now", body = MemberResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below admin (owner for `owner`)", body = ErrorBody),
        (status = 404, description = "No such team or member", body = ErrorBody),
        (status = 409, description = "`last_owner`: the team would have no owner", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Not a role", body = ValidationBody),
    )
)]
async fn change_member_role(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<MemberPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let (team_id, user_id) = path.into_inner();
    let team_id: TeamId = parse_id(&team_id)?;
    let user_id: UserId = parse_id(&user_id)?;
    // A missing role is refused before anything else, like a body that does not parse.
    let role = required(body.into_inner().role, "role")?;
    let custodian = &state.custodian;
    custodian
        .change_member_role(
            &caller.subject,
            &caller.context,
            team_id,
            user_id,
            RoleChangeInput { role: Some(role) },
        )
        .await
        .map_err(in_body)?;
    let (membership, user) = custodian.get_member(&caller.subject, team_id, user_id).await?;
    Ok(HttpResponse::Ok().json(MemberResponse::new(membership, user)))
}

/// Remove a member (admin; removing an owner needs owner).
#[utoipa::path(
    delete,
    path = "/v1/teams/{team_id}/members/{user_id}",
    tag = "teams",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, description = "The team's id"),
        ("user_id" = String, Path, description = "The member's user id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below admin (owner to remove an owner)", body = ErrorBody),
        (status = 404, description = "No such team or member", body = ErrorBody),
        (status = 409, description = "`last_owner`: the team would have no owner", body = ErrorBody),
    )
)]
async fn remove_member(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team_id, user_id) = path.into_inner();
    let team_id: TeamId = parse_id(&team_id)?;
    let user_id: UserId = parse_id(&user_id)?;
    state
        .custodian
        .remove_member(&caller.subject, &caller.context, team_id, user_id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
