//! `GET /v1/me`: the caller and their teams.

use actix_web::{HttpResponse, web};
use custodian_core::Me;
use custodian_domain::Subject;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::{ApiError, ApiState, Authenticated, ErrorBody};

#[derive(OpenApi)]
#[openapi(paths(me))]
pub(crate) struct Doc;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/me", web::get().to(me));
}

/// One team of the caller, with the caller's role in it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeTeam {
    id: String,
    name: String,
    /// `viewer`, `operator`, `admin` or `owner`.
    role: &'static str,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeResponse {
    id: String,
    /// `user` or `virtual_account`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// A user's email; absent for a virtual account.
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

/// The caller and their teams.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
    )
)]
async fn me(state: web::Data<ApiState>, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let me = state.custodian.me(&caller.subject).await?;
    Ok(HttpResponse::Ok().json(MeResponse::from(me)))
}
