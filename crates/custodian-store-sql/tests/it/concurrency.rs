//! Tier limits hold under concurrent writers, on both backends; SQLite writes wait for another
//! process's write lock, for a while.

use custodian_domain::{AuditAction, LimitKind, ResourceType, Role};
use custodian_ports::RepoError;
use custodian_store_sql::{Database, test_support};
use custodian_testkit::RepoSet;
use custodian_testkit::contract::fixtures::{audit, membership, user, user_and_team};

use crate::support::{postgres_skipped, repo_set};

const WRITERS: usize = 20;

/// 20 concurrent adds into a team of one owner with member limit `limit` leave exactly
/// `limit` members: `limit - 1` adds succeed, the others are `LimitExceeded`.
async fn concurrent_adds_stop_at_the_limit(db: Database, limit: u32) {
    let repos = repo_set(&db);
    let owned = user_and_team(&repos).await;
    let mut candidates = Vec::new();
    for _ in 0..WRITERS {
        candidates.push(user(&repos).await);
    }
    let adds = candidates.into_iter().map(|candidate| {
        let repos = repos.clone();
        let owned = owned.clone();
        tokio::spawn(async move {
            let event = audit(
                Some(owned.team_id()),
                AuditAction::Create,
                ResourceType::Member,
                candidate.id.as_uuid(),
                owned.actor(),
            );
            repos
                .memberships
                .add(
                    &membership(owned.team_id(), candidate.id, Role::Viewer),
                    Some(limit),
                    &event,
                )
                .await
        })
    });
    let outcomes = futures::future::join_all(adds).await;
    let mut added = 0;
    for outcome in outcomes {
        match outcome.expect("the add task") {
            Ok(()) => added += 1,
            Err(RepoError::LimitExceeded {
                kind: LimitKind::Members,
                limit: l,
            }) => assert_eq!(l, limit),
            Err(other) => panic!("unexpected outcome of a concurrent add: {other:?}"),
        }
    }
    let expected = usize::try_from(limit).expect("small") - 1;
    assert_eq!(added, expected, "limit {limit}");
    let members = repos
        .memberships
        .list(owned.team_id(), custodian_testkit::contract::fixtures::ALL)
        .await;
    assert_eq!(members.expect("list").total, u64::from(limit));
}

const LIMITS: [u32; 4] = [1, 2, 5, 12];

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_member_limit_holds_under_concurrent_adds() {
    for limit in LIMITS {
        concurrent_adds_stop_at_the_limit(test_support::sqlite().await, limit).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_member_limit_holds_under_concurrent_adds() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): member limit under concurrent adds");
        return;
    }
    for limit in LIMITS {
        concurrent_adds_stop_at_the_limit(test_support::postgres().await.expect("PostgreSQL tests run"), limit).await;
    }
}

/// Holds SQLite's write lock from another connection (as another process, such as a
/// `custodian` command, would) until dropped.
struct OtherWriter(diesel::SqliteConnection);

impl OtherWriter {
    fn lock(db: &Database) -> Self {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let path = db
            .sqlite_path()
            .expect("a SQLite database")
            .to_string_lossy()
            .into_owned();
        let mut conn = diesel::SqliteConnection::establish(&path).expect("another connection");
        conn.batch_execute("BEGIN IMMEDIATE").expect("the write lock");
        Self(conn)
    }

    fn release(mut self) {
        diesel::connection::SimpleConnection::batch_execute(&mut self.0, "COMMIT").expect("released");
    }
}

/// A user's creation, as its result.
async fn create_user(repos: &RepoSet) -> Result<(), RepoError> {
    let id: custodian_domain::UserId = custodian_testkit::contract::fixtures::fresh();
    let user = custodian_domain::User {
        id,
        ..custodian_testkit::contract::fixtures::new_user(&format!("w{}@example.com", id.as_uuid().simple()))
    };
    let event = audit(None, AuditAction::Create, ResourceType::User, id.as_uuid(), id.into());
    repos.users.create(&user, None, &event).await
}

/// A write that finds the write lock held by another process waits for it, without
/// holding up reads, and goes through once the lock is released.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_write_waits_for_another_process_then_goes_through() {
    let db = test_support::sqlite().await;
    let repos = repo_set(&db);
    let existing = user(&repos).await;
    let other = OtherWriter::lock(&db);
    let write = tokio::spawn({
        let repos = repos.clone();
        async move { create_user(&repos).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the write waits for the lock");
    let read = repos
        .users
        .get(existing.id)
        .await
        .expect("a read while the write waits");
    assert_eq!(read.id, existing.id);
    other.release();
    write
        .await
        .expect("the write task")
        .expect("the write, once the lock is free");
}

/// A write that cannot get the write lock within its wait fails with `Unavailable`, and the
/// next write, once the lock is free, goes through.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_write_gives_up_on_a_lock_held_too_long() {
    let db = test_support::sqlite().await;
    let repos = repo_set(&db);
    let other = OtherWriter::lock(&db);
    match create_user(&repos).await {
        Err(RepoError::Unavailable(message)) => assert!(message.contains("locked"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    other.release();
    create_user(&repos).await.expect("a write after the lock is free");
}

/// Commits reach the database file itself soon after they are written, though far fewer
/// pages than the writer's own checkpoint threshold were written: a thread copies the
/// write-ahead log into the file, so no write waits for that copy.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_commits_are_copied_into_the_database_file_off_the_writer() {
    let db = test_support::sqlite().await;
    let repos = repo_set(&db);
    let path = db.sqlite_path().expect("a SQLite database").to_path_buf();
    create_user(&repos).await.expect("a first write");
    let file_size = || std::fs::metadata(&path).expect("the database file").len();
    let before = file_size();
    for _ in 0..100 {
        create_user(&repos).await.expect("a write");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file_size() <= before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        file_size() > before,
        "100 users are copied into the database file ({before} bytes before, {} after)",
        file_size()
    );
}

/// Concurrent creates into a team without a limit (on PostgreSQL they do not wait for each
/// other: the team's count is spread over several rows), then concurrent deletes, leave
/// the team's count and its list's total right.
async fn concurrent_creates_and_deletes_keep_the_count(db: Database) {
    use custodian_testkit::contract::secrets::{Owned, managed_secret, secret_audit, team};
    const DELETED: usize = 7;
    let repos = repo_set(&db);
    let owned = team(&repos).await;
    let creates = (0..WRITERS).map(|i| {
        let repos = repos.clone();
        tokio::spawn(async move {
            let secret = managed_secret(owned, &format!("counted-{i}"));
            let event = secret_audit(owned, &secret, AuditAction::Create);
            repos.secrets.create(&secret, None, &event).await.map(|()| secret)
        })
    });
    let created: Vec<_> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|outcome| outcome.expect("the create task").expect("a create"))
        .collect();
    let held = |repos: RepoSet, owned: Owned| async move {
        let count = repos.secrets.count(owned.team).await.expect("the count");
        let total = repos
            .secrets
            .list(
                owned.team,
                &custodian_ports::SecretFilter::default(),
                custodian_testkit::contract::fixtures::ALL,
            )
            .await
            .expect("the list")
            .total;
        assert_eq!(count, total, "the count and the list's total");
        count
    };
    assert_eq!(held(repos.clone(), owned).await, WRITERS as u64);
    let deletes = created.into_iter().take(DELETED).map(|secret| {
        let repos = repos.clone();
        tokio::spawn(async move {
            let event = secret_audit(owned, &secret, AuditAction::Delete);
            repos.secrets.delete(owned.team, secret.id, &event).await
        })
    });
    for outcome in futures::future::join_all(deletes).await {
        outcome.expect("the delete task").expect("a delete");
    }
    assert_eq!(held(repos, owned).await, (WRITERS - DELETED) as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_secret_count_holds_under_concurrent_creates_and_deletes() {
    concurrent_creates_and_deletes_keep_the_count(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_secret_count_holds_under_concurrent_creates_and_deletes() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): secret count under concurrent creates and deletes");
        return;
    }
    concurrent_creates_and_deletes_keep_the_count(test_support::postgres().await.expect("PostgreSQL tests run")).await;
}
