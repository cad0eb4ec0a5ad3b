//! Embedding the core over a running deployment: the built server makes a storage secret
//! over HTTP, and a Rust service attached to the same data directory (SQLite) or database
//! (PostgreSQL) resolves its credentials with `Deployment::attach`, as the
//! `custodian-deployment` example does.

use std::path::Path;

use custodian_domain::{CredentialField, SecretId, TeamId};
use custodian_server::{Config, Deployment};
use custodian_test_db::TestPostgres;
use secrecy::ExposeSecret;
use tempfile::TempDir;

use crate::process::RunningServer;
use crate::support::{config, create_virtual_account, s3_secret_body, unique};

/// `serve` on `data_dir` (and `database_url`, when given), once it prints the first token.
fn start(data_dir: &Path, database_url: Option<&str>) -> (RunningServer, String) {
    RunningServer::first_start(crate::process::custodian_on(data_dir, "info", database_url, &[]))
}

/// The server makes a secret over HTTP; a service attached to the same deployment
/// resolves exactly its credentials, while the server runs.
async fn resolves_what_the_server_made(data_dir: &Path, database_url: Option<&str>) {
    let (server, admin_token) = start(data_dir, database_url);
    let api = &server.api;
    let me = api.get("/v1/me", &admin_token).await;
    me.expect_status(200, "GET /v1/me");
    let team_id = me.json["teams"][0]["id"].as_str().expect("the default team").to_owned();
    let n = unique();
    let (key_id, secret_key) = (format!("AKIAEMBED{n}"), format!("embedded-canary-{n}"));
    let created = api
        .post(
            &format!("/v1/teams/{team_id}/secrets"),
            &admin_token,
            &s3_secret_body(&format!("archive-{n}"), &key_id, &secret_key),
        )
        .await;
    created.expect_status(201, "POST a managed S3 secret");
    let secret_id = created.str("id");
    let worker = create_virtual_account(api, &admin_token, &team_id, "operator").await;

    let deployment = Deployment::attach(&config(data_dir, database_url))
        .await
        .expect("a service attaches to the running deployment");
    let core = deployment.custodian();
    let subject = core
        .authenticate(&worker.token.clone().into())
        .await
        .expect("the worker's token works");
    let team: TeamId = team_id.parse().expect("a team id");
    let secret: SecretId = secret_id.parse().expect("a secret id");
    let credentials = core.resolve(&subject, team, secret).await.expect("the secret resolves");
    let field = |f| credentials.get(f).map(|v| v.expose_secret().to_owned());
    assert_eq!(field(CredentialField::AccessKeyId), Some(key_id));
    assert_eq!(field(CredentialField::SecretAccessKey), Some(secret_key));

    // The server sees the service's resolution in its audit trail.
    let events = api
        .get(&format!("/v1/teams/{team_id}/audit-events"), &admin_token)
        .await;
    events.expect_status(200, "GET the team's audit events");
    let items = events.json["items"].as_array().expect("a page of events");
    assert!(
        items
            .iter()
            .any(|e| e["action"] == "resolve" && e["actor_id"] == worker.id.as_str() && e["resource_id"] == secret_id),
        "{}",
        events.text
    );
    server.terminate();
}

#[tokio::test]
async fn a_service_attached_to_a_sqlite_data_dir_resolves_a_secret_the_server_made() {
    let dir = TempDir::new().unwrap();
    resolves_what_the_server_made(&dir.path().join("data"), None).await;
}

#[tokio::test]
async fn a_service_attached_to_postgres_resolves_a_secret_the_server_made() {
    let Some(postgres) = TestPostgres::start("custodian_server_empty", |_| async { Ok(()) }).await else {
        return;
    };
    let dir = TempDir::new().unwrap();
    resolves_what_the_server_made(&dir.path().join("data"), Some(postgres.url())).await;
}

/// Attaching changes nothing: it refuses a deployment no server has set up, and leaves no
/// keyring or database behind.
#[tokio::test]
async fn attaching_to_a_deployment_no_server_set_up_is_refused_and_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let error = Deployment::attach(&Config::for_data_dir(&data_dir))
        .await
        .expect_err("an empty data directory is refused");
    let message = format!("{error:#}");
    assert!(message.contains("custodian migrate"), "{message}");
    assert!(!data_dir.join("keyring.json").exists(), "no keyring was created");

    let Some(postgres) = TestPostgres::start("custodian_server_empty", |_| async { Ok(()) }).await else {
        return;
    };
    let error = Deployment::attach(&config(&data_dir, Some(postgres.url())))
        .await
        .expect_err("an empty database is refused");
    assert!(format!("{error:#}").contains("migration(s) pending"), "{error:#}");
}
