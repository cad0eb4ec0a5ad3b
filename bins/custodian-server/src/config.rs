//! The server's configuration, read from `CUSTODIAN_*` environment variables.

use std::fmt;
use std::path::PathBuf;

/// Where the server listens and keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `host:port` to listen on (`CUSTODIAN_LISTEN`, default `127.0.0.1:8080`); port 0 picks
    /// a free port.
    pub bind: String,
    /// The keyring and the SQLite database live here (`CUSTODIAN_DATA_DIR`, default
    /// `./custodian-data`).
    pub data_dir: PathBuf,
    /// `sqlite://<path>` or `postgres://…` (`CUSTODIAN_DATABASE_URL`, default
    /// `sqlite://<data_dir>/custodian.db`).
    pub database_url: String,
    /// The tenant's name (`CUSTODIAN_TENANT_NAME`, default `default`).
    pub tenant_name: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A PostgreSQL URL may hold a password: only its scheme is shown.
        let scheme = self.database_url.split_once("://").map_or("?", |(s, _)| s);
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &format_args!("{scheme}://[REDACTED]"))
            .field("tenant_name", &self.tenant_name)
            .finish()
    }
}

impl Config {
    /// The defaults over `data_dir`, listening on a free loopback port: what tests and
    /// embedders start from (`Config { database_url, ..Config::for_data_dir(dir) }`).
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            bind: "127.0.0.1:0".into(),
            database_url: format!("sqlite://{}", data_dir.join("custodian.db").display()),
            data_dir,
            tenant_name: "default".into(),
        }
    }

    /// The configuration of the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration `lookup` gives, each variable by its name; an empty value counts
    /// as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let data_dir = PathBuf::from(get("CUSTODIAN_DATA_DIR").unwrap_or_else(|| "./custodian-data".into()));
        let database_url = get("CUSTODIAN_DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("custodian.db").display()));
        Self {
            bind: get("CUSTODIAN_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into()),
            data_dir,
            database_url,
            tenant_name: get("CUSTODIAN_TENANT_NAME").unwrap_or_else(|| "default".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_put_everything_in_the_data_dir() {
        let c = config(&[]);
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./custodian-data"));
        assert_eq!(c.database_url, "sqlite://./custodian-data/custodian.db");
        assert_eq!(c.tenant_name, "default");
    }

    #[test]
    fn the_database_follows_the_data_dir_unless_set() {
        let c = config(&[
            ("CUSTODIAN_DATA_DIR", "/srv/custodian"),
            ("CUSTODIAN_LISTEN", "0.0.0.0:9000"),
        ]);
        assert_eq!(c.database_url, "sqlite:///srv/custodian/custodian.db");
        assert_eq!(c.bind, "0.0.0.0:9000");
        let c = config(&[
            ("CUSTODIAN_DATA_DIR", "/srv/custodian"),
            ("CUSTODIAN_DATABASE_URL", "postgres://app:hunter2@db/custodian"),
            ("CUSTODIAN_TENANT_NAME", ""),
        ]);
        assert_eq!(c.database_url, "postgres://app:hunter2@db/custodian");
        assert_eq!(c.tenant_name, "default");
    }

    #[test]
    fn debug_never_shows_the_database_password() {
        let c = config(&[("CUSTODIAN_DATABASE_URL", "postgres://app:hunter2@db/custodian")]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://"), "{shown}");
    }
}
