//! The operator commands of the built binary (`migrate`, `bootstrap`, `keys rotate`, `gc`,
//! `--version`), and `serve` end to end: request ids in answers, logs and audit events,
//! nothing secret in trace-level logs, and a clean stop on SIGTERM.

use std::path::Path;
use std::process::{Command, Output};

use custodian_core::NewTeamInput;
use custodian_domain::{CreateSecretInput, CredentialField, RequestContext, Subject, Tier};
use custodian_server::{Application, Config, Deployment, commands};
use custodian_test_db::TestPostgres;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;

use crate::process::RunningServer;

/// The binary with a clean environment: only what a test sets reaches it.
fn custodian(data_dir: &Path) -> Command {
    crate::process::custodian(data_dir, "warn")
}

fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().expect("the binary runs");
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 output");
    let stderr = String::from_utf8(output.stderr.clone()).expect("UTF-8 output");
    (output, stdout, stderr)
}

fn succeed(command: &mut Command) -> String {
    let (output, stdout, stderr) = run(command);
    assert!(
        output.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

#[test]
fn migrate_on_a_fresh_data_dir_applies_every_migration_once() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let first = succeed(custodian(&data).arg("migrate"));
    let applied: Vec<&str> = first.lines().collect();
    assert!(!applied.is_empty(), "{first}");
    assert!(applied.iter().all(|l| l.starts_with("applied ")), "{first}");
    assert!(data.join("custodian.db").exists());
    assert!(data.join("keyring.json").exists());

    let second = succeed(custodian(&data).arg("migrate"));
    assert_eq!(second.trim(), "no pending migration: the database is up to date");
}

/// A data directory other users can read, with a database file every user may read (as
/// an older version or a hand-made directory left them), is made private at start: the
/// directory 0700, the database and its WAL files 0600.
#[test]
fn an_open_data_dir_and_database_are_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = data.join("custodian.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (output, _, stderr) = run(custodian(&data).arg("migrate"));
    assert!(output.status.success(), "{stderr}");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert!(stderr.contains("now mode 700"), "{stderr}");
    for file in ["custodian.db-wal", "custodian.db-shm", "keyring.json"] {
        let path = data.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }

    // A fresh data directory starts private.
    let fresh = dir.path().join("fresh");
    succeed(custodian(&fresh).arg("migrate"));
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("custodian.db")), 0o600);
}

#[test]
fn gc_runs_over_an_empty_queue() {
    let dir = TempDir::new().unwrap();
    let out = succeed(custodian(&dir.path().join("data")).args(["gc", "--limit", "50"]));
    assert_eq!(
        out,
        "done: 0\nfailed: 0\norphans removed: 0 (of 0 stored values; 0 failed)\n"
    );
}

#[test]
fn version_needs_no_configuration() {
    let dir = TempDir::new().unwrap();
    let out = succeed(
        custodian(dir.path())
            .arg("--version")
            .env("CUSTODIAN_CONFIG", dir.path().join("missing.toml")),
    );
    assert_eq!(out.trim(), format!("custodian {}", env!("CARGO_PKG_VERSION")));
    // Anything that needs the configuration refuses the missing file clearly.
    let (output, stdout, stderr) = run(custodian(dir.path())
        .arg("gc")
        .env("CUSTODIAN_CONFIG", dir.path().join("missing.toml")));
    assert!(!output.status.success());
    assert!(stdout.is_empty());
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

/// The one JSON object `bootstrap` prints.
fn bootstrap(data: &Path, args: &[&str]) -> serde_json::Value {
    let out = succeed(custodian(data).arg("bootstrap").args(args));
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("a JSON object");
    let keys: Vec<&String> = value.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["team_id", "token", "user_id"]);
    value
}

async fn start(config: Config) -> String {
    let app = Application::build(config).await.expect("the server starts");
    let base = format!("http://{}", app.local_addr());
    actix_web::rt::spawn(app.run());
    base
}

#[actix_web::test]
async fn bootstrap_prints_a_token_that_the_server_accepts() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let ops = bootstrap(
        &data,
        &["--email", "ops@example.com", "--team", "platform", "--tier", "pro"],
    );
    let token = ops["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cus_"));

    // A server on that database accepts the token; no first-start admin appears.
    let base = start(Config::for_data_dir(&data)).await;
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ops@example.com");
    assert_eq!(me["id"], ops["user_id"]);
    assert_eq!(me["tenant_admin"], true);
    assert_eq!(me["teams"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["teams"][0]["id"], ops["team_id"]);
    assert_eq!(me["teams"][0]["name"], "platform");
    assert_eq!(me["teams"][0]["role"], "owner");

    // On a database with users: a new team `default`, then joining it as owner.
    let second = bootstrap(&data, &["--email", "second@example.com"]);
    let third = bootstrap(&data, &["--email", "third@example.com"]);
    assert_ne!(second["team_id"], ops["team_id"]);
    assert_eq!(third["team_id"], second["team_id"]);
    assert_ne!(third["token"], second["token"]);
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/me"))
        .bearer_auth(third["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["teams"][0]["name"], "default");
    assert_eq!(me["teams"][0]["role"], "owner");

    // A taken email: a clear error, nothing on stdout, a failing exit code.
    let (output, stdout, stderr) = run(custodian(&data).args(["bootstrap", "--email", "ops@example.com"]));
    assert!(!output.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("already exists"), "{stderr}");
    // Bad input is refused before anything is written.
    for args in [
        ["--email", "not-an-email", "--tier", "pro"],
        ["--email", "fourth@example.com", "--tier", "gold"],
    ] {
        let (output, stdout, stderr) = run(custodian(&data).arg("bootstrap").args(args));
        assert!(!output.status.success(), "{args:?}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains(if args[1] == "not-an-email" { "--email" } else { "--tier" }),
            "{stderr}"
        );
    }
    let again = bootstrap(&data, &["--email", "fourth@example.com"]);
    assert_eq!(again["team_id"], second["team_id"]);
}

#[actix_web::test]
async fn keys_rotate_rewraps_every_credential_and_they_still_resolve() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let config = Config::for_data_dir(&data);
    let admin = commands::bootstrap(&config, "ops@example.com", "platform", Some("free"))
        .await
        .unwrap();
    assert_eq!(admin.team.tier, Tier::Free);
    let subject = Subject::User {
        id: admin.user.id,
        email: admin.user.email.clone(),
        display_name: admin.user.display_name.clone(),
        tenant_admin: true,
    };
    let ctx = RequestContext::default();
    let services = Deployment::open(&config).await.unwrap();
    let core = services.custodian();
    let other_team = core
        .create_team(
            &subject,
            &ctx,
            NewTeamInput {
                name: Some("analytics".into()),
                ..NewTeamInput::default()
            },
        )
        .await
        .unwrap();
    let mut secrets = Vec::new();
    for (team, name, key_id, secret) in [
        (admin.team.id, "backups", "AKIABACKUPS", "backups-s3cr3t"),
        (other_team.id, "lake", "AKIALAKE", "lake-s3cr3t"),
    ] {
        let created = core
            .create_secret(
                &subject,
                &ctx,
                team,
                CreateSecretInput {
                    name: Some(name.into()),
                    secret_type: Some("s3".into()),
                    auth_method: Some("s3_access_key".into()),
                    credentials: Some(vec![
                        ("access_key_id".into(), SecretString::from(key_id)),
                        ("secret_access_key".into(), SecretString::from(secret)),
                    ]),
                    ..CreateSecretInput::default()
                },
            )
            .await
            .unwrap();
        secrets.push((team, created.id, key_id, secret));
    }
    drop(services);
    let keyring_before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("keyring.json")).unwrap()).unwrap();

    let out = succeed(custodian(&data).args(["keys", "rotate"]));
    let keyring_after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("keyring.json")).unwrap()).unwrap();
    let active = keyring_after["active"].as_str().unwrap();
    let old = keyring_before["active"].as_str().unwrap();
    assert_ne!(active, old);
    assert_eq!(
        out,
        format!(
            "active key: {active}\nre-wrapped credentials: 2\nold key: {old} (0 value(s) still sealed under it)\n\
             once every server has the new key (servers on this data directory pick it up by themselves), retire \
             the old ones: custodian keys remove --all-inactive\n"
        )
    );
    assert_eq!(
        keyring_after["keys"].as_array().unwrap().len(),
        2,
        "the old key stays until removed"
    );
    let listed = succeed(custodian(&data).args(["keys", "list"]));
    assert_eq!(
        listed,
        format!("{old}\told\t0 value(s)\tin this keyring\n{active}\tactive\t2 value(s)\tin this keyring\n")
    );
    // The active key cannot be removed; the old one can, and leaves the file.
    let (output, _, stderr) = run(custodian(&data).args(["keys", "remove", active]));
    assert!(!output.status.success());
    assert!(stderr.contains("is the active key"), "{stderr}");
    let out = succeed(custodian(&data).args(["keys", "remove", "--all-inactive"]));
    assert_eq!(out, format!("re-wrapped credentials: 0\nremoved key: {old}\n"));
    let keyring_after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("keyring.json")).unwrap()).unwrap();
    assert_eq!(
        keyring_after["keys"].as_array().unwrap().len(),
        1,
        "the old key is gone"
    );
    assert_eq!(keyring_after["token_pepper"], keyring_before["token_pepper"]);
    assert!(!out.contains("s3cr3t"));

    // A server started on the rotated keyring reads every credential and every token.
    let services = Deployment::open(&config).await.unwrap();
    let core = services.custodian();
    let caller = core.authenticate(&admin.token).await.expect("the token still works");
    assert_eq!(caller.id(), subject.id());
    for (team, id, key_id, secret) in secrets {
        let credentials = core.resolve(&subject, team, id).await.expect("resolves");
        assert_eq!(
            credentials.get(CredentialField::AccessKeyId).unwrap().expose_secret(),
            key_id
        );
        assert_eq!(
            credentials
                .get(CredentialField::SecretAccessKey)
                .unwrap()
                .expose_secret(),
            secret
        );
    }
    drop(services);

    // Rotating again works the same way; a removed key is never accepted again.
    let out = succeed(custodian(&data).args(["keys", "rotate"]));
    assert!(out.contains("re-wrapped credentials: 2\nold key: "), "{out}");
    let out = succeed(custodian(&data).args(["keys", "remove", "--all-inactive"]));
    assert!(out.contains("removed key: "), "{out}");
    let (output, _, stderr) = run(custodian(&data).args(["keys", "remove", old]));
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("knows no key {old}")), "{stderr}");
}

/// A log line as JSON, if it is one.
fn json_line(line: &str) -> Option<serde_json::Value> {
    line.starts_with('{').then(|| serde_json::from_str(line).ok()).flatten()
}

#[tokio::test]
async fn serve_on_postgres_logs_json_at_trace_without_secrets_and_stops_on_sigterm() {
    let Some(db) = TestPostgres::start("custodian_server_blank", |_| async { Ok(()) }).await else {
        return;
    };
    // The test server trusts local connections, so a password in the URL is accepted and
    // stands for a real one: it must never reach a log line.
    let password = "pg-pa55word-never-logged";
    let url = db
        .url()
        .replacen("://postgres@", &format!("://postgres:{password}@"), 1);
    assert!(
        url.contains(password),
        "the test database URL has the expected form: {}",
        db.url()
    );
    let dir = TempDir::new().unwrap();
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();

    let token_file = dir.path().join("first-token");
    let mut command = custodian(&dir.path().join("data"));
    command
        .env("CUSTODIAN_DATABASE_URL_FILE", &url_file)
        .env("CUSTODIAN_FIRST_TOKEN_FILE", &token_file)
        .env("CUSTODIAN_LOG_FORMAT", "json")
        .env("RUST_LOG", "trace");
    let mut server = RunningServer::spawn(command, "127.0.0.1:0");
    let listening = server.wait_until("the listening line", |l| {
        json_line(l).is_some_and(|v| v["fields"]["message"] == "listening")
    });
    let address = json_line(&listening).unwrap()["fields"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    // With a first_token_file the token goes there (mode 0600), and the log only names it.
    server.wait_until("the token file line", |l| {
        json_line(l).is_some_and(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("first_token_file"))
        })
    });
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    assert!(token.starts_with("cus_"), "the file holds the token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let client = reqwest::Client::new();
    let me = client
        .get(format!("http://{address}/v1/me"))
        .bearer_auth(&token)
        .header("x-request-id", "chosen-by-the-client")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let ok_id = me.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&ok_id).is_ok(), "{ok_id}");

    let wrong_token = format!("{token}x");
    let refused = client
        .get(format!("http://{address}/v1/me"))
        .bearer_auth(&wrong_token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused_id = refused.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(refused_id, ok_id);

    // The refusal's audit event carries the id the client saw.
    let (client_db, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client_db
        .query(
            "SELECT request_id::text FROM audit_events WHERE action = 'authenticate'",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<Option<String>> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [Some(refused_id.clone())]);

    let lines = server.terminate();
    // The request's log span carries the same id.
    assert!(
        lines
            .iter()
            .filter_map(|l| json_line(l))
            .any(|v| v.to_string().contains(&refused_id)),
        "no log line names the request id {refused_id}"
    );
    // Every line of the log stream is JSON; none holds the token, a wrong token or the
    // password.
    for line in &lines {
        assert!(!line.contains(password), "{line}");
        assert!(!line.contains(&token), "{line}");
        assert!(line.trim().is_empty() || json_line(line).is_some(), "not JSON: {line}");
    }
    assert!(lines.iter().filter_map(|l| json_line(l)).count() > 5);
    assert!(
        lines
            .iter()
            .filter_map(|l| json_line(l))
            .any(|v| v["level"] == "TRACE" || v["level"] == "DEBUG"),
        "trace-level logging was on"
    );
}

#[tokio::test]
async fn serve_on_sqlite_answers_then_stops_cleanly_on_sigterm() {
    let dir = TempDir::new().unwrap();
    let mut command = custodian(&dir.path().join("data"));
    command.env("RUST_LOG", "trace");
    let mut server = RunningServer::spawn(command, "127.0.0.1:0");
    let listening = server.wait_until("the listening line", |l| l.contains("listening address="));
    let address = listening.split("listening address=").nth(1).unwrap().trim().to_owned();
    let token_line = server.wait_until("the token", |l| l.trim_start().starts_with("cus_"));
    let token = token_line.trim().to_owned();

    let me = reqwest::Client::new()
        .get(format!("http://{address}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let id = me.headers()["x-request-id"].to_str().unwrap().to_owned();

    let lines = server.terminate();
    assert!(lines.iter().any(|l| l.contains("SIGTERM received")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("stopped")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains(&format!("request_id={id}"))),
        "the request's span names its id"
    );
    // At trace level the token is only in the two lines of the first-start message.
    let holding: Vec<&String> = lines.iter().filter(|l| l.contains(&token)).collect();
    assert_eq!(holding.len(), 2, "{holding:#?}");
    assert!(
        holding
            .iter()
            .all(|l| !l.contains("TRACE") && !l.contains("DEBUG") && !l.contains("INFO"))
    );
}

/// A create killed between storing its credentials and committing its row leaves a value
/// no row points at (made here by removing the row underneath). `gc` leaves it alone while
/// it is younger than `orphan_min_age` and removes it once it is older (here: an age of 0),
/// and nothing any row points at.
#[actix_web::test]
async fn gc_removes_stored_values_no_row_points_at_once_old_enough() {
    use diesel::{Connection, RunQueryDsl};

    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let server = crate::process::RunningServer::start(
        crate::process::custodian(&data, "info"),
        crate::process::free_port(),
        "Try it:",
    );
    let token = server.tokens()[0].clone();
    let me = server.api.get("/v1/me", &token).await;
    let team_id = me.json["teams"][0]["id"].as_str().unwrap().to_owned();
    let kept = crate::support::create_secret(&server.api, &token, &team_id).await;
    let orphaned = crate::support::create_secret(&server.api, &token, &team_id).await;

    let mut db = diesel::SqliteConnection::establish(&data.join("custodian.db").display().to_string()).unwrap();
    let rows = |db: &mut diesel::SqliteConnection, sql: &str| diesel::sql_query(sql).execute(db).unwrap();
    assert_eq!(
        rows(&mut db, &format!("DELETE FROM storage_secrets WHERE id = '{orphaned}'")),
        1
    );
    let blobs = |db: &mut diesel::SqliteConnection| {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let counts: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM credential_blobs")
            .load(db)
            .unwrap();
        counts[0].n
    };
    assert_eq!(blobs(&mut db), 2);

    // Younger than the configured age (an hour): a write that may still be in flight.
    let out = succeed(custodian(&data).arg("gc"));
    assert_eq!(
        out,
        "done: 0\nfailed: 0\norphans removed: 0 (of 2 stored values; 0 failed)\n"
    );
    assert_eq!(blobs(&mut db), 2);

    let out = succeed(custodian(&data).args(["gc", "--orphan-min-age", "0"]));
    assert_eq!(
        out,
        "done: 0\nfailed: 0\norphans removed: 1 (of 2 stored values; 0 failed)\n"
    );
    assert_eq!(blobs(&mut db), 1);
    let verified = server
        .api
        .post(
            &format!("/v1/teams/{team_id}/secrets/{kept}/verify"),
            &token,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(verified.json["verified"], true, "{}", verified.text);
    server.terminate();
}

/// `serve` sweeps by itself every `orphan_sweep_interval`: a value no row points at, older
/// than `orphan_min_age`, is removed while the server runs.
#[actix_web::test]
async fn serve_sweeps_orphaned_values_periodically() {
    use diesel::{Connection, RunQueryDsl};

    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let mut command = crate::process::custodian(&data, "info");
    command.env("CUSTODIAN_ORPHAN_SWEEP_INTERVAL", "1");
    let mut server = crate::process::RunningServer::start(command, crate::process::free_port(), "Try it:");
    let token = server.tokens()[0].clone();
    let me = server.api.get("/v1/me", &token).await;
    let team_id = me.json["teams"][0]["id"].as_str().unwrap().to_owned();
    let orphaned = crate::support::create_secret(&server.api, &token, &team_id).await;
    let kept = crate::support::create_secret(&server.api, &token, &team_id).await;

    // The row goes and its value is made two hours old: an orphan of a create long dead.
    let mut db = diesel::SqliteConnection::establish(&data.join("custodian.db").display().to_string()).unwrap();
    diesel::sql_query(format!("DELETE FROM storage_secrets WHERE id = '{orphaned}'"))
        .execute(&mut db)
        .unwrap();
    diesel::sql_query(format!(
        "UPDATE credential_blobs SET created_at = datetime('now', '-2 hours') WHERE record_id = '{orphaned}'"
    ))
    .execute(&mut db)
    .unwrap();

    let line = server.wait_until("a sweep that removed the orphan", |line| {
        line.contains("swept the credential store") && line.contains("removed=1")
    });
    assert!(line.contains("examined=2"), "{line}");
    let verified = server
        .api
        .post(
            &format!("/v1/teams/{team_id}/secrets/{kept}/verify"),
            &token,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(verified.json["verified"], true, "{}", verified.text);
    server.terminate();
}
