//! The audit trail: `GET /v1/teams/{team_id}/audit-events`, newest first, as
//! JSON or, with `Accept: text/csv`, as CSV with a header row. Events never hold a secret
//! value, so neither does either form.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_core::CoreError;
use custodian_domain::{AuditEvent, ResourceType, SubjectId, TeamId};
use custodian_ports::{AuditFilter, Page, Paged};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use crate::extract::parse_id;
use crate::fields::{parse_query_enum, query_error};
use crate::pagination::{ListBody, page};
use crate::{ApiError, ApiQuery, ApiState, Authenticated, ErrorBody, ValidationBody};

#[derive(OpenApi)]
#[openapi(
    paths(list_audit_events, list_tenant_audit_events),
    components(schemas(ResourceTypeName))
)]
pub(crate) struct Doc;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/audit-events")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::get().to(list_tenant_audit_events)),
    );
}

/// Registers the team's audit events inside its scope ([`crate::TEAM_SCOPE`]).
pub(crate) fn configure_team(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/audit-events")
            .default_service(web::to(crate::unmatched::answer))
            .route(web::get().to(list_audit_events)),
    );
}

/// The kind of resource an audit event is about.
#[derive(Debug)]
pub(crate) struct ResourceTypeName;

impl PartialSchema for ResourceTypeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("The kind of resource an audit event is about."))
            .enum_values(Some(ResourceType::ALL.iter().map(|r| r.as_str())))
            .into()
    }
}

impl ToSchema for ResourceTypeName {}

/// Filters and page of the audit trail.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only events about this kind of resource.
    #[param(value_type = Option<ResourceTypeName>)]
    resource_type: Option<String>,
    /// Only events of this user or virtual account.
    #[param(format = "uuid")]
    actor_id: Option<String>,
    /// Events at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Events before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
}

fn instant(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| query_error(name, "invalid_format", "must be an RFC 3339 date-time"))
        })
        .transpose()
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let actor_id = self
            .actor_id
            .as_deref()
            .map(|a| {
                a.parse::<SubjectId>().map_err(|_| {
                    query_error(
                        "actor_id",
                        "invalid_format",
                        "must be a user or virtual-account id (a UUID)",
                    )
                })
            })
            .transpose()?;
        let filter = AuditFilter {
            resource_type: parse_query_enum("resource_type", self.resource_type.as_deref())?,
            actor_id,
            since: instant("since", self.since.as_deref())?,
            until: instant("until", self.until.as_deref())?,
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && until < since
        {
            return Err(query_error("until", "out_of_range", "must not be before since"));
        }
        Ok(filter)
    }
}

/// One audit event: who did what to which resource, when, and how it ended.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEventBody {
    #[schema(format = "uuid")]
    id: String,
    occurred_at: DateTime<Utc>,
    /// The user or virtual account that acted; `null` when unknown.
    #[schema(required = true, format = "uuid")]
    actor_id: Option<String>,
    /// `user` or `virtual_account`.
    #[schema(required = true)]
    actor_type: Option<&'static str>,
    /// `create`, `update`, `delete`, `rotate`, `verify`, `resolve`, …
    action: &'static str,
    #[schema(value_type = ResourceTypeName)]
    resource_type: &'static str,
    #[schema(required = true, format = "uuid")]
    resource_id: Option<String>,
    #[schema(required = true)]
    resource_name: Option<String>,
    /// `success`, `failure` or `denied`.
    outcome: &'static str,
    /// A code or short sentence about the outcome (never a value).
    #[schema(required = true)]
    detail: Option<String>,
    #[schema(required = true)]
    request_id: Option<String>,
    #[schema(required = true)]
    client_ip: Option<String>,
    #[schema(required = true)]
    user_agent: Option<String>,
}

impl From<AuditEvent> for AuditEventBody {
    fn from(e: AuditEvent) -> Self {
        AuditEventBody {
            id: e.id.to_string(),
            occurred_at: e.occurred_at,
            actor_id: e.actor_id.map(|a| a.to_string()),
            actor_type: e.actor_kind.map(|k| k.as_str()),
            action: e.action.as_str(),
            resource_type: e.resource_type.as_str(),
            resource_id: e.resource_id.map(|r| r.to_string()),
            resource_name: e.resource_name,
            outcome: e.outcome.as_str(),
            detail: e.detail,
            request_id: e.context.request_id,
            client_ip: e.context.client_ip,
            user_agent: e.context.user_agent,
        }
    }
}

/// The columns of the CSV form, in order; the same names as the JSON fields.
const CSV_COLUMNS: [&str; 13] = [
    "id",
    "occurred_at",
    "actor_id",
    "actor_type",
    "action",
    "resource_type",
    "resource_id",
    "resource_name",
    "outcome",
    "detail",
    "request_id",
    "client_ip",
    "user_agent",
];

/// A cell a spreadsheet would not run as a formula: text that starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'` (OWASP's advice for CSV exports).
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

impl AuditEventBody {
    fn csv_row(&self) -> [String; 13] {
        let opt = |v: &Option<String>| v.as_deref().map(cell).unwrap_or_default();
        [
            self.id.clone(),
            self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            opt(&self.actor_id),
            self.actor_type.unwrap_or_default().to_owned(),
            self.action.to_owned(),
            self.resource_type.to_owned(),
            opt(&self.resource_id),
            opt(&self.resource_name),
            self.outcome.to_owned(),
            opt(&self.detail),
            opt(&self.request_id),
            opt(&self.client_ip),
            opt(&self.user_agent),
        ]
    }
}

fn csv_body(events: &[AuditEventBody]) -> Result<Vec<u8>, ApiError> {
    let failed = |e: csv::Error| ApiError(CoreError::internal(format!("could not write the audit CSV: {e}")));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).map_err(failed)?;
    for event in events {
        writer.write_record(event.csv_row()).map_err(failed)?;
    }
    writer.into_inner().map_err(|e| {
        ApiError(CoreError::internal(format!(
            "could not write the audit CSV: {}",
            e.error()
        )))
    })
}

/// Whether the client asks for CSV (`Accept: text/csv`).
fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// The team's audit trail, newest first (viewer). `Accept: text/csv` answers CSV with a
/// header row and one row per event of the page.
#[utoipa::path(
    get,
    path = "/v1/teams/{team_id}/audit-events",
    tag = "audit",
    security(("bearer" = [])),
    params(("team_id" = String, Path, format = "uuid", description = "The team"), AuditQuery),
    responses(
        (status = 200, description = "One page of events", content(
            (ListBody<AuditEventBody> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_audit_events(
    state: web::Data<ApiState>,
    caller: Authenticated,
    req: HttpRequest,
    path: web::Path<String>,
    query: ApiQuery<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let team: TeamId = parse_id(&path)?;
    let query = query.into_inner();
    let page = page(query.limit, query.offset)?;
    let filter = query.filter()?;
    let found = state
        .custodian
        .list_audit_events(&caller.subject, team, &filter, page)
        .await?;
    answer(&req, found, page)
}

/// The tenant's audit trail, newest first (tenant admin): the events that belong to no
/// team — refused authentications, users created, changed and disabled. Filters and CSV as
/// for a team's trail.
#[utoipa::path(
    get,
    path = "/v1/audit-events",
    tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of events", content(
            (ListBody<AuditEventBody> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not a tenant admin", body = ErrorBody),
        (status = 422, description = "A bad query parameter", body = ValidationBody),
    )
)]
async fn list_tenant_audit_events(
    state: web::Data<ApiState>,
    caller: Authenticated,
    req: HttpRequest,
    query: ApiQuery<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page(query.limit, query.offset)?;
    let filter = query.filter()?;
    let found = state
        .custodian
        .list_tenant_audit_events(&caller.subject, &filter, page)
        .await?;
    answer(&req, found, page)
}

/// A page of events as JSON, or as CSV when the request asks for it.
fn answer(req: &HttpRequest, found: Paged<AuditEvent>, page: Page) -> Result<HttpResponse, ApiError> {
    let body = ListBody::new(found, page, AuditEventBody::from);
    if wants_csv(req) {
        let csv = csv_body(&body.items)?;
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::VARY, "Accept"))
            .body(csv));
    }
    Ok(HttpResponse::Ok().insert_header((header::VARY, "Accept")).json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_plain_ones_kept() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1+2"), "'-1+2");
        assert_eq!(cell("prod-s3"), "prod-s3");
    }

    #[test]
    fn csv_is_asked_for_by_its_media_type() {
        let ask = |accept: &str| {
            let req = actix_web::test::TestRequest::default()
                .insert_header((header::ACCEPT, accept))
                .to_http_request();
            wants_csv(&req)
        };
        assert!(ask("text/csv"));
        assert!(ask("application/json;q=0.5, text/csv; charset=utf-8"));
        assert!(!ask("application/json"));
        assert!(!ask("text/csvx"));
    }
}
