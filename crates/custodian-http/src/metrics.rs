//! `GET /metrics`: the process's figures in Prometheus' text format, and the middleware
//! that counts and times every request by method, route and status.
//!
//! The figures themselves are recorded where they happen, through the `metrics` facade:
//! requests here, the subject and vault caches and every credential-store and
//! vault-provider call in the core, the database pool in the SQL adapter. This module
//! installs the one recorder of the process and renders it.
//!
//! Routes are labelled by their pattern (`/v1/teams/{team_id}/secrets/{secret_id}`), never
//! by the path a client sent, so ids and probes of unknown paths (`unmatched`) cannot grow
//! the series without bound.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use utoipa::OpenApi;

use crate::{ApiState, ErrorBody};

#[derive(OpenApi)]
#[openapi(paths(metrics))]
pub(crate) struct Doc;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

/// Latency buckets, in seconds: from a cached read (under a millisecond) to a slow vault.
const BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often buffered histogram samples are folded into their buckets. Until then every
/// sample waits in memory, about 8 bytes each, and a request records one to four: a server
/// answering 40,000 requests a second kept 1 to 1.6 MiB more at its peak with upkeeps a
/// second apart than a tenth of a second apart. The upkeep's work is the folding, which
/// every sample needs whenever it runs.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The process's recorder, installed by the first call. `None` when another recorder was
/// installed first (an embedding application's own): its figures are then its business.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    // Histogram samples wait in a buffer until a render or an upkeep folds
                    // them into the buckets: without this, a server nobody scrapes would
                    // keep every request's sample.
                    let upkeep = handle.clone();
                    let started = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP_EVERY);
                                upkeep.run_upkeep();
                            }
                        });
                    if let Err(error) = started {
                        tracing::warn!(%error, "cannot start the metrics upkeep; samples are folded at each scrape only");
                    }
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot install the metrics recorder; GET /metrics answers 503");
                    None
                }
            }
        })
        .as_ref()
}

/// Count and time the request: `custodian_http_requests_total` and
/// `custodian_http_request_duration_seconds`, by method, route pattern and status.
pub async fn measure(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let response = next.call(req).await?;
    let request = response.request();
    let method = request.method().as_str().to_owned();
    let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "custodian_http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.clone(),
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!("custodian_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    Ok(response)
}

/// The process's figures, to a scraper connecting from an allowed network
/// (`metrics.scrapers`); 403 `forbidden` to anyone else.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses(
        (status = 200, description = "Figures in Prometheus' text format", content_type = "text/plain"),
        (status = 403, description = "The connection does not come from an allowed network", body = ErrorBody),
        (status = 503, description = "This process records no figures", body = ErrorBody),
    )
)]
async fn metrics(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let allowed = req
        .peer_addr()
        .map(|peer| peer.ip().to_canonical())
        .is_some_and(|ip| state.metrics_scrapers.iter().any(|net| net.contains(&ip)));
    if !allowed {
        return HttpResponse::Forbidden().json(json!({
            "detail": "metrics are served only to the networks in metrics.scrapers",
            "code": "forbidden",
        }));
    }
    match recorder() {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(handle.render()),
        None => HttpResponse::ServiceUnavailable().json(json!({
            "detail": "this process records no metrics",
            "code": "service_unavailable",
        })),
    }
}
