//! Python virtual environments under the target directory, one per Python tool the tests
//! drive (moto, schemathesis, the TrueFoundry SDK): made once with `python3 -m venv
//! --clear` and `pip install`, reused while they hold what they should.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, anyhow};

use crate::run_quietly;

/// The target directory cargo builds into: `CARGO_TARGET_DIR` (relative to the workspace
/// root when relative), else `<root>/target`.
pub(crate) fn target_dir(root: &Path, cargo_target_dir: Option<OsString>) -> PathBuf {
    match cargo_target_dir.filter(|dir| !dir.is_empty()) {
        Some(dir) => root.join(PathBuf::from(dir)),
        None => root.join("target"),
    }
}

/// What one venv holds, and how to tell that it does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contents<'a> {
    /// Names the tool in messages (`moto`, `schemathesis`).
    pub(crate) tool: &'a str,
    /// What pip installs (`moto[server]`, `schemathesis==4.32.5`).
    pub(crate) requirement: &'a str,
    /// The version a venv must hold to be reused; any working one when `None`.
    pub(crate) pinned: Option<&'a str>,
    /// What the installed-version check runs, named in the error when it still fails
    /// right after an install.
    pub(crate) check: &'a str,
}

/// A venv's directory and the programs in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Venv {
    pub(crate) dir: PathBuf,
}

impl Venv {
    /// The venv `name` under `target_dir`.
    pub(crate) fn under(target_dir: &Path, name: &str) -> Venv {
        Venv {
            dir: target_dir.join(name),
        }
    }

    pub(crate) fn python(&self) -> PathBuf {
        self.bin("python")
    }

    /// A program of the venv's `bin` directory.
    pub(crate) fn bin(&self, program: &str) -> PathBuf {
        self.dir.join("bin").join(program)
    }

    /// What `program args` prints on stdout (trimmed) when it exists and succeeds.
    pub(crate) fn output_of(&self, program: &Path, args: &[&str]) -> Option<String> {
        if !program.is_file() {
            return None;
        }
        let output = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Reuses the venv when `installed` finds a version in it (the pinned one, when
    /// `contents` pins one), or (re)creates it with `python3 -m venv --clear` and installs
    /// `contents.requirement` with pip. Returns the installed version.
    pub(crate) fn ensure(
        &self,
        contents: &Contents<'_>,
        installed: impl Fn(&Venv) -> Option<String>,
    ) -> Result<String> {
        let python3 = std::env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3"));
        self.ensure_with(&python3, contents, installed)
    }

    /// [`Venv::ensure`], making the venv with `python3`.
    fn ensure_with(
        &self,
        python3: &OsString,
        contents: &Contents<'_>,
        installed: impl Fn(&Venv) -> Option<String>,
    ) -> Result<String> {
        let wanted = |version: &String| contents.pinned.is_none_or(|pinned| version == pinned);
        if let Some(version) = installed(self).filter(wanted) {
            return Ok(version);
        }
        let Contents { tool, requirement, .. } = contents;
        eprintln!(
            "xtask: creating the {tool} venv at {} (python3 -m venv; pip install \"{requirement}\")",
            self.dir.display()
        );
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        run_quietly(
            Command::new(python3)
                .arg("-m")
                .arg("venv")
                .arg("--clear")
                .arg(&self.dir),
            &format!("{} -m venv --clear {}", python3.to_string_lossy(), self.dir.display()),
        )?;
        run_quietly(
            Command::new(self.python()).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                requirement,
            ]),
            &format!("{} -m pip install \"{requirement}\"", self.python().display()),
        )?;
        match installed(self) {
            Some(version) if wanted(&version) => Ok(version),
            other => Err(anyhow!(
                "the venv at {} was created and {requirement} installed, but {} gives {other:?}",
                self.dir.display(),
                contents.check
            )),
        }
    }
}

/// A program path given in the environment (blank counts as unset).
pub(crate) fn given_path(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|path| !path.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn the_target_dir_follows_cargo_target_dir() {
        let root = Path::new("/repo");
        assert_eq!(target_dir(root, None), PathBuf::from("/repo/target"));
        assert_eq!(target_dir(root, Some(OsString::new())), PathBuf::from("/repo/target"));
        assert_eq!(
            target_dir(root, Some(OsString::from("/cache/target"))),
            PathBuf::from("/cache/target")
        );
        assert_eq!(
            target_dir(root, Some(OsString::from("out"))),
            PathBuf::from("/repo/out")
        );
    }

    #[test]
    fn a_venv_lives_under_the_target_dir() {
        let venv = Venv::under(Path::new("/cache/target"), "tool-venv");
        assert_eq!(venv.dir, PathBuf::from("/cache/target/tool-venv"));
        assert_eq!(venv.python(), PathBuf::from("/cache/target/tool-venv/bin/python"));
        assert_eq!(venv.bin("tool"), PathBuf::from("/cache/target/tool-venv/bin/tool"));
    }

    #[test]
    fn a_missing_program_has_no_output() {
        let dir = std::env::temp_dir().join(format!("xtask-venv-none-{}", std::process::id()));
        let venv = Venv::under(&dir, "tool-venv");
        assert_eq!(venv.output_of(&venv.python(), &["-c", "print(1)"]), None);
    }

    #[test]
    fn a_program_that_fails_has_no_output_and_one_that_succeeds_its_trimmed_stdout() {
        let venv = Venv::under(Path::new("/"), "unused");
        assert_eq!(
            venv.output_of(Path::new("/bin/sh"), &["-c", "echo ' 1.2.3 '"])
                .as_deref(),
            Some("1.2.3")
        );
        assert_eq!(
            venv.output_of(Path::new("/bin/sh"), &["-c", "echo 1.2.3; exit 1"]),
            None
        );
    }

    const CONTENTS: Contents<'static> = Contents {
        tool: "tool",
        requirement: "tool==1.0.0",
        pinned: Some("1.0.0"),
        check: "`tool --version`",
    };

    #[test]
    fn a_venv_holding_the_pinned_version_is_reused_without_installing() {
        let dir = std::env::temp_dir().join(format!("xtask-venv-reuse-{}", std::process::id()));
        let venv = Venv::under(&dir, "tool-venv");
        let checks = Cell::new(0);
        let version = venv
            .ensure(&CONTENTS, |_| {
                checks.set(checks.get() + 1);
                Some("1.0.0".to_owned())
            })
            .unwrap();
        assert_eq!(version, "1.0.0");
        assert_eq!(checks.get(), 1);
        assert!(!dir.exists(), "nothing was created");
    }

    #[test]
    fn any_working_version_is_reused_when_none_is_pinned() {
        let dir = std::env::temp_dir().join(format!("xtask-venv-any-{}", std::process::id()));
        let venv = Venv::under(&dir, "tool-venv");
        let contents = Contents {
            pinned: None,
            ..CONTENTS
        };
        assert_eq!(venv.ensure(&contents, |_| Some("9.9".to_owned())).unwrap(), "9.9");
        assert!(!dir.exists(), "nothing was created");
    }

    #[test]
    fn another_version_is_replaced_and_a_failing_install_says_what_failed() {
        let dir = std::env::temp_dir().join(format!("xtask-venv-replace-{}", std::process::id()));
        let venv = Venv::under(&dir, "tool-venv");
        // The Python that makes the venv fails (`false`): the old version is not kept,
        // and the error names the command that failed.
        let error = venv
            .ensure_with(&OsString::from("false"), &CONTENTS, |_| Some("0.9.0".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("false -m venv --clear"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_install_whose_check_still_fails_names_the_check() {
        let dir = std::env::temp_dir().join(format!("xtask-venv-check-{}", std::process::id()));
        let venv = Venv::under(&dir, "tool-venv");
        // `true` stands in for python3 and for the venv's pip: both "succeed".
        std::fs::create_dir_all(venv.dir.join("bin")).unwrap();
        std::os::unix::fs::symlink("/bin/true", venv.python()).unwrap();
        let error = venv
            .ensure_with(&OsString::from("true"), &CONTENTS, |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("tool==1.0.0 installed"), "{error}");
        assert!(error.contains("`tool --version` gives None"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_given_path_is_used_unless_blank() {
        assert_eq!(
            given_path(Some(" /opt/tool/bin/tool ")).as_deref(),
            Some("/opt/tool/bin/tool")
        );
        assert_eq!(given_path(Some("  ")), None);
        assert_eq!(given_path(None), None);
    }
}
