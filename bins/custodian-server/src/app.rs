//! The HTTP server over a deployment: bound before it runs, with a request id and a span
//! per request.

use std::fmt;
use std::net::{SocketAddr, TcpListener};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};
use anyhow::Context;
use custodian_deployment::{Bootstrap, Config, Deployment};
use custodian_http::{ApiState, RateLimitSettings, RateLimits};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder, TracingLogger};

/// The server, bound and ready to run.
pub struct Application {
    server: Server,
    /// The periodic sweep of orphaned credential values, stopped with the server.
    sweeps: Option<tokio::task::JoinHandle<()>>,
    local_addr: SocketAddr,
    bootstrap: Option<Bootstrap>,
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Open the [`Deployment`], create the tenant admin on an empty database, and bind the
    /// listener. Nothing is served until [`run`](Self::run).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Before the database opens, so that what starting does is counted too (the pool's
        // gauges are set at its first checkout).
        custodian_http::recorder();
        let deployment = Deployment::open(&config).await?;
        let bootstrap = deployment
            .custodian()
            .bootstrap_first_start()
            .await
            .context("cannot create the tenant admin")?;
        if let Some(b) = &bootstrap {
            tracing::info!(user_id = %b.user.id, email = %b.user.email, "created the tenant admin");
        }

        let listener = TcpListener::bind(&config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
        let local_addr = listener.local_addr().context("cannot read the listening address")?;
        let mut state = ApiState::new(deployment.custodian().clone());
        // The configuration refuses a timeout under a second, so it always converts.
        if let Ok(timeout) = config.request_body_timeout.to_std() {
            state = state.with_body_timeout(timeout);
        }
        state = state.with_metrics_scrapers(&config.metrics.scrapers);
        let state = web::Data::new(state);
        // One set of limiters for every worker.
        let limits = web::Data::new(RateLimits::new(rate_limit_settings(&config)));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(limits.clone())
                .configure(custodian_http::configure)
                .wrap(from_fn(run_to_completion))
                .wrap(from_fn(custodian_http::rate_limit))
                // Counts what the limits refuse too.
                .wrap(from_fn(custodian_http::measure))
                // Outermost: every request gets its id and span first, and the id is
                // echoed on every answer, errors included.
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::<RequestSpan>::new())
        })
        .listen(listener)
        .with_context(|| format!("cannot serve on {local_addr}"))?
        .run();
        tracing::info!(address = %local_addr, "listening");
        let sweeps = deployment.spawn_orphan_sweeps();
        Ok(Self {
            server,
            sweeps,
            local_addr,
            bootstrap,
        })
    }

    /// The address the server listens on (the real port when the configuration asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the first start created, once: the token is handed out a single time.
    pub fn take_bootstrap(&mut self) -> Option<Bootstrap> {
        self.bootstrap.take()
    }

    /// Serve until SIGTERM or ctrl-c, then finish the requests in flight.
    pub async fn run(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(sweeps) = self.sweeps {
            sweeps.abort();
        }
        served
    }
}

/// The HTTP layer's rate limits of `config` (0 turns a limit off).
fn rate_limit_settings(config: &Config) -> RateLimitSettings {
    let limits = &config.rate_limit;
    RateLimitSettings {
        per_address_per_minute: std::num::NonZeroU32::new(limits.per_address_per_minute),
        per_token_per_minute: std::num::NonZeroU32::new(limits.per_token_per_minute),
        trusted_proxies: limits.trusted_proxies.clone(),
    }
}

/// The log span of each request, with its id, method, path and status.
///
/// Its route pattern (`http.route`) is recorded when the request has been routed: read
/// before routing, as the stock span reads it, it costs a second walk of the route table
/// on every request, logged or not.
struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = Empty,
            http.target = %request.uri(),
            http.client_ip = request.peer_addr().map(|a| tracing::field::display(a.ip())),
            http.user_agent = request
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
            request_id = request.extensions().get::<RequestId>().map(tracing::field::display),
            http.status_code = Empty,
            otel.status_code = Empty,
            exception.message = Empty,
            exception.details = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: tracing::Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        if span.is_disabled() {
            return;
        }
        if let Ok(response) = outcome
            && let Some(route) = response.request().match_pattern()
        {
            span.record("http.route", route);
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The name of the header that carries the request id back to the client.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Answer with the request's id (set by [`TracingLogger`]) in `X-Request-Id`: the id of its
/// log span and of its audit events.
async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().copied();
    let mut response = next.call(req).await?;
    if let Some(id) = id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Runs the rest of the request as its own task, so that a client that hangs up does not
/// drop a use case half-way: a database call dropped in flight is what SQLite's blocking
/// connection wrapper (diesel-async) cannot take on a worker's single-threaded runtime, and
/// a use case is better finished (with its audit event) than cut between two writes.
async fn run_to_completion(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let handling = actix_web::rt::spawn(next.call(req).instrument(tracing::Span::current()));
    match handling.await {
        Ok(answer) => answer,
        Err(_) => Err(actix_web::error::ErrorInternalServerError(
            "the request's task was cancelled",
        )),
    }
}
