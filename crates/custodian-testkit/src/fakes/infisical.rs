//! A fake Infisical, answering as Infisical's API documents: universal-auth login,
//! token renew, and the secrets endpoints of v3 (`/api/v3/secrets/raw[/{name}]`) and v4
//! (`/api/v4/secrets[/{name}]`), with Infisical's error envelope
//! `{"reqId","statusCode","message","error"}`.
//!
//! It serves plain HTTP on `127.0.0.1:0` ([`FakeInfisical::url`]), holds machine
//! identities, projects with environments and folders of secrets, issues access tokens
//! with a configurable `expiresIn` and max TTL, counts the requests to each endpoint
//! ([`FakeInfisical::count`]) and can be told to misbehave ([`Fault`]): answer `429` with a
//! `Retry-After`, answer `500`, answer late, or answer `302`; and to expire every token it
//! issued ([`FakeInfisical::expire_all_tokens`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// The endpoints the fake counts requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /api/v1/auth/universal-auth/login`
    Login,
    /// `POST /api/v1/auth/token/renew`
    Renew,
    /// `GET /api/v3/secrets/raw/{name}` and `GET /api/v4/secrets/{name}`
    GetSecret,
    /// `GET /api/v3/secrets/raw` and `GET /api/v4/secrets`
    ListSecrets,
    /// Anything else (answered `404`).
    Other,
}

/// How the fake answers the next requests instead of answering them properly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `429 RateLimitExceeded` with `Retry-After: <seconds>`.
    RateLimited { retry_after_secs: u64 },
    /// `500 InternalServerError`.
    ServerError,
    /// Wait this long, then answer properly (a hang past a client's timeout).
    Delay(Duration),
    /// `302 Found` with `Location: <location>`.
    Redirect(String),
}

/// The lifetime the fake gives the tokens it issues, in seconds (`0`: never expires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetime {
    /// `expiresIn`: seconds from issue or last renewal.
    pub expires_in: u64,
    /// `accessTokenMaxTTL`: seconds from the first issue past which no renewal is allowed.
    pub max_ttl: u64,
}

impl Default for TokenLifetime {
    /// Infisical's defaults when universal auth is attached: 30 days and 30 days.
    fn default() -> Self {
        Self {
            expires_in: 2_592_000,
            max_ttl: 2_592_000,
        }
    }
}

#[derive(Debug)]
struct IssuedToken {
    created: Instant,
    renewed: Instant,
    lifetime: TokenLifetime,
    expired: bool,
}

impl IssuedToken {
    fn usable(&self, now: Instant) -> bool {
        let ttl_ok = self.lifetime.expires_in == 0
            || now.duration_since(self.renewed) < Duration::from_secs(self.lifetime.expires_in);
        let max_ok =
            self.lifetime.max_ttl == 0 || now.duration_since(self.created) < Duration::from_secs(self.lifetime.max_ttl);
        !self.expired && ttl_ok && max_ok
    }
}

/// `(project id, environment slug, folder path)` → key → value.
type Folders = HashMap<(String, String, String), BTreeMap<String, String>>;

#[derive(Debug, Default)]
struct State {
    identities: HashMap<String, String>,
    folders: Folders,
    environments: HashMap<String, Vec<String>>,
    lifetime: TokenLifetime,
    tokens: HashMap<String, IssuedToken>,
    counts: HashMap<Endpoint, usize>,
    faults: VecDeque<Fault>,
    requests: u64,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take every later request down with it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A fake Infisical on `127.0.0.1`; stops when dropped.
#[derive(Debug)]
pub struct FakeInfisical {
    url: url::Url,
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeInfisical {
    /// Start serving on a free port of `127.0.0.1` (needs a Tokio runtime).
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .listen(listener)
            .expect("listen")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        let url = url::Url::parse(&format!("http://{addr}")).expect("the fake's URL");
        Self { url, shared, handle }
    }

    /// The site URL (no `/api`), as a client's `siteUrl`/`api_url`.
    pub fn url(&self) -> url::Url {
        self.url.clone()
    }

    /// A machine identity with universal auth that may log in with `client_secret`.
    pub fn add_identity(&self, client_id: &str, client_secret: &str) {
        self.shared
            .lock()
            .identities
            .insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// Refuses `client_id`'s logins from now on (a revoked client secret).
    pub fn remove_identity(&self, client_id: &str) {
        self.shared.lock().identities.remove(client_id);
    }

    /// A secret `key` = `value` in `project_id`/`environment` under folder `path` (`/`,
    /// `/aws`, `/aws/prod`). The project and environment come into being with it.
    pub fn add_secret(&self, project_id: &str, environment: &str, path: &str, key: &str, value: &str) {
        let mut state = self.shared.lock();
        let envs = state.environments.entry(project_id.to_owned()).or_default();
        if !envs.iter().any(|e| e == environment) {
            envs.push(environment.to_owned());
        }
        state
            .folders
            .entry((project_id.to_owned(), environment.to_owned(), normalise_path(path)))
            .or_default()
            .insert(key.to_owned(), value.to_owned());
    }

    /// The lifetime of tokens issued or renewed from now on.
    pub fn set_token_lifetime(&self, lifetime: TokenLifetime) {
        self.shared.lock().lifetime = lifetime;
    }

    /// Expire every token issued so far (a token that expires while a client holds it).
    pub fn expire_all_tokens(&self) {
        for token in self.shared.lock().tokens.values_mut() {
            token.expired = true;
        }
    }

    /// Answer the next `n` requests (to any endpoint) with `fault`, after those queued before.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut state = self.shared.lock();
        state.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// How many requests reached `endpoint` (faulted ones included).
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.shared.lock().counts.get(&endpoint).copied().unwrap_or(0)
    }

    /// How many requests reached the fake at all.
    pub fn total_requests(&self) -> usize {
        self.shared.lock().counts.values().sum()
    }
}

impl Drop for FakeInfisical {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; nothing needs to await it.
        drop(self.handle.stop(false));
    }
}

/// `secretPath` as Infisical keeps it: leading `/`, no trailing `/` (root is `/`).
fn normalise_path(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        format!("/{trimmed}")
    }
}

fn classify(method: &str, path: &str) -> (Endpoint, Option<Route>) {
    match (method, path) {
        ("POST", "/api/v1/auth/universal-auth/login") => (Endpoint::Login, Some(Route::Login)),
        ("POST", "/api/v1/auth/token/renew") => (Endpoint::Renew, Some(Route::Renew)),
        ("GET", "/api/v3/secrets/raw") => (Endpoint::ListSecrets, Some(Route::List { v4: false })),
        ("GET", "/api/v4/secrets") => (Endpoint::ListSecrets, Some(Route::List { v4: true })),
        ("GET", p) => {
            let (name, v4) = if let Some(name) = p.strip_prefix("/api/v3/secrets/raw/") {
                (name, false)
            } else if let Some(name) = p.strip_prefix("/api/v4/secrets/") {
                (name, true)
            } else {
                return (Endpoint::Other, None);
            };
            if name.is_empty() || name.contains('/') {
                return (Endpoint::Other, None);
            }
            (
                Endpoint::GetSecret,
                Some(Route::Get {
                    name: name.to_owned(),
                    v4,
                }),
            )
        }
        _ => (Endpoint::Other, None),
    }
}

#[derive(Debug)]
enum Route {
    Login,
    Renew,
    Get { name: String, v4: bool },
    List { v4: bool },
}

/// Infisical's error envelope.
fn error(status: StatusCode, req_id: &str, name: &str, message: Value) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "reqId": req_id,
        "statusCode": status.as_u16(),
        "message": message,
        "error": name,
    }))
}

async fn handle(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let (endpoint, route) = classify(req.method().as_str(), req.path());
    let (fault, req_id) = {
        let mut state = shared.lock();
        *state.counts.entry(endpoint).or_default() += 1;
        state.requests += 1;
        (state.faults.pop_front(), format!("req-{}", state.requests))
    };
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut answer = error(
                StatusCode::TOO_MANY_REQUESTS,
                &req_id,
                "RateLimitExceeded",
                json!(format!(
                    "Rate limit exceeded. Please try again in {retry_after_secs} seconds"
                )),
            );
            let headers = answer.headers_mut();
            for (name, value) in [
                ("retry-after", retry_after_secs.to_string()),
                ("x-ratelimit-limit", "60".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", retry_after_secs.to_string()),
            ] {
                if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&value) {
                    headers.insert(actix_web::http::header::HeaderName::from_static(name), value);
                }
            }
            return answer;
        }
        Some(Fault::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &req_id,
                "InternalServerError",
                json!("Something went wrong"),
            );
        }
        Some(Fault::Redirect(location)) => {
            return HttpResponse::Found().insert_header(("location", location)).finish();
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let Some(route) = route else {
        return error(
            StatusCode::NOT_FOUND,
            &req_id,
            "NotFound",
            json!(format!("Route {}:{} not found", req.method(), req.path())),
        );
    };
    match route {
        Route::Login => login(&shared, &req_id, &body),
        Route::Renew => renew(&shared, &req_id, &body),
        Route::Get { name, v4 } => read(&shared, &req_id, &req, Some(&name), v4),
        Route::List { v4 } => read(&shared, &req_id, &req, None, v4),
    }
}

fn token_answer(token: &str, lifetime: TokenLifetime) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "accessToken": token,
        "expiresIn": lifetime.expires_in,
        "accessTokenMaxTTL": lifetime.max_ttl,
        "tokenType": "Bearer",
    }))
}

fn body_field(body: &[u8], field: &str) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

fn login(shared: &Shared, req_id: &str, body: &[u8]) -> HttpResponse {
    let (Some(client_id), Some(client_secret)) = (body_field(body, "clientId"), body_field(body, "clientSecret"))
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            req_id,
            "ValidationFailure",
            json!([{"code": "invalid_type", "message": "Required", "path": ["clientId"]}]),
        );
    };
    let mut state = shared.lock();
    if state.identities.get(&client_id) != Some(&client_secret) {
        return error(
            StatusCode::UNAUTHORIZED,
            req_id,
            "UnauthorizedError",
            json!("Invalid credentials"),
        );
    }
    let token = format!("fake-infisical-token-{}", uuid::Uuid::new_v4().simple());
    let now = Instant::now();
    let lifetime = state.lifetime;
    state.tokens.insert(
        token.clone(),
        IssuedToken {
            created: now,
            renewed: now,
            lifetime,
            expired: false,
        },
    );
    token_answer(&token, lifetime)
}

fn renew(shared: &Shared, req_id: &str, body: &[u8]) -> HttpResponse {
    let Some(token) = body_field(body, "accessToken") else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            req_id,
            "ValidationFailure",
            json!([{"code": "invalid_type", "message": "Required", "path": ["accessToken"]}]),
        );
    };
    let mut state = shared.lock();
    let now = Instant::now();
    let lifetime = state.lifetime;
    let Some(issued) = state.tokens.get_mut(&token) else {
        return error(
            StatusCode::UNAUTHORIZED,
            req_id,
            "UnauthorizedError",
            json!("Failed to renew MI access token"),
        );
    };
    let past_max = issued.lifetime.max_ttl != 0
        && now.duration_since(issued.created) >= Duration::from_secs(issued.lifetime.max_ttl);
    if past_max {
        state.tokens.remove(&token);
        return error(
            StatusCode::UNAUTHORIZED,
            req_id,
            "UnauthorizedError",
            json!("Failed to renew MI access token due to Max TTL expiration"),
        );
    }
    if !issued.usable(now) {
        return error(
            StatusCode::UNAUTHORIZED,
            req_id,
            "UnauthorizedError",
            json!("Failed to renew MI access token"),
        );
    }
    issued.renewed = now;
    issued.lifetime.expires_in = lifetime.expires_in;
    let lifetime = issued.lifetime;
    token_answer(&token, lifetime)
}

fn secret_json(project_id: &str, environment: &str, path: &str, key: &str, value: &str) -> Value {
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::nil(),
        format!("{project_id}/{environment}{path}/{key}").as_bytes(),
    );
    json!({
        "id": id, "_id": id,
        "workspace": project_id,
        "environment": environment,
        "version": 1,
        "type": "shared",
        "secretKey": key,
        "secretValue": value,
        "secretComment": "",
        "secretReminderNote": null, "secretReminderRepeatDays": null,
        "skipMultilineEncoding": false,
        "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
        "isRotatedSecret": false, "rotationId": null,
        "secretValueHidden": false,
        "secretPath": path,
        "tags": [],
        "secretMetadata": [],
    })
}

fn read(shared: &Shared, req_id: &str, req: &HttpRequest, name: Option<&str>, v4: bool) -> HttpResponse {
    let query: HashMap<String, String> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let state = shared.lock();
    // Authorization: Bearer <token>, a token this fake issued and that is still usable.
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    let Some(bearer) = bearer else {
        return error(
            StatusCode::UNAUTHORIZED,
            req_id,
            "UnauthorizedError",
            json!("Failed to authenticate: missing authorization header"),
        );
    };
    match state.tokens.get(bearer) {
        Some(t) if t.usable(Instant::now()) => {}
        Some(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                req_id,
                "TokenError",
                json!("Your token has expired. Please re-authenticate."),
            );
        }
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                req_id,
                "UnauthorizedError",
                json!("Invalid token"),
            );
        }
    }
    // Booleans are a strict zod enum: only the literals `true` and `false`.
    for flag in [
        "expandSecretReferences",
        "include_imports",
        "recursive",
        "viewSecretValue",
    ] {
        if let Some(v) = query.get(flag)
            && v != "true"
            && v != "false"
        {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                req_id,
                "ValidationFailure",
                json!([{"code": "invalid_enum_value", "options": ["true", "false"], "path": [flag],
                        "message": format!("Invalid enum value. Expected 'true' | 'false', received '{v}'")}]),
            );
        }
    }
    let project_param = if v4 { "projectId" } else { "workspaceId" };
    let project = query.get(project_param).filter(|p| !p.is_empty());
    let environment = query.get("environment").filter(|e| !e.is_empty());
    let (Some(project), Some(environment)) = (project, environment) else {
        let message = match (v4, name.is_some()) {
            (true, false) => "Missing project id or environment",
            (true, true) => "Missing environment or You must provide  workspaceId",
            (false, _) => "Missing workspace id or environment",
        };
        return error(StatusCode::BAD_REQUEST, req_id, "BadRequest", json!(message));
    };
    if !state
        .environments
        .get(project)
        .is_some_and(|envs| envs.iter().any(|e| e == environment))
    {
        return error(
            StatusCode::NOT_FOUND,
            req_id,
            "NotFound",
            json!(format!(
                "Environment with slug '{environment}' in project '{project}' not found"
            )),
        );
    }
    let path = normalise_path(query.get("secretPath").map_or("/", String::as_str));
    let folder = state
        .folders
        .get(&(project.clone(), environment.clone(), path.clone()))
        .cloned()
        .unwrap_or_default();
    match name {
        Some(name) => match folder.get(name) {
            Some(value) => HttpResponse::Ok().json(json!({
                "secret": secret_json(project, environment, &path, name, value)
            })),
            None => error(
                StatusCode::NOT_FOUND,
                req_id,
                "NotFound",
                json!(format!(
                    "Secret with name '{name}' not found at path '{path}' in environment with slug '{environment}'"
                )),
            ),
        },
        None => {
            let secrets: Vec<Value> = folder
                .iter()
                .map(|(k, v)| secret_json(project, environment, &path, k, v))
                .collect();
            HttpResponse::Ok().json(json!({ "secrets": secrets, "imports": [] }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_kept_as_infisical_keeps_them() {
        assert_eq!(normalise_path(""), "/");
        assert_eq!(normalise_path("/"), "/");
        assert_eq!(normalise_path("/aws/"), "/aws");
        assert_eq!(normalise_path("aws/prod"), "/aws/prod");
    }
}
