//! Resolution through the core crate, as a service that embeds it calls it: a managed S3
//! secret resolved again and again by a tenant admin, over the test kit's in-memory
//! repositories and credential store (what the core itself costs, not a database).
//! Audit events are recorded into a sink that keeps nothing, so that millions of
//! resolutions do not measure a growing vector.
//!
//! Criterion reports the time per resolution; then one core resolves 200,000 times in a
//! row and the rate and the 99th percentile are printed as `resolve_cached per_second=…`
//! and `resolve_cached p99_us=…` for `cargo xtask bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::Criterion;
use custodian_core::{Custodian, NewTeamInput, Settings};
use custodian_domain::{
    AuditAction, AuditEvent, CreateSecretInput, RequestContext, ResourceType, SecretId, Subject, TeamId, User,
};
use custodian_ports::{AuditFilter, AuditRepository, Page, Paged, Ports, RepoError, Repositories};
use custodian_testkit::contract::fixtures;
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::memory_store::MemoryCredentialStore;
use custodian_testkit::tokens::token_issuer;
use secrecy::SecretString;

/// Takes every event and keeps none.
struct Sink;

#[async_trait]
impl AuditRepository for Sink {
    async fn record(&self, event: &AuditEvent) -> Result<(), RepoError> {
        std::hint::black_box(event);
        Ok(())
    }
    async fn list(&self, _: TeamId, _: &AuditFilter, _: Page) -> Result<Paged<AuditEvent>, RepoError> {
        Ok(Paged {
            items: Vec::new(),
            total: 0,
        })
    }
    async fn list_tenant(&self, _: &AuditFilter, _: Page) -> Result<Paged<AuditEvent>, RepoError> {
        Ok(Paged {
            items: Vec::new(),
            total: 0,
        })
    }
}

async fn setup() -> (Custodian, Subject, TeamId, SecretId) {
    let repos = Repositories {
        audit: Arc::new(Sink),
        ..MemoryRepos::new().repositories()
    };
    let ports = Ports::new(repos, Arc::new(MemoryCredentialStore::default()), token_issuer());
    let admin = User {
        tenant_admin: true,
        ..fixtures::new_user("admin@localhost")
    };
    let event = fixtures::audit(
        None,
        AuditAction::Create,
        ResourceType::User,
        admin.id.as_uuid(),
        admin.id.into(),
    );
    ports
        .repos
        .users
        .create(&admin, None, &event)
        .await
        .expect("the admin is stored");
    let subject = Subject::User {
        id: admin.id,
        email: admin.email,
        display_name: admin.display_name,
        tenant_admin: true,
    };
    let custodian = Custodian::new(ports, Settings::default());
    let ctx = RequestContext::default();
    let team = custodian
        .create_team(
            &subject,
            &ctx,
            NewTeamInput {
                name: Some("bench".into()),
                ..NewTeamInput::default()
            },
        )
        .await
        .expect("the team is created");
    let secret = custodian
        .create_secret(
            &subject,
            &ctx,
            team.id,
            CreateSecretInput {
                name: Some("nightly-export".into()),
                secret_type: Some("s3".into()),
                auth_method: Some("s3_access_key".into()),
                credentials: Some(vec![
                    ("access_key_id".into(), SecretString::from("AKIABENCH0000000001")),
                    (
                        "secret_access_key".into(),
                        SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYBENCH0001"),
                    ),
                ]),
                ..CreateSecretInput::default()
            },
        )
        .await
        .expect("the secret is created");
    (custodian, subject, team.id, secret.id)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (custodian, subject, team, secret) = runtime.block_on(setup());
    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    criterion.bench_function("resolve_cached", |b| {
        b.to_async(&runtime)
            .iter(|| async { custodian.resolve(&subject, team, secret).await.expect("resolved") });
    });
    criterion.final_summary();

    const CALLS: usize = 200_000;
    let mut samples = Vec::with_capacity(CALLS);
    let started = Instant::now();
    runtime.block_on(async {
        for _ in 0..CALLS {
            let one = Instant::now();
            std::hint::black_box(custodian.resolve(&subject, team, secret).await.expect("resolved"));
            samples.push(one.elapsed());
        }
    });
    let total = started.elapsed();
    samples.sort_unstable();
    let p99 = samples[CALLS * 99 / 100];
    #[allow(clippy::cast_precision_loss)] // 200,000 calls
    let per_second = CALLS as f64 / total.as_secs_f64();
    #[allow(clippy::print_stdout, reason = "`cargo xtask bench` reads these two lines")]
    {
        println!("resolve_cached per_second={per_second:.0}");
        println!("resolve_cached p99_us={:.3}", p99.as_secs_f64() * 1e6);
    }
}
