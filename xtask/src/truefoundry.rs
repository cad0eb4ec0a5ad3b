//! TrueFoundry's Python SDK for the test that drives the server's `/api/svc/v1` surface
//! with it: a Python virtual environment under the target directory with one pinned SDK
//! release (made once, reused while it holds that release).

use std::path::Path;

use anyhow::Result;

use crate::tool::{self, Program, Tool};
use crate::venv::{Contents, Venv};

/// The Python, holding the SDK, that the test runs its script with (the server's
/// `tests/it/truefoundry_sdk.rs` names it too).
pub(crate) const TRUEFOUNDRY_PYTHON_ENV: &str = "CUSTODIAN_TEST_TRUEFOUNDRY_PYTHON";
/// The release installed. Pinned: the test checks the wire format one release expects; a
/// new release may expect another, which is a change to review, not one to take in passing.
pub(crate) const VERSION: &str = "0.6.0";
/// The venv's directory under the target directory.
const VENV_DIR: &str = "truefoundry-venv";
/// Prints the installed release, after importing the client the test uses.
const VERSION_CHECK: &str = "import importlib.metadata, truefoundry_sdk; from truefoundry_sdk import TrueFoundry; \
     print('truefoundry-sdk', importlib.metadata.version('truefoundry-sdk'))";

/// What pip installs into the venv.
fn requirement() -> String {
    format!("truefoundry-sdk=={VERSION}")
}

/// The SDK's venv under the target directory.
pub(crate) fn venv(target_dir: &Path) -> Venv {
    Venv::under(target_dir, VENV_DIR)
}

/// The installed release when the venv's python imports the SDK.
fn installed_version(venv: &Venv) -> Option<String> {
    version_of(&venv.output_of(&venv.python(), &["-c", VERSION_CHECK])?)
}

/// Reuses a venv holding the pinned release, or (re)creates it with
/// `python3 -m venv --clear` and installs that release with pip. Returns the version.
pub(crate) fn ensure(venv: &Venv) -> Result<String> {
    let requirement = requirement();
    let contents = Contents {
        tool: "TrueFoundry SDK",
        requirement: &requirement,
        pinned: Some(VERSION),
        check: "`import truefoundry_sdk` in the venv's python",
    };
    venv.ensure(&contents, installed_version)
}

/// The version in the check's output (`truefoundry-sdk 0.6.0`, on the last line: an
/// import may warn first).
fn version_of(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("truefoundry-sdk "))
        .map(str::trim)
        .filter(|version| !version.is_empty() && !version.contains(char::is_whitespace))
        .map(str::to_owned)
}

/// How the run names the SDK.
pub(crate) const TOOL: Tool = Tool {
    label: "truefoundry-sdk (SDK test)",
    check: "SDK test",
    env: TRUEFOUNDRY_PYTHON_ENV,
};

/// The python with the SDK: given, or the venv's (installed when missing).
pub(crate) fn prepare(ci: bool, root: &Path) -> Result<Program> {
    Program::prepare(
        &TOOL,
        root,
        |target| {
            let venv = venv(target);
            let version = ensure(&venv)?;
            Ok((
                venv.python().display().to_string(),
                format!("truefoundry-sdk {version}"),
            ))
        },
        |e| not_set_up(ci, e),
    )
}

/// The TrueFoundry SDK could not be set up: an error under CI, a loud skip elsewhere.
fn not_set_up(ci: bool, e: &anyhow::Error) -> Result<Program> {
    tool::not_set_up(
        ci,
        format!(
            "the TrueFoundry SDK could not be set up, and CI (CI=true) drives /api/svc/v1 with it; that test is \
             never skipped there.\n\
             {e:#}\n\
             fix: make `python3 -m venv` work (Debian: apt-get install python3-venv) and PyPI reachable, or \
             install truefoundry-sdk {VERSION} and set {TRUEFOUNDRY_PYTHON_ENV} to that python."
        ),
        skip_banner(&format!("{e:#}")),
    )
}

/// The banner printed before and after a run whose SDK test is skipped.
pub(crate) fn skip_banner(reason: &str) -> String {
    tool::skip_banner(
        "TRUEFOUNDRY SDK TEST IS SKIPPED: this run does NOT drive /api/svc/v1 with TrueFoundry's SDK.",
        "the TrueFoundry SDK could not be set up",
        reason,
        &[
            "Skipped: the server's end-to-end test that runs the SDK against the built binary; it".to_owned(),
            "  prints `SKIPPED (truefoundry-sdk): <test>` and passes without testing anything.".to_owned(),
            format!(
                "To run it: make `python3 -m venv` and `pip install \"{}\"` work (python3-venv),",
                requirement()
            ),
            format!("  or set {TRUEFOUNDRY_PYTHON_ENV} to a python that has it, then run `cargo xtask test` again."),
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
        assert_eq!(venv.dir, PathBuf::from("/cache/target/truefoundry-venv"));
        assert_eq!(
            venv.python(),
            PathBuf::from("/cache/target/truefoundry-venv/bin/python")
        );
    }

    #[test]
    fn the_release_is_pinned() {
        assert_eq!(requirement(), format!("truefoundry-sdk=={VERSION}"));
        assert!(VERSION.split('.').all(|part| part.parse::<u32>().is_ok()), "{VERSION}");
    }

    #[test]
    fn the_version_is_read_from_the_checks_output() {
        assert_eq!(version_of("truefoundry-sdk 0.6.0").as_deref(), Some("0.6.0"));
        assert_eq!(
            version_of("UserWarning: something\ntruefoundry-sdk 0.6.0\n").as_deref(),
            Some("0.6.0")
        );
        assert_eq!(version_of("truefoundry-sdk "), None);
        assert_eq!(version_of("truefoundry-sdk 0.6.0 extra"), None);
        assert_eq!(version_of("0.6.0"), None);
        assert_eq!(version_of(""), None);
    }

    #[test]
    fn a_venv_without_the_sdk_is_not_reused() {
        let dir = std::env::temp_dir().join(format!("xtask-truefoundry-{}", std::process::id()));
        assert_eq!(installed_version(&venv(&dir)), None);
    }

    #[test]
    fn a_venv_with_another_release_is_not_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("xtask-truefoundry-old-{}", std::process::id()));
        let venv = venv(&dir);
        std::fs::create_dir_all(venv.dir.join("bin")).unwrap();
        std::fs::write(venv.python(), "#!/bin/sh\necho 'truefoundry-sdk 0.5.9'\n").unwrap();
        std::fs::set_permissions(venv.python(), std::fs::Permissions::from_mode(0o755)).unwrap();
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
        assert_eq!(installed.as_deref(), Some("0.5.9"));
        assert_ne!(installed.as_deref(), Some(VERSION), "ensure() would reinstall");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_skip_banner_says_what_is_skipped_and_how_to_enable_it() {
        let banner = skip_banner("`python3 -m venv` failed: ensurepip is not available\nsecond-line-detail");
        assert!(banner.contains("TRUEFOUNDRY SDK TEST IS SKIPPED"));
        assert!(banner.contains("ensurepip is not available"));
        assert!(
            !banner.contains("second-line-detail"),
            "only the first line of the reason"
        );
        assert!(banner.contains(TRUEFOUNDRY_PYTHON_ENV));
        assert!(banner.contains(&format!("truefoundry-sdk=={VERSION}")));
        assert!(banner.contains("CI=true"));
    }

    #[test]
    fn failing_to_set_up_fails_ci_and_is_skipped_loudly_elsewhere() {
        let cause = anyhow::anyhow!("`python3 -m venv` failed: ensurepip is not available");
        let error = not_set_up(true, &cause).unwrap_err().to_string();
        assert!(error.contains("CI=true"), "{error}");
        assert!(error.contains("ensurepip is not available"), "{error}");
        assert!(error.contains(TRUEFOUNDRY_PYTHON_ENV), "{error}");
        match not_set_up(false, &cause).unwrap() {
            Program::Skipped { banner } => {
                assert!(banner.contains("TRUEFOUNDRY SDK TEST IS SKIPPED"), "{banner}");
                assert!(banner.contains("ensurepip is not available"), "{banner}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
    }
}
