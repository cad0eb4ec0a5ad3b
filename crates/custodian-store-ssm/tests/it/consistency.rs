//! The database and SSM stay consistent when either fails half-way: the real
//! core over a real SQLite database and the real SSM store on moto, with failures injected
//! into the store (on a chosen operation) and the database refusing a commit (a taken
//! name). After each scenario every row points at credentials SSM holds, and after
//! `run_cleanup` (`custodian gc`) SSM holds nothing that no row points at.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use custodian_core::{CoreError, Custodian, NewTeamInput};
use custodian_domain::{CreateSecretInput, RequestContext, Subject, TeamId, UpdateSecretInput};
use custodian_ports::{CredentialKey, CredentialStore, Page, SecretFilter, StoreError, StoredPage};
use custodian_store_sql::SqlSecretRepository;
use secrecy::SecretString;
use tempfile::TempDir;

use crate::support::{moto_url, sdk_client, settings, sql_core, sqlite, store, tenant_admin, unique_prefix};

/// The store operation a scenario makes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    DeleteVersion,
    Prune,
    DeleteAll,
}

/// The SSM store, failing every call of one operation while `failing` is on.
struct FailingStore {
    inner: Arc<dyn CredentialStore>,
    failing: Mutex<Option<Op>>,
    failed: AtomicBool,
}

impl FailingStore {
    fn fail(&self, op: Option<Op>) {
        *self.failing.lock().expect("the failure switch is usable") = op;
    }

    fn check(&self, op: Op) -> Result<(), StoreError> {
        if *self.failing.lock().expect("the failure switch is usable") == Some(op) {
            self.failed.store(true, Ordering::SeqCst);
            return Err(StoreError::Unavailable {
                message: format!("injected failure of {op:?}"),
                retry_after: None,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl CredentialStore for FailingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        self.check(Op::Put)?;
        self.inner.put(key, version, value).await
    }

    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        self.inner.get(key, version).await
    }

    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        self.check(Op::DeleteVersion)?;
        self.inner.delete_version(key, version).await
    }

    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        self.check(Op::Prune)?;
        self.inner.prune(key, keep).await
    }

    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.check(Op::DeleteAll)?;
        self.inner.delete_all(key).await
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        self.inner.list_stored(page, limit).await
    }
}

/// The core over SQLite and the (failing) SSM store, a tenant admin, and one team.
struct World {
    custodian: Custodian,
    store: Arc<FailingStore>,
    secrets: SqlSecretRepository,
    admin: Subject,
    team: TeamId,
    ssm: aws_sdk_ssm::Client,
    prefix: String,
    _dir: TempDir,
}

async fn world(test: &str) -> Option<World> {
    let endpoint = moto_url(test)?;
    let prefix = unique_prefix();
    let ssm_store = store(&settings(&endpoint, &prefix)).await;
    let failing = Arc::new(FailingStore {
        inner: Arc::new(ssm_store),
        failing: Mutex::new(None),
        failed: AtomicBool::new(false),
    });
    let dir = TempDir::new().expect("the test world works");
    let db = sqlite(dir.path()).await;
    let custodian = sql_core(&db, failing.clone(), HashMap::new());
    let admin = tenant_admin(&custodian).await;
    let ctx = RequestContext::default();
    let team = custodian
        .create_team(
            &admin,
            &ctx,
            NewTeamInput {
                name: Some("data-platform".into()),
                ..NewTeamInput::default()
            },
        )
        .await
        .expect("the test world works")
        .id;
    Some(World {
        custodian,
        store: failing,
        secrets: SqlSecretRepository::new(db),
        admin,
        team,
        ssm: sdk_client(&endpoint).await,
        prefix,
        _dir: dir,
    })
}

fn s3(name: &str, secret_access_key: &str) -> CreateSecretInput {
    CreateSecretInput {
        name: Some(name.into()),
        secret_type: Some("s3".into()),
        auth_method: Some("s3_access_key".into()),
        credentials: Some(vec![
            ("access_key_id".into(), SecretString::from("AKIAIOSFODNN7EXAMPLE")),
            (
                "secret_access_key".into(),
                SecretString::from(secret_access_key.to_owned()),
            ),
        ]),
        ..CreateSecretInput::default()
    }
}

fn rotation(secret_access_key: &str) -> UpdateSecretInput {
    UpdateSecretInput {
        credentials: Some(vec![
            ("access_key_id".into(), SecretString::from("AKIAI44QH8DHBEXAMPLE")),
            (
                "secret_access_key".into(),
                SecretString::from(secret_access_key.to_owned()),
            ),
        ]),
        ..UpdateSecretInput::default()
    }
}

impl World {
    fn ctx() -> RequestContext {
        RequestContext::default()
    }

    /// Every parameter name under the store's prefix, sorted.
    async fn parameters(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut pages = self
            .ssm
            .get_parameters_by_path()
            .path(&self.prefix)
            .recursive(true)
            .max_results(10)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            names.extend(
                page.expect("the test world works")
                    .parameters()
                    .iter()
                    .filter_map(|p| p.name.clone()),
            );
        }
        names
    }

    /// The parameter names the rows point at: `…/<secret id>/v<credentials_version>`.
    async fn pointed_at(&self) -> BTreeSet<String> {
        use custodian_ports::SecretRepository;
        let rows = self
            .secrets
            .list(self.team, &SecretFilter::default(), Page { limit: 200, offset: 0 })
            .await
            .expect("the test world works");
        rows.items
            .iter()
            .map(|s| {
                format!(
                    "{}/default/{}/storage-secret/{}/v{}",
                    self.prefix, self.team, s.id, s.credentials_version
                )
            })
            .collect()
    }

    /// Every row's credentials resolve from SSM.
    async fn every_row_resolves(&self) {
        for name in self.pointed_at().await {
            assert!(
                self.parameters().await.contains(&name),
                "a row points at {name}, which SSM does not hold"
            );
        }
        use custodian_ports::SecretRepository;
        let rows = self
            .secrets
            .list(self.team, &SecretFilter::default(), Page { limit: 200, offset: 0 })
            .await
            .expect("the test world works");
        for row in rows.items {
            self.custodian
                .resolve(&self.admin, self.team, row.id)
                .await
                .expect("the test world works");
        }
    }

    /// After `custodian gc`, SSM holds exactly what the rows point at.
    async fn after_gc_ssm_holds_only_what_rows_point_at(&self) {
        self.store.fail(None);
        self.custodian.run_cleanup(100).await.expect("the test world works");
        assert_eq!(self.parameters().await, self.pointed_at().await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_put_fails_commits_nothing() {
    let Some(w) = world("consistency::a_create_whose_put_fails_commits_nothing").await else {
        return;
    };
    w.store.fail(Some(Op::Put));
    let result = w
        .custodian
        .create_secret(&w.admin, &World::ctx(), w.team, s3("backups", "first-secret-value-1"))
        .await;
    assert!(matches!(result, Err(CoreError::Unavailable { .. })), "{result:?}");
    assert!(w.pointed_at().await.is_empty());
    assert!(w.parameters().await.is_empty());
    w.after_gc_ssm_holds_only_what_rows_point_at().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_commit_fails_removes_what_it_wrote() {
    let Some(w) = world("consistency::a_create_whose_commit_fails_removes_what_it_wrote").await else {
        return;
    };
    let ctx = World::ctx();
    w.custodian
        .create_secret(&w.admin, &ctx, w.team, s3("backups", "first-secret-value-1"))
        .await
        .unwrap();
    // The database refuses the second row (the name is taken) after its credentials are written.
    let result = w
        .custodian
        .create_secret(&w.admin, &ctx, w.team, s3("backups", "second-secret-value-2"))
        .await;
    assert!(matches!(result, Err(CoreError::Conflict(_))), "{result:?}");
    assert_eq!(w.parameters().await, w.pointed_at().await);
    w.every_row_resolves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_commit_and_undo_fail_leaves_an_orphan_that_gc_removes() {
    let Some(w) = world("consistency::a_create_whose_commit_and_undo_fail_leaves_an_orphan_that_gc_removes").await
    else {
        return;
    };
    let ctx = World::ctx();
    w.custodian
        .create_secret(&w.admin, &ctx, w.team, s3("backups", "first-secret-value-1"))
        .await
        .unwrap();
    w.store.fail(Some(Op::DeleteVersion));
    let result = w
        .custodian
        .create_secret(&w.admin, &ctx, w.team, s3("backups", "second-secret-value-2"))
        .await;
    assert!(matches!(result, Err(CoreError::Conflict(_))), "{result:?}");
    assert!(w.store.failed.load(Ordering::SeqCst), "the undo was tried");
    // The orphan is there, no row points at it, and the rows still resolve.
    assert_eq!(w.parameters().await.len(), 2);
    assert_eq!(w.pointed_at().await.len(), 1);
    w.every_row_resolves().await;
    w.after_gc_ssm_holds_only_what_rows_point_at().await;
    w.every_row_resolves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_whose_put_fails_keeps_the_row_on_its_version() {
    let Some(w) = world("consistency::a_rotation_whose_put_fails_keeps_the_row_on_its_version").await else {
        return;
    };
    let ctx = World::ctx();
    let secret = w
        .custodian
        .create_secret(&w.admin, &ctx, w.team, s3("backups", "first-secret-value-1"))
        .await
        .unwrap();
    w.store.fail(Some(Op::Put));
    let result = w
        .custodian
        .update_secret(&w.admin, &ctx, w.team, secret.id, rotation("rotated-secret-value-2"))
        .await;
    assert!(result.is_err(), "{result:?}");
    assert!(w.pointed_at().await.iter().all(|n| n.ends_with("/v1")));
    w.every_row_resolves().await;
    w.after_gc_ssm_holds_only_what_rows_point_at().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_whose_prune_fails_answers_success_and_gc_prunes() {
    let Some(w) = world("consistency::a_rotation_whose_prune_fails_answers_success_and_gc_prunes").await else {
        return;
    };
    let ctx = World::ctx();
    let secret = w
        .custodian
        .create_secret(&w.admin, &ctx, w.team, s3("backups", "first-secret-value-1"))
        .await
        .unwrap();
    w.store.fail(Some(Op::Prune));
    let rotated = w
        .custodian
        .update_secret(&w.admin, &ctx, w.team, secret.id, rotation("rotated-secret-value-2"))
        .await
        .unwrap();
    assert_eq!(rotated.credentials_version, 2);
    // Both versions are stored until gc; the row points at the new one.
    assert_eq!(w.parameters().await.len(), 2);
    w.every_row_resolves().await;
    w.after_gc_ssm_holds_only_what_rows_point_at().await;
    assert!(w.parameters().await.iter().all(|n| n.ends_with("/v2")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_store_removal_fails_answers_success_and_gc_removes() {
    let Some(w) = world("consistency::a_delete_whose_store_removal_fails_answers_success_and_gc_removes").await else {
        return;
    };
    let ctx = World::ctx();
    let kept = w
        .custodian
        .create_secret(&w.admin, &ctx, w.team, s3("kept", "kept-secret-value-1"))
        .await
        .unwrap();
    let gone = w
        .custodian
        .create_secret(&w.admin, &ctx, w.team, s3("gone", "gone-secret-value-2"))
        .await
        .unwrap();
    w.store.fail(Some(Op::DeleteAll));
    w.custodian
        .delete_secret(&w.admin, &ctx, w.team, gone.id)
        .await
        .unwrap();
    assert_eq!(
        w.parameters().await.len(),
        2,
        "the deleted secret's credentials wait for gc"
    );
    w.every_row_resolves().await;
    w.after_gc_ssm_holds_only_what_rows_point_at().await;
    assert!(w.parameters().await.iter().all(|n| n.contains(&kept.id.to_string())));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_a_failed_rotation_left_behind_is_stepped_over_and_pruned() {
    let Some(w) = world("consistency::a_version_a_failed_rotation_left_behind_is_stepped_over_and_pruned").await else {
        return;
    };
    let ctx = World::ctx();
    w.custodian
        .create_secret(&w.admin, &ctx, w.team, s3("taken", "other-secret-value-0"))
        .await
        .unwrap();
    let secret = w
        .custodian
        .create_secret(&w.admin, &ctx, w.team, s3("backups", "first-secret-value-1"))
        .await
        .unwrap();
    // The rotation's commit is refused (the new name is taken), and removing its version 2
    // fails too: version 2 stays in SSM with no row pointing at it.
    w.store.fail(Some(Op::DeleteVersion));
    let refused = w
        .custodian
        .update_secret(
            &w.admin,
            &ctx,
            w.team,
            secret.id,
            UpdateSecretInput {
                name: Some("taken".into()),
                ..rotation("refused-secret-value-2")
            },
        )
        .await;
    assert!(matches!(refused, Err(CoreError::Conflict(_))), "{refused:?}");
    assert_eq!(w.parameters().await.len(), 3);
    w.every_row_resolves().await;
    // The next rotation is not blocked by it: it writes version 3 and prunes both below.
    w.store.fail(None);
    let rotated = w
        .custodian
        .update_secret(&w.admin, &ctx, w.team, secret.id, rotation("rotated-secret-value-3"))
        .await
        .unwrap();
    assert_eq!(rotated.credentials_version, 3);
    assert_eq!(w.parameters().await, w.pointed_at().await);
    w.every_row_resolves().await;
    w.after_gc_ssm_holds_only_what_rows_point_at().await;
}
