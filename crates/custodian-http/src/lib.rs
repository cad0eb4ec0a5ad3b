//! Custodian's HTTP API: `GET /healthz`, `GET /readyz` and the `/v1` routes (SPEC §5).
//!
//! The routes read an [`ApiState`] from the application data: register it with
//! `App::new().app_data(web::Data::new(state)).configure(custodian_http::configure)`.

mod auth;
mod error;

use std::fmt;
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use custodian_core::{Custodian, Me};
use custodian_domain::Subject;
use custodian_ports::UserRepository;
use serde::Serialize;

pub use auth::Authenticated;
pub use error::ApiError;

/// What the handlers share: the core's facade and a cheap read for readiness.
#[derive(Clone)]
pub struct ApiState {
    /// Every use case.
    pub custodian: Custodian,
    /// Read (`count`) by `GET /readyz` to check that the database answers.
    pub readiness: Arc<dyn UserRepository>,
}

impl fmt::Debug for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiState")
            .field("custodian", &self.custodian)
            .finish_non_exhaustive()
    }
}

/// Register every route. The application must hold a `web::Data<ApiState>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .service(web::scope("/v1").route("/me", web::get().to(me)));
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The database answers a cheap read; 503 `service_unavailable` otherwise.
async fn readyz(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state
        .readiness
        .count()
        .await
        .map_err(|e| ApiError::from(custodian_core::CoreError::from(e)))?;
    Ok(HttpResponse::Ok().json(Status { status: "ok" }))
}

/// One team of the caller, as `GET /v1/me` lists it.
#[derive(Debug, Serialize)]
struct MeTeam {
    id: String,
    name: String,
    role: &'static str,
}

/// The body of `GET /v1/me`.
#[derive(Debug, Serialize)]
struct MeResponse {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    display_name: String,
    tenant_admin: bool,
    teams: Vec<MeTeam>,
}

impl From<Me> for MeResponse {
    fn from(me: Me) -> Self {
        let teams = me
            .teams
            .into_iter()
            .map(|(team, role)| MeTeam {
                id: team.id.to_string(),
                name: team.name.as_str().to_owned(),
                role: role.as_str(),
            })
            .collect();
        let kind = me.subject.kind().as_str();
        match me.subject {
            Subject::User {
                id,
                email,
                display_name,
                tenant_admin,
            } => MeResponse {
                id: id.to_string(),
                kind,
                email: Some(email.as_str().to_owned()),
                display_name: display_name.as_str().to_owned(),
                tenant_admin,
                teams,
            },
            Subject::VirtualAccount { id, name, .. } => MeResponse {
                id: id.to_string(),
                kind,
                email: None,
                display_name: name.as_str().to_owned(),
                tenant_admin: false,
                teams,
            },
        }
    }
}

/// `GET /v1/me`: the caller and their teams.
async fn me(state: web::Data<ApiState>, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let me = state.custodian.me(&caller.subject).await?;
    Ok(HttpResponse::Ok().json(MeResponse::from(me)))
}
