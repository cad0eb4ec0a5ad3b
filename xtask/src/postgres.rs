//! Finding PostgreSQL for the tests: probe the admin URL and, when the server is local and
//! down, start the machine's cluster with `pg_ctlcluster`.

use std::error::Error as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use custodian_test_db::{DATABASE_URL_ENV, DEFAULT_ADMIN_URL};
use tokio_postgres::config::Host;
use tokio_postgres::{Config, NoTls};

use crate::find_in_path;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a freshly started cluster gets to accept connections.
const START_WAIT: Duration = Duration::from_secs(15);
const CLUSTERS_DIR: &str = "/etc/postgresql";

/// The admin URL the tests will use, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminUrl {
    pub(crate) url: String,
    pub(crate) from_env: bool,
}

impl AdminUrl {
    /// `CUSTODIAN_TEST_DATABASE_URL`, or the default local server.
    pub(crate) fn from_env() -> AdminUrl {
        admin_url_from(std::env::var(DATABASE_URL_ENV).ok().as_deref())
    }

    pub(crate) fn origin(&self) -> String {
        if self.from_env {
            format!("from {DATABASE_URL_ENV}")
        } else {
            format!("the default; {DATABASE_URL_ENV} is unset")
        }
    }
}

fn admin_url_from(value: Option<&str>) -> AdminUrl {
    match value.map(str::trim) {
        Some(url) if !url.is_empty() => AdminUrl {
            url: url.to_owned(),
            from_env: true,
        },
        _ => AdminUrl {
            url: DEFAULT_ADMIN_URL.to_owned(),
            from_env: false,
        },
    }
}

/// What [`find_or_start`] found, with every step it tried (for the messages).
#[derive(Debug)]
pub(crate) struct Finding {
    pub(crate) reachable: bool,
    pub(crate) started_here: bool,
    pub(crate) attempts: Vec<String>,
}

/// Probes `url`; if that fails, the server is local and `pg_ctlcluster` exists, starts
/// the clusters under `/etc/postgresql` (failures ignored) and waits for the server.
pub(crate) fn find_or_start(url: &str) -> Finding {
    let mut attempts = Vec::new();
    match probe(url) {
        Ok(()) => {
            return Finding {
                reachable: true,
                started_here: false,
                attempts,
            };
        }
        Err(e) => attempts.push(format!("connect + SELECT 1: {e}")),
    }

    if !is_local(url) {
        attempts.push("no local cluster started: the URL names another host".to_owned());
        return unreachable(attempts);
    }
    let Some(pg_ctlcluster) = find_in_path("pg_ctlcluster") else {
        attempts.push("no cluster started: `pg_ctlcluster` is not on PATH".to_owned());
        return unreachable(attempts);
    };
    let versions = cluster_versions(Path::new(CLUSTERS_DIR));
    if versions.is_empty() {
        attempts.push(format!("no cluster started: nothing under {CLUSTERS_DIR}"));
        return unreachable(attempts);
    }
    for version in &versions {
        let shown = format!("`pg_ctlcluster --skip-systemctl-redirect {version} main start`");
        eprintln!("xtask: PostgreSQL is not reachable; trying {shown}");
        let result = Command::new(&pg_ctlcluster)
            .args(["--skip-systemctl-redirect", version, "main", "start"])
            .output();
        attempts.push(match result {
            Ok(output) if output.status.success() => format!("{shown}: ok"),
            Ok(output) => format!(
                "{shown}: {} {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(e) => format!("{shown}: could not run: {e}"),
        });
    }

    let started = Instant::now();
    loop {
        match probe(url) {
            Ok(()) => {
                eprintln!("xtask: PostgreSQL is up after {:.1} s", started.elapsed().as_secs_f32());
                return Finding {
                    reachable: true,
                    started_here: true,
                    attempts,
                };
            }
            Err(e) if started.elapsed() >= START_WAIT => {
                attempts.push(format!(
                    "connect + SELECT 1 again for {} s after starting: {e}",
                    START_WAIT.as_secs()
                ));
                return unreachable(attempts);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn unreachable(attempts: Vec<String>) -> Finding {
    Finding {
        reachable: false,
        started_here: false,
        attempts,
    }
}

/// Connects and runs `SELECT 1`, within a few seconds.
pub(crate) fn probe(url: &str) -> Result<(), String> {
    let mut config: Config = url.parse().map_err(|e| format!("invalid connection URL: {e}"))?;
    config.connect_timeout(PROBE_TIMEOUT);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a runtime: {e}"))?;
    runtime.block_on(async {
        let attempt = async {
            let (client, connection) = config.connect(NoTls).await?;
            let driver = tokio::spawn(connection);
            client.query_one("SELECT 1", &[]).await?;
            drop(client);
            let _ = driver.await;
            Ok::<(), tokio_postgres::Error>(())
        };
        match tokio::time::timeout(PROBE_TIMEOUT + Duration::from_secs(1), attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs() + 1)),
        }
    })
}

fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Whether every host of the URL is this machine (a cluster we could start).
fn is_local(url: &str) -> bool {
    let Ok(config) = url.parse::<Config>() else {
        return false;
    };
    config.get_hosts().iter().all(|host| {
        if let Host::Tcp(name) = host {
            matches!(name.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]")
        } else {
            true // a Unix socket is local
        }
    })
}

/// The version directories of Debian's PostgreSQL clusters (`/etc/postgresql/15`, …).
fn cluster_versions(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut versions: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    versions.sort();
    versions
}

/// `url` without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned(); // key=value strings are shown as given
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_url_comes_from_the_env_or_the_default() {
        assert_eq!(
            admin_url_from(None),
            AdminUrl {
                url: DEFAULT_ADMIN_URL.to_owned(),
                from_env: false
            }
        );
        assert_eq!(admin_url_from(Some("")).url, DEFAULT_ADMIN_URL);
        assert_eq!(
            admin_url_from(Some("postgres://u@db/admin")),
            AdminUrl {
                url: "postgres://u@db/admin".to_owned(),
                from_env: true
            }
        );
    }

    #[test]
    fn only_local_servers_are_started() {
        assert!(is_local(DEFAULT_ADMIN_URL));
        assert!(is_local("postgres://postgres@localhost/postgres"));
        assert!(is_local("host=/var/run/postgresql user=postgres"));
        assert!(!is_local("postgres://postgres@db.internal:5432/postgres"));
        assert!(!is_local("not a url"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?x=a@b"), "postgres://h/db?x=a@b");
    }

    #[test]
    fn an_unreachable_server_is_reported_quickly() {
        let started = Instant::now();
        let error = probe("postgres://postgres@127.0.0.1:1/postgres").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(6));
        assert!(!error.is_empty());
    }

    #[test]
    fn cluster_versions_are_the_directories() {
        let dir = std::env::temp_dir().join(format!("xtask-clusters-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("16")).unwrap();
        std::fs::create_dir_all(dir.join("15")).unwrap();
        std::fs::write(dir.join("README"), "").unwrap();
        assert_eq!(cluster_versions(&dir), ["15", "16"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(cluster_versions(&dir).is_empty());
    }
}
