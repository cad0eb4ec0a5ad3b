//! The Doppler adapter: a connection's service token reads its config through
//! `GET /v3/configs/config/secrets/download?format=json`.
//!
//! - One download per fetch, narrowed with `secrets=` to the names asked; values are
//!   picked by name (`DOPPLER_*` meta names only when asked for).
//! - `project`/`config` are sent only when the connection sets them: a service token
//!   implies both.
//! - Revalidation: per (connection, revision), the last `ETag` and the values it carried
//!   are kept in memory (bounded); [`Freshness::MayRevalidate`] sends `If-None-Match` and a
//!   `304` answers with those values. [`Freshness::Fresh`] (and `verify`) never does.
//! - Errors: 401/403 → `AuthFailed`; 404 → `Unavailable` with Doppler's message; 429 →
//!   `RateLimited` with `Retry-After` (seconds or an HTTP date); 5xx, timeouts and
//!   connection errors → `Unavailable` with a short message. No message holds the token
//!   or a value, nor a URL or a request header.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use custodian_domain::{VaultConnectionId, VaultReference, VaultSettings, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, redirect};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use url::Url;

const PROVIDER: VaultType = VaultType::Doppler;
/// The download endpoint's path segments under the API URL.
const DOWNLOAD_SEGMENTS: [&str; 5] = ["v3", "configs", "config", "secrets", "download"];
/// How many (connection, revision) revalidation entries are kept at most.
const MAX_KEPT: usize = 1024;
/// How many characters of Doppler's own message an error carries at most.
const MAX_MESSAGE_CHARS: usize = 300;
/// The largest answer read (a config's download is a few KiB).
const MAX_BODY_BYTES: usize = 8 << 20;
/// Same-host redirects followed at most.
const MAX_REDIRECTS: usize = 3;

/// The Doppler adapter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DopplerConfig {
    /// Doppler's API (`https://api.doppler.com`); tests point it at a fake.
    pub api_url: Url,
    /// The whole request, connection to last byte.
    pub request_timeout: Duration,
    /// Establishing the connection (TCP and TLS).
    pub connect_timeout: Duration,
}

impl Default for DopplerConfig {
    fn default() -> Self {
        Self {
            api_url: Url::parse("https://api.doppler.com").expect("a valid URL literal"),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The Doppler adapter.
pub struct DopplerProvider {
    config: DopplerConfig,
    /// Built at the first call: a server whose teams use no Doppler connection never
    /// builds it. An error when it could not be built (reported by every call).
    client: OnceLock<Result<reqwest::Client, String>>,
    kept: Mutex<Kept>,
}

impl fmt::Debug for DopplerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DopplerProvider")
            .field("config", &self.config)
            .field("kept_entries", &self.kept().entries.len())
            .finish_non_exhaustive()
    }
}

impl DopplerProvider {
    pub fn new(config: DopplerConfig) -> Self {
        Self {
            config,
            client: OnceLock::new(),
            kept: Mutex::new(Kept::default()),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, VaultError> {
        self.client
            .get_or_init(|| {
                build_client(&self.config).map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
            })
            .as_ref()
            .map_err(|message| unavailable(message.clone()))
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        // The map is consistent after any panic (each update is one insert or remove).
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One download of `request`, sending `revalidate` as `If-None-Match` when given.
    async fn download(
        &self,
        access: &VaultAccess,
        request: &Request,
        revalidate: Option<&str>,
    ) -> Result<Downloaded, VaultError> {
        let client = self.client()?;
        let url = request.url(&self.config.api_url);
        let token = access.secret.expose();
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let bearer = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
        let mut authorization = HeaderValue::from_str(&bearer)
            .map_err(|_| unavailable("the connection's access token cannot be sent in an HTTP header"))?;
        authorization.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, authorization);
        if let Some(etag) = revalidate
            && let Ok(value) = HeaderValue::from_str(etag)
        {
            headers.insert(header::IF_NONE_MATCH, value);
        }
        let response = client
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return match revalidate {
                Some(_) => Ok(Downloaded::NotModified),
                None => Err(unavailable("Doppler answered 304 to a request without If-None-Match")),
            };
        }
        let etag = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
        let body = self.read_body(response).await?;
        if status.is_success() {
            return Ok(Downloaded::Body { body, etag });
        }
        let messages = is_json
            .then(|| doppler_messages(&body, token.expose_secret()))
            .flatten();
        Err(status_error(status, retry_after.as_ref(), messages, body.len()))
    }

    /// The answer's body, at most [`MAX_BODY_BYTES`].
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, VaultError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(unavailable(format!(
                    "Doppler's answer is larger than {} MiB",
                    MAX_BODY_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// A reqwest failure as a short message: no URL, no header, no body.
    fn transport_error(&self, e: &reqwest::Error) -> VaultError {
        let message = if e.is_timeout() {
            format!(
                "no answer within {} s (request timeout)",
                self.config.request_timeout.as_secs_f64()
            )
        } else if e.is_connect() {
            format!(
                "cannot connect to {}",
                self.config.api_url.host_str().unwrap_or("the API host")
            )
        } else if e.is_redirect() {
            "Doppler redirected the request elsewhere".to_owned()
        } else if e.is_body() || e.is_decode() {
            "the answer was cut off".to_owned()
        } else {
            "the request failed".to_owned()
        };
        unavailable(message)
    }
}

fn build_client(config: &DopplerConfig) -> reqwest::Result<reqwest::Client> {
    let policy = redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .redirect(policy)
        .user_agent(concat!("custodian/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn unavailable(message: impl Into<String>) -> VaultError {
    VaultError::Unavailable {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// What a download answered.
enum Downloaded {
    Body { body: Vec<u8>, etag: Option<String> },
    NotModified,
}

/// The query of one download: who it reads and which names.
#[derive(Clone, PartialEq, Eq)]
struct Request {
    project: Option<String>,
    config: Option<String>,
    /// `None`: every name (verify).
    names: Option<BTreeSet<String>>,
}

impl Request {
    fn for_access(access: &VaultAccess, names: Option<BTreeSet<String>>) -> Result<Self, VaultError> {
        let VaultSettings::Doppler { project, config } = &access.settings else {
            return Err(unavailable("the connection's settings are not a Doppler connection's"));
        };
        let set = |s: &String| Some(s.clone()).filter(|s| !s.trim().is_empty());
        Ok(Self {
            project: set(project),
            config: set(config),
            names,
        })
    }

    fn url(&self, api_url: &Url) -> Url {
        let mut url = api_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(DOWNLOAD_SEGMENTS);
        }
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("format", "json");
            if let Some(project) = &self.project {
                query.append_pair("project", project);
            }
            if let Some(config) = &self.config {
                query.append_pair("config", config);
            }
            if let Some(names) = &self.names {
                let list: Vec<&str> = names.iter().map(String::as_str).collect();
                query.append_pair("secrets", &list.join(","));
            }
        }
        url
    }
}

/// The revalidation state: per (connection, revision), the last download.
#[derive(Default)]
struct Kept {
    entries: HashMap<(VaultConnectionId, i64), KeptDownload>,
    /// Bumped on every insert: the entry with the smallest is evicted first.
    clock: u64,
}

struct KeptDownload {
    request: Request,
    etag: String,
    values: HashMap<String, SecretString>,
    stamp: u64,
}

impl Kept {
    /// The ETag of the download kept for `key`, when it answered the same request.
    fn etag_for(&self, key: &(VaultConnectionId, i64), request: &Request) -> Option<String> {
        self.entries
            .get(key)
            .filter(|kept| kept.request == *request)
            .map(|kept| kept.etag.clone())
    }

    fn keep(
        &mut self,
        key: (VaultConnectionId, i64),
        request: Request,
        etag: String,
        values: HashMap<String, SecretString>,
    ) {
        // An older revision of the connection is never read again.
        self.entries.retain(|(id, _), _| *id != key.0);
        if self.entries.len() >= MAX_KEPT
            && let Some(oldest) = self.entries.iter().min_by_key(|(_, kept)| kept.stamp).map(|(k, _)| *k)
        {
            self.entries.remove(&oldest);
        }
        self.clock += 1;
        let stamp = self.clock;
        self.entries.insert(
            key,
            KeptDownload {
                request,
                etag,
                values,
                stamp,
            },
        );
    }
}

/// The `messages` of a Doppler error body, joined, bounded, without the token.
fn doppler_messages(body: &[u8], token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        messages: Vec<String>,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let joined = parsed.messages.join("; ");
    let joined = if token.is_empty() {
        joined
    } else {
        joined.replace(token, "[REDACTED]")
    };
    let joined: String = joined
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS)
        .collect();
    Some(joined).filter(|m| !m.trim().is_empty())
}

/// A non-success status as the port's error.
fn status_error(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    messages: Option<String>,
    body_len: usize,
) -> VaultError {
    let detail = messages
        .map(|m| format!(": {m}"))
        .unwrap_or_else(|| format!(" ({body_len} bytes, not a Doppler error body)"));
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => VaultError::AuthFailed { provider: PROVIDER },
        StatusCode::TOO_MANY_REQUESTS => VaultError::RateLimited {
            provider: PROVIDER,
            retry_after: retry_after
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        },
        StatusCode::NOT_FOUND => unavailable(format!("Doppler found no such project or config (404){detail}")),
        s if s.is_server_error() => unavailable(format!("Doppler answered {}{detail}", s.as_u16())),
        s => unavailable(format!("Doppler refused the request ({}){detail}", s.as_u16())),
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (a past date means now).
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The download's body: a flat JSON object of names to values.
fn parse_values(body: &[u8]) -> Result<HashMap<String, SecretString>, VaultError> {
    // serde's messages can quote the offending value: only its position is reported.
    let parsed: HashMap<String, String> = serde_json::from_slice(body).map_err(|e| {
        unavailable(format!(
            "Doppler's answer is not a JSON object of secret values (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Ok(parsed.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect())
}

/// The values at `references`, in order; the first missing one is `ReferenceNotFound`.
fn pick(
    values: &HashMap<String, SecretString>,
    references: &[VaultReference],
) -> Result<Vec<SecretString>, VaultError> {
    references
        .iter()
        .map(|reference| {
            values
                .get(reference.as_str())
                .cloned()
                .ok_or_else(|| VaultError::ReferenceNotFound {
                    provider: PROVIDER,
                    reference: reference.as_str().to_owned(),
                })
        })
        .collect()
}

#[async_trait]
impl VaultProvider for DopplerProvider {
    fn vault_type(&self) -> VaultType {
        PROVIDER
    }

    async fn verify(&self, access: &VaultAccess) -> Result<(), VaultError> {
        let request = Request::for_access(access, None)?;
        match self.download(access, &request, None).await? {
            Downloaded::Body { body, .. } => {
                // Only the shape is checked; no value is kept.
                serde_json::from_slice::<HashMap<String, serde::de::IgnoredAny>>(&body)
                    .map(drop)
                    .map_err(|e| {
                        unavailable(format!(
                            "Doppler's answer is not a JSON object (line {}, column {})",
                            e.line(),
                            e.column()
                        ))
                    })
            }
            Downloaded::NotModified => Err(unavailable("Doppler answered 304 to a fresh request")),
        }
    }

    async fn fetch(
        &self,
        access: &VaultAccess,
        references: &[VaultReference],
        freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let names = references.iter().map(|r| r.as_str().to_owned()).collect();
        let request = Request::for_access(access, Some(names))?;
        let key = (access.connection_id, access.revision);
        let etag = match freshness {
            Freshness::MayRevalidate => self.kept().etag_for(&key, &request),
            Freshness::Fresh => None,
        };
        let mut downloaded = self.download(access, &request, etag.as_deref()).await?;
        if let Downloaded::NotModified = downloaded {
            let reused = {
                let kept = self.kept();
                kept.entries
                    .get(&key)
                    .filter(|entry| entry.request == request)
                    .map(|entry| pick(&entry.values, references))
            };
            if let Some(picked) = reused {
                return picked;
            }
            // Evicted while the request was out: read it again, without revalidating.
            downloaded = self.download(access, &request, None).await?;
        }
        match downloaded {
            Downloaded::Body { body, etag } => {
                let values = parse_values(&body)?;
                let picked = pick(&values, references);
                if let Some(etag) = etag {
                    self.kept().keep(key, request, etag, values);
                }
                picked
            }
            Downloaded::NotModified => Err(unavailable("Doppler answered 304 to a fresh request")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_784_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn doppler_messages_are_joined_bounded_and_never_hold_the_token() {
        let body = br#"{"messages":["Invalid token dp.st.dev.SECRET","try again"],"success":false}"#;
        let message = doppler_messages(body, "dp.st.dev.SECRET").unwrap();
        assert_eq!(message, "Invalid token [REDACTED]; try again");
        let long = format!(r#"{{"messages":["{}"],"success":false}}"#, "x".repeat(1000));
        assert_eq!(doppler_messages(long.as_bytes(), "t").unwrap().len(), MAX_MESSAGE_CHARS);
        assert_eq!(doppler_messages(b"<html>", "t"), None);
        assert_eq!(doppler_messages(br#"{"messages":[],"success":false}"#, "t"), None);
    }

    #[test]
    fn the_download_url_sends_only_what_the_connection_sets() {
        let api = Url::parse("http://127.0.0.1:9/base").unwrap();
        let request = Request {
            project: None,
            config: Some("prd".into()),
            names: Some(["B".to_owned(), "A".to_owned()].into()),
        };
        assert_eq!(
            request.url(&api).as_str(),
            "http://127.0.0.1:9/base/v3/configs/config/secrets/download?format=json&config=prd&secrets=A%2CB"
        );
        let all = Request {
            project: Some("backend".into()),
            config: None,
            names: None,
        };
        assert_eq!(
            all.url(&Url::parse("https://api.doppler.com/").unwrap()).as_str(),
            "https://api.doppler.com/v3/configs/config/secrets/download?format=json&project=backend"
        );
    }

    fn connection(n: u64) -> VaultConnectionId {
        format!("00000000-0000-4000-8000-{n:012x}").parse().expect("a UUID")
    }

    fn request() -> Request {
        Request {
            project: None,
            config: None,
            names: Some(["A".to_owned()].into()),
        }
    }

    #[test]
    fn what_is_kept_is_bounded_and_holds_one_revision_per_connection() {
        let mut kept = Kept::default();
        kept.keep((connection(1), 1), request(), "\"r1\"".into(), HashMap::new());
        kept.keep((connection(1), 2), request(), "\"r2\"".into(), HashMap::new());
        assert_eq!(kept.entries.len(), 1, "the older revision is dropped");
        assert_eq!(kept.etag_for(&(connection(1), 1), &request()), None);
        assert_eq!(
            kept.etag_for(&(connection(1), 2), &request()).as_deref(),
            Some("\"r2\"")
        );
        let other_names = Request {
            names: Some(["B".to_owned()].into()),
            ..request()
        };
        assert_eq!(kept.etag_for(&(connection(1), 2), &other_names), None);

        for n in 2..=(MAX_KEPT as u64 + 1) {
            kept.keep((connection(n), 1), request(), "\"e\"".into(), HashMap::new());
        }
        assert_eq!(kept.entries.len(), MAX_KEPT);
        assert!(
            !kept.entries.contains_key(&(connection(1), 2)),
            "the oldest entry made room"
        );
        assert!(kept.entries.contains_key(&(connection(MAX_KEPT as u64 + 1), 1)));
    }

    #[test]
    fn a_body_that_is_not_an_object_of_strings_is_reported_without_its_content() {
        let error = parse_values(br#"{"A": 12345678}"#).unwrap_err();
        assert!(!error.to_string().contains("12345678"), "{error}");
        assert!(parse_values(br#"{"A":"x","B":"y"}"#).unwrap().contains_key("B"));
    }
}
