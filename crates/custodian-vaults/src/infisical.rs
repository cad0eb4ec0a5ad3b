//! The Infisical adapter: a machine identity's universal auth and the v4 secrets API.
//!
//! - Login: `POST {api}/v1/auth/universal-auth/login` with the connection's `client_id` and
//!   its secret (`client_secret`). The access token is kept in memory per
//!   `(connection, revision, site)`: a rotation (new revision) logs in anew. It is renewed
//!   (`POST {api}/v1/auth/token/renew`) when its `expiresIn` is near, and replaced by a new
//!   login when its `accessTokenMaxTTL` would not allow a renewal (the official Go SDK's
//!   rule) or the renewal fails. A read refused (`401`/`403`) with a kept token logs in
//!   once more and is tried once more (a token that expired while held).
//! - Reads: `GET {api}/v4/secrets/{key}?projectId=&environment=&secretPath=`, one request
//!   per reference. Infisical has no batch read by name: the list endpoint filters by
//!   folder, tags and metadata only, so it would read every value of a folder to use a few.
//! - Errors: Infisical's envelope `{"reqId","statusCode","message","error"}`; `401`/`403`
//!   at login → `AuthFailed`, `404` on a secret → `ReferenceNotFound`, `429` →
//!   `RateLimited` (from `Retry-After`), `5xx`, timeouts and anything unexpected →
//!   `Unavailable`. No error, log line or `Debug` output holds the client secret, an
//!   access token or a value.
//! - A connection's own instance (self-hosted, [`InfisicalProvider::fetch_from`]) is behind
//!   an SSRF guard: `https` only, and no loopback, private, link-local, unspecified or
//!   CGNAT address, checked on every address the host resolves to, at connection time,
//!   so the address connected to is one that was checked. Redirects are never followed.
//!   The configured `api_url` is the operator's and is trusted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use custodian_domain::{VaultConnectionId, VaultReference, VaultSettings, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

const PROVIDER: VaultType = VaultType::Infisical;
/// Longest part of a provider's error message repeated in ours.
const MAX_MESSAGE_CHARS: usize = 200;
/// Renew at most this long before a token's `expiresIn` runs out.
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// The Infisical adapter's settings (`[vaults.infisical]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfisicalConfig {
    /// The operator's Infisical (site URL; `/api` is appended unless present). Trusted:
    /// the SSRF guard applies only to a connection's own instance URL.
    pub api_url: Url,
    /// Bound on one whole request (connect, send, read the answer).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Let a connection's own instance URL be plain `http` or reach loopback, private,
    /// link-local or CGNAT addresses (development and tests only).
    pub allow_private_urls: bool,
}

impl Default for InfisicalConfig {
    fn default() -> Self {
        Self {
            api_url: Url::parse("https://app.infisical.com").unwrap_or_else(|_| unreachable!("a valid literal URL")),
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            allow_private_urls: false,
        }
    }
}

/// An access token and what decides when it is renewed or replaced.
struct KeptToken {
    token: SecretString,
    /// `expiresIn`; zero when the token does not expire.
    expires_in: Duration,
    /// `accessTokenMaxTTL`; zero when it has none.
    max_ttl: Duration,
    first_fetched: Instant,
    last_fetched: Instant,
}

impl KeptToken {
    fn from_answer(answer: TokenAnswer, first_fetched: Instant) -> Self {
        let now = Instant::now();
        Self {
            token: SecretString::from(answer.access_token),
            expires_in: Duration::from_secs(answer.expires_in),
            max_ttl: Duration::from_secs(answer.access_token_max_ttl),
            first_fetched,
            last_fetched: now,
        }
    }

    /// What to do before using the token now.
    fn next_step(&self, now: Instant) -> TokenStep {
        if self.expires_in.is_zero() {
            return TokenStep::Use;
        }
        let margin = (self.expires_in / 2).min(MAX_RENEW_MARGIN);
        if now.duration_since(self.last_fetched) < self.expires_in - margin {
            return TokenStep::Use;
        }
        // The Go SDK's rule: when what is left of the max TTL is shorter than a
        // renewal's lifetime, log in again instead.
        let lived = now.duration_since(self.first_fetched);
        if !self.max_ttl.is_zero() && self.max_ttl.saturating_sub(lived) < self.expires_in {
            TokenStep::Login
        } else {
            TokenStep::Renew
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum TokenStep {
    Use,
    Renew,
    Login,
}

/// The answer to a login or a renewal.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(rename = "accessTokenMaxTTL", default)]
    access_token_max_ttl: u64,
}

#[derive(Deserialize)]
struct SecretAnswer {
    secret: SecretBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretBody {
    secret_value: String,
    #[serde(default)]
    secret_value_hidden: bool,
}

/// Infisical's error envelope (`message` is an array for `422`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    req_id: Option<String>,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

/// Where requests go: the API root (`…/api`) and whether the guard applies.
#[derive(Debug, Clone)]
struct Site {
    api: Url,
    guarded: bool,
}

type TokenKey = (VaultConnectionId, i64, String);
type TokenSlot = Arc<tokio::sync::Mutex<Option<KeptToken>>>;

/// The Infisical adapter.
pub struct InfisicalProvider {
    config: InfisicalConfig,
    /// Built at the first call: a server whose teams use no Infisical connection never
    /// builds it. An error when it could not be built (reported by every call).
    client: OnceLock<Result<reqwest::Client, String>>,
    tokens: Mutex<HashMap<TokenKey, TokenSlot>>,
}

impl std::fmt::Debug for InfisicalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfisicalProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl InfisicalProvider {
    pub fn new(config: InfisicalConfig) -> Self {
        Self {
            config,
            client: OnceLock::new(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Like [`VaultProvider::fetch`], but from a connection's own Infisical at `site_url`
    /// (a self-hosted instance), behind the SSRF guard.
    pub async fn fetch_from(
        &self,
        site_url: &Url,
        access: &VaultAccess,
        references: &[VaultReference],
        freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        let site = self.connection_site(site_url)?;
        self.fetch_at(&site, access, references, freshness).await
    }

    /// Like [`VaultProvider::verify`], but against a connection's own Infisical at
    /// `site_url` (a self-hosted instance), behind the SSRF guard.
    pub async fn verify_at(&self, site_url: &Url, access: &VaultAccess) -> Result<(), VaultError> {
        let site = self.connection_site(site_url)?;
        self.login(&site, access).await.map(drop)
    }

    fn operator_site(&self) -> Site {
        Site {
            api: api_root(&self.config.api_url),
            guarded: false,
        }
    }

    /// A connection's own site, refused unless `https` (or private URLs are allowed) and,
    /// for an IP literal, unless the address may be reached. Host names are checked when
    /// they are resolved, at connection time.
    fn connection_site(&self, site_url: &Url) -> Result<Site, VaultError> {
        let refuse = |why: String| unavailable(format!("refused the connection's Infisical URL: {why}"));
        if site_url.scheme() != "https" && !(self.config.allow_private_urls && site_url.scheme() == "http") {
            return Err(refuse(format!("the scheme must be https, not {}", site_url.scheme())));
        }
        if !site_url.username().is_empty() || site_url.password().is_some() {
            return Err(refuse("it must not hold credentials".into()));
        }
        let ip = match site_url.host() {
            None => return Err(refuse("it has no host".into())),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(ip) = ip
            && !self.config.allow_private_urls
            && let Some(kind) = refused_address(ip)
        {
            return Err(refuse(format!("{ip} is a {kind} address")));
        }
        Ok(Site {
            api: api_root(site_url),
            guarded: true,
        })
    }

    fn client(&self) -> Result<&reqwest::Client, VaultError> {
        self.client
            .get_or_init(|| build_client(&self.config))
            .as_ref()
            .map_err(|e| unavailable(e.clone()))
    }

    fn slot(&self, site: &Site, access: &VaultAccess) -> TokenSlot {
        let key = (access.connection_id, access.revision, site.api.to_string());
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Tokens of this connection's older revisions are never used again.
        tokens.retain(|(id, revision, _), _| *id != access.connection_id || *revision >= access.revision);
        tokens.entry(key).or_default().clone()
    }

    async fn fetch_at(
        &self,
        site: &Site,
        access: &VaultAccess,
        references: &[VaultReference],
        freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        let (project_id, environment, secret_path) = infisical_settings(&access.settings)?;
        let slot = self.slot(site, access);
        // A fresh fetch (a verification) uses nothing kept: it logs in anew. The slot is
        // locked only while a token is made ready, not during the reads.
        let (mut token, mut from_login) = {
            let mut kept = slot.lock().await;
            let logged_in = self
                .ready_token(site, access, &mut kept, freshness == Freshness::Fresh)
                .await?;
            (current(&kept)?, logged_in)
        };
        let mut values = Vec::with_capacity(references.len());
        for reference in references {
            let (folder, key) = split_reference(reference);
            let path = join_path(secret_path, folder);
            let read =
                |token: SecretString| self.read_secret(site, token, project_id, environment, &path, key, reference);
            let value = match read(token.clone()).await {
                Err(Read::TokenRefused) if !from_login => {
                    tracing::debug!(connection_id = %access.connection_id, "Infisical refused a kept token; logging in again");
                    token = self.replace_token(site, access, &slot, &token).await?;
                    from_login = true;
                    read(token.clone()).await
                }
                other => other,
            };
            match value {
                Ok(v) => values.push(v),
                Err(Read::TokenRefused) => {
                    forget_token(&slot, &token).await;
                    return Err(VaultError::AuthFailed { provider: PROVIDER });
                }
                Err(Read::Failed(e)) => return Err(e),
            }
        }
        Ok(values)
    }

    /// A new login in place of `refused`, unless another fetch already replaced it.
    async fn replace_token(
        &self,
        site: &Site,
        access: &VaultAccess,
        slot: &TokenSlot,
        refused: &SecretString,
    ) -> Result<SecretString, VaultError> {
        let mut kept = slot.lock().await;
        let replaced = kept
            .as_ref()
            .is_some_and(|t| t.token.expose_secret() != refused.expose_secret());
        if !replaced {
            self.ready_token(site, access, &mut kept, true).await?;
        }
        current(&kept)
    }

    /// Leaves a usable token in `kept`: a new login when `login` or nothing is kept,
    /// else the kept one, renewed or replaced when its lifetime says so. True when the
    /// token comes from a login just made.
    async fn ready_token(
        &self,
        site: &Site,
        access: &VaultAccess,
        kept: &mut Option<KeptToken>,
        login: bool,
    ) -> Result<bool, VaultError> {
        let step = match kept.as_ref() {
            Some(_) if login => TokenStep::Login,
            None => TokenStep::Login,
            Some(token) => token.next_step(Instant::now()),
        };
        match step {
            TokenStep::Use => Ok(false),
            TokenStep::Login => {
                *kept = None;
                *kept = Some(self.login(site, access).await?);
                Ok(true)
            }
            TokenStep::Renew => {
                let Some(token) = kept.take() else {
                    return Ok(false);
                };
                match self.renew(site, &token).await {
                    Ok(renewed) => {
                        *kept = Some(renewed);
                        Ok(false)
                    }
                    Err(e @ VaultError::RateLimited { .. }) => {
                        // The kept token may still be good for a while.
                        *kept = Some(token);
                        Err(e)
                    }
                    Err(_) => {
                        tracing::debug!(connection_id = %access.connection_id, "Infisical token renewal failed; logging in again");
                        *kept = Some(self.login(site, access).await?);
                        Ok(true)
                    }
                }
            }
        }
    }

    async fn login(&self, site: &Site, access: &VaultAccess) -> Result<KeptToken, VaultError> {
        let VaultSettings::Infisical { client_id, .. } = &access.settings else {
            return Err(not_infisical(&access.settings));
        };
        let url = endpoint(&site.api, &["v1", "auth", "universal-auth", "login"]);
        let body = serde_json::json!({
            "clientId": client_id,
            "clientSecret": access.secret.expose().expose_secret(),
        });
        let started = Instant::now();
        let response = self.send(site, self.client()?.post(url).json(&body), "login").await?;
        let status = response.status();
        if status.is_success() {
            let answer: TokenAnswer = read_json(response, "login").await?;
            tracing::debug!(connection_id = %access.connection_id, "logged in to Infisical");
            return Ok(KeptToken::from_answer(answer, started));
        }
        let envelope = envelope(response).await;
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(VaultError::AuthFailed { provider: PROVIDER }),
            _ => Err(failure(status, &envelope, "login")),
        }
    }

    async fn renew(&self, site: &Site, token: &KeptToken) -> Result<KeptToken, VaultError> {
        let url = endpoint(&site.api, &["v1", "auth", "token", "renew"]);
        let body = serde_json::json!({ "accessToken": token.token.expose_secret() });
        let response = self
            .send(site, self.client()?.post(url).json(&body), "token renewal")
            .await?;
        let status = response.status();
        if status.is_success() {
            let answer: TokenAnswer = read_json(response, "token renewal").await?;
            return Ok(KeptToken::from_answer(answer, token.first_fetched));
        }
        let envelope = envelope(response).await;
        Err(failure(status, &envelope, "token renewal"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn read_secret(
        &self,
        site: &Site,
        token: SecretString,
        project_id: &str,
        environment: &str,
        secret_path: &str,
        key: &str,
        reference: &VaultReference,
    ) -> Result<SecretString, Read> {
        let mut url = endpoint(&site.api, &["v4", "secrets", key]);
        url.query_pairs_mut()
            .append_pair("projectId", project_id)
            .append_pair("environment", environment)
            .append_pair("secretPath", secret_path)
            .append_pair("viewSecretValue", "true")
            .append_pair("expandSecretReferences", "true")
            .append_pair("include_imports", "true");
        let request = self.client()?.get(url).bearer_auth(token.expose_secret());
        let response = self.send(site, request, "secret read").await?;
        let status = response.status();
        if status.is_success() {
            let answer: SecretAnswer = read_json(response, "secret read").await?;
            if answer.secret.secret_value_hidden {
                return Err(Read::Failed(unavailable(format!(
                    "the machine identity may not read the value at reference {reference} (it is hidden)"
                ))));
            }
            return Ok(SecretString::from(answer.secret.secret_value));
        }
        let envelope = envelope(response).await;
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Read::TokenRefused,
            StatusCode::NOT_FOUND => Read::Failed(VaultError::ReferenceNotFound {
                provider: PROVIDER,
                reference: reference.to_string(),
            }),
            _ => Read::Failed(failure(status, &envelope, "secret read")),
        })
    }

    /// Sends `request`; a redirect, a timeout or a refused address is `Unavailable`.
    async fn send(
        &self,
        site: &Site,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, VaultError> {
        let response = request.send().await.map_err(|e| transport_error(&e, what))?;
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(describe_location)
                .unwrap_or_else(|| "nowhere".into());
            let whose = if site.guarded {
                "the connection's Infisical"
            } else {
                "Infisical"
            };
            return Err(unavailable(format!(
                "{whose} answered the {what} with a redirect ({}) to {location}; redirects are not followed",
                response.status().as_u16()
            )));
        }
        Ok(response)
    }
}

/// How one read ended: the token was refused, or another error.
enum Read {
    TokenRefused,
    Failed(VaultError),
}

impl From<VaultError> for Read {
    fn from(e: VaultError) -> Self {
        Read::Failed(e)
    }
}

/// Drops the kept token if it is still `refused`.
async fn forget_token(slot: &TokenSlot, refused: &SecretString) {
    let mut kept = slot.lock().await;
    if kept
        .as_ref()
        .is_some_and(|t| t.token.expose_secret() == refused.expose_secret())
    {
        *kept = None;
    }
}

fn current(kept: &Option<KeptToken>) -> Result<SecretString, VaultError> {
    kept.as_ref()
        .map(|t| t.token.clone())
        .ok_or_else(|| unavailable("no access token after logging in".into()))
}

#[async_trait]
impl VaultProvider for InfisicalProvider {
    fn vault_type(&self) -> VaultType {
        PROVIDER
    }

    /// A fresh login with the connection's client id and secret (never a kept token), at
    /// the connection's own instance when it names one.
    async fn verify(&self, access: &VaultAccess) -> Result<(), VaultError> {
        match own_instance(access)? {
            Some(url) => self.verify_at(&url, access).await,
            None => self.login(&self.operator_site(), access).await.map(drop),
        }
    }

    async fn fetch(
        &self,
        access: &VaultAccess,
        references: &[VaultReference],
        freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        match own_instance(access)? {
            Some(url) => self.fetch_from(&url, access, references, freshness).await,
            None => {
                self.fetch_at(&self.operator_site(), access, references, freshness)
                    .await
            }
        }
    }
}

/// The connection's own Infisical instance, when it names one (behind the SSRF guard).
fn own_instance(access: &VaultAccess) -> Result<Option<Url>, VaultError> {
    match &access.settings {
        VaultSettings::Infisical { api_url: Some(url), .. } => Url::parse(url)
            .map(Some)
            .map_err(|_| unavailable("the connection's Infisical URL is not a URL".into())),
        _ => Ok(None),
    }
}

/// The HTTP client of every Infisical call: no redirects, no proxy, and names resolved
/// through the guard.
fn build_client(config: &InfisicalConfig) -> Result<reqwest::Client, String> {
    let resolver = GuardedResolver {
        trusted_host: config.api_url.host_str().map(str::to_ascii_lowercase),
        allow_private: config.allow_private_urls,
    };
    reqwest::Client::builder()
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        // A redirect answer is an error: following it could lead anywhere.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the host itself, past the guard.
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .user_agent(concat!("custodian/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn unavailable(message: String) -> VaultError {
    VaultError::Unavailable {
        provider: PROVIDER,
        message,
    }
}

fn not_infisical(settings: &VaultSettings) -> VaultError {
    unavailable(format!(
        "the connection is a {} connection, not an Infisical one",
        settings.vault_type()
    ))
}

fn infisical_settings(settings: &VaultSettings) -> Result<(&str, &str, &str), VaultError> {
    match settings {
        VaultSettings::Infisical {
            project_id,
            environment,
            secret_path,
            ..
        } => Ok((project_id, environment, secret_path)),
        other => Err(not_infisical(other)),
    }
}

/// The API root of a site URL: trailing `/` trimmed, `/api` appended unless present (the
/// Go SDK's rule).
fn api_root(site: &Url) -> Url {
    let mut url = site.clone();
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    if path.ends_with("/api") {
        url.set_path(&path);
    } else {
        url.set_path(&format!("{path}/api"));
    }
    url
}

fn endpoint(api: &Url, segments: &[&str]) -> Url {
    let mut url = api.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// `folder/KEY` → (`folder`, `KEY`); a bare key has folder `""`.
fn split_reference(reference: &VaultReference) -> (&str, &str) {
    let raw = reference.as_str().trim_start_matches('/');
    raw.rsplit_once('/').unwrap_or(("", raw))
}

/// The connection's `secret_path` joined with a reference's folder, as Infisical keeps
/// paths: leading `/`, no trailing `/`, root `/`.
fn join_path(secret_path: &str, folder: &str) -> String {
    let parts: Vec<&str> = secret_path
        .split('/')
        .chain(folder.split('/'))
        .filter(|p| !p.is_empty())
        .collect();
    format!("/{}", parts.join("/"))
}

/// A redirect's target without its query (which could hold anything).
fn describe_location(location: &str) -> String {
    let cut = location.split(['?', '#']).next().unwrap_or_default();
    truncate(cut)
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(MAX_MESSAGE_CHARS).collect::<String>())
    }
}

async fn read_json<T: for<'de> Deserialize<'de>>(response: reqwest::Response, what: &str) -> Result<T, VaultError> {
    let bytes = response.bytes().await.map_err(|e| transport_error(&e, what))?;
    // The body holds a token or a value: say only what failed, never what was read.
    serde_json::from_slice(&bytes)
        .map_err(|_| unavailable(format!("Infisical's answer to the {what} is not what it documents")))
}

async fn envelope(response: reqwest::Response) -> (Option<Duration>, Envelope) {
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let envelope = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => Envelope::default(),
    };
    (retry_after, envelope)
}

/// A non-success answer other than those each call handles itself.
fn failure(status: StatusCode, (retry_after, envelope): &(Option<Duration>, Envelope), what: &str) -> VaultError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return VaultError::RateLimited {
            provider: PROVIDER,
            retry_after: *retry_after,
        };
    }
    let message = match &envelope.message {
        Some(serde_json::Value::String(m)) => truncate(m),
        Some(other) => truncate(&other.to_string()),
        None => String::new(),
    };
    let mut text = format!("the {what} was answered {}", status.as_u16());
    if let Some(name) = &envelope.error {
        text.push_str(&format!(" {}", truncate(name)));
    }
    if !message.is_empty() {
        text.push_str(&format!(": {message}"));
    }
    if let Some(req_id) = &envelope.req_id {
        text.push_str(&format!(" (reqId {})", truncate(req_id)));
    }
    unavailable(text)
}

fn transport_error(e: &reqwest::Error, what: &str) -> VaultError {
    // The error's chain names the URL's host and our resolver's refusal, never a body.
    let mut detail = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    if detail.is_empty() {
        unavailable(format!("the {what} {kind}"))
    } else {
        unavailable(format!("the {what} {kind}: {}", truncate(&detail)))
    }
}

/// Resolves host names and refuses any that resolves to an address the guard keeps out;
/// the connector then connects only to the addresses returned, all of them checked.
#[derive(Debug)]
struct GuardedResolver {
    /// The operator's host: resolved without the check.
    trusted_host: Option<String>,
    allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("refused the connection's Infisical URL: {host} resolves to {ip}, a {kind} address")]
struct RefusedAddress {
    host: String,
    ip: IpAddr,
    kind: &'static str,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let check = !self.allow_private && self.trusted_host.as_deref() != Some(host.as_str());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if check {
                for addr in &addrs {
                    if let Some(kind) = refused_address(addr.ip()) {
                        return Err(Box::new(RefusedAddress {
                            host,
                            ip: addr.ip(),
                            kind,
                        }) as Box<dyn std::error::Error + Send + Sync>);
                    }
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Why `ip` may not be reached from a connection's own URL, or `None` when it may.
fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            refused_v6(v6)
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (CGNAT)")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if let [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] = ip.segments() {
        // NAT64: the IPv4 address it embeds decides.
        let [h1, h2] = hi.to_be_bytes();
        let [l1, l2] = lo.to_be_bytes();
        refused_v4(Ipv4Addr::new(h1, h2, l1, l2))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kept_out_range_is_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(refused_address(ip).is_some(), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refused_address(ip), None, "{ip} should pass");
        }
    }

    #[test]
    fn the_api_root_gets_api_appended_once() {
        let root = |s: &str| api_root(&Url::parse(s).unwrap()).to_string();
        assert_eq!(root("https://app.infisical.com"), "https://app.infisical.com/api");
        assert_eq!(root("https://app.infisical.com/"), "https://app.infisical.com/api");
        assert_eq!(root("https://h.example/api/"), "https://h.example/api");
        assert_eq!(root("https://h.example/infisical"), "https://h.example/infisical/api");
        let api = api_root(&Url::parse("https://h.example/api").unwrap());
        assert_eq!(
            endpoint(&api, &["v4", "secrets", "A.B"]).as_str(),
            "https://h.example/api/v4/secrets/A.B"
        );
    }

    #[test]
    fn paths_join_the_connection_path_and_the_reference_folder() {
        assert_eq!(join_path("/", ""), "/");
        assert_eq!(join_path("/", "aws"), "/aws");
        assert_eq!(join_path("/team/", "aws/prod"), "/team/aws/prod");
        assert_eq!(join_path("/team", ""), "/team");
        let r = |s: &str| VaultReference::parse(VaultType::Infisical, s).unwrap();
        assert_eq!(split_reference(&r("KEY")), ("", "KEY"));
        assert_eq!(split_reference(&r("/KEY")), ("", "KEY"));
        assert_eq!(split_reference(&r("/aws/prod/KEY")), ("aws/prod", "KEY"));
    }

    #[test]
    fn a_token_is_renewed_near_expiry_and_replaced_near_its_max_ttl() {
        let start = Instant::now();
        let token = |expires: u64, max: u64| KeptToken {
            token: SecretString::from("t"),
            expires_in: Duration::from_secs(expires),
            max_ttl: Duration::from_secs(max),
            first_fetched: start,
            last_fetched: start,
        };
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(token(3600, 86400).next_step(at(10)), TokenStep::Use);
        assert_eq!(token(3600, 86400).next_step(at(3550)), TokenStep::Renew);
        assert_eq!(token(3600, 5000).next_step(at(3550)), TokenStep::Login);
        assert_eq!(token(0, 0).next_step(at(1_000_000)), TokenStep::Use);
        assert_eq!(token(10, 1000).next_step(at(4)), TokenStep::Use);
        assert_eq!(token(10, 1000).next_step(at(5)), TokenStep::Renew);
    }
}
