//! A fake Doppler API on `127.0.0.1:0`, answering as Doppler's API documents.
//!
//! - Auth: `Authorization: Bearer <token>` or `Basic base64("<token>:")`; anything else is
//!   `401 {"messages":["Invalid Auth token"],"success":false}` (JSON).
//! - `GET /v3/configs/config/secrets/download`: the token's config as a flat JSON object
//!   (`format=json` only), narrowed by `secrets=A,B`; an `ETag` on every 200 and `304` when
//!   `If-None-Match` matches it.
//! - `GET /v3/configs/config/secrets` (what `doppler secrets get` reads) and
//!   `GET /v3/configs/config/secret?name=` with Doppler's raw/computed shapes.
//! - `project`/`config`, when given and not empty, must be the token's: otherwise `404`
//!   with a Doppler-style message (the status the real service answers for a service
//!   token used on another config is unconfirmed; the fake picks 404).
//! - The config's `DOPPLER_PROJECT`, `DOPPLER_CONFIG` and `DOPPLER_ENVIRONMENT` are served
//!   as ordinary secrets, as the CLI shows them.
//! - Knobs: the next answers may be a 429 (with or without `Retry-After`), a 500 with a
//!   plain-text body, or the normal answer after a delay. Every request is counted and
//!   recorded ([`FakeDoppler::requests`], [`FakeDoppler::seen`]).
//!
//! The server runs on a thread of its own, so a test may use it from any runtime or none;
//! it stops when the [`FakeDoppler`] is dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use serde_json::{Value, json};

/// The download endpoint.
pub const DOWNLOAD_PATH: &str = "/v3/configs/config/secrets/download";
/// The list endpoint (raw and computed values), as `doppler secrets get` calls it.
pub const LIST_PATH: &str = "/v3/configs/config/secrets";
/// The single-secret endpoint.
pub const SECRET_PATH: &str = "/v3/configs/config/secret";

/// An answer the fake gives instead of (or before) the normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `429` with `{"messages":["Rate limit exceeded"],…}` and this `Retry-After` value, if any.
    RateLimited { retry_after: Option<String> },
    /// `500` with a plain-text (not JSON) body.
    ServerError,
    /// The normal answer, after this delay.
    Delay(Duration),
}

/// How a request authenticated, as the fake read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    Bearer,
    Basic,
}

/// One request the fake received.
#[derive(Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub path: String,
    /// The query's pairs, in order, decoded.
    pub query: Vec<(String, String)>,
    /// The scheme of a well-formed `Authorization` header (valid token or not).
    pub auth: Option<AuthScheme>,
    pub if_none_match: Option<String>,
    /// The status it was answered with (`None` while it is being answered).
    pub status: Option<u16>,
}

impl SeenRequest {
    /// The value of query parameter `name`, if it was sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Leaves the query out: a test's request may carry anything there.
impl fmt::Debug for SeenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeenRequest")
            .field("path", &self.path)
            .field("auth", &self.auth)
            .field("if_none_match", &self.if_none_match)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

type ConfigKey = (String, String);

#[derive(Default)]
struct State {
    /// (project, config) → name → value.
    configs: BTreeMap<ConfigKey, BTreeMap<String, String>>,
    /// Service token → the one config it reads.
    tokens: HashMap<String, ConfigKey>,
    failures: VecDeque<Failure>,
    seen: Vec<SeenRequest>,
}

struct Shared {
    state: Mutex<State>,
    requests: AtomicUsize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent data behind.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running fake Doppler. See the module documentation for what it answers.
pub struct FakeDoppler {
    url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl fmt::Debug for FakeDoppler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeDoppler")
            .field("url", &self.url)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl FakeDoppler {
    /// Starts an empty fake on `127.0.0.1` at a free port.
    ///
    /// # Panics
    /// When no port can be bound or the server thread cannot start.
    pub fn start() -> FakeDoppler {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for the fake Doppler");
        let url = format!("http://{}", listener.local_addr().expect("the fake's address"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            requests: AtomicUsize::new(0),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fake-doppler".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server =
                        HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
                            .workers(1)
                            .disable_signals()
                            .shutdown_timeout(0)
                            .listen(listener)
                            .expect("serve on the bound listener")
                            .run();
                    let _ = handle_tx.send(server.handle());
                    let _ = server.await;
                });
            })
            .expect("start the fake Doppler's thread");
        let handle = handle_rx.recv().expect("the fake Doppler started");
        FakeDoppler { url, shared, handle }
    }

    /// The base URL (`http://127.0.0.1:PORT`), to use as the API host.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates (or replaces) config `config` of `project` with `secrets`.
    pub fn add_config(&self, project: &str, config: &str, secrets: &[(&str, &str)]) {
        let values = secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.shared
            .state()
            .configs
            .insert((project.to_owned(), config.to_owned()), values);
    }

    /// Sets one secret of a config (creating the config if needed).
    pub fn set_secret(&self, project: &str, config: &str, name: &str, value: &str) {
        self.shared
            .state()
            .configs
            .entry((project.to_owned(), config.to_owned()))
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Makes `token` a service token that reads `config` of `project`.
    pub fn add_token(&self, token: &str, project: &str, config: &str) {
        self.shared
            .state()
            .tokens
            .insert(token.to_owned(), (project.to_owned(), config.to_owned()));
    }

    /// Revokes `token`: from now on it is refused as an invalid token.
    pub fn remove_token(&self, token: &str) {
        self.shared.state().tokens.remove(token);
    }

    /// The next `count` requests get `failure` (queued after any already queued).
    pub fn fail_next(&self, count: usize, failure: Failure) {
        let mut state = self.shared.state();
        state.failures.extend(std::iter::repeat_n(failure, count));
    }

    /// How many requests arrived so far (counted on arrival, before any delay).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.shared.state().seen.clone()
    }
}

impl Drop for FakeDoppler {
    fn drop(&mut self) {
        // The stop is sent now; its completion is not awaited (the thread ends by itself).
        drop(self.handle.stop(false));
    }
}

/// `{"messages":[message],"success":false}` with `status`, as Doppler answers errors.
fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "messages": [message], "success": false }))
}

/// The token of an `Authorization` header: Bearer, or Basic with the token as user and an
/// empty password.
fn credentials(req: &HttpRequest) -> Option<(AuthScheme, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((AuthScheme::Bearer, rest.trim().to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        return password.is_empty().then(|| (AuthScheme::Basic, user.to_owned()));
    }
    None
}

async fn answer(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let query: Vec<(String, String)> = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let auth = credentials(&req);
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (index, failure) = {
        let mut state = shared.state();
        state.seen.push(SeenRequest {
            path: req.path().to_owned(),
            query: query.clone(),
            auth: auth.as_ref().map(|(scheme, _)| *scheme),
            if_none_match: if_none_match.clone(),
            status: None,
        });
        (state.seen.len() - 1, state.failures.pop_front())
    };
    let response = match failure {
        Some(Failure::RateLimited { retry_after }) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Some(Failure::ServerError) => HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body("upstream connect error or disconnect/reset before headers"),
        Some(Failure::Delay(delay)) => {
            actix_web::rt::time::sleep(delay).await;
            serve(&req, &shared, &query, auth, if_none_match.as_deref())
        }
        None => serve(&req, &shared, &query, auth, if_none_match.as_deref()),
    };
    if let Some(seen) = shared.state().seen.get_mut(index) {
        seen.status = Some(response.status().as_u16());
    }
    response
}

/// The normal answer: authentication, scope, then the endpoint.
fn serve(
    req: &HttpRequest,
    shared: &Shared,
    query: &[(String, String)],
    auth: Option<(AuthScheme, String)>,
    if_none_match: Option<&str>,
) -> HttpResponse {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let state = shared.state();
    let Some((project, config)) = auth.and_then(|(_, token)| state.tokens.get(&token).cloned()) else {
        return error(StatusCode::UNAUTHORIZED, "Invalid Auth token");
    };
    if req.method() != actix_web::http::Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    if param("project").is_some_and(|p| !p.is_empty() && p != project) {
        return error(StatusCode::NOT_FOUND, "Could not find requested project");
    }
    if param("config").is_some_and(|c| !c.is_empty() && c != config) {
        return error(StatusCode::NOT_FOUND, "Could not find requested config");
    }
    let Some(stored) = state.configs.get(&(project.clone(), config.clone())) else {
        return error(StatusCode::NOT_FOUND, "Could not find requested config");
    };
    let secrets = with_meta(stored, &project, &config);
    let filter: Option<Vec<&str>> = param("secrets").map(|list| list.split(',').map(str::trim).collect());
    let selected = |secrets: BTreeMap<String, String>| -> BTreeMap<String, String> {
        match &filter {
            Some(names) => secrets
                .into_iter()
                .filter(|(name, _)| names.contains(&name.as_str()))
                .collect(),
            None => secrets,
        }
    };
    match req.path() {
        DOWNLOAD_PATH => {
            if param("format").is_some_and(|f| f != "json") {
                return error(StatusCode::BAD_REQUEST, "The fake Doppler only serves format=json");
            }
            let body = Value::from(serde_json::Map::from_iter(
                selected(secrets).into_iter().map(|(k, v)| (k, Value::String(v))),
            ))
            .to_string();
            let etag = etag_of(&body);
            if if_none_match.is_some_and(|header| matches_etag(header, &etag)) {
                return HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish();
            }
            HttpResponse::Ok()
                .content_type("application/json")
                .insert_header((header::ETAG, etag))
                .body(body)
        }
        LIST_PATH => {
            let listed: serde_json::Map<String, Value> = selected(secrets)
                .into_iter()
                .map(|(name, value)| {
                    let shape = json!({
                        "raw": value,
                        "computed": value,
                        "note": "",
                        "rawVisibility": "unmasked",
                        "computedVisibility": "unmasked",
                        "rawValueType": {"type": "string"},
                        "computedValueType": {"type": "string"},
                    });
                    (name, shape)
                })
                .collect();
            HttpResponse::Ok().json(json!({ "success": true, "secrets": listed }))
        }
        SECRET_PATH => {
            let Some(name) = param("name").filter(|n| !n.is_empty()) else {
                return error(StatusCode::BAD_REQUEST, "You must specify a secret name");
            };
            match secrets.get(name) {
                Some(value) => HttpResponse::Ok().json(json!({
                    "success": true,
                    "name": name,
                    "value": {"raw": value, "computed": value, "note": ""},
                })),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("Could not find requested secret: {name}"),
                ),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not found"),
    }
}

/// A config's secrets with the three `DOPPLER_*` names Doppler adds.
fn with_meta(stored: &BTreeMap<String, String>, project: &str, config: &str) -> BTreeMap<String, String> {
    let environment = config.split('_').next().unwrap_or(config);
    let mut secrets = stored.clone();
    for (name, value) in [
        ("DOPPLER_PROJECT", project),
        ("DOPPLER_CONFIG", config),
        ("DOPPLER_ENVIRONMENT", environment),
    ] {
        secrets.entry(name.to_owned()).or_insert_with(|| value.to_owned());
    }
    secrets
}

/// A strong ETag for `body` (a hash of its bytes; not a security measure).
fn etag_of(body: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

/// Whether an `If-None-Match` value names `etag` (a list, `*`, weak forms compared weakly).
fn matches_etag(header: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    header
        .split(',')
        .any(|candidate| candidate.trim() == "*" || bare(candidate) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        assert!(matches_etag("\"a\"", "\"a\""));
        assert!(matches_etag("W/\"a\"", "\"a\""));
        assert!(matches_etag("\"b\", \"a\"", "\"a\""));
        assert!(matches_etag("*", "\"a\""));
        assert!(!matches_etag("\"b\"", "\"a\""));
    }

    #[test]
    fn the_etag_follows_the_body() {
        assert_eq!(etag_of("{}"), etag_of("{}"));
        assert_ne!(etag_of("{\"A\":\"1\"}"), etag_of("{\"A\":\"2\"}"));
    }
}
