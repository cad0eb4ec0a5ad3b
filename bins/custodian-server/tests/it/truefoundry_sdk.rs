//! TrueFoundry's own Python SDK (`truefoundry-sdk`, unmodified) against the built binary's
//! `/api/svc/v1`: `truefoundry_sdk.py` beside this file creates, lists, pages, searches,
//! reads, updates and deletes secret groups and secrets, applies a manifest (dry run,
//! create, update by name), and issues, lists, uses and revokes a personal access token,
//! as an admin, an operator, a viewer and a member of another team, checking every answer
//! through the SDK's own models and errors.
//!
//! Every secret value the script stores starts with a canary; afterwards no line of the
//! server's output, logged at `trace`, holds it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::{RunningServer, free_port};
use crate::support::{add_member, create_team, create_user, unique};

/// The Python, holding truefoundry-sdk, that runs the script (`cargo xtask test` sets it).
const TRUEFOUNDRY_PYTHON_ENV: &str = "CUSTODIAN_TEST_TRUEFOUNDRY_PYTHON";
/// The script: reads its config from stdin, prints a line per step, exits 0 when all pass.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/truefoundry_sdk.py");
/// How long the script may take, wall-clock, before it is killed.
const RUN_WAIT: Duration = Duration::from_secs(300);
/// The line the script ends with when every step passed.
const ALL_PASSED: &str = "all steps passed";

/// The Python with the SDK, or `None` after a loud skip line; under CI an unset variable
/// fails the test.
fn python(test: &str) -> Option<String> {
    crate::support::program_from_env(
        TRUEFOUNDRY_PYTHON_ENV,
        "truefoundry-sdk",
        test,
        "the test that drives /api/svc/v1 with TrueFoundry's SDK",
        "`pip install truefoundry-sdk==0.6.0` into a Python",
    )
}

/// Runs the script with `python`, `config` on its stdin, its output in a file of `dir`:
/// whether it exited 0, and what it printed (or why it did not finish).
fn run_script(python: &str, dir: &Path, config: &Value) -> (bool, String) {
    let output = dir.join("truefoundry-sdk.log");
    let log = std::fs::File::create(&output).expect("a file for the script's output");
    let mut child = Command::new(python)
        .arg(SCRIPT)
        .current_dir(dir)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("TFY_API_KEY")
        .env_remove("TFY_HOST")
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("share the log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
    // Written and closed: the script reads stdin to its end.
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(config.to_string().as_bytes())
        .expect("send the config");
    let deadline = Instant::now() + RUN_WAIT;
    let (succeeded, status) = loop {
        if let Some(status) = child.try_wait().expect("poll the script") {
            break (status.success(), status.to_string());
        }
        if Instant::now() > deadline {
            child.kill().expect("kill the script");
            child.wait().expect("the script exits");
            break (false, format!("killed after {RUN_WAIT:?}"));
        }
        thread::sleep(Duration::from_millis(100));
    };
    let text = String::from_utf8_lossy(&std::fs::read(&output).unwrap_or_default()).into_owned();
    (succeeded, format!("{python} {SCRIPT}: {status}\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn truefoundrys_sdk_manages_secret_groups_secrets_and_tokens_without_a_value_reaching_the_log() {
    let Some(python) =
        python("truefoundrys_sdk_manages_secret_groups_secrets_and_tokens_without_a_value_reaching_the_log")
    else {
        return;
    };
    let data = TempDir::new().expect("a temporary directory");
    let server = RunningServer::start(crate::process::custodian(data.path(), "trace"), free_port(), "Try it:");
    let bootstrap = server.tokens().into_iter().next().expect("the first admin token");
    let api = &server.api;

    // One team with an admin, an operator and a viewer; another team with its own member.
    let team = create_team(api, &bootstrap, &format!("sdk-{}", unique())).await;
    let mut members = Vec::new();
    for role in ["admin", "operator", "viewer"] {
        let person = create_user(api, &bootstrap, &format!("sdk-{role}")).await;
        add_member(api, &bootstrap, &team, &person.id, role).await;
        members.push(person);
    }
    let elsewhere = create_team(api, &bootstrap, &format!("sdk-elsewhere-{}", unique())).await;
    let outsider = create_user(api, &bootstrap, "sdk-outsider").await;
    add_member(api, &bootstrap, &elsewhere, &outsider.id, "admin").await;
    let [admin, operator, viewer] = <[_; 3]>::try_from(members).expect("three members");

    let integrations = api.get("/api/svc/v1/integrations", &admin.token).await;
    integrations.expect_status(200, "GET /api/svc/v1/integrations");
    let integration = |key: &str| {
        integrations.json["data"][0][key]
            .as_str()
            .unwrap_or_else(|| panic!("no data[0].{key} in {}", integrations.text))
            .to_owned()
    };

    let canary = crate::canary::canary("SDK");
    let config = json!({
        "base_url": api.base,
        "admin_token": admin.token,
        "admin_user_id": admin.id,
        "operator_token": operator.token,
        "viewer_token": viewer.token,
        "other_team_token": outsider.token,
        "integration_id": integration("id"),
        "integration_fqn": integration("fqn"),
        "canary": canary,
    });
    let work = TempDir::new().expect("a temporary directory");
    let dir = work.path().to_owned();
    let (succeeded, output) = tokio::task::spawn_blocking(move || run_script(&python, &dir, &config))
        .await
        .expect("the script finishes");
    // Stopped before anything is checked, so that a failing check leaves no server behind.
    let lines = server.terminate();

    let server_errors: Vec<&String> = lines.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(
        succeeded && output.contains(ALL_PASSED),
        "{output}\nthe server's errors: {server_errors:#?}"
    );
    let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(&canary)).collect();
    assert!(
        leaked.is_empty(),
        "{} line(s) of the server's output hold a secret value: {leaked:#?}",
        leaked.len()
    );
}
