//! The `aws-ssm` credential store: every credential version is one SecureString parameter
//! in AWS SSM Parameter Store, named
//! `<prefix>/<tenant>/<team_id>/<kind>/<record_id>/v<version>`.
//!
//! Why one parameter per version rather than one per record with SSM's own history: SSM
//! cannot delete a single version of a parameter, so superseded credentials would stay in
//! its history after every rotation (docs/DECISIONS.md).
//!
//! SSM's rules on names (characters, 15 levels, length, no `aws`/`ssm` prefix) and values
//! (≤ 4096 bytes Standard, ≤ 8192 Advanced) are checked before any call and answered with
//! [`StoreError::Rejected`]. Throttling, 5xx answers and timeouts are retried by the SDK
//! (standard mode: jittered exponential backoff, bounded attempts, an operation timeout)
//! and then surface as [`StoreError::Unavailable`].
//!
//! AWS permissions the store needs, on `arn:aws:ssm:<region>:<account>:parameter<prefix>/*`:
//! `ssm:PutParameter`, `ssm:GetParameter`, `ssm:GetParametersByPath`, `ssm:DeleteParameter`,
//! `ssm:DeleteParameters`; and on the KMS key (`alias/aws/ssm` unless configured):
//! `kms:Encrypt`, `kms:Decrypt` (and `kms:GenerateDataKey` for Advanced-tier values).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::config::Region;
use aws_sdk_ssm::operation::delete_parameter::DeleteParameterError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::operation::put_parameter::PutParameterError;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use aws_smithy_http_client::tls;
use custodian_ports::{CredentialKey, CredentialStore, StoreError, StoredPage, StoredVersion};
use secrecy::{ExposeSecret, SecretString};

mod errors;
mod names;

use errors::{Message, classify};
use names::{Layout, Tier};

pub use names::{ADVANCED_MAX_VALUE, MAX_LEVELS, MAX_NAME_LEN, STANDARD_MAX_VALUE};

/// The configuration name of this backend.
pub const BACKEND: &str = "aws-ssm";
/// The prefix every parameter name starts with unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "/custodian";

/// Most names one `DeleteParameters` call takes.
const DELETE_BATCH: usize = 10;
/// Most results one `GetParametersByPath` page holds.
const LIST_PAGE: i32 = 10;

/// Where and how the store keeps its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmSettings {
    /// AWS region; `None` takes the SDK's standard chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Another endpoint than AWS's (moto, LocalStack, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Absolute path every name starts with; default [`DEFAULT_PREFIX`].
    pub prefix: String,
    /// KMS key (id, ARN or alias) encrypting the SecureStrings; `None` is SSM's default
    /// key `alias/aws/ssm`.
    pub kms_key_id: Option<String>,
    /// The tenant: one level of every name, right under the prefix.
    pub tenant: String,
    /// How throttling, faults and slowness are retried and bounded.
    pub retry: SsmRetry,
}

impl SsmSettings {
    /// Defaults for `tenant`: prefix `/custodian`, SSM's default key, region and
    /// credentials from the SDK's standard chain.
    pub fn new(tenant: impl Into<String>) -> SsmSettings {
        SsmSettings {
            region: None,
            endpoint_url: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            kms_key_id: None,
            tenant: tenant.into(),
            retry: SsmRetry::default(),
        }
    }
}

/// Retry and time bounds of every call: the SDK's standard retry mode (exponential backoff
/// with full jitter from `initial_backoff` up to `max_backoff`, at most `max_attempts`
/// attempts) retries throttling, 5xx answers and transient network failures, and
/// `operation_timeout` bounds one call with all its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmRetry {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// One call of the store to SSM, all attempts and backoff included.
    pub operation_timeout: Duration,
    /// One HTTP attempt.
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for SsmRetry {
    fn default() -> Self {
        SsmRetry {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// The `aws-ssm` [`CredentialStore`].
#[derive(Clone)]
pub struct SsmCredentialStore {
    client: Client,
    layout: Layout,
    kms_key_id: Option<String>,
}

impl fmt::Debug for SsmCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmCredentialStore")
            .field("base", &self.layout.base())
            .field("kms_key_id", &self.kms_key_id)
            .finish_non_exhaustive()
    }
}

impl SsmCredentialStore {
    /// A store configured from `settings`, with credentials (and the region, when the
    /// settings name none) from the SDK's standard chain. `Rejected` when the prefix or
    /// tenant breaks SSM's name rules, `Internal` when no region can be found.
    pub async fn connect(settings: SsmSettings) -> Result<SsmCredentialStore, StoreError> {
        // Check the names before the SDK looks for a region and credentials.
        Layout::new(&settings.prefix, &settings.tenant)?;
        let sdk_config = Self::config_loader(&settings).load().await;
        Self::from_sdk_config(&sdk_config, &settings)
    }

    /// The SDK configuration loader `connect` uses: region, endpoint, retry and timeouts
    /// from `settings`, HTTPS on rustls. Customize it (e.g. static credentials in tests),
    /// load it, and pass the result to [`SsmCredentialStore::from_sdk_config`].
    pub fn config_loader(settings: &SsmSettings) -> aws_config::ConfigLoader {
        let retry = &settings.retry;
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(retry.max_attempts.max(1))
                    .with_initial_backoff(retry.initial_backoff)
                    .with_max_backoff(retry.max_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(retry.operation_timeout)
                    .operation_attempt_timeout(retry.attempt_timeout)
                    .connect_timeout(retry.connect_timeout)
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint_url) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint_url.clone());
        }
        loader
    }

    /// A store on a loaded SDK configuration; the region must be set.
    pub fn from_sdk_config(
        sdk_config: &aws_config::SdkConfig,
        settings: &SsmSettings,
    ) -> Result<SsmCredentialStore, StoreError> {
        let layout = Layout::new(&settings.prefix, &settings.tenant)?;
        if sdk_config.region().is_none() {
            return Err(StoreError::Internal(
                "no AWS region for the SSM credential store: set CUSTODIAN_SSM__REGION or AWS_REGION".to_owned(),
            ));
        }
        Ok(SsmCredentialStore {
            client: Client::new(sdk_config),
            layout,
            kms_key_id: settings.kms_key_id.clone(),
        })
    }

    /// Where this store keeps the deployment's values: the region and the path every name
    /// starts with (`eu-west-1:/custodian/acme`). Another region or path holds other values.
    pub fn location(&self) -> String {
        let region = self.client.config().region().map_or("", |r| r.as_ref());
        format!("{region}:{}", self.layout.base())
    }

    /// The name of the parameter holding `version` of `key`.
    pub fn parameter_name(&self, key: &CredentialKey, version: i64) -> Result<String, StoreError> {
        self.layout.parameter_name(key, version)
    }

    /// The versions of `key` stored now, ascending (every page of the record's path).
    pub async fn stored_versions(&self, key: &CredentialKey) -> Result<Vec<i64>, StoreError> {
        let path = self.layout.record_path(key);
        let mut versions = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_parameters_by_path()
                .path(&path)
                .recursive(false)
                .with_decryption(false)
                .max_results(LIST_PAGE)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify("GetParametersByPath", &e, Message::Show))?;
            versions.extend(
                page.parameters()
                    .iter()
                    .filter_map(|p| p.name())
                    .filter_map(|name| names::version_of(&path, name)),
            );
            match page.next_token() {
                // A page may be empty and still have a successor: follow tokens only.
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        versions.sort_unstable();
        versions.dedup();
        Ok(versions)
    }

    /// Deletes these versions of `key`, ten names per call; absent ones are fine.
    async fn delete_versions(&self, key: &CredentialKey, versions: &[i64]) -> Result<(), StoreError> {
        let names = versions
            .iter()
            .map(|&version| self.layout.parameter_name(key, version))
            .collect::<Result<Vec<_>, _>>()?;
        for batch in names.chunks(DELETE_BATCH) {
            // Names SSM does not know come back in `invalid_parameters`: already gone.
            self.client
                .delete_parameters()
                .set_names(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("DeleteParameters", &e, Message::Show))?;
        }
        Ok(())
    }
}

impl From<Tier> for ParameterTier {
    fn from(tier: Tier) -> Self {
        match tier {
            Tier::Standard => ParameterTier::Standard,
            Tier::Advanced => ParameterTier::Advanced,
        }
    }
}

#[async_trait]
impl CredentialStore for SsmCredentialStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        let name = self.layout.parameter_name(key, version)?;
        let tier = names::tier_for(value.expose_secret().len())?;
        let mut request = self
            .client
            .put_parameter()
            .name(&name)
            .value(value.expose_secret())
            .r#type(ParameterType::SecureString)
            .tier(tier.into())
            .overwrite(false);
        if let Some(key_id) = &self.kms_key_id {
            request = request.key_id(key_id);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PutParameterError::ParameterAlreadyExists(_)) => Err(StoreError::AlreadyExists),
                Some(PutParameterError::InvalidKeyId(_)) => Err(StoreError::Rejected(format!(
                    "AWS SSM does not accept the KMS key {:?} (CUSTODIAN_SSM__KMS_KEY_ID)",
                    self.kms_key_id.as_deref().unwrap_or("alias/aws/ssm")
                ))),
                // Validation messages can quote the request: the value is never shown.
                _ => Err(classify("PutParameter", &e, Message::Hide)),
            },
        }
    }

    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        if version < 1 {
            return Err(StoreError::NotFound);
        }
        let name = self.layout.parameter_name(key, version)?;
        let output = match self
            .client
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                return Err(match e.as_service_error() {
                    Some(GetParameterError::ParameterNotFound(_) | GetParameterError::ParameterVersionNotFound(_)) => {
                        StoreError::NotFound
                    }
                    Some(GetParameterError::InvalidKeyId(_)) => StoreError::Integrity,
                    _ => classify("GetParameter", &e, Message::Show),
                });
            }
        };
        let parameter = output
            .parameter
            .ok_or_else(|| StoreError::Internal(format!("AWS SSM GetParameter returned no parameter for {key}")))?;
        if parameter.r#type != Some(ParameterType::SecureString) {
            // Not written by this store: a plain String at our name is not trusted.
            return Err(StoreError::Integrity);
        }
        match parameter.value {
            Some(value) => Ok(SecretString::from(value)),
            None => Err(StoreError::Internal(format!(
                "AWS SSM GetParameter returned no value for {key} version {version}"
            ))),
        }
    }

    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        if version < 1 {
            return Ok(());
        }
        let name = self.layout.parameter_name(key, version)?;
        match self.client.delete_parameter().name(&name).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(DeleteParameterError::ParameterNotFound(_)) => Ok(()),
                _ => Err(classify("DeleteParameter", &e, Message::Show)),
            },
        }
    }

    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        let older: Vec<i64> = self
            .stored_versions(key)
            .await?
            .into_iter()
            .filter(|&version| version < keep)
            .collect();
        self.delete_versions(key, &older).await
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        // SSM pages by its own token, at most 10 parameters a call; names without their
        // values (nothing is decrypted).
        let mut versions = Vec::new();
        let mut next_token = page;
        loop {
            let reply = self
                .client
                .get_parameters_by_path()
                .path(self.layout.base())
                .recursive(true)
                .with_decryption(false)
                .max_results(LIST_PAGE)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify("GetParametersByPath", &e, Message::Show))?;
            for parameter in reply.parameters() {
                let (Some(name), Some(modified)) = (parameter.name(), parameter.last_modified_date()) else {
                    continue;
                };
                let Some((key, version)) = names::key_of(self.layout.base(), name) else {
                    continue;
                };
                let written_at = chrono::DateTime::from_timestamp(modified.secs(), modified.subsec_nanos())
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
                versions.push(StoredVersion {
                    key,
                    version,
                    written_at,
                });
            }
            match reply.next_token() {
                Some(token) if !token.is_empty() => {
                    if versions.len() >= limit as usize {
                        return Ok(StoredPage {
                            versions,
                            next: Some(token.to_owned()),
                        });
                    }
                    next_token = Some(token.to_owned());
                }
                _ => return Ok(StoredPage { versions, next: None }),
            }
        }
    }

    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        let all = self.stored_versions(key).await?;
        self.delete_versions(key, &all).await
    }
}
