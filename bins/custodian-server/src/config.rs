//! The server's configuration: defaults < TOML file (`--config PATH` or `CUSTODIAN_CONFIG`)
//! < `CUSTODIAN_*` environment variables (nested keys joined with `__`). Every secret
//! setting also accepts `CUSTODIAN_<NAME>_FILE`, the path of a file holding its value.
//!
//! The layers are merged by figment; the environment is passed in (not read from the
//! process inside) so the order can be tested without touching the process environment.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::Duration;
use custodian_core::Settings;
use custodian_domain::{Tier, TierLimits, TierTable};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of every configuration variable.
const ENV_PREFIX: &str = "CUSTODIAN_";
/// The variable naming the TOML file when `--config` does not.
pub const CONFIG_ENV: &str = "CUSTODIAN_CONFIG";
/// The settings whose value is a secret: redacted in `Debug` and `config print`, and
/// accepted from a file named by `CUSTODIAN_<NAME>_FILE`.
const SECRET_SETTINGS: &[&str] = &["database_url", "master_key"];
/// What `config print` shows in place of a secret.
const REDACTED: &str = "[REDACTED]";
/// The top-level keys of the file; `CUSTODIAN_*` variables with another name are not
/// settings (the process environment is shared) and are ignored.
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "master_key",
    "tenant_name",
    "default_tier",
    "tiers",
    "token_grace_period",
    "max_token_grace_period",
    "log_format",
    "credential_store",
    "ssm",
];

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

    fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

/// The prefix of every SSM parameter name unless `ssm.prefix` says otherwise.
pub(crate) const DEFAULT_SSM_PREFIX: &str = "/custodian";

/// Where the `aws-ssm` credential store keeps its parameters (the `[ssm]` table,
/// `CUSTODIAN_SSM__*`). Read and checked whatever the credential store, used only when it
/// is `aws-ssm`. AWS credentials are not settings: they come from the SDK's standard chain
/// (environment, profile, web identity, ECS, instance metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmConfig {
    /// AWS region (`ssm.region`); `None` takes the SDK's chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Another endpoint than AWS's (`ssm.endpoint_url`): a VPC endpoint, moto, LocalStack.
    pub endpoint_url: Option<String>,
    /// The absolute path every parameter name starts with (`ssm.prefix`).
    pub prefix: String,
    /// The KMS key (id, ARN or alias) encrypting the parameters (`ssm.kms_key_id`);
    /// `None` is SSM's default key `alias/aws/ssm`.
    pub kms_key_id: Option<String>,
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

/// Why the configuration cannot be used. The message names the setting and, for a value
/// from a file or variable, where it came from; it never holds a secret's value.
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

/// The server's effective configuration, read once at start and passed down (never a
/// global). `Debug` never shows the database URL past its scheme, nor the master key.
#[derive(Clone)]
pub struct Config {
    /// `host:port` to listen on (`listen`, `CUSTODIAN_LISTEN`, default `127.0.0.1:8080`);
    /// port 0 picks a free port.
    pub bind: String,
    /// The keyring and the SQLite database live here (`data_dir`, default
    /// `./custodian-data`).
    pub data_dir: PathBuf,
    /// `sqlite://<path>` or `postgres://…` (`database_url`, a secret: it may hold a
    /// password; default `sqlite://<data_dir>/custodian.db`).
    pub database_url: String,
    /// The master key of the `local` credential store (`master_key`,
    /// `CUSTODIAN_MASTER_KEY` or `CUSTODIAN_MASTER_KEY_FILE`, a secret): the base64 of 32
    /// random bytes. When set, the keyring is derived from it and no `keyring.json` is
    /// used; unset (the default), the keyring is `<data_dir>/keyring.json`, created on
    /// first start.
    pub master_key: Option<SecretString>,
    /// The tenant's name (`tenant_name`, default `default`).
    pub tenant_name: String,
    /// The tier of a new team when its creator does not choose one (`default_tier`,
    /// default `enterprise`).
    pub default_tier: Tier,
    /// The limits of each tier (`tiers.<tier>.<limit>`, a number or `"unlimited"`).
    pub tiers: TierTable,
    /// How long a virtual account's old token keeps working after a regeneration that
    /// does not say (`token_grace_period`, seconds, default 0).
    pub token_grace_period: Duration,
    /// The longest grace period a regeneration may ask for (`max_token_grace_period`,
    /// seconds, default 7 days).
    pub max_token_grace_period: Duration,
    /// `text` or `json` (`log_format`).
    pub log_format: LogFormat,
    /// Where managed credentials are kept (`credential_store`: `local` or `aws-ssm`).
    pub credential_store: CredentialStoreKind,
    /// The `aws-ssm` store's settings (`[ssm]`), unused by the `local` store.
    pub ssm: SsmConfig,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A PostgreSQL URL may hold a password: only its scheme is shown.
        let scheme = self.database_url.split_once("://").map_or("?", |(s, _)| s);
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &format_args!("{scheme}://{REDACTED}"))
            .field(
                "master_key",
                &format_args!("{}", if self.master_key.is_some() { REDACTED } else { "(unset)" }),
            )
            .field("tenant_name", &self.tenant_name)
            .field("default_tier", &self.default_tier)
            .field("tiers", &self.tiers)
            .field("token_grace_period", &self.token_grace_period)
            .field("max_token_grace_period", &self.max_token_grace_period)
            .field("log_format", &self.log_format)
            .field("credential_store", &self.credential_store)
            .field("ssm", &self.ssm)
            .finish()
    }
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        // Every field, by name, so a new one cannot be forgotten here.
        let Config {
            bind,
            data_dir,
            database_url,
            master_key,
            tenant_name,
            default_tier,
            tiers,
            token_grace_period,
            max_token_grace_period,
            log_format,
            credential_store,
            ssm,
        } = self;
        let same_key = match (master_key, &other.master_key) {
            (None, None) => true,
            (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        };
        same_key
            && *bind == other.bind
            && *data_dir == other.data_dir
            && *database_url == other.database_url
            && *tenant_name == other.tenant_name
            && *default_tier == other.default_tier
            && *tiers == other.tiers
            && *token_grace_period == other.token_grace_period
            && *max_token_grace_period == other.max_token_grace_period
            && *log_format == other.log_format
            && *credential_store == other.credential_store
            && *ssm == other.ssm
    }
}

impl Eq for Config {}

impl Config {
    /// The defaults over `data_dir`, listening on a free loopback port: what tests and
    /// embedders start from (`Config { database_url, ..Config::for_data_dir(dir) }`).
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let settings = Settings::default();
        Self {
            bind: "127.0.0.1:0".into(),
            database_url: default_database_url(&data_dir),
            master_key: None,
            data_dir,
            tenant_name: settings.tenant_name,
            default_tier: settings.default_tier,
            tiers: settings.tiers,
            token_grace_period: settings.token_grace_period,
            max_token_grace_period: settings.max_token_grace_period,
            log_format: LogFormat::Text,
            credential_store: CredentialStoreKind::Local,
            ssm: SsmConfig::default(),
        }
    }

    /// The configuration of this process: `file` (or the file `CUSTODIAN_CONFIG` names)
    /// under the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, std::env::vars())
    }

    /// The configuration of `file` (or the file `CUSTODIAN_CONFIG` in `env` names) under
    /// the variables `env`. A variable with an empty value counts as unset.
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect();
        let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| var(CONFIG_ENV).map(PathBuf::from));

        let mut figment = Figment::new();
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(EnvVars(settings_from_env(&env)));
        for setting in SECRET_SETTINGS {
            let name = format!("{ENV_PREFIX}{}", setting.to_ascii_uppercase());
            let Some(path) = var(&format!("{name}_FILE")) else {
                continue;
            };
            if var(&name).is_some() {
                return Err(ConfigError::Ambiguous(name));
            }
            let value = read_secret_file(&format!("{name}_FILE"), Path::new(&path))?;
            figment = figment.merge(Serialized::global(setting, value));
        }
        // Lossy: a variable's text is read as a number where the setting is a number.
        let raw: RawConfig = figment
            .extract_lossy()
            .map_err(|e| ConfigError::Invalid(describe(&e)))?;
        raw.resolve()
    }

    /// The core's settings of this configuration.
    pub fn settings(&self) -> Settings {
        Settings {
            tenant_name: self.tenant_name.clone(),
            tiers: self.tiers,
            default_tier: self.default_tier,
            token_grace_period: self.token_grace_period,
            max_token_grace_period: self.max_token_grace_period,
        }
    }

    /// The effective configuration as TOML (a valid configuration file), every secret
    /// shown as `[REDACTED]`.
    pub fn to_redacted_toml(&self) -> String {
        let limits = |l: &TierLimits| RawLimits {
            storage_secrets: Some(Limit(l.storage_secrets)),
            vault_connections: Some(Limit(l.vault_connections)),
            members: Some(Limit(l.members)),
        };
        let shown = RawConfig {
            listen: Some(self.bind.clone()),
            data_dir: Some(self.data_dir.clone()),
            database_url: Some(REDACTED.into()),
            master_key: self.master_key.as_ref().map(|_| RawSecret(REDACTED.into())),
            tenant_name: Some(self.tenant_name.clone()),
            default_tier: Some(self.default_tier.as_str().into()),
            token_grace_period: Some(self.token_grace_period.num_seconds()),
            max_token_grace_period: Some(self.max_token_grace_period.num_seconds()),
            log_format: Some(self.log_format),
            credential_store: Some(self.credential_store.as_str().into()),
            ssm: Some(RawSsm {
                region: self.ssm.region.clone(),
                endpoint_url: self.ssm.endpoint_url.clone(),
                prefix: Some(self.ssm.prefix.clone()),
                kms_key_id: self.ssm.kms_key_id.clone(),
            }),
            tiers: Some(RawTiers {
                free: Some(limits(&self.tiers.free)),
                pro: Some(limits(&self.tiers.pro)),
                enterprise: Some(limits(&self.tiers.enterprise)),
            }),
        };
        // Plain strings, numbers and tables always serialize.
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("custodian.db").display())
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

/// A figment error as one line. A value is never quoted (it could be a secret); the key
/// and its source are.
fn describe(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let what = match &e.kind {
                figment::error::Kind::InvalidType(actual, expected) => format!("expected {expected}, found {actual}"),
                figment::error::Kind::InvalidValue(_, expected) => format!("invalid value, expected {expected}"),
                figment::error::Kind::UnknownField(_, expected) => {
                    format!("not a setting here (the settings are: {})", expected.join(", "))
                }
                kind => kind.to_string(),
            };
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", e.path.join("."))
            };
            let source = match &e.metadata {
                Some(m) => match &m.source {
                    Some(source) => format!(" (in {} {source})", m.name),
                    None => format!(" (in {})", m.name),
                },
                None => String::new(),
            };
            format!("{key}{what}{source}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `CUSTODIAN_*` settings among `env` as nested keys: the prefix removed, lowercased,
/// `__` splitting levels (`CUSTODIAN_TIERS__FREE__MEMBERS` → `tiers.free.members`).
fn settings_from_env(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase().replace("__", ".");
            let top = key.split('.').next().unwrap_or_default();
            (KEYS.contains(&top) && !key.split('.').any(str::is_empty)).then(|| (key, value.clone()))
        })
        .collect()
}

/// The environment layer: `(nested.key, value)` pairs, each value text (read as a number
/// where the setting is one).
struct EnvVars(Vec<(String, String)>);

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("`CUSTODIAN_` environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.0 {
            let path: Vec<&str> = key.split('.').collect();
            insert_nested(&mut dict, &path, Value::from(value.clone()));
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Set `path` in `dict` to `value`, creating the tables on the way (a table wins over a
/// plain value set at its own key: `CUSTODIAN_TIERS` beside `CUSTODIAN_TIERS__FREE__…`).
fn insert_nested(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            if dict.get(*last).is_none_or(|v| v.as_dict().is_none()) {
                dict.insert((*last).to_owned(), value);
            }
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry((*first).to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
}

/// A tier limit: a number, or `"unlimited"` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit(Option<u32>);

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(n) => serializer.serialize_u32(n),
            None => serializer.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of at least 0, or \"unlimited\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Limit, E> {
                u32::try_from(v)
                    .map(|n| Limit(Some(n)))
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Limit, E> {
                u32::try_from(v)
                    .map(|n| Limit(Some(n)))
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Limit, E> {
                if v == "unlimited" {
                    return Ok(Limit(None));
                }
                v.parse::<u32>()
                    .map(|n| Limit(Some(n)))
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The configuration as the file spells it; every key optional (its default applies).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    master_key: Option<RawSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_grace_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_token_grace_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tiers: Option<RawTiers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssm: Option<RawSsm>,
}

/// A secret setting as the file spells it; `Debug` shows `[REDACTED]`.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct RawSecret(String);

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsm {
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
}

impl RawSsm {
    /// The defaults under what was set; a blank value counts as unset, like an empty
    /// variable.
    fn resolve(self) -> Result<SsmConfig, ConfigError> {
        let set = |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let prefix = set(self.prefix).unwrap_or_else(|| DEFAULT_SSM_PREFIX.to_owned());
        if !prefix.starts_with('/') {
            return Err(invalid("ssm.prefix", "must be an absolute path starting with `/`"));
        }
        let endpoint_url = set(self.endpoint_url);
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("ssm.endpoint_url", "must be an http:// or https:// URL"));
        }
        Ok(SsmConfig {
            region: set(self.region),
            endpoint_url,
            prefix,
            kms_key_id: set(self.kms_key_id),
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    #[serde(skip_serializing_if = "Option::is_none")]
    free: Option<RawLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pro: Option<RawLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enterprise: Option<RawLimits>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_secrets: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault_connections: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Limit>,
}

impl RawLimits {
    fn over(self, defaults: TierLimits) -> TierLimits {
        TierLimits {
            storage_secrets: self.storage_secrets.map_or(defaults.storage_secrets, |l| l.0),
            vault_connections: self.vault_connections.map_or(defaults.vault_connections, |l| l.0),
            members: self.members.map_or(defaults.members, |l| l.0),
        }
    }
}

fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        setting: setting.into(),
        message: message.into(),
    }
}

fn seconds(setting: &str, value: Option<i64>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(s) if s < 0 => Err(invalid(setting, "must be a number of seconds, at least 0")),
        Some(s) => Duration::try_seconds(s).ok_or_else(|| invalid(setting, "is too large")),
    }
}

impl RawConfig {
    /// The defaults under what was set, checked.
    fn resolve(self) -> Result<Config, ConfigError> {
        let defaults = Config::for_data_dir(self.data_dir.clone().unwrap_or_else(|| "./custodian-data".into()));
        let default_tier = match self.default_tier.as_deref() {
            None => defaults.default_tier,
            Some(t) => t.parse::<Tier>().map_err(|e| invalid("default_tier", e.to_string()))?,
        };
        let credential_store = match self.credential_store.as_deref() {
            None => CredentialStoreKind::Local,
            Some(value) => CredentialStoreKind::parse(value).ok_or_else(|| {
                invalid(
                    "credential_store",
                    format!("`{value}` is not a credential store; choose `local` or `aws-ssm`"),
                )
            })?,
        };
        let ssm = self.ssm.unwrap_or_default().resolve()?;
        let tiers = self.tiers.unwrap_or_default();
        let tiers = TierTable {
            free: tiers.free.unwrap_or_default().over(defaults.tiers.free),
            pro: tiers.pro.unwrap_or_default().over(defaults.tiers.pro),
            enterprise: tiers.enterprise.unwrap_or_default().over(defaults.tiers.enterprise),
        };
        let token_grace_period = seconds(
            "token_grace_period",
            self.token_grace_period,
            defaults.token_grace_period,
        )?;
        let max_token_grace_period = seconds(
            "max_token_grace_period",
            self.max_token_grace_period,
            defaults.max_token_grace_period,
        )?;
        if token_grace_period > max_token_grace_period {
            return Err(invalid(
                "token_grace_period",
                "must not be longer than `max_token_grace_period`",
            ));
        }
        let bind = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        if bind.trim().is_empty() {
            return Err(invalid("listen", "must be host:port"));
        }
        Ok(Config {
            bind,
            database_url: self.database_url.unwrap_or(defaults.database_url),
            master_key: self.master_key.map(|s| SecretString::from(s.0)),
            tenant_name: self.tenant_name.unwrap_or(defaults.tenant_name),
            data_dir: defaults.data_dir,
            default_tier,
            tiers,
            token_grace_period,
            max_token_grace_period,
            log_format: self.log_format.unwrap_or_default(),
            credential_store,
            ssm,
        })
    }
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
        assert_eq!(c.database_url, "sqlite://./custodian-data/custodian.db");
        assert_eq!(c.tenant_name, "default");
        assert_eq!(c.default_tier, Tier::Enterprise);
        assert_eq!(c.tiers, TierTable::default());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.credential_store, CredentialStoreKind::Local);
        assert_eq!(c.max_token_grace_period, Duration::days(7));
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
        assert_eq!(c.database_url, "postgres://app:hunter2@db/custodian");
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

    #[test]
    fn debug_and_print_never_show_the_database_password() {
        let c = config(&[("CUSTODIAN_DATABASE_URL", "postgres://app:hunter2@db/custodian")]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://"), "{shown}");
        let printed = c.to_redacted_toml();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("database_url = \"[REDACTED]\""), "{printed}");
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
        assert!(shown.contains("master_key: [REDACTED]"), "{shown}");
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
        assert!(format!("{c:?}").contains("master_key: (unset)"));
        assert!(!c.to_redacted_toml().contains("master_key"));
    }

    #[test]
    fn the_master_key_takes_part_in_equality() {
        let with = config(&[("CUSTODIAN_MASTER_KEY", CANARY_KEY)]);
        assert_eq!(with, config(&[("CUSTODIAN_MASTER_KEY", CANARY_KEY)]));
        assert_ne!(with, config(&[("CUSTODIAN_MASTER_KEY", "another")]));
        assert_ne!(with, config(&[]));
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
        let again = Config::from_sources(
            Some(f.path()),
            env(&[("CUSTODIAN_DATABASE_URL", c.database_url.as_str())]),
        )
        .unwrap();
        assert_eq!(again, c);
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
        let again = Config::from_sources(
            Some(f.path()),
            env(&[("CUSTODIAN_DATABASE_URL", c.database_url.as_str())]),
        )
        .unwrap();
        assert_eq!(again, c);
    }
}
