//! Rotating the master keys while servers run: two servers on one deployment (SQLite, or
//! PostgreSQL) keep creating and rotating secrets while `custodian keys rotate` and
//! `custodian keys remove` run beside them, again and again. Every acknowledged write
//! still opens afterwards, on the running servers and after a restart, and the keyring
//! ends with the active key alone. A deployment on configured master keys rotates too, its
//! tokens outliving the key their pepper was derived from.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use custodian_domain::{CredentialField, SecretId, TeamId};
use custodian_server::{Config, Deployment};
use custodian_test_db::TestPostgres;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::Mutex;

use crate::process::{RunningServer, free_port};
use crate::support::{Api, config, s3_secret_body, unique};

/// The binary over `data_dir` with the database at `database_url` and the extra `env`.
fn custodian(data_dir: &Path, database_url: Option<&str>, env: &[(&str, &str)]) -> Command {
    crate::process::custodian_on(data_dir, "warn", database_url, env)
}

/// Run an operator command and expect success; its stdout.
fn succeed(command: &mut Command) -> String {
    let output = command.output().expect("the binary runs");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    assert!(
        output.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

/// An operator command run beside the servers (off the runtime's threads); its stdout.
async fn operator(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> String {
    let mut command = custodian(data_dir, database_url, &[]);
    command.args(args);
    tokio::task::spawn_blocking(move || succeed(&mut command))
        .await
        .expect("the command ran to its end")
}

/// `serve` on a port of its own, once it logs that it listens.
fn serve(data_dir: &Path, database_url: Option<&str>, env: &[(&str, &str)]) -> RunningServer {
    let mut command = custodian(data_dir, database_url, env);
    command.env("RUST_LOG", "info");
    RunningServer::start(command, free_port(), "listening")
}

/// The first `serve` of a deployment and the tenant admin's token it prints.
fn first_serve(data_dir: &Path, database_url: Option<&str>, env: &[(&str, &str)]) -> (RunningServer, String) {
    let mut command = custodian(data_dir, database_url, env);
    command.env("RUST_LOG", "info");
    RunningServer::first_start(command)
}

/// What the clients were told was stored: each secret's last acknowledged secret key.
type Acknowledged = Arc<Mutex<BTreeMap<String, String>>>;

/// Create a secret (or rotate one already made) through `api`, over and over until `stop`,
/// recording what each acknowledged write stored. Every write must succeed: a rotation
/// running beside it is no excuse for an error.
async fn keep_writing(
    api: Api,
    token: String,
    team_id: String,
    acknowledged: Acknowledged,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut writes = 0;
    // The secrets this writer created: it rotates only its own, one request at a time, so
    // the order of its acknowledgements is the order of its commits. (Two writers rotating
    // one secret both succeed, last writer wins, and the order their answers arrive in
    // need not be the order they committed in.)
    let mut mine: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = unique();
        let secret_key = format!("rotation-canary-{n}");
        let existing = (n.is_multiple_of(3) && !mine.is_empty()).then(|| mine[(n as usize / 3) % mine.len()].clone());
        match existing {
            Some(id) => {
                let reply = api
                    .patch(
                        &format!("/v1/teams/{team_id}/secrets/{id}"),
                        &token,
                        &json!({"credentials": {"access_key_id": format!("AKIA{n}"), "secret_access_key": secret_key}}),
                    )
                    .await;
                reply.expect_status(200, "PATCH rotates a secret's credentials during a key rotation");
                acknowledged.lock().await.insert(id, secret_key);
            }
            None => {
                let reply = api
                    .post(
                        &format!("/v1/teams/{team_id}/secrets"),
                        &token,
                        &s3_secret_body(&format!("rotating-{n}"), &format!("AKIA{n}"), &secret_key),
                    )
                    .await;
                reply.expect_status(201, "POST creates a secret during a key rotation");
                mine.push(reply.str("id"));
                acknowledged.lock().await.insert(reply.str("id"), secret_key);
            }
        }
        writes += 1;
    }
    writes
}

/// Every acknowledged secret resolves, through a service attached to the deployment, to
/// exactly what was acknowledged; and verifies over HTTP.
async fn every_value_opens(
    config: &Config,
    api: &Api,
    token: &str,
    team_id: &str,
    acknowledged: &BTreeMap<String, String>,
) {
    let deployment = Deployment::attach(config).await.expect("a service attaches");
    let core = deployment.custodian();
    let subject = core
        .authenticate(&SecretString::from(token.to_owned()))
        .await
        .expect("the admin's token still works");
    let team: TeamId = team_id.parse().expect("a team id");
    for (id, secret_key) in acknowledged {
        let secret: SecretId = id.parse().expect("a secret id");
        let credentials = core
            .resolve(&subject, team, secret)
            .await
            .unwrap_or_else(|e| panic!("secret {id} resolves after the rotation: {e}"));
        assert_eq!(
            credentials
                .get(CredentialField::SecretAccessKey)
                .map(|v| v.expose_secret().to_owned())
                .as_deref(),
            Some(secret_key.as_str()),
            "secret {id} holds its last acknowledged value"
        );
        let verified = api
            .post(&format!("/v1/teams/{team_id}/secrets/{id}/verify"), token, &json!({}))
            .await;
        verified.expect_status(200, "verify after the rotation");
        assert_eq!(verified.json["verified"], true, "{}", verified.text);
    }
}

/// Two servers, two writers each, and three rotations with removals beside them.
async fn rotate_while_two_servers_write(data_dir: &Path, database_url: Option<&str>) {
    let (first, token) = first_serve(data_dir, database_url, &[]);
    let second = serve(data_dir, database_url, &[]);
    let me = first.api.get("/v1/me", &token).await;
    me.expect_status(200, "GET /v1/me");
    let team_id = me.json["teams"][0]["id"].as_str().expect("the default team").to_owned();

    let acknowledged: Acknowledged = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for api in [&first.api, &second.api, &first.api, &second.api] {
        writers.push(tokio::spawn(keep_writing(
            api.clone(),
            token.clone(),
            team_id.clone(),
            acknowledged.clone(),
            stop.clone(),
        )));
    }

    let mut active_keys = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let rotated = operator(data_dir, database_url, &["keys", "rotate"]).await;
        let active = rotated
            .lines()
            .find_map(|l| l.strip_prefix("active key: "))
            .unwrap_or_else(|| panic!("{rotated}"))
            .to_owned();
        assert!(!active_keys.contains(&active), "a fresh key each time: {rotated}");
        active_keys.push(active);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let removed = operator(data_dir, database_url, &["keys", "remove", "--all-inactive"]).await;
        assert!(
            removed.contains("removed key: "),
            "the old key goes while servers write: {removed}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for writer in writers {
        writes += writer.await.expect("every write during the rotations succeeded");
    }
    assert!(
        writes >= 12,
        "the servers kept writing during the rotations ({writes} writes)"
    );
    let acknowledged = acknowledged.lock().await.clone();

    // The running servers open everything, whichever wrote it.
    let config = config(data_dir, database_url);
    every_value_opens(&config, &second.api, &token, &team_id, &acknowledged).await;

    // The keyring file holds the last active key alone, and the database accepts only it.
    let keyring: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("keyring.json")).expect("the keyring file"))
            .expect("the keyring file");
    let last = active_keys.last().expect("the keyring lists keys");
    assert_eq!(keyring["active"], last.as_str());
    assert_eq!(
        keyring["keys"].as_array().expect("a key was made active").len(),
        1,
        "{keyring:#}"
    );
    let listed = succeed(custodian(data_dir, database_url, &[]).args(["keys", "list"]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.starts_with(&format!(
            "{last}\tactive\t{} value(s)\tin this keyring",
            acknowledged.len()
        )),
        "{listed}"
    );

    // A restart succeeds, and every value still opens.
    let lines: Vec<String> = first.terminate().into_iter().chain(second.terminate()).collect();
    let restarted = serve(data_dir, database_url, &[]);
    every_value_opens(&config, &restarted.api, &token, &team_id, &acknowledged).await;
    let lines: Vec<String> = lines.into_iter().chain(restarted.terminate()).collect();
    assert!(
        !lines.iter().any(|l| l.contains("rotation-canary")),
        "no value in any log line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_while_two_servers_write_on_sqlite() {
    let dir = TempDir::new().unwrap();
    rotate_while_two_servers_write(&dir.path().join("data"), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_while_two_servers_write_on_postgres() {
    let Some(postgres) = TestPostgres::start("custodian_server_empty", |_| async { Ok(()) }).await else {
        return;
    };
    let dir = TempDir::new().unwrap();
    rotate_while_two_servers_write(&dir.path().join("data"), Some(postgres.url())).await;
}

/// A master-key deployment rotates by configuring the new key beside the old one: the
/// rotation makes it active, a server still on the old configuration keeps writing (under
/// the old key, which stays accepted), and once every server has the new key the old one
/// is removed. Then only the new key is configured: every value opens, and the token made
/// before (hashed under a pepper derived from the old key) still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_deployment_rotates_to_a_newly_configured_key() {
    let old_key = "b2xkLW1hc3Rlci1rZXktLS0tLS0tLS0tLS0tLS0tLS0=";
    let new_key = "bmV3LW1hc3Rlci1rZXktLS0tLS0tLS0tLS0tLS0tLS0=";
    let dir = TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let old_only = [("CUSTODIAN_MASTER_KEY", old_key)];
    let both = [
        ("CUSTODIAN_MASTER_KEY", new_key),
        ("CUSTODIAN_PREVIOUS_MASTER_KEYS", old_key),
    ];
    let new_only = [("CUSTODIAN_MASTER_KEY", new_key)];

    let (lagging, token) = first_serve(&data_dir, None, &old_only);
    let me = lagging.api.get("/v1/me", &token).await;
    let team_id = me.json["teams"][0]["id"].as_str().unwrap().to_owned();
    let acknowledged: Acknowledged = Arc::default();
    let write = |api: Api| {
        let (token, team_id, acknowledged) = (token.clone(), team_id.clone(), acknowledged.clone());
        async move {
            let stop = Arc::new(AtomicBool::new(false));
            let writer = tokio::spawn(keep_writing(api, token, team_id, acknowledged, stop.clone()));
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            stop.store(true, Ordering::Relaxed);
            writer.await.unwrap()
        }
    };
    assert!(write(lagging.api.clone()).await > 0);

    // Nothing to rotate while the configured key is the active one.
    let output = custodian(&data_dir, None, &old_only)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("previous_master_keys"));

    // A server on the new configuration, the rotation, and the lagging server still writing.
    let updated = serve(&data_dir, None, &both);
    let rotated = succeed(custodian(&data_dir, None, &both).args(["keys", "rotate"]));
    assert!(rotated.contains("old key: env-"), "{rotated}");
    assert!(write(updated.api.clone()).await > 0);
    assert!(
        write(lagging.api.clone()).await > 0,
        "a server on the old key keeps writing, under the old key"
    );
    let listed = succeed(custodian(&data_dir, None, &both).args(["keys", "list"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");

    // Every server gets the new configuration; the old key goes.
    lagging.terminate();
    let removed = succeed(custodian(&data_dir, None, &both).args(["keys", "remove", "--all-inactive"]));
    assert!(removed.contains("removed key: env-"), "{removed}");
    updated.terminate();

    // Only the new key: the start succeeds, the old token works, every value opens.
    let server = serve(&data_dir, None, &new_only);
    server
        .api
        .get("/v1/me", &token)
        .await
        .expect_status(200, "the token outlives the old key");
    let mut config = config(&data_dir, None);
    config.master_key = Some(SecretString::from(new_key));
    let acknowledged = acknowledged.lock().await.clone();
    every_value_opens(&config, &server.api, &token, &team_id, &acknowledged).await;
    server.terminate();

    // The old key alone is no longer enough, and says why.
    let refused = crate::process::refused_start(custodian(&data_dir, None, &old_only));
    assert!(refused.contains("key"), "{refused}");
}
