//! The built binary with `CUSTODIAN_MASTER_KEY`: the keyring comes from the key, no
//! `keyring.json` is written, and a restart with the same key opens what the first start
//! sealed. A start that could not open the stored values is refused (the key left out, a
//! keyring file replaced or lost, a keyring file beside the key), as are a malformed key
//! and `keys rotate`; the key itself appears in no output and in no database file.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use base64::Engine;

use custodian_crypto::Keyring;
use reqwest::Method;
use secrecy::SecretString;
use tempfile::TempDir;

use crate::process::{RunningServer, free_port, refused_start};
use crate::ssm::canary;
use crate::support::{Api, create_team, s3_secret_body};

/// 32 random bytes, and their standard base64 (what `openssl rand -base64 32` prints).
fn random_key() -> (Vec<u8>, String) {
    let mut bytes = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("random bytes");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    (bytes, encoded)
}

/// The id the keyring derived from `key` gives its key (`env-…`).
fn key_id(key: &str) -> String {
    Keyring::from_master_key(&SecretString::from(key))
        .expect("a valid master key")
        .active_key_id()
        .to_owned()
}

/// The binary over `data_dir` with a clean environment, debug logs, and the master key
/// when one is given.
fn custodian(data_dir: &Path, master_key: Option<&str>) -> Command {
    let mut command = crate::process::custodian(data_dir, "debug");
    if let Some(key) = master_key {
        command.env("CUSTODIAN_MASTER_KEY", key);
    }
    command
}

/// `serve` over `data_dir` (with the master key when given) on a free port, once stderr
/// has a line containing `ready_line`.
fn start(data_dir: &Path, master_key: Option<&str>, ready_line: &str) -> RunningServer {
    RunningServer::start(custodian(data_dir, master_key), free_port(), ready_line)
}

/// The first start's admin token.
fn token_of(server: &RunningServer) -> String {
    server
        .tokens()
        .into_iter()
        .next()
        .expect("the first start prints the admin's token")
}

/// `serve` over `data_dir` (with the master key when given), refused; what it wrote.
fn refused_serve(data_dir: &Path, master_key: Option<&str>) -> String {
    refused_start(custodian(data_dir, master_key))
}

/// A command (not `serve`) run to its end: whether it succeeded, and stdout then stderr.
fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `POST …/verify` of the secret: whether its stored credentials opened and were accepted.
async fn verified(api: &Api, token: &str, team: &str, secret: &str) -> serde_json::Value {
    let reply = api
        .call(
            Method::POST,
            &format!("/v1/teams/{team}/secrets/{secret}/verify"),
            Some(token),
            None,
        )
        .await;
    reply.expect_status(200, "verify the secret");
    reply.json["verified"].clone()
}

/// Whether any file of the data directory's SQLite database holds `needle`.
fn database_holds(data_dir: &Path, needle: &[u8]) -> bool {
    ["custodian.db", "custodian.db-wal", "custodian.db-shm"]
        .iter()
        .filter_map(|name| std::fs::read(data_dir.join(name)).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

#[tokio::test]
async fn a_master_key_keeps_the_keyring_out_of_the_data_dir_and_a_start_without_it_is_refused() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let keyring_file = data.join("keyring.json");
    let (raw_key, key) = random_key();
    let id = key_id(&key);
    assert!(id.starts_with("env-"), "{id}");
    let mut outputs: Vec<String> = Vec::new();

    // First start: the keyring is the key's; nothing is written for it.
    let first = start(&data, Some(&key), "Try it:");
    let token = token_of(&first);
    let team = create_team(&first.api, &token, "master-key").await;
    let access_key_id = canary("AKIA");
    let secret_access_key = canary("SECRET");
    let created = first
        .api
        .post(
            &format!("/v1/teams/{team}/secrets"),
            &token,
            &s3_secret_body("exports", &access_key_id, &secret_access_key),
        )
        .await;
    created.expect_status(201, "POST a managed storage secret");
    let secret = created.str("id");
    assert_eq!(verified(&first.api, &token, &team, &secret).await, true);
    let output = first.terminate();
    assert!(
        output.iter().any(|l| l.contains(&id)),
        "the log names the key id: {output:#?}"
    );
    outputs.extend(output);
    assert!(!keyring_file.exists(), "a master key writes no keyring file");

    // A restart with the same key opens what the first start sealed, and the token (hashed
    // with the pepper derived from the key) still works.
    let second = start(&data, Some(&key), "listening");
    assert_eq!(verified(&second.api, &token, &team, &secret).await, true);
    second
        .api
        .get("/v1/me", &token)
        .await
        .expect_status(200, "GET /v1/me with the first start's token");
    outputs.extend(second.terminate());

    // Without the key: refused, naming the key the values need; no keyring file is made.
    let refused = refused_serve(&data, None);
    assert!(refused.contains(&id), "{refused}");
    assert!(refused.contains("CUSTODIAN_MASTER_KEY"), "{refused}");
    assert!(
        !keyring_file.exists(),
        "a refused start leaves no keyring file: {refused}"
    );
    outputs.push(refused);

    // With the key and a keyring file beside it: refused, saying what to do.
    Keyring::generate().save(&keyring_file).unwrap();
    let refused = refused_serve(&data, Some(&key));
    assert!(refused.contains("keyring.json"), "{refused}");
    assert!(refused.contains("Remove CUSTODIAN_MASTER_KEY"), "{refused}");
    assert!(refused.contains("new database"), "{refused}");
    outputs.push(refused);
    std::fs::remove_file(&keyring_file).unwrap();

    // A malformed key: refused with the rule it breaks, never the key.
    let not_base64 = format!("{key}!");
    let refused = refused_serve(&data, Some(&not_base64));
    assert!(refused.contains("not valid base64"), "{refused}");
    assert!(!refused.contains(&not_base64), "{refused}");
    outputs.push(refused);
    let short = base64::engine::general_purpose::STANDARD.encode(&raw_key[..16]);
    let refused = refused_serve(&data, Some(&short));
    assert!(refused.contains("decodes to 16 bytes"), "{refused}");
    assert!(!refused.contains(&short), "{refused}");
    outputs.push(refused);

    // `keys rotate` with the active key alone configured says how to rotate it.
    let (ok, text) = run(custodian(&data, Some(&key)).args(["keys", "rotate"]));
    assert!(!ok, "{text}");
    assert!(text.contains("CUSTODIAN_PREVIOUS_MASTER_KEYS"), "{text}");
    assert!(!keyring_file.exists());
    outputs.push(text);

    // `config print` shows that a key is set, not the key.
    let (ok, text) = run(custodian(&data, Some(&key)).args(["config", "print"]));
    assert!(ok, "{text}");
    assert!(text.lines().any(|l| l == "master_key = \"[REDACTED]\""), "{text}");
    outputs.push(text);

    // After all of that the values still open with the key.
    let third = start(&data, Some(&key), "listening");
    assert_eq!(verified(&third.api, &token, &team, &secret).await, true);
    outputs.extend(third.terminate());

    for output in &outputs {
        assert!(!output.contains(&key), "the master key was written out: {output}");
        assert!(
            !output.contains(&secret_access_key),
            "a credential was written out: {output}"
        );
    }
    assert!(
        !database_holds(&data, key.as_bytes()),
        "the database holds the key's text"
    );
    assert!(!database_holds(&data, &raw_key), "the database holds the key's bytes");
    assert!(!database_holds(&data, secret_access_key.as_bytes()));
}

#[tokio::test]
async fn a_replaced_or_lost_keyring_file_is_refused_without_writing_a_new_one() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let keyring_file = data.join("keyring.json");

    let first = start(&data, None, "Try it:");
    let token = token_of(&first);
    let team = create_team(&first.api, &token, "keyring-file").await;
    let created = first
        .api
        .post(
            &format!("/v1/teams/{team}/secrets"),
            &token,
            &s3_secret_body("exports", &canary("AKIA"), &canary("SECRET")),
        )
        .await;
    created.expect_status(201, "POST a managed storage secret");
    let secret = created.str("id");
    first.terminate();
    let (keyring, created) = Keyring::load_or_create(&keyring_file).unwrap();
    assert!(!created, "the first start wrote the keyring file");
    let old_id = keyring.active_key_id().to_owned();

    // Another keyring file: its keys open none of the stored values.
    let replacement = Keyring::generate();
    replacement.save(&keyring_file).unwrap();
    let refused = refused_serve(&data, None);
    assert!(refused.contains(&old_id), "{refused}");
    assert!(refused.contains(replacement.active_key_id()), "{refused}");

    // No keyring file at all: refused the same way, and none is created.
    std::fs::remove_file(&keyring_file).unwrap();
    let refused = refused_serve(&data, None);
    assert!(refused.contains(&old_id), "{refused}");
    assert!(refused.contains("no keyring file"), "{refused}");
    assert!(!keyring_file.exists(), "{refused}");

    // The original file back: it starts, and the secret opens.
    keyring.save(&keyring_file).unwrap();
    let again = start(&data, None, "listening");
    assert_eq!(verified(&again.api, &token, &team, &secret).await, true);
    again.terminate();
}
