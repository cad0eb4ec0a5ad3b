//! The server's configuration: defaults < TOML file (`--config PATH` or `CUSTODIAN_CONFIG`)
//! < `CUSTODIAN_*` environment variables (nested keys joined with `__`). Every setting also
//! accepts `CUSTODIAN_<NAME>_FILE`, the path of a file holding its value (meant for the
//! secrets).
//!
//! [`Config`] is the one description of the settings: its serde derives read the merged
//! layers and write `config print`, and the variables' names are derived from it. A new
//! setting is one field with its doc comment, and its value in `Config::default`.
//!
//! The layers are merged by figment; the environment is passed in (not read from the
//! process inside) so the layering is tested without touching the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::Duration;
use custodian_core::{Settings, SubjectCacheSettings, VaultCacheSettings};
use custodian_domain::{Tier, TierLimits, TierTable};
use custodian_store_sql::Database;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of every configuration variable.
const ENV_PREFIX: &str = "CUSTODIAN_";
/// The variable naming the TOML file when `--config` does not.
pub const CONFIG_ENV: &str = "CUSTODIAN_CONFIG";
/// The variables of the test harnesses (`CUSTODIAN_TEST_DATABASE_URL`, …): not settings,
/// and not reported as unknown.
const TEST_ENV_PREFIX: &str = "CUSTODIAN_TEST_";
/// `CUSTODIAN_<NAME>_FILE` names a file holding the value of the setting `<NAME>`.
const FILE_SUFFIX: &str = "_FILE";
/// What `config print`, `Debug` and the logs show in place of a secret.
const REDACTED: &str = "[REDACTED]";
/// A tier limit without a bound, as the file spells it.
const UNLIMITED: &str = "unlimited";
/// The prefix of every SSM parameter name unless `ssm.prefix` says otherwise.
pub(crate) const DEFAULT_SSM_PREFIX: &str = "/custodian";

/// The server's effective configuration, read once at start and passed down (never a
/// global). Its serde form is the configuration file's: `Deserialize` reads the layers,
/// `Serialize` writes what `config print` shows, secrets redacted (`database_url` with only
/// its password hidden, `master_key` whole); `Debug` shows that same form.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `host:port` to listen on (`listen`, `CUSTODIAN_LISTEN`, default `127.0.0.1:8080`);
    /// port 0 picks a free port.
    #[serde(rename = "listen")]
    pub bind: String,
    /// The keyring and the SQLite database live here (`data_dir`, default
    /// `./custodian-data`).
    pub data_dir: PathBuf,
    /// `sqlite://<path>` or `postgres://…` (`database_url`, a secret: it may hold a
    /// password; default `sqlite://<data_dir>/custodian.db`). Shown with its password
    /// replaced by `[REDACTED]`, so an operator sees which database is used.
    #[serde(serialize_with = "redact::password")]
    pub database_url: SecretString,
    /// How many connections to the database a server keeps for requests
    /// (`database_pool_size`, default 10, at least 1). On SQLite they serve reads, and
    /// writes take turns on one more.
    pub database_pool_size: u32,
    /// The master key of the `local` credential store (`master_key`,
    /// `CUSTODIAN_MASTER_KEY` or `CUSTODIAN_MASTER_KEY_FILE`, a secret): the base64 of 32
    /// random bytes. When set, the keyring is derived from it and no `keyring.json` is
    /// used; unset (the default), the keyring is `<data_dir>/keyring.json`, created on
    /// first start. Never shown.
    #[serde(serialize_with = "redact::whole")]
    pub master_key: Option<SecretString>,
    /// Master keys configured before `master_key` (`previous_master_keys`, a list, or
    /// comma-separated in `CUSTODIAN_PREVIOUS_MASTER_KEYS`; secrets): values sealed under
    /// them still open, and `custodian keys rotate` re-wraps them under `master_key`. Once
    /// `custodian keys remove` has retired one, it can leave this list. Never shown.
    #[serde(serialize_with = "redact::list", deserialize_with = "secret_list")]
    pub previous_master_keys: Vec<SecretString>,
    /// The tenant's name (`tenant_name`, default `default`).
    pub tenant_name: String,
    /// The tier of a new team when its creator does not choose one (`default_tier`:
    /// `free`, `pro` or `enterprise`, default `enterprise`).
    #[serde(with = "text")]
    pub default_tier: Tier,
    /// How long a virtual account's old token keeps working after a regeneration that
    /// does not say (`token_grace_period`, seconds, default 0).
    #[serde(with = "seconds")]
    pub token_grace_period: Duration,
    /// The longest grace period a regeneration may ask for (`max_token_grace_period`,
    /// seconds, default 7 days).
    #[serde(with = "seconds")]
    pub max_token_grace_period: Duration,
    /// How long a request's body may take to arrive once its headers have
    /// (`request_body_timeout`, seconds, default 10); a body still incomplete then is
    /// answered 408 and its connection closed.
    #[serde(with = "seconds")]
    pub request_body_timeout: Duration,
    /// How old a stored credential value no row points at must be before the sweep removes
    /// it (`orphan_min_age`, seconds, default 3600, at least 60): longer than any request
    /// takes between storing a value and committing the row that points at it.
    #[serde(with = "seconds")]
    pub orphan_min_age: Duration,
    /// How often `serve` sweeps the credential store for values no row points at
    /// (`orphan_sweep_interval`, seconds, default 3600; 0 turns the sweep off, leaving it
    /// to `custodian gc`).
    #[serde(with = "seconds")]
    pub orphan_sweep_interval: Duration,
    /// How many refused authentications of unknown tokens a server records one by one each
    /// minute (`unknown_token_events_per_minute`, default 60); past it they are counted,
    /// and the count is recorded with the next one, so guessing cannot grow the audit
    /// trail without bound. Refusals of real tokens (revoked, expired) are always recorded.
    pub unknown_token_events_per_minute: u32,
    /// Whether reading secret-group values is turned off for every caller
    /// (`disable_secret_value_view`, default `false`): keys stay listed, value reads answer
    /// 403 `value_view_forbidden`.
    pub disable_secret_value_view: bool,
    /// Rate limits per client address and per token (`[rate_limit]`).
    pub rate_limit: RateLimitConfig,
    /// The cache of values resolution reads from vaults (`[vault_cache]`).
    pub vault_cache: VaultCacheConfig,
    /// How authenticated subjects, and teams' tiers, are remembered between requests
    /// (`[subject_cache]`).
    pub subject_cache: SubjectCacheConfig,
    /// Who may read `GET /metrics` (`[metrics]`).
    pub metrics: MetricsConfig,
    /// `text` or `json` (`log_format`).
    pub log_format: LogFormat,
    /// Where the first start writes the tenant admin's token (`first_token_file`, mode
    /// 0600), instead of printing it; unset (the default), it is printed once, to stderr
    /// with text logs and to stdout with JSON logs, never inside a log record.
    pub first_token_file: Option<PathBuf>,
    /// Where managed credentials are kept (`credential_store`: `local` or `aws-ssm`).
    pub credential_store: CredentialStoreKind,
    /// The `aws-ssm` store's settings (`[ssm]`), unused by the `local` store.
    pub ssm: SsmConfig,
    /// Where the vault providers are reached (`[vaults]`).
    pub vaults: VaultsConfig,
    /// The limits of each tier (`tiers.<tier>.<limit>`, a number or `"unlimited"`); a
    /// table sets only the limits it names.
    #[serde(with = "TierTableDef")]
    pub tiers: TierTable,
}

impl Default for Config {
    /// The built-in defaults, the lowest layer. A secret's default must be unset or hold
    /// nothing secret: the defaults reach figment through `Serialize`, which redacts.
    fn default() -> Self {
        let settings = Settings::default();
        let data_dir = PathBuf::from("./custodian-data");
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: default_database_url(&data_dir),
            database_pool_size: Database::DEFAULT_POOL_SIZE,
            data_dir,
            master_key: None,
            previous_master_keys: Vec::new(),
            tenant_name: settings.tenant_name,
            default_tier: settings.default_tier,
            token_grace_period: settings.token_grace_period,
            max_token_grace_period: settings.max_token_grace_period,
            request_body_timeout: Duration::seconds(10),
            orphan_min_age: Duration::hours(1),
            orphan_sweep_interval: Duration::hours(1),
            unknown_token_events_per_minute: settings.unknown_token_events_per_minute,
            disable_secret_value_view: settings.disable_secret_value_view,
            rate_limit: RateLimitConfig::default(),
            vault_cache: VaultCacheConfig::default(),
            subject_cache: SubjectCacheConfig::default(),
            metrics: MetricsConfig::default(),
            log_format: LogFormat::default(),
            first_token_file: None,
            credential_store: CredentialStoreKind::default(),
            ssm: SsmConfig::default(),
            vaults: VaultsConfig::default(),
            tiers: settings.tiers,
        }
    }
}

/// How log lines are written to stderr (`log_format`, `CUSTODIAN_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where managed credentials are kept (`credential_store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialStoreKind {
    /// Envelope-encrypted in the database under the keyring of the data directory.
    #[default]
    Local,
    /// One SecureString parameter per credential version in AWS SSM Parameter Store,
    /// configured by the `[ssm]` table.
    AwsSsm,
}

impl CredentialStoreKind {
    /// Every spelling the configuration accepts.
    pub const ALL: [CredentialStoreKind; 2] = [CredentialStoreKind::Local, CredentialStoreKind::AwsSsm];

    /// The spelling in the configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialStoreKind::Local => "local",
            CredentialStoreKind::AwsSsm => "aws-ssm",
        }
    }
}

/// Where the `aws-ssm` credential store keeps its parameters (the `[ssm]` table,
/// `CUSTODIAN_SSM__*`). Read and checked whatever the credential store, used only when it
/// is `aws-ssm`. AWS credentials are not settings: they come from the SDK's standard chain
/// (environment, profile, web identity, ECS, instance metadata). A blank value counts as
/// unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsmConfig {
    /// AWS region (`ssm.region`); `None` takes the SDK's chain (`AWS_REGION`, profile).
    #[serde(deserialize_with = "blank_is_none")]
    pub region: Option<String>,
    /// Another endpoint than AWS's (`ssm.endpoint_url`, `http://` or `https://`): a VPC
    /// endpoint, moto, LocalStack.
    #[serde(deserialize_with = "blank_is_none")]
    pub endpoint_url: Option<String>,
    /// The absolute path every parameter name starts with (`ssm.prefix`, default
    /// `/custodian`).
    pub prefix: String,
    /// The KMS key (id, ARN or alias) encrypting the parameters (`ssm.kms_key_id`);
    /// `None` is SSM's default key `alias/aws/ssm`.
    #[serde(deserialize_with = "blank_is_none")]
    pub kms_key_id: Option<String>,
}

/// Where the vault providers are reached (`[vaults]`): their API URLs (or the `op`
/// executable) and timeouts, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct VaultsConfig {
    pub doppler: DopplerConfig,
    pub infisical: InfisicalConfig,
    pub onepassword: OnePasswordConfig,
}

/// Doppler (`[vaults.doppler]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DopplerConfig {
    /// Doppler's API (`vaults.doppler.api_url`, default `https://api.doppler.com`).
    pub api_url: String,
    /// Seconds one request may take (`vaults.doppler.timeout`, default 10).
    pub timeout: u64,
}

impl Default for DopplerConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.doppler.com".into(),
            timeout: 10,
        }
    }
}

/// Infisical (`[vaults.infisical]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfisicalConfig {
    /// Infisical's site (`vaults.infisical.api_url`, default `https://app.infisical.com`;
    /// a self-hosted instance's URL).
    pub api_url: String,
    /// Seconds one request may take (`vaults.infisical.timeout`, default 15).
    pub timeout: u64,
    /// Let an Infisical URL that a connection names reach loopback, private or link-local
    /// addresses, or use plain `http` (`vaults.infisical.allow_private_urls`, default
    /// `false`): for a self-hosted instance inside the network, never on by default.
    pub allow_private_urls: bool,
}

impl Default for InfisicalConfig {
    fn default() -> Self {
        Self {
            api_url: "https://app.infisical.com".into(),
            timeout: 15,
            allow_private_urls: false,
        }
    }
}

/// 1Password (`[vaults.onepassword]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnePasswordConfig {
    /// The `op` CLI (`vaults.onepassword.op_path`, default `op`, looked up on `PATH`).
    pub op_path: PathBuf,
    /// Seconds one `op` run may take before it is killed (`vaults.onepassword.timeout`,
    /// default 15).
    pub timeout: u64,
}

impl Default for OnePasswordConfig {
    fn default() -> Self {
        Self {
            op_path: PathBuf::from("op"),
            timeout: 15,
        }
    }
}

fn vault_url(setting: &str, value: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(value).map_err(|e| invalid(setting, format!("must be a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(setting, "must be an http:// or https:// URL"));
    }
    Ok(url)
}

fn timeout(setting: &str, seconds: u64) -> Result<std::time::Duration, ConfigError> {
    if seconds == 0 {
        return Err(invalid(setting, "must be at least 1 second"));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

impl VaultsConfig {
    /// The adapters' settings; a URL that is no URL or a zero timeout is refused.
    pub fn adapters(&self) -> Result<custodian_vaults::VaultsConfig, ConfigError> {
        Ok(custodian_vaults::VaultsConfig {
            doppler: custodian_vaults::DopplerConfig {
                api_url: vault_url("vaults.doppler.api_url", &self.doppler.api_url)?,
                request_timeout: timeout("vaults.doppler.timeout", self.doppler.timeout)?,
                ..custodian_vaults::DopplerConfig::default()
            },
            infisical: custodian_vaults::InfisicalConfig {
                api_url: vault_url("vaults.infisical.api_url", &self.infisical.api_url)?,
                request_timeout: timeout("vaults.infisical.timeout", self.infisical.timeout)?,
                allow_private_urls: self.infisical.allow_private_urls,
                ..custodian_vaults::InfisicalConfig::default()
            },
            onepassword: custodian_vaults::OnePasswordConfig {
                op_path: self.onepassword.op_path.clone(),
                timeout: timeout("vaults.onepassword.timeout", self.onepassword.timeout)?,
            },
        })
    }
}

/// Rate limits (`[rate_limit]`): past one, a request is answered 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per minute from one client address (`rate_limit.per_address_per_minute`,
    /// default 120; 0 turns it off).
    pub per_address_per_minute: u32,
    /// Requests per minute with one bearer token (`rate_limit.per_token_per_minute`,
    /// default 600; 0 turns it off).
    pub per_token_per_minute: u32,
    /// The addresses of the proxies in front of the servers
    /// (`rate_limit.trusted_proxies`, a list, or comma-separated in the variable): only
    /// from them is `X-Forwarded-For` believed. Default none.
    #[serde(deserialize_with = "address_list")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_address_per_minute: 120,
            per_token_per_minute: 600,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The resolution cache in front of the vault providers (`[vault_cache]`), in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultCacheConfig {
    /// How long values read from a vault are served (`vault_cache.ttl`, default 300; 0
    /// turns the cache off: every resolution asks the vault).
    pub ttl: u64,
    /// How long after that the last values are served while the vault fails
    /// (`vault_cache.stale_for`, default 3600).
    pub stale_for: u64,
    /// How long a reference the vault does not have is remembered
    /// (`vault_cache.negative_ttl`, default 30).
    pub negative_ttl: u64,
    /// Calls one vault connection may make to its provider per minute
    /// (`vault_cache.requests_per_minute`, default 60, at least 1).
    pub requests_per_minute: u32,
}

impl Default for VaultCacheConfig {
    fn default() -> Self {
        let defaults = VaultCacheSettings::default();
        Self {
            ttl: defaults.ttl.as_secs(),
            stale_for: defaults.stale_for.as_secs(),
            negative_ttl: defaults.negative_ttl.as_secs(),
            requests_per_minute: defaults.requests_per_minute,
        }
    }
}

impl VaultCacheConfig {
    /// The core's settings of this table.
    pub fn settings(&self) -> VaultCacheSettings {
        VaultCacheSettings {
            ttl: std::time::Duration::from_secs(self.ttl),
            stale_for: std::time::Duration::from_secs(self.stale_for),
            negative_ttl: std::time::Duration::from_secs(self.negative_ttl),
            requests_per_minute: self.requests_per_minute.max(1),
        }
    }
}

/// How authenticated subjects, and teams' tiers, are remembered between requests
/// (`[subject_cache]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubjectCacheConfig {
    /// Seconds a token's subject, or a team's tier, is served from memory before it is
    /// read again (`subject_cache.ttl`, default 10; 0 reads them on every request).
    pub ttl: u64,
    /// Milliseconds a change made through another server (a revocation, a disabled user,
    /// a changed tier) may go unseen by this one (`subject_cache.epoch_check_ms`, default
    /// 250).
    pub epoch_check_ms: u64,
    /// Seconds between two records of a token's use, `last_used_at`
    /// (`subject_cache.touch_interval`, default 60).
    pub touch_interval: u64,
    /// The most tokens remembered (`subject_cache.capacity`, default 100000).
    pub capacity: u64,
}

impl Default for SubjectCacheConfig {
    fn default() -> Self {
        let defaults = SubjectCacheSettings::default();
        Self {
            ttl: defaults.ttl.as_secs(),
            epoch_check_ms: u64::try_from(defaults.epoch_check_interval.as_millis()).unwrap_or(u64::MAX),
            touch_interval: defaults.touch_interval.as_secs(),
            capacity: defaults.capacity,
        }
    }
}

impl SubjectCacheConfig {
    /// The core's settings of this table.
    pub fn settings(&self) -> SubjectCacheSettings {
        SubjectCacheSettings {
            ttl: std::time::Duration::from_secs(self.ttl),
            epoch_check_interval: std::time::Duration::from_millis(self.epoch_check_ms),
            touch_interval: std::time::Duration::from_secs(self.touch_interval),
            capacity: self.capacity,
        }
    }
}

/// A list of secrets, given as a list or as one comma-separated string (base64 keys hold no
/// comma).
fn secret_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<SecretString>),
        Text(SecretString),
    }
    Ok(match Given::deserialize(deserializer)? {
        Given::List(items) => items,
        Given::Text(text) => text
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect(),
    })
}

/// A list of IP addresses, given as a list or as one comma-separated string.
/// The items of a list setting, given as a list or as one comma-separated string.
fn text_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        Text(String),
    }
    let items = match Given::deserialize(deserializer)? {
        Given::List(items) => items,
        Given::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    Ok(items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

fn address_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<std::net::IpAddr>, D::Error> {
    text_list(deserializer)?
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|_| D::Error::custom(format!("`{s}` is not an IP address")))
        })
        .collect()
}

/// Networks (`10.0.0.0/8`) or single addresses (`127.0.0.1`, taken as `/32` or `/128`).
fn network_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    text_list(deserializer)?
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| D::Error::custom(format!("`{s}` is not an IP address or network (10.0.0.0/8)")))
        })
        .collect()
}

/// Who may read `GET /metrics` (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// The networks a scraper may connect from (`metrics.scrapers`, a list, or
    /// comma-separated in the variable; default the loopback addresses `127.0.0.1/32` and
    /// `::1/128`; empty: nobody). The connection's own address counts, never
    /// `X-Forwarded-For`.
    #[serde(deserialize_with = "network_list")]
    pub scrapers: Vec<ipnet::IpNet>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            scrapers: vec![
                ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1])),
                ipnet::IpNet::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
        }
    }
}

impl Default for SsmConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            prefix: DEFAULT_SSM_PREFIX.to_owned(),
            kms_key_id: None,
        }
    }
}

impl SsmConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if !self.prefix.starts_with('/') {
            return Err(invalid("ssm.prefix", "must be an absolute path starting with `/`"));
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("ssm.endpoint_url", "must be an http:// or https:// URL"));
        }
        Ok(())
    }
}

/// The tier table as the file spells it (`[tiers.free]`, …), checked against the
/// domain's type by serde's remote derive.
#[derive(Serialize, Deserialize)]
#[serde(remote = "TierTable", deny_unknown_fields)]
struct TierTableDef {
    #[serde(with = "TierLimitsDef")]
    free: TierLimits,
    #[serde(with = "TierLimitsDef")]
    pro: TierLimits,
    #[serde(with = "TierLimitsDef")]
    enterprise: TierLimits,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "TierLimits", deny_unknown_fields)]
struct TierLimitsDef {
    #[serde(with = "limit")]
    storage_secrets: Option<u32>,
    #[serde(with = "limit")]
    vault_connections: Option<u32>,
    #[serde(with = "limit")]
    members: Option<u32>,
}

/// Why the configuration cannot be used. The message names the setting and, for a value
/// from a file or variable, where it came from; it never holds a value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` or `CUSTODIAN_CONFIG` names no readable file.
    #[error("configuration file {0} does not exist or is not a file")]
    MissingFile(PathBuf),
    /// A `CUSTODIAN_<NAME>_FILE` could not be read.
    #[error("cannot read {variable} ({path}): {source}")]
    SecretFile {
        variable: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Both `CUSTODIAN_<NAME>` and `CUSTODIAN_<NAME>_FILE` are set.
    #[error("both {0} and {0}_FILE are set; set only one")]
    Ambiguous(String),
    /// A key that is not a setting, or a value of the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A value of the right type that is not allowed.
    #[error("invalid configuration: `{setting}`: {message}")]
    Value { setting: String, message: String },
}

/// A `CUSTODIAN_*` variable that is no setting (a typo, or another tool's), and the
/// known variable nearest to it. Such a variable is ignored; the start reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// The variable as it is set.
    pub name: String,
    /// The setting's variable it most resembles, if any is close.
    pub nearest: Option<String>,
}

impl fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown setting {}", self.name)?;
        if let Some(nearest) = &self.nearest {
            write!(f, " (did you mean {nearest}?)")?;
        }
        f.write_str(": it is ignored")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The printed form, secrets redacted by `Serialize`: no field can be forgotten here.
        match serde_json::to_string(self) {
            Ok(shown) => write!(f, "Config {shown}"),
            Err(_) => f.write_str("Config { .. }"),
        }
    }
}

impl Config {
    /// The defaults over `data_dir`, listening on a free loopback port: what tests and
    /// embedders start from (`Config { database_url, ..Config::for_data_dir(dir) }`).
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            ..Self::defaults_in(data_dir.into())
        }
    }

    /// The defaults with the data directory `data_dir` (and the database in it).
    fn defaults_in(data_dir: PathBuf) -> Self {
        Self {
            database_url: default_database_url(&data_dir),
            data_dir,
            ..Self::default()
        }
    }

    /// The configuration of this process: `file` (or the file `CUSTODIAN_CONFIG` names)
    /// under the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, process_env())
    }

    /// The configuration of `file` (or the file `CUSTODIAN_CONFIG` in `env` names) under
    /// the variables `env`. A variable with an empty value counts as unset; one that is not
    /// a setting is ignored ([`Config::unknown_variables`] names them).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env = set_variables(env);
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get(CONFIG_ENV).map(PathBuf::from));

        let mut layers = Figment::new();
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            layers = layers.merge(Toml::file_exact(path));
        }
        let names = Names::of_settings();
        for (name, value) in &env {
            let (key, value) = match names.classify(name) {
                Variable::Setting(key) => (key, value.clone()),
                Variable::File(key) => {
                    let plain = &name[..name.len() - FILE_SUFFIX.len()];
                    if env.contains_key(plain) {
                        return Err(ConfigError::Ambiguous(plain.to_owned()));
                    }
                    (key, read_secret_file(name, Path::new(value))?)
                }
                Variable::Product | Variable::Unknown | Variable::Foreign => continue,
            };
            layers = layers.merge(EnvVar {
                name: name.clone(),
                key,
                value,
            });
        }

        // The defaults under every layer, with the database in the data directory the
        // layers chose.
        let data_dir = if layers.contains("data_dir") {
            layers.extract_inner("data_dir").map_err(invalid_config)?
        } else {
            Self::default().data_dir
        };
        // Lossy: a variable's text is read as a number where the setting is a number.
        let config: Self = Figment::from(Serialized::defaults(Self::defaults_in(data_dir)))
            .merge(layers)
            .extract_lossy()
            .map_err(invalid_config)?;
        config.check()?;
        Ok(config)
    }

    /// The `CUSTODIAN_*` variables among `env` that are neither settings nor otherwise
    /// known (`CUSTODIAN_CONFIG`, `CUSTODIAN_<NAME>_FILE`, `CUSTODIAN_TEST_*`), each with
    /// the known variable nearest to it. Empty variables count as unset.
    pub fn unknown_variables(env: impl IntoIterator<Item = (String, String)>) -> Vec<UnknownVariable> {
        let names = Names::of_settings();
        set_variables(env)
            .into_keys()
            .filter(|name| matches!(names.classify(name), Variable::Unknown))
            .map(|name| UnknownVariable {
                nearest: names.nearest_variable(&name),
                name,
            })
            .collect()
    }

    /// The core's settings of this configuration.
    pub fn settings(&self) -> Settings {
        Settings {
            tenant_name: self.tenant_name.clone(),
            tiers: self.tiers,
            default_tier: self.default_tier,
            token_grace_period: self.token_grace_period,
            max_token_grace_period: self.max_token_grace_period,
            unknown_token_events_per_minute: self.unknown_token_events_per_minute,
            disable_secret_value_view: self.disable_secret_value_view,
            vault_cache: self.vault_cache.settings(),
            subject_cache: self.subject_cache.settings(),
        }
    }

    /// The effective configuration as TOML (a valid configuration file), `database_url`
    /// with its password shown as `[REDACTED]` and the master key as `[REDACTED]`.
    pub fn to_redacted_toml(&self) -> String {
        // Plain strings, numbers and tables always serialize.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }

    /// The rules between settings and on values serde cannot check.
    fn check(&self) -> Result<(), ConfigError> {
        if self.bind.trim().is_empty() {
            return Err(invalid("listen", "must be host:port"));
        }
        if self.request_body_timeout < Duration::seconds(1) {
            return Err(invalid("request_body_timeout", "must be at least 1 second"));
        }
        if self.database_pool_size == 0 {
            return Err(invalid("database_pool_size", "must be at least 1"));
        }
        if self.orphan_min_age < Duration::seconds(60) {
            return Err(invalid(
                "orphan_min_age",
                "must be at least 60 seconds: a younger value may belong to a write still in flight",
            ));
        }
        if self.token_grace_period > self.max_token_grace_period {
            return Err(invalid(
                "token_grace_period",
                "must not be longer than `max_token_grace_period`",
            ));
        }
        self.vaults.adapters()?;
        self.ssm.check()
    }
}

/// The variables of this process, those whose name and value are text.
pub fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

fn default_database_url(data_dir: &Path) -> SecretString {
    format!("sqlite://{}", data_dir.join("custodian.db").display()).into()
}

/// `url` as `config print` and the logs show it: the password (of the user, or of a
/// `…password=` query parameter) replaced by `[REDACTED]`, the rest as given. A SQLite URL
/// holds no password and is shown whole; what does not parse as a URL (a key=value
/// connection string) is not shown at all.
fn shown_database_url(url: &str) -> String {
    use url::Position;
    if url.starts_with("sqlite://") {
        return url.to_owned();
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return REDACTED.to_owned();
    };
    let is_password = |pair: &str| {
        let key = pair.split_once('=').map_or(pair, |(key, _)| key);
        key.to_ascii_lowercase().contains("password")
    };
    let query = parsed.query();
    if parsed.password().is_none() && !query.is_some_and(|q| q.split('&').any(is_password)) {
        return url.to_owned();
    }
    let mut shown = match parsed.password() {
        Some(_) => format!(
            "{}{REDACTED}{}",
            &parsed[..Position::BeforePassword],
            &parsed[Position::AfterPassword..Position::AfterPath]
        ),
        None => parsed[..Position::AfterPath].to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_password(pair) => format!("{key}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// How secrets serialize: what `config print`, `Debug` and the logs show.
mod redact {
    use super::*;

    pub(super) fn password<S: Serializer>(url: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&shown_database_url(url.expose_secret()))
    }

    pub(super) fn list<S: Serializer>(secrets: &[SecretString], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(secrets.iter().map(|_| REDACTED))
    }

    pub(super) fn whole<S: Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
        match secret {
            Some(_) => serializer.serialize_str(REDACTED),
            None => serializer.serialize_none(),
        }
    }
}

/// A value spelled as its `Display` and read with its `FromStr` (a domain enum).
mod text {
    use std::fmt::Display;
    use std::str::FromStr;

    use super::*;

    pub(super) fn serialize<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        String::deserialize(deserializer)?.parse().map_err(D::Error::custom)
    }
}

/// A duration as a whole number of seconds, at least 0.
mod seconds {
    use super::*;

    pub(super) fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(duration.num_seconds())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = i64::deserialize(deserializer)?;
        if seconds < 0 {
            return Err(D::Error::custom("must be a number of seconds, at least 0"));
        }
        Duration::try_seconds(seconds).ok_or_else(|| D::Error::custom("is too large"))
    }
}

/// A tier limit: a number, or `"unlimited"` (`None`).
mod limit {
    use super::*;

    /// What the file (a number) or a variable (text) holds.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Spelled {
        Number(u32),
        Text(String),
    }

    pub(super) fn serialize<S: Serializer>(limit: &Option<u32>, serializer: S) -> Result<S::Ok, S::Error> {
        match limit {
            Some(n) => serializer.serialize_u32(*n),
            None => serializer.serialize_str(UNLIMITED),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
        let number = match Spelled::deserialize(deserializer) {
            Ok(Spelled::Text(text)) if text == UNLIMITED => return Ok(None),
            Ok(Spelled::Text(text)) => text.parse().ok(),
            Ok(Spelled::Number(n)) => Some(n),
            Err(_) => None,
        };
        number
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a number of at least 0, or \"{UNLIMITED}\"")))
    }
}

/// An optional text where a blank value counts as unset.
fn blank_is_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// The set variables among `env`, by name: an empty value counts as unset.
fn set_variables(env: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    env.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect()
}

/// The value of a secret file: its content without the trailing newline.
fn read_secret_file(variable: &str, path: &Path) -> Result<String, ConfigError> {
    let content = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        variable: variable.to_owned(),
        path: path.to_path_buf(),
        source,
    })?;
    let trimmed = content.strip_suffix('\n').unwrap_or(&content);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

/// What a `CUSTODIAN_*` variable is to the configuration.
enum Variable {
    /// A setting, or a key under a setting's table (the key path, `tiers.free.members`);
    /// a key that is no setting there is refused like in the file.
    Setting(String),
    /// `CUSTODIAN_<NAME>_FILE` of the setting at this key path.
    File(String),
    /// Known to the product, not a setting: `CUSTODIAN_CONFIG`, `CUSTODIAN_TEST_*`.
    Product,
    /// None of these: ignored, and reported at start.
    Unknown,
    /// Not a `CUSTODIAN_*` variable.
    Foreign,
}

/// The settings' key paths (`listen`, `ssm.region`, `tiers.free.members`), read from the
/// serialized defaults so they follow [`Config`].
struct Names {
    leaves: Vec<String>,
}

impl Names {
    fn of_settings() -> Self {
        fn walk(prefix: &str, dict: &Dict, leaves: &mut Vec<String>) {
            for (key, value) in dict {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match value {
                    Value::Dict(_, inner) => walk(&path, inner, leaves),
                    _ => leaves.push(path),
                }
            }
        }
        let mut leaves = Vec::new();
        // A `None` serializes as an empty value: unset settings are leaves too.
        if let Ok(Value::Dict(_, dict)) = Value::serialize(Config::default()) {
            walk("", &dict, &mut leaves);
        }
        Self { leaves }
    }

    /// Every variable the product reads: each setting's, its `_FILE`, and
    /// `CUSTODIAN_CONFIG`.
    fn variables(&self) -> impl Iterator<Item = String> + '_ {
        self.leaves
            .iter()
            .flat_map(|key| {
                let name = env_name(key);
                [format!("{name}{FILE_SUFFIX}"), name]
            })
            .chain([CONFIG_ENV.to_owned()])
    }

    fn classify(&self, name: &str) -> Variable {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            return Variable::Foreign;
        };
        if name == CONFIG_ENV || name.starts_with(TEST_ENV_PREFIX) {
            return Variable::Product;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if let Some(setting) = key.strip_suffix("_file")
            && self.leaves.iter().any(|leaf| leaf == setting)
        {
            return Variable::File(setting.to_owned());
        }
        let top = key.split('.').next().unwrap_or_default();
        let under_a_setting = self.leaves.iter().any(|leaf| leaf.split('.').next() == Some(top));
        if under_a_setting && !key.split('.').any(str::is_empty) {
            Variable::Setting(key)
        } else {
            Variable::Unknown
        }
    }

    /// The known variable most like `name`, if one is close.
    fn nearest_variable(&self, name: &str) -> Option<String> {
        nearest(name, self.variables())
    }
}

/// Among `candidates`, the one nearest to `name` by edit distance, if it is close (at most
/// about a quarter of it differs).
fn nearest(name: &str, candidates: impl Iterator<Item = String>) -> Option<String> {
    const CLOSE: f64 = 0.75;
    let unprefixed = |n: &str| n.strip_prefix(ENV_PREFIX).unwrap_or(n).to_ascii_uppercase();
    let wanted = unprefixed(name);
    candidates
        .map(|candidate| {
            let similarity = strsim::normalized_damerau_levenshtein(&wanted, &unprefixed(&candidate));
            (similarity, candidate)
        })
        .filter(|(similarity, _)| *similarity >= CLOSE)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// The variable of the setting at `key` (`tiers.free.members` →
/// `CUSTODIAN_TIERS__FREE__MEMBERS`): figment's `Env::prefixed("CUSTODIAN_").split("__")`
/// naming.
fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_ascii_uppercase())
}

/// One `CUSTODIAN_*` variable as a figment layer: its value, as text, at its key path,
/// and its name in error messages. (figment's own `Env` reads only the process.)
struct EnvVar {
    name: String,
    key: String,
    value: String,
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::default(&self.key, &self.value).data()
    }
}

fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        setting: setting.into(),
        message: message.into(),
    }
}

/// A figment error as one line. A value is never quoted (it could be a secret); the key
/// and its source are.
fn invalid_config(error: figment::Error) -> ConfigError {
    let described: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let what = match &e.kind {
                figment::error::Kind::InvalidType(actual, expected) => format!("expected {expected}, found {actual}"),
                figment::error::Kind::InvalidValue(_, expected) => format!("invalid value, expected {expected}"),
                figment::error::Kind::UnknownField(field, expected) => {
                    match nearest(field, expected.iter().map(|e| (*e).to_owned())) {
                        Some(nearest) => format!("not a setting (did you mean `{nearest}`?)"),
                        None => format!("not a setting here (the settings are: {})", expected.join(", ")),
                    }
                }
                kind => kind.to_string(),
            };
            let key = if key.is_empty() { key } else { format!("`{key}`: ") };
            let source = match &e.metadata {
                Some(m) => match &m.source {
                    Some(source) => format!(" (in {} {source})", m.name),
                    None => format!(" (in {})", m.name),
                },
                None => String::new(),
            };
            format!("{key}{what}{source}")
        })
        .collect();
    ConfigError::Invalid(described.join("; "))
}
#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_sources(None, env(vars)).unwrap()
    }

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_put_everything_in_the_data_dir() {
        let c = config(&[]);
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./custodian-data"));
        assert_eq!(c.database_url.expose_secret(), "sqlite://./custodian-data/custodian.db");
        assert_eq!(c.tenant_name, "default");
        assert_eq!(c.default_tier, Tier::Enterprise);
        assert_eq!(c.tiers, TierTable::default());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.credential_store, CredentialStoreKind::Local);
        assert_eq!(c.max_token_grace_period, Duration::days(7));
    }

    #[test]
    fn the_pool_size_is_read_and_must_be_at_least_one() {
        assert_eq!(config(&[]).database_pool_size, 10);
        assert_eq!(config(&[("CUSTODIAN_DATABASE_POOL_SIZE", "32")]).database_pool_size, 32);
        let refused = Config::from_sources(None, env(&[("CUSTODIAN_DATABASE_POOL_SIZE", "0")]))
            .expect_err("a pool of no connection")
            .to_string();
        assert!(
            refused.contains("database_pool_size") && refused.contains("at least 1"),
            "{refused}"
        );
    }

    #[test]
    fn the_database_follows_the_data_dir_unless_set() {
        let c = config(&[
            ("CUSTODIAN_DATA_DIR", "/srv/custodian"),
            ("CUSTODIAN_LISTEN", "0.0.0.0:9000"),
        ]);
        assert_eq!(c.database_url.expose_secret(), "sqlite:///srv/custodian/custodian.db");
        assert_eq!(c.bind, "0.0.0.0:9000");
        let c = config(&[
            ("CUSTODIAN_DATA_DIR", "/srv/custodian"),
            ("CUSTODIAN_DATABASE_URL", "postgres://app:hunter2@db/custodian"),
            ("CUSTODIAN_TENANT_NAME", ""),
        ]);
        assert_eq!(c.database_url.expose_secret(), "postgres://app:hunter2@db/custodian");
        assert_eq!(c.tenant_name, "default");
    }

    #[test]
    fn the_file_beats_the_defaults_and_the_environment_beats_the_file() {
        let f = file(
            "listen = \"0.0.0.0:7000\"\ntenant_name = \"acme\"\ndefault_tier = \"pro\"\n\
             [tiers.free]\nstorage_secrets = 3\nmembers = \"unlimited\"\n",
        );
        let c = Config::from_sources(Some(f.path()), env(&[("CUSTODIAN_TENANT_NAME", "globex")])).unwrap();
        assert_eq!(c.bind, "0.0.0.0:7000");
        assert_eq!(c.tenant_name, "globex");
        assert_eq!(c.default_tier, Tier::Pro);
        assert_eq!(c.tiers.free.storage_secrets, Some(3));
        assert_eq!(c.tiers.free.members, None);
        assert_eq!(
            c.tiers.free.vault_connections,
            Some(1),
            "untouched limits keep their default"
        );

        let c = Config::from_sources(
            None,
            env(&[
                (CONFIG_ENV, f.path().to_str().unwrap()),
                ("CUSTODIAN_TIERS__FREE__STORAGE_SECRETS", "7"),
                ("CUSTODIAN_TIERS__ENTERPRISE__MEMBERS", "50"),
                ("CUSTODIAN_LOG_FORMAT", "json"),
                ("CUSTODIAN_TOKEN_GRACE_PERIOD", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(c.bind, "0.0.0.0:7000", "CUSTODIAN_CONFIG names the file");
        assert_eq!(c.tiers.free.storage_secrets, Some(7));
        assert_eq!(c.tiers.free.members, None);
        assert_eq!(c.tiers.enterprise.members, Some(50));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.settings().token_grace_period, Duration::seconds(60));
        assert_eq!(c.settings().default_tier, Tier::Pro);
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_and_named() {
        let f = file("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n");
        let error = Config::from_sources(Some(f.path()), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_addr"), "{error}");
        let f = file("[tiers.gold]\nmembers = 3\n");
        let error = Config::from_sources(Some(f.path()), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("gold"), "{error}");
        // Other CUSTODIAN_ variables are not settings and are left alone.
        config(&[("CUSTODIAN_TEST_MOTO_URL", "x"), ("CUSTODIAN_SOMETHING_ELSE", "y")]);
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (vars, setting) in [
            (vec![("CUSTODIAN_CREDENTIAL_STORE", "vault")], "credential_store"),
            (vec![("CUSTODIAN_SSM__PREFIX", "custodian")], "ssm.prefix"),
            (
                vec![("CUSTODIAN_SSM__ENDPOINT_URL", "localhost:4566")],
                "ssm.endpoint_url",
            ),
            (vec![("CUSTODIAN_SSM__TABLE", "x")], "table"),
            (vec![("CUSTODIAN_DEFAULT_TIER", "gold")], "default_tier"),
            (vec![("CUSTODIAN_LOG_FORMAT", "xml")], "log_format"),
            (vec![("CUSTODIAN_TIERS__PRO__MEMBERS", "lots")], "tiers.pro.members"),
            (vec![("CUSTODIAN_TOKEN_GRACE_PERIOD", "-1")], "token_grace_period"),
        ] {
            let error = Config::from_sources(None, env(&vars)).unwrap_err().to_string();
            assert!(error.contains(setting), "{error}");
        }
        let missing = Config::from_sources(Some(Path::new("/nonexistent/custodian.toml")), Vec::new());
        assert!(matches!(missing, Err(ConfigError::MissingFile(_))));
    }

    #[test]
    fn a_secret_may_come_from_a_file() {
        let secret = file("postgres://app:hunter2@db/custodian\n");
        let c = config(&[("CUSTODIAN_DATABASE_URL_FILE", secret.path().to_str().unwrap())]);
        assert_eq!(c.database_url.expose_secret(), "postgres://app:hunter2@db/custodian");
        let both = Config::from_sources(
            None,
            env(&[
                ("CUSTODIAN_DATABASE_URL_FILE", secret.path().to_str().unwrap()),
                ("CUSTODIAN_DATABASE_URL", "sqlite:///x.db"),
            ]),
        );
        assert!(matches!(both, Err(ConfigError::Ambiguous(_))));
        let unreadable = Config::from_sources(None, env(&[("CUSTODIAN_DATABASE_URL_FILE", "/nonexistent")]));
        let error = unreadable.unwrap_err().to_string();
        assert!(error.contains("CUSTODIAN_DATABASE_URL_FILE"), "{error}");
    }

    /// A database password no test output may show.
    const CANARY_PASSWORD: &str = "canary-db-password-7f3a";

    #[test]
    fn debug_and_print_show_the_database_but_never_its_password_nor_the_master_key() {
        let url = format!("postgres://custodian:{CANARY_PASSWORD}@db.internal:5432/custodian_prod");
        let c = config(&[("CUSTODIAN_DATABASE_URL", &url), ("CUSTODIAN_MASTER_KEY", CANARY_KEY)]);
        let shown = format!("{c:?}");
        let printed = c.to_redacted_toml();
        for output in [&shown, &printed] {
            assert!(!output.contains(CANARY_PASSWORD), "{output}");
            assert!(!output.contains(CANARY_KEY), "{output}");
            assert!(
                output.contains("postgres://custodian:[REDACTED]@db.internal:5432/custodian_prod"),
                "{output}"
            );
        }
        assert!(printed.lines().any(|l| l == "master_key = \"[REDACTED]\""), "{printed}");
        // SQLite holds no password: its URL is shown whole.
        let c = config(&[("CUSTODIAN_DATABASE_URL", "sqlite:///var/lib/custodian/custodian.db")]);
        assert!(
            c.to_redacted_toml()
                .contains("database_url = \"sqlite:///var/lib/custodian/custodian.db\"")
        );
    }

    #[test]
    fn only_the_database_password_is_hidden() {
        for (url, shown) in [
            ("sqlite://./data/custodian.db", "sqlite://./data/custodian.db"),
            ("sqlite://u:p@x/custodian.db", "sqlite://u:p@x/custodian.db"),
            ("postgres://custodian@db/custodian", "postgres://custodian@db/custodian"),
            (
                "postgres://custodian:pw@db:5432/custodian",
                "postgres://custodian:[REDACTED]@db:5432/custodian",
            ),
            (
                "postgresql://custodian:p@ss:w@rd@db/custodian?sslmode=require",
                "postgresql://custodian:[REDACTED]@db/custodian?sslmode=require",
            ),
            (
                "postgres://db/custodian?user=custodian&password=pw&sslpassword=x",
                "postgres://db/custodian?user=custodian&password=[REDACTED]&sslpassword=[REDACTED]",
            ),
            // What does not parse as a URL is not shown at all.
            ("host=db user=custodian password=pw", "[REDACTED]"),
            ("postgres://custodian:pa/ss@db/custodian", "[REDACTED]"),
        ] {
            assert_eq!(shown_database_url(url), shown, "{url}");
        }
    }

    #[test]
    fn the_variables_are_derived_from_the_settings() {
        let names: Vec<String> = Names::of_settings().variables().collect();
        for name in [
            "CUSTODIAN_LISTEN",
            "CUSTODIAN_DATABASE_URL",
            "CUSTODIAN_DATABASE_URL_FILE",
            "CUSTODIAN_MASTER_KEY",
            "CUSTODIAN_MASTER_KEY_FILE",
            "CUSTODIAN_SSM__KMS_KEY_ID",
            "CUSTODIAN_TIERS__PRO__MEMBERS",
            "CUSTODIAN_MAX_TOKEN_GRACE_PERIOD",
            CONFIG_ENV,
        ] {
            assert!(names.iter().any(|n| n == name), "no {name} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "CUSTODIAN_BIND"), "{names:?}");
        // The defaults layer is `Config::default()`.
        assert_eq!(config(&[]).to_redacted_toml(), Config::default().to_redacted_toml());
    }

    #[test]
    fn unknown_variables_are_named_with_the_nearest_setting() {
        let unknown = Config::unknown_variables(env(&[
            ("CUSTODIAN_DATABSE_URL", "postgres://app:hunter2@db/custodian"),
            ("CUSTODIAN_SSM_REGION", "eu-west-1"),
            ("CUSTODIAN_MASTER_KEY_FLIE", "/run/secrets/key"),
            ("CUSTODIAN_PORT", "tcp://10.0.0.1:8080"),
            ("CUSTODIAN_EMPTY", ""),
            // Known: settings, their files, the file's variable, the test harnesses'.
            ("CUSTODIAN_DATABASE_URL", "sqlite:///x.db"),
            ("CUSTODIAN_MASTER_KEY_FILE", "/run/secrets/key"),
            ("CUSTODIAN_TIERS__FREE__MEMBERS", "3"),
            ("CUSTODIAN_CONFIG", "/etc/custodian.toml"),
            ("CUSTODIAN_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1/postgres"),
            ("PATH", "/usr/bin"),
        ]));
        let shown: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "unknown setting CUSTODIAN_DATABSE_URL (did you mean CUSTODIAN_DATABASE_URL?): it is ignored",
                "unknown setting CUSTODIAN_MASTER_KEY_FLIE (did you mean CUSTODIAN_MASTER_KEY_FILE?): it is ignored",
                "unknown setting CUSTODIAN_PORT: it is ignored",
                "unknown setting CUSTODIAN_SSM_REGION (did you mean CUSTODIAN_SSM__REGION?): it is ignored",
            ]
        );
        // An unknown variable is ignored: the configuration still loads.
        let c = config(&[("CUSTODIAN_DATABSE_URL", "postgres://app:hunter2@db/custodian")]);
        assert_eq!(c.database_url.expose_secret(), "sqlite://./custodian-data/custodian.db");
        // A key under a setting's table is refused instead, like in the file.
        assert!(Config::unknown_variables(env(&[("CUSTODIAN_SSM__TABLE", "x")])).is_empty());
    }

    #[test]
    fn any_setting_may_come_from_a_file() {
        let name = file("acme\n");
        let c = config(&[("CUSTODIAN_TENANT_NAME_FILE", name.path().to_str().unwrap())]);
        assert_eq!(c.tenant_name, "acme");
        let limit = file("7");
        let c = config(&[("CUSTODIAN_TIERS__FREE__MEMBERS_FILE", limit.path().to_str().unwrap())]);
        assert_eq!(c.tiers.free.members, Some(7));
    }

    /// A master key no test output may show: base64 of 32 bytes, like a real one.
    const CANARY_KEY: &str = "Q0FOQVJZLW1hc3Rlci1rZXktbm90LXRvLWJlLXNob3du";

    #[test]
    fn the_master_key_comes_from_its_variable_its_file_or_the_config_file() {
        assert!(
            config(&[]).master_key.is_none(),
            "unset by default: keyring.json is used"
        );
        let c = config(&[("CUSTODIAN_MASTER_KEY", CANARY_KEY)]);
        assert_eq!(c.master_key.as_ref().map(|k| k.expose_secret()), Some(CANARY_KEY));

        let secret = file(&format!("{CANARY_KEY}\n"));
        let c = config(&[("CUSTODIAN_MASTER_KEY_FILE", secret.path().to_str().unwrap())]);
        assert_eq!(
            c.master_key.as_ref().map(|k| k.expose_secret()),
            Some(CANARY_KEY),
            "the file's trailing newline is not part of the key"
        );

        let toml = file(&format!("master_key = \"{CANARY_KEY}\"\n"));
        let c = Config::from_sources(Some(toml.path()), Vec::new()).unwrap();
        assert_eq!(c.master_key.as_ref().map(|k| k.expose_secret()), Some(CANARY_KEY));
        // The variable beats the file, like every setting.
        let c = Config::from_sources(Some(toml.path()), env(&[("CUSTODIAN_MASTER_KEY", "from-the-env")])).unwrap();
        assert_eq!(c.master_key.as_ref().map(|k| k.expose_secret()), Some("from-the-env"));
    }

    #[test]
    fn the_master_key_and_its_file_together_are_refused_without_showing_either() {
        let secret = file(CANARY_KEY);
        let both = Config::from_sources(
            None,
            env(&[
                ("CUSTODIAN_MASTER_KEY_FILE", secret.path().to_str().unwrap()),
                ("CUSTODIAN_MASTER_KEY", CANARY_KEY),
            ]),
        );
        let Err(error) = both else {
            panic!("both the master key and its file were accepted");
        };
        assert!(matches!(error, ConfigError::Ambiguous(ref name) if name == "CUSTODIAN_MASTER_KEY"));
        let message = error.to_string();
        assert!(message.contains("CUSTODIAN_MASTER_KEY_FILE"), "{message}");
        assert!(!message.contains(CANARY_KEY), "{message}");

        let unreadable = Config::from_sources(None, env(&[("CUSTODIAN_MASTER_KEY_FILE", "/nonexistent")]));
        let message = unreadable.unwrap_err().to_string();
        assert!(message.contains("CUSTODIAN_MASTER_KEY_FILE"), "{message}");
    }

    #[test]
    fn debug_and_print_never_show_the_master_key() {
        let c = config(&[("CUSTODIAN_MASTER_KEY", CANARY_KEY)]);
        let shown = format!("{c:?}");
        assert!(!shown.contains(CANARY_KEY), "{shown}");
        assert!(shown.contains(r#""master_key":"[REDACTED]""#), "{shown}");
        let printed = c.to_redacted_toml();
        assert!(!printed.contains(CANARY_KEY), "{printed}");
        assert!(printed.lines().any(|l| l == "master_key = \"[REDACTED]\""), "{printed}");

        // From a file or the TOML file, the same.
        let toml = file(&format!("master_key = \"{CANARY_KEY}\"\n"));
        let c = Config::from_sources(Some(toml.path()), Vec::new()).unwrap();
        assert!(!format!("{c:?}").contains(CANARY_KEY));
        assert!(!c.to_redacted_toml().contains(CANARY_KEY));

        // Unset, it is not printed at all: the printed file reads back without a key.
        let c = config(&[]);
        assert!(format!("{c:?}").contains(r#""master_key":null"#));
        assert!(!c.to_redacted_toml().lines().any(|l| l.starts_with("master_key")));
    }

    #[test]
    fn previous_master_keys_come_as_a_list_or_comma_separated_and_are_never_shown() {
        let c = config(&[(
            "CUSTODIAN_PREVIOUS_MASTER_KEYS",
            &format!(" {CANARY_KEY}, second-key ,"),
        )]);
        let keys: Vec<&str> = c.previous_master_keys.iter().map(|k| k.expose_secret()).collect();
        assert_eq!(keys, [CANARY_KEY, "second-key"]);
        assert!(!format!("{c:?}").contains(CANARY_KEY));
        let printed = c.to_redacted_toml();
        assert!(!printed.contains(CANARY_KEY), "{printed}");
        assert!(
            printed.contains(r#"previous_master_keys = ["[REDACTED]", "[REDACTED]"]"#),
            "{printed}"
        );

        let toml = file(&format!("previous_master_keys = [\"{CANARY_KEY}\"]\n"));
        let c = Config::from_sources(Some(toml.path()), Vec::new()).unwrap();
        assert_eq!(c.previous_master_keys.len(), 1);
        assert_eq!(c.previous_master_keys[0].expose_secret(), CANARY_KEY);
    }

    #[test]
    fn aws_ssm_is_chosen_with_its_table_from_the_file_under_the_environment() {
        let c = config(&[]);
        assert_eq!(c.ssm, SsmConfig::default());
        assert_eq!(c.ssm.prefix, "/custodian");

        let f = file(
            "credential_store = \"aws-ssm\"\n\
             [ssm]\nregion = \"eu-west-1\"\nprefix = \"/acme/custodian\"\nkms_key_id = \"alias/custodian\"\n",
        );
        let c = Config::from_sources(Some(f.path()), Vec::new()).unwrap();
        assert_eq!(c.credential_store, CredentialStoreKind::AwsSsm);
        assert_eq!(
            c.ssm,
            SsmConfig {
                region: Some("eu-west-1".into()),
                endpoint_url: None,
                prefix: "/acme/custodian".into(),
                kms_key_id: Some("alias/custodian".into()),
            }
        );

        // Each variable beats its key in the file and leaves the others alone.
        let c = Config::from_sources(
            Some(f.path()),
            env(&[
                ("CUSTODIAN_SSM__REGION", "us-east-2"),
                ("CUSTODIAN_SSM__ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("CUSTODIAN_SSM__KMS_KEY_ID", ""),
            ]),
        )
        .unwrap();
        assert_eq!(c.ssm.region.as_deref(), Some("us-east-2"));
        assert_eq!(c.ssm.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.ssm.prefix, "/acme/custodian");
        assert_eq!(
            c.ssm.kms_key_id.as_deref(),
            Some("alias/custodian"),
            "an empty variable counts as unset"
        );

        let c = config(&[
            ("CUSTODIAN_CREDENTIAL_STORE", "aws-ssm"),
            ("CUSTODIAN_SSM__PREFIX", "/prod"),
            (
                "CUSTODIAN_SSM__KMS_KEY_ID",
                "arn:aws:kms:eu-west-1:111122223333:key/abcd",
            ),
        ]);
        assert_eq!(c.credential_store, CredentialStoreKind::AwsSsm);
        assert_eq!(c.ssm.prefix, "/prod");
        assert_eq!(c.ssm.region, None, "the SDK's chain finds the region");
        assert_eq!(
            c.ssm.kms_key_id.as_deref(),
            Some("arn:aws:kms:eu-west-1:111122223333:key/abcd")
        );
    }

    #[test]
    fn an_ssm_table_beside_the_local_store_is_checked_and_kept_but_unused() {
        let f = file("[ssm]\nregion = \"eu-west-1\"\n");
        let c = Config::from_sources(Some(f.path()), Vec::new()).unwrap();
        assert_eq!(c.credential_store, CredentialStoreKind::Local);
        assert_eq!(c.ssm.region.as_deref(), Some("eu-west-1"));
        let f = file("[ssm]\nbucket = \"x\"\n");
        let error = Config::from_sources(Some(f.path()), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("bucket"), "{error}");
    }

    #[test]
    fn config_print_shows_the_ssm_settings_and_reads_back_the_same() {
        let c = config(&[
            ("CUSTODIAN_CREDENTIAL_STORE", "aws-ssm"),
            ("CUSTODIAN_SSM__REGION", "eu-central-1"),
            ("CUSTODIAN_SSM__ENDPOINT_URL", "https://ssm.eu-central-1.amazonaws.com"),
            ("CUSTODIAN_SSM__KMS_KEY_ID", "alias/custodian"),
        ]);
        let printed = c.to_redacted_toml();
        for line in [
            "credential_store = \"aws-ssm\"",
            "[ssm]",
            "region = \"eu-central-1\"",
            "endpoint_url = \"https://ssm.eu-central-1.amazonaws.com\"",
            "prefix = \"/custodian\"",
            "kms_key_id = \"alias/custodian\"",
        ] {
            assert!(printed.lines().any(|l| l == line), "no {line:?} in {printed}");
        }
        let f = file(&printed);
        let again = Config::from_sources(Some(f.path()), Vec::new()).unwrap();
        assert_eq!(again.to_redacted_toml(), printed);
        assert_eq!(again.database_url.expose_secret(), c.database_url.expose_secret());
    }

    #[test]
    fn the_printed_configuration_reads_back_the_same() {
        let c = config(&[
            ("CUSTODIAN_TIERS__PRO__STORAGE_SECRETS", "unlimited"),
            ("CUSTODIAN_DEFAULT_TIER", "free"),
        ]);
        let printed = c.to_redacted_toml();
        assert!(printed.contains("storage_secrets = \"unlimited\""), "{printed}");
        let f = file(&printed);
        let again = Config::from_sources(Some(f.path()), Vec::new()).unwrap();
        assert_eq!(again.to_redacted_toml(), printed);
        assert_eq!(again.database_url.expose_secret(), c.database_url.expose_secret());
    }
}
