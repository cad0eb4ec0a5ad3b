//! Infisical's own Node SDK (`@infisical/sdk`) against the fake Infisical: what the fake
//! answers is what the official client expects of the real service.
//!
//! Needs `CUSTODIAN_TEST_INFISICAL_NODE_DIR`: a directory holding
//! `node_modules/@infisical/sdk` (`cargo xtask test` installs the pinned release under the
//! target directory and sets it). Without it the test prints a loud `SKIPPED` line and
//! passes, except under CI (`CI` set, not `0`/`false`), where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use custodian_testkit::fakes::infisical::{Endpoint, FakeInfisical};

/// The directory with `node_modules/@infisical/sdk`.
const NODE_DIR_ENV: &str = "CUSTODIAN_TEST_INFISICAL_NODE_DIR";
/// Bound on the Node run: a hang fails the test instead of stalling it.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The SDK's directory, or `None` (after a loud skip line) when it is not set outside CI.
fn node_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os(NODE_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None if is_ci(std::env::var("CI").ok().as_deref()) => {
            panic!("{NODE_DIR_ENV} is not set, and CI (CI=true) runs {test} with Infisical's Node SDK")
        }
        None => {
            eprintln!(
                "SKIPPED (infisical-sdk): {test}: {NODE_DIR_ENV} is not set; run `cargo xtask test` or set it \
                 to a directory with node_modules/@infisical/sdk"
            );
            None
        }
    }
}

/// `CI` as `cargo xtask` reads it: set, and not empty, `0` or `false`.
fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// The SDK logs in with universal auth against the fake, reads a secret by key in a
/// folder path, lists that folder and sees a missing key refused: the fake answers as the
/// official client expects.
#[tokio::test]
async fn the_node_sdk_logs_in_and_reads_from_the_fake() {
    let Some(dir) = node_dir("the_node_sdk_logs_in_and_reads_from_the_fake") else {
        return;
    };
    assert!(
        dir.join("node_modules/@infisical/sdk/package.json").is_file(),
        "{NODE_DIR_ENV}={} has no node_modules/@infisical/sdk",
        dir.display()
    );
    let fake = FakeInfisical::start();
    fake.add_identity("sdk-client-id", "sdk-client-secret");
    fake.add_secret("proj-sdk", "staging", "/aws/prod", "SECRET_KEY", "value-from-the-fake");
    fake.add_secret("proj-sdk", "staging", "/aws/prod", "OTHER_KEY", "other-value");
    fake.add_secret("proj-sdk", "staging", "/", "ROOT_KEY", "root-value");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/infisical_sdk.mjs");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&script)
        .env("INFISICAL_NODE_DIR", &dir)
        .env("SITE_URL", fake.url().as_str().trim_end_matches('/'))
        .env("CLIENT_ID", "sdk-client-id")
        .env("CLIENT_SECRET", "sdk-client-secret")
        .env("PROJECT_ID", "proj-sdk")
        .env("ENVIRONMENT", "staging")
        .env("SECRET_PATH", "/aws/prod")
        .env("SECRET_NAME", "SECRET_KEY")
        .env("MISSING_NAME", "NOT_THERE")
        .kill_on_drop(true);
    let output = tokio::time::timeout(HANG_GUARD, command.output())
        .await
        .expect("the Node SDK run hung")
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    let line = stdout.lines().last().unwrap_or_default();
    let seen: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("infisical-sdk {}: {line}", seen["sdkVersion"]);

    assert_eq!(seen["key"], "SECRET_KEY", "{seen}");
    assert_eq!(seen["value"], "value-from-the-fake", "{seen}");
    assert_eq!(seen["path"], "/aws/prod", "{seen}");
    assert_eq!(
        seen["listed"],
        serde_json::json!([["OTHER_KEY", "other-value"], ["SECRET_KEY", "value-from-the-fake"]]),
        "{seen}"
    );
    let missing = seen["missing"].as_str().unwrap_or_default();
    assert!(missing.contains("NOT_THERE") && missing.contains("not found"), "{seen}");
    assert_eq!(fake.count(Endpoint::Login), 1);
    assert_eq!(fake.count(Endpoint::GetSecret), 2);
    assert_eq!(fake.count(Endpoint::ListSecrets), 1);
}
