//! Locations: `/v1/teams/{team_id}/locations`, the buckets and containers that
//! use a storage secret of the same team and type.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_core::LocationView;
use custodian_domain::{LocationId, LocationInput, LocationPatchInput, SecretId, SecretType, TeamId};
use custodian_ports::LocationFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::extract::{parse_id, parse_ids};
use crate::fields::{absent_or_null, in_body, parse_query_enum, query_error};
use crate::pagination::{ListBody, page};
use crate::secrets::{SecretTypeName, VerificationBody};
use crate::{ApiError, ApiJson, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(paths(
    create_location,
    list_locations,
    get_location,
    update_location,
    delete_location,
    verify_location
))]
pub(crate) struct Doc;

/// Registers the routes inside the team's scope ([`crate::TEAM_SCOPE`]).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/locations")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::post().to(create_location))
            .route(web::get().to(list_locations)),
    )
    .service(
        web::resource("/locations/{location_id}")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::get().to(get_location))
            .route(web::patch().to(update_location))
            .route(web::delete().to(delete_location)),
    )
    .service(
        web::resource("/locations/{location_id}/verify")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::post().to(verify_location)),
    );
}

/// A new location. `location_type` must equal the secret's `secret_type`;
/// `endpoint_url` is required for `s3_compatible`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateLocationBody {
    /// Location name, unique in the team.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    name: Option<String>,
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[schema(value_type = SecretTypeName, required = true)]
    location_type: Option<String>,
    /// The bucket or container.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    bucket_name: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    region: Option<String>,
    /// An absolute `https` URL without credentials, query or fragment (`http` only for
    /// loopback hosts).
    endpoint_url: Option<String>,
    /// A storage secret of the same team.
    #[schema(value_type = String, required = true, format = "uuid")]
    secret_id: Option<String>,
}

impl From<CreateLocationBody> for LocationInput {
    fn from(body: CreateLocationBody) -> Self {
        LocationInput {
            name: body.name,
            description: body.description,
            location_type: body.location_type,
            bucket_name: body.bucket_name,
            region: body.region,
            endpoint_url: body.endpoint_url,
            secret_id: body.secret_id,
        }
    }
}

/// A change to a location. Every field is optional; `null` clears `description`,
/// `region` and `endpoint_url`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateLocationBody {
    #[schema(min_length = 1, max_length = 255)]
    name: Option<String>,
    #[serde(default, deserialize_with = "absent_or_null")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    description: Option<Option<String>>,
    #[schema(value_type = Option<SecretTypeName>)]
    location_type: Option<String>,
    #[schema(min_length = 1, max_length = 255)]
    bucket_name: Option<String>,
    #[serde(default, deserialize_with = "absent_or_null")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64)]
    region: Option<Option<String>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    #[schema(value_type = Option<String>)]
    endpoint_url: Option<Option<String>>,
    #[schema(format = "uuid")]
    secret_id: Option<String>,
}

impl From<UpdateLocationBody> for LocationPatchInput {
    fn from(body: UpdateLocationBody) -> Self {
        LocationPatchInput {
            name: body.name,
            description: body.description,
            location_type: body.location_type,
            bucket_name: body.bucket_name,
            region: body.region,
            endpoint_url: body.endpoint_url,
            secret_id: body.secret_id,
        }
    }
}

/// Filters and page of the location list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LocationListQuery {
    /// Only locations that use this secret.
    #[param(format = "uuid")]
    secret_id: Option<String>,
    /// Only locations of this type.
    #[param(value_type = Option<SecretTypeName>)]
    location_type: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
}

/// A location, with the name of the secret it uses.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LocationResponse {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    #[schema(value_type = SecretTypeName)]
    location_type: &'static str,
    bucket_name: String,
    #[schema(required = true)]
    region: Option<String>,
    #[schema(required = true)]
    endpoint_url: Option<String>,
    #[schema(format = "uuid")]
    secret_id: String,
    secret_name: String,
    created_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    created_by: String,
    updated_at: DateTime<Utc>,
    #[schema(format = "uuid")]
    updated_by: String,
}

impl From<LocationView> for LocationResponse {
    fn from(view: LocationView) -> Self {
        let l = view.location;
        LocationResponse {
            id: l.id.to_string(),
            name: l.name.as_str().to_owned(),
            description: l.description.as_ref().map(|d| d.as_str().to_owned()),
            location_type: l.location_type.as_str(),
            bucket_name: l.bucket_name.as_str().to_owned(),
            region: l.region.as_ref().map(|r| r.as_str().to_owned()),
            endpoint_url: l.endpoint_url.as_ref().map(|e| e.as_str().to_owned()),
            secret_id: l.secret_id.to_string(),
            secret_name: view.secret_name,
            created_at: l.created_at,
            created_by: l.created_by.to_string(),
            updated_at: l.updated_at,
            updated_by: l.updated_by.to_string(),
        }
    }
}

/// Create a location (admin).
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/locations",
    tag = "locations",
    security(("bearer" = [])),
    params(("team_id" = String, Path, format = "uuid", description = "The team")),
    request_body = CreateLocationBody,
    responses(
        (status = 201, description = "The location was created", body = LocationResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 409, description = "The name is taken in the team", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Every failing field (a type other than the secret's, a secret of another team, …)", body = ValidationBody),
    )
)]
async fn create_location(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<CreateLocationBody>,
) -> Result<HttpResponse, ApiError> {
    let team: TeamId = parse_id(&path)?;
    let view = state
        .custodian
        .create_location(&caller.subject, &caller.context, team, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Created().json(LocationResponse::from(view)))
}

/// The team's locations (viewer).
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/locations",
    tag = "locations",
    security(("bearer" = [])),
    params(("team_id" = String, Path, format = "uuid", description = "The team"), LocationListQuery),
    responses(
        (status = 200, description = "One page of locations", body = ListBody<LocationResponse>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_locations(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    query: ApiQuery<LocationListQuery>,
) -> Result<HttpResponse, ApiError> {
    let team: TeamId = parse_id(&path)?;
    let query = query.into_inner();
    let page = page(query.limit, query.offset)?;
    let secret_id = query
        .secret_id
        .as_deref()
        .map(|s| {
            s.parse::<SecretId>()
                .map_err(|_| query_error("secret_id", "invalid_format", "must be a secret id (a UUID)"))
        })
        .transpose()?;
    let filter = LocationFilter {
        secret_id,
        location_type: parse_query_enum::<SecretType>("location_type", query.location_type.as_deref())?,
    };
    let found = state
        .custodian
        .list_locations(&caller.subject, team, &filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(ListBody::new(found, page, LocationResponse::from)))
}

/// A location (viewer).
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/locations/{location_id}",
    tag = "locations",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("location_id" = String, Path, format = "uuid", description = "The location"),
    ),
    responses(
        (status = 200, description = "The location", body = LocationResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such location in the team", body = ErrorBody),
    )
)]
async fn get_location(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, LocationId>(&path)?;
    let view = state.custodian.get_location(&caller.subject, team, id).await?;
    Ok(HttpResponse::Ok().json(LocationResponse::from(view)))
}

/// Change a location (admin); its type must still equal its secret's type.
#[utoipa::path(
    patch,
    path = "/v1/teams/{team_id}/locations/{location_id}",
    tag = "locations",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("location_id" = String, Path, format = "uuid", description = "The location"),
    ),
    request_body = UpdateLocationBody,
    responses(
        (status = 200, description = "The location as it is now", body = LocationResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such location in the team", body = ErrorBody),
        (status = 409, description = "The name is taken in the team", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Every failing field", body = ValidationBody),
    )
)]
async fn update_location(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<UpdateLocationBody>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, LocationId>(&path)?;
    let view = state
        .custodian
        .update_location(&caller.subject, &caller.context, team, id, body.into_inner().into())
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(LocationResponse::from(view)))
}

/// Delete a location (admin).
#[utoipa::path(
    delete,
    path = "/v1/teams/{team_id}/locations/{location_id}",
    tag = "locations",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("location_id" = String, Path, format = "uuid", description = "The location"),
    ),
    responses(
        (status = 204, description = "The location is gone"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin of the team", body = ErrorBody),
        (status = 404, description = "No such location in the team", body = ErrorBody),
    )
)]
async fn delete_location(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, LocationId>(&path)?;
    state
        .custodian
        .delete_location(&caller.subject, &caller.context, team, id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Resolve and check the credentials of the location's secret now (operator). Answers
/// the fields found, never their values.
#[utoipa::path(
    post,
    path = "/v1/teams/{team_id}/locations/{location_id}/verify",
    tag = "locations",
    security(("bearer" = [])),
    params(
        ("team_id" = String, Path, format = "uuid", description = "The team"),
        ("location_id" = String, Path, format = "uuid", description = "The location"),
    ),
    responses(
        (status = 200, description = "The outcome, verified or not", body = VerificationBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an operator of the team", body = ErrorBody),
        (status = 404, description = "No such location in the team", body = ErrorBody),
        (status = 503, description = "The database or the credential store does not answer", body = ErrorBody),
    )
)]
async fn verify_location(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team, id) = parse_ids::<TeamId, LocationId>(&path)?;
    let verification = state
        .custodian
        .verify_location(&caller.subject, &caller.context, team, id)
        .await?;
    Ok(HttpResponse::Ok().json(VerificationBody::from(verification)))
}
