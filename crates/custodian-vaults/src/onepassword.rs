//! The 1Password adapter: the `op` CLI run with the connection's service-account token.
//!
//! 1Password offers no public REST API for service-account tokens, so the adapter runs
//! `op` (2.18.0 or later) as a child process:
//!
//! - **Environment**: cleared, then only `OP_SERVICE_ACCOUNT_TOKEN` (the connection's
//!   token), `HOME` and `OP_CONFIG_DIR` pointed at a private directory made for the call and
//!   removed after it, `OP_CACHE=false` and `OP_BIOMETRIC_UNLOCK_ENABLED=false`. Nothing of
//!   the service's own environment reaches `op`: in particular not `OP_CONNECT_HOST` /
//!   `OP_CONNECT_TOKEN`, which would take precedence over the token. The token is never
//!   in argv. stdin is null, the child is killed on drop and when the configured timeout
//!   passes.
//! - **fetch**: the references `op inject`'s template syntax can carry (segments of letters,
//!   digits, `-`, `_`, `.`; no query) are read together in **one** `op inject --in-file`,
//!   with a template that puts a random marker between the values, so values may hold any
//!   text. A reference with a space or a `?query` (both valid in 1Password's references) is
//!   outside that syntax and is read alone with `op read --no-newline`. When `op inject`
//!   reports a missing item, vault or field, each reference is read alone in order, so the
//!   error names the first missing one.
//! - **verify**: `op vault list --format json`, an authenticated read that costs one request.
//!
//! `op` exits non-zero and writes `[ERROR] <date> <time> <message>` to stderr on failure;
//! the message decides the error: a token it cannot decode or a `(401)` → `AuthFailed`,
//! `(429) Too Many Requests` → `RateLimited` (with "retry in N minutes" as `retry_after`),
//! "isn't an item/vault", "does not have a field", "could not find" → `ReferenceNotFound`,
//! anything else → `Unavailable`. No error, log line or `Debug` output holds the token,
//! stdout or a value; an `Unavailable` message may quote one line of stderr, with anything
//! that looks like a service-account token cut out.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use custodian_domain::{VaultReference, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

const PROVIDER: VaultType = VaultType::OnePassword;

/// The 1Password adapter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnePasswordConfig {
    /// The `op` executable: a bare name is looked up on the service's `PATH`.
    pub op_path: PathBuf,
    /// How long one `op` process may run before it is killed.
    pub timeout: Duration,
}

impl Default for OnePasswordConfig {
    fn default() -> Self {
        Self {
            op_path: PathBuf::from("op"),
            timeout: Duration::from_secs(15),
        }
    }
}

/// The 1Password adapter.
#[derive(Debug)]
pub struct OnePasswordProvider {
    config: OnePasswordConfig,
}

impl OnePasswordProvider {
    pub fn new(config: OnePasswordConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl VaultProvider for OnePasswordProvider {
    fn vault_type(&self) -> VaultType {
        PROVIDER
    }

    async fn verify(&self, access: &VaultAccess) -> Result<(), VaultError> {
        let session = Session::new()?;
        let token = access.secret.expose();
        let args = ["vault", "list", "--format", "json"].map(OsString::from);
        let stdout = match self.run(&session, token, &args).await {
            Ok(stdout) => stdout,
            Err(failure) => return Err(failure.into_error(token, None)),
        };
        match serde_json::from_slice::<serde_json::Value>(&stdout) {
            Ok(serde_json::Value::Array(_)) => Ok(()),
            _ => Err(unavailable("op vault list did not print a JSON list")),
        }
    }

    async fn fetch(
        &self,
        access: &VaultAccess,
        references: &[VaultReference],
        // `op` runs with OP_CACHE=false and the adapter keeps nothing between calls: every
        // fetch reads from 1Password.
        _freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let session = Session::new()?;
        let token = access.secret.expose();
        let mut values: Vec<Option<SecretString>> = references.iter().map(|_| None).collect();

        let batch: Vec<usize> = (0..references.len())
            .filter(|&i| injectable(references[i].as_str()))
            .collect();
        if batch.len() >= 2 {
            match self.inject(&session, token, references, &batch).await {
                Ok(read) => {
                    for (i, value) in batch.iter().zip(read) {
                        values[*i] = Some(value);
                    }
                }
                // Which reference is missing: read them one by one below, in order.
                Err(Failure::Op(OpFailure::NotFound)) => {}
                Err(failure) => return Err(failure.into_error(token, None)),
            }
        }
        for (i, reference) in references.iter().enumerate() {
            if values[i].is_none() {
                values[i] = Some(self.read(&session, token, reference).await?);
            }
        }
        Ok(values.into_iter().flatten().collect())
    }
}

impl OnePasswordProvider {
    /// `op read --no-newline <reference>`: exactly the value, nothing appended.
    async fn read(
        &self,
        session: &Session,
        token: &SecretString,
        reference: &VaultReference,
    ) -> Result<SecretString, VaultError> {
        let args = ["read", "--no-newline", reference.as_str()].map(OsString::from);
        let stdout = self
            .run(session, token, &args)
            .await
            .map_err(|f| f.into_error(token, Some(reference)))?;
        let text = utf8(stdout)?;
        Ok(SecretString::from(text.as_str()))
    }

    /// One `op inject` for the references at `batch`: a template of each reference between
    /// markers, the markers split the output back into values.
    async fn inject(
        &self,
        session: &Session,
        token: &SecretString,
        references: &[VaultReference],
        batch: &[usize],
    ) -> Result<Vec<SecretString>, Failure> {
        let marker = marker();
        let mut template = String::new();
        for &i in batch {
            template.push_str(&marker);
            template.push_str("{{ ");
            template.push_str(references[i].as_str());
            template.push_str(" }}");
        }
        template.push_str(&marker);
        let path = session.dir.path().join("references.tpl");
        std::fs::write(&path, template).map_err(|e| Failure::Io("could not write the op inject template", e))?;

        let args = [
            OsString::from("inject"),
            OsString::from("--in-file"),
            path.into_os_string(),
        ];
        let stdout = self.run(session, token, &args).await?;
        let text = utf8(stdout).map_err(Failure::Vault)?;
        let parts: Vec<&str> = text.split(marker.as_str()).collect();
        // "" before the first marker, one part per value, what follows the last marker.
        let well_formed = parts.len() == batch.len() + 2
            && parts.first().is_some_and(|p| p.is_empty())
            && parts.last().is_some_and(|p| p.trim().is_empty());
        if !well_formed {
            return Err(Failure::Vault(unavailable("op inject printed an unexpected shape")));
        }
        Ok(parts[1..=batch.len()].iter().map(|v| SecretString::from(*v)).collect())
    }

    /// Run `op args…` in `session` with `token`; its stdout when it exits 0.
    async fn run(
        &self,
        session: &Session,
        token: &SecretString,
        args: &[OsString],
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let mut command = Command::new(&self.config.op_path);
        command
            .args(args)
            .env_clear()
            .env("OP_SERVICE_ACCOUNT_TOKEN", token.expose_secret())
            .env("HOME", session.dir.path())
            .env("OP_CONFIG_DIR", &session.config_dir)
            .env("OP_CACHE", "false")
            .env("OP_BIOMETRIC_UNLOCK_ENABLED", "false")
            .current_dir(session.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| Failure::Spawn(self.config.op_path.clone(), e))?;
        let stdout_pipe = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        let mut stdout = Zeroizing::new(Vec::new());
        let mut stderr = Zeroizing::new(Vec::new());
        let finished = tokio::time::timeout(self.config.timeout, async {
            let (out, err, status) = tokio::join!(
                read_capped(stdout_pipe, &mut stdout, MAX_STDOUT),
                read_capped(stderr_pipe, &mut stderr, MAX_STDERR),
                child.wait(),
            );
            out.and(err).and(status)
        })
        .await;
        let status: ExitStatus = match finished {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                let _ = child.kill().await;
                return Err(Failure::Io("could not read what op printed", e));
            }
            Err(_elapsed) => {
                // Kill and reap it: nothing of it outlives the call.
                let _ = child.kill().await;
                return Err(Failure::Timeout(self.config.timeout));
            }
        };
        if status.success() {
            Ok(stdout)
        } else {
            drop(stdout);
            Err(Failure::Op(classify(status, &String::from_utf8_lossy(&stderr))))
        }
    }
}

/// The most `op` may print on stdout (the values of one call) and on stderr (a message)
/// before the call fails, so that a misbehaving `op` cannot fill the server's memory.
/// 1Password items hold fields of kilobytes; a megabyte is far above any call's answer.
const MAX_STDOUT: u64 = 1 << 20;
const MAX_STDERR: u64 = 64 << 10;

/// Read `pipe` to its end into `into`, or fail once it gave more than `cap` bytes. The
/// pipe is closed when this returns, so an `op` still writing ends on a broken pipe.
///
/// What `op` prints holds the values it read, so no copy of it is left behind unzeroed:
/// when `into` is full, its bytes move to a buffer twice as large and the old buffer is
/// dropped, which zeroes it (a `Vec` growing in place would free the old copy as it is).
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, into: &mut Zeroizing<Vec<u8>>, cap: u64) -> io::Result<()> {
    let Some(pipe) = pipe else {
        return Ok(());
    };
    let mut pipe = pipe.take(cap.saturating_add(1));
    let mut chunk = Zeroizing::new([0u8; 8 << 10]);
    loop {
        let read = pipe.read(&mut chunk[..]).await?;
        if read == 0 {
            break;
        }
        let needed = into.len() + read;
        if needed > into.capacity() {
            let mut larger = Zeroizing::new(Vec::with_capacity(needed.max(into.capacity() * 2)));
            larger.extend_from_slice(into);
            // The old buffer is zeroed as it is dropped.
            *into = larger;
        }
        into.extend_from_slice(&chunk[..read]);
    }
    if u64::try_from(into.len()).unwrap_or(u64::MAX) > cap {
        return Err(io::Error::other(format!("op printed more than {cap} bytes")));
    }
    Ok(())
}

fn utf8(stdout: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>, VaultError> {
    std::str::from_utf8(&stdout)
        .map(|s| Zeroizing::new(s.to_owned()))
        .map_err(|_| unavailable("op printed a value that is not UTF-8"))
}

fn unavailable(message: impl Into<String>) -> VaultError {
    VaultError::Unavailable {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// A private directory for one call: `op`'s `HOME` and, inside it, its `OP_CONFIG_DIR`
/// (mode 0700, as `op` wants). Removed when dropped.
struct Session {
    dir: tempfile::TempDir,
    config_dir: PathBuf,
}

impl Session {
    fn new() -> Result<Self, VaultError> {
        let dir = tempfile::Builder::new()
            .prefix("custodian-op-")
            .tempdir()
            .map_err(|_| unavailable("could not create a private directory for op"))?;
        let config_dir = dir.path().join("config");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&config_dir)
            .map_err(|_| unavailable("could not create a private directory for op"))?;
        Ok(Self { dir, config_dir })
    }
}

/// Whether `reference` fits `op inject`'s template syntax: `op://` and segments of ASCII
/// letters, digits, `-`, `_` and `.` (developer.1password.com/docs/cli/secrets-template-syntax:
/// a reference ends at the first other character, so a space or a `?query` cannot be
/// carried).
fn injectable(reference: &str) -> bool {
    reference.strip_prefix("op://").is_some_and(|path| {
        path.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
    })
}

/// A marker no value will hold by chance: 128 bits from the standard library's randomly
/// keyed hasher, in characters the template syntax leaves alone.
fn marker() -> String {
    use std::hash::{BuildHasher, Hasher};
    let half = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish()
    };
    format!("\n--custodian-{:016x}{:016x}--\n", half(), half())
}

/// Why a run failed, before it is told which reference it was about.
#[derive(Debug)]
enum Failure {
    Spawn(PathBuf, io::Error),
    Io(&'static str, io::Error),
    Timeout(Duration),
    Op(OpFailure),
    Vault(VaultError),
}

/// What `op`'s exit status and stderr say.
#[derive(Debug, PartialEq, Eq)]
enum OpFailure {
    Auth,
    RateLimited(Option<Duration>),
    NotFound,
    Other { status: String, stderr: String },
}

impl Failure {
    fn into_error(self, token: &SecretString, reference: Option<&VaultReference>) -> VaultError {
        match self {
            Failure::Spawn(path, e) if e.kind() == io::ErrorKind::NotFound => {
                unavailable(format!("op was not found at {}", path.display()))
            }
            Failure::Spawn(path, e) => unavailable(format!("op at {} could not be started: {e}", path.display())),
            Failure::Io(what, e) => unavailable(format!("{what}: {e}")),
            Failure::Timeout(timeout) => unavailable(format!("op did not finish within {timeout:?} and was killed")),
            Failure::Op(OpFailure::Auth) => VaultError::AuthFailed { provider: PROVIDER },
            Failure::Op(OpFailure::RateLimited(retry_after)) => VaultError::RateLimited {
                provider: PROVIDER,
                retry_after,
            },
            Failure::Op(OpFailure::NotFound) => match reference {
                Some(reference) => VaultError::ReferenceNotFound {
                    provider: PROVIDER,
                    reference: reference.to_string(),
                },
                None => unavailable("op could not find a reference"),
            },
            Failure::Op(OpFailure::Other { status, stderr }) => {
                let excerpt = redact(&stderr, token.expose_secret());
                if excerpt.is_empty() {
                    unavailable(format!("op exited with {status}"))
                } else {
                    unavailable(format!("op exited with {status}: {excerpt}"))
                }
            }
            Failure::Vault(error) => error,
        }
    }
}

/// Classify a failed run by its stderr (`[ERROR] <date> <time> <message>`). Quoted text
/// (the reference, a vault, item or field name) is left out first: a team's item called
/// "rate limit" must not make a missing item look rate limited.
fn classify(status: ExitStatus, stderr: &str) -> OpFailure {
    let lower = unquoted(stderr).to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(&["(429)", "too many requests", "rate limit", "rate-limit"]) {
        OpFailure::RateLimited(retry_after(&lower))
    } else if has(&[
        "(401)",
        "unauthorized",
        "decodesacredentials",
        "parsetoken",
        "invalid service account token",
        "signin credentials are not compatible",
        "authentication required",
    ]) {
        OpFailure::Auth
    } else if has(&[
        "isn't an item",
        "isn't a vault",
        "isn't a field",
        "isn't a section",
        "does not have a field",
        "does not have a section",
        "could not find",
        "no item found",
    ]) {
        OpFailure::NotFound
    } else {
        let status = match status.code() {
            Some(code) => format!("status {code}"),
            None => "a signal".to_owned(),
        };
        OpFailure::Other {
            status,
            stderr: first_line(stderr),
        }
    }
}

/// `text` without its quoted parts: a `'` or `"` that starts the text or follows
/// whitespace opens a quote, the same character followed by the end, whitespace or
/// `:.,;)` closes it (so the apostrophes of "isn't" and "You've" are not quotes).
fn unquoted(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let opens = matches!(c, '\'' | '"') && (i == 0 || chars[i - 1].is_whitespace());
        let close = opens
            .then(|| {
                (i + 1..chars.len()).find(|&j| {
                    chars[j] == c
                        && chars
                            .get(j + 1)
                            .is_none_or(|n| n.is_whitespace() || matches!(n, ':' | '.' | ',' | ';' | ')'))
                })
            })
            .flatten();
        match close {
            Some(j) => {
                out.push_str("\"…\"");
                i = j + 1;
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// "Please retry in 58 minutes" / "try again in 10 seconds" → the duration.
fn retry_after(lower: &str) -> Option<Duration> {
    let start = ["retry in ", "try again in "]
        .iter()
        .find_map(|p| lower.find(p).map(|at| at + p.len()))?;
    let mut words = lower[start..].split_whitespace();
    let amount: u64 = words.next()?.parse().ok()?;
    let unit = words.next()?;
    let seconds = if unit.starts_with("second") {
        amount
    } else if unit.starts_with("minute") {
        amount.checked_mul(60)?
    } else if unit.starts_with("hour") {
        amount.checked_mul(3600)?
    } else {
        return None;
    };
    Some(Duration::from_secs(seconds))
}

/// The first non-empty line of stderr without `op`'s `[ERROR] <date> <time>` prefix, at
/// most 200 characters.
fn first_line(stderr: &str) -> String {
    let line = stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let line = match line.strip_prefix("[ERROR]") {
        Some(rest) => {
            let mut words = rest.trim_start().splitn(3, ' ');
            let (date, time, message) = (words.next(), words.next(), words.next());
            let looks_like_stamp = date.is_some_and(|d| d.contains('/')) && time.is_some_and(|t| t.contains(':'));
            match (looks_like_stamp, message) {
                (true, Some(message)) => message,
                _ => rest.trim_start(),
            }
        }
        None => line,
    };
    line.chars().take(200).collect()
}

/// `text` without `token` and without anything shaped like a service-account token
/// (`ops_` up to the next space or quote).
fn redact(text: &str, token: &str) -> String {
    let text = if token.is_empty() {
        text.to_owned()
    } else {
        text.replace(token, "[REDACTED]")
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("ops_") {
        out.push_str(&rest[..at]);
        out.push_str("[REDACTED]");
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ')'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn failed() -> ExitStatus {
        ExitStatus::from_raw(1 << 8)
    }

    /// The stderr texts `op` is known to print map to their errors (1Password's documentation,
    /// and the messages quoted in 1Password/load-secrets-action#74 and pyonepassword#137).
    #[test]
    fn stderr_decides_the_error() {
        let rate = "[ERROR] 2023/06/26 11:55:32 (429) Too Many Requests: You've reached the maximum number of \
                    this type of requests this service account is allowed to make. Please retry in 58 minutes \
                    or try other requests.";
        assert_eq!(
            classify(failed(), rate),
            OpFailure::RateLimited(Some(Duration::from_secs(58 * 60)))
        );
        let bad_token = "[ERROR] 2024/07/02 10:00:00 could not read secret 'op://v/i/f': error initializing \
                         client: Validation: (failed to session.DecodeSACredentials), Server: (failed to \
                         DecodeSACredentials), failed to parseToken, format is invalid";
        assert_eq!(classify(failed(), bad_token), OpFailure::Auth);
        let missing = "[ERROR] 2024/07/02 10:00:00 could not read secret 'op://v/nope/f': \"nope\" isn't an \
                       item in the \"v\" vault. Specify the item with its UUID, name, or domain.";
        assert_eq!(classify(failed(), missing), OpFailure::NotFound);
        let named_like_errors = "[ERROR] 2024/07/02 10:00:00 could not read secret 'op://v/rate limit/f': \
                                 \"rate limit\" isn't an item in the \"unauthorized\" vault.";
        assert_eq!(classify(failed(), named_like_errors), OpFailure::NotFound);
        let field = "[ERROR] 2024/07/02 10:00:00 item 'v/too many requests' does not have a field 'x'";
        assert_eq!(classify(failed(), field), OpFailure::NotFound);
        assert_eq!(
            classify(failed(), "[ERROR] 2024/07/02 10:00:00 something broke\nmore"),
            OpFailure::Other {
                status: "status 1".into(),
                stderr: "something broke".into()
            }
        );
    }

    /// Anything shaped like a service-account token is cut out of a quoted stderr line.
    #[test]
    fn redact_cuts_tokens() {
        assert_eq!(
            redact("bad token ops_eyJabc== here, and 'ops_x'", "ops_eyJabc=="),
            "bad token [REDACTED] here, and '[REDACTED]'"
        );
    }

    /// Only references of letters, digits, `-`, `_`, `.` go through `op inject`.
    #[test]
    fn injectable_follows_the_template_syntax() {
        assert!(injectable("op://prod/s3-creds/aws.keys/access_key_id"));
        assert!(!injectable("op://prod/my item/password"));
        assert!(!injectable("op://prod/item/one-time password?attribute=otp"));
        assert!(!injectable("op://prod/item/otp?attribute=otp"));
    }

    /// What `op` prints is read whole across the buffer's growth (from 8 KiB reads to many
    /// times that), and refused past the cap.
    #[tokio::test]
    async fn stdout_is_read_whole_across_growth_and_refused_past_the_cap() {
        let printed: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        let mut into = Zeroizing::new(Vec::new());
        read_capped(Some(&printed[..]), &mut into, MAX_STDOUT)
            .await
            .expect("under the cap");
        assert_eq!(into.as_slice(), printed.as_slice());

        let mut into = Zeroizing::new(Vec::new());
        let refused = read_capped(Some(&printed[..]), &mut into, 100_000).await.unwrap_err();
        assert!(refused.to_string().contains("more than 100000 bytes"), "{refused}");

        let mut into = Zeroizing::new(Vec::new());
        read_capped(None::<&[u8]>, &mut into, MAX_STDOUT)
            .await
            .expect("no pipe");
        assert!(into.is_empty());
    }
}
