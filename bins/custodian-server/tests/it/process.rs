//! The built binary as a process: `custodian serve` running with its stderr read line by
//! line, and a start that must be refused.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::Api;

/// The built `custodian` binary over `data_dir`, with a clean environment (only what a test
/// sets reaches it: no `CUSTODIAN_*` or AWS variable of the machine running the tests),
/// logs at `log`, and no standard input.
pub(crate) fn custodian(data_dir: &Path, log: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custodian"));
    command
        .env_clear()
        .env("CUSTODIAN_DATA_DIR", data_dir)
        .env("RUST_LOG", log)
        // The suites send many requests from one address; the limits have tests of their own.
        .env("CUSTODIAN_RATE_LIMIT__PER_ADDRESS_PER_MINUTE", "0")
        .env("CUSTODIAN_RATE_LIMIT__PER_TOKEN_PER_MINUTE", "0")
        .stdin(Stdio::null());
    command
}

/// [`custodian`] on the database at `database_url` when given (SQLite in the data directory
/// otherwise), with the extra `env`.
pub(crate) fn custodian_on(data_dir: &Path, log: &str, database_url: Option<&str>, env: &[(&str, &str)]) -> Command {
    let mut command = custodian(data_dir, log);
    if let Some(url) = database_url {
        command.env("CUSTODIAN_DATABASE_URL", url);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `custodian serve`, every stderr line it has written so far, and a client.
pub(crate) struct RunningServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
    pub(crate) api: Api,
}

impl RunningServer {
    /// Run `command` (the binary with its environment) as `serve` on 127.0.0.1:`port` and
    /// read stderr until a line contains `ready_line`.
    pub(crate) fn start(command: Command, port: u16, ready_line: &str) -> Self {
        let mut server = Self::spawn(command, &format!("127.0.0.1:{port}"));
        server.wait_for(ready_line);
        server
    }

    /// Run `command` as `serve` on a free port until it prints the first start's token;
    /// the server and that token (the tenant admin's).
    pub(crate) fn first_start(command: Command) -> (Self, String) {
        let server = Self::start(command, free_port(), "Try it:");
        let token = server
            .tokens()
            .into_iter()
            .next()
            .expect("the first start prints the admin's token");
        (server, token)
    }

    /// Run `command` as `serve` listening on `listen`, without waiting for anything. With
    /// port 0 the address is in the log, and `api` is of no use.
    pub(crate) fn spawn(mut command: Command, listen: &str) -> Self {
        let mut child = command
            .arg("serve")
            .env("CUSTODIAN_LISTEN", listen)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        RunningServer {
            child,
            lines,
            seen: Vec::new(),
            api: Api::new(format!("http://{listen}")),
        }
    }

    /// Read stderr until a line contains `needle`.
    pub(crate) fn wait_for(&mut self, needle: &str) {
        self.wait_until(&format!("{needle:?}"), |line| line.contains(needle));
    }

    /// Read stderr until a line satisfies `found` (`what` names it when none does); that
    /// line.
    pub(crate) fn wait_until(&mut self, what: &str, found: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no {what} in {:#?}", self.seen));
            self.seen.push(line.clone());
            if found(&line) {
                return line;
            }
        }
    }

    /// Every `cus_…` token the output holds.
    pub(crate) fn tokens(&self) -> Vec<String> {
        self.seen
            .iter()
            .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == '"'))
            .filter(|w| w.starts_with("cus_"))
            .map(str::to_owned)
            .collect()
    }

    /// SIGTERM, a clean exit, and every line it wrote.
    pub(crate) fn terminate(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("the server exits");
        assert!(exit.success(), "{exit:?}: {:#?}", self.seen);
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.iter());
        seen
    }
}

impl Drop for RunningServer {
    /// A test that fails before [`RunningServer::terminate`] leaves no server running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run `command` as `serve` and expect it to stop by itself with a failure; what it wrote
/// (stdout, then stderr). A server that starts anyway is killed and fails the test.
pub(crate) fn refused_start(mut command: Command) -> String {
    let mut child = command
        .arg("serve")
        .env("CUSTODIAN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the server") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill the server");
            child.wait().expect("the server exits");
            panic!("the server started instead of refusing");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    for mut stream in [
        Box::new(child.stdout.take().expect("stdout is piped")) as Box<dyn Read>,
        Box::new(child.stderr.take().expect("stderr is piped")),
    ] {
        stream.read_to_string(&mut output).expect("read the output");
    }
    assert!(!status.success(), "{status:?}: {output}");
    output
}
