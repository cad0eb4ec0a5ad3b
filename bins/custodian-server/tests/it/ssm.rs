//! The built binary with `CUSTODIAN_CREDENTIAL_STORE=aws-ssm`: a managed storage secret
//! created, read, rotated, verified and deleted over HTTP keeps its credentials in SSM
//! Parameter Store (a real `moto_server`, read back through the SDK), never in the SQLite
//! database; and a store that cannot be reached or throttles answers 503 with
//! `Retry-After`, creating nothing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::config::Credentials;
use aws_sdk_ssm::types::ParameterType;
use custodian_store_ssm::{SsmCredentialStore, SsmSettings};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::Method;
use serde_json::json;
use tempfile::TempDir;

use crate::process::{RunningServer, free_port};
use crate::support::{
    Api, GROUPS, SECRETS, create_group, create_team, group_body, group_secrets, key_id, read_value, s3_secret_body,
    unique,
};

/// The URL of the `moto_server` the SSM tests use (`cargo xtask test` sets it).
const MOTO_URL_ENV: &str = "CUSTODIAN_TEST_MOTO_URL";
pub(crate) const REGION: &str = "us-east-1";

/// The moto URL, or `None` after a loud skip line; under CI an unset URL fails the test.
pub(crate) fn moto_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(MOTO_URL_ENV)
        && !url.trim().is_empty()
    {
        return Some(url.trim().trim_end_matches('/').to_owned());
    }
    let ci = std::env::var("CI").ok().is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    });
    if ci {
        panic!(
            "{MOTO_URL_ENV} is not set, and CI (CI=true) runs the AWS SSM tests against moto; they are never skipped there.\n\
             fix: run the tests with `cargo xtask test`, or start `moto_server -p PORT` and set {MOTO_URL_ENV}=http://127.0.0.1:PORT"
        );
    }
    eprintln!(
        "SKIPPED (moto): {test} — {MOTO_URL_ENV} is not set, so this AWS SSM test did not run.\n\
         SKIPPED (moto): to run it: `cargo xtask test`, or start `moto_server -p 5000` (pip install 'moto[server]') \
         and set {MOTO_URL_ENV}=http://127.0.0.1:5000"
    );
    None
}

/// A value no other run has used.
pub(crate) fn canary(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("CANARY{label}{nanos:x}p{}n{}", std::process::id(), unique())
}

/// The binary with the data directory, the credential store `store`, the `[ssm]` settings
/// of `endpoint` and `prefix` (the region and credentials from the AWS variables, as in a
/// deployment), and debug logs.
pub(crate) fn custodian(data_dir: &Path, store: &str, endpoint: &str, prefix: &str) -> Command {
    let mut command = crate::process::custodian(data_dir, "debug");
    command
        .env("CUSTODIAN_CREDENTIAL_STORE", store)
        .env("CUSTODIAN_SSM__ENDPOINT_URL", endpoint)
        .env("CUSTODIAN_SSM__PREFIX", prefix)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

/// Whether a server start is the data directory's first (which prints the admin's token).
pub(crate) enum Start {
    First,
    /// A later start, by the admin holding this token.
    Again(String),
}

/// A running `custodian serve` with the `[ssm]` settings of a test, and the admin's token.
pub(crate) struct SsmServer {
    server: RunningServer,
    pub(crate) api: Api,
    pub(crate) token: String,
}

impl SsmServer {
    /// Start the binary with the aws-ssm store at `endpoint` under `prefix`; the region
    /// and the credentials come from the AWS variables, as in a deployment. Returns once
    /// the first start printed the admin's token.
    fn start(data_dir: &Path, endpoint: &str, prefix: &str) -> Self {
        let server = Self::launch(data_dir, "aws-ssm", endpoint, prefix, Start::First);
        assert!(
            server.server.seen.iter().any(|l| l.contains("AWS SSM Parameter Store")),
            "the log names the credential store: {:#?}",
            server.server.seen
        );
        server
    }

    /// Start the binary on `store` (`local` or `aws-ssm`), with the `[ssm]` settings of
    /// `endpoint` and `prefix` either way; returns once it listens (and, on a first start,
    /// printed the admin's token).
    pub(crate) fn launch(data_dir: &Path, store: &str, endpoint: &str, prefix: &str, start: Start) -> Self {
        let command = custodian(data_dir, store, endpoint, prefix);
        let (server, token) = match start {
            Start::First => RunningServer::first_start(command),
            Start::Again(token) => (RunningServer::start(command, free_port(), "listening"), token),
        };
        SsmServer {
            api: server.api.clone(),
            server,
            token,
        }
    }

    /// SIGTERM, a clean exit, and every line it wrote.
    pub(crate) fn terminate(self) -> Vec<String> {
        self.server.terminate()
    }
}

/// What one test against moto works in: a data directory of its own (removed when the
/// `TempDir` is dropped), an SSM prefix `/custodian-<label>-<random>` no other run uses,
/// and an SDK client to look at what the server wrote.
pub(crate) async fn moto_place(moto: &str, label: &str) -> (TempDir, PathBuf, String, aws_sdk_ssm::Client) {
    let dir = TempDir::new().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let prefix = format!("/custodian-{label}-{}", uuid::Uuid::new_v4().simple());
    (dir, data_dir, prefix, sdk_client(moto).await)
}

/// An SDK client on `endpoint` with the test credentials, to look at what the server wrote.
pub(crate) async fn sdk_client(endpoint: &str) -> aws_sdk_ssm::Client {
    let settings = SsmSettings {
        region: Some(REGION.to_owned()),
        endpoint_url: Some(endpoint.to_owned()),
        ..SsmSettings::new("unused")
    };
    let config = SsmCredentialStore::config_loader(&settings)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "custodian-tests"))
        .load()
        .await;
    aws_sdk_ssm::Client::new(&config)
}

/// A parameter as read back: name, type and decrypted value.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) name: String,
    pub(crate) kind: Option<ParameterType>,
    pub(crate) value: String,
}

/// Every parameter under `path`, decrypted, sorted by name.
pub(crate) async fn parameters_under(client: &aws_sdk_ssm::Client, path: &str) -> Vec<Stored> {
    let mut found = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = client
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .set_next_token(next_token.take())
            .send()
            .await
            .expect("moto lists the parameters");
        found.extend(page.parameters().iter().map(|p| Stored {
            name: p.name().unwrap_or_default().to_owned(),
            kind: p.r#type().cloned(),
            value: p.value().unwrap_or_default().to_owned(),
        }));
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Panics unless the parameters under `path` are exactly `expected` (`(name, value)`, in
/// any order), each a SecureString; the message names parameters, never values.
pub(crate) async fn assert_parameters(client: &aws_sdk_ssm::Client, path: &str, mut expected: Vec<(String, &str)>) {
    expected.sort();
    let stored = parameters_under(client, path).await;
    let found: Vec<(String, &str)> = stored.iter().map(|p| (p.name.clone(), p.value.as_str())).collect();
    let names = |list: &[(String, &str)]| list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert!(
        found == expected,
        "under {path}: parameters {:?}, expected {:?} (or their values differ)",
        names(&found),
        names(&expected)
    );
    let kinds: Vec<(&str, Option<&ParameterType>)> =
        stored.iter().map(|p| (p.name.as_str(), p.kind.as_ref())).collect();
    assert!(
        kinds
            .iter()
            .all(|(_, kind)| *kind == Some(&ParameterType::SecureString)),
        "{kinds:?}"
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The rows of `credential_blobs` in the server's SQLite database.
pub(crate) fn credential_blob_rows(data_dir: &Path) -> i64 {
    let url = data_dir.join("custodian.db");
    let mut connection =
        SqliteConnection::establish(url.to_str().expect("a UTF-8 path")).expect("open the server's SQLite database");
    diesel::sql_query("SELECT COUNT(*) AS n FROM credential_blobs")
        .get_result::<Count>(&mut connection)
        .expect("count the credential blobs")
        .n
}

/// Every byte of the SQLite files (`custodian.db`, `-wal`, `-shm`).
pub(crate) fn database_bytes(data_dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data_dir).expect("list the data directory") {
        let path = entry.expect("a directory entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("custodian.db"))
        {
            bytes.extend(std::fs::read(&path).expect("read a database file"));
        }
    }
    assert!(!bytes.is_empty(), "no database in {}", data_dir.display());
    bytes
}

pub(crate) fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_binary_keeps_a_secrets_credentials_in_ssm_through_its_whole_life() {
    let Some(moto) = moto_url("ssm::the_binary_keeps_a_secrets_credentials_in_ssm_through_its_whole_life") else {
        return;
    };
    let (_dir, data_dir, prefix, ssm) = moto_place(&moto, "e2e").await;
    let server = SsmServer::start(&data_dir, &moto, &prefix);
    let (api, token) = (server.api.clone(), server.token.clone());

    let team = create_team(&api, &token, &format!("ssm-{}", unique())).await;
    let team_path = format!("{prefix}/default/{team}");
    let (first_id, first_key) = (canary("AKID1"), canary("SECRET1"));
    let created = api
        .post(
            &format!("/v1/teams/{team}/secrets"),
            &token,
            &s3_secret_body(&format!("export-{}", unique()), &first_id, &first_key),
        )
        .await;
    created.expect_status(201, "POST a managed secret on the aws-ssm store");
    let secret = created.str("id");
    let secret_path = format!("/v1/teams/{team}/secrets/{secret}");
    let record = format!("{team_path}/storage-secret/{secret}");

    // One SecureString at `<prefix>/<tenant>/<team>/<kind>/<id>/v1` holding the credentials.
    let stored = parameters_under(&ssm, &team_path).await;
    assert_eq!(
        stored.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        [format!("{record}/v1")],
        "{stored:?}"
    );
    assert_eq!(stored[0].kind, Some(ParameterType::SecureString));
    assert!(stored[0].value.contains(&first_id) && stored[0].value.contains(&first_key));

    let details = api.get(&secret_path, &token).await;
    details.expect_status(200, "GET the secret");
    assert_eq!(details.json["credentials_version"], 1, "{}", details.text);
    assert!(details.json.get("credentials").is_none(), "{}", details.text);

    // Rotation writes v2 and prunes v1: only the new credentials remain in SSM.
    let (second_id, second_key) = (canary("AKID2"), canary("SECRET2"));
    let rotated = api
        .patch(
            &secret_path,
            &token,
            &json!({ "credentials": { "access_key_id": second_id, "secret_access_key": second_key } }),
        )
        .await;
    rotated.expect_status(200, "PATCH the secret's credentials");
    let details = api.get(&secret_path, &token).await;
    assert_eq!(details.json["credentials_version"], 2, "{}", details.text);
    let stored = parameters_under(&ssm, &team_path).await;
    assert_eq!(
        stored.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        [format!("{record}/v2")],
        "{stored:?}"
    );
    assert_eq!(stored[0].kind, Some(ParameterType::SecureString));
    assert!(stored[0].value.contains(&second_id) && stored[0].value.contains(&second_key));
    assert!(!stored[0].value.contains(&first_key));

    // Verify reads the credentials back from SSM.
    let verified = api
        .call(Method::POST, &format!("{secret_path}/verify"), Some(&token), None)
        .await;
    verified.expect_status(200, "POST verify");
    assert_eq!(verified.json["verified"], true, "{}", verified.text);

    // The database never held them: no blob row, no byte of any canary.
    assert_eq!(credential_blob_rows(&data_dir), 0);
    let bytes = database_bytes(&data_dir);
    for value in [&first_id, &first_key, &second_id, &second_key] {
        assert!(!holds(&bytes, value), "{value} is in the SQLite files");
    }

    api.delete(&secret_path, &token)
        .await
        .expect_status(204, "DELETE the secret");
    api.get(&secret_path, &token)
        .await
        .expect_status(404, "GET the deleted secret");
    let stored = parameters_under(&ssm, &team_path).await;
    assert!(stored.is_empty(), "parameters left after the delete: {stored:?}");

    let output = server.terminate();
    let bytes = database_bytes(&data_dir);
    for value in [&first_id, &first_key, &second_id, &second_key] {
        assert!(!holds(&bytes, value), "{value} is in the SQLite files");
        assert!(output.iter().all(|l| !l.contains(value.as_str())), "{value} was logged");
        assert!(
            api.seen().iter().all(|answer| !answer.contains(value.as_str())),
            "{value} was in an answer"
        );
    }
    assert_eq!(credential_blob_rows(&data_dir), 0);
}

/// The names of every parameter under `path`.
async fn parameter_names(client: &aws_sdk_ssm::Client, path: &str) -> Vec<String> {
    parameters_under(client, path)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// With the server on `aws-ssm`, a secret group's values are SecureString parameters, one
/// per version (8 KiB fits), and never in the database file; a value over 8 KiB is refused
/// at its field with nothing written: at create no group and no parameter, at update (the
/// values before it in the request already written) no new version and no parameter left.
#[tokio::test]
async fn a_groups_values_are_one_ssm_parameter_per_version_and_an_oversized_one_writes_nothing() {
    let Some(moto) =
        moto_url("ssm::a_groups_values_are_one_ssm_parameter_per_version_and_an_oversized_one_writes_nothing")
    else {
        return;
    };
    let (_dir, data_dir, prefix, ssm) = moto_place(&moto, "groups").await;
    let server = SsmServer::start(&data_dir, &moto, &prefix);
    let (api, token) = (server.api.clone(), server.token.clone());
    let team = create_team(&api, &token, &format!("ssm-groups-{}", unique())).await;
    let base = format!("{prefix}/default/{team}/group-secret");

    let integrations = api.get("/api/svc/v1/integrations", &token).await;
    integrations.expect_status(200, "GET the integrations");
    assert_eq!(
        integrations.json["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        integrations.text
    );
    assert_eq!(integrations.json["data"][0]["id"], "aws-ssm", "{}", integrations.text);
    assert_eq!(integrations.json["data"][0]["type"], "aws-ssm", "{}", integrations.text);

    // Three keys at version 1 (one of exactly 8 KiB), then a second version of FIRST.
    let (first, second, steady) = (canary("GROUPFIRST"), canary("GROUPSECOND"), canary("GROUPSTEADY"));
    let mut largest = canary("GROUPLARGEST");
    largest.push_str(&"L".repeat(8 * 1024 - largest.len()));
    let name = format!("ssm-group-{}", unique());
    let group = create_group(
        &api,
        &token,
        &group_body(
            &name,
            "aws-ssm",
            Some(&team),
            &[("FIRST", &first), ("STEADY", &steady), ("LARGEST", &largest)],
        ),
    )
    .await;
    assert_eq!(group["integrationId"], "aws-ssm", "{group}");
    let group_path = format!("{GROUPS}/{}", group["id"].as_str().expect("a group id"));
    let (first_id, steady_id, largest_id) = (
        key_id(&group, "FIRST"),
        key_id(&group, "STEADY"),
        key_id(&group, "LARGEST"),
    );
    api.put(
        &group_path,
        &token,
        &json!({ "secrets": group_secrets(&[("FIRST", Some(&second)), ("STEADY", None), ("LARGEST", None)]) }),
    )
    .await
    .expect_status(200, "PUT a second version of FIRST");
    assert_parameters(
        &ssm,
        &base,
        vec![
            (format!("{base}/{first_id}/v1"), first.as_str()),
            (format!("{base}/{first_id}/v2"), second.as_str()),
            (format!("{base}/{steady_id}/v1"), steady.as_str()),
            (format!("{base}/{largest_id}/v1"), largest.as_str()),
        ],
    )
    .await;
    for (version, value) in [(Some(1), &first), (Some(2), &second), (None, &second)] {
        assert!(
            read_value(&api, &token, &first_id, version).await.0 == *value,
            "FIRST {version:?}"
        );
    }
    assert!(
        read_value(&api, &token, &largest_id, None).await.0 == largest,
        "LARGEST"
    );
    let written = parameter_names(&ssm, &prefix).await;

    // 8 KiB + 1 at create, after a value that fits: 422 at its field, no group, no parameter.
    let small = canary("GROUPSMALL");
    let refused = format!("ssm-refused-{}", unique());
    api.post(
        GROUPS,
        &token,
        &group_body(
            &refused,
            "aws-ssm",
            Some(&team),
            &[("SMALL", &small), ("BIG", &"B".repeat(8 * 1024 + 1))],
        ),
    )
    .await
    .expect_field_error(&["body", "secrets", "1", "value"], None, "POST a value over 8 KiB");
    let search = api.get(&format!("{GROUPS}?search={refused}"), &token).await;
    search.expect_status(200, "GET groups by name");
    assert_eq!(
        search.json["data"],
        json!([]),
        "a refused group exists: {}",
        search.text
    );
    assert_eq!(
        parameter_names(&ssm, &prefix).await,
        written,
        "a refused create left parameters"
    );

    // An update whose second value is over 8 KiB, after a changed and a new key: 422 at
    // that value, the group as it was, no parameter left behind.
    let (next, third) = (canary("GROUPNEXT"), canary("GROUPTHIRD"));
    let too_big = "S".repeat(8 * 1024 + 1);
    api.put(
        &group_path,
        &token,
        &json!({ "secrets": group_secrets(&[
            ("FIRST", Some(&next)),
            ("STEADY", Some(&too_big)),
            ("LARGEST", None),
            ("THIRD", Some(&third)),
        ]) }),
    )
    .await
    .expect_field_error(&["body", "secrets", "1", "value"], None, "PUT a value over 8 KiB");
    let unchanged = api.get(&group_path, &token).await;
    unchanged.expect_status(200, "GET the group after the refused update");
    let keys = unchanged.json["data"]["associatedSecrets"]
        .as_array()
        .expect("keys")
        .clone();
    let shape: Vec<(String, usize)> = keys
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap_or_default().to_owned(),
                k["secretVersions"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("FIRST".to_owned(), 2),
            ("LARGEST".to_owned(), 1),
            ("STEADY".to_owned(), 1)
        ],
        "{}",
        unchanged.text
    );
    assert_eq!(
        parameter_names(&ssm, &prefix).await,
        written,
        "a refused update left parameters"
    );
    assert!(
        read_value(&api, &token, &first_id, None).await.0 == second,
        "FIRST changed"
    );

    // The database never held a value.
    assert_eq!(credential_blob_rows(&data_dir), 0);
    let values = [&first, &second, &steady, &largest, &small, &next, &third];
    let bytes = database_bytes(&data_dir);
    for value in values {
        assert!(!holds(&bytes, value), "a group value is in the SQLite files");
    }

    // A key's delete takes every version's parameter with it; the group's delete, the rest.
    api.delete(&format!("{SECRETS}/{first_id}"), &token)
        .await
        .expect_status(200, "DELETE the key FIRST");
    let mut left = vec![format!("{base}/{largest_id}/v1"), format!("{base}/{steady_id}/v1")];
    left.sort();
    assert_eq!(
        parameter_names(&ssm, &base).await,
        left,
        "a deleted key's parameters are left"
    );
    api.delete(&group_path, &token)
        .await
        .expect_status(200, "DELETE the group");
    assert_eq!(parameter_names(&ssm, &base).await, Vec::<String>::new());
    let output = server.terminate();
    let bytes = database_bytes(&data_dir);
    for value in values {
        assert!(!holds(&bytes, value), "a group value is in the SQLite files");
        assert!(
            output.iter().all(|l| !l.contains(value.as_str())),
            "a group value was logged"
        );
    }
}

/// A loopback SSM endpoint that answers every request with `ThrottlingException`, and
/// counts them.
fn always_throttling_ssm() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let counted = Arc::clone(&counted);
            thread::spawn(move || throttle_connection(stream, &counted));
        }
    });
    (url, requests)
}

/// Answers each request of one connection with a throttling error until it closes.
fn throttle_connection(mut stream: TcpStream, requests: &AtomicUsize) {
    let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        requests.fetch_add(1, Ordering::SeqCst);
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\n\
             x-amzn-requestid: throttled\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_store_that_is_down_answers_503_with_retry_after_and_creates_nothing() {
    let (throttling, requests) = always_throttling_ssm();
    // Nothing listens on a port that was free a moment ago (not the fake's: it is bound).
    let closed = format!("http://127.0.0.1:{}", free_port());
    for (endpoint, retry_after) in [(closed.as_str(), "1"), (throttling.as_str(), "2")] {
        let dir = TempDir::new().expect("a temporary directory");
        let server = SsmServer::start(&dir.path().join("data"), endpoint, "/custodian");
        let (api, token) = (server.api.clone(), server.token.clone());
        let team = create_team(&api, &token, &format!("down-{}", unique())).await;
        let key = canary("DOWN");
        let refused = api
            .post(
                &format!("/v1/teams/{team}/secrets"),
                &token,
                &s3_secret_body(&format!("export-{}", unique()), &canary("AKID"), &key),
            )
            .await;
        refused.expect_status(503, &format!("POST a secret while SSM at {endpoint} is down"));
        assert_eq!(refused.json["code"], "service_unavailable", "{}", refused.text);
        assert_eq!(
            refused.headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some(retry_after),
            "{:?}",
            refused.headers
        );
        assert!(!refused.text.contains(&key), "{}", refused.text);
        let list = api.get(&format!("/v1/teams/{team}/secrets"), &token).await;
        list.expect_status(200, "GET the team's secrets");
        assert_eq!(list.json["items"], json!([]), "{}", list.text);
        let output = server.terminate();
        assert!(output.iter().all(|l| !l.contains(&key)), "the credentials were logged");
    }
    // The throttling was retried before the request was answered.
    let attempts = requests.load(Ordering::SeqCst);
    assert!(attempts >= 2, "{attempts} request(s) reached the throttling endpoint");
}

#[test]
fn config_print_shows_the_aws_ssm_settings_from_a_file_under_the_environment() {
    let dir = TempDir::new().expect("a temporary directory");
    let file = dir.path().join("custodian.toml");
    std::fs::write(
        &file,
        "credential_store = \"aws-ssm\"\n[ssm]\nregion = \"eu-west-1\"\nprefix = \"/acme\"\n",
    )
    .expect("write the file");
    let output = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .env_clear()
        .env("CUSTODIAN_SSM__REGION", "eu-central-1")
        .env("CUSTODIAN_SSM__KMS_KEY_ID", "alias/custodian")
        .env(
            "CUSTODIAN_SSM__ENDPOINT_URL",
            "https://vpce-1.ssm.eu-central-1.vpce.amazonaws.com",
        )
        .args(["--config", file.to_str().expect("a UTF-8 path"), "config", "print"])
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let printed: toml::Table = String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .parse()
        .expect("config print writes TOML");
    assert_eq!(printed["credential_store"].as_str(), Some("aws-ssm"));
    let ssm = printed["ssm"].as_table().expect("an [ssm] table");
    assert_eq!(
        ssm["region"].as_str(),
        Some("eu-central-1"),
        "the variable beats the file"
    );
    assert_eq!(ssm["prefix"].as_str(), Some("/acme"));
    assert_eq!(ssm["kms_key_id"].as_str(), Some("alias/custodian"));
    assert_eq!(
        ssm["endpoint_url"].as_str(),
        Some("https://vpce-1.ssm.eu-central-1.vpce.amazonaws.com")
    );

    // A key that is not an SSM setting stops the binary naming it.
    let refused = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .env_clear()
        .env("CUSTODIAN_SSM__BUCKET", "x")
        .args(["config", "print"])
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("bucket"));
}
