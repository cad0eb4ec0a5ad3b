//! `StoreMigration` interrupted in the middle of its copy, over real parts: the real core
//! creates a deployment in a real SQLite database and the real `local` store, and the
//! migration copies it to the real SSM store on moto, which refuses every write after the
//! first few. The interrupted run leaves the rows on the local store (every secret still
//! resolves) and the binding in `Copying`; the next run copies only what is left, switches
//! the rows and empties the local store; a third run does nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use custodian_core::{Custodian, MigrationError, MigrationReport, NewTeamInput, StoreMigration, StoreOpener};
use custodian_crypto::Keyring;
use custodian_domain::{
    CreateSecretInput, CredentialField, RequestContext, SecretId, Subject, TeamId, UpdateSecretInput,
    VaultConnectionId, VaultConnectionInput, VaultReference, VaultType,
};
use custodian_ports::{
    CredentialInventory, CredentialKey, CredentialStore, MigrationPhase, StoreBackend, StoreBinding, StoreError,
    StoreId, StoreOpenError, StoredPage, VaultAccess, VaultError, VaultProvider,
};
use custodian_store_sql::{Database, LocalCredentialStore, SqlCleanupQueue, SqlCredentialInventory};
use custodian_store_ssm::SsmCredentialStore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::{moto_url, sdk_client, settings, sql_core, sqlite, store, tenant_admin, unique_prefix};

/// The tenant of the deployment, and so the location of its local store.
const TENANT: &str = "default";
/// The access key id of every secret; the secret access keys are the canaries.
const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// Managed secrets created in each of the two teams.
const SECRETS_PER_TEAM: usize = 6;
/// Successful writes to SSM before the interrupted run's next write is refused.
const WRITES_BEFORE_FAILURE: u64 = 5;

/// The SSM store, refusing every `put` after `allowed` successful ones.
struct InterruptedStore {
    inner: Arc<dyn CredentialStore>,
    allowed: u64,
    written: AtomicU64,
    attempts: AtomicU64,
}

#[async_trait]
impl CredentialStore for InterruptedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.written.load(Ordering::SeqCst) >= self.allowed {
            return Err(StoreError::Unavailable {
                message: format!("injected: SSM is gone after {} writes", self.allowed),
                retry_after: None,
            });
        }
        self.inner.put(key, version, value).await?;
        self.written.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        self.inner.get(key, version).await
    }

    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        self.inner.delete_version(key, version).await
    }

    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        self.inner.prune(key, keep).await
    }

    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.inner.delete_all(key).await
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        self.inner.list_stored(page, limit).await
    }
}

/// Opens the two stores of the test by their ids, as the server's configuration would.
struct Opener {
    stores: Vec<(StoreId, Arc<dyn CredentialStore>)>,
}

#[async_trait]
impl StoreOpener for Opener {
    async fn open(&self, id: &StoreId) -> Result<Arc<dyn CredentialStore>, StoreOpenError> {
        self.stores
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, store)| store.clone())
            .ok_or_else(|| StoreOpenError::Elsewhere(format!("this test has no store {id}")))
    }
}

/// A 1Password provider that accepts a connection's secret when it is the token the
/// connection was created with: verifying a connection proves its secret was read back
/// whole from the credential store.
#[derive(Default)]
struct OnePassword {
    tokens: Mutex<HashMap<Uuid, String>>,
}

impl OnePassword {
    fn expect(&self, connection: VaultConnectionId, token: &str) {
        self.tokens
            .lock()
            .expect("the token list is usable")
            .insert(connection.as_uuid(), token.to_owned());
    }
}

#[async_trait]
impl VaultProvider for OnePassword {
    fn vault_type(&self) -> VaultType {
        VaultType::OnePassword
    }

    async fn verify(&self, access: &VaultAccess) -> Result<(), VaultError> {
        let tokens = self.tokens.lock().expect("the token list is usable");
        match tokens.get(&access.connection_id.as_uuid()) {
            Some(token) if token.as_str() == access.secret.expose().expose_secret() => Ok(()),
            _ => Err(VaultError::AuthFailed {
                provider: VaultType::OnePassword,
            }),
        }
    }

    async fn fetch(
        &self,
        _: &VaultAccess,
        _: &[VaultReference],
        _: custodian_ports::Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        Err(VaultError::Unavailable {
            provider: VaultType::OnePassword,
            message: "this test has no vault to fetch from".into(),
        })
    }
}

/// What a parameter must hold.
enum Expected {
    /// A managed secret's credentials: the JSON object of its fields.
    S3 { secret_access_key: String },
    /// A vault connection's access token, as given.
    Token(String),
}

impl Expected {
    fn matches(&self, stored: &SecretString) -> bool {
        match self {
            Expected::S3 { secret_access_key } => {
                serde_json::from_str::<serde_json::Value>(stored.expose_secret()).ok()
                    == Some(json!({ "access_key_id": ACCESS_KEY_ID, "secret_access_key": secret_access_key }))
            }
            Expected::Token(token) => stored.expose_secret() == token,
        }
    }
}

/// A managed secret as created (and rotated).
struct Secret {
    team: TeamId,
    id: SecretId,
    secret_access_key: String,
}

/// The deployment over SQLite, its local store, and the SSM store on moto.
struct World {
    db: Database,
    local: Arc<LocalCredentialStore>,
    ssm: Arc<SsmCredentialStore>,
    local_id: StoreId,
    ssm_id: StoreId,
    vaults: Arc<OnePassword>,
    admin: Subject,
    secrets: Vec<Secret>,
    connection: (TeamId, VaultConnectionId),
    /// Every parameter the deployment must end up as: name → value.
    expected: BTreeMap<String, Expected>,
    /// Every value ever created, rotated away or not.
    canaries: Vec<String>,
    client: aws_sdk_ssm::Client,
    prefix: String,
    _dir: TempDir,
}

fn canary(label: &str) -> String {
    format!("canary-{label}-{}", Uuid::new_v4().simple())
}

fn s3(name: &str, secret_access_key: &str) -> CreateSecretInput {
    CreateSecretInput {
        name: Some(name.into()),
        secret_type: Some("s3".into()),
        auth_method: Some("s3_access_key".into()),
        credentials: Some(vec![
            ("access_key_id".into(), SecretString::from(ACCESS_KEY_ID)),
            (
                "secret_access_key".into(),
                SecretString::from(secret_access_key.to_owned()),
            ),
        ]),
        ..CreateSecretInput::default()
    }
}

/// The real core over `db` and `credential_store`, with the 1Password fake.
fn core(db: &Database, credential_store: Arc<dyn CredentialStore>, vaults: Arc<OnePassword>) -> Custodian {
    let mut vault_providers: HashMap<VaultType, Arc<dyn VaultProvider>> = HashMap::new();
    vault_providers.insert(VaultType::OnePassword, vaults);
    sql_core(db, credential_store, vault_providers)
}

/// A deployment on the local store: two teams of managed secrets, one of them rotated to
/// version 2, and a vault connection; the binding recorded as settled on `local`.
async fn world(test: &str) -> Option<World> {
    let endpoint = moto_url(test)?;
    let prefix = unique_prefix();
    let ssm_store = store(&settings(&endpoint, &prefix)).await;
    let ssm_id = StoreId::new(StoreBackend::AwsSsm, ssm_store.location());
    let dir = TempDir::new().expect("the test world works");
    let db = sqlite(dir.path()).await;
    let local = Arc::new(LocalCredentialStore::new(
        db.clone(),
        Arc::new(Keyring::generate()),
        TENANT,
    ));
    let vaults = Arc::new(OnePassword::default());
    let custodian = core(&db, local.clone(), vaults.clone());

    let ctx = RequestContext::default();
    let admin = tenant_admin(&custodian).await;

    let base = format!("{prefix}/{TENANT}");
    let mut secrets = Vec::new();
    let mut expected = BTreeMap::new();
    let mut canaries = Vec::new();
    let mut teams = Vec::new();
    for team_name in ["data-platform", "analytics"] {
        let team = custodian
            .create_team(
                &admin,
                &ctx,
                NewTeamInput {
                    name: Some(team_name.into()),
                    ..NewTeamInput::default()
                },
            )
            .await
            .expect("the test world works")
            .id;
        teams.push(team);
        for i in 0..SECRETS_PER_TEAM {
            let value = canary(&format!("{team_name}-{i}"));
            let created = custodian
                .create_secret(&admin, &ctx, team, s3(&format!("bucket-{i}"), &value))
                .await
                .expect("the test world works");
            canaries.push(value.clone());
            secrets.push(Secret {
                team,
                id: created.id,
                secret_access_key: value,
            });
        }
    }

    // One secret is rotated: only its version 2 is stored, and only it is moved.
    let rotated = &mut secrets[SECRETS_PER_TEAM + 1];
    let value = canary("rotated");
    let updated = custodian
        .update_secret(
            &admin,
            &ctx,
            rotated.team,
            rotated.id,
            UpdateSecretInput {
                credentials: Some(vec![
                    ("access_key_id".into(), SecretString::from(ACCESS_KEY_ID)),
                    ("secret_access_key".into(), SecretString::from(value.clone())),
                ]),
                ..UpdateSecretInput::default()
            },
        )
        .await
        .expect("the test world works");
    assert_eq!(updated.credentials_version, 2);
    canaries.push(value.clone());
    rotated.secret_access_key = value;

    for secret in &secrets {
        let version = if secret.id == updated.id { 2 } else { 1 };
        expected.insert(
            format!("{base}/{}/storage-secret/{}/v{version}", secret.team, secret.id),
            Expected::S3 {
                secret_access_key: secret.secret_access_key.clone(),
            },
        );
    }

    let token = format!("ops_{}", canary("vault"));
    let connection = custodian
        .create_vault_connection(
            &admin,
            &ctx,
            teams[0],
            VaultConnectionInput {
                name: Some("one-password".into()),
                vault_type: Some("onepassword".into()),
                access_token: Some(SecretString::from(token.clone())),
                ..VaultConnectionInput::default()
            },
        )
        .await
        .expect("the test world works");
    vaults.expect(connection.id, &token);
    canaries.push(token.clone());
    expected.insert(
        format!("{base}/{}/vault-connection/{}/v1", teams[0], connection.id),
        Expected::Token(token),
    );

    let local_id = StoreId::new(StoreBackend::Local, TENANT);
    SqlCredentialInventory::new(db.clone())
        .replace_binding(None, &StoreBinding::settled(local_id.clone()))
        .await
        .expect("the test world works");

    Some(World {
        db,
        local,
        ssm: Arc::new(ssm_store),
        local_id,
        ssm_id,
        vaults,
        admin,
        secrets,
        connection: (teams[0], connection.id),
        expected,
        canaries,
        client: sdk_client(&endpoint).await,
        prefix,
        _dir: dir,
    })
}

impl World {
    /// How many stored credentials the rows point at, each in its own record.
    fn n(&self) -> u64 {
        self.expected.len() as u64
    }

    /// A migration whose target is `ssm` (the SSM store, or one that fails).
    fn migration(&self, ssm: Arc<dyn CredentialStore>) -> StoreMigration {
        StoreMigration::new(
            Arc::new(SqlCredentialInventory::new(self.db.clone())),
            Arc::new(SqlCleanupQueue::new(self.db.clone())),
            Arc::new(Opener {
                stores: vec![(self.local_id.clone(), self.local.clone()), (self.ssm_id.clone(), ssm)],
            }),
        )
    }

    async fn binding(&self) -> Option<StoreBinding> {
        SqlCredentialInventory::new(self.db.clone())
            .binding()
            .await
            .expect("the binding can be read")
    }

    /// Every parameter under the store's prefix, decrypted, read through the SDK.
    async fn parameters(&self) -> BTreeMap<String, SecretString> {
        let mut parameters = BTreeMap::new();
        let mut pages = self
            .client
            .get_parameters_by_path()
            .path(&self.prefix)
            .recursive(true)
            .with_decryption(true)
            .max_results(10)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for parameter in page.expect("SSM can be listed").parameters() {
                let name = parameter.name().expect("a parameter has a name").to_owned();
                let value = parameter.value().expect("a parameter has a value").to_owned();
                parameters.insert(name, SecretString::from(value));
            }
        }
        parameters
    }

    /// Each parameter is one the deployment must end up as, holding the value created.
    fn check_values(&self, parameters: &BTreeMap<String, SecretString>) {
        for (name, value) in parameters {
            let expected = self
                .expected
                .get(name)
                .unwrap_or_else(|| panic!("SSM holds {name}, which no row points at"));
            assert!(expected.matches(value), "SSM's {name} does not hold the value created");
        }
    }

    /// Every secret resolves through `custodian` with the value it was given, and the vault
    /// connection's secret is read back whole.
    async fn every_secret_resolves(&self, custodian: &Custodian, over: &str) {
        for secret in &self.secrets {
            let credentials = custodian
                .resolve(&self.admin, secret.team, secret.id)
                .await
                .unwrap_or_else(|e| panic!("secret {} does not resolve over {over}: {e}", secret.id));
            assert!(
                credentials
                    .get(CredentialField::SecretAccessKey)
                    .is_some_and(|v| v.expose_secret() == secret.secret_access_key),
                "secret {} resolves to another value over {over}",
                secret.id
            );
        }
        let (team, id) = self.connection;
        let verification = custodian
            .verify_vault_connection(&self.admin, &RequestContext::default(), team, id)
            .await
            .unwrap_or_else(|e| panic!("vault connection {id} cannot be verified over {over}: {e}"));
        assert!(
            verification.verified,
            "vault connection {id} over {over}: {:?}",
            verification.error
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_cut_short_by_ssm_leaves_the_rows_on_local_and_the_next_run_finishes_it() {
    let Some(w) =
        world("migration::a_copy_cut_short_by_ssm_leaves_the_rows_on_local_and_the_next_run_finishes_it").await
    else {
        return;
    };
    let local_core = core(&w.db, w.local.clone(), w.vaults.clone());
    w.every_secret_resolves(&local_core, "the local store").await;
    assert!(w.parameters().await.is_empty());
    let k = WRITES_BEFORE_FAILURE;
    assert!(k < w.n(), "the failure must come in the middle of the copy");

    // 1. SSM refuses every write after the k-th: the run stops there, mid-copy.
    let failing = Arc::new(InterruptedStore {
        inner: w.ssm.clone(),
        allowed: k,
        written: AtomicU64::new(0),
        attempts: AtomicU64::new(0),
    });
    let error = w
        .migration(failing.clone())
        .run(&w.ssm_id)
        .await
        .expect_err("a run whose writes fail stops");
    let refused = match &error {
        MigrationError::Write {
            store,
            key,
            version,
            error: StoreError::Unavailable { .. },
        } if *store == w.ssm_id => (*key, *version),
        other => panic!("the run stopped for another reason: {other}"),
    };
    assert_eq!(
        failing.attempts.load(Ordering::SeqCst),
        k + 1,
        "the run went on writing after a refused write"
    );
    let shown = format!("{error} {error:?}");
    for value in &w.canaries {
        assert!(!shown.contains(value.as_str()), "the error shows a credential value");
    }
    assert_eq!(
        w.binding().await,
        Some(StoreBinding {
            store: w.local_id.clone(),
            phase: MigrationPhase::Copying { to: w.ssm_id.clone() },
        })
    );
    let copied = w.parameters().await;
    assert_eq!(copied.len() as u64, k, "SSM holds {:?}", copied.keys());
    w.check_values(&copied);
    let refused_name = w
        .ssm
        .parameter_name(&refused.0, refused.1)
        .expect("the refused write has a name");
    assert!(!copied.contains_key(&refused_name), "the refused write reached SSM");
    // The rows still read the local store, which still holds everything.
    assert!(w.local.holds_values().await.expect("the local store can be read"));
    w.every_secret_resolves(&local_core, "the local store, mid-copy").await;

    // 2. SSM is back: the run copies what is left, switches the rows, empties local.
    let report = w
        .migration(w.ssm.clone())
        .run(&w.ssm_id)
        .await
        .expect("the second run finishes the migration");
    assert_eq!(
        report,
        MigrationReport {
            store: Some(w.ssm_id.clone()),
            copied: w.n() - k,
            present: k,
            replaced: 0,
            missing: Vec::new(),
            retired: w.n(),
            retired_store: Some(w.local_id.clone()),
            abandoned: None,
        }
    );
    let moved = w.parameters().await;
    assert_eq!(
        moved.keys().cloned().collect::<BTreeSet<_>>(),
        w.expected.keys().cloned().collect::<BTreeSet<_>>(),
        "SSM holds one parameter per row, at the row's version"
    );
    w.check_values(&moved);
    assert!(
        !w.local.holds_values().await.expect("the local store can be read"),
        "the local store still holds values after the migration"
    );
    assert_eq!(w.binding().await, Some(StoreBinding::settled(w.ssm_id.clone())));
    let ssm_core = core(&w.db, w.ssm.clone(), w.vaults.clone());
    w.every_secret_resolves(&ssm_core, "SSM").await;

    // 3. Nothing is left to do.
    let report = w
        .migration(w.ssm.clone())
        .run(&w.ssm_id)
        .await
        .expect("a run after the migration succeeds");
    assert_eq!(
        report,
        MigrationReport {
            store: Some(w.ssm_id.clone()),
            ..MigrationReport::default()
        }
    );
    assert_eq!(
        w.parameters().await.keys().cloned().collect::<BTreeSet<_>>(),
        moved.keys().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(w.binding().await, Some(StoreBinding::settled(w.ssm_id.clone())));
}
