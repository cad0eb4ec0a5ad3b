//! `/v1/teams` and `/v1/teams/{team_id}`: create, list, read, update, delete.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_domain::{NewTeamInput, Role, Team, TeamId, TeamPatchInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::extract::parse_id;
use crate::fields::{absent_or_null, in_body};
use crate::pagination::{self, ListBody};
use crate::{ApiError, ApiJson, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(paths(create_team, list_teams, get_team, update_team, delete_team))]
pub(crate) struct Doc;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/teams", web::post().to(create_team))
        .route("/v1/teams", web::get().to(list_teams));
}

/// Registers the team itself inside its scope ([`crate::TEAM_SCOPE`]).
pub(crate) fn configure_team(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(get_team))
        .route("", web::patch().to(update_team))
        .route("", web::delete().to(delete_team));
}

/// A new team; the caller becomes its owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTeamBody {
    /// 1–255 characters, unique.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    name: Option<String>,
    /// At most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// `free`, `pro` or `enterprise`; only a tenant admin may choose (default from the
    /// configuration).
    #[serde(default)]
    #[schema(value_type = Option<crate::secrets::TierName>)]
    tier: Option<String>,
}

impl From<NewTeamBody> for NewTeamInput {
    fn from(body: NewTeamBody) -> Self {
        NewTeamInput {
            name: body.name,
            description: body.description,
            tier: body.tier,
        }
    }
}

/// A change to a team: only the fields that are present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamPatchBody {
    /// 1–255 characters, unique.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    name: Option<String>,
    /// At most 2000 characters; `null` clears it.
    #[serde(default, deserialize_with = "absent_or_null")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    description: Option<Option<String>>,
    /// `free`, `pro` or `enterprise` (tenant admin only).
    #[serde(default)]
    #[schema(value_type = Option<crate::secrets::TierName>)]
    tier: Option<String>,
}

impl From<TeamPatchBody> for TeamPatchInput {
    fn from(body: TeamPatchBody) -> Self {
        TeamPatchInput {
            name: body.name,
            description: body.description,
            tier: body.tier,
        }
    }
}

/// A team, with the caller's role in it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TeamResponse {
    id: String,
    name: String,
    description: Option<String>,
    /// `free`, `pro` or `enterprise`.
    tier: &'static str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The caller's role: `viewer`, `operator`, `admin` or `owner` (a tenant admin acts
    /// as owner everywhere).
    role: &'static str,
}

impl TeamResponse {
    fn new(team: Team, role: Role) -> Self {
        TeamResponse {
            id: team.id.to_string(),
            name: team.name.as_str().to_owned(),
            description: team.description.map(|d| d.as_str().to_owned()),
            tier: team.tier.as_str(),
            created_at: team.created_at,
            updated_at: team.updated_at,
            role: role.as_str(),
        }
    }
}

/// A page of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    pub(crate) offset: Option<u64>,
}

/// Create a team; the caller becomes its owner.
#[utoipa::path(
    post,
    path = "/v1/teams",
    tag = "teams",
    security(("bearer" = [])),
    request_body = NewTeamBody,
    responses(
        (status = 201, description = "The team", body = TeamResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A virtual account, or `tier` set by someone not a tenant admin", body = ErrorBody),
        (status = 409, description = "`duplicate_name`", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ValidationBody),
    )
)]
async fn create_team(
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: ApiJson<NewTeamBody>,
) -> Result<HttpResponse, ApiError> {
    let team = state
        .custodian
        .create_team(&caller.subject, &caller.context, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Created().json(TeamResponse::new(team, Role::Owner)))
}

/// The caller's teams with their role, by name; every team for a tenant admin.
#[utoipa::path(
    get,
    path = "/v1/teams",
    tag = "teams",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of teams", body = ListBody<TeamResponse>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_teams(
    state: web::Data<ApiState>,
    caller: Authenticated,
    query: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = pagination::page(query.limit, query.offset)?;
    let teams = state.custodian.list_teams(&caller.subject, page).await?;
    Ok(HttpResponse::Ok().json(ListBody::new(teams, page, |(team, role)| TeamResponse::new(team, role))))
}

/// One team with the caller's role (viewer).
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}",
    tag = "teams",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The team", body = TeamResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such team, or not one of the caller's", body = ErrorBody),
    )
)]
async fn get_team(
    state: web::Data<ApiState>,
    caller: Authenticated,
    team_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let team_id: TeamId = parse_id(&team_id)?;
    let (team, role) = state.custodian.get_team(&caller.subject, team_id).await?;
    Ok(HttpResponse::Ok().json(TeamResponse::new(team, role)))
}

/// Change a team's name or description (admin), or its tier (tenant admin).
#[utoipa::path(
    patch,
    path = "/v1/teams/{team_id}",
    tag = "teams",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id")),
    request_body = TeamPatchBody,
    responses(
        (status = 200, description = "The team as it is now", body = TeamResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below admin, or `tier` set by someone not a tenant admin", body = ErrorBody),
        (status = 404, description = "No such team, or not one of the caller's", body = ErrorBody),
        (status = 409, description = "`duplicate_name`", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ValidationBody),
    )
)]
async fn update_team(
    state: web::Data<ApiState>,
    caller: Authenticated,
    team_id: web::Path<String>,
    body: ApiJson<TeamPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let team_id: TeamId = parse_id(&team_id)?;
    let (team, role) = state
        .custodian
        .update_team(&caller.subject, &caller.context, team_id, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(TeamResponse::new(team, role)))
}

/// Delete an empty team (owner).
#[utoipa::path(
    delete,
    path = "/v1/teams/{team_id}",
    tag = "teams",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Below owner", body = ErrorBody),
        (status = 404, description = "No such team, or not one of the caller's", body = ErrorBody),
        (status = 409, description = "`team_not_empty`: it still holds secrets, locations, vault connections or secret groups", body = ErrorBody),
    )
)]
async fn delete_team(
    state: web::Data<ApiState>,
    caller: Authenticated,
    team_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let team_id: TeamId = parse_id(&team_id)?;
    state
        .custodian
        .delete_team(&caller.subject, &caller.context, team_id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
