//! The cache over a mocked provider: how many calls reach it, and what callers get.

use std::sync::Arc;
use std::time::Duration;

use custodian_domain::{VaultReference, VaultSecret, VaultSettings, VaultType};
use custodian_ports::{Freshness, MockVaultProvider, VaultAccess, VaultError, VaultProvider};
use secrecy::{ExposeSecret, SecretString};

use super::{VaultCache, VaultCacheSettings};
use crate::test_support::vault_id;

fn access(revision: i64) -> VaultAccess {
    VaultAccess {
        connection_id: vault_id(),
        revision,
        settings: VaultSettings::Doppler {
            project: "backend".into(),
            config: "prd".into(),
        },
        secret: VaultSecret::from_stored(SecretString::from("dp.st.prd.token-canary")),
    }
}

fn references() -> Vec<VaultReference> {
    ["S3_KEY_ID", "S3_SECRET"]
        .iter()
        .map(|r| VaultReference::parse(VaultType::Doppler, r).expect("a Doppler name"))
        .collect()
}

fn values(tag: &str) -> Vec<SecretString> {
    vec![
        SecretString::from(format!("id-{tag}")),
        SecretString::from(format!("secret-{tag}")),
    ]
}

fn exposed(values: &[SecretString]) -> Vec<String> {
    values.iter().map(|v| v.expose_secret().to_owned()).collect()
}

fn unavailable() -> VaultError {
    VaultError::Unavailable {
        provider: VaultType::Doppler,
        message: "down".into(),
    }
}

fn provider() -> MockVaultProvider {
    let mut provider = MockVaultProvider::new();
    provider.expect_vault_type().return_const(VaultType::Doppler);
    provider
}

fn shared(provider: MockVaultProvider) -> Arc<dyn VaultProvider> {
    Arc::new(provider)
}

fn cache(ttl: Duration) -> VaultCache {
    VaultCache::new(VaultCacheSettings {
        ttl,
        requests_per_minute: 10_000,
        ..VaultCacheSettings::default()
    })
}

/// A thousand callers asking for a key nobody has read make exactly one provider call,
/// and all of them get its values.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_resolves_of_a_cold_key_make_one_call() {
    let mut mock = provider();
    mock.expect_fetch()
        .withf(|_, _, freshness| *freshness == Freshness::MayRevalidate)
        .times(1)
        .returning(|_, _, _| {
            // Slow enough that every caller arrives while the one call is under way.
            std::thread::sleep(Duration::from_millis(200));
            Ok(values("a"))
        });
    let provider = shared(mock);
    let cache = Arc::new(cache(Duration::from_secs(300)));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, provider) = (cache.clone(), provider.clone());
            tokio::spawn(async move { cache.fetch(&provider, &access(1), &references()).await })
        })
        .collect();
    for caller in callers {
        let got = caller.await.expect("joined").expect("values");
        assert_eq!(exposed(&got), ["id-a", "secret-a"]);
    }
}

/// Within the TTL the cache answers; a new revision (a rotated connection) and an
/// invalidation each read again.
#[tokio::test]
async fn the_cache_answers_until_the_revision_changes_or_the_connection_is_invalidated() {
    let mut mock = provider();
    let mut calls = 0;
    mock.expect_fetch().times(3).returning(move |access, _, _| {
        calls += 1;
        Ok(values(&format!("r{}-{calls}", access.revision)))
    });
    let provider = shared(mock);
    let cache = cache(Duration::from_secs(300));
    let first = cache.fetch(&provider, &access(1), &references()).await.expect("read");
    let again = cache.fetch(&provider, &access(1), &references()).await.expect("cached");
    assert_eq!(exposed(&again), exposed(&first));
    let rotated = cache.fetch(&provider, &access(2), &references()).await.expect("read");
    assert_eq!(exposed(&rotated)[0], "id-r2-2");
    cache.invalidate(vault_id());
    let fresh = cache.fetch(&provider, &access(2), &references()).await.expect("read");
    assert_eq!(exposed(&fresh)[0], "id-r2-3");
}

/// Once the TTL has passed, a provider that is down is tried again (with retries) and the
/// last values are served meanwhile; a refused token is neither retried nor hidden behind
/// the last values: stale values cover transient failures only.
#[tokio::test]
async fn a_failing_provider_is_retried_then_the_last_values_are_served() {
    let mut mock = provider();
    let mut seq = mockall::Sequence::new();
    mock.expect_fetch()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(values("good")));
    mock.expect_fetch()
        .times(1 + super::RETRIES as usize)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(unavailable()));
    mock.expect_fetch().times(1).in_sequence(&mut seq).returning(|_, _, _| {
        Err(VaultError::AuthFailed {
            provider: VaultType::Doppler,
        })
    });
    let provider = shared(mock);
    let cache = cache(Duration::from_millis(50));
    cache.fetch(&provider, &access(1), &references()).await.expect("read");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let stale = cache
        .fetch(&provider, &access(1), &references())
        .await
        .expect("stale values");
    assert_eq!(exposed(&stale), ["id-good", "secret-good"]);
    // A refused token is the caller's to know about, not hidden behind old values.
    let refused = cache.fetch(&provider, &access(1), &references()).await;
    assert_eq!(
        refused.map(|v| exposed(&v)),
        Err(VaultError::AuthFailed {
            provider: VaultType::Doppler
        })
    );
}

/// With nothing read before, a failing provider's error reaches the caller after the retries.
#[tokio::test]
async fn without_earlier_values_the_failure_is_the_answer() {
    let mut mock = provider();
    mock.expect_fetch()
        .times(1 + super::RETRIES as usize)
        .returning(|_, _, _| Err(unavailable()));
    let cache = cache(Duration::from_secs(300));
    let answer = cache.fetch(&shared(mock), &access(1), &references()).await;
    assert_eq!(answer.map(|v| exposed(&v)), Err(unavailable()));
}

/// A reference the vault does not have is remembered for the negative TTL: the second
/// resolve does not call the provider.
#[tokio::test]
async fn a_missing_reference_is_remembered_briefly() {
    let missing = VaultError::ReferenceNotFound {
        provider: VaultType::Doppler,
        reference: "S3_SECRET".into(),
    };
    let mut mock = provider();
    let answer = missing.clone();
    mock.expect_fetch()
        .times(1)
        .returning(move |_, _, _| Err(answer.clone()));
    let provider = shared(mock);
    let cache = cache(Duration::from_secs(300));
    for _ in 0..2 {
        let got = cache.fetch(&provider, &access(1), &references()).await;
        assert_eq!(got.map(|v| exposed(&v)), Err(missing.clone()));
    }
}

/// A rate-limited answer with a short `Retry-After` is waited out and asked again; one with
/// a long one is the caller's answer at once.
#[tokio::test]
async fn retry_after_is_honoured_when_short_and_reported_when_long() {
    let mut mock = provider();
    let mut seq = mockall::Sequence::new();
    mock.expect_fetch().times(1).in_sequence(&mut seq).returning(|_, _, _| {
        Err(VaultError::RateLimited {
            provider: VaultType::Doppler,
            retry_after: Some(Duration::from_millis(50)),
        })
    });
    mock.expect_fetch()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(values("after")));
    let long = VaultError::RateLimited {
        provider: VaultType::Doppler,
        retry_after: Some(Duration::from_secs(60)),
    };
    let answer = long.clone();
    mock.expect_fetch()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _| Err(answer.clone()));
    let provider = shared(mock);
    let cache = cache(Duration::from_secs(300));
    let got = cache
        .fetch(&provider, &access(1), &references())
        .await
        .expect("after the wait");
    assert_eq!(exposed(&got), ["id-after", "secret-after"]);
    let other = cache.fetch(&provider, &access(2), &references()).await;
    assert_eq!(other.map(|v| exposed(&v)), Err(long));
}

/// The connection's budget holds calls back: past it, a call waits for the next token, and
/// is refused as rate limited (by Custodian) if none comes in time.
#[tokio::test]
async fn a_connection_over_its_budget_is_refused_as_rate_limited() {
    let mut mock = provider();
    mock.expect_fetch().times(1).returning(|_, _, _| Ok(values("one")));
    let provider = shared(mock);
    let cache = VaultCache::new(VaultCacheSettings {
        requests_per_minute: 1,
        ..VaultCacheSettings::default()
    });
    cache
        .fetch(&provider, &access(1), &references())
        .await
        .expect("the one call");
    let refused = cache.fetch(&provider, &access(2), &references()).await;
    assert!(
        matches!(refused, Err(VaultError::RateLimited { .. })),
        "{:?}",
        refused.map(|v| exposed(&v))
    );
}
