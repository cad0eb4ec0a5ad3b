//! Custodian's HTTP API: the `/v1` management routes, the `/api/svc/v1` routes,
//! `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json`, and the interactive reference of
//! that document at `GET /docs/`.
//!
//! The routes read an [`ApiState`] from the application data: register it with
//! `App::new().app_data(web::Data::new(state)).configure(custodian_http::configure)`.
//!
//! **Architecture Invariant:** a handler parses the request into the core's input types,
//! calls one use case of [`Custodian`] with the authenticated caller, and turns the result
//! into the response body. Authorization, validation rules and audit events belong to the
//! core; this crate only maps shapes and errors.
//!
//! Each module owns a group of routes: its `configure` registers them (full paths) and its
//! `Doc` lists them for the OpenAPI document, which [`openapi`] merges.

mod audit;
mod auth;
mod docs;
mod error;
mod extract;
mod fields;
mod locations;
mod me;
mod members;
mod metrics;
mod pagination;
mod personal_tokens;
mod rate_limit;
mod secret_groups;
mod secrets;
mod svc_envelope;
mod teams;
mod unauthenticated;
mod unmatched;
mod users;
mod vault_connections;
mod virtual_accounts;

use std::fmt;

use actix_web::web;
use custodian_core::Custodian;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use auth::Authenticated;
pub use error::ApiError;
pub(crate) use error::{ErrorBody, ValidationBody};
pub(crate) use extract::{ApiJson, ApiQuery, BodyError};
pub use metrics::{measure, recorder};
pub use rate_limit::{RateLimitSettings, RateLimits, rate_limit};

/// What the handlers share: the core's facade and how long a body may take to arrive.
#[derive(Clone)]
pub struct ApiState {
    /// Every use case, readiness included.
    pub custodian: Custodian,
    /// How long a request's body may take to arrive (408 past it).
    pub body_timeout: std::time::Duration,
    /// The networks `GET /metrics` answers.
    pub metrics_scrapers: std::sync::Arc<[ipnet::IpNet]>,
}

impl ApiState {
    /// The routes over `custodian`, with a body timeout of 10 seconds and metrics for
    /// scrapers on the loopback addresses. Installs the process's metrics
    /// [`recorder`] when none is.
    pub fn new(custodian: Custodian) -> Self {
        metrics::recorder();
        Self {
            custodian,
            body_timeout: extract::DEFAULT_BODY_TIMEOUT,
            metrics_scrapers: [
                ipnet::IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)),
                ipnet::IpNet::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ]
            .into(),
        }
    }

    /// The same, with `GET /metrics` answering connections from `scrapers` only.
    #[must_use]
    pub fn with_metrics_scrapers(mut self, scrapers: &[ipnet::IpNet]) -> Self {
        self.metrics_scrapers = scrapers.into();
        self
    }

    /// The same, with bodies timed out after `timeout`.
    #[must_use]
    pub fn with_body_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.body_timeout = timeout;
        self
    }
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
    cfg.configure(unauthenticated::configure)
        .configure(metrics::configure)
        .service(
            web::scope(TEAM_SCOPE)
                .configure(secrets::configure)
                .configure(locations::configure)
                .configure(vault_connections::configure)
                .configure(members::configure)
                .configure(virtual_accounts::configure)
                .configure(audit::configure_team)
                .configure(teams::configure_team),
        )
        .configure(docs::configure)
        .configure(me::configure)
        .configure(users::configure)
        .configure(teams::configure)
        .configure(personal_tokens::configure)
        .configure(secret_groups::configure)
        .configure(audit::configure)
        .default_service(web::to(unmatched::answer));
}

/// The prefix of every route inside one team, registered as one scope. The router tries
/// routes in turn, a regular expression for each route with a variable segment: with every
/// route at the top, reaching a secret's took some twenty-five of them (a tenth of a cached
/// read's time). In the scope it takes two: the team's segment, then the route within.
pub(crate) const TEAM_SCOPE: &str = "/v1/teams/{team_id}";

/// [`openapi`]'s document as JSON (pretty-printed, with a final newline): what
/// `GET /openapi.json` answers and what the JSON 404s and 405s read the routes from.
///
/// It is written into the crate rather than built at run time because the code that builds
/// it is about a tenth of the server's machine code, resident in every server's memory
/// for one rarely read page. After a change to a route or its annotations, the test
/// `openapi::the_served_document_is_the_generated_one` fails until the file is written
/// again: `CUSTODIAN_WRITE_OPENAPI=1 cargo test -p custodian-http --test it openapi`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The document's frame: title, version and the bearer scheme every `/v1` route uses.
#[derive(OpenApi)]
#[openapi(
    info(title = "Custodian", description = "Storage secrets, vault connections and secret groups."),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody, ValidationBody)),
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3.1 document of every route, generated from the handlers.
///
/// The server does not call it: it serves [`OPENAPI_JSON`], this document written out. A
/// test keeps the two equal.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for part in [
        unauthenticated::Doc::openapi(),
        metrics::Doc::openapi(),
        me::Doc::openapi(),
        users::Doc::openapi(),
        teams::Doc::openapi(),
        members::Doc::openapi(),
        virtual_accounts::Doc::openapi(),
        personal_tokens::Doc::openapi(),
        secret_groups::Doc::openapi(),
        secrets::Doc::openapi(),
        locations::Doc::openapi(),
        vault_connections::Doc::openapi(),
        audit::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}
