//! `cargo xtask test`: prepare the backends the tests need, then run every test.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use custodian_test_db::{DATABASE_URL_ENV, POSTGRES_MODE_ENV};

use crate::chromium::{self, CHROMIUM_ENV};
use crate::doppler_cli;
use crate::infisical_sdk;
use crate::moto::{self, MOTO_URL_ENV, MotoServer};
use crate::postgres::{self, AdminUrl};
use crate::schemathesis;
use crate::truefoundry;
use crate::venv::target_dir;
use crate::{cargo, is_ci, workspace_root};

/// The `cargo test` runs, in order; each gets the extra arguments.
const CARGO_TEST_RUNS: [&[&str]; 2] = [
    &["test", "--workspace", "--all-targets", "--no-fail-fast"],
    &["test", "--workspace", "--doc", "--no-fail-fast"],
];

pub(crate) fn run(extra_args: &[String]) -> Result<ExitCode> {
    let root = workspace_root();
    let ci = is_ci();
    let mut env = ChildEnv::default();

    // Step 1: PostgreSQL — reachable (exported to the tests), or skipped loudly (not in CI).
    let admin = AdminUrl::from_env();
    let postgres = prepare_postgres(&admin, ci, &root)?;
    match &postgres {
        Postgres::Run => {
            env.set(DATABASE_URL_ENV, &admin.url);
            env.remove(POSTGRES_MODE_ENV);
        }
        Postgres::Skipped { banner } => {
            eprintln!("{banner}");
            env.set(POSTGRES_MODE_ENV, "skip");
        }
    }

    // Step 2: moto_server for the AWS SSM tests, from a venv under the target directory.
    // The guard stops it when this function returns, whether the tests passed, failed or
    // an error ended the run early.
    let moto = prepare_moto(ci, &root)?;
    match &moto {
        Moto::Run { url, .. } => env.set(MOTO_URL_ENV, url),
        Moto::Given { url } => env.set(MOTO_URL_ENV, url),
        Moto::Skipped { banner } => {
            eprintln!("{banner}");
            env.remove(MOTO_URL_ENV);
        }
    }

    // Step 3: Chromium for the browser tests, installed when missing and possible.
    let browser = prepare_chromium(ci)?;
    match &browser {
        Browser::Run { path, .. } | Browser::Given { path } => env.set(CHROMIUM_ENV, path),
        Browser::Skipped { banner } => {
            eprintln!("{banner}");
            env.remove(CHROMIUM_ENV);
        }
    }

    // Steps 4 to 7: the programs some tests drive, each from the variable naming it or set
    // up under the target directory: schemathesis for the check of the OpenAPI document,
    // TrueFoundry's SDK (`/api/svc/v1`), Doppler's CLI and Infisical's Node SDK (against
    // the fakes).
    let programs = [
        (&schemathesis::TOOL, schemathesis::prepare(ci, &root)?),
        (&truefoundry::TOOL, truefoundry::prepare(ci, &root)?),
        (&doppler_cli::TOOL, doppler_cli::prepare(ci, &root)?),
        (&infisical_sdk::TOOL, infisical_sdk::prepare(ci, &root)?),
    ];
    for (tool, program) in &programs {
        match program.path() {
            Some(path) => env.set(tool.env, path),
            None => env.remove(tool.env),
        }
        if let Some(banner) = program.banner() {
            eprintln!("{banner}");
        }
    }

    // Step 8: say what runs.
    eprintln!("xtask: backends for this run:");
    match &postgres {
        Postgres::Run => eprintln!("  postgres: {} (reachable)", postgres::redact(&admin.url)),
        Postgres::Skipped { .. } => eprintln!(
            "  postgres: {} (NOT REACHABLE: PostgreSQL tests SKIPPED)",
            postgres::redact(&admin.url)
        ),
    }
    eprintln!("  sqlite: bundled");
    match &moto {
        Moto::Run { url, version, .. } => eprintln!("  moto (AWS SSM): {url} (moto {version}, started for this run)"),
        Moto::Given { url } => eprintln!("  moto (AWS SSM): {url} (from {MOTO_URL_ENV})"),
        Moto::Skipped { .. } => eprintln!("  moto (AWS SSM): NOT SET UP: AWS SSM tests SKIPPED"),
    }
    match &browser {
        Browser::Run { path, version } => eprintln!("  chromium (browser tests): {path} ({version})"),
        Browser::Given { path } => eprintln!("  chromium (browser tests): {path} (from {CHROMIUM_ENV})"),
        Browser::Skipped { .. } => eprintln!("  chromium (browser tests): NOT SET UP: browser tests SKIPPED"),
    }
    for (tool, program) in &programs {
        eprintln!("{}", program.summary(tool));
    }

    // Step 9: the tests.
    let mut code = ExitCode::SUCCESS;
    for args in CARGO_TEST_RUNS {
        let shown = format!(
            "cargo {}",
            args.iter()
                .copied()
                .chain(extra_args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        );
        eprintln!("xtask: running `{shown}`");
        let mut command = cargo();
        command.args(args).args(extra_args).current_dir(&root);
        env.apply(&mut command);
        let status = command.status().with_context(|| format!("cannot run `{shown}`"))?;
        if !status.success() {
            eprintln!("xtask: `{shown}` failed ({status})");
            code = ExitCode::from(failure_code(status.code()));
            break;
        }
    }

    if let Postgres::Skipped { banner } = &postgres {
        eprintln!("{banner}");
    }
    match moto {
        Moto::Run { server, .. } => server.stop(),
        Moto::Skipped { banner } => eprintln!("{banner}"),
        Moto::Given { .. } => {}
    }
    if let Browser::Skipped { banner } = &browser {
        eprintln!("{banner}");
    }
    for (_, program) in &programs {
        if let Some(banner) = program.banner() {
            eprintln!("{banner}");
        }
    }
    Ok(code)
}

/// Whether the browser tests run, and with which Chromium.
#[derive(Debug)]
enum Browser {
    /// Found on `PATH`, or installed for this run.
    Run {
        path: String,
        version: String,
    },
    /// `CUSTODIAN_TEST_CHROMIUM` was already set: that binary is used as it is.
    Given {
        path: String,
    },
    Skipped {
        banner: String,
    },
}

fn prepare_chromium(ci: bool) -> Result<Browser> {
    if let Some(path) = chromium::given_path(std::env::var(CHROMIUM_ENV).ok().as_deref()) {
        return Ok(Browser::Given { path });
    }
    match chromium::ensure() {
        Ok(found) => Ok(Browser::Run {
            path: found.path.display().to_string(),
            version: if found.installed {
                format!("{}, installed for this run", found.version)
            } else {
                found.version
            },
        }),
        Err(e) => chromium_not_set_up(ci, &e),
    }
}

/// Chromium could not be set up: an error under CI, a loud skip elsewhere.
fn chromium_not_set_up(ci: bool, e: &anyhow::Error) -> Result<Browser> {
    if ci {
        bail!(
            "Chromium could not be set up, and CI (CI=true) runs the browser tests; they are never skipped there.\n\
             {e:#}\n\
             fix: run as root so that `apt-get install -y chromium` can install it, or install Chromium and \
             set {CHROMIUM_ENV} to its binary."
        );
    }
    Ok(Browser::Skipped {
        banner: chromium::skip_banner(&format!("{e:#}")),
    })
}

/// Whether the AWS SSM tests run against moto.
#[derive(Debug)]
enum Moto {
    /// A moto_server started for this run (stopped when dropped).
    Run {
        url: String,
        version: String,
        server: MotoServer,
    },
    /// `CUSTODIAN_TEST_MOTO_URL` was already set: that server is used as it is.
    Given {
        url: String,
    },
    Skipped {
        banner: String,
    },
}

fn prepare_moto(ci: bool, root: &Path) -> Result<Moto> {
    if let Some(url) = given_moto_url(std::env::var(MOTO_URL_ENV).ok().as_deref()) {
        return Ok(Moto::Given { url });
    }
    let target = target_dir(root, std::env::var_os("CARGO_TARGET_DIR"));
    let venv = moto::venv(&target);
    let started = moto::ensure(&venv).and_then(|version| {
        let server = MotoServer::start(&venv, &target.join("moto-server.log"))?;
        Ok((version, server))
    });
    match started {
        Ok((version, server)) => Ok(Moto::Run {
            url: server.url.clone(),
            version,
            server,
        }),
        Err(e) => moto_not_set_up(ci, &e),
    }
}

/// A moto URL given in the environment (blank counts as unset).
fn given_moto_url(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|url| !url.is_empty()).map(str::to_owned)
}

/// moto could not be set up: an error under CI, a loud skip elsewhere.
fn moto_not_set_up(ci: bool, e: &anyhow::Error) -> Result<Moto> {
    if ci {
        bail!(
            "moto could not be set up, and CI (CI=true) runs the AWS SSM tests against it; they are never skipped there.\n\
             {e:#}\n\
             fix: make `python3 -m venv` work (Debian: apt-get install python3-venv) and PyPI reachable, or \
             start `moto_server -p PORT` and set {MOTO_URL_ENV}=http://127.0.0.1:PORT."
        );
    }
    Ok(Moto::Skipped {
        banner: moto::skip_banner(&format!("{e:#}")),
    })
}

/// Whether the PostgreSQL tests run.
#[derive(Debug)]
enum Postgres {
    Run,
    Skipped { banner: String },
}

fn prepare_postgres(admin: &AdminUrl, ci: bool, root: &Path) -> Result<Postgres> {
    let shown_url = postgres::redact(&admin.url);
    let suites = postgres_test_crates(root);

    if std::env::var(POSTGRES_MODE_ENV).is_ok_and(|mode| mode.trim().eq_ignore_ascii_case("skip")) {
        if ci {
            bail!(
                "{POSTGRES_MODE_ENV}=skip is set, but CI (CI=true) must run the PostgreSQL tests.\n\
                 fix: unset {POSTGRES_MODE_ENV}; `cargo xtask test` decides it from whether PostgreSQL is reachable."
            );
        }
        let reason = vec![format!(
            "{POSTGRES_MODE_ENV}=skip is set in the environment (unset it to run them)"
        )];
        return Ok(Postgres::Skipped {
            banner: skip_banner(&shown_url, &reason, &suites),
        });
    }

    let finding = postgres::find_or_start(&admin.url);
    if finding.reachable {
        if finding.started_here {
            eprintln!("xtask: started the local PostgreSQL cluster");
        }
        return Ok(Postgres::Run);
    }
    let mut tried = vec![format!("URL: {shown_url} ({})", admin.origin())];
    tried.extend(finding.attempts);
    if ci {
        bail!(
            "PostgreSQL is not reachable, and CI (CI=true) runs the PostgreSQL tests; they are never skipped there.\n\
             {}\n\
             fix: start PostgreSQL on this machine (`pg_ctlcluster --skip-systemctl-redirect <version> main start`, \
             as .ci/run does), or set {DATABASE_URL_ENV} to the admin URL of a server whose user may CREATE DATABASE.",
            tried
                .iter()
                .map(|line| format!("  tried: {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(Postgres::Skipped {
        banner: skip_banner(&shown_url, &tried, &suites),
    })
}

/// The crates whose tests use custodian-test-db (its own included), from their manifests.
fn postgres_test_crates(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("crates")) else {
        return Vec::new();
    };
    let mut crates: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml")).ok()?;
            let name = entry.file_name().into_string().ok()?;
            (name == "custodian-test-db" || manifest.contains("custodian-test-db")).then_some(name)
        })
        .collect();
    crates.sort();
    crates
}

/// The banner printed before and after a run whose PostgreSQL tests are skipped.
fn skip_banner(url: &str, reasons: &[String], suites: &[String]) -> String {
    let rule = "!".repeat(88);
    let suites = if suites.is_empty() {
        "(no crate depends on custodian-test-db yet)".to_owned()
    } else {
        suites.join(", ")
    };
    let mut lines = vec![
        rule.clone(),
        "!!  POSTGRESQL TESTS ARE SKIPPED: this run does NOT test the PostgreSQL backend.".to_owned(),
        format!("!!  PostgreSQL at {url} is not used:"),
    ];
    lines.extend(reasons.iter().map(|reason| format!("!!    - {reason}")));
    lines.extend([
        "!!  Skipped: every test that uses custodian-test-db, i.e. the PostgreSQL contract suites".to_owned(),
        format!("!!    and PostgreSQL tests of: {suites}."),
        "!!    Each prints `SKIPPED (postgres): <test>` and passes without testing anything.".to_owned(),
        "!!  To run them: start PostgreSQL (`pg_ctlcluster --skip-systemctl-redirect <version> main start`)".to_owned(),
        format!("!!    or set {DATABASE_URL_ENV} to an admin URL (a user that may CREATE DATABASE),"),
        "!!    then run `cargo xtask test` again. In CI (CI=true) this is an error, not a skip.".to_owned(),
        rule,
    ]);
    lines.join("\n")
}

/// The exit code to pass on for a failed child (101 for failed tests, 1 if unknown).
fn failure_code(code: Option<i32>) -> u8 {
    code.and_then(|code| u8::try_from(code).ok())
        .filter(|&code| code != 0)
        .unwrap_or(1)
}

/// Environment changes for the `cargo test` children.
#[derive(Debug, Default)]
struct ChildEnv {
    changes: Vec<(String, Option<String>)>,
}

impl ChildEnv {
    fn set(&mut self, key: &str, value: &str) {
        self.changes.push((key.to_owned(), Some(value.to_owned())));
    }

    fn remove(&mut self, key: &str) {
        self.changes.push((key.to_owned(), None));
    }

    fn apply(&self, command: &mut Command) {
        for (key, value) in &self.changes {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_says_what_is_skipped_and_how_to_enable_it() {
        let banner = skip_banner(
            "postgres://postgres@127.0.0.1:5432/postgres",
            &["connect + SELECT 1: connection refused".to_owned()],
            &["custodian-store-sql".to_owned(), "custodian-testkit".to_owned()],
        );
        assert!(banner.contains("POSTGRESQL TESTS ARE SKIPPED"));
        assert!(banner.contains("postgres://postgres@127.0.0.1:5432/postgres"));
        assert!(banner.contains("connection refused"));
        assert!(banner.contains("custodian-store-sql, custodian-testkit"));
        assert!(banner.contains("contract suites"));
        assert!(banner.contains(DATABASE_URL_ENV));
        assert!(banner.contains("pg_ctlcluster"));
        assert!(banner.lines().count() >= 8, "loud: several lines");
    }

    #[test]
    fn the_crates_using_test_db_are_found() {
        let crates = postgres_test_crates(&workspace_root());
        assert!(crates.contains(&"custodian-test-db".to_owned()), "{crates:?}");
        assert!(!crates.contains(&"custodian-domain".to_owned()), "{crates:?}");
    }

    #[test]
    fn failure_codes_are_passed_on() {
        assert_eq!(failure_code(Some(101)), 101);
        assert_eq!(failure_code(Some(2)), 2);
        assert_eq!(failure_code(None), 1, "killed by a signal");
        assert_eq!(failure_code(Some(300)), 1);
        assert_eq!(failure_code(Some(0)), 1, "only called for failures");
    }

    #[test]
    fn a_given_moto_url_is_used_unless_blank() {
        assert_eq!(
            given_moto_url(Some(" http://127.0.0.1:5000 ")).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(given_moto_url(Some("  ")), None);
        assert_eq!(given_moto_url(None), None);
    }

    #[test]
    fn moto_failing_to_set_up_fails_ci_and_is_skipped_loudly_elsewhere() {
        let cause = anyhow::anyhow!("`python3 -m venv` failed: ensurepip is not available");
        let error = moto_not_set_up(true, &cause).unwrap_err().to_string();
        assert!(error.contains("CI=true"), "{error}");
        assert!(error.contains("ensurepip is not available"), "{error}");
        assert!(error.contains(MOTO_URL_ENV), "{error}");
        match moto_not_set_up(false, &cause).unwrap() {
            Moto::Skipped { banner } => {
                assert!(banner.contains("AWS SSM TESTS ARE SKIPPED"), "{banner}");
                assert!(banner.contains("ensurepip is not available"), "{banner}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn chromium_failing_to_set_up_fails_ci_and_is_skipped_loudly_elsewhere() {
        let cause = anyhow::anyhow!("Chromium is not on PATH, and installing it needs root (this is uid 1000)");
        let error = chromium_not_set_up(true, &cause).unwrap_err().to_string();
        assert!(error.contains("CI=true"), "{error}");
        assert!(error.contains("uid 1000"), "{error}");
        assert!(error.contains(CHROMIUM_ENV), "{error}");
        match chromium_not_set_up(false, &cause).unwrap() {
            Browser::Skipped { banner } => {
                assert!(banner.contains("BROWSER TESTS ARE SKIPPED"), "{banner}");
                assert!(banner.contains("uid 1000"), "{banner}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn child_env_sets_and_removes() {
        let mut env = ChildEnv::default();
        env.set(DATABASE_URL_ENV, "postgres://x");
        env.remove(POSTGRES_MODE_ENV);
        let mut command = Command::new("true");
        env.apply(&mut command);
        let envs: Vec<_> = command.get_envs().collect();
        assert!(envs.contains(&(DATABASE_URL_ENV.as_ref(), Some("postgres://x".as_ref()))));
        assert!(envs.contains(&(POSTGRES_MODE_ENV.as_ref(), None)));
    }
}
