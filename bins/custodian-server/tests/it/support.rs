//! Shared set-up of the HTTP tests: the real `Application` on port 0 over SQLite or
//! PostgreSQL, a client that keeps every answer it received, and the "cast" of callers
//! (a tenant admin, one member of each role, a virtual account and an outsider).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use custodian_server::{Application, Config};
use custodian_test_db::TestPostgres;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The one way these tests build a configuration: the defaults over `data_dir`, with the
/// database at `database_url` when one is given (SQLite in the data dir otherwise).
pub(crate) fn config(data_dir: &Path, database_url: Option<&str>) -> Config {
    let defaults = Config::for_data_dir(data_dir);
    let database_url = database_url.map_or_else(|| defaults.database_url.clone(), |url| url.to_owned().into());
    // The suites send many requests from one address; the limits have tests of their own.
    let rate_limit = custodian_server::RateLimitConfig {
        per_address_per_minute: 0,
        per_token_per_minute: 0,
        trusted_proxies: Vec::new(),
    };
    Config {
        database_url,
        rate_limit,
        ..defaults
    }
}

/// A number no other call in this process returns, for unique names.
pub(crate) fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A running server and the tenant admin's token. The data directory and the PostgreSQL
/// database live as long as this value.
pub(crate) struct TestServer {
    pub(crate) api: Api,
    pub(crate) admin_token: String,
    pub(crate) backend: Backend,
    _dir: TempDir,
    _postgres: Option<TestPostgres>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("base", &self.api.base)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Start the server on `backend`; `None` when PostgreSQL tests are skipped
    /// (`CUSTODIAN_TEST_POSTGRES=skip`, which prints a `SKIPPED (postgres)` line).
    pub(crate) async fn start(backend: Backend) -> Option<Self> {
        let dir = TempDir::new().expect("a temporary directory");
        let postgres = match backend {
            Backend::Sqlite => None,
            // An empty database: the server migrates it at start, as in production.
            Backend::Postgres => Some(TestPostgres::start("custodian_server_empty", |_| async { Ok(()) }).await?),
        };
        let config = config(&dir.path().join("data"), postgres.as_ref().map(TestPostgres::url));
        let mut app = Application::build(config).await.expect("the server starts");
        let base = format!("http://{}", app.local_addr());
        let admin_token = app
            .take_bootstrap()
            .map(|b| b.token.expose_secret().to_owned())
            .expect("a first start creates the tenant admin");
        actix_web::rt::spawn(app.run());
        Some(Self {
            api: Api::new(base),
            admin_token,
            backend,
            _dir: dir,
            _postgres: postgres,
        })
    }
}

/// One answer: status, headers and body (JSON when it parses, `Value::Null` otherwise).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    pub(crate) json: Value,
}

impl Reply {
    /// The string at `key` of the JSON body; panics naming the body when it is missing.
    pub(crate) fn str(&self, key: &str) -> String {
        self.json[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key:?} in {}", self.text))
            .to_owned()
    }

    /// Panics unless the status is `expected`, showing what came back.
    #[track_caller]
    pub(crate) fn expect_status(&self, expected: u16, what: &str) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "{what}: expected {expected}, got {} {}",
            self.status,
            self.text
        );
        self
    }

    /// What is wrong with this answer as an `/api/svc/v1` error of `status` and `code`:
    /// `{"statusCode","message","code","details"}` with the status repeated, a sentence, and
    /// with a 401 the `WWW-Authenticate: Bearer` challenge. `None` when it is one.
    pub(crate) fn svc_error_problem(&self, status: u16, code: &str) -> Option<String> {
        let body = &self.json;
        let mut problems = Vec::new();
        if self.status.as_u16() != status || body["code"] != code {
            problems.push(format!("expected {status} {code}"));
        }
        if body["statusCode"] != status {
            problems.push("statusCode does not repeat the status".to_owned());
        }
        if body["message"].as_str().is_none_or(str::is_empty) {
            problems.push("no message sentence".to_owned());
        }
        if !body["details"].is_array() {
            problems.push("no details list".to_owned());
        }
        if status == 401 && self.headers.get("www-authenticate").is_none_or(|v| v != "Bearer") {
            problems.push("no `WWW-Authenticate: Bearer`".to_owned());
        }
        (!problems.is_empty()).then(|| format!("{}; got {} {}", problems.join("; "), self.status, self.text))
    }

    /// Panics unless the answer is an `/api/svc/v1` error of `status` and `code`.
    #[track_caller]
    pub(crate) fn expect_svc_error(&self, status: u16, code: &str, what: &str) -> &Self {
        if let Some(problem) = self.svc_error_problem(status, code) {
            panic!("{what}: {problem}");
        }
        self
    }

    /// Panics unless the answer is an `/api/svc/v1` 422 naming the field at `loc` (with the
    /// rule `kind`, when given).
    #[track_caller]
    pub(crate) fn expect_field_error(&self, loc: &[&str], kind: Option<&str>, what: &str) -> &Self {
        self.expect_svc_error(422, "validation_failed", what);
        let found = self.json["details"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["loc"] == json!(loc) && kind.is_none_or(|k| d["type"] == k));
        assert!(found, "{what}: no error at {loc:?} ({kind:?}) in {}", self.text);
        self
    }
}

/// A client of one server that records every answer (status line, headers and body), so
/// a test can search all of them afterwards.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<String>>>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Api {
    pub(crate) fn new(base: String) -> Self {
        Self {
            base,
            // Idle connections are dropped well before the server's keep-alive (5 s) closes
            // them, so a request after a pause never goes out on a connection the server is
            // closing (that fails with "error sending request", a race, not an answer).
            client: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
            seen: Arc::default(),
        }
    }

    /// Send `method path` with an optional bearer token and JSON body.
    pub(crate) async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    /// `method path` with `body` sent as it is, as JSON (for bodies `serde_json` cannot
    /// build, such as an object that repeats a key).
    pub(crate) async fn call_raw(&self, method: Method, path: &str, token: &str, body: &str) -> Reply {
        let request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        self.send(method, path, Some(token), request).await
    }

    /// Like [`call`](Self::call), with extra request headers.
    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(method, path, token, request).await
    }

    /// Send `request` (with `token` as bearer, when given) and keep its answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        mut request: reqwest::RequestBuilder,
    ) -> Reply {
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut record = format!("{method} {path} -> {status}\n");
        for (name, value) in &headers {
            record.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        record.push_str(&text);
        self.seen.lock().expect("the record is not poisoned").push(record);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub(crate) async fn patch(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Every answer received so far, one text each (status line, headers, body).
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("the record is not poisoned").clone()
    }
}

/// Panics listing the `failures` among the `checked` requests a matrix sent on `backend`.
#[track_caller]
pub(crate) fn assert_no_failures(backend: Backend, checked: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{backend:?}: {} of {checked} requests answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A user of the cast: id, email and bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) token: String,
}

/// Everyone the matrix asks: the tenant admin; a team with an owner, an admin, an
/// operator and a viewer (users created through `POST /v1/users`, added through the
/// members routes) and a virtual account; and the owner of another team.
#[derive(Debug, Clone)]
pub(crate) struct Cast {
    pub(crate) tenant_admin: Person,
    pub(crate) team_id: String,
    pub(crate) team_name: String,
    pub(crate) owner: Person,
    pub(crate) admin: Person,
    pub(crate) operator: Person,
    pub(crate) viewer: Person,
    /// A virtual account of the team; its role is [`Cast::ACCOUNT_ROLE`].
    pub(crate) account: Person,
    pub(crate) outsider: Person,
    pub(crate) outsider_team_id: String,
}

impl Cast {
    /// The virtual account's role in the cast's team.
    pub(crate) const ACCOUNT_ROLE: &'static str = "admin";

    pub(crate) async fn create(server: &TestServer) -> Self {
        Self::create_on(&server.api, &server.admin_token).await
    }

    /// The cast on the server `api` reaches, made by the tenant admin holding `admin_token`.
    pub(crate) async fn create_on(api: &Api, admin_token: &str) -> Self {
        let me = api.get("/v1/me", admin_token).await;
        me.expect_status(200, "GET /v1/me as the tenant admin");
        let tenant_admin = Person {
            id: me.str("id"),
            email: me.str("email"),
            token: admin_token.to_owned(),
        };

        let team_name = format!("cast-{}", unique());
        let team_id = create_team(api, admin_token, &team_name).await;
        let mut members = Vec::new();
        for role in ["owner", "admin", "operator", "viewer"] {
            let person = create_user(api, admin_token, role).await;
            add_member(api, admin_token, &team_id, &person.id, role).await;
            members.push(person);
        }
        let account = create_virtual_account(api, admin_token, &team_id, Self::ACCOUNT_ROLE).await;

        let outsider = create_user(api, admin_token, "outsider").await;
        let outsider_team_id = create_team(api, &outsider.token, &format!("elsewhere-{}", unique())).await;

        let mut members = members.into_iter();
        let mut next = || members.next().expect("four members");
        Self {
            tenant_admin,
            team_id,
            team_name,
            owner: next(),
            admin: next(),
            operator: next(),
            viewer: next(),
            account,
            outsider,
            outsider_team_id,
        }
    }
}

/// `POST /v1/teams` as `token`; the new team's id.
pub(crate) async fn create_team(api: &Api, token: &str, name: &str) -> String {
    let reply = api.post("/v1/teams", token, &json!({ "name": name })).await;
    reply.expect_status(201, "POST /v1/teams");
    reply.str("id")
}

/// `POST /v1/users` as the tenant admin: a user whose email starts with `label`.
pub(crate) async fn create_user(api: &Api, admin_token: &str, label: &str) -> Person {
    let email = format!("{label}-{}@example.com", unique());
    let reply = api
        .post(
            "/v1/users",
            admin_token,
            &json!({ "email": email, "display_name": format!("{label} of the cast") }),
        )
        .await;
    reply.expect_status(201, "POST /v1/users");
    assert_eq!(reply.json["email"], email.as_str());
    let token = reply.str("token");
    assert!(token.starts_with("cus_"), "{token}");
    Person {
        id: reply.str("id"),
        email,
        token,
    }
}

/// `POST /v1/teams/{team_id}/members` with the user's id and `role`.
pub(crate) async fn add_member(api: &Api, token: &str, team_id: &str, user_id: &str, role: &str) {
    api.post(
        &format!("/v1/teams/{team_id}/members"),
        token,
        &json!({ "user_id": user_id, "role": role }),
    )
    .await
    .expect_status(201, "POST /v1/teams/{team_id}/members");
}

/// `POST /v1/teams/{team_id}/virtual-accounts` with `role`; the account and its token.
pub(crate) async fn create_virtual_account(api: &Api, token: &str, team_id: &str, role: &str) -> Person {
    let name = format!("worker-{}", unique());
    let reply = api
        .post(
            &format!("/v1/teams/{team_id}/virtual-accounts"),
            token,
            &json!({ "name": name, "role": role }),
        )
        .await;
    reply.expect_status(201, "POST /v1/teams/{team_id}/virtual-accounts");
    Person {
        id: reply.str("id"),
        email: name,
        token: reply.str("token"),
    }
}

/// A managed S3 secret body with these credential values.
pub(crate) fn s3_secret_body(name: &str, access_key_id: &str, secret_access_key: &str) -> Value {
    json!({
        "name": name,
        "secret_type": "s3",
        "auth_method": "s3_access_key",
        "description": "bucket credentials of the nightly export",
        "credentials": {
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
        },
    })
}

/// `POST /v1/teams/{team_id}/secrets`: a managed S3 secret; its id.
pub(crate) async fn create_secret(api: &Api, token: &str, team_id: &str) -> String {
    let n = unique();
    let body = s3_secret_body(
        &format!("export-{n}"),
        &format!("AKIAEXAMPLE{n}"),
        &format!("wJalrXUtnFEMI/K7MDENG/bPxRfiCY{n}"),
    );
    let reply = api.post(&format!("/v1/teams/{team_id}/secrets"), token, &body).await;
    reply.expect_status(201, "POST /v1/teams/{team_id}/secrets");
    reply.str("id")
}

/// A location body of type `s3` that uses `secret_id`.
pub(crate) fn location_body(name: &str, secret_id: &str) -> Value {
    json!({
        "name": name,
        "location_type": "s3",
        "bucket_name": "nightly-exports",
        "region": "eu-west-1",
        "secret_id": secret_id,
    })
}

/// `POST /v1/teams/{team_id}/locations` over `secret_id`; its id.
pub(crate) async fn create_location(api: &Api, token: &str, team_id: &str, secret_id: &str) -> String {
    let body = location_body(&format!("exports-{}", unique()), secret_id);
    let reply = api.post(&format!("/v1/teams/{team_id}/locations"), token, &body).await;
    reply.expect_status(201, "POST /v1/teams/{team_id}/locations");
    reply.str("id")
}

/// A Doppler vault connection body with `access_token`.
pub(crate) fn doppler_body(name: &str, access_token: &str) -> Value {
    json!({
        "name": name,
        "vault_type": "doppler",
        "access_token": access_token,
        "project": "exports",
        "config": "production",
    })
}

/// `POST /v1/teams/{team_id}/vault-connections` (Doppler); its id.
pub(crate) async fn create_vault_connection(api: &Api, token: &str, team_id: &str) -> String {
    let n = unique();
    let body = doppler_body(&format!("doppler-{n}"), &format!("dp.st.production.example{n}"));
    let reply = api
        .post(&format!("/v1/teams/{team_id}/vault-connections"), token, &body)
        .await;
    reply.expect_status(201, "POST /v1/teams/{team_id}/vault-connections");
    reply.str("id")
}

/// A program an end-to-end test drives (Chromium, schemathesis), whose path `cargo xtask
/// test` passes in the variable `env`: the path, or `None` after a loud `SKIPPED (label)`
/// line saying `what` did not run and how to `install` it. Under CI an unset variable fails
/// the test: CI never skips.
pub(crate) fn program_from_env(env: &str, label: &str, test: &str, what: &str, install: &str) -> Option<String> {
    if let Ok(path) = std::env::var(env)
        && !path.trim().is_empty()
    {
        return Some(path.trim().to_owned());
    }
    let ci = std::env::var("CI").ok().is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    });
    if ci {
        panic!(
            "{env} is not set, and CI (CI=true) runs {what}; it is never skipped there.\n\
             fix: run the tests with `cargo xtask test`, or {install} and set {env}"
        );
    }
    eprintln!(
        "SKIPPED ({label}): {test} — {env} is not set, so {what} did not run.\n\
         SKIPPED ({label}): to run it: `cargo xtask test`, or {install} and set {env}"
    );
    None
}

/// The secret groups of `/api/svc/v1`.
pub(crate) const GROUPS: &str = "/api/svc/v1/secret-groups";
/// The keys of secret groups: `POST` lists them, `GET /{id}` reads one with its value.
pub(crate) const SECRETS: &str = "/api/svc/v1/secrets";

/// The `secrets` of a group's create or update: `{key, value}` each, without `value` where
/// none is given (an update keeps that key's value).
pub(crate) fn group_secrets(entries: &[(&str, Option<&str>)]) -> Value {
    entries
        .iter()
        .map(|(key, value)| match value {
            Some(value) => json!({ "key": key, "value": value }),
            None => json!({ "key": key }),
        })
        .collect()
}

/// A group's create body: `name` in the integration `integration`, its keys at version 1,
/// and the owning team when given.
pub(crate) fn group_body(name: &str, integration: &str, team_id: Option<&str>, secrets: &[(&str, &str)]) -> Value {
    let entries: Vec<(&str, Option<&str>)> = secrets.iter().map(|(k, v)| (*k, Some(*v))).collect();
    let mut body = json!({ "name": name, "integrationId": integration, "secrets": group_secrets(&entries) });
    if let Some(team) = team_id {
        body["teamId"] = json!(team);
    }
    body
}

/// `POST /api/svc/v1/secret-groups` with `body`, which must succeed; the group (`data`).
pub(crate) async fn create_group(api: &Api, token: &str, body: &Value) -> Value {
    let reply = api.post(GROUPS, token, body).await;
    reply.expect_status(200, "POST /api/svc/v1/secret-groups");
    reply.json["data"].clone()
}

/// The id of the key `key` of `group` (a group's `data`).
pub(crate) fn key_id(group: &Value, key: &str) -> String {
    group["associatedSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == key)
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("no key {key} in {group}"))
        .to_owned()
}

/// `GET /api/svc/v1/secrets/{key_id}`, of one `version` when given.
pub(crate) async fn read_key(api: &Api, token: &str, key_id: &str, version: Option<i64>) -> Reply {
    let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
    api.get(&format!("{SECRETS}/{key_id}{query}"), token).await
}

/// `GET /api/svc/v1/secrets/{id}` that must succeed: the key's current (or asked-for)
/// value and its versions as `(version, value)`.
pub(crate) async fn read_value(
    api: &Api,
    token: &str,
    key_id: &str,
    version: Option<i64>,
) -> (String, Vec<(i64, String)>) {
    let reply = read_key(api, token, key_id, version).await;
    reply.expect_status(200, &format!("GET a key's value (version {version:?})"));
    let data = &reply.json["data"];
    assert_eq!(data["id"], key_id, "{}", reply.text);
    let shown = data["secretVersions"]
        .as_array()
        .expect("secretVersions")
        .iter()
        .map(|v| {
            assert_eq!(v["secretId"], key_id, "{}", reply.text);
            (
                v["version"].as_i64().expect("a version"),
                v["value"].as_str().expect("a version's value").to_owned(),
            )
        })
        .collect();
    (data["value"].as_str().expect("a value").to_owned(), shown)
}
