//! Stores and SDK clients pointed at a test endpoint, the moto switch, and the real core
//! over a SQLite database for the scenarios.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ssm::config::Credentials;
use custodian_core::{Custodian, NewUserInput, Ports, Settings};
use custodian_domain::{DisplayName, Email, RequestContext, Subject, UserId, VaultType};
use custodian_ports::{CredentialStore, IdGenerator, UuidV7Ids, VaultProvider};
use custodian_store_sql::Database;
use custodian_store_ssm::{SsmCredentialStore, SsmRetry, SsmSettings};
use custodian_testkit::tokens::token_issuer;
use uuid::Uuid;

/// The URL of the `moto_server` the SSM tests use. `cargo xtask test` starts one and sets
/// it; the same name is defined in xtask (`moto::MOTO_URL_ENV`).
pub(crate) const MOTO_URL_ENV: &str = "CUSTODIAN_TEST_MOTO_URL";

pub(crate) const REGION: &str = "us-east-1";

/// The moto URL, or `None` after a loud skip line. Under CI an unset URL fails the test:
/// CI never skips the SSM tests.
pub(crate) fn moto_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(MOTO_URL_ENV)
        && !url.trim().is_empty()
    {
        return Some(url.trim().trim_end_matches('/').to_owned());
    }
    if is_ci(std::env::var("CI").ok().as_deref()) {
        panic!(
            "{MOTO_URL_ENV} is not set, and CI (CI=true) runs the AWS SSM tests against moto; they are never skipped there.\n\
             fix: run the tests with `cargo xtask test`, which installs moto[server] in a venv under the target \
             directory and starts moto_server, or start `moto_server -p PORT` yourself and set {MOTO_URL_ENV}=http://127.0.0.1:PORT"
        );
    }
    eprintln!(
        "SKIPPED (moto): {test} — {MOTO_URL_ENV} is not set, so this AWS SSM test did not run.\n\
         SKIPPED (moto): to run it: `cargo xtask test`, or start `moto_server -p 5000` (pip install 'moto[server]') \
         and set {MOTO_URL_ENV}=http://127.0.0.1:5000"
    );
    None
}

fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// A prefix no other test or run uses, so tests can share one moto server.
pub(crate) fn unique_prefix() -> String {
    format!("/custodian-it-{}", Uuid::new_v4().simple())
}

/// Settings for `endpoint` with short, bounded retries so failing tests fail fast.
pub(crate) fn settings(endpoint: &str, prefix: &str) -> SsmSettings {
    SsmSettings {
        region: Some(REGION.to_owned()),
        endpoint_url: Some(endpoint.to_owned()),
        prefix: prefix.to_owned(),
        kms_key_id: None,
        tenant: "default".to_owned(),
        retry: SsmRetry {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            operation_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
        },
    }
}

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "custodian-tests")
}

/// The store on `settings`, with static test credentials (moto ignores signatures).
pub(crate) async fn store(settings: &SsmSettings) -> SsmCredentialStore {
    let config = SsmCredentialStore::config_loader(settings)
        .credentials_provider(credentials())
        .load()
        .await;
    SsmCredentialStore::from_sdk_config(&config, settings).expect("store on test settings")
}

/// A plain SDK client on `endpoint`, to look at what the store wrote.
pub(crate) async fn sdk_client(endpoint: &str) -> aws_sdk_ssm::Client {
    let config = SsmCredentialStore::config_loader(&settings(endpoint, "/unused"))
        .credentials_provider(credentials())
        .load()
        .await;
    aws_sdk_ssm::Client::new(&config)
}

/// A migrated SQLite database in `dir`.
pub(crate) async fn sqlite(dir: &Path) -> Database {
    let db = Database::connect(&format!("sqlite://{}", dir.join("c.db").display())).expect("the test world works");
    db.migrate().await.expect("the test world works");
    db
}

/// The real core over the SQL repositories of `db`, `credential_store` and `vault_providers`.
pub(crate) fn sql_core(
    db: &Database,
    credential_store: Arc<dyn CredentialStore>,
    vault_providers: HashMap<VaultType, Arc<dyn VaultProvider>>,
) -> Custodian {
    let ports = vault_providers.into_values().fold(
        Ports::new(custodian_store_sql::repositories(db), credential_store, token_issuer()),
        Ports::with_vault_provider,
    );
    Custodian::new(ports, Settings::default())
}

/// A tenant admin created through `custodian`, as the subject of later calls.
pub(crate) async fn tenant_admin(custodian: &Custodian) -> Subject {
    let operator = Subject::User {
        id: UserId::from_uuid(UuidV7Ids.new_id()),
        email: Email::parse_at("email", "operator@localhost").expect("the test world works"),
        display_name: DisplayName::parse_at("display_name", "Operator").expect("the test world works"),
        tenant_admin: true,
    };
    let (user, _) = custodian
        .create_user(
            &operator,
            &RequestContext::default(),
            NewUserInput {
                email: Some("admin@example.com".into()),
                display_name: Some("Ada Admin".into()),
                tenant_admin: true,
            },
        )
        .await
        .expect("the test world works");
    Subject::User {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        tenant_admin: true,
    }
}
