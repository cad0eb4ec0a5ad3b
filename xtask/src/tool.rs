//! The programs some tests drive (schemathesis, TrueFoundry's SDK, Doppler's CLI,
//! Infisical's Node SDK), prepared alike: the one named by the tool's variable, else the
//! one set up under the target directory; one that cannot be set up fails the run under CI
//! and is skipped loudly elsewhere.

use std::path::Path;

use anyhow::{Result, bail};

use crate::venv::{given_path, target_dir};

/// One such program, as the run names it.
#[derive(Debug)]
pub(crate) struct Tool {
    /// The summary line's label: `schemathesis (OpenAPI check)`.
    pub(crate) label: &'static str,
    /// What a skip skips, in the summary: `OpenAPI check`.
    pub(crate) check: &'static str,
    /// The variable that hands the program to the tests; set beforehand, it names the one
    /// to use as it is.
    pub(crate) env: &'static str,
}

/// Where the program of a run comes from.
#[derive(Debug)]
pub(crate) enum Program {
    /// Set up under the target directory (installed when missing).
    Run { path: String, version: String },
    /// Named by the tool's variable before the run: used as it is.
    Given { path: String },
    /// Not set up (never under CI): the banner says what is skipped.
    Skipped { banner: String },
}

impl Program {
    /// The program of `tool`: the one its variable names, else `set_up` under the target
    /// directory of `root` (the path and version it answers); when that fails,
    /// `not_set_up` decides (an error under CI, a skip elsewhere).
    pub(crate) fn prepare(
        tool: &Tool,
        root: &Path,
        set_up: impl FnOnce(&Path) -> Result<(String, String)>,
        not_set_up: impl FnOnce(&anyhow::Error) -> Result<Program>,
    ) -> Result<Program> {
        if let Some(path) = given_path(std::env::var(tool.env).ok().as_deref()) {
            return Ok(Program::Given { path });
        }
        match set_up(&target_dir(root, std::env::var_os("CARGO_TARGET_DIR"))) {
            Ok((path, version)) => Ok(Program::Run { path, version }),
            Err(e) => not_set_up(&e),
        }
    }

    /// The program to hand to the tests, if any.
    pub(crate) fn path(&self) -> Option<&str> {
        match self {
            Program::Run { path, .. } | Program::Given { path } => Some(path),
            Program::Skipped { .. } => None,
        }
    }

    /// The banner of a skip.
    pub(crate) fn banner(&self) -> Option<&str> {
        match self {
            Program::Skipped { banner } => Some(banner),
            Program::Run { .. } | Program::Given { .. } => None,
        }
    }

    /// The run's summary line for `tool`.
    pub(crate) fn summary(&self, tool: &Tool) -> String {
        let label = tool.label;
        match self {
            Program::Run { path, version } => format!("  {label}: {path} ({version})"),
            Program::Given { path } => format!("  {label}: {path} (from {})", tool.env),
            Program::Skipped { .. } => format!("  {label}: NOT SET UP: {} SKIPPED", tool.check),
        }
    }
}

/// A program that could not be set up: under CI, an error saying `ci_error`; elsewhere, a
/// skip with `banner`.
pub(crate) fn not_set_up(ci: bool, ci_error: String, banner: String) -> Result<Program> {
    if ci {
        bail!("{ci_error}");
    }
    Ok(Program::Skipped { banner })
}

/// The banner printed before and after a run that skips tests: a rule, `title`, why (the
/// first line of `reason`), then `lines`, then the CI reminder and a rule.
pub(crate) fn skip_banner(title: &str, failed: &str, reason: &str, lines: &[String]) -> String {
    let rule = "!".repeat(88);
    let mut banner = vec![
        rule.clone(),
        format!("!!  {title}"),
        format!("!!  {failed}: {}", reason.lines().next().unwrap_or(reason)),
    ];
    banner.extend(lines.iter().map(|line| format!("!!  {line}")));
    banner.push("!!    In CI (CI=true) this is an error, not a skip.".to_owned());
    banner.push(rule);
    banner.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOL: Tool = Tool {
        label: "thing (thing test)",
        check: "thing test",
        env: "CUSTODIAN_TEST_THING",
    };

    #[test]
    fn the_summary_says_what_runs() {
        let run = Program::Run {
            path: "/t/venv/bin/thing".into(),
            version: "thing 1.2.3".into(),
        };
        assert_eq!(run.path(), Some("/t/venv/bin/thing"));
        assert_eq!(
            run.summary(&TOOL),
            "  thing (thing test): /t/venv/bin/thing (thing 1.2.3)"
        );
        let given = Program::Given { path: "/x".into() };
        assert!(given.summary(&TOOL).contains("from CUSTODIAN_TEST_THING"));
        let skipped = Program::Skipped { banner: "b".into() };
        assert_eq!(skipped.path(), None);
        assert_eq!(skipped.banner(), Some("b"));
        assert_eq!(
            skipped.summary(&TOOL),
            "  thing (thing test): NOT SET UP: thing test SKIPPED"
        );
    }

    #[test]
    fn a_failure_is_an_error_under_ci_and_a_skip_elsewhere() {
        let error = not_set_up(true, "cannot: CI=true".into(), "banner".into()).unwrap_err();
        assert_eq!(error.to_string(), "cannot: CI=true");
        match not_set_up(false, "cannot".into(), "banner".into()).unwrap() {
            Program::Skipped { banner } => assert_eq!(banner, "banner"),
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn the_banner_keeps_the_first_line_of_the_reason() {
        let banner = skip_banner("X IS SKIPPED", "x failed", "first\nsecond", &["do this".to_owned()]);
        assert!(banner.contains("!!  X IS SKIPPED"));
        assert!(banner.contains("!!  x failed: first"));
        assert!(!banner.contains("second"));
        assert!(banner.contains("!!  do this"));
        assert!(banner.contains("CI=true"));
    }
}
