//! Infisical's Node SDK for the test that drives the fake Infisical with it
//! (`crates/custodian-vaults/tests/it/infisical_sdk.rs`): one pinned `@infisical/sdk`
//! release installed with npm under the target directory (installed once, reused while it
//! holds that release).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::tool::{self, Program, Tool};

/// The directory, holding `node_modules/@infisical/sdk`, that the test runs its script
/// with (the test names it too).
pub(crate) const INFISICAL_NODE_DIR_ENV: &str = "CUSTODIAN_TEST_INFISICAL_NODE_DIR";
/// The release installed. Pinned: the test checks what one release expects of the fake; a
/// new release may expect another, which is a change to review, not one to take in passing.
pub(crate) const VERSION: &str = "5.0.2";
/// The npm prefix under the target directory.
const NODE_DIR: &str = "infisical-node";
/// The oldest Node.js the release runs on (`@infisical/sdk` v5 needs Node 20).
const MIN_NODE_MAJOR: u32 = 20;

/// How the run names the SDK.
pub(crate) const TOOL: Tool = Tool {
    label: "infisical-sdk (Node SDK test)",
    check: "Node SDK test",
    env: INFISICAL_NODE_DIR_ENV,
};

/// The directory given in the environment, or the pinned release under the target
/// directory (installed when missing); a failure is an error under CI, a loud skip elsewhere.
pub(crate) fn prepare(ci: bool, root: &Path) -> Result<Program> {
    Program::prepare(
        &TOOL,
        root,
        |target| {
            let dir = node_dir(target);
            let version = ensure(&dir)?;
            Ok((dir.display().to_string(), format!("@infisical/sdk {version}")))
        },
        |e| not_set_up(ci, e),
    )
}

/// The npm prefix under the target directory.
fn node_dir(target_dir: &Path) -> PathBuf {
    target_dir.join(NODE_DIR)
}

/// What npm installs.
fn requirement() -> String {
    format!("@infisical/sdk@{VERSION}")
}

/// The release installed under `dir`, read from its `package.json`.
fn installed_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("node_modules/@infisical/sdk/package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("version")?.as_str().map(str::to_owned)
}

/// The major version in `node --version`'s output (`v20.20.2`).
fn node_major(output: &str) -> Option<u32> {
    output.trim().strip_prefix('v')?.split('.').next()?.parse().ok()
}

/// Reuses `dir` when it holds the pinned release, else installs it there with npm.
fn ensure(dir: &Path) -> Result<String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .context("`node --version` failed: is Node.js installed?")?;
    let version = String::from_utf8_lossy(&node.stdout).into_owned();
    match node_major(&version) {
        Some(major) if major >= MIN_NODE_MAJOR => {}
        _ => bail!(
            "`node --version` says {:?}; @infisical/sdk {VERSION} needs Node.js {MIN_NODE_MAJOR} or newer",
            version.trim()
        ),
    }
    if installed_version(dir).as_deref() == Some(VERSION) {
        return Ok(VERSION.to_owned());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    eprintln!("xtask: installing {} into {}", requirement(), dir.display());
    let status = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(dir)
        .args(["--no-audit", "--no-fund", "--save-exact"])
        .arg(requirement())
        .status()
        .context("cannot run npm: is npm installed?")?;
    if !status.success() {
        bail!(
            "`npm install --prefix {} {}` failed ({status})",
            dir.display(),
            requirement()
        );
    }
    match installed_version(dir) {
        Some(v) if v == VERSION => Ok(v),
        other => bail!(
            "after npm install, {} holds @infisical/sdk {other:?}, not {VERSION}",
            dir.display()
        ),
    }
}

/// The Node SDK could not be set up: an error under CI, a loud skip elsewhere.
fn not_set_up(ci: bool, e: &anyhow::Error) -> Result<Program> {
    tool::not_set_up(
        ci,
        format!(
            "Infisical's Node SDK could not be set up, and CI (CI=true) drives the fake Infisical with it; that \
             test is never skipped there.\n\
             {e:#}\n\
             fix: install Node.js {MIN_NODE_MAJOR}+ with npm (Debian: apt-get install nodejs npm) and make the npm \
             registry reachable, or run `npm install --prefix DIR {}` and set {INFISICAL_NODE_DIR_ENV}=DIR.",
            requirement()
        ),
        skip_banner(&format!("{e:#}")),
    )
}

/// The banner printed before and after a run whose Node SDK test is skipped.
fn skip_banner(reason: &str) -> String {
    tool::skip_banner(
        "INFISICAL NODE SDK TEST IS SKIPPED: the fake Infisical is NOT checked with Infisical's SDK.",
        "@infisical/sdk could not be set up",
        reason,
        &[
            "Skipped: custodian-vaults' infisical_sdk test; it prints `SKIPPED (infisical-sdk): <test>`".to_owned(),
            "  and passes without testing anything.".to_owned(),
            format!(
                "To run it: install Node.js {MIN_NODE_MAJOR}+ and npm, or `npm install --prefix DIR {}`",
                requirement()
            ),
            format!("  and set {INFISICAL_NODE_DIR_ENV}=DIR, then run `cargo xtask test` again."),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_lives_under_the_target_dir_and_is_pinned() {
        assert_eq!(
            node_dir(Path::new("/cache/target")),
            PathBuf::from("/cache/target/infisical-node")
        );
        assert_eq!(requirement(), format!("@infisical/sdk@{VERSION}"));
        assert!(VERSION.split('.').all(|part| part.parse::<u32>().is_ok()), "{VERSION}");
    }

    #[test]
    fn the_node_major_version_is_read() {
        assert_eq!(node_major("v20.20.2\n"), Some(20));
        assert_eq!(node_major("v18.1.0"), Some(18));
        assert_eq!(node_major("20.1.0"), None);
        assert_eq!(node_major(""), None);
    }

    #[test]
    fn a_directory_with_another_release_is_not_reused() {
        let dir = std::env::temp_dir().join(format!("xtask-infisical-node-{}", std::process::id()));
        assert_eq!(installed_version(&dir), None);
        let sdk = dir.join("node_modules/@infisical/sdk");
        std::fs::create_dir_all(&sdk).unwrap();
        std::fs::write(
            sdk.join("package.json"),
            r#"{"name":"@infisical/sdk","version":"4.0.0"}"#,
        )
        .unwrap();
        assert_eq!(installed_version(&dir).as_deref(), Some("4.0.0"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failing_to_set_up_fails_ci_and_is_skipped_loudly_elsewhere() {
        let cause = anyhow::anyhow!("npm: command not found\nsecond-line-detail");
        let error = not_set_up(true, &cause).unwrap_err().to_string();
        assert!(error.contains("CI=true"), "{error}");
        assert!(error.contains(INFISICAL_NODE_DIR_ENV), "{error}");
        match not_set_up(false, &cause).unwrap() {
            Program::Skipped { banner } => {
                assert!(banner.contains("INFISICAL NODE SDK TEST IS SKIPPED"), "{banner}");
                assert!(banner.contains("npm: command not found"), "{banner}");
                assert!(!banner.contains("second-line-detail"), "{banner}");
                assert!(banner.contains(INFISICAL_NODE_DIR_ENV), "{banner}");
                assert!(banner.contains(&requirement()), "{banner}");
                assert!(banner.contains("CI=true"), "{banner}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
        assert!(
            Program::Skipped { banner: String::new() }
                .summary(&TOOL)
                .contains("SKIPPED")
        );
    }
}
