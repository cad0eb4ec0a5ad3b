//! moto for the AWS SSM tests: a Python virtual environment with `moto[server]` under the
//! target directory (made once, reused while it works), and a `moto_server` on a free
//! loopback port for the duration of the test run.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::venv::{Contents, Venv};

/// The moto URL the SSM tests read (custodian-store-ssm `tests/it/support.rs` names it too).
pub(crate) const MOTO_URL_ENV: &str = "CUSTODIAN_TEST_MOTO_URL";
/// What pip installs into the venv.
const MOTO_REQUIREMENT: &str = "moto[server]";
/// The venv's directory under the target directory.
const VENV_DIR: &str = "moto-venv";
/// How long a started moto_server gets to answer.
const READY_WAIT: Duration = Duration::from_secs(30);
/// Ports tried before giving up (another process can take a port between our probe and
/// moto's bind).
const PORT_TRIES: usize = 3;

/// What the venv holds.
const CONTENTS: Contents<'static> = Contents {
    tool: "moto",
    requirement: MOTO_REQUIREMENT,
    pinned: None,
    check: "`import moto.server` (with the `moto_server` script present)",
};

/// The moto venv under the target directory.
pub(crate) fn venv(target_dir: &Path) -> Venv {
    Venv::under(target_dir, VENV_DIR)
}

/// The venv's `moto_server` script.
pub(crate) fn moto_server(venv: &Venv) -> PathBuf {
    venv.bin("moto_server")
}

/// Whether `script`'s `#!` line names an interpreter that exists: a venv moved or copied
/// from elsewhere keeps scripts whose interpreter is gone.
fn interpreter_exists(script: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(script) else {
        return false;
    };
    match text.lines().next().and_then(|line| line.strip_prefix("#!")) {
        Some(line) => line
            .split_whitespace()
            .next()
            .is_some_and(|interpreter| Path::new(interpreter).is_file()),
        None => true,
    }
}

/// The installed moto version when the venv works (its python imports moto's server and
/// the `moto_server` script exists and can run).
fn working_moto_version(venv: &Venv) -> Option<String> {
    if !moto_server(venv).is_file() || !interpreter_exists(&moto_server(venv)) {
        return None;
    }
    venv.output_of(
        &venv.python(),
        &[
            "-c",
            "import moto, moto.server, flask, werkzeug; print(moto.__version__)",
        ],
    )
}

/// Reuses a working venv, or (re)creates it with `python3 -m venv --clear` and installs
/// `moto[server]` with pip. Returns the moto version.
pub(crate) fn ensure(venv: &Venv) -> Result<String> {
    venv.ensure(&CONTENTS, working_moto_version)
}

/// A running moto_server, stopped (killed and reaped) when dropped.
#[derive(Debug)]
pub(crate) struct MotoServer {
    pub(crate) url: String,
    child: ChildGuard,
}

impl MotoServer {
    /// Starts `moto_server` on a free loopback port and waits until it answers; tries
    /// another port when moto exits before answering (the port was taken meanwhile). Its
    /// output goes to `log`.
    pub(crate) fn start(venv: &Venv, log: &Path) -> Result<MotoServer> {
        let mut failures = Vec::new();
        for _ in 0..PORT_TRIES {
            let port = free_port().context("cannot find a free loopback port")?;
            let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
            let err = out.try_clone().context("cannot share the moto log file")?;
            let child = Command::new(moto_server(venv))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .with_context(|| format!("cannot start {}", moto_server(venv).display()))?;
            let mut child = ChildGuard(Some(child));
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match wait_until_answers(address, &mut child, READY_WAIT) {
                Ok(()) => {
                    return Ok(MotoServer {
                        url: format!("http://{address}"),
                        child,
                    });
                }
                Err(e) => failures.push(format!("port {port}: {e}")),
            }
        }
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(15).collect();
        bail!(
            "moto_server did not start:\n  {}\nlast lines of {}:\n{}",
            failures.join("\n  "),
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Stops the server now (also done on drop).
    pub(crate) fn stop(mut self) {
        self.child.stop();
    }
}

/// Kills and reaps its child when dropped, whichever way the run ends.
#[derive(Debug)]
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the child has exited (then it is reaped).
    fn exited(&mut self) -> Option<String> {
        let child = self.0.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) | Err(_) => None,
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listened on a moment ago (bound, then released).
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Polls `address` with an HTTP request until something answers with an HTTP status line,
/// the child exits, or `wait` passes.
fn wait_until_answers(address: SocketAddr, child: &mut ChildGuard, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    let mut last = String::from("not tried");
    loop {
        if let Some(status) = child.exited() {
            bail!("moto_server exited ({status}) before answering; last probe: {last}");
        }
        match probe(address) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            bail!("no answer at {address} within {wait:?}; last probe: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One `GET /moto-api/data.json`: Ok when an HTTP status line comes back.
pub(crate) fn probe(address: SocketAddr) -> Result<(), String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("socket: {e}"))?;
    stream
        .write_all(b"GET /moto-api/data.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    if is_http_status_line(&head[..read]) {
        Ok(())
    } else {
        Err(format!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&head[..read])
        ))
    }
}

pub(crate) fn is_http_status_line(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.") && head.len() >= 12 && head[9..12].iter().all(u8::is_ascii_digit)
}

/// The banner printed before and after a run whose SSM tests are skipped.
pub(crate) fn skip_banner(reason: &str) -> String {
    let rule = "!".repeat(88);
    [
        rule.clone(),
        "!!  AWS SSM TESTS ARE SKIPPED: this run does NOT test the aws-ssm credential store on moto.".to_owned(),
        format!(
            "!!  moto could not be set up: {}",
            reason.lines().next().unwrap_or(reason)
        ),
        "!!  Skipped: the tests that need moto (custodian-store-ssm's, and the server's end-to-end".to_owned(),
        "!!    test with CUSTODIAN_CREDENTIAL_STORE=aws-ssm); each prints".to_owned(),
        "!!    `SKIPPED (moto): <test>` and passes without testing anything.".to_owned(),
        "!!  To run them: make `python3 -m venv` and `pip install \"moto[server]\"` work (python3-venv),".to_owned(),
        format!("!!    or start `moto_server -p PORT` and set {MOTO_URL_ENV}=http://127.0.0.1:PORT,"),
        "!!    then run `cargo xtask test` again. In CI (CI=true) this is an error, not a skip.".to_owned(),
        rule,
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_venv_lives_under_the_target_dir() {
        let venv = venv(Path::new("/cache/target"));
        assert_eq!(venv.dir, PathBuf::from("/cache/target/moto-venv"));
        assert_eq!(venv.python(), PathBuf::from("/cache/target/moto-venv/bin/python"));
        assert_eq!(
            moto_server(&venv),
            PathBuf::from("/cache/target/moto-venv/bin/moto_server")
        );
    }

    #[test]
    fn a_venv_without_moto_is_not_reused() {
        let dir = std::env::temp_dir().join(format!("xtask-moto-{}", std::process::id()));
        assert_eq!(working_moto_version(&venv(&dir)), None);
    }

    #[test]
    fn status_lines_are_recognised() {
        assert!(is_http_status_line(b"HTTP/1.1 200 OK\r\n"));
        assert!(is_http_status_line(b"HTTP/1.0 404 NOT"));
        assert!(!is_http_status_line(b"SSH-2.0-OpenSSH"));
        assert!(!is_http_status_line(b"HTTP/1.1"));
        assert!(!is_http_status_line(b""));
    }

    /// A port `free_port` answers can be bound again. Another process, or a test running
    /// beside this one, may take one between the answer and the bind; three such races in
    /// a row would mean the answers were not free.
    #[test]
    fn a_free_port_can_be_bound() {
        let mut refused = Vec::new();
        for _ in 0..3 {
            let port = free_port().unwrap();
            assert_ne!(port, 0);
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(_) => return,
                Err(e) => refused.push(format!("{port}: {e}")),
            }
        }
        panic!("no port free_port answered could be bound: {refused:?}");
    }

    #[test]
    fn the_probe_needs_an_http_answer() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for answer in [
                &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
                b"garbage garbage!",
            ] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 256];
                let _ = stream.read(&mut request).unwrap();
                stream.write_all(answer).unwrap();
            }
        });
        assert_eq!(probe(address), Ok(()));
        assert!(probe(address).unwrap_err().contains("not an HTTP answer"));
        server.join().unwrap();
        let closed = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().unwrap()));
        assert!(probe(closed).unwrap_err().starts_with("connect"));
    }

    #[test]
    fn waiting_stops_when_the_child_exits_and_the_guard_reaps_it() {
        let closed = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().unwrap()));
        let mut exits = ChildGuard(Some(Command::new("true").spawn().unwrap()));
        let error = wait_until_answers(closed, &mut exits, Duration::from_secs(60)).unwrap_err();
        assert!(error.to_string().contains("exited"), "{error}");

        let mut sleeper = ChildGuard(Some(Command::new("sleep").arg("600").spawn().unwrap()));
        assert_eq!(sleeper.exited(), None, "still running");
        sleeper.stop();
        assert!(sleeper.0.is_none(), "stopped and reaped");
    }

    /// [`MotoServer::start`] on a script just written. Linux refuses to run a file that a
    /// process still holds open for writing ("Text file busy"): a child forked by a test
    /// running in parallel can hold the script's descriptor until its own exec, so that
    /// refusal alone is tried again, briefly.
    fn start_fresh(venv: &Venv) -> Result<MotoServer> {
        let mut tries = 0;
        loop {
            match MotoServer::start(venv, &venv.dir.join("server.log")) {
                Err(error) if tries < 20 && format!("{error:#}").contains("Text file busy") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// A venv whose `moto_server` is the given shell script (called `-H HOST -p PORT`).
    fn fake_venv(name: &str, script: &str) -> Venv {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("xtask-moto-{name}-{}", std::process::id()));
        let venv = venv(&dir);
        std::fs::create_dir_all(venv.dir.join("bin")).unwrap();
        std::fs::write(moto_server(&venv), format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(moto_server(&venv), std::fs::Permissions::from_mode(0o755)).unwrap();
        venv
    }

    #[test]
    fn a_started_server_answers_on_its_url_and_is_gone_once_stopped() {
        // Any HTTP server on the port stands in for moto here.
        let venv = fake_venv("http", r#"exec python3 -m http.server --bind "$2" "$4""#);
        let server = start_fresh(&venv).unwrap();
        let address: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
        assert!(address.ip().is_loopback());
        assert_eq!(probe(address), Ok(()));
        server.stop();
        assert!(probe(address).is_err(), "nothing answers after stop");
        std::fs::remove_dir_all(venv.dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_server_that_exits_at_once_fails_with_its_output() {
        let venv = fake_venv("exits", "echo 'Address already in use' >&2; exit 3");
        let error = start_fresh(&venv).unwrap_err().to_string();
        assert!(error.contains("moto_server did not start"), "{error}");
        assert_eq!(
            error.matches("exited").count(),
            PORT_TRIES,
            "every port is tried: {error}"
        );
        assert!(
            error.contains("Address already in use"),
            "the log's last lines: {error}"
        );
        std::fs::remove_dir_all(venv.dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_skip_banner_says_what_is_skipped_and_how_to_enable_it() {
        let banner = skip_banner("`python3 -m venv` failed: ensurepip is not available\nsecond-line-detail");
        assert!(banner.contains("AWS SSM TESTS ARE SKIPPED"));
        assert!(banner.contains("ensurepip is not available"));
        assert!(
            !banner.contains("second-line-detail"),
            "only the first line of the reason"
        );
        assert!(banner.contains(MOTO_URL_ENV));
        assert!(banner.contains("moto[server]"));
        assert!(banner.contains("CI=true"));
    }

    #[test]
    fn a_script_whose_interpreter_is_gone_does_not_count_as_working() {
        let dir = std::env::temp_dir().join(format!("xtask-moto-shebang-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gone = dir.join("gone");
        std::fs::write(&gone, "#!/nonexistent/venv/bin/python\nprint(1)\n").unwrap();
        assert!(!interpreter_exists(&gone));
        let here = dir.join("here");
        std::fs::write(&here, "#!/bin/sh\necho 1\n").unwrap();
        assert!(interpreter_exists(&here));
        assert!(!interpreter_exists(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
