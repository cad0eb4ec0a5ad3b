//! A fake `op` (the 1Password CLI), for the 1Password adapter's tests and the end-to-end
//! tests of the binary.
//!
//! The adapter clears `op`'s environment, so the fake cannot be told anything through it:
//! [`FakeOp::start`] writes the script (`fake_op.py`) into a temp directory with the
//! interpreter's path and its state directory baked in. `state.json` there holds the
//! accepted token, the secrets (reference → value) and a mode (`ok`, `rate_limit`, `hang`,
//! `broken`); every run appends one line to `invocations.jsonl` (argv, pid, the names of
//! the environment it received, the values of the non-secret ones, whether the token
//! matched — never the token).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The script, with `@@PYTHON@@` and `@@STATE_DIR@@` to fill in.
const SCRIPT: &str = include_str!("fake_op.py");

/// A fake `op` and the state it reads and writes. Removed with its directory when dropped.
#[derive(Debug)]
pub struct FakeOp {
    dir: tempfile::TempDir,
}

/// One recorded run of the fake.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub pid: u32,
    /// The names of the environment variables the process received.
    pub env_names: Vec<String>,
    /// The values of the non-secret ones.
    pub env: BTreeMap<String, String>,
    /// Whether `OP_SERVICE_ACCOUNT_TOKEN` was the accepted token.
    pub token_matched: bool,
}

impl FakeOp {
    /// A fake accepting `token`, holding `secrets` (`op://…` → value), in `mode`.
    pub fn start(token: &str, mode: &str, secrets: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for the fake op");
        let fake = Self { dir };
        fake.write_state(token, mode, secrets);
        let script = SCRIPT
            .replace("@@PYTHON@@", &python().display().to_string())
            .replace("@@STATE_DIR@@", &fake.dir.path().display().to_string());
        // The executable is written by another process (`cp`): a file this process had
        // open for writing could still be open in a child another test thread is forking
        // (until its exec), and running it would then fail with "text file busy".
        let source = fake.dir.path().join("op.source");
        std::fs::write(&source, script).expect("the fake op's source");
        let copied = std::process::Command::new("cp")
            .arg(&source)
            .arg(fake.path())
            .status()
            .expect("cp runs");
        assert!(copied.success(), "cp wrote the fake op");
        std::fs::set_permissions(fake.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod the fake op");
        fake
    }

    /// Accept `token` from now on, with `secrets` in `mode` (a rotated service account).
    pub fn write_state(&self, token: &str, mode: &str, secrets: &[(&str, &str)]) {
        let secrets: serde_json::Map<String, serde_json::Value> =
            secrets.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
        let state = serde_json::json!({ "token": token, "mode": mode, "secrets": secrets });
        std::fs::write(self.dir.path().join("state.json"), state.to_string()).expect("the fake op's state");
    }

    /// The executable, for `op_path`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("op")
    }

    /// Every run so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        match std::fs::read_to_string(self.dir.path().join("invocations.jsonl")) {
            Ok(log) => log
                .lines()
                .map(|l| serde_json::from_str(l).expect("an invocation line"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The fake's directory (state and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The real interpreter behind `python3` (not a shell shim: the fake runs with no `PATH`).
fn python() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("the fake op needs python3");
    PathBuf::from(String::from_utf8(out.stdout).expect("a UTF-8 path").trim())
}
