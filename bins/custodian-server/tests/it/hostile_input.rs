//! Input an attacker or a confused client sends, against the real server on SQLite and
//! PostgreSQL: each is refused with a 422 naming what is wrong, and writes nothing.

use reqwest::Method;
use serde_json::json;

use crate::support::{Backend, TestServer, create_secret};

async fn hostile_input_is_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (api, token) = (&server.api, server.admin_token.as_str());
    let me = api.get("/v1/me", token).await;
    let team_id = me.json["teams"][0]["id"].as_str().expect("the default team").to_owned();
    create_secret(api, token, &team_id).await;

    // A NUL in a text query parameter: a 422 naming it, on both backends (PostgreSQL
    // refuses NUL in text, SQLite would have ignored the filter).
    for path in [
        format!("/v1/teams/{team_id}/secrets?search=a%00b"),
        format!("/v1/teams/{team_id}/locations?location_type=s3%00"),
        "/v1/users?limit=10&colour%00=x".to_owned(),
    ] {
        let reply = api.get(&path, token).await;
        reply.expect_status(422, &path);
        let loc = &reply.json["detail"][0]["loc"];
        assert_eq!(loc[0], "query", "{path}: {}", reply.text);
        assert_eq!(reply.json["detail"][0]["type"], "invalid_characters", "{}", reply.text);
    }

    // A JSON array is not a body: no tenant admin is made from `["x@x.com", "Arr", true]`.
    let users_before = api.get("/v1/users", token).await.json["total"].clone();
    let array = json!(["x@x.com", "Arr", true]);
    let reply = api.call(Method::POST, "/v1/users", Some(token), Some(&array)).await;
    reply.expect_status(422, "POST /v1/users with an array");
    assert_eq!(reply.json["detail"][0]["loc"], json!(["body"]), "{}", reply.text);
    assert_eq!(api.get("/v1/users", token).await.json["total"], users_before);

    // A repeated key is named, and the team keeps its name.
    let reply = api
        .call_raw(Method::POST, "/v1/teams", token, r#"{"name":"first","name":"second"}"#)
        .await;
    reply.expect_status(422, "POST /v1/teams with a repeated key");
    assert_eq!(
        reply.json["detail"][0]["loc"],
        json!(["body", "name"]),
        "{}",
        reply.text
    );
    assert_eq!(reply.json["detail"][0]["type"], "duplicate_key");
}

#[actix_web::test]
async fn hostile_input_is_refused_on_sqlite() {
    hostile_input_is_refused(Backend::Sqlite).await;
}

#[actix_web::test]
async fn hostile_input_is_refused_on_postgres() {
    hostile_input_is_refused(Backend::Postgres).await;
}

/// A body that never arrives is not waited for: past `request_body_timeout` the request
/// is answered 408 and its connection closed, instead of being held open.
#[actix_web::test]
async fn a_body_that_never_arrives_is_timed_out() {
    use std::io::{Read, Write};

    let dir = tempfile::TempDir::new().unwrap();
    let mut config = crate::support::config(&dir.path().join("data"), None);
    config.bind = "127.0.0.1:0".into();
    config.request_body_timeout = chrono::Duration::seconds(1);
    let mut app = custodian_server::Application::build(config)
        .await
        .expect("the server starts");
    let address = app.local_addr();
    let token = app
        .take_bootstrap()
        .map(|b| secrecy::ExposeSecret::expose_secret(&b.token).to_owned());
    let token = token.expect("the first start makes the admin");
    actix_web::rt::spawn(app.run());

    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("the server accepts");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .expect("a read timeout");
        let head = format!(
            "POST /v1/teams HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).expect("the request is sent");
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        // The server closes the connection after its answer; a read error is a timeout.
        let _ = stream.read_to_end(&mut answer);
        (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
    })
    .await
    .expect("the client thread ends");
    let (text, waited) = answer;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(waited < std::time::Duration::from_secs(10), "held for {waited:?}");
}

/// The server applies its configured rate limits: a flood of random tokens is answered
/// 429 past the per-address limit, and only the per-minute budget of refusals reaches the
/// audit trail.
#[actix_web::test]
async fn a_flood_of_random_tokens_is_limited_and_its_audit_trail_bounded() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let mut config = crate::support::config(&data, None);
    config.bind = "127.0.0.1:0".into();
    config.rate_limit.per_address_per_minute = 20;
    config.unknown_token_events_per_minute = 5;
    let app = custodian_server::Application::build(config)
        .await
        .expect("the server starts");
    let api = crate::support::Api::new(format!("http://{}", app.local_addr()));
    actix_web::rt::spawn(app.run());

    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..60 {
        let reply = api.get("/v1/me", &format!("cus_random{i}")).await;
        *statuses.entry(reply.status.as_u16()).or_insert(0) += 1;
        if reply.status.as_u16() == 429 {
            assert!(reply.headers.contains_key("retry-after"), "{}", reply.text);
            assert_eq!(reply.json["code"], "rate_limited");
        }
    }
    assert!(statuses.get(&429).copied().unwrap_or(0) >= 39, "{statuses:?}");
    assert!(statuses.get(&401).copied().unwrap_or(0) <= 21, "{statuses:?}");

    let mut db =
        <diesel::SqliteConnection as diesel::Connection>::establish(&data.join("custodian.db").display().to_string())
            .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Count> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT count(*) AS n FROM audit_events WHERE action = 'authenticate'"),
        &mut db,
    )
    .unwrap();
    assert_eq!(rows[0].n, 5, "only the budget of refusals is recorded");
}
