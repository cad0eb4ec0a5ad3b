//! Moving credentials between stores, over in-memory stores.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use custodian_domain::TeamId;
use custodian_ports::{CleanupTask, ConflictKind, StoreBackend, StoredPage};
use custodian_testkit::memory_cleanup::MemoryCleanupQueue;
use custodian_testkit::memory_store::MemoryCredentialStore;
use secrecy::SecretString;
use uuid::Uuid;

use super::*;
use crate::test_support::{now, store_down};

/// Every value the tests store starts with this, so a message can be checked for values.
const CANARY: &str = "canary-7d1f0c";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap()
}

/// The database's side: the binding, replaced by compare-and-set, and the references the
/// rows point at.
#[derive(Default)]
struct FakeInventory {
    binding: Mutex<Option<StoreBinding>>,
    references: Mutex<Vec<CredentialRef>>,
    /// References that appear while the migration runs (a server still writing): one
    /// batch each time a listing of every kind has ended.
    appearing: Mutex<VecDeque<Vec<CredentialRef>>>,
    /// A binding another run writes just before the first page is listed.
    rival: Mutex<Option<StoreBinding>>,
    /// Every binding `replace_binding` wrote, in order.
    written: Mutex<Vec<StoreBinding>>,
}

#[async_trait]
impl CredentialInventory for FakeInventory {
    async fn binding(&self) -> Result<Option<StoreBinding>, RepoError> {
        Ok(lock(&self.binding).clone())
    }

    async fn replace_binding(&self, expected: Option<&StoreBinding>, next: &StoreBinding) -> Result<(), RepoError> {
        let mut binding = lock(&self.binding);
        if binding.as_ref() != expected {
            return Err(RepoError::Conflict(ConflictKind::Stale));
        }
        *binding = Some(next.clone());
        let mut written = lock(&self.written);
        written.push(next.clone());
        // No run writes more than a few: a loop fails the test instead of hanging it.
        assert!(written.len() <= 8, "the binding keeps changing: {written:?}");
        Ok(())
    }

    async fn references(
        &self,
        kind: CredentialKind,
        after: Option<RefCursor>,
        limit: u32,
    ) -> Result<Vec<CredentialRef>, RepoError> {
        if let Some(rival) = lock(&self.rival).take() {
            *lock(&self.binding) = Some(rival);
        }
        let limit = usize::try_from(limit).unwrap();
        let mut page: Vec<CredentialRef> = lock(&self.references)
            .iter()
            .filter(|r| r.key.kind == kind)
            .filter(|r| after.is_none_or(|c| (r.key.record_id, r.version) > (c.record_id, c.version)))
            .copied()
            .collect();
        page.sort_by_key(|r| (r.key.record_id, r.version));
        page.truncate(limit);
        if CredentialKind::ALL.last() == Some(&kind)
            && page.len() < limit
            && let Some(batch) = lock(&self.appearing).pop_front()
        {
            lock(&self.references).extend(batch);
        }
        Ok(page)
    }

    async fn referenced(&self, candidates: &[CredentialRef]) -> Result<Vec<CredentialRef>, RepoError> {
        let references = lock(&self.references);
        Ok(candidates.iter().filter(|c| references.contains(c)).copied().collect())
    }
}

/// A [`MemoryCredentialStore`] that counts the calls it gets and can be made to fail
/// `put` (after some successful ones) or `delete_all`.
#[derive(Default)]
struct TestStore {
    memory: MemoryCredentialStore,
    /// How many more puts succeed; `None`: all of them.
    puts_left: Mutex<Option<usize>>,
    failing_delete_all: AtomicBool,
    calls: AtomicUsize,
}

impl TestStore {
    fn fail_puts_after(&self, puts: usize) {
        *lock(&self.puts_left) = Some(puts);
    }

    fn fail_delete_all(&self) {
        self.failing_delete_all.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        *lock(&self.puts_left) = None;
        self.failing_delete_all.store(false, Ordering::SeqCst);
    }

    /// Calls through [`CredentialStore`] (the tests' own reads and seeding go around it).
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn len(&self) -> usize {
        self.memory.len()
    }

    fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }

    async fn seed(&self, references: &[CredentialRef]) {
        for r in references {
            self.memory.put(&r.key, r.version, &value_of(r)).await.unwrap();
        }
    }

    /// The value held for `r`, read back with `get`.
    async fn value(&self, r: &CredentialRef) -> Option<String> {
        match self.memory.get(&r.key, r.version).await {
            Ok(value) => Some(value.expose_secret().to_owned()),
            Err(StoreError::NotFound) => None,
            Err(error) => panic!("cannot read {} version {}: {error}", r.key, r.version),
        }
    }

    fn call(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl CredentialStore for TestStore {
    fn backend(&self) -> &'static str {
        self.memory.backend()
    }

    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        self.call();
        {
            let mut left = lock(&self.puts_left);
            match left.as_mut() {
                Some(0) => return Err(store_down()),
                Some(n) => *n -= 1,
                None => {}
            }
        }
        self.memory.put(key, version, value).await
    }

    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        self.call();
        self.memory.get(key, version).await
    }

    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        self.call();
        self.memory.delete_version(key, version).await
    }

    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        self.call();
        self.memory.prune(key, keep).await
    }

    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.call();
        if self.failing_delete_all.load(Ordering::SeqCst) {
            return Err(store_down());
        }
        self.memory.delete_all(key).await
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        self.call();
        self.memory.list_stored(page, limit).await
    }
}

/// Opens the test's stores by id; any other id cannot be reached.
struct FakeOpener {
    stores: HashMap<StoreId, Arc<TestStore>>,
    opened: AtomicUsize,
}

#[async_trait]
impl StoreOpener for FakeOpener {
    async fn open(&self, id: &StoreId) -> Result<Arc<dyn CredentialStore>, StoreOpenError> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        self.stores
            .get(id)
            .map(|store| Arc::clone(store) as Arc<dyn CredentialStore>)
            .ok_or_else(|| StoreOpenError::Elsewhere(format!("this configuration does not reach {id}")))
    }
}

fn store_a() -> StoreId {
    StoreId::new(StoreBackend::Local, "acme")
}

fn store_b() -> StoreId {
    StoreId::new(StoreBackend::AwsSsm, "eu-west-1:/custodian/acme")
}

/// Same backend as B, another location.
fn store_c() -> StoreId {
    StoreId::new(StoreBackend::AwsSsm, "us-east-1:/custodian/acme")
}

fn copying(from: StoreId, to: StoreId) -> StoreBinding {
    StoreBinding {
        store: from,
        phase: MigrationPhase::Copying { to },
    }
}

fn retiring(store: StoreId, from: StoreId) -> StoreBinding {
    StoreBinding {
        store,
        phase: MigrationPhase::Retiring { from },
    }
}

fn value_of(r: &CredentialRef) -> SecretString {
    SecretString::from(format!("{CANARY}-{}-{}", r.key.record_id.as_u128(), r.version))
}

fn reference(team: u128, kind: CredentialKind, record: u128, version: i64) -> CredentialRef {
    CredentialRef {
        key: CredentialKey {
            team_id: TeamId::from_uuid(Uuid::from_u128(team)),
            kind,
            record_id: Uuid::from_u128(record),
        },
        version,
    }
}

/// `storage` storage secrets and `vaults` vault connections at various versions in use,
/// and `groups` group keys with versions `1..=versions` each, spread over two teams.
/// Record ids do not follow the order of creation.
fn deployment(storage: u128, vaults: u128, groups: u128, versions: i64) -> Vec<CredentialRef> {
    let mut references = Vec::new();
    let mut add = |kind, base: u128, i: u128, version: i64| {
        references.push(reference(1 + i % 2, kind, base + (i * 7_919) % 100_000, version));
    };
    for i in 0..storage {
        let version = 1 + i64::try_from(i % 3).unwrap();
        add(CredentialKind::StorageSecret, 1 << 20, i, version);
    }
    for i in 0..vaults {
        let version = 2 + i64::try_from(i % 2).unwrap();
        add(CredentialKind::VaultConnection, 2 << 20, i, version);
    }
    for i in 0..groups {
        for version in 1..=versions {
            add(CredentialKind::GroupSecret, 3 << 20, i, version);
        }
    }
    references
}

/// The order the migration copies `references` in: by kind, then record id, then version.
fn copy_order(references: &[CredentialRef]) -> Vec<CredentialRef> {
    let mut ordered = references.to_vec();
    ordered.sort_by_key(|r| {
        let kind = CredentialKind::ALL.iter().position(|k| *k == r.key.kind);
        (kind, r.key.record_id, r.version)
    });
    ordered
}

fn distinct_keys(references: &[CredentialRef]) -> u64 {
    let keys: HashSet<CredentialKey> = references.iter().map(|r| r.key).collect();
    keys.len() as u64
}

/// `store` holds exactly the value of each of `references` that A was seeded with.
async fn assert_holds(name: &str, store: &TestStore, references: &[CredentialRef]) {
    for r in references {
        let held = store.value(r).await;
        assert!(held.is_some(), "{name} lacks {} version {}", r.key, r.version);
        assert!(
            held.as_deref() == Some(value_of(r).expose_secret()),
            "{name} holds another value for {} version {}",
            r.key,
            r.version
        );
    }
}

/// `store` holds none of `references`.
async fn assert_holds_none(name: &str, store: &TestStore, references: &[CredentialRef]) {
    for r in references {
        assert!(
            store.value(r).await.is_none(),
            "{name} still holds {} version {}",
            r.key,
            r.version
        );
    }
}

/// Stores A, B and C, the inventory, the clean-up queue and the opener of one test.
struct World {
    a: Arc<TestStore>,
    b: Arc<TestStore>,
    c: Arc<TestStore>,
    inventory: Arc<FakeInventory>,
    cleanup: Arc<MemoryCleanupQueue>,
    opener: Arc<FakeOpener>,
    references: Vec<CredentialRef>,
}

impl World {
    /// The rows point at `references`, whose values A holds; the binding is `binding`.
    async fn new(binding: Option<StoreBinding>, references: Vec<CredentialRef>) -> Self {
        let (a, b, c) = (
            Arc::new(TestStore::default()),
            Arc::new(TestStore::default()),
            Arc::new(TestStore::default()),
        );
        a.seed(&references).await;
        let opener = FakeOpener {
            stores: HashMap::from([(store_a(), a.clone()), (store_b(), b.clone()), (store_c(), c.clone())]),
            opened: AtomicUsize::new(0),
        };
        let inventory = FakeInventory {
            binding: Mutex::new(binding),
            references: Mutex::new(references.clone()),
            ..FakeInventory::default()
        };
        Self {
            a,
            b,
            c,
            inventory: Arc::new(inventory),
            cleanup: Arc::new(MemoryCleanupQueue::default()),
            opener: Arc::new(opener),
            references,
        }
    }

    /// A deployment settled on A, with records of every kind in two teams.
    async fn settled_on_a() -> Self {
        Self::new(Some(StoreBinding::settled(store_a())), deployment(4, 2, 3, 3)).await
    }

    fn migration(&self) -> StoreMigration {
        StoreMigration::new(self.inventory.clone(), self.cleanup.clone(), self.opener.clone())
    }

    async fn run(&self, target: &StoreId) -> Result<MigrationReport, MigrationError> {
        self.migration().run(target).await
    }

    fn binding(&self) -> Option<StoreBinding> {
        lock(&self.inventory.binding).clone()
    }

    fn written(&self) -> Vec<StoreBinding> {
        lock(&self.inventory.written).clone()
    }

    fn n(&self) -> u64 {
        self.references.len() as u64
    }

    /// The state of a finished migration from A to B: B holds every value, A none,
    /// the binding is settled on B.
    async fn assert_moved_to_b(&self) {
        assert_holds("B", &self.b, &self.references).await;
        assert_eq!(self.b.len(), self.references.len(), "B holds only the references");
        assert!(self.a.is_empty(), "A still holds {} values", self.a.len());
        assert_eq!(self.binding(), Some(StoreBinding::settled(store_b())));
    }
}

#[tokio::test]
async fn every_reference_is_moved_page_by_page_and_the_old_store_emptied() {
    // More than a page of storage secrets, and group keys whose page boundary falls
    // between two versions of one key (500 = 166 × 3 + 2).
    let world = World::new(Some(StoreBinding::settled(store_a())), deployment(520, 30, 200, 3)).await;
    // An older version a rotation left behind: not a reference, not copied, but retired.
    let stale = CredentialRef {
        version: 1,
        ..copy_order(&world.references)
            .into_iter()
            .find(|r| r.key.kind == CredentialKind::StorageSecret && r.version == 3)
            .unwrap()
    };
    world.a.seed(&[stale]).await;

    let report = world.run(&store_b()).await.unwrap();

    assert_eq!(
        report,
        MigrationReport {
            store: Some(store_b()),
            copied: 1_150,
            retired: 750,
            retired_store: Some(store_a()),
            ..MigrationReport::default()
        }
    );
    assert_eq!(world.n(), 1_150);
    assert_eq!(distinct_keys(&world.references), 750);
    world.assert_moved_to_b().await;
    assert!(world.b.value(&stale).await.is_none(), "an unused version was copied");
    assert_eq!(
        world.written(),
        vec![
            copying(store_a(), store_b()),
            retiring(store_b(), store_a()),
            StoreBinding::settled(store_b()),
        ]
    );
    assert_eq!(world.c.calls(), 0);
}

#[tokio::test]
async fn an_interrupted_copy_names_the_record_without_its_value_and_a_second_run_finishes_it() {
    let world = World::settled_on_a().await;
    let order = copy_order(&world.references);
    let k = 6;
    world.b.fail_puts_after(k);

    let error = world.run(&store_b()).await.unwrap_err();

    let MigrationError::Write {
        store,
        key,
        version,
        error: cause,
    } = &error
    else {
        panic!("expected a write error, got {error}");
    };
    assert_eq!((store, key, *version), (&store_b(), &order[k].key, order[k].version));
    assert_eq!(*cause, store_down());
    let (display, debug) = (error.to_string(), format!("{error:?}"));
    assert!(display.contains(&order[k].key.to_string()), "{display}");
    assert!(
        !display.contains(CANARY) && !debug.contains(CANARY),
        "a value leaked into the error"
    );
    assert_eq!(world.binding(), Some(copying(store_a(), store_b())));
    assert_holds("A", &world.a, &world.references).await;
    assert_eq!(world.a.len(), world.references.len());
    assert_holds("B", &world.b, &order[..k]).await;
    assert_eq!(world.b.len(), k);

    world.b.heal();
    let report = world.run(&store_b()).await.unwrap();

    assert_eq!(
        report,
        MigrationReport {
            store: Some(store_b()),
            copied: world.n() - k as u64,
            present: k as u64,
            retired: distinct_keys(&world.references),
            retired_store: Some(store_a()),
            ..MigrationReport::default()
        }
    );
    world.assert_moved_to_b().await;
}

#[tokio::test]
async fn a_different_value_left_in_the_target_under_a_records_name_is_replaced() {
    let world = World::settled_on_a().await;
    let clash = copy_order(&world.references)
        .into_iter()
        .find(|r| r.key.kind == CredentialKind::GroupSecret && r.version == 2)
        .unwrap();
    world
        .b
        .memory
        .put(
            &clash.key,
            clash.version,
            &SecretString::from("left over by something else"),
        )
        .await
        .unwrap();

    let report = world.run(&store_b()).await.unwrap();

    assert_eq!((report.replaced, report.copied, report.present), (1, world.n() - 1, 0));
    world.assert_moved_to_b().await;
}

#[tokio::test]
async fn a_value_the_old_store_lacks_stops_the_switch_unless_missing_values_are_allowed() {
    let world = World::settled_on_a().await;
    let lost = copy_order(&world.references)[3];
    world.a.memory.delete_version(&lost.key, lost.version).await.unwrap();
    let others: Vec<CredentialRef> = world.references.iter().copied().filter(|r| *r != lost).collect();

    let error = world.run(&store_b()).await.unwrap_err();

    let MigrationError::Missing { store, missing } = &error else {
        panic!("expected missing values, got {error}");
    };
    assert_eq!((store, missing), (&store_a(), &vec![lost]));
    assert!(error.to_string().contains(&lost.key.to_string()), "{error}");
    assert_eq!(world.binding(), Some(copying(store_a(), store_b())));
    assert_holds("A", &world.a, &others).await;
    assert_eq!(world.a.len(), others.len(), "something was retired");

    let mut migration = world.migration();
    migration.allow_missing = true;
    let report = migration.run(&store_b()).await.unwrap();

    assert_eq!(report.missing, vec![lost]);
    assert_eq!((report.copied, report.present), (0, world.n() - 1));
    assert_eq!(report.store, Some(store_b()));
    assert_holds("B", &world.b, &others).await;
    assert!(world.b.value(&lost).await.is_none());
    assert!(world.a.is_empty());
    assert_eq!(world.binding(), Some(StoreBinding::settled(store_b())));
}

#[tokio::test]
async fn migrating_back_to_the_bound_store_gives_the_copy_up_and_removes_the_copies() {
    let world = World::settled_on_a().await;
    world.b.fail_puts_after(5);
    world.run(&store_b()).await.unwrap_err();
    assert_eq!(world.b.len(), 5);
    assert_eq!(world.binding(), Some(copying(store_a(), store_b())));
    world.b.heal();

    let report = world.run(&store_a()).await.unwrap();

    assert_eq!(
        report,
        MigrationReport {
            store: Some(store_a()),
            retired: distinct_keys(&world.references),
            retired_store: Some(store_b()),
            abandoned: Some(store_b()),
            ..MigrationReport::default()
        }
    );
    assert_holds_none("B", &world.b, &world.references).await;
    assert!(world.b.is_empty());
    assert_holds("A", &world.a, &world.references).await;
    assert_eq!(world.binding(), Some(StoreBinding::settled(store_a())));
    assert_eq!(
        world.written()[1..],
        [retiring(store_a(), store_b()), StoreBinding::settled(store_a())]
    );
}

#[tokio::test]
async fn a_migration_to_a_third_store_is_refused_while_another_is_under_way() {
    let world = World::settled_on_a().await;
    *lock(&world.inventory.binding) = Some(copying(store_a(), store_b()));

    let error = world.run(&store_c()).await.unwrap_err();

    assert!(
        matches!(&error, MigrationError::OtherMigration { from, to } if *from == store_a() && *to == store_b()),
        "{error}"
    );
    assert_eq!(world.binding(), Some(copying(store_a(), store_b())));
    assert!(world.written().is_empty());
    assert_eq!((world.a.calls(), world.b.calls(), world.c.calls()), (0, 0, 0));
    assert_eq!(world.opener.opened.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_binding_that_would_copy_onto_or_retire_the_store_in_use_is_refused_untouched() {
    for broken in [copying(store_a(), store_a()), retiring(store_a(), store_a())] {
        let world = World::settled_on_a().await;
        *lock(&world.inventory.binding) = Some(broken.clone());

        for target in [store_a(), store_b()] {
            let error = world.run(&target).await.unwrap_err();
            assert!(
                matches!(&error, MigrationError::Inconsistent(store) if *store == store_a()),
                "{error}"
            );
        }
        assert_eq!(world.binding(), Some(broken));
        assert!(world.written().is_empty());
        assert_eq!((world.a.calls(), world.b.calls()), (0, 0));
        assert_holds("A", &world.a, &world.references).await;
    }
}

#[tokio::test]
async fn a_failed_retire_leaves_the_switch_done_and_a_second_run_empties_the_old_store() {
    let world = World::settled_on_a().await;
    world.a.fail_delete_all();

    let error = world.run(&store_b()).await.unwrap_err();

    assert!(
        matches!(&error, MigrationError::Remove { store, error: cause, .. } if *store == store_a() && *cause == store_down()),
        "{error}"
    );
    assert_eq!(world.binding(), Some(retiring(store_b(), store_a())));
    assert_holds("B", &world.b, &world.references).await;

    world.a.heal();
    let report = world.run(&store_b()).await.unwrap();

    assert_eq!(
        report,
        MigrationReport {
            store: Some(store_b()),
            retired: distinct_keys(&world.references),
            retired_store: Some(store_a()),
            ..MigrationReport::default()
        }
    );
    world.assert_moved_to_b().await;
}

#[tokio::test]
async fn retiring_removes_what_only_the_cleanup_queue_names() {
    let world = World::settled_on_a().await;
    // A deleted record whose values could not be removed: no row names it any more.
    let leftover = reference(1, CredentialKind::StorageSecret, 0xdead, 4);
    world
        .a
        .seed(&[leftover, CredentialRef { version: 3, ..leftover }])
        .await;
    world
        .cleanup
        .record(&leftover.key, CleanupTask::DeleteAll, now())
        .await
        .unwrap();

    let report = world.run(&store_b()).await.unwrap();

    assert_eq!(report.retired, distinct_keys(&world.references) + 1);
    assert_eq!(report.copied, world.n());
    assert!(
        world.b.value(&leftover).await.is_none(),
        "a deleted record's value was copied"
    );
    world.assert_moved_to_b().await;
}

#[tokio::test]
async fn references_written_while_copying_are_copied_before_the_switch() {
    let world = World::settled_on_a().await;
    let late = reference(2, CredentialKind::StorageSecret, 7, 1);
    world.a.seed(&[late]).await;
    lock(&world.inventory.appearing).push_back(vec![late]);

    let report = world.run(&store_b()).await.unwrap();

    assert_eq!(report.copied, world.n() + 1);
    let mut all = world.references.clone();
    all.push(late);
    assert_holds("B", &world.b, &all).await;
    assert!(world.a.is_empty());
    assert_eq!(world.binding(), Some(StoreBinding::settled(store_b())));
}

#[tokio::test]
async fn references_that_keep_appearing_stop_the_migration_before_the_switch() {
    let world = World::settled_on_a().await;
    let late: Vec<CredentialRef> = (0..10)
        .map(|i| reference(1, CredentialKind::VaultConnection, 900 + i, 1))
        .collect();
    world.a.seed(&late).await;
    lock(&world.inventory.appearing).extend(late.iter().map(|r| vec![*r]));

    let error = world.run(&store_b()).await.unwrap_err();

    assert!(
        matches!(&error, MigrationError::StillWritten(store) if *store == store_a()),
        "{error}"
    );
    assert_eq!(world.binding(), Some(copying(store_a(), store_b())));
    assert_holds("A", &world.a, &world.references).await;
}

#[tokio::test]
async fn a_run_to_the_store_already_in_use_touches_nothing() {
    let world = World::new(Some(StoreBinding::settled(store_b())), deployment(4, 2, 3, 3)).await;

    let report = world.run(&store_b()).await.unwrap();

    assert_eq!(
        report,
        MigrationReport {
            store: Some(store_b()),
            ..MigrationReport::default()
        }
    );
    assert_eq!((world.a.calls(), world.b.calls(), world.c.calls()), (0, 0, 0));
    assert_eq!(world.opener.opened.load(Ordering::SeqCst), 0);
    assert!(world.written().is_empty());
    assert_eq!(world.binding(), Some(StoreBinding::settled(store_b())));
}

#[tokio::test]
async fn a_database_without_a_binding_is_refused() {
    let world = World::new(None, deployment(1, 1, 1, 2)).await;

    let error = world.run(&store_b()).await.unwrap_err();

    assert!(matches!(error, MigrationError::Unbound), "{error}");
    assert_eq!(world.binding(), None);
    assert!(world.written().is_empty());
    assert_eq!((world.a.calls(), world.b.calls()), (0, 0));
}

#[tokio::test]
async fn a_binding_changed_by_another_run_meanwhile_is_not_overwritten() {
    let world = World::settled_on_a().await;
    // Another run gives the copy up while this one copies.
    let theirs = retiring(store_a(), store_b());
    *lock(&world.inventory.rival) = Some(theirs.clone());

    let error = world.run(&store_b()).await.unwrap_err();

    assert!(matches!(error, MigrationError::Raced), "{error}");
    assert_eq!(world.binding(), Some(theirs));
    assert_holds("A", &world.a, &world.references).await;
}

#[tokio::test]
async fn a_target_the_configuration_cannot_reach_stops_the_run_before_anything_is_copied() {
    let world = World::settled_on_a().await;
    let unknown = StoreId::new(StoreBackend::AwsSsm, "ap-south-1:/elsewhere");

    let error = world.run(&unknown).await.unwrap_err();

    assert!(
        matches!(&error, MigrationError::Open { store, reason } if *store == unknown && reason.to_string().contains("ap-south-1")),
        "{error}"
    );
    // Nothing was recorded: servers still start on A.
    assert_eq!(world.binding(), Some(StoreBinding::settled(store_a())));
    assert_eq!((world.a.calls(), world.b.calls(), world.c.calls()), (0, 0, 0));
    assert_holds("A", &world.a, &world.references).await;
}
