//! The OpenAPI document against the server it describes: schemathesis reads
//! `/openapi.json` from the built binary and sends every operation requests generated from
//! it (valid and invalid), and every answer must be one the document names, with the
//! content type and body schema it names.
//!
//! The data directory is thrown away after the run, so schemathesis may create users,
//! teams and tokens at will. A team, a member, a secret, a location and a virtual account
//! are made first, and their ids given to schemathesis as path parameters, so that the
//! operations on one resource reach the server's rules instead of stopping at 404.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::{RunningServer, free_port};
use crate::support::{Api, location_body, s3_secret_body};

/// The `schemathesis` program the check runs (`cargo xtask test` sets it).
const SCHEMATHESIS_ENV: &str = "CUSTODIAN_TEST_SCHEMATHESIS";
/// How long one schemathesis run may take, wall-clock, before it is killed.
const RUN_WAIT: Duration = Duration::from_secs(240);
/// The checks every answer must pass. Left out, and why:
/// - `positive_data_acceptance`: the document cannot state every rule (a Doppler token's
///   prefix, an Azure key's decoded length, unique names, `until` not before `since`), so
///   data valid by the document may be refused with a documented 422 or 409;
/// - `use_after_free`, `ensure_resource_availability`: belong to the stateful phase, which
///   needs links the document does not declare;
/// - `object_level_authorization`: needs a second caller's token for every request; the
///   authorization rules have tests of their own.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,negative_data_rejection,\
                      ignored_auth,missing_required_header,unsupported_method,allow_header_conformance";
/// Generated cases per operation and phase: enough to try each parameter's bounds, few
/// enough to keep the run short on two cores.
const MAX_EXAMPLES: &str = "10";
/// The seed, fixed so that a failure shows again on the next run.
const SEED: &str = "20261204";
/// The operation that revokes a personal access token: run apart, with a throwaway user's
/// token, so that revoking the caller's own token cannot turn the main run's answers into
/// 401s.
const REVOKE_TOKEN: &str = "delete_token";

/// The `schemathesis` program, or `None` after a loud skip line; under CI an unset variable
/// fails the test.
fn schemathesis(test: &str) -> Option<String> {
    crate::support::program_from_env(
        SCHEMATHESIS_ENV,
        "schemathesis",
        test,
        "the check of the OpenAPI document against the server",
        "`pip install schemathesis`",
    )
}

/// The ids schemathesis puts in the paths, from resources made over the API.
struct Fixtures {
    parameters: Vec<(&'static str, String)>,
    /// A second user's token and that token's id, for the revocation run.
    throwaway_token: String,
    throwaway_token_id: String,
}

async fn fixtures(api: &Api, token: &str) -> Fixtures {
    let post = |path: String, body: Value| async move {
        let reply = api.post(&path, token, &body).await;
        reply.expect_status(201, &format!("POST {path}"));
        reply
    };
    let team = post("/v1/teams".into(), json!({"name": "schema-check"}))
        .await
        .str("id");
    let user = post("/v1/users".into(), json!({"email": "member@example.com"})).await;
    let (user_id, throwaway_token) = (user.str("id"), user.str("token"));
    post(
        format!("/v1/teams/{team}/members"),
        json!({"user_id": user_id, "role": "viewer"}),
    )
    .await;
    let secret = post(
        format!("/v1/teams/{team}/secrets"),
        s3_secret_body("schema-check", "AKIASCHEMACHECK", "schema/check/secret"),
    )
    .await
    .str("id");
    let location = post(
        format!("/v1/teams/{team}/locations"),
        location_body("schema-check", &secret),
    )
    .await
    .str("id");
    let account = post(
        format!("/v1/teams/{team}/virtual-accounts"),
        json!({"name": "schema-check", "role": "viewer"}),
    )
    .await
    .str("id");
    let tokens = api.get("/api/svc/v1/personal-access-tokens", &throwaway_token).await;
    tokens.expect_status(200, "GET /api/svc/v1/personal-access-tokens");
    let throwaway_token_id = tokens.json["data"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {}", tokens.text))
        .to_owned();
    Fixtures {
        // Vault connections keep generated ids: verifying or rotating a real one would
        // reach the vault provider over the internet.
        parameters: vec![
            ("team_id", team),
            ("user_id", user_id),
            ("secret_id", secret),
            ("location_id", location),
            ("id", account),
        ],
        throwaway_token,
        throwaway_token_id,
    }
}

/// A `schemathesis.toml` setting each path parameter to the given value.
fn config(dir: &Path, name: &str, parameters: &[(&str, String)]) -> String {
    let mut text = String::from("[parameters]\n");
    for (key, value) in parameters {
        text.push_str(&format!("\"path.{key}\" = \"{value}\"\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the schemathesis config");
    path.display().to_string()
}

/// One `schemathesis run` of the server's document with `token`, in `dir` (where it may
/// write its files); its exit status and output, or why it did not finish.
fn run(program: &str, dir: &Path, config: &str, document: &str, token: &str, filter: &[&str]) -> (bool, String) {
    let output = dir.join(format!("run-{}.log", crate::support::unique()));
    let log = std::fs::File::create(&output).expect("a file for schemathesis's output");
    let mut child = Command::new(program)
        .arg("--config-file")
        .arg(config)
        .args(["run", document, "--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none", "--no-color", "--workers", "1"])
        .args(["--suppress-health-check", "all"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .args(filter)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("share the log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let deadline = Instant::now() + RUN_WAIT;
    let (succeeded, status) = loop {
        if let Some(status) = child.try_wait().expect("poll schemathesis") {
            break (status.success(), status.to_string());
        }
        if Instant::now() > deadline {
            child.kill().expect("kill schemathesis");
            child.wait().expect("schemathesis exits");
            break (false, format!("killed after {RUN_WAIT:?}"));
        }
        thread::sleep(Duration::from_millis(100));
    };
    let text = String::from_utf8_lossy(&std::fs::read(&output).unwrap_or_default()).into_owned();
    (succeeded, format!("schemathesis {filter:?}: {status}\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_of_the_server_is_one_its_openapi_document_names() {
    let Some(program) = schemathesis("every_answer_of_the_server_is_one_its_openapi_document_names") else {
        return;
    };
    let started = Instant::now();
    let data = TempDir::new().expect("a temporary directory");
    let port = free_port();
    let server = RunningServer::start(crate::process::custodian(data.path(), "warn"), port, "Try it:");
    let admin = server.tokens().into_iter().next().expect("the first admin token");
    let doc = server.api.call(Method::GET, "/openapi.json", None, None).await;
    doc.expect_status(200, "GET /openapi.json");
    let fixtures = fixtures(&server.api, &admin).await;

    let work = TempDir::new().expect("a temporary directory");
    let document = format!("{}/openapi.json", server.api.base);
    let main_config = config(work.path(), "main.toml", &fixtures.parameters);
    let revoke_config = config(
        work.path(),
        "revoke.toml",
        &[("id", fixtures.throwaway_token_id.clone())],
    );
    let (program, dir) = (program.clone(), work.path().to_owned());
    let (main, revoke) = tokio::task::spawn_blocking(move || {
        let main = run(
            &program,
            &dir,
            &main_config,
            &document,
            &admin,
            &["--exclude-operation-id", REVOKE_TOKEN],
        );
        let revoke = run(
            &program,
            &dir,
            &revoke_config,
            &document,
            &fixtures.throwaway_token,
            &["--include-operation-id", REVOKE_TOKEN],
        );
        (main, revoke)
    })
    .await
    .expect("the schemathesis runs finish");
    // Stopped before anything is checked, so that a failing check leaves no server behind.
    let lines = server.terminate();

    let server_errors: Vec<&String> = lines.iter().filter(|l| l.contains("ERROR")).collect();
    for (succeeded, output) in [main, revoke] {
        assert!(
            succeeded,
            "{output}\nthe server's errors: {server_errors:#?}\n\
             (run `cargo xtask test` again with the same seed to see the same cases)"
        );
    }
    eprintln!("schemathesis: both runs passed in {:?}", started.elapsed());
}
