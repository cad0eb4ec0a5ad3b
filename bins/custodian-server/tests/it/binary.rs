//! The built `custodian` binary: first start prints the token once, SIGTERM stops it, and a
//! restart on the same data directory keeps the token working without printing a new one.

use std::path::Path;
use std::process::Command;

use reqwest::{Method, StatusCode};
use tempfile::TempDir;

use crate::flow::user_flow;
use crate::process::{RunningServer, free_port};
use crate::support::{Api, create_secret, create_vault_connection};

/// `serve` over `data_dir` on `port`, once stderr has a line containing `ready_line`.
fn start(data_dir: &Path, port: u16, ready_line: &str) -> RunningServer {
    let command = crate::process::custodian(data_dir, "debug");
    RunningServer::start(command, port, ready_line)
}

async fn me(port: u16, token: &str) -> (StatusCode, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn first_start_prints_the_token_once_and_a_restart_keeps_it() {
    let dir = TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let port = free_port();

    // The token message follows the "listening" log line.
    let first = start(&data_dir, port, "Try it:");
    let tokens = first.tokens();
    let token = tokens
        .first()
        .expect("the first start prints the admin's token")
        .clone();
    assert!(tokens.iter().all(|t| *t == token), "one token only: {tokens:?}");
    assert!(first.seen.iter().any(|l| l.contains("shown only this once")));
    let (status, body) = me(port, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email"], "admin@localhost");
    let (status, _) = me(port, "cus_wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let output = first.terminate();
    // Even at debug level the token appears only in the one printed message.
    let holding: Vec<&String> = output.iter().filter(|l| l.contains(&token)).collect();
    assert_eq!(holding.len(), 2, "the token line and the curl example: {holding:#?}");
    assert!(holding.iter().all(|l| !l.contains("INFO") && !l.contains("DEBUG")));

    let second = start(&data_dir, port, "listening");
    let (status, body) = me(port, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email"], "admin@localhost");
    let output = second.terminate();
    assert!(
        output
            .iter()
            .all(|l| !l.contains("cus_") && !l.contains("shown only this once")),
        "{output:#?}"
    );
}

#[tokio::test]
async fn the_binary_serves_the_whole_flow_and_keeps_its_data_across_a_restart() {
    let dir = TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let port = free_port();
    let api = Api::new(format!("http://127.0.0.1:{port}"));

    let first = start(&data_dir, port, "Try it:");
    let token = first
        .tokens()
        .first()
        .expect("the first start prints the token")
        .clone();
    // Create, rotate, verify and delete a secret, exactly as in process.
    let outcome = user_flow(&api, &token).await;
    let team = outcome.team_id;
    let kept = create_secret(&api, &token, &team).await;
    let connection = create_vault_connection(&api, &token, &team).await;
    let before = api
        .get(&format!("/v1/teams/{team}/audit-events?limit=200"), &token)
        .await;
    before.expect_status(200, "GET audit events");
    let output = first.terminate();
    for value in &outcome.credential_values {
        assert!(output.iter().all(|l| !l.contains(value.as_str())), "{value} logged");
    }

    // The same data directory after a restart: the same token, secret, keyring and trail.
    let second = start(&data_dir, port, "listening");
    // A new client: the old one's pooled connections went with the first process.
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    let secret = api.get(&format!("/v1/teams/{team}/secrets/{kept}"), &token).await;
    secret.expect_status(200, "GET the kept secret after a restart");
    assert_eq!(secret.json["credentials_version"], 1);
    // The credentials still decrypt with the keyring read back from the data directory.
    let verified = api
        .call(
            Method::POST,
            &format!("/v1/teams/{team}/secrets/{kept}/verify"),
            Some(&token),
            None,
        )
        .await;
    verified.expect_status(200, "verify the kept secret after a restart");
    assert_eq!(verified.json["verified"], true, "{}", verified.text);
    api.get(&format!("/v1/teams/{team}/vault-connections/{connection}"), &token)
        .await
        .expect_status(200, "GET the vault connection after a restart");
    let after = api
        .get(&format!("/v1/teams/{team}/audit-events?limit=200"), &token)
        .await;
    after.expect_status(200, "GET audit events after a restart");
    let before_ids: Vec<&serde_json::Value> = before.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    let after_items = after.json["items"].as_array().unwrap();
    assert!(!before_ids.is_empty());
    // The restart adds the verification on top; every earlier event is still there.
    for id in &before_ids {
        assert!(
            after_items.iter().any(|e| &e["id"] == *id),
            "event {id} lost in the restart"
        );
    }
    assert_eq!(after_items.len(), before_ids.len() + 1, "{}", after.text);
    let output = second.terminate();
    assert!(output.iter().all(|l| !l.contains(&token)), "{output:#?}");
}

#[test]
fn version_names_the_binary_and_its_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.trim(), format!("custodian {}", env!("CARGO_PKG_VERSION")));
}
