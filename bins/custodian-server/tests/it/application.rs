//! `Application::build` on port 0 over a temporary SQLite data directory.

use std::os::unix::fs::PermissionsExt;

use custodian_server::{ADMIN_EMAIL, Application, Config};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use tempfile::TempDir;

fn config(dir: &TempDir) -> Config {
    Config::for_data_dir(dir.path().join("data"))
}

/// Start the server in the background; its base URL and the bootstrap token, if any.
async fn start(config: Config) -> (String, Option<String>) {
    let mut app = Application::build(config).await.expect("the server starts");
    let base = format!("http://{}", app.local_addr());
    let token = app.take_bootstrap().map(|b| b.token.expose_secret().to_owned());
    actix_web::rt::spawn(app.run());
    (base, token)
}

#[actix_web::test]
async fn serves_health_readiness_and_the_caller() {
    let dir = TempDir::new().unwrap();
    let (base, token) = start(config(&dir)).await;
    let token = token.expect("a first start creates the tenant admin's token");
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let anonymous = client.get(format!("{base}/v1/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");
    assert!(body["detail"].is_string());

    for wrong in [
        "cus_not-a-real-token",
        "not-even-a-custodian-token",
        &token[..token.len() - 1],
    ] {
        let refused = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    }
    let other_scheme = client
        .get(format!("{base}/v1/me"))
        .basic_auth("admin", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(other_scheme.status(), StatusCode::UNAUTHORIZED);

    let me = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["type"], "user");
    assert_eq!(me["tenant_admin"], true);
    assert_eq!(me["teams"][0]["name"], "default");
    assert_eq!(me["teams"][0]["role"], "owner");
}

#[actix_web::test]
async fn the_data_directory_is_private_and_a_second_start_creates_no_admin() {
    let dir = TempDir::new().unwrap();
    let (base, token) = start(config(&dir)).await;
    let token = token.unwrap();
    let mode = std::fs::metadata(dir.path().join("data")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(dir.path().join("data/keyring.json").exists());

    // A second server on the same data: same keyring, same users, no new token.
    let (second, again) = start(config(&dir)).await;
    assert!(again.is_none());
    assert_ne!(base, second);
    let me = reqwest::Client::new()
        .get(format!("{second}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}

#[actix_web::test]
async fn an_address_in_use_is_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = config(&dir);
    config.bind = taken.local_addr().unwrap().to_string();
    let error = Application::build(config).await.unwrap_err();
    assert!(format!("{error:#}").contains("cannot listen on"), "{error:#}");
}

#[actix_web::test]
async fn every_answer_carries_its_own_request_id() {
    let dir = TempDir::new().unwrap();
    let (base, _) = start(config(&dir)).await;
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for path in ["/healthz", "/v1/me", "/v1/me", "/no-such-route"] {
        let response = client
            .get(format!("{base}{path}"))
            .header("x-request-id", "chosen-by-the-client")
            .send()
            .await
            .unwrap();
        let id = response.headers()[custodian_server::REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        // The server's own id, not the client's.
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        assert!(!seen.contains(&id), "{path}: {id} again");
        seen.push(id);
    }
}

/// Requests that end early — a body over 64 KiB refused while the token is still being
/// looked up, a client that hangs up mid-request — get their answer (413) or nothing,
/// and the server goes on answering: no worker is lost to a database call cut half-way.
#[actix_web::test]
async fn requests_cut_short_leave_the_server_answering() {
    let dir = TempDir::new().unwrap();
    let (base, token) = start(config(&dir)).await;
    let token = token.unwrap();
    let client = reqwest::Client::new();
    for size in [65 * 1024, 70_000, 2 * 1024 * 1024] {
        for _ in 0..5 {
            let body = format!("{{\"name\":\"{}\"}}", "x".repeat(size));
            let answer = client
                .post(format!("{base}/v1/teams"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE, "{size} bytes");
            let detail: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(detail["code"], "payload_too_large");
        }
    }
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_micros(300))
        .build()
        .unwrap();
    for i in 0..30 {
        // Most of these are dropped by the client before the server answers.
        let _ = impatient
            .post(format!("{base}/v1/teams"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": format!("hasty-{i}")}))
            .send()
            .await;
    }
    for _ in 0..10 {
        let me = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
    }
}
