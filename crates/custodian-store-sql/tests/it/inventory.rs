//! The credential inventory on SQLite and PostgreSQL: the credential-store binding moves
//! only from the binding a caller read, and the references list every stored credential
//! a row points at, page by page.

use custodian_domain::{
    AuditAction, AuditEvent, AuthMethod, CredentialField, FieldMapping, FieldMappings, GroupChanges, GroupName,
    GroupSecret, GroupSecretId, GroupSecretVersion, GroupSecretVersionId, NewGroupKey, ResourceType, SecretGroup,
    SecretGroupId, SecretId, SecretKey, SecretStorage, SecretType, StorageSecret, SubjectId, TeamId, VaultConnection,
    VaultConnectionId, VaultReference, VaultSettings, VaultType,
};
use custodian_ports::{
    ConflictKind, CredentialInventory, CredentialKey, CredentialKind, CredentialRef, MigrationPhase, RefCursor,
    RepoError, SecretGroupRepository, StoreBackend, StoreBinding, StoreId,
};
use custodian_store_sql::{Database, SqlCredentialInventory, SqlSecretGroupRepository, test_support};
use custodian_testkit::RepoSet;
use custodian_testkit::contract::fixtures::{at, audit, name, user_and_team};
use uuid::Uuid;

use crate::support::{postgres_skipped, repo_set};

const STALE: RepoError = RepoError::Conflict(ConflictKind::Stale);

/// A page larger than every list of these tests.
const BIG: u32 = 1000;

// ---------------------------------------------------------------------------------------
// The binding
// ---------------------------------------------------------------------------------------

fn local() -> StoreId {
    StoreId::new(StoreBackend::Local, "acme")
}

fn ssm() -> StoreId {
    StoreId::new(StoreBackend::AwsSsm, "/custodian/acme")
}

fn binding(store: StoreId, phase: MigrationPhase) -> StoreBinding {
    StoreBinding { store, phase }
}

async fn recorded(inventory: &SqlCredentialInventory) -> Option<StoreBinding> {
    inventory.binding().await.expect("read the binding")
}

/// `replace_binding(expected, …)` is refused as stale and leaves `current` recorded.
async fn assert_stale(inventory: &SqlCredentialInventory, expected: Option<&StoreBinding>, current: &StoreBinding) {
    let attempt = StoreBinding::settled(StoreId::new(StoreBackend::Local, "intruder"));
    assert_eq!(
        inventory.replace_binding(expected, &attempt).await,
        Err(STALE),
        "replacing from {expected:?} while {current:?} is recorded"
    );
    assert_eq!(
        recorded(inventory).await.as_ref(),
        Some(current),
        "a stale replace writes nothing"
    );
}

/// A fresh database has no binding; the first one is recorded only from `None`, and each
/// move of a migration (settled → copying → retiring → settled elsewhere) only from the
/// binding recorded just before it. Any other `expected`, even one that differs in a single
/// column, is `Conflict(Stale)` and writes nothing.
async fn the_binding_moves_only_from_the_binding_read(db: Database) {
    let inventory = SqlCredentialInventory::new(db);
    assert_eq!(recorded(&inventory).await, None);

    let settled = StoreBinding::settled(local());
    assert_eq!(
        inventory.replace_binding(Some(&settled), &settled).await,
        Err(STALE),
        "a binding expected where none is recorded"
    );
    assert_eq!(recorded(&inventory).await, None, "a stale replace records nothing");

    inventory
        .replace_binding(None, &settled)
        .await
        .expect("the first binding is recorded");
    assert_eq!(recorded(&inventory).await, Some(settled.clone()));
    // A second server claiming the database as fresh.
    assert_stale(&inventory, None, &settled).await;

    let copying = binding(local(), MigrationPhase::Copying { to: ssm() });
    let retiring = binding(ssm(), MigrationPhase::Retiring { from: local() });
    let moved = StoreBinding::settled(ssm());
    let mut current = settled;
    for next in [copying, retiring, moved] {
        inventory
            .replace_binding(Some(&current), &next)
            .await
            .unwrap_or_else(|e| panic!("move from {current:?} to {next:?}: {e:?}"));
        assert_eq!(recorded(&inventory).await, Some(next.clone()));
        // The binding before the move is stale now.
        assert_stale(&inventory, Some(&current), &next).await;
        current = next;
    }

    // Every column of the binding is compared: each of these differs from the recorded
    // one in a single column.
    let copying = binding(local(), MigrationPhase::Copying { to: ssm() });
    inventory
        .replace_binding(Some(&current), &copying)
        .await
        .expect("a new migration starts from the settled binding");
    let near_misses = [
        binding(
            StoreId::new(StoreBackend::AwsSsm, "acme"),
            MigrationPhase::Copying { to: ssm() },
        ),
        binding(
            StoreId::new(StoreBackend::Local, "other"),
            MigrationPhase::Copying { to: ssm() },
        ),
        binding(
            local(),
            MigrationPhase::Copying {
                to: StoreId::new(StoreBackend::Local, "/custodian/acme"),
            },
        ),
        binding(
            local(),
            MigrationPhase::Copying {
                to: StoreId::new(StoreBackend::AwsSsm, "/custodian/other"),
            },
        ),
        binding(local(), MigrationPhase::Retiring { from: ssm() }),
        StoreBinding::settled(local()),
    ];
    for expected in &near_misses {
        assert_stale(&inventory, Some(expected), &copying).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_binding_moves_only_from_the_binding_read() {
    the_binding_moves_only_from_the_binding_read(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_the_binding_moves_only_from_the_binding_read() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): the binding moves only from the binding read");
        return;
    }
    the_binding_moves_only_from_the_binding_read(test_support::postgres().await.expect("PostgreSQL tests run")).await;
}

const RACERS: usize = 8;

/// `RACERS` concurrent replaces from `expected`, each to its own binding (new in `round`):
/// exactly one is recorded, every other is `Conflict(Stale)`. Returns the recorded one.
async fn race(inventory: &SqlCredentialInventory, round: usize, expected: Option<&StoreBinding>) -> StoreBinding {
    let attempts = (0..RACERS).map(|i| {
        let inventory = inventory.clone();
        let expected = expected.cloned();
        let next = StoreBinding::settled(StoreId::new(StoreBackend::AwsSsm, format!("/round-{round}/racer-{i}")));
        tokio::spawn(async move {
            let outcome = inventory.replace_binding(expected.as_ref(), &next).await;
            (next, outcome)
        })
    });
    let mut winners = Vec::new();
    for attempt in futures::future::join_all(attempts).await {
        match attempt.expect("the replace task") {
            (next, Ok(())) => winners.push(next),
            (_, Err(e)) => assert_eq!(e, STALE, "a concurrent replace that lost"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one concurrent replace from {expected:?} wins"
    );
    let winner = winners.remove(0);
    assert_eq!(
        recorded(inventory).await,
        Some(winner.clone()),
        "the winner is recorded"
    );
    winner
}

/// Servers claiming a fresh database at once, then migrations started at once from the
/// same binding: each time one wins and the others are told the binding is stale.
async fn concurrent_replaces_from_one_binding_let_one_through(db: Database) {
    let inventory = SqlCredentialInventory::new(db);
    let mut current = race(&inventory, 0, None).await;
    for round in 1..=3 {
        current = race(&inventory, round, Some(&current)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_concurrent_replaces_from_one_binding_let_one_through() {
    concurrent_replaces_from_one_binding_let_one_through(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_concurrent_replaces_from_one_binding_let_one_through() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): concurrent replaces of the binding");
        return;
    }
    concurrent_replaces_from_one_binding_let_one_through(test_support::postgres().await.expect("PostgreSQL tests run"))
        .await;
}

// ---------------------------------------------------------------------------------------
// The references
// ---------------------------------------------------------------------------------------

/// A random (v4) id: records are listed by id, so ids in creation order would hide a wrong
/// order.
fn random<T: From<Uuid>>() -> T {
    T::from(Uuid::new_v4())
}

/// A team and its owner, created through the repositories.
#[derive(Debug, Clone, Copy)]
struct Team {
    id: TeamId,
    actor: SubjectId,
}

async fn team(repos: &RepoSet) -> Team {
    let owned = user_and_team(repos).await;
    Team {
        id: owned.team_id(),
        actor: owned.actor(),
    }
}

fn event(team: Team, action: AuditAction, resource_type: ResourceType, resource: Uuid) -> AuditEvent {
    audit(Some(team.id), action, resource_type, resource, team.actor)
}

fn reference(team: Team, kind: CredentialKind, record_id: Uuid, version: i64) -> CredentialRef {
    CredentialRef {
        key: CredentialKey {
            team_id: team.id,
            kind,
            record_id,
        },
        version,
    }
}

fn managed_secret(team: Team, secret_name: &str) -> StorageSecret {
    StorageSecret {
        id: random(),
        team_id: team.id,
        name: name(secret_name),
        description: None,
        secret_type: SecretType::S3,
        auth_method: AuthMethod::S3AccessKey,
        storage: SecretStorage::Managed,
        credentials_version: 1,
        credentials_updated_at: at(2),
        created_at: at(2),
        created_by: team.actor,
        updated_at: at(2),
        updated_by: team.actor,
    }
}

async fn stored_secret(repos: &RepoSet, secret: StorageSecret, team: Team) -> StorageSecret {
    let created = event(
        team,
        AuditAction::Create,
        ResourceType::StorageSecret,
        secret.id.as_uuid(),
    );
    repos
        .secrets
        .create(&secret, None, &created)
        .await
        .expect("secret created");
    secret
}

/// A managed secret of `team`, stored, its credentials rotated until `version`.
async fn managed(repos: &RepoSet, team: Team, secret_name: &str, version: i64) -> StorageSecret {
    let mut secret = stored_secret(repos, managed_secret(team, secret_name), team).await;
    while secret.credentials_version < version {
        let expected = secret.credentials_version;
        secret.credentials_version += 1;
        secret.credentials_updated_at = at(3 + expected);
        let rotated = event(
            team,
            AuditAction::Rotate,
            ResourceType::StorageSecret,
            secret.id.as_uuid(),
        );
        repos
            .secrets
            .update(&secret, expected, &rotated)
            .await
            .expect("credentials rotated");
    }
    assert_eq!(
        repos
            .secrets
            .get(team.id, secret.id)
            .await
            .map(|s| s.credentials_version),
        Ok(version)
    );
    secret
}

/// An external secret of `team` that reads its keys through `connection`: it has no stored
/// credentials.
async fn external(repos: &RepoSet, team: Team, secret_name: &str, connection: VaultConnectionId) -> StorageSecret {
    let reference = |r: &str| VaultReference::parse(VaultType::Doppler, r).expect("a valid Doppler name");
    let secret = StorageSecret {
        storage: SecretStorage::External {
            vault_connection_id: connection,
            field_mappings: FieldMappings::from_stored(vec![
                FieldMapping {
                    field: CredentialField::AccessKeyId,
                    reference: reference("ACCESS_KEY_ID"),
                },
                FieldMapping {
                    field: CredentialField::SecretAccessKey,
                    reference: reference("SECRET_ACCESS_KEY"),
                },
            ]),
        },
        // A version that a managed secret would have its credentials under.
        credentials_version: 2,
        ..managed_secret(team, secret_name)
    };
    stored_secret(repos, secret, team).await
}

/// A Doppler connection of `team`, stored with its token at `version`.
async fn connection(repos: &RepoSet, team: Team, connection_name: &str, version: i64) -> VaultConnection {
    let connection = VaultConnection {
        id: random(),
        team_id: team.id,
        name: name(connection_name),
        description: None,
        settings: VaultSettings::Doppler {
            project: "storage".into(),
            config: "prd".into(),
        },
        secret_version: version,
        last_verified_at: None,
        created_at: at(3),
        created_by: team.actor,
        updated_at: at(3),
        updated_by: team.actor,
    };
    let created = event(
        team,
        AuditAction::Create,
        ResourceType::VaultConnection,
        connection.id.as_uuid(),
    );
    repos
        .vault_connections
        .create(&connection, None, &created)
        .await
        .expect("vault connection created");
    connection
}

/// A stored secret group of `team` with its keys, each at its latest version.
struct Group {
    team: Team,
    group: SecretGroup,
    keys: Vec<GroupSecret>,
}

fn key_version(secret: GroupSecretId, version: i64) -> GroupSecretVersion {
    GroupSecretVersion {
        id: random::<GroupSecretVersionId>(),
        secret_id: secret,
        version,
        created_at: at(4 + version),
    }
}

/// A group of `team` named `group_name` whose key `keys[i].0` has versions `1..=keys[i].1`,
/// created at version 1 and given each further version by an update.
async fn group(groups: &SqlSecretGroupRepository, team: Team, group_name: &str, keys: &[(&str, i64)]) -> Group {
    let group = SecretGroup {
        id: random::<SecretGroupId>(),
        team_id: team.id,
        name: GroupName::parse_at("name", group_name).expect("a valid group name"),
        integration_id: "local".to_owned(),
        created_at: at(2),
        created_by: team.actor,
        updated_at: at(2),
        updated_by: team.actor,
    };
    let new_keys: Vec<NewGroupKey> = keys
        .iter()
        .map(|(key, _)| {
            let secret = GroupSecret {
                id: random(),
                group_id: group.id,
                key: SecretKey::parse_at("key", key).expect("a valid key"),
                version: 1,
                created_at: at(2),
                created_by: team.actor,
                updated_at: at(2),
                updated_by: team.actor,
            };
            let first_version = key_version(secret.id, 1);
            NewGroupKey { secret, first_version }
        })
        .collect();
    let created = event(team, AuditAction::Create, ResourceType::SecretGroup, group.id.as_uuid());
    groups.create(&group, &new_keys, &created).await.expect("group created");
    let mut stored: Vec<GroupSecret> = new_keys.into_iter().map(|k| k.secret).collect();

    let latest = keys.iter().map(|(_, v)| *v).max().unwrap_or(1);
    for version in 2..=latest {
        let bumped: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].1 >= version).collect();
        let changes = GroupChanges {
            team_id: team.id,
            group_id: group.id,
            expected: stored.iter().map(|k| (k.id, k.version)).collect(),
            added: vec![],
            new_versions: bumped.iter().map(|&i| key_version(stored[i].id, version)).collect(),
            deleted: vec![],
            updated_at: at(4 + version),
            updated_by: team.actor,
        };
        let updated = event(team, AuditAction::Update, ResourceType::SecretGroup, group.id.as_uuid());
        groups
            .apply(&changes, &updated)
            .await
            .expect("new versions of the group's keys");
        for i in bumped {
            stored[i].version = version;
        }
    }
    Group {
        team,
        group,
        keys: stored,
    }
}

impl Group {
    /// Every version of every key, as references.
    fn references(&self) -> Vec<CredentialRef> {
        self.keys
            .iter()
            .flat_map(|k| (1..=k.version).map(|v| reference(self.team, CredentialKind::GroupSecret, k.id.as_uuid(), v)))
            .collect()
    }
}

/// `refs` in the order of the inventory: by record id, then version.
fn ordered(mut refs: Vec<CredentialRef>) -> Vec<CredentialRef> {
    refs.sort_by_key(|r| (r.key.record_id, r.version));
    refs
}

async fn one_page(inventory: &SqlCredentialInventory, kind: CredentialKind) -> Vec<CredentialRef> {
    inventory
        .references(kind, None, BIG)
        .await
        .unwrap_or_else(|e| panic!("references of {kind:?}: {e:?}"))
}

/// Every reference of `kind`, read in pages of `limit`, each page after the last element of
/// the one before, until an empty page. Also returns whether a page boundary fell between
/// two versions of one record.
async fn paged(inventory: &SqlCredentialInventory, kind: CredentialKind, limit: u32) -> (Vec<CredentialRef>, bool) {
    let mut all: Vec<CredentialRef> = Vec::new();
    let mut after = None;
    let mut split = false;
    for _ in 0..=BIG {
        let page = inventory
            .references(kind, after, limit)
            .await
            .unwrap_or_else(|e| panic!("a page of {kind:?} after {after:?}: {e:?}"));
        assert!(
            page.len() <= usize::try_from(limit).expect("a small limit"),
            "a page of {kind:?} holds at most {limit}"
        );
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return (all, split);
        };
        if all
            .last()
            .is_some_and(|previous| previous.key.record_id == first.key.record_id)
        {
            split = true;
        }
        after = Some(RefCursor {
            record_id: last.key.record_id,
            version: last.version,
        });
        all.extend(page);
    }
    panic!("paging {kind:?} by {limit} never reached an empty page");
}

/// The references of each kind, in one page and in pages of 1, 2 and 3, are exactly
/// `expected` (in the inventory's order).
async fn assert_references(inventory: &SqlCredentialInventory, kind: CredentialKind, expected: Vec<CredentialRef>) {
    let expected = ordered(expected);
    assert_eq!(one_page(inventory, kind).await, expected, "the references of {kind:?}");
    for limit in [1, 2, 3] {
        let (all, _) = paged(inventory, kind, limit).await;
        assert_eq!(all, expected, "the references of {kind:?} in pages of {limit}");
    }
}

/// Two teams with managed and external storage secrets, vault connections and secret
/// groups: the references of each kind are exactly the stored credentials the rows point
/// at, across both teams, by record id then version, whether read in one page or page by
/// page (a key's versions split over two pages included). A deleted record's references
/// are gone, and a page after a deleted record's cursor goes on with the next record.
async fn references_list_every_stored_credential_page_by_page(db: Database) {
    let repos = repo_set(&db);
    let groups = SqlSecretGroupRepository::new(db.clone());
    let inventory = SqlCredentialInventory::new(db);
    for kind in CredentialKind::ALL {
        assert!(
            one_page(&inventory, *kind).await.is_empty(),
            "a fresh database references nothing"
        );
    }

    let (a, b) = (team(&repos).await, team(&repos).await);
    let mut secrets = vec![
        (a, managed(&repos, a, "backups", 1).await),
        (a, managed(&repos, a, "rotated", 3).await),
        (a, managed(&repos, a, "archive", 1).await),
        (b, managed(&repos, b, "backups", 2).await),
        (b, managed(&repos, b, "logs", 1).await),
    ];
    let mut connections = vec![
        (a, connection(&repos, a, "doppler", 1).await),
        (a, connection(&repos, a, "rotated", 4).await),
        (b, connection(&repos, b, "doppler", 2).await),
    ];
    let (doppler_a, doppler_b) = (connections[0].1.id, connections[2].1.id);
    external(&repos, a, "through-doppler", doppler_a).await;
    external(&repos, b, "through-doppler", doppler_b).await;
    let mut all_groups = vec![
        group(&groups, a, "payments", &[("API_KEY", 3), ("DB_URL", 1), ("TOKEN", 2)]).await,
        group(&groups, b, "billing", &[("SMTP_PASSWORD", 4), ("WEBHOOK_SECRET", 1)]).await,
        group(&groups, b, "empty", &[]).await,
    ];

    let secret_refs = |secrets: &[(Team, StorageSecret)]| -> Vec<CredentialRef> {
        secrets
            .iter()
            .map(|(t, s)| reference(*t, CredentialKind::StorageSecret, s.id.as_uuid(), s.credentials_version))
            .collect()
    };
    let connection_refs = |connections: &[(Team, VaultConnection)]| -> Vec<CredentialRef> {
        connections
            .iter()
            .map(|(t, c)| reference(*t, CredentialKind::VaultConnection, c.id.as_uuid(), c.secret_version))
            .collect()
    };
    let group_refs = |groups: &[Group]| -> Vec<CredentialRef> { groups.iter().flat_map(Group::references).collect() };

    assert_references(&inventory, CredentialKind::StorageSecret, secret_refs(&secrets)).await;
    assert_references(
        &inventory,
        CredentialKind::VaultConnection,
        connection_refs(&connections),
    )
    .await;
    let group_expected = group_refs(&all_groups);
    assert_eq!(group_expected.len(), 11, "every version of every key");
    assert_references(&inventory, CredentialKind::GroupSecret, group_expected).await;
    // `referenced` picks exactly the referenced ones out of candidates mixed with versions
    // no row points at: superseded, not yet committed, of unknown records.
    let referenced_now: Vec<CredentialRef> = secret_refs(&secrets)
        .into_iter()
        .chain(connection_refs(&connections))
        .chain(group_refs(&all_groups))
        .collect();
    let mut candidates = referenced_now.clone();
    for r in &referenced_now {
        candidates.push(CredentialRef {
            version: r.version + 1,
            ..*r
        });
        candidates.push(CredentialRef {
            version: r.version - 1,
            ..*r
        });
    }
    for kind in CredentialKind::ALL {
        candidates.push(reference(a, *kind, Uuid::now_v7(), 1));
    }
    let mut found = inventory.referenced(&candidates).await.expect("referenced");
    found.sort();
    let mut expected = referenced_now.clone();
    expected.sort();
    assert_eq!(found, expected, "exactly the candidates rows point at");

    // In pages of 2, some key's three or four versions always straddle a page boundary.
    let (_, split) = paged(&inventory, CredentialKind::GroupSecret, 2).await;
    assert!(split, "a key's versions were split over two pages");

    // A page after the cursor of a record deleted since goes on with the next record.
    let by_id = ordered(secret_refs(&secrets));
    let (gone, next) = (by_id[1], by_id[2]);
    let owner = if gone.key.team_id == a.id { a } else { b };
    let gone_id = SecretId::from_uuid(gone.key.record_id);
    let deleted = event(
        owner,
        AuditAction::Delete,
        ResourceType::StorageSecret,
        gone.key.record_id,
    );
    repos
        .secrets
        .delete(owner.id, gone_id, &deleted)
        .await
        .expect("secret deleted");
    secrets.retain(|(_, s)| s.id != gone_id);
    let after_gone = RefCursor {
        record_id: gone.key.record_id,
        version: gone.version,
    };
    assert_eq!(
        inventory
            .references(CredentialKind::StorageSecret, Some(after_gone), 1)
            .await,
        Ok(vec![next]),
        "the page after a deleted record"
    );
    assert_references(&inventory, CredentialKind::StorageSecret, secret_refs(&secrets)).await;

    // A connection no secret uses.
    let (team_of_rotated, rotated) = connections.remove(1);
    let deleted = event(
        team_of_rotated,
        AuditAction::Delete,
        ResourceType::VaultConnection,
        rotated.id.as_uuid(),
    );
    repos
        .vault_connections
        .delete(team_of_rotated.id, rotated.id, &deleted)
        .await
        .expect("vault connection deleted");
    assert_references(
        &inventory,
        CredentialKind::VaultConnection,
        connection_refs(&connections),
    )
    .await;

    // One key of a group, then a whole group.
    let payments = &mut all_groups[0];
    let api_key = payments.keys.remove(0);
    let deleted = event(
        payments.team,
        AuditAction::Delete,
        ResourceType::SecretGroup,
        payments.group.id.as_uuid(),
    );
    groups
        .delete_key(payments.team.id, api_key.id, &deleted)
        .await
        .expect("key deleted");
    let billing = all_groups.remove(1);
    let deleted = event(
        billing.team,
        AuditAction::Delete,
        ResourceType::SecretGroup,
        billing.group.id.as_uuid(),
    );
    groups
        .delete(billing.team.id, billing.group.id, &deleted)
        .await
        .expect("group deleted");
    let group_expected = group_refs(&all_groups);
    assert_eq!(group_expected.len(), 3, "DB_URL v1, TOKEN v1 and v2");
    assert_references(&inventory, CredentialKind::GroupSecret, group_expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_references_list_every_stored_credential_page_by_page() {
    references_list_every_stored_credential_page_by_page(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_references_list_every_stored_credential_page_by_page() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): references list every stored credential page by page");
        return;
    }
    references_list_every_stored_credential_page_by_page(test_support::postgres().await.expect("PostgreSQL tests run"))
        .await;
}

// ---------------------------------------------------------------------------------------
// Groups follow the switch
// ---------------------------------------------------------------------------------------

/// The integration each stored group names.
async fn integrations(groups: &SqlSecretGroupRepository) -> Vec<String> {
    let all = groups
        .list(
            &custodian_ports::TeamScope::All,
            &custodian_ports::GroupFilter::default(),
            custodian_ports::Page { limit: BIG, offset: 0 },
        )
        .await
        .expect("list groups");
    all.items.into_iter().map(|g| g.integration_id).collect()
}

/// A group's integration is the store its values are in: the switch of a migration (the
/// binding's store changing backend) moves every group to the new backend in the same
/// write; the phases around it (copying, retiring) change no group.
async fn the_switch_moves_every_group_to_the_new_store(db: Database) {
    let repos = repo_set(&db);
    let groups = SqlSecretGroupRepository::new(db.clone());
    let inventory = SqlCredentialInventory::new(db);
    let a = team(&repos).await;
    group(&groups, a, "payments", &[("TOKEN", 2)]).await;
    group(&groups, a, "reports", &[]).await;

    let settled = StoreBinding::settled(local());
    inventory.replace_binding(None, &settled).await.expect("first binding");
    let copying = binding(local(), MigrationPhase::Copying { to: ssm() });
    inventory
        .replace_binding(Some(&settled), &copying)
        .await
        .expect("copying");
    assert_eq!(
        integrations(&groups).await,
        ["local", "local"],
        "copying moves no group"
    );

    let switched = binding(ssm(), MigrationPhase::Retiring { from: local() });
    inventory
        .replace_binding(Some(&copying), &switched)
        .await
        .expect("switch");
    assert_eq!(integrations(&groups).await, ["aws-ssm", "aws-ssm"]);

    let back = binding(local(), MigrationPhase::Retiring { from: ssm() });
    inventory
        .replace_binding(Some(&switched), &back)
        .await
        .expect("switch back");
    assert_eq!(integrations(&groups).await, ["local", "local"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_switch_moves_every_group_to_the_new_store() {
    the_switch_moves_every_group_to_the_new_store(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_the_switch_moves_every_group_to_the_new_store() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): the switch moves every group to the new store");
        return;
    }
    the_switch_moves_every_group_to_the_new_store(test_support::postgres().await.expect("PostgreSQL tests run")).await;
}
