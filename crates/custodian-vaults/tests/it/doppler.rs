//! The Doppler adapter against the fake Doppler of `custodian-testkit`, which answers as
//! Doppler's API documents.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use custodian_domain::{VaultConnectionId, VaultReference, VaultSecret, VaultSettings, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use custodian_testkit::fakes::doppler::{AuthScheme, DOWNLOAD_PATH, Failure, FakeDoppler};
use custodian_vaults::{DopplerConfig, DopplerProvider};
use secrecy::{ExposeSecret as _, SecretString};

const PROJECT: &str = "backend";
const CONFIG: &str = "prd";
/// The connection's token; it must never show in an error or a `Debug`.
const TOKEN: &str = "dp.st.prd.CANARYtoken0123456789abcdefghijklmnopqrstuvw";
/// Every stored value starts with this; none may show in an error or a `Debug`.
const VALUE_CANARY: &str = "CANARYvalue";

/// A fake holding `backend/prd` with three secrets, readable with [`TOKEN`].
fn fake() -> FakeDoppler {
    let fake = FakeDoppler::start();
    fake.add_config(
        PROJECT,
        CONFIG,
        &[
            ("ACCESS_KEY_ID", "CANARYvalue-AKIAEXAMPLE"),
            ("SECRET_ACCESS_KEY", "CANARYvalue-wJalrXUtnFEMI"),
            ("REGION", "CANARYvalue-us-east-1"),
        ],
    );
    fake.add_token(TOKEN, PROJECT, CONFIG);
    fake
}

fn provider_with_timeout(fake: &FakeDoppler, request_timeout: Duration) -> DopplerProvider {
    DopplerProvider::new(DopplerConfig {
        api_url: fake.url().parse().expect("the fake's URL"),
        request_timeout,
        connect_timeout: Duration::from_secs(2),
    })
}

fn provider(fake: &FakeDoppler) -> DopplerProvider {
    provider_with_timeout(fake, Duration::from_secs(5))
}

/// A connection id no other test uses.
fn new_connection_id() -> VaultConnectionId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("00000000-0000-4000-8000-{n:012x}").parse().expect("a UUID")
}

fn access_with(id: VaultConnectionId, revision: i64, token: &str, project: &str, config: &str) -> VaultAccess {
    VaultAccess {
        connection_id: id,
        revision,
        settings: VaultSettings::Doppler {
            project: project.to_owned(),
            config: config.to_owned(),
        },
        secret: VaultSecret::from_stored(SecretString::from(token.to_owned())),
    }
}

fn access() -> VaultAccess {
    access_with(new_connection_id(), 1, TOKEN, PROJECT, CONFIG)
}

fn refs(names: &[&str]) -> Vec<VaultReference> {
    names
        .iter()
        .map(|n| VaultReference::parse(VaultType::Doppler, n).expect("a Doppler name"))
        .collect()
}

fn exposed(values: &[SecretString]) -> Vec<String> {
    values.iter().map(|v| v.expose_secret().to_owned()).collect()
}

/// Fails when an error's `Display` or `Debug` holds the token or a value.
fn assert_redacted(error: &VaultError) {
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(TOKEN), "the token leaked: {shown}");
        assert!(!shown.contains("CANARYtoken"), "part of the token leaked: {shown}");
        assert!(!shown.contains(VALUE_CANARY), "a value leaked: {shown}");
    }
}

/// Several names are read with one download, narrowed to them, and come back in the
/// order asked, authenticated with the token as a Bearer.
#[tokio::test]
async fn fetch_reads_every_name_in_one_download_and_keeps_their_order() {
    let fake = fake();
    let values = provider(&fake)
        .fetch(
            &access(),
            &refs(&["SECRET_ACCESS_KEY", "REGION", "ACCESS_KEY_ID"]),
            Freshness::MayRevalidate,
        )
        .await
        .unwrap();
    assert_eq!(
        exposed(&values),
        [
            "CANARYvalue-wJalrXUtnFEMI",
            "CANARYvalue-us-east-1",
            "CANARYvalue-AKIAEXAMPLE"
        ]
    );
    assert_eq!(fake.requests(), 1);
    let seen = &fake.seen()[0];
    assert_eq!(seen.path, DOWNLOAD_PATH);
    assert_eq!(seen.auth, Some(AuthScheme::Bearer));
    assert_eq!(seen.param("format"), Some("json"));
    assert_eq!(seen.param("project"), Some(PROJECT));
    assert_eq!(seen.param("config"), Some(CONFIG));
    assert_eq!(seen.param("secrets"), Some("ACCESS_KEY_ID,REGION,SECRET_ACCESS_KEY"));
    assert_eq!(seen.if_none_match, None, "nothing was kept to revalidate yet");
}

/// A connection without `project`/`config` (a service token implies them) sends neither,
/// and a `DOPPLER_*` name is returned when it is asked for.
#[tokio::test]
async fn project_and_config_are_sent_only_when_the_connection_sets_them() {
    let fake = fake();
    let access = access_with(new_connection_id(), 1, TOKEN, "", "");
    let values = provider(&fake)
        .fetch(&access, &refs(&["REGION", "DOPPLER_CONFIG"]), Freshness::Fresh)
        .await
        .unwrap();
    assert_eq!(exposed(&values), ["CANARYvalue-us-east-1", CONFIG]);
    let seen = &fake.seen()[0];
    assert_eq!(seen.param("project"), None);
    assert_eq!(seen.param("config"), None);
}

/// A token Doppler refuses is `AuthFailed`, for fetch and verify alike.
#[tokio::test]
async fn a_refused_token_is_auth_failed() {
    let fake = fake();
    let provider = provider(&fake);
    let wrong = access_with(
        new_connection_id(),
        1,
        "dp.st.prd.CANARYtokenWRONG0123456789abcdefghijklmnop",
        PROJECT,
        CONFIG,
    );
    let error = provider
        .fetch(&wrong, &refs(&["REGION"]), Freshness::MayRevalidate)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        VaultError::AuthFailed {
            provider: VaultType::Doppler
        }
    );
    assert_redacted(&error);
    assert_eq!(
        provider.verify(&wrong).await.unwrap_err(),
        VaultError::AuthFailed {
            provider: VaultType::Doppler
        }
    );
    assert_eq!(fake.seen()[0].status, Some(401));
}

/// A name the config does not hold is `ReferenceNotFound` naming it, and no value.
#[tokio::test]
async fn a_missing_name_is_reference_not_found_naming_it() {
    let fake = fake();
    let error = provider(&fake)
        .fetch(
            &access(),
            &refs(&["REGION", "NOT_THERE", "ACCESS_KEY_ID"]),
            Freshness::MayRevalidate,
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        VaultError::ReferenceNotFound {
            provider: VaultType::Doppler,
            reference: "NOT_THERE".into()
        }
    );
    assert_redacted(&error);
    assert_eq!(fake.requests(), 1);
}

/// A project or config Doppler does not find (404) is `Unavailable` with Doppler's message.
#[tokio::test]
async fn an_unknown_config_is_unavailable_with_dopplers_message() {
    let fake = fake();
    let elsewhere = access_with(new_connection_id(), 1, TOKEN, PROJECT, "stg");
    let error = provider(&fake)
        .fetch(&elsewhere, &refs(&["REGION"]), Freshness::MayRevalidate)
        .await
        .unwrap_err();
    let VaultError::Unavailable { provider, message } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(*provider, VaultType::Doppler);
    assert!(message.contains("Could not find requested config"), "{message}");
    assert_redacted(&error);
}

/// A 429 is `RateLimited` with the `Retry-After` delay, given in seconds or as an HTTP
/// date, and without a delay when Doppler gives none.
#[tokio::test]
async fn a_rate_limit_is_rate_limited_with_its_retry_after() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    let names = refs(&["REGION"]);
    let rate_limited = |retry_after| VaultError::RateLimited {
        provider: VaultType::Doppler,
        retry_after,
    };

    fake.fail_next(
        1,
        Failure::RateLimited {
            retry_after: Some("17".into()),
        },
    );
    let error = provider
        .fetch(&access, &names, Freshness::MayRevalidate)
        .await
        .unwrap_err();
    assert_eq!(error, rate_limited(Some(Duration::from_secs(17))));

    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    fake.fail_next(
        1,
        Failure::RateLimited {
            retry_after: Some(date),
        },
    );
    match provider
        .fetch(&access, &names, Freshness::MayRevalidate)
        .await
        .unwrap_err()
    {
        VaultError::RateLimited {
            retry_after: Some(delay),
            ..
        } => assert!(
            (Duration::from_secs(60)..=Duration::from_secs(120)).contains(&delay),
            "{delay:?}"
        ),
        other => panic!("expected RateLimited with a delay, got {other:?}"),
    }

    fake.fail_next(1, Failure::RateLimited { retry_after: None });
    let error = provider
        .fetch(&access, &names, Freshness::MayRevalidate)
        .await
        .unwrap_err();
    assert_eq!(error, rate_limited(None));

    // The limit passed: the next fetch reads the value.
    let values = provider.fetch(&access, &names, Freshness::MayRevalidate).await.unwrap();
    assert_eq!(exposed(&values), ["CANARYvalue-us-east-1"]);
}

/// A 500 whose body is not JSON is `Unavailable` with a short message naming the status.
#[tokio::test]
async fn a_server_error_with_a_plain_body_is_unavailable() {
    let fake = fake();
    fake.fail_next(1, Failure::ServerError);
    let error = provider(&fake)
        .fetch(&access(), &refs(&["REGION"]), Freshness::MayRevalidate)
        .await
        .unwrap_err();
    let VaultError::Unavailable { message, .. } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("not a Doppler error body"), "{message}");
    assert!(
        !message.contains("upstream connect error"),
        "the body is not quoted: {message}"
    );
    assert_redacted(&error);
}

/// A Doppler that does not answer within the request timeout is `Unavailable`, and the
/// fetch returns (the hang guard is far above the timeout).
#[tokio::test]
async fn a_hang_past_the_timeout_is_unavailable() {
    let fake = fake();
    fake.fail_next(1, Failure::Delay(Duration::from_secs(30)));
    let provider = provider_with_timeout(&fake, Duration::from_millis(300));
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        provider.fetch(&access(), &refs(&["REGION"]), Freshness::MayRevalidate),
    )
    .await
    .expect("the fetch gave up by itself");
    let error = outcome.unwrap_err();
    let VaultError::Unavailable { message, .. } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains("timeout"), "{message}");
    assert_redacted(&error);
}

/// Nothing listening at the API URL is `Unavailable` naming the host, nothing more.
#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let provider = DopplerProvider::new(DopplerConfig {
        api_url: format!("http://127.0.0.1:{port}").parse().unwrap(),
        ..DopplerConfig::default()
    });
    let error = provider
        .fetch(&access(), &refs(&["REGION"]), Freshness::MayRevalidate)
        .await
        .unwrap_err();
    let VaultError::Unavailable { message, .. } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(message, "cannot connect to 127.0.0.1");
    assert_redacted(&error);
}

/// A second fetch that may revalidate sends the first answer's ETag; Doppler's 304
/// (no body) is answered with the values kept from the first.
#[tokio::test]
async fn revalidation_sends_the_etag_and_a_304_reuses_the_kept_values() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    let names = refs(&["REGION", "ACCESS_KEY_ID"]);
    let first = provider.fetch(&access, &names, Freshness::MayRevalidate).await.unwrap();
    let second = provider.fetch(&access, &names, Freshness::MayRevalidate).await.unwrap();
    assert_eq!(exposed(&first), exposed(&second));
    assert_eq!(exposed(&second), ["CANARYvalue-us-east-1", "CANARYvalue-AKIAEXAMPLE"]);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].if_none_match.is_some(), "{seen:?}");
    assert_eq!(seen[1].status, Some(304));
}

/// When the config changed, the revalidation gets a 200 and the new value.
#[tokio::test]
async fn a_changed_config_is_read_again_on_revalidation() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    let names = refs(&["REGION"]);
    provider.fetch(&access, &names, Freshness::MayRevalidate).await.unwrap();
    fake.set_secret(PROJECT, CONFIG, "REGION", "CANARYvalue-eu-west-1");
    let values = provider.fetch(&access, &names, Freshness::MayRevalidate).await.unwrap();
    assert_eq!(exposed(&values), ["CANARYvalue-eu-west-1"]);
    let seen = fake.seen();
    assert!(seen[1].if_none_match.is_some());
    assert_eq!(seen[1].status, Some(200));
}

/// `Freshness::Fresh` and `verify` never send `If-None-Match`, even with values kept.
#[tokio::test]
async fn fresh_reads_and_verify_never_revalidate() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    let names = refs(&["REGION"]);
    provider.fetch(&access, &names, Freshness::MayRevalidate).await.unwrap();
    let values = provider.fetch(&access, &names, Freshness::Fresh).await.unwrap();
    assert_eq!(exposed(&values), ["CANARYvalue-us-east-1"]);
    provider.verify(&access).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].if_none_match, None);
    assert_eq!(seen[1].status, Some(200));
    assert_eq!(seen[2].if_none_match, None);
    assert_eq!(seen[2].path, DOWNLOAD_PATH);
    assert_eq!(seen[2].param("secrets"), None, "verify downloads the config as it is");
}

/// What was read with one revision of a connection (or another connection, or for other
/// names) is never revalidated for another: no `If-None-Match` is sent.
#[tokio::test]
async fn a_new_revision_another_connection_or_other_names_do_not_revalidate() {
    let fake = fake();
    let provider = provider(&fake);
    let id = new_connection_id();
    let names = refs(&["REGION"]);
    provider
        .fetch(
            &access_with(id, 1, TOKEN, PROJECT, CONFIG),
            &names,
            Freshness::MayRevalidate,
        )
        .await
        .unwrap();
    provider
        .fetch(
            &access_with(id, 2, TOKEN, PROJECT, CONFIG),
            &names,
            Freshness::MayRevalidate,
        )
        .await
        .unwrap();
    provider
        .fetch(&access(), &names, Freshness::MayRevalidate)
        .await
        .unwrap();
    provider
        .fetch(
            &access_with(id, 2, TOKEN, PROJECT, CONFIG),
            &refs(&["ACCESS_KEY_ID"]),
            Freshness::MayRevalidate,
        )
        .await
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.if_none_match.is_none()), "{seen:?}");
    // The revision's own second read does revalidate.
    provider
        .fetch(
            &access_with(id, 2, TOKEN, PROJECT, CONFIG),
            &refs(&["ACCESS_KEY_ID"]),
            Freshness::MayRevalidate,
        )
        .await
        .unwrap();
    assert_eq!(fake.seen()[4].status, Some(304));
}

/// The fake answers as Doppler documents: Basic auth with the token as user and an empty
/// password is accepted like a Bearer; a wrong token is a JSON 401; the single-secret
/// endpoint has the raw/computed shape and a 404 message for an unknown name.
#[tokio::test]
async fn the_fake_accepts_basic_auth_and_answers_errors_as_doppler_does() {
    let fake = fake();
    let client = reqwest::Client::new();
    let download = format!("{}{DOWNLOAD_PATH}?format=json&secrets=REGION", fake.url());

    let basic = client.get(&download).basic_auth(TOKEN, Some("")).send().await.unwrap();
    assert_eq!(basic.status(), 200);
    assert!(basic.headers().contains_key("etag"));
    let body: serde_json::Value = basic.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"REGION": "CANARYvalue-us-east-1"}));
    assert_eq!(fake.seen()[0].auth, Some(AuthScheme::Basic));

    let refused = client
        .get(&download)
        .basic_auth("dp.st.prd.unknown", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"messages": ["Invalid Auth token"], "success": false})
    );

    let one = format!("{}/v3/configs/config/secret?name=REGION", fake.url());
    let body: serde_json::Value = client
        .get(&one)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["name"], "REGION");
    assert_eq!(body["value"]["computed"], "CANARYvalue-us-east-1");

    let missing = client
        .get(format!("{}/v3/configs/config/secret?name=NOPE", fake.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["messages"][0], "Could not find requested secret: NOPE");
    assert_eq!(fake.requests(), 4);
}

/// After a successful fetch (values kept for revalidation) and after every kind of
/// failure, neither the token nor a value appears in any `Debug` of the provider, its
/// config or the connection's access.
#[tokio::test]
async fn no_debug_output_holds_the_token_or_a_value() {
    let fake = fake();
    let provider = provider(&fake);
    let access = access();
    provider
        .fetch(&access, &refs(&["REGION", "ACCESS_KEY_ID"]), Freshness::MayRevalidate)
        .await
        .unwrap();
    for shown in [
        format!("{provider:?}"),
        format!("{:?}", DopplerConfig::default()),
        format!("{access:?}"),
        format!("{fake:?}"),
        format!("{:?}", fake.seen()),
    ] {
        assert!(!shown.contains("CANARY"), "{shown}");
    }
}
