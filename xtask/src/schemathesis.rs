//! schemathesis for the check of the OpenAPI document against the server: a Python virtual
//! environment under the target directory with one pinned schemathesis release (made once,
//! reused while it holds that release).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::tool::{self, Program, Tool};
use crate::venv::{Contents, Venv};

/// The `schemathesis` program the document check runs (the server's
/// `tests/it/schemathesis.rs` names it too).
pub(crate) const SCHEMATHESIS_ENV: &str = "CUSTODIAN_TEST_SCHEMATHESIS";
/// The release installed. Pinned: a new release may add checks or change how data is
/// generated, which is a change to review, not one to take in passing.
pub(crate) const VERSION: &str = "4.32.5";
/// The venv's directory under the target directory.
const VENV_DIR: &str = "schemathesis-venv";

/// What pip installs into the venv.
fn requirement() -> String {
    format!("schemathesis=={VERSION}")
}

/// The schemathesis venv under the target directory.
pub(crate) fn venv(target_dir: &Path) -> Venv {
    Venv::under(target_dir, VENV_DIR)
}

/// The venv's `schemathesis` program.
pub(crate) fn program(venv: &Venv) -> PathBuf {
    venv.bin("schemathesis")
}

/// The installed version when the venv's `schemathesis --version` runs.
fn installed_version(venv: &Venv) -> Option<String> {
    version_of(&venv.output_of(&program(venv), &["--version"])?)
}

/// Reuses a venv holding the pinned release, or (re)creates it with
/// `python3 -m venv --clear` and installs that release with pip. Returns the version.
pub(crate) fn ensure(venv: &Venv) -> Result<String> {
    let requirement = requirement();
    let contents = Contents {
        tool: "schemathesis",
        requirement: &requirement,
        pinned: Some(VERSION),
        check: "`schemathesis --version`",
    };
    venv.ensure(&contents, installed_version)
}

/// The version in `schemathesis --version`'s output (`schemathesis, version 4.32.5`).
fn version_of(output: &str) -> Option<String> {
    output
        .lines()
        .find_map(|line| line.trim().rsplit_once("version "))
        .map(|(_, version)| version.trim().to_owned())
        .filter(|version| !version.is_empty())
}

/// How the run names schemathesis.
pub(crate) const TOOL: Tool = Tool {
    label: "schemathesis (OpenAPI check)",
    check: "OpenAPI check",
    env: SCHEMATHESIS_ENV,
};

/// The schemathesis of the run: given, or the venv's (installed when missing).
pub(crate) fn prepare(ci: bool, root: &Path) -> Result<Program> {
    Program::prepare(
        &TOOL,
        root,
        |target| {
            let venv = venv(target);
            let version = ensure(&venv)?;
            Ok((program(&venv).display().to_string(), format!("schemathesis {version}")))
        },
        |e| not_set_up(ci, e),
    )
}

/// schemathesis could not be set up: an error under CI, a loud skip elsewhere.
fn not_set_up(ci: bool, e: &anyhow::Error) -> Result<Program> {
    tool::not_set_up(
        ci,
        format!(
            "schemathesis could not be set up, and CI (CI=true) checks the server against its OpenAPI document; \
             that check is never skipped there.\n\
             {e:#}\n\
             fix: make `python3 -m venv` work (Debian: apt-get install python3-venv) and PyPI reachable, or \
             install schemathesis {VERSION} and set {SCHEMATHESIS_ENV} to its program."
        ),
        skip_banner(&format!("{e:#}")),
    )
}

/// The banner printed before and after a run whose document check is skipped.
pub(crate) fn skip_banner(reason: &str) -> String {
    tool::skip_banner(
        "OPENAPI CHECK IS SKIPPED: this run does NOT check the server against its OpenAPI document.",
        "schemathesis could not be set up",
        reason,
        &[
            "Skipped: the server's end-to-end test that runs schemathesis against /openapi.json; it".to_owned(),
            "  prints `SKIPPED (schemathesis): <test>` and passes without testing anything.".to_owned(),
            format!(
                "To run it: make `python3 -m venv` and `pip install \"{}\"` work (python3-venv),",
                requirement()
            ),
            format!("  or set {SCHEMATHESIS_ENV} to a schemathesis program, then run `cargo xtask test` again."),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_venv_lives_under_the_target_dir() {
        let venv = venv(Path::new("/cache/target"));
        assert_eq!(venv.dir, PathBuf::from("/cache/target/schemathesis-venv"));
        assert_eq!(
            venv.python(),
            PathBuf::from("/cache/target/schemathesis-venv/bin/python")
        );
        assert_eq!(
            program(&venv),
            PathBuf::from("/cache/target/schemathesis-venv/bin/schemathesis")
        );
    }

    #[test]
    fn the_release_is_pinned() {
        assert_eq!(requirement(), format!("schemathesis=={VERSION}"));
        assert!(VERSION.split('.').all(|part| part.parse::<u32>().is_ok()), "{VERSION}");
    }

    #[test]
    fn the_version_is_read_from_the_programs_output() {
        assert_eq!(version_of("schemathesis, version 4.32.5\n").as_deref(), Some("4.32.5"));
        assert_eq!(version_of("usage: something else"), None);
        assert_eq!(version_of(""), None);
    }

    #[test]
    fn a_venv_without_schemathesis_is_not_reused() {
        let dir = std::env::temp_dir().join(format!("xtask-schemathesis-{}", std::process::id()));
        assert_eq!(installed_version(&venv(&dir)), None);
    }

    #[test]
    fn a_venv_with_another_release_is_not_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("xtask-schemathesis-old-{}", std::process::id()));
        let venv = venv(&dir);
        std::fs::create_dir_all(venv.dir.join("bin")).unwrap();
        std::fs::write(program(&venv), "#!/bin/sh\necho 'schemathesis, version 3.0.0'\n").unwrap();
        std::fs::set_permissions(program(&venv), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Linux refuses to run a file another test's child may still hold open for writing
        // ("Text file busy"); try again briefly.
        let mut installed = None;
        for _ in 0..20 {
            installed = installed_version(&venv);
            if installed.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(installed.as_deref(), Some("3.0.0"));
        assert_ne!(installed.as_deref(), Some(VERSION), "ensure() would reinstall");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_skip_banner_says_what_is_skipped_and_how_to_enable_it() {
        let banner = skip_banner("`python3 -m venv` failed: ensurepip is not available\nsecond-line-detail");
        assert!(banner.contains("OPENAPI CHECK IS SKIPPED"));
        assert!(banner.contains("ensurepip is not available"));
        assert!(
            !banner.contains("second-line-detail"),
            "only the first line of the reason"
        );
        assert!(banner.contains(SCHEMATHESIS_ENV));
        assert!(banner.contains(&format!("schemathesis=={VERSION}")));
        assert!(banner.contains("CI=true"));
    }

    #[test]
    fn failing_to_set_up_fails_ci_and_is_skipped_loudly_elsewhere() {
        let cause = anyhow::anyhow!("`python3 -m venv` failed: ensurepip is not available");
        let error = not_set_up(true, &cause).unwrap_err().to_string();
        assert!(error.contains("CI=true"), "{error}");
        assert!(error.contains("ensurepip is not available"), "{error}");
        assert!(error.contains(SCHEMATHESIS_ENV), "{error}");
        match not_set_up(false, &cause).unwrap() {
            Program::Skipped { banner } => {
                assert!(banner.contains("OPENAPI CHECK IS SKIPPED"), "{banner}");
                assert!(banner.contains("ensurepip is not available"), "{banner}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
    }
}
