//! Canaries: unique values planted as credentials (at create and at rotation), as a vault
//! connection's access token (at create and at rotation), as secret-group values (at
//! create, at update), in refused requests and as a refused bearer token, through the
//! built binary at `RUST_LOG=trace`. Afterwards no answer (but a group value's own reads),
//! no line of the process's output and no byte of the SQLite files holds any of them; the
//! admin's token appears only in the one bootstrap message.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::json;
use tempfile::TempDir;

use crate::support::{
    Api, GROUPS, SECRETS, create_group, create_team, doppler_body, group_body, group_secrets, key_id, location_body,
    read_key, s3_secret_body, unique,
};

/// A `custodian serve` writing stdout and stderr to one file.
struct LoggedServer {
    child: Child,
    log: PathBuf,
}

impl LoggedServer {
    fn start(data_dir: &Path, port: u16, log: PathBuf) -> Self {
        let out = File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("share the log file");
        let child = Command::new(env!("CARGO_BIN_EXE_custodian"))
            .arg("serve")
            .env("CUSTODIAN_DATA_DIR", data_dir)
            .env("CUSTODIAN_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("CUSTODIAN_DATABASE_URL")
            .env("RUST_LOG", "trace")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("the binary starts");
        Self { child, log }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).expect("read the log")).into_owned()
    }

    /// Wait until the output holds `needle` (or the process has exited: then fail).
    fn wait_for(&mut self, needle: &str) {
        loop {
            if self.output().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                panic!("the server exited ({status}) before {needle:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and a clean exit; the whole output.
    fn terminate(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("the server exits");
        assert!(exit.success(), "{exit:?}");
        self.output()
    }
}

/// A value no run of any test has used: `CANARY` and the time and process.
pub(crate) fn canary(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("CANARY{label}{nanos:x}p{}n{}", std::process::id(), unique())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file of the SQLite database (`custodian.db`, `-wal`, `-shm`), concatenated.
fn database_bytes(data_dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data_dir).expect("list the data directory") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if name.starts_with("custodian.db") {
            bytes.extend(std::fs::read(&path).expect("read a database file"));
        }
    }
    assert!(!bytes.is_empty(), "no database in {}", data_dir.display());
    bytes
}

/// The lines of the output that hold `token`, without the bootstrap message's own two
/// (the token on its own line and the `curl` example).
fn lines_leaking<'a>(output: &'a str, token: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter(|l| l.contains(token))
        .filter(|l| l.trim() != token && !l.trim_start().starts_with("Try it: curl"))
        .collect()
}

#[tokio::test]
async fn no_canary_reaches_an_answer_a_log_line_or_the_database_file() {
    let dir = TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut server = LoggedServer::start(&data_dir, port, dir.path().join("custodian.log"));
    server.wait_for("Try it:");
    let token = server
        .output()
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cus_"))
        .expect("the token on its own line")
        .to_owned();
    let api = Api::new(format!("http://127.0.0.1:{port}"));

    let created_id = canary("KEYID");
    let created_key = canary("SECRETKEY");
    let rotated_id = canary("ROTATEDID");
    let rotated_key = canary("ROTATEDKEY");
    let refused_value = canary("REFUSED");
    let vault_token = format!("dp.st.{}", canary("VAULT"));
    let rotated_vault_token = format!("dp.st.{}", canary("VAULTROTATED"));
    let refused_bearer = format!("cus_{}", canary("BEARER"));
    let client_secret = canary("CLIENTSECRET");
    let rotated_client_secret = canary("CLIENTSECRETROTATED");
    let mut canaries = vec![
        &created_id,
        &created_key,
        &rotated_id,
        &rotated_key,
        &refused_value,
        &vault_token,
        &rotated_vault_token,
        &refused_bearer,
        &client_secret,
        &rotated_client_secret,
    ];

    let team = create_team(&api, &token, "canaries").await;
    let secrets = format!("/v1/teams/{team}/secrets");
    let marker = format!("canary-marker-{}", unique());
    let created = api
        .post(&secrets, &token, &s3_secret_body(&marker, &created_id, &created_key))
        .await;
    created.expect_status(201, "create the secret");
    let secret = format!("{secrets}/{}", created.str("id"));
    api.patch(
        &secret,
        &token,
        &json!({ "credentials": { "access_key_id": rotated_id, "secret_access_key": rotated_key } }),
    )
    .await
    .expect_status(200, "rotate the credentials");
    api.call(Method::POST, &format!("{secret}/verify"), Some(&token), None)
        .await
        .expect_status(200, "verify the secret");
    api.get(&secret, &token).await.expect_status(200, "details");
    api.get(&secrets, &token).await.expect_status(200, "list");
    api.post(
        &format!("/v1/teams/{team}/locations"),
        &token,
        &location_body("canary-bucket", &created.str("id")),
    )
    .await
    .expect_status(201, "a location");

    // Refused requests must not echo what they refuse.
    let padded = api
        .post(
            &secrets,
            &token,
            &s3_secret_body("refused", &format!(" {refused_value} "), &refused_value),
        )
        .await;
    padded.expect_status(422, "a padded credential");
    let unknown = api
        .post(
            &secrets,
            &token,
            &json!({
                "name": "refused-too",
                "secret_type": "s3",
                "auth_method": "s3_access_key",
                "credentials": {
                    "access_key_id": refused_value,
                    "secret_access_key": refused_value,
                    "session_token": refused_value,
                },
            }),
        )
        .await;
    unknown.expect_status(422, "an unknown credential field");
    let wrong_method = api
        .patch(
            &secret,
            &token,
            &json!({ "credentials": { "account_name": refused_value, "account_key": refused_value } }),
        )
        .await;
    wrong_method.expect_status(422, "credentials of another auth method");
    api.call(Method::GET, "/v1/me", Some(&refused_bearer), None)
        .await
        .expect_status(401, "an unknown bearer token");

    // A vault connection's token, at create and at rotation.
    let connections = format!("/v1/teams/{team}/vault-connections");
    let connection = api
        .post(&connections, &token, &doppler_body("canary-doppler", &vault_token))
        .await;
    connection.expect_status(201, "create the vault connection");
    let connection = format!("{connections}/{}", connection.str("id"));
    api.post(
        &format!("{connection}/rotate"),
        &token,
        &json!({ "access_token": rotated_vault_token }),
    )
    .await
    .expect_status(200, "rotate the vault connection");
    // Whatever verification answers (the provider is not reachable from here), it must not
    // carry the token.
    api.call(Method::POST, &format!("{connection}/verify"), Some(&token), None)
        .await;
    api.get(&connection, &token).await.expect_status(200, "the connection");
    // An Infisical client secret, at create and at rotation.
    let infisical = api
        .post(
            &connections,
            &token,
            &json!({
                "name": "canary-infisical",
                "vault_type": "infisical",
                "client_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
                "client_secret": client_secret,
                "project_id": "f1e2d3c4-b5a6-7890-abcd-ef1234567890",
                "environment": "prod",
                "secret_path": "/exports",
            }),
        )
        .await;
    infisical.expect_status(201, "create the Infisical connection");
    let infisical = format!("{connections}/{}", infisical.str("id"));
    api.post(
        &format!("{infisical}/rotate"),
        &token,
        &json!({ "client_id": "b1b2c3d4-e5f6-7890-abcd-ef1234567890", "client_secret": rotated_client_secret }),
    )
    .await
    .expect_status(200, "rotate the Infisical connection");
    api.get(&connections, &token)
        .await
        .expect_status(200, "the connections");
    // Secret-group values: their reads go through `reader`, every other request through
    // `api`.
    let reader = Api::new(api.base.clone());
    let group = plant_group_canaries(&api, &reader, &token, &team).await;
    canaries.extend(&group.planted);
    let audit = format!("/v1/teams/{team}/audit-events");
    api.get(&audit, &token).await.expect_status(200, "audit events");
    api.call_with(Method::GET, &audit, Some(&token), None, &[("accept", "text/csv")])
        .await
        .expect_status(200, "audit events as CSV");

    let running_db = database_bytes(&data_dir);
    let output = server.terminate();
    let stopped_db = database_bytes(&data_dir);

    // The answers: a group value only in the answers of its reads.
    for value in &group.read {
        assert!(
            reader.seen().iter().any(|answer| answer.contains(value.as_str())),
            "no read showed {value}"
        );
    }
    for answer in api.seen() {
        for value in &canaries {
            assert!(!answer.contains(value.as_str()), "{value} in an answer:\n{answer}");
        }
        assert!(!answer.contains(&token), "the admin token in an answer:\n{answer}");
    }
    // The output at trace level holds none of them.
    assert!(output.contains("listening"), "the log is captured:\n{output}");
    assert!(output.contains("TRACE"), "trace logging is on:\n{output}");
    for value in &canaries {
        let leaking: Vec<&str> = output.lines().filter(|l| l.contains(value.as_str())).collect();
        assert!(leaking.is_empty(), "{value} in the output: {leaking:#?}");
    }
    assert_eq!(output.lines().filter(|l| l.trim() == token).count(), 1, "{output}");
    assert!(
        lines_leaking(&output, &token).is_empty(),
        "{:#?}",
        lines_leaking(&output, &token)
    );
    // No other bearer token than the bootstrap one, in any form.
    let other_tokens: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("cus_") && l.trim() != token && !l.trim_start().starts_with("Try it: curl"))
        .collect();
    assert!(other_tokens.is_empty(), "{other_tokens:#?}");

    // The database files, while running and after a clean stop.
    for (when, bytes) in [("running", &running_db), ("stopped", &stopped_db)] {
        assert!(contains(bytes, &marker), "{when}: the search reads the database");
        for value in &canaries {
            assert!(!contains(bytes, value), "{when}: {value} in the database in plaintext");
        }
        assert!(!contains(bytes, &token), "{when}: the admin token in the database");
    }
}

/// The secret-group values [`plant_group_canaries`] sent.
struct GroupCanaries {
    /// Values a read answered with.
    read: Vec<String>,
    /// Every value sent, those refused included.
    planted: Vec<String>,
}

/// A group of `team` with canary values at create and at update, requests refused with
/// canary values in them, and every other group request (get, list, search, manifest, key
/// list, key delete) through `api`; the value reads (`GET /secrets/{id}`, `POST /secrets`
/// with `withValue`) through `reader`.
async fn plant_group_canaries(api: &Api, reader: &Api, token: &str, team: &str) -> GroupCanaries {
    let [first, second, changed, added, refused, oversized] = [
        "GROUPFIRST",
        "GROUPSECOND",
        "GROUPCHANGED",
        "GROUPADDED",
        "GROUPREFUSED",
        "GROUPOVERSIZED",
    ]
    .map(canary);
    let name = format!("canary-group-{}", unique());
    let group = create_group(
        api,
        token,
        &group_body(&name, "local", Some(team), &[("FIRST", &first), ("SECOND", &second)]),
    )
    .await;
    let group_path = format!("{GROUPS}/{}", group["id"].as_str().expect("a group id"));
    api.put(
        &group_path,
        token,
        &json!({ "secrets": group_secrets(&[("FIRST", Some(&changed)), ("SECOND", None), ("THIRD", Some(&added))]) }),
    )
    .await
    .expect_status(200, "update the group");

    // Refused: a repeated key, an unknown integration, a value over 32 KiB.
    api.post(
        GROUPS,
        token,
        &group_body(
            "refused-group",
            "local",
            Some(team),
            &[("A", &refused), ("A", &refused)],
        ),
    )
    .await
    .expect_status(422, "a repeated key");
    api.post(
        GROUPS,
        token,
        &group_body("refused-group", "vault-9", Some(team), &[("A", &refused)]),
    )
    .await
    .expect_status(422, "an unknown integration");
    let too_long = format!("{oversized}{}", "x".repeat(32 * 1024));
    api.put(
        &group_path,
        token,
        &json!({ "secrets": group_secrets(&[("FIRST", None), ("SECOND", Some(&too_long))]) }),
    )
    .await
    .expect_status(422, "a value over 32 KiB");

    // Everything but value reads.
    api.get(&group_path, token).await.expect_status(200, "get the group");
    api.get(&format!("{GROUPS}?search={name}"), token)
        .await
        .expect_status(200, "search the groups");
    api.get(GROUPS, token).await.expect_status(200, "list the groups");
    api.put(
        GROUPS,
        token,
        &json!({ "manifest": { "type": "secret-group", "name": name, "integration_fqn": "local" } }),
    )
    .await
    .expect_status(200, "apply the group's manifest");
    let group_id = group["id"].as_str().expect("a group id");
    let keys = api.post(SECRETS, token, &json!({ "secretGroupId": group_id })).await;
    keys.expect_status(200, "list the keys");

    // Value reads: every version of FIRST, version 1 of SECOND, the current values.
    let first_id = key_id(&group, "FIRST");
    read_key(reader, token, &first_id, None)
        .await
        .expect_status(200, "read FIRST");
    read_key(reader, token, &key_id(&group, "SECOND"), Some(1))
        .await
        .expect_status(200, "read SECOND");
    reader
        .post(SECRETS, token, &json!({ "secretGroupId": group_id, "withValue": true }))
        .await
        .expect_status(200, "list the keys with values");

    let third = key_id(&api.get(&group_path, token).await.json["data"], "THIRD");
    api.delete(&format!("{SECRETS}/{third}"), token)
        .await
        .expect_status(200, "delete a key");
    GroupCanaries {
        read: vec![first.clone(), second.clone(), changed.clone(), added.clone()],
        planted: vec![first, second, changed, added, refused, oversized],
    }
}
