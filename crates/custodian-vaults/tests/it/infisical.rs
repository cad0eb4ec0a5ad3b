//! The Infisical adapter against the fake Infisical of `custodian-testkit`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use custodian_domain::{VaultConnectionId, VaultReference, VaultSecret, VaultSettings, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use custodian_testkit::fakes::infisical::{Endpoint, FakeInfisical, Fault, TokenLifetime};
use custodian_vaults::{InfisicalConfig, InfisicalProvider};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

const CLIENT_ID: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
const CLIENT_SECRET: &str = "canary-client-secret-5f1e9b";
const PROJECT: &str = "proj-1";
const ENV: &str = "prod";
const CANARY_VALUE: &str = "canary-value-7d2c41";
/// Bound on any one call in these tests: a hang fails the test instead of stalling it.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// A fake holding one identity and a few secrets: `/DB_PASSWORD`, `/aws/ACCESS_KEY`,
/// `/aws/prod/SECRET_KEY` and, under `/team`, `TEAM_KEY`.
fn fake() -> FakeInfisical {
    let fake = FakeInfisical::start();
    fake.add_identity(CLIENT_ID, CLIENT_SECRET);
    fake.add_secret(PROJECT, ENV, "/", "DB_PASSWORD", CANARY_VALUE);
    fake.add_secret(PROJECT, ENV, "/aws", "ACCESS_KEY", "AKIAEXAMPLE");
    fake.add_secret(PROJECT, ENV, "/aws/prod", "SECRET_KEY", "aws-secret");
    fake.add_secret(PROJECT, ENV, "/team", "TEAM_KEY", "team-value");
    fake
}

fn config(api_url: Url) -> InfisicalConfig {
    InfisicalConfig {
        api_url,
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        allow_private_urls: false,
    }
}

fn provider(fake: &FakeInfisical) -> InfisicalProvider {
    InfisicalProvider::new(config(fake.url()))
}

fn new_connection_id() -> VaultConnectionId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("00000000-0000-4000-8000-{:012x}", NEXT.fetch_add(1, Ordering::Relaxed))
        .parse()
        .expect("a valid UUID")
}

fn access_with(connection_id: VaultConnectionId, revision: i64, secret: &str, secret_path: &str) -> VaultAccess {
    VaultAccess {
        connection_id,
        revision,
        settings: VaultSettings::Infisical {
            client_id: CLIENT_ID.to_owned(),
            project_id: PROJECT.to_owned(),
            environment: ENV.to_owned(),
            secret_path: secret_path.to_owned(),
            api_url: None,
        },
        secret: VaultSecret::from_stored(SecretString::from(secret.to_owned())),
    }
}

fn access() -> VaultAccess {
    access_with(new_connection_id(), 1, CLIENT_SECRET, "/")
}

fn refs(values: &[&str]) -> Vec<VaultReference> {
    values
        .iter()
        .map(|v| VaultReference::parse(VaultType::Infisical, v).expect("a valid Infisical reference"))
        .collect()
}

async fn fetch(
    provider: &InfisicalProvider,
    access: &VaultAccess,
    references: &[&str],
) -> Result<Vec<String>, VaultError> {
    let values = tokio::time::timeout(
        HANG_GUARD,
        provider.fetch(access, &refs(references), Freshness::MayRevalidate),
    )
    .await
    .expect("the fetch hung")?;
    Ok(values.iter().map(|v| v.expose_secret().to_owned()).collect())
}

/// Neither the canary client secret nor the canary value shows in an error.
fn assert_clean(error: &VaultError) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(CLIENT_SECRET), "the client secret leaked: {text}");
        assert!(!text.contains(CANARY_VALUE), "a value leaked: {text}");
        assert!(
            !text.contains("fake-infisical-token-"),
            "an access token leaked: {text}"
        );
    }
}

/// Keys at the root and in nested folders come back in the order asked, with one login.
#[tokio::test]
async fn reads_keys_by_folder_path_in_order() {
    let fake = fake();
    let provider = provider(&fake);
    let values = fetch(
        &provider,
        &access(),
        &["/aws/prod/SECRET_KEY", "DB_PASSWORD", "aws/ACCESS_KEY", "/DB_PASSWORD"],
    )
    .await
    .unwrap();
    assert_eq!(values, ["aws-secret", CANARY_VALUE, "AKIAEXAMPLE", CANARY_VALUE]);
    assert_eq!(fake.count(Endpoint::Login), 1);
    assert_eq!(fake.count(Endpoint::GetSecret), 4);
}

/// The connection's `secret_path` is the root the references' folders are read under.
#[tokio::test]
async fn the_connection_secret_path_prefixes_every_reference() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access_with(new_connection_id(), 1, CLIENT_SECRET, "/team");
    assert_eq!(fetch(&provider, &access, &["TEAM_KEY"]).await.unwrap(), ["team-value"]);
    let error = fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap_err();
    assert!(matches!(error, VaultError::ReferenceNotFound { .. }), "{error:?}");
}

/// A wrong client secret is `AuthFailed`, for `verify` and `fetch` alike, and leaks nothing.
#[tokio::test]
async fn a_wrong_client_secret_is_auth_failed() {
    let fake = fake();
    let provider = provider(&fake);
    let wrong = access_with(new_connection_id(), 1, "canary-client-secret-5f1e9b-wrong", "/");
    let error = provider.verify(&wrong).await.unwrap_err();
    assert_eq!(
        error,
        VaultError::AuthFailed {
            provider: VaultType::Infisical
        }
    );
    assert_clean(&error);
    let error = fetch(&provider, &wrong, &["DB_PASSWORD"]).await.unwrap_err();
    assert_eq!(
        error,
        VaultError::AuthFailed {
            provider: VaultType::Infisical
        }
    );
    assert_eq!(fake.count(Endpoint::GetSecret), 0);
}

/// `verify` logs in anew every time: it never takes a kept token for proof.
#[tokio::test]
async fn verify_always_logs_in() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    provider.verify(&access).await.unwrap();
    provider.verify(&access).await.unwrap();
    assert_eq!(fake.count(Endpoint::Login), 3);
}

/// An unknown key is `ReferenceNotFound` naming the reference as mapped.
#[tokio::test]
async fn an_unknown_key_is_reference_not_found() {
    let fake = fake();
    let provider = provider(&fake);
    let error = fetch(&provider, &access(), &["DB_PASSWORD", "/aws/MISSING_KEY"])
        .await
        .unwrap_err();
    assert_eq!(
        error,
        VaultError::ReferenceNotFound {
            provider: VaultType::Infisical,
            reference: "/aws/MISSING_KEY".into()
        }
    );
    assert_clean(&error);
}

/// A `429` is `RateLimited` carrying the `Retry-After` seconds.
#[tokio::test]
async fn a_429_is_rate_limited_with_retry_after() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    fake.fail_next(1, Fault::RateLimited { retry_after_secs: 17 });
    let error = fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap_err();
    assert_eq!(
        error,
        VaultError::RateLimited {
            provider: VaultType::Infisical,
            retry_after: Some(Duration::from_secs(17))
        }
    );
    // At login too.
    fake.fail_next(1, Fault::RateLimited { retry_after_secs: 3 });
    let error = provider.verify(&access).await.unwrap_err();
    assert!(matches!(error, VaultError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)));
}

/// A `500` is `Unavailable`, with Infisical's message and request id in it.
#[tokio::test]
async fn a_server_error_is_unavailable() {
    let fake = fake();
    let provider = provider(&fake);
    fake.fail_next(1, Fault::ServerError);
    let error = fetch(&provider, &access(), &["DB_PASSWORD"]).await.unwrap_err();
    match &error {
        VaultError::Unavailable { message, .. } => {
            assert!(message.contains("500"), "{message}");
            assert!(message.contains("Something went wrong"), "{message}");
            assert!(message.contains("reqId"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_clean(&error);
}

/// An answer slower than the request timeout is `Unavailable` (timed out), not a hang.
#[tokio::test]
async fn a_hang_is_unavailable_within_the_timeout() {
    let fake = fake();
    let provider = InfisicalProvider::new(InfisicalConfig {
        request_timeout: Duration::from_millis(300),
        ..config(fake.url())
    });
    fake.fail_next(1, Fault::Delay(Duration::from_secs(30)));
    let error = fetch(&provider, &access(), &["DB_PASSWORD"]).await.unwrap_err();
    match error {
        VaultError::Unavailable { message, .. } => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Many fetches of one connection revision share one login: the token is kept.
#[tokio::test]
async fn the_token_is_reused_across_fetches() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    for _ in 0..5 {
        fetch(&provider, &access, &["DB_PASSWORD", "aws/ACCESS_KEY"])
            .await
            .unwrap();
    }
    assert_eq!(fake.count(Endpoint::Login), 1);
    assert_eq!(fake.count(Endpoint::Renew), 0);
    assert_eq!(fake.count(Endpoint::GetSecret), 10);
}

/// A fetch that must be fresh (a verification) logs in anew instead of using the kept token.
#[tokio::test]
async fn a_fresh_fetch_logs_in_anew() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    let values = provider
        .fetch(&access, &refs(&["DB_PASSWORD"]), Freshness::Fresh)
        .await
        .unwrap();
    assert_eq!(values[0].expose_secret(), CANARY_VALUE);
    assert_eq!(fake.count(Endpoint::Login), 2);
}

/// A token past half its `expiresIn` is renewed (not replaced by a login) before use.
#[tokio::test]
async fn the_token_is_renewed_near_expiry() {
    let fake = fake();
    fake.set_token_lifetime(TokenLifetime {
        expires_in: 1,
        max_ttl: 3600,
    });
    let provider = provider(&fake);
    let access = access();
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    assert_eq!(fake.count(Endpoint::Renew), 1);
    assert_eq!(fake.count(Endpoint::Login), 1);
}

/// A token whose max TTL would not outlast a renewal is replaced by a new login.
#[tokio::test]
async fn the_token_is_replaced_near_its_max_ttl() {
    let fake = fake();
    fake.set_token_lifetime(TokenLifetime {
        expires_in: 1,
        max_ttl: 1,
    });
    let provider = provider(&fake);
    let access = access();
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    assert_eq!(fake.count(Endpoint::Renew), 0);
    assert_eq!(fake.count(Endpoint::Login), 2);
}

/// A kept token that expires while held: the refused read logs in once more and succeeds.
#[tokio::test]
async fn a_token_expired_mid_use_logs_in_again_once() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    fake.expire_all_tokens();
    assert_eq!(
        fetch(&provider, &access, &["DB_PASSWORD", "aws/ACCESS_KEY"])
            .await
            .unwrap(),
        [CANARY_VALUE, "AKIAEXAMPLE"]
    );
    assert_eq!(fake.count(Endpoint::Login), 2);
    // One refused read, then both reads with the new token.
    assert_eq!(fake.count(Endpoint::GetSecret), 4);
}

/// A new revision of a connection (a rotation) logs in anew; the old token is not used.
#[tokio::test]
async fn a_new_revision_logs_in_anew() {
    let fake = fake();
    let provider = provider(&fake);
    let id = new_connection_id();
    fetch(&provider, &access_with(id, 1, CLIENT_SECRET, "/"), &["DB_PASSWORD"])
        .await
        .unwrap();
    fetch(&provider, &access_with(id, 2, CLIENT_SECRET, "/"), &["DB_PASSWORD"])
        .await
        .unwrap();
    fetch(&provider, &access_with(id, 2, CLIENT_SECRET, "/"), &["DB_PASSWORD"])
        .await
        .unwrap();
    assert_eq!(fake.count(Endpoint::Login), 2);
}

/// A redirect from Infisical is not followed: `Unavailable` naming it, and the target
/// never hears from us.
#[tokio::test]
async fn a_redirect_is_not_followed() {
    let fake = fake();
    let elsewhere = FakeInfisical::start();
    let provider = provider(&fake);
    fake.fail_next(
        1,
        Fault::Redirect(format!("{}api/v1/auth/universal-auth/login?x=1", elsewhere.url())),
    );
    let error = provider.verify(&access()).await.unwrap_err();
    match &error {
        VaultError::Unavailable { message, .. } => {
            assert!(message.contains("redirect (302)"), "{message}");
            assert!(message.contains(elsewhere.url().host_str().unwrap()), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(elsewhere.total_requests(), 0);
}

fn assert_refused(error: &VaultError, expected: &str) {
    match error {
        VaultError::Unavailable { message, .. } => {
            assert!(message.contains("refused the connection's Infisical URL"), "{message}");
            assert!(message.contains(expected), "{message} should say {expected}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A connection's own instance URL must be https.
#[tokio::test]
async fn a_connection_url_over_http_is_refused() {
    let fake = fake();
    let provider = InfisicalProvider::new(config(Url::parse("https://app.infisical.com").unwrap()));
    let error = provider
        .fetch_from(
            &fake.url(),
            &access(),
            &refs(&["DB_PASSWORD"]),
            Freshness::MayRevalidate,
        )
        .await
        .unwrap_err();
    assert_refused(&error, "must be https");
    assert_eq!(fake.total_requests(), 0);
}

/// Literal loopback, private, link-local, CGNAT, unspecified and unique-local addresses
/// are refused before any connection is made.
#[tokio::test]
async fn a_connection_url_at_a_kept_out_address_is_refused() {
    let provider = InfisicalProvider::new(config(Url::parse("https://app.infisical.com").unwrap()));
    for (url, kind) in [
        ("https://127.0.0.1:8443", "loopback"),
        ("https://10.1.2.3", "private"),
        ("https://192.168.0.10", "private"),
        ("https://172.20.0.1", "private"),
        ("https://169.254.169.254", "link-local"),
        ("https://100.64.1.1", "CGNAT"),
        ("https://0.0.0.0", "unspecified"),
        ("https://[::1]", "loopback"),
        ("https://[fd00::1]", "unique-local"),
        ("https://[fe80::1]", "link-local"),
        ("https://[::ffff:127.0.0.1]", "loopback"),
    ] {
        let error = provider
            .verify_at(&Url::parse(url).unwrap(), &access())
            .await
            .unwrap_err();
        assert_refused(&error, kind);
        assert_clean(&error);
    }
}

/// A host name is checked after resolution: `localhost` resolves to loopback and is refused.
#[tokio::test]
async fn a_connection_host_resolving_to_loopback_is_refused() {
    let fake = fake();
    let provider = InfisicalProvider::new(config(Url::parse("https://app.infisical.com").unwrap()));
    let url = Url::parse(&format!("https://localhost:{}", fake.url().port().unwrap())).unwrap();
    let error = tokio::time::timeout(HANG_GUARD, provider.verify_at(&url, &access()))
        .await
        .unwrap()
        .unwrap_err();
    assert_refused(&error, "localhost resolves to");
    assert_refused(&error, "loopback");
    assert_eq!(fake.total_requests(), 0);
}

/// With `allow_private_urls` a connection's own (local) instance is used, with its own
/// token; a redirect from it is still not followed.
#[tokio::test]
async fn allow_private_urls_lets_a_local_instance_through_without_redirects() {
    let fake = fake();
    let elsewhere = FakeInfisical::start();
    let provider = InfisicalProvider::new(InfisicalConfig {
        allow_private_urls: true,
        ..config(Url::parse("https://app.infisical.com").unwrap())
    });
    let access = access();
    let values = provider
        .fetch_from(
            &fake.url(),
            &access,
            &refs(&["aws/ACCESS_KEY"]),
            Freshness::MayRevalidate,
        )
        .await
        .unwrap();
    assert_eq!(values[0].expose_secret(), "AKIAEXAMPLE");
    fake.fail_next(1, Fault::Redirect(format!("{}api/v4/secrets/X", elsewhere.url())));
    let error = provider
        .fetch_from(
            &fake.url(),
            &access,
            &refs(&["aws/ACCESS_KEY"]),
            Freshness::MayRevalidate,
        )
        .await
        .unwrap_err();
    match error {
        VaultError::Unavailable { message, .. } => assert!(message.contains("redirect (302)"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(elsewhere.total_requests(), 0);
}

/// A connection that names its own instance in its settings is read there, through the
/// port's `fetch` and `verify`, and only when the deployment allows a local address; the
/// deployment's own Infisical is not asked.
#[tokio::test]
async fn a_connection_naming_its_own_instance_is_read_there_behind_the_guard() {
    let own = fake();
    let deployment_wide = FakeInfisical::start();
    let mut access = access();
    if let VaultSettings::Infisical { api_url, .. } = &mut access.settings {
        *api_url = Some(own.url().to_string());
    }
    let guarded = InfisicalProvider::new(config(deployment_wide.url()));
    for refused in [
        guarded.verify(&access).await.unwrap_err(),
        guarded
            .fetch(&access, &refs(&["aws/ACCESS_KEY"]), Freshness::Fresh)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(refused, VaultError::Unavailable { .. }), "{refused:?}");
    }
    assert_eq!(own.total_requests(), 0, "a loopback instance is not called by default");

    let allowed = InfisicalProvider::new(InfisicalConfig {
        allow_private_urls: true,
        ..config(deployment_wide.url())
    });
    allowed
        .verify(&access)
        .await
        .expect("verified at the connection's instance");
    let values = allowed
        .fetch(&access, &refs(&["aws/ACCESS_KEY"]), Freshness::MayRevalidate)
        .await
        .expect("read at the connection's instance");
    assert_eq!(values[0].expose_secret(), "AKIAEXAMPLE");
    assert!(own.total_requests() > 0);
    assert_eq!(
        deployment_wide.total_requests(),
        0,
        "the deployment's Infisical is not asked"
    );
}

/// Neither the provider's `Debug` nor any error of a failing run shows a secret, a token or
/// a value.
#[tokio::test]
async fn no_secret_token_or_value_in_debug_or_errors() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap();
    let debug = format!("{provider:?} {access:?}");
    assert!(!debug.contains(CLIENT_SECRET), "{debug}");
    assert!(!debug.contains(CANARY_VALUE), "{debug}");
    assert!(!debug.contains("fake-infisical-token-"), "{debug}");
    let mut errors = Vec::new();
    fake.fail_next(1, Fault::ServerError);
    errors.push(fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap_err());
    errors.push(fetch(&provider, &access, &["NOPE"]).await.unwrap_err());
    fake.expire_all_tokens();
    fake.add_identity(CLIENT_ID, "rotated-elsewhere");
    errors.push(fetch(&provider, &access, &["DB_PASSWORD"]).await.unwrap_err());
    assert!(matches!(errors[2], VaultError::AuthFailed { .. }), "{:?}", errors[2]);
    for error in &errors {
        assert_clean(error);
    }
}

/// Concurrent fetches of one connection revision share one login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_share_one_login() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    let (a, b, c, d) = tokio::join!(
        fetch(&provider, &access, &["DB_PASSWORD"]),
        fetch(&provider, &access, &["aws/ACCESS_KEY"]),
        fetch(&provider, &access, &["DB_PASSWORD", "aws/prod/SECRET_KEY"]),
        fetch(&provider, &access, &["/aws/prod/SECRET_KEY"]),
    );
    assert_eq!(a.unwrap(), [CANARY_VALUE]);
    assert_eq!(b.unwrap(), ["AKIAEXAMPLE"]);
    assert_eq!(c.unwrap(), [CANARY_VALUE, "aws-secret"]);
    assert_eq!(d.unwrap(), ["aws-secret"]);
    assert_eq!(fake.count(Endpoint::Login), 1);
}

/// The fake answers as Infisical does to malformed reads: `422` for a boolean that is not
/// the literal `true`/`false`, `400` without an environment, `401` without a token — each
/// in Infisical's error envelope — and serves the v3 raw endpoint with `workspaceId`.
#[tokio::test]
async fn the_fake_answers_malformed_reads_as_infisical_does() {
    let fake = fake();
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{}api/v1/auth/universal-auth/login", fake.url()))
        .json(&serde_json::json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["tokenType"], "Bearer");
    assert_eq!(login["expiresIn"], 2_592_000);
    let token = login["accessToken"].as_str().unwrap().to_owned();
    let get = |query: &str, bearer: bool| {
        let mut request = client.get(format!("{}api/{query}", fake.url()));
        if bearer {
            request = request.bearer_auth(&token);
        }
        request.send()
    };
    let answer = get(
        "v4/secrets/DB_PASSWORD?projectId=proj-1&environment=prod&expandSecretReferences=1",
        true,
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 422);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "ValidationFailure");
    assert!(body["message"].is_array(), "{body}");
    assert!(body["reqId"].is_string(), "{body}");
    let answer = get("v4/secrets/DB_PASSWORD?projectId=proj-1", true).await.unwrap();
    assert_eq!(answer.status(), 400);
    let answer = get("v4/secrets/DB_PASSWORD?projectId=proj-1&environment=prod", false)
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["statusCode"], 401);
    let body: serde_json::Value = get(
        "v3/secrets/raw/ACCESS_KEY?workspaceId=proj-1&environment=prod&secretPath=/aws/",
        true,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["secret"]["secretValue"], "AKIAEXAMPLE");
    assert_eq!(body["secret"]["secretPath"], "/aws");
}
