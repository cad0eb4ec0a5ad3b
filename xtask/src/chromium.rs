//! Chromium for the browser tests: the one on `PATH`, or Debian's package installed with
//! `apt-get install -y chromium` when it is missing and we may install packages (root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::{find_in_path, run_quietly};

/// The Chromium binary the browser tests read (the server's `tests/it/docs_page.rs` names it
/// too).
pub(crate) const CHROMIUM_ENV: &str = "CUSTODIAN_TEST_CHROMIUM";
/// Debian's package.
const PACKAGE: &str = "chromium";
/// The names Chromium goes by on `PATH`.
const PROGRAMS: [&str; 2] = ["chromium", "chromium-browser"];

/// A Chromium that runs: its path and what `--version` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) path: PathBuf,
    pub(crate) version: String,
    /// Installed by this run.
    pub(crate) installed: bool,
}

/// The Chromium on `PATH`, or the one installed now when there is none and the machine
/// lets us (root, with `apt-get`).
pub(crate) fn ensure() -> Result<Found> {
    if let Some(path) = find() {
        return found(path, false);
    }
    let apt_get = find_in_path("apt-get");
    if let Some(refusal) = cannot_install(current_uid(), apt_get.is_some()) {
        bail!("Chromium is not on PATH ({}), and {refusal}", PROGRAMS.join(", "));
    }
    install(apt_get.as_deref().unwrap_or(Path::new("apt-get")))?;
    let path = find().ok_or_else(|| {
        anyhow!(
            "`apt-get install -y {PACKAGE}` succeeded, but none of {} is on PATH",
            PROGRAMS.join(", ")
        )
    })?;
    found(path, true)
}

fn find() -> Option<PathBuf> {
    PROGRAMS.iter().find_map(|program| find_in_path(program))
}

/// `path` with its version, once it has shown that it runs.
fn found(path: PathBuf, installed: bool) -> Result<Found> {
    let output = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{} --version`", path.display()))?;
    if !output.status.success() {
        bail!(
            "`{} --version` failed ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(Found {
        version: String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        path,
        installed,
    })
}

/// Why this process cannot install a Debian package, if it cannot.
fn cannot_install(uid: Option<u32>, has_apt_get: bool) -> Option<String> {
    if !has_apt_get {
        return Some("`apt-get` is not on PATH to install it".to_owned());
    }
    match uid {
        Some(0) => None,
        Some(uid) => Some(format!("installing it needs root (this is uid {uid})")),
        None => Some("this process's user id cannot be read, so it is not installed".to_owned()),
    }
}

/// `apt-get install -y chromium`; when the package is unknown (a machine whose package
/// lists were never fetched), `apt-get update` first, then again.
fn install(apt_get: &Path) -> Result<()> {
    let apt = |args: &[&str]| {
        let mut command = Command::new(apt_get);
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    let shown = format!("apt-get install -y {PACKAGE}");
    eprintln!("xtask: Chromium is missing; running `{shown}` for the browser tests");
    if run_quietly(&mut apt(&["install", "-y", PACKAGE]), &shown).is_ok() {
        return Ok(());
    }
    eprintln!("xtask: `{shown}` failed; running `apt-get update`, then trying again");
    run_quietly(&mut apt(&["update"]), "apt-get update")?;
    run_quietly(&mut apt(&["install", "-y", PACKAGE]), &shown)
}

/// The real user id of this process, from `/proc/self/status`.
fn current_uid() -> Option<u32> {
    uid_from_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The real user id in the text of a `/proc/<pid>/status` file (`Uid:` real, effective, …).
fn uid_from_status(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// A Chromium path given in the environment (blank counts as unset).
pub(crate) fn given_path(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|path| !path.is_empty()).map(str::to_owned)
}

/// The banner printed before and after a run whose browser tests are skipped.
pub(crate) fn skip_banner(reason: &str) -> String {
    let rule = "!".repeat(88);
    [
        rule.clone(),
        "!!  BROWSER TESTS ARE SKIPPED: this run does NOT load the API reference (/docs) in Chromium.".to_owned(),
        format!(
            "!!  Chromium could not be set up: {}",
            reason.lines().next().unwrap_or(reason)
        ),
        "!!  Skipped: the server's end-to-end test of the API reference page; it prints".to_owned(),
        "!!    `SKIPPED (chromium): <test>` and passes without testing anything.".to_owned(),
        format!("!!  To run it: `apt-get install -y {PACKAGE}` (as root), or set {CHROMIUM_ENV} to a Chromium binary,"),
        "!!    then run `cargo xtask test` again. In CI (CI=true) this is an error, not a skip.".to_owned(),
        rule,
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_with_apt_get_installs() {
        assert_eq!(cannot_install(Some(0), true), None);
        assert!(cannot_install(Some(1000), true).unwrap().contains("uid 1000"));
        assert!(cannot_install(Some(0), false).unwrap().contains("apt-get"));
        assert!(cannot_install(None, true).is_some());
    }

    #[test]
    fn the_real_uid_is_read_from_the_status_file() {
        let status = "Name:\tcargo\nUmask:\t0022\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(uid_from_status(status), Some(1000));
        assert_eq!(uid_from_status("Uid:\t0\t0\t0\t0\n"), Some(0));
        assert_eq!(uid_from_status("Name:\tx\n"), None);
        assert!(current_uid().is_some(), "Linux has /proc/self/status");
    }

    #[test]
    fn a_given_path_is_used_unless_blank() {
        assert_eq!(
            given_path(Some(" /usr/bin/chromium ")).as_deref(),
            Some("/usr/bin/chromium")
        );
        assert_eq!(given_path(Some("")), None);
        assert_eq!(given_path(None), None);
    }

    #[test]
    fn a_binary_that_does_not_run_is_not_taken() {
        let error = found(PathBuf::from("/nonexistent/chromium"), false).unwrap_err();
        assert!(format!("{error:#}").contains("--version"), "{error:#}");
        let error = found(PathBuf::from("false"), false).unwrap_err();
        assert!(format!("{error:#}").contains("failed"), "{error:#}");
        // Any program that answers `--version` stands in for Chromium here.
        let found = found(PathBuf::from("true"), true).unwrap();
        assert!(found.installed);
        assert!(found.version.starts_with("true"), "the first line: {}", found.version);
    }

    #[test]
    fn the_skip_banner_says_what_is_skipped_and_how_to_enable_it() {
        let banner = skip_banner("Chromium is not on PATH, and installing it needs root\nsecond-line-detail");
        assert!(banner.contains("BROWSER TESTS ARE SKIPPED"));
        assert!(banner.contains("installing it needs root"));
        assert!(
            !banner.contains("second-line-detail"),
            "only the first line of the reason"
        );
        assert!(banner.contains(CHROMIUM_ENV));
        assert!(banner.contains("apt-get install -y chromium"));
        assert!(banner.contains("SKIPPED (chromium)"));
        assert!(banner.contains("CI=true"));
    }
}
