//! Rate limits per client address and per bearer token, answered 429 with `Retry-After`
//! and the `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` headers
//! (on every answer, so a client sees its budget before it runs out). The limiter is
//! governor's GCRA: each key has a bucket of `per_minute` requests refilled evenly.
//!
//! The client's address is the connection's peer, or, when the peer is one of the
//! `trusted_proxies`, the nearest address of `X-Forwarded-For` that is not itself a
//! trusted proxy: a header from anyone else is ignored, so it cannot be used to dodge the
//! limit. Tokens are keyed by a keyed hash, never kept.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use serde_json::json;

type Limiter<K> =
    RateLimiter<K, governor::state::keyed::DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// How many keys a limiter holds before those back to a full bucket are dropped.
const PRUNE_ABOVE_KEYS: usize = 10_000;

/// The deployment's rate limits; `None` turns a limit off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Requests per minute from one client address.
    pub per_address_per_minute: Option<NonZeroU32>,
    /// Requests per minute with one bearer token.
    pub per_token_per_minute: Option<NonZeroU32>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The limiters of one server, shared by its workers (`web::Data`).
pub struct RateLimits {
    settings: RateLimitSettings,
    per_address: Option<Limiter<IpAddr>>,
    per_token: Option<Limiter<u64>>,
    token_hasher: RandomState,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Empty limiters for `settings`.
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            per_address: limiter(settings.per_address_per_minute),
            per_token: limiter(settings.per_token_per_minute),
            token_hasher: RandomState::new(),
            checks: AtomicU64::new(0),
            settings,
        }
    }

    /// The address a request comes from, believing `X-Forwarded-For` only from a trusted
    /// proxy.
    fn client_address(&self, req: &ServiceRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.settings.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded = req
            .headers()
            .get_all(HeaderName::from_static("x-forwarded-for"))
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|a| !self.settings.trusted_proxies.contains(a))
                .unwrap_or(peer),
        )
    }

    /// Check the request against each limit; the tightest outcome.
    fn check(&self, req: &ServiceRequest) -> Outcome {
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(1024) {
            self.prune();
        }
        let mut outcome = Outcome::Unlimited;
        if let (Some(limiter), Some(address)) = (&self.per_address, self.client_address(req)) {
            outcome = outcome.tighter(one(limiter, &address));
        }
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| self.token_hasher.hash_one(token.trim()));
        if let (Some(limiter), Some(token)) = (&self.per_token, token) {
            outcome = outcome.tighter(one(limiter, &token));
        }
        outcome
    }

    /// Drop the keys whose buckets are full again, so that traffic from ever new addresses
    /// or tokens cannot grow the limiters without bound.
    fn prune(&self) {
        if let Some(limiter) = &self.per_address
            && limiter.len() > PRUNE_ABOVE_KEYS
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_token
            && limiter.len() > PRUNE_ABOVE_KEYS
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// A keyed limiter of `per_minute` requests a minute, if any.
fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: Option<NonZeroU32>) -> Option<Limiter<K>> {
    per_minute.map(|n| RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>())
}

/// What one limit says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unlimited,
    /// Allowed: the limit, what remains of it, and the seconds until it is full again.
    Allowed {
        limit: u32,
        remaining: u32,
        reset: u64,
    },
    /// Refused: the limit, and the seconds until a request is allowed again.
    Refused {
        limit: u32,
        retry_after: u64,
    },
}

impl Outcome {
    /// The tighter of two outcomes: a refusal, else the one with less left.
    fn tighter(self, other: Outcome) -> Outcome {
        match (self, other) {
            (Outcome::Refused { .. }, _) => self,
            (_, Outcome::Refused { .. }) | (Outcome::Unlimited, _) => other,
            (Outcome::Allowed { remaining: a, .. }, Outcome::Allowed { remaining: b, .. }) => {
                if b < a {
                    other
                } else {
                    self
                }
            }
            (_, Outcome::Unlimited) => self,
        }
    }
}

fn one<K: std::hash::Hash + Eq + Clone>(limiter: &Limiter<K>, key: &K) -> Outcome {
    match limiter.check_key(key) {
        Ok(state) => {
            let quota = state.quota();
            let limit = quota.burst_size().get();
            let remaining = state.remaining_burst_capacity();
            let used = u64::from(limit - remaining);
            let reset = (quota.replenish_interval().as_secs_f64() * used as f64).ceil() as u64;
            Outcome::Allowed {
                limit,
                remaining,
                reset,
            }
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(limiter.clock().now());
            Outcome::Refused {
                limit: not_until.quota().burst_size().get(),
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        }
    }
}

/// The middleware: refuse over the limit with 429, and tell every answer its budget.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let outcome = req
        .app_data::<web::Data<RateLimits>>()
        .map_or(Outcome::Unlimited, |limits| limits.check(&req));
    let set = |response: &mut actix_web::http::header::HeaderMap, name: &'static str, value: u64| {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            response.insert(HeaderName::from_static(name), value);
        }
    };
    match outcome {
        Outcome::Unlimited => Ok(next.call(req).await?.map_into_boxed_body()),
        Outcome::Allowed {
            limit,
            remaining,
            reset,
        } => {
            let mut response = next.call(req).await?.map_into_boxed_body();
            let headers = response.headers_mut();
            set(headers, "x-ratelimit-limit", u64::from(limit));
            set(headers, "x-ratelimit-remaining", u64::from(remaining));
            set(headers, "x-ratelimit-reset", reset);
            Ok(response)
        }
        Outcome::Refused { limit, retry_after } => {
            let body = if req.path().starts_with("/api/svc/") {
                json!({
                    "statusCode": 429,
                    "message": "too many requests; try again later",
                    "code": "rate_limited",
                    "details": [],
                })
            } else {
                json!({ "detail": "too many requests; try again later", "code": "rate_limited" })
            };
            let mut answer = HttpResponse::TooManyRequests();
            answer.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            let mut response = req.into_response(answer.json(body));
            let headers = response.headers_mut();
            set(headers, "x-ratelimit-limit", u64::from(limit));
            set(headers, "x-ratelimit-remaining", 0);
            set(headers, "x-ratelimit-reset", retry_after);
            Ok(response.map_into_boxed_body())
        }
    }
}
