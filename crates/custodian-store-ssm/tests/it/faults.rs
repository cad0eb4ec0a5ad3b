//! Throttling, faults, timeouts and refusals, against the local fake (moto never throttles).

use std::time::Duration;

use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind, CredentialStore, StoreError};
use custodian_store_ssm::{SsmCredentialStore, SsmRetry};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::fake_ssm::{FAKE_VALUE, FakeSsm, Script};
use crate::support::{self, settings};

const MAX_ATTEMPTS: u32 = 4;

fn key() -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::new_v4()),
        kind: CredentialKind::StorageSecret,
        record_id: Uuid::new_v4(),
    }
}

async fn store_on(fake: &FakeSsm) -> SsmCredentialStore {
    support::store(&settings(&fake.url, "/custodian")).await
}

fn unavailable(result: Result<impl std::fmt::Debug, StoreError>) -> (String, Option<Duration>) {
    match result {
        Err(StoreError::Unavailable { message, retry_after }) => (message, retry_after),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn throttling_is_retried_until_the_store_answers() {
    let fake = FakeSsm::start(Script::ThrottleThenOk(3)).await;
    let store = store_on(&fake).await;
    let value = store.get(&key(), 1).await.expect("answered on the fourth attempt");
    assert_eq!(value.expose_secret(), FAKE_VALUE);
    assert_eq!(
        fake.requests(),
        vec!["AmazonSSM.GetParameter"; 4],
        "three throttled attempts, then one that succeeds"
    );
}

#[tokio::test]
async fn throttling_of_a_write_is_retried_too() {
    let fake = FakeSsm::start(Script::ThrottleThenOk(2)).await;
    let store = store_on(&fake).await;
    store
        .put(&key(), 1, &SecretString::from("value"))
        .await
        .expect("stored on the third attempt");
    assert_eq!(fake.requests(), vec!["AmazonSSM.PutParameter"; 3]);
}

#[tokio::test]
async fn a_store_that_keeps_throttling_is_unavailable_after_a_bounded_number_of_attempts() {
    let fake = FakeSsm::start(Script::AlwaysThrottle).await;
    let store = store_on(&fake).await;
    let (message, retry_after) = unavailable(store.get(&key(), 1).await);
    assert!(message.contains("ThrottlingException"), "{message}");
    assert!(
        retry_after.is_some_and(|d| d > Duration::ZERO),
        "a retry hint: {retry_after:?}"
    );
    assert_eq!(
        fake.requests().len(),
        MAX_ATTEMPTS as usize,
        "max_attempts bounds the retries"
    );

    // Every operation surfaces throttling the same way.
    let record = key();
    unavailable(store.put(&record, 1, &SecretString::from("value")).await);
    unavailable(store.delete_version(&record, 1).await);
    unavailable(store.prune(&record, 2).await);
    unavailable(store.delete_all(&record).await);
}

#[tokio::test]
async fn server_errors_are_retried_then_unavailable() {
    let fake = FakeSsm::start(Script::AlwaysServerError).await;
    let store = store_on(&fake).await;
    let (message, _) = unavailable(store.delete_all(&key()).await);
    assert!(message.contains("HTTP 500"), "{message}");
    assert_eq!(fake.requests().len(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn a_store_that_never_answers_times_out_as_unavailable() {
    let fake = FakeSsm::start(Script::Silent).await;
    let mut settings = settings(&fake.url, "/custodian");
    settings.retry = SsmRetry {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        operation_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
    };
    let store = support::store(&settings).await;
    let (message, retry_after) = unavailable(store.get(&key(), 1).await);
    assert!(
        message.contains("timed out") || message.contains("timeout"),
        "{message}"
    );
    assert!(retry_after.is_some());
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let store = support::store(&settings(&format!("http://127.0.0.1:{port}"), "/custodian")).await;
    let (message, _) = unavailable(store.get(&key(), 1).await);
    assert!(message.contains("could not reach"), "{message}");
}

#[tokio::test]
async fn a_refusal_that_quotes_the_request_never_shows_the_value() {
    let fake = FakeSsm::start(Script::QuoteTheRequest).await;
    let store = store_on(&fake).await;
    let canary = format!("canary-{}", Uuid::new_v4().simple());
    let error = store
        .put(&key(), 1, &SecretString::from(canary.clone()))
        .await
        .expect_err("the fake refuses every request");
    assert!(matches!(error, StoreError::Internal(_)), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("ValidationException"), "the code is named: {shown}");
    assert!(!shown.contains(&canary[7..]), "the error shows the value");
    assert_eq!(
        fake.requests(),
        vec!["AmazonSSM.PutParameter"],
        "a refusal is not retried"
    );
}

#[tokio::test]
async fn values_ssm_cannot_hold_are_rejected_before_any_call() {
    let fake = FakeSsm::start(Script::AlwaysThrottle).await;
    let store = store_on(&fake).await;
    let record = key();

    let too_long = "x".repeat(8193);
    for (what, value) in [("8193 bytes", too_long.as_str()), ("empty", "")] {
        match store.put(&record, 1, &SecretString::from(value)).await {
            Err(StoreError::Rejected(message)) => {
                assert!(!message.contains("xxxx"), "{what}: the message holds no value");
            }
            other => panic!("{what}: expected Rejected, got {other:?}"),
        }
    }
    // 4097 two-byte characters: 8194 bytes, although only 4097 characters.
    let wide = "é".repeat(4097);
    match store.put(&record, 1, &SecretString::from(wide)).await {
        Err(StoreError::Rejected(message)) => assert!(message.contains("8194 bytes"), "{message}"),
        other => panic!("multi-byte value over 8192 bytes: expected Rejected, got {other:?}"),
    }
    match store.put(&record, 0, &SecretString::from("value")).await {
        Err(StoreError::Rejected(message)) => assert!(message.contains("start at 1"), "{message}"),
        other => panic!("version 0: expected Rejected, got {other:?}"),
    }
    // Versions that cannot exist are absent without asking.
    assert_eq!(store.get(&record, 0).await.err(), Some(StoreError::NotFound));
    store.delete_version(&record, 0).await.expect("nothing to delete");

    assert!(fake.requests().is_empty(), "no call reached SSM: {:?}", fake.requests());
}

#[tokio::test]
async fn prefixes_and_tenants_ssm_cannot_hold_are_rejected_before_any_call() {
    let fake = FakeSsm::start(Script::AlwaysThrottle).await;
    let cases = [
        ("/aws/custodian", "default", "\"aws\""),
        ("/ssm-things", "default", "\"ssm\""),
        ("custodian", "default", "must start with '/'"),
        ("/cust odian", "default", "' '"),
        ("/custodian", "team/a", "'/'"),
        ("/custodian", "", "empty level"),
        ("/a/b/c/d/e/f/g/h/i/j/k", "default", "15"),
    ];
    for (prefix, tenant, rule) in cases {
        let mut settings = settings(&fake.url, prefix);
        settings.tenant = tenant.to_owned();
        match SsmCredentialStore::connect(settings).await {
            Err(StoreError::Rejected(message)) => {
                assert!(
                    message.contains(rule),
                    "{prefix:?} {tenant:?}: {message:?} names the rule {rule:?}"
                )
            }
            other => panic!("{prefix:?} {tenant:?}: expected Rejected, got {other:?}"),
        }
    }
    let long = format!("/{}", "p".repeat(900));
    match SsmCredentialStore::connect(settings(&fake.url, &long)).await {
        Err(StoreError::Rejected(message)) => assert!(message.contains("characters"), "{message}"),
        other => panic!("a 900-character prefix: expected Rejected, got {other:?}"),
    }
    assert!(fake.requests().is_empty(), "no call reached SSM: {:?}", fake.requests());
}

#[tokio::test]
async fn the_store_names_itself_and_its_debug_shows_no_value() {
    let fake = FakeSsm::start(Script::ThrottleThenOk(0)).await;
    let store = store_on(&fake).await;
    assert_eq!(store.backend(), "aws-ssm");
    let shown = format!("{store:?}");
    assert!(shown.contains("/custodian/default"), "{shown}");
    let value = store.get(&key(), 1).await.expect("get");
    assert!(!format!("{value:?}").contains(FAKE_VALUE), "secrecy redacts the value");
}

#[tokio::test]
async fn the_settings_shape_the_sdk_configuration() {
    let settings = settings("http://127.0.0.1:9", "/custodian");
    let config = SsmCredentialStore::config_loader(&settings).load().await;
    assert_eq!(config.region().map(|r| r.as_ref()), Some(support::REGION));
    assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:9"));
    let retry = config.retry_config().expect("retry config");
    assert_eq!(retry.mode(), aws_config::retry::RetryMode::Standard);
    assert_eq!(retry.max_attempts(), settings.retry.max_attempts);
    assert_eq!(retry.initial_backoff(), settings.retry.initial_backoff);
    let timeouts = config.timeout_config().expect("timeouts");
    assert_eq!(timeouts.operation_timeout(), Some(settings.retry.operation_timeout));
    assert_eq!(
        timeouts.operation_attempt_timeout(),
        Some(settings.retry.attempt_timeout)
    );
}
