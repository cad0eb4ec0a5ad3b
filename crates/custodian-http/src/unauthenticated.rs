//! Routes without authentication: `GET /healthz`, `GET /readyz`, `GET /openapi.json`.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::{ApiError, ApiState, ErrorBody};

#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, openapi_json))]
pub(crate) struct Doc;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/openapi.json", web::get().to(openapi_json));
}

/// `{"status":"ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "The server is up", body = Status)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The database answers a cheap read; 503 `service_unavailable` otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses(
        (status = 200, description = "The database answers", body = Status),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
async fn readyz(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state.custodian.check_ready().await?;
    Ok(HttpResponse::Ok().json(Status { status: "ok" }))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(crate::OPENAPI_JSON)
}
