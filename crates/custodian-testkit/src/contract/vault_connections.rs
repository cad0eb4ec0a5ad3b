//! Contract of [`VaultConnectionRepository`](custodian_ports::VaultConnectionRepository):
//! one case per rule of its documentation, plus the tier limit under concurrent creates.

use custodian_domain::{
    AuditAction, AuditEvent, LimitKind, ResourceType, SecretStorage, TeamId, VaultConnection, VaultConnectionId,
    VaultSettings,
};
use custodian_ports::{ConflictKind, Page, RepoError};
use uuid::Uuid;

use super::fixtures::cases;
use super::secrets::{
    ALL, Owned, at, audit, audit_events, description, external_secret, has_event, name, secret_audit,
    stored_connection, stored_secret, team, user, vault_connection,
};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        create_then_get_returns_every_vault_type,
        create_records_its_audit_event,
        create_in_missing_team_is_not_found,
        create_duplicate_name_in_team_conflicts,
        create_at_the_limit_is_limit_exceeded,
        concurrent_creates_never_exceed_the_limit,
        get_absent_or_in_other_team_is_not_found,
        list_orders_by_name_pages_and_is_team_scoped,
        secret_count_counts_the_secrets_using_it,
        update_replaces_every_mutable_field,
        update_with_stale_version_conflicts,
        concurrent_rotations_of_one_version_let_exactly_one_through,
        update_to_a_taken_name_conflicts,
        update_absent_or_in_other_team_is_not_found,
        delete_returns_the_record_and_removes_it,
        delete_while_a_secret_uses_it_conflicts,
        delete_absent_or_in_other_team_is_not_found,
    ]
}

fn connection_audit(owned: Owned, connection: &VaultConnection, action: AuditAction) -> AuditEvent {
    audit(
        owned.team,
        action,
        ResourceType::VaultConnection,
        connection.id.as_uuid(),
        owned.actor,
    )
}

fn names(connections: &[VaultConnection]) -> Vec<&str> {
    connections.iter().map(|c| c.name.as_str()).collect()
}

fn absent_connection() -> VaultConnectionId {
    VaultConnectionId::from_uuid(Uuid::now_v7())
}

/// Each vault type's settings read back exactly as written.
async fn create_then_get_returns_every_vault_type(repos: RepoSet) {
    let owned = team(&repos).await;
    let onepassword = VaultConnection {
        settings: VaultSettings::OnePassword,
        description: None,
        last_verified_at: Some(at(5)),
        ..vault_connection(owned, "1password")
    };
    let doppler = vault_connection(owned, "doppler");
    let infisical = VaultConnection {
        settings: VaultSettings::Infisical {
            client_id: "machine-identity-1".into(),
            project_id: "6f1c2a".into(),
            environment: "prod".into(),
            secret_path: "/storage/keys".into(),
            api_url: Some("https://infisical.example.com".into()),
        },
        secret_version: 3,
        ..vault_connection(owned, "infisical")
    };
    for c in [&onepassword, &doppler, &infisical] {
        let event = connection_audit(owned, c, AuditAction::Create);
        repos
            .vault_connections
            .create(c, Some(3), &event)
            .await
            .expect("created");
    }
    for c in [onepassword, doppler, infisical] {
        assert_eq!(repos.vault_connections.get(owned.team, c.id).await, Ok(c));
    }
}

/// A create records its audit event; a refused create records nothing.
async fn create_records_its_audit_event(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = vault_connection(owned, "audited");
    let event = connection_audit(owned, &connection, AuditAction::Create);
    repos
        .vault_connections
        .create(&connection, None, &event)
        .await
        .expect("created");
    assert!(has_event(&repos, owned.team, &event).await);

    let before = audit_events(&repos, owned.team).await.len();
    let over = vault_connection(owned, "over-the-limit");
    let refused = connection_audit(owned, &over, AuditAction::Create);
    assert!(repos.vault_connections.create(&over, Some(1), &refused).await.is_err());
    assert_eq!(audit_events(&repos, owned.team).await.len(), before);
}

/// `NotFound` when the team does not exist.
async fn create_in_missing_team_is_not_found(repos: RepoSet) {
    let owned = Owned {
        team: TeamId::from_uuid(Uuid::now_v7()),
        actor: user(&repos).await.into(),
    };
    let connection = vault_connection(owned, "orphan");
    let event = connection_audit(owned, &connection, AuditAction::Create);
    assert_eq!(
        repos.vault_connections.create(&connection, Some(1), &event).await,
        Err(RepoError::NotFound)
    );
    assert!(audit_events(&repos, owned.team).await.is_empty());
}

/// `Conflict(DuplicateName)` for a name the team already uses; other teams may use it.
async fn create_duplicate_name_in_team_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let first = stored_connection(&repos, owned, "doppler").await;
    let second = vault_connection(owned, "doppler");
    let event = connection_audit(owned, &second, AuditAction::Create);
    assert_eq!(
        repos.vault_connections.create(&second, None, &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(repos.vault_connections.get(owned.team, first.id).await, Ok(first));
    assert_eq!(
        repos.vault_connections.get(owned.team, second.id).await,
        Err(RepoError::NotFound)
    );

    let other = team(&repos).await;
    let theirs = stored_connection(&repos, other, "doppler").await;
    assert_eq!(repos.vault_connections.get(other.team, theirs.id).await, Ok(theirs));
}

/// `LimitExceeded(VaultConnections)` once the team holds `limit` connections; `None` is
/// unlimited; the limit counts this team only.
async fn create_at_the_limit_is_limit_exceeded(repos: RepoSet) {
    let owned = team(&repos).await;
    let first = vault_connection(owned, "first");
    let event = connection_audit(owned, &first, AuditAction::Create);
    repos
        .vault_connections
        .create(&first, Some(1), &event)
        .await
        .expect("under the limit");
    let second = vault_connection(owned, "second");
    let event = connection_audit(owned, &second, AuditAction::Create);
    assert_eq!(
        repos.vault_connections.create(&second, Some(1), &event).await,
        Err(RepoError::LimitExceeded {
            kind: LimitKind::VaultConnections,
            limit: 1
        })
    );
    assert_eq!(
        repos.vault_connections.get(owned.team, second.id).await,
        Err(RepoError::NotFound)
    );
    // Unlimited.
    for i in 0..4 {
        stored_connection(&repos, owned, &format!("more-{i}")).await;
    }
    let page = repos.vault_connections.list(owned.team, ALL).await.expect("listed");
    assert_eq!(page.total, 5);
    // Another team at its own limit.
    let other = team(&repos).await;
    let theirs = vault_connection(other, "first");
    let event = connection_audit(other, &theirs, AuditAction::Create);
    repos
        .vault_connections
        .create(&theirs, Some(1), &event)
        .await
        .expect("other team");
}

/// The limit is checked in the insert's transaction: 10 concurrent creates into a team
/// with limit 2 leave exactly 2 connections.
async fn concurrent_creates_never_exceed_the_limit(repos: RepoSet) {
    let owned = team(&repos).await;
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let repos = repos.clone();
            tokio::spawn(async move {
                let connection = vault_connection(owned, &format!("concurrent-{i}"));
                let event = connection_audit(owned, &connection, AuditAction::Create);
                repos.vault_connections.create(&connection, Some(2), &event).await
            })
        })
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for handle in handles {
        match handle.await.expect("task finished") {
            Ok(()) => created += 1,
            Err(RepoError::LimitExceeded {
                kind: LimitKind::VaultConnections,
                limit: 2,
            }) => refused += 1,
            Err(other) => panic!("unexpected error from a concurrent create: {other}"),
        }
    }
    assert_eq!((created, refused), (2, 8));
    let page = repos.vault_connections.list(owned.team, ALL).await.expect("listed");
    assert_eq!(page.total, 2);
}

/// `NotFound` when absent or in another team.
async fn get_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let mine = stored_connection(&repos, owned, "mine").await;
    assert_eq!(
        repos.vault_connections.get(other.team, mine.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos.vault_connections.get(owned.team, absent_connection()).await,
        Err(RepoError::NotFound)
    );
}

/// The team's connections only, ordered by name, paged with the total.
async fn list_orders_by_name_pages_and_is_team_scoped(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    for n in ["vault-c", "vault-a", "vault-d", "vault-b"] {
        stored_connection(&repos, owned, n).await;
    }
    stored_connection(&repos, other, "aaa").await;
    let page = repos.vault_connections.list(owned.team, ALL).await.expect("listed");
    assert_eq!(names(&page.items), ["vault-a", "vault-b", "vault-c", "vault-d"]);
    assert_eq!(page.total, 4);
    let second = repos
        .vault_connections
        .list(owned.team, Page { limit: 3, offset: 3 })
        .await
        .expect("listed");
    assert_eq!(names(&second.items), ["vault-d"]);
    assert_eq!(second.total, 4);
    let empty = team(&repos).await;
    let page = repos.vault_connections.list(empty.team, ALL).await.expect("listed");
    assert!(page.items.is_empty());
    assert_eq!(page.total, 0);
}

/// The number of secrets that use the connection (managed secrets and other connections'
/// secrets do not count).
async fn secret_count_counts_the_secrets_using_it(repos: RepoSet) {
    let owned = team(&repos).await;
    let used = stored_connection(&repos, owned, "used").await;
    let idle = stored_connection(&repos, owned, "idle").await;
    assert_eq!(repos.vault_connections.secret_count(owned.team, used.id).await, Ok(0));
    let mut external = Vec::new();
    for n in ["e1", "e2", "e3"] {
        let secret = external_secret(owned, n, used.id);
        let event = secret_audit(owned, &secret, AuditAction::Create);
        repos.secrets.create(&secret, None, &event).await.expect("created");
        external.push(secret);
    }
    stored_secret(&repos, owned, "managed").await;
    assert_eq!(repos.vault_connections.secret_count(owned.team, used.id).await, Ok(3));
    assert_eq!(repos.vault_connections.secret_count(owned.team, idle.id).await, Ok(0));

    let first = &external[0];
    let event = secret_audit(owned, first, AuditAction::Delete);
    repos
        .secrets
        .delete(owned.team, first.id, &event)
        .await
        .expect("deleted");
    assert_eq!(repos.vault_connections.secret_count(owned.team, used.id).await, Ok(2));
}

/// Every mutable field is replaced while `secret_version` is the expected one.
async fn update_replaces_every_mutable_field(repos: RepoSet) {
    let owned = team(&repos).await;
    let before = stored_connection(&repos, owned, "before").await;
    let editor = user(&repos).await;
    let after = VaultConnection {
        name: name("after"),
        description: None,
        settings: VaultSettings::Doppler {
            project: "storage-eu".into(),
            config: "prd_eu".into(),
        },
        secret_version: 2,
        last_verified_at: Some(at(300)),
        updated_at: at(301),
        updated_by: editor.into(),
        ..before.clone()
    };
    let event = connection_audit(owned, &before, AuditAction::Update);
    repos
        .vault_connections
        .update(&after, 1, &event)
        .await
        .expect("updated");
    assert_eq!(
        repos.vault_connections.get(owned.team, before.id).await,
        Ok(after.clone())
    );
    assert!(has_event(&repos, owned.team, &event).await);

    let again = VaultConnection {
        description: Some(description("verified again")),
        last_verified_at: Some(at(400)),
        ..after
    };
    let event = connection_audit(owned, &before, AuditAction::Verify);
    repos
        .vault_connections
        .update(&again, 2, &event)
        .await
        .expect("updated");
    assert_eq!(repos.vault_connections.get(owned.team, before.id).await, Ok(again));
}

/// `Conflict(Stale)` when `secret_version` moved since it was read; nothing changes.
async fn update_with_stale_version_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "rotated").await;
    let rotated = VaultConnection {
        secret_version: 2,
        ..connection.clone()
    };
    let event = connection_audit(owned, &connection, AuditAction::Rotate);
    repos
        .vault_connections
        .update(&rotated, 1, &event)
        .await
        .expect("rotated");
    let late = VaultConnection {
        name: name("late"),
        secret_version: 2,
        ..connection.clone()
    };
    let late_event = connection_audit(owned, &connection, AuditAction::Rotate);
    assert_eq!(
        repos.vault_connections.update(&late, 1, &late_event).await,
        Err(RepoError::Conflict(ConflictKind::Stale))
    );
    assert_eq!(
        repos.vault_connections.get(owned.team, connection.id).await,
        Ok(rotated)
    );
    assert!(!has_event(&repos, owned.team, &late_event).await);
}

/// Optimistic concurrency holds under concurrent writers: 10 rotations that all read
/// `secret_version` 1 leave exactly one winner and 9 `Conflict(Stale)`.
async fn concurrent_rotations_of_one_version_let_exactly_one_through(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "contended").await;
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let repos = repos.clone();
            let rotated = VaultConnection {
                description: Some(description(&format!("writer {i}"))),
                secret_version: 2,
                ..connection.clone()
            };
            tokio::spawn(async move {
                let event = connection_audit(owned, &rotated, AuditAction::Rotate);
                repos
                    .vault_connections
                    .update(&rotated, 1, &event)
                    .await
                    .map(|()| rotated)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut stale = 0;
    for handle in handles {
        match handle.await.expect("task finished") {
            Ok(rotated) => winners.push(rotated),
            Err(RepoError::Conflict(ConflictKind::Stale)) => stale += 1,
            Err(other) => panic!("unexpected error from a concurrent rotation: {other}"),
        }
    }
    assert_eq!((winners.len(), stale), (1, 9));
    assert_eq!(
        repos.vault_connections.get(owned.team, connection.id).await.as_ref(),
        Ok(&winners[0])
    );
}

/// `Conflict(DuplicateName)` when renaming to a name another connection of the team has.
async fn update_to_a_taken_name_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    stored_connection(&repos, owned, "taken").await;
    let mine = stored_connection(&repos, owned, "mine").await;
    let renamed = VaultConnection {
        name: name("taken"),
        ..mine.clone()
    };
    let event = connection_audit(owned, &mine, AuditAction::Update);
    assert_eq!(
        repos.vault_connections.update(&renamed, 1, &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(repos.vault_connections.get(owned.team, mine.id).await, Ok(mine.clone()));
    let same = VaultConnection {
        description: Some(description("same name")),
        ..mine.clone()
    };
    repos
        .vault_connections
        .update(&same, 1, &event)
        .await
        .expect("own name is fine");
    assert_eq!(repos.vault_connections.get(owned.team, mine.id).await, Ok(same));
}

/// `NotFound` when absent or in another team.
async fn update_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let mine = stored_connection(&repos, owned, "mine").await;
    let hijack = VaultConnection {
        team_id: other.team,
        name: name("hijacked"),
        ..mine.clone()
    };
    let event = connection_audit(other, &mine, AuditAction::Update);
    assert_eq!(
        repos.vault_connections.update(&hijack, 1, &event).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.vault_connections.get(owned.team, mine.id).await, Ok(mine));
    let absent = vault_connection(owned, "absent");
    let event = connection_audit(owned, &absent, AuditAction::Update);
    assert_eq!(
        repos.vault_connections.update(&absent, 1, &event).await,
        Err(RepoError::NotFound)
    );
}

/// Delete returns the deleted record; it is gone and its event recorded.
async fn delete_returns_the_record_and_removes_it(repos: RepoSet) {
    let owned = team(&repos).await;
    let doomed = stored_connection(&repos, owned, "doomed").await;
    let kept = stored_connection(&repos, owned, "kept").await;
    let event = connection_audit(owned, &doomed, AuditAction::Delete);
    assert_eq!(
        repos.vault_connections.delete(owned.team, doomed.id, &event).await,
        Ok(doomed.clone())
    );
    assert_eq!(
        repos.vault_connections.get(owned.team, doomed.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.vault_connections.get(owned.team, kept.id).await, Ok(kept));
    assert!(has_event(&repos, owned.team, &event).await);
    let again = connection_audit(owned, &doomed, AuditAction::Delete);
    assert_eq!(
        repos.vault_connections.delete(owned.team, doomed.id, &again).await,
        Err(RepoError::NotFound)
    );
}

/// `Conflict(VaultConnectionInUse)` while a secret uses it; deletable once it is unused.
async fn delete_while_a_secret_uses_it_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "used").await;
    let secret = external_secret(owned, "external", connection.id);
    let event = secret_audit(owned, &secret, AuditAction::Create);
    repos.secrets.create(&secret, None, &event).await.expect("created");
    assert!(matches!(secret.storage, SecretStorage::External { .. }));

    let event = connection_audit(owned, &connection, AuditAction::Delete);
    assert_eq!(
        repos.vault_connections.delete(owned.team, connection.id, &event).await,
        Err(RepoError::Conflict(ConflictKind::VaultConnectionInUse))
    );
    assert_eq!(
        repos.vault_connections.get(owned.team, connection.id).await,
        Ok(connection.clone())
    );
    assert!(!has_event(&repos, owned.team, &event).await);

    let gone = secret_audit(owned, &secret, AuditAction::Delete);
    repos
        .secrets
        .delete(owned.team, secret.id, &gone)
        .await
        .expect("secret deleted");
    assert_eq!(
        repos.vault_connections.delete(owned.team, connection.id, &event).await,
        Ok(connection)
    );
}

/// `NotFound` when absent or in another team; the connection stays.
async fn delete_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let mine = stored_connection(&repos, owned, "mine").await;
    let event = connection_audit(other, &mine, AuditAction::Delete);
    assert_eq!(
        repos.vault_connections.delete(other.team, mine.id, &event).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.vault_connections.get(owned.team, mine.id).await, Ok(mine));
    assert_eq!(
        repos
            .vault_connections
            .delete(owned.team, absent_connection(), &event)
            .await,
        Err(RepoError::NotFound)
    );
}
