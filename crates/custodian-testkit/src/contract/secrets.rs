//! Contract of [`SecretRepository`](custodian_ports::SecretRepository): one case per rule
//! of its documentation, plus the tier limit under concurrent creates.

use std::collections::HashSet;

use custodian_domain::{
    AuditAction, AuditEvent, AuthMethod, BucketName, CredentialField, FieldMapping, FieldMappings, LimitKind, Location,
    LocationId, ResourceType, SecretId, SecretStorage, SecretType, StorageSecret, SubjectId, TeamId, UserId,
    VaultConnection, VaultConnectionId, VaultReference, VaultSettings, VaultType,
};
use custodian_ports::{AuditFilter, ConflictKind, Page, RepoError, SecretFilter};
use uuid::Uuid;

pub(super) use super::fixtures::{ALL, at, description, name};
use super::fixtures::{cases, user_and_team};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        create_managed_then_get_returns_it,
        create_external_then_get_returns_it,
        create_records_its_audit_event,
        create_in_missing_team_is_not_found,
        create_external_needs_a_connection_of_the_same_team,
        create_duplicate_name_in_team_conflicts,
        create_same_name_in_other_team_is_allowed,
        create_at_the_limit_is_limit_exceeded,
        create_without_limit_is_unlimited,
        concurrent_creates_never_exceed_the_limit,
        get_absent_or_in_other_team_is_not_found,
        list_orders_by_name_and_is_team_scoped,
        list_filters_by_secret_type,
        list_search_is_a_case_insensitive_substring,
        list_pages_with_the_total_of_matches,
        update_replaces_every_mutable_field,
        update_replaces_field_mappings_of_external_secret,
        update_never_changes_storage_mode_or_vault_connection,
        update_with_stale_version_conflicts,
        concurrent_updates_of_one_version_let_exactly_one_through,
        update_to_a_taken_name_conflicts,
        update_absent_or_in_other_team_is_not_found,
        delete_returns_the_record_and_removes_it,
        delete_while_a_location_uses_it_conflicts,
        delete_absent_or_in_other_team_is_not_found,
        count_counts_the_team_secrets,
    ]
}

// ---------------------------------------------------------------------------------------
// Helpers shared by the secret, location and vault-connection suites.
// ---------------------------------------------------------------------------------------

fn fresh_uuid() -> Uuid {
    Uuid::now_v7()
}

/// An audit event of `team` about a resource; failing writes must not record it.
pub(super) fn audit(
    team: TeamId,
    action: AuditAction,
    resource_type: ResourceType,
    resource_id: Uuid,
    actor: SubjectId,
) -> AuditEvent {
    super::fixtures::audit(Some(team), action, resource_type, resource_id, actor)
}

/// A stored team and its owner, as the ids the cases need (copied into concurrent tasks).
#[derive(Debug, Clone, Copy)]
pub struct Owned {
    pub team: TeamId,
    pub actor: SubjectId,
}

/// Store a fresh user; its id.
pub(super) async fn user(repos: &RepoSet) -> UserId {
    super::fixtures::user(repos).await.id
}

/// Store a fresh user and a fresh team (tier `free`) it owns.
pub async fn team(repos: &RepoSet) -> Owned {
    let owned = user_and_team(repos).await;
    Owned {
        team: owned.team_id(),
        actor: owned.actor(),
    }
}

/// A managed `s3` secret of `owned.team` named `secret_name` (not stored).
pub fn managed_secret(owned: Owned, secret_name: &str) -> StorageSecret {
    StorageSecret {
        id: SecretId::from_uuid(fresh_uuid()),
        team_id: owned.team,
        name: name(secret_name),
        description: Some(description("backups of the main site")),
        secret_type: SecretType::S3,
        auth_method: AuthMethod::S3AccessKey,
        storage: SecretStorage::Managed,
        credentials_version: 1,
        credentials_updated_at: at(2),
        created_at: at(2),
        created_by: owned.actor,
        updated_at: at(2),
        updated_by: owned.actor,
    }
}

fn doppler_mappings(key_id: &str, secret_key: &str) -> FieldMappings {
    let reference = |r: &str| VaultReference::parse(VaultType::Doppler, r).expect("a valid Doppler name");
    FieldMappings::from_stored(vec![
        FieldMapping {
            field: CredentialField::AccessKeyId,
            reference: reference(key_id),
        },
        FieldMapping {
            field: CredentialField::SecretAccessKey,
            reference: reference(secret_key),
        },
    ])
}

/// An external `r2` secret of `owned.team` that reads its keys through `connection`.
pub(super) fn external_secret(owned: Owned, secret_name: &str, connection: VaultConnectionId) -> StorageSecret {
    StorageSecret {
        secret_type: SecretType::R2,
        auth_method: AuthMethod::R2AccessKey,
        description: None,
        storage: SecretStorage::External {
            vault_connection_id: connection,
            field_mappings: doppler_mappings("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"),
        },
        ..managed_secret(owned, secret_name)
    }
}

/// A Doppler vault connection of `owned.team` named `connection_name` (not stored).
pub(super) fn vault_connection(owned: Owned, connection_name: &str) -> VaultConnection {
    VaultConnection {
        id: VaultConnectionId::from_uuid(fresh_uuid()),
        team_id: owned.team,
        name: name(connection_name),
        description: Some(description("production secrets")),
        settings: VaultSettings::Doppler {
            project: "storage".into(),
            config: "prd".into(),
        },
        secret_version: 1,
        last_verified_at: None,
        created_at: at(3),
        created_by: owned.actor,
        updated_at: at(3),
        updated_by: owned.actor,
    }
}

/// A location of `owned.team` named `location_name` using `secret` (an `s3` secret).
pub(super) fn location(owned: Owned, location_name: &str, secret: SecretId) -> Location {
    Location {
        id: LocationId::from_uuid(fresh_uuid()),
        team_id: owned.team,
        name: name(location_name),
        description: None,
        location_type: SecretType::S3,
        bucket_name: BucketName::parse_at("bucket_name", "site-backups").expect("a valid bucket"),
        region: None,
        endpoint_url: None,
        secret_id: secret,
        created_at: at(4),
        created_by: owned.actor,
        updated_at: at(4),
        updated_by: owned.actor,
    }
}

/// Store a managed secret named `secret_name` (unlimited) and return it.
pub(super) async fn stored_secret(repos: &RepoSet, owned: Owned, secret_name: &str) -> StorageSecret {
    let secret = managed_secret(owned, secret_name);
    repos
        .secrets
        .create(&secret, None, &secret_audit(owned, &secret, AuditAction::Create))
        .await
        .expect("secret created");
    secret
}

/// Store a vault connection named `connection_name` (unlimited) and return it.
pub(super) async fn stored_connection(repos: &RepoSet, owned: Owned, connection_name: &str) -> VaultConnection {
    let connection = vault_connection(owned, connection_name);
    let event = audit(
        owned.team,
        AuditAction::Create,
        ResourceType::VaultConnection,
        connection.id.as_uuid(),
        owned.actor,
    );
    repos
        .vault_connections
        .create(&connection, None, &event)
        .await
        .expect("vault connection created");
    connection
}

/// Store a location named `location_name` using `secret` and return it.
pub(super) async fn stored_location(repos: &RepoSet, owned: Owned, location_name: &str, secret: SecretId) -> Location {
    let location = location(owned, location_name, secret);
    let event = audit(
        owned.team,
        AuditAction::Create,
        ResourceType::Location,
        location.id.as_uuid(),
        owned.actor,
    );
    repos
        .locations
        .create(&location, &event)
        .await
        .expect("location created");
    location
}

pub fn secret_audit(owned: Owned, secret: &StorageSecret, action: AuditAction) -> AuditEvent {
    audit(
        owned.team,
        action,
        ResourceType::StorageSecret,
        secret.id.as_uuid(),
        owned.actor,
    )
}

/// Every audit event of the team.
pub(super) async fn audit_events(repos: &RepoSet, team: TeamId) -> Vec<AuditEvent> {
    repos
        .audit
        .list(team, &AuditFilter::default(), ALL)
        .await
        .expect("audit listed")
        .items
}

/// Whether the team's audit trail holds `event`, exactly.
pub(super) async fn has_event(repos: &RepoSet, team: TeamId, event: &AuditEvent) -> bool {
    audit_events(repos, team).await.iter().any(|e| e == event)
}

fn names(secrets: &[StorageSecret]) -> Vec<&str> {
    secrets.iter().map(|s| s.name.as_str()).collect()
}

async fn list(repos: &RepoSet, team: TeamId, filter: SecretFilter) -> Vec<StorageSecret> {
    repos.secrets.list(team, &filter, ALL).await.expect("listed").items
}

fn search(q: &str) -> SecretFilter {
    SecretFilter {
        search: Some(q.into()),
        ..SecretFilter::default()
    }
}

// ---------------------------------------------------------------------------------------
// Cases.
// ---------------------------------------------------------------------------------------

/// A created managed secret reads back exactly as written.
async fn create_managed_then_get_returns_it(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = managed_secret(owned, "main-backups");
    let event = secret_audit(owned, &secret, AuditAction::Create);
    repos.secrets.create(&secret, Some(5), &event).await.expect("created");
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(secret));
}

/// An external secret keeps its vault connection and its field mappings, in order.
async fn create_external_then_get_returns_it(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "doppler").await;
    let secret = external_secret(owned, "r2-media", connection.id);
    let event = secret_audit(owned, &secret, AuditAction::Create);
    repos.secrets.create(&secret, None, &event).await.expect("created");
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(secret));
}

/// A create records its audit event with it; a refused create records nothing.
async fn create_records_its_audit_event(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = managed_secret(owned, "audited");
    let event = secret_audit(owned, &secret, AuditAction::Create);
    repos.secrets.create(&secret, None, &event).await.expect("created");
    assert!(
        has_event(&repos, owned.team, &event).await,
        "the create's event is recorded"
    );

    let before = audit_events(&repos, owned.team).await.len();
    let again = managed_secret(owned, "audited");
    let refused = secret_audit(owned, &again, AuditAction::Create);
    assert!(repos.secrets.create(&again, None, &refused).await.is_err());
    assert_eq!(audit_events(&repos, owned.team).await.len(), before, "nothing recorded");
}

/// `NotFound` when the team does not exist, whether the create counts against a limit (the
/// team is locked first) or not (the row's foreign key refuses it).
async fn create_in_missing_team_is_not_found(repos: RepoSet) {
    let owned = Owned {
        team: TeamId::from_uuid(fresh_uuid()),
        actor: user(&repos).await.into(),
    };
    for limit in [Some(5), None] {
        let secret = managed_secret(owned, "orphan");
        let event = secret_audit(owned, &secret, AuditAction::Create);
        assert_eq!(
            repos.secrets.create(&secret, limit, &event).await,
            Err(RepoError::NotFound),
            "limit {limit:?}"
        );
    }
    assert!(audit_events(&repos, owned.team).await.is_empty());
}

/// `NotFound` when an external secret's vault connection is absent or of another team.
async fn create_external_needs_a_connection_of_the_same_team(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let foreign = stored_connection(&repos, other, "theirs").await;

    let absent = external_secret(owned, "absent", VaultConnectionId::from_uuid(fresh_uuid()));
    let event = secret_audit(owned, &absent, AuditAction::Create);
    assert_eq!(
        repos.secrets.create(&absent, None, &event).await,
        Err(RepoError::NotFound)
    );

    let cross = external_secret(owned, "cross", foreign.id);
    let event = secret_audit(owned, &cross, AuditAction::Create);
    assert_eq!(
        repos.secrets.create(&cross, None, &event).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.secrets.count(owned.team).await, Ok(0));
}

/// `Conflict(DuplicateName)` for a name the team already uses; the first stays as it was.
async fn create_duplicate_name_in_team_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let first = stored_secret(&repos, owned, "shared-name").await;
    let second = managed_secret(owned, "shared-name");
    let event = secret_audit(owned, &second, AuditAction::Create);
    assert_eq!(
        repos.secrets.create(&second, Some(5), &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(repos.secrets.count(owned.team).await, Ok(1));
    assert_eq!(repos.secrets.get(owned.team, first.id).await, Ok(first));
    assert_eq!(repos.secrets.get(owned.team, second.id).await, Err(RepoError::NotFound));
}

/// Names are unique per team, not across teams.
async fn create_same_name_in_other_team_is_allowed(repos: RepoSet) {
    let a = team(&repos).await;
    let b = team(&repos).await;
    stored_secret(&repos, a, "prod").await;
    let theirs = stored_secret(&repos, b, "prod").await;
    assert_eq!(repos.secrets.get(b.team, theirs.id).await, Ok(theirs));
}

/// `LimitExceeded(StorageSecrets)` once the team holds `limit` secrets; nothing is written.
async fn create_at_the_limit_is_limit_exceeded(repos: RepoSet) {
    let owned = team(&repos).await;
    for i in 0..3 {
        let secret = managed_secret(owned, &format!("s{i}"));
        let event = secret_audit(owned, &secret, AuditAction::Create);
        repos
            .secrets
            .create(&secret, Some(3), &event)
            .await
            .expect("under the limit");
    }
    let over = managed_secret(owned, "s3");
    let event = secret_audit(owned, &over, AuditAction::Create);
    assert_eq!(
        repos.secrets.create(&over, Some(3), &event).await,
        Err(RepoError::LimitExceeded {
            kind: LimitKind::StorageSecrets,
            limit: 3
        })
    );
    assert_eq!(repos.secrets.count(owned.team).await, Ok(3));
    assert!(!has_event(&repos, owned.team, &event).await);

    // The limit counts this team only.
    let other = team(&repos).await;
    let theirs = managed_secret(other, "s0");
    let event = secret_audit(other, &theirs, AuditAction::Create);
    repos
        .secrets
        .create(&theirs, Some(1), &event)
        .await
        .expect("other team");

    // A limit of zero refuses the first secret.
    let empty = team(&repos).await;
    let first = managed_secret(empty, "first");
    let event = secret_audit(empty, &first, AuditAction::Create);
    assert_eq!(
        repos.secrets.create(&first, Some(0), &event).await,
        Err(RepoError::LimitExceeded {
            kind: LimitKind::StorageSecrets,
            limit: 0
        })
    );
}

/// `None` means unlimited.
async fn create_without_limit_is_unlimited(repos: RepoSet) {
    let owned = team(&repos).await;
    for i in 0..12 {
        stored_secret(&repos, owned, &format!("many-{i:02}")).await;
    }
    assert_eq!(repos.secrets.count(owned.team).await, Ok(12));
}

/// The limit is checked in the insert's transaction: 20 concurrent creates into a team
/// with limit 5 leave exactly 5 secrets and 15 `LimitExceeded`.
async fn concurrent_creates_never_exceed_the_limit(repos: RepoSet) {
    let owned = team(&repos).await;
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let repos = repos.clone();
            tokio::spawn(async move {
                let secret = managed_secret(owned, &format!("concurrent-{i:02}"));
                let event = secret_audit(owned, &secret, AuditAction::Create);
                repos.secrets.create(&secret, Some(5), &event).await
            })
        })
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for handle in handles {
        match handle.await.expect("task finished") {
            Ok(()) => created += 1,
            Err(RepoError::LimitExceeded {
                kind: LimitKind::StorageSecrets,
                limit: 5,
            }) => refused += 1,
            Err(other) => panic!("unexpected error from a concurrent create: {other}"),
        }
    }
    assert_eq!((created, refused), (5, 15));
    assert_eq!(repos.secrets.count(owned.team).await, Ok(5));
    let listed = list(&repos, owned.team, SecretFilter::default()).await;
    assert_eq!(listed.len(), 5);
    let creates = audit_events(&repos, owned.team)
        .await
        .into_iter()
        .filter(|e| e.resource_type == ResourceType::StorageSecret)
        .count();
    assert_eq!(creates, 5, "one audit event per secret actually created");
}

/// `NotFound` when absent or in another team (no existence leak).
async fn get_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "mine").await;
    assert_eq!(repos.secrets.get(other.team, secret.id).await, Err(RepoError::NotFound));
    assert_eq!(
        repos.secrets.get(owned.team, SecretId::from_uuid(fresh_uuid())).await,
        Err(RepoError::NotFound)
    );
}

/// The list holds the team's secrets only, ordered by name.
async fn list_orders_by_name_and_is_team_scoped(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    for n in ["delta", "alpha", "charlie", "bravo"] {
        stored_secret(&repos, owned, n).await;
    }
    stored_secret(&repos, other, "aaa-other-team").await;
    let page = repos
        .secrets
        .list(owned.team, &SecretFilter::default(), ALL)
        .await
        .expect("listed");
    assert_eq!(names(&page.items), ["alpha", "bravo", "charlie", "delta"]);
    assert_eq!(page.total, 4);
    assert!(page.items.iter().all(|s| s.team_id == owned.team));
    let empty = team(&repos).await;
    let page = repos.secrets.list(empty.team, &SecretFilter::default(), ALL).await;
    assert_eq!(
        page,
        Ok(custodian_ports::Paged {
            items: vec![],
            total: 0
        })
    );
}

/// `secret_type` keeps only secrets of that type.
async fn list_filters_by_secret_type(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "doppler").await;
    stored_secret(&repos, owned, "s3-one").await;
    stored_secret(&repos, owned, "s3-two").await;
    let r2 = external_secret(owned, "r2-one", connection.id);
    let event = secret_audit(owned, &r2, AuditAction::Create);
    repos.secrets.create(&r2, None, &event).await.expect("created");

    let filter = |t| SecretFilter {
        secret_type: Some(t),
        ..SecretFilter::default()
    };
    assert_eq!(
        names(&list(&repos, owned.team, filter(SecretType::S3)).await),
        ["s3-one", "s3-two"]
    );
    assert_eq!(
        names(&list(&repos, owned.team, filter(SecretType::R2)).await),
        ["r2-one"]
    );
    assert!(list(&repos, owned.team, filter(SecretType::Gcs)).await.is_empty());
    let combined = SecretFilter {
        secret_type: Some(SecretType::S3),
        search: Some("TWO".into()),
    };
    assert_eq!(names(&list(&repos, owned.team, combined).await), ["s3-two"]);
}

/// `search` is a case-insensitive substring of the name, taken literally (`%`, `_` and
/// `\` are characters, not patterns). Case folds ASCII letters (what every backend can do
/// alike); other characters match as given.
async fn list_search_is_a_case_insensitive_substring(repos: RepoSet) {
    let owned = team(&repos).await;
    for n in [
        "Prod-Backups",
        "staging backups",
        "prod_logs",
        "prodXlogs",
        "100% archive",
        "back\\slash",
        "Ünïcode-Bucket",
        "other",
    ] {
        stored_secret(&repos, owned, n).await;
    }
    assert_eq!(
        names(&list(&repos, owned.team, search("PROD")).await),
        ["Prod-Backups", "prodXlogs", "prod_logs"]
    );
    assert_eq!(
        names(&list(&repos, owned.team, search("backups")).await),
        ["Prod-Backups", "staging backups"]
    );
    assert_eq!(names(&list(&repos, owned.team, search("d_l")).await), ["prod_logs"]);
    assert_eq!(names(&list(&repos, owned.team, search("0%")).await), ["100% archive"]);
    assert_eq!(names(&list(&repos, owned.team, search("K\\S")).await), ["back\\slash"]);
    assert_eq!(
        names(&list(&repos, owned.team, search("Ünïcode-BUCKET")).await),
        ["Ünïcode-Bucket"]
    );
    assert!(list(&repos, owned.team, search("missing")).await.is_empty());
}

/// `limit`/`offset` select a page of the ordered list; `total` counts every match.
async fn list_pages_with_the_total_of_matches(repos: RepoSet) {
    let owned = team(&repos).await;
    for i in 0..7 {
        stored_secret(&repos, owned, &format!("page-{i}")).await;
    }
    stored_secret(&repos, owned, "unrelated").await;
    let filter = search("page-");
    let first = repos
        .secrets
        .list(owned.team, &filter, Page { limit: 3, offset: 0 })
        .await
        .expect("listed");
    assert_eq!(names(&first.items), ["page-0", "page-1", "page-2"]);
    assert_eq!(first.total, 7);
    let last = repos
        .secrets
        .list(owned.team, &filter, Page { limit: 3, offset: 6 })
        .await
        .expect("listed");
    assert_eq!(names(&last.items), ["page-6"]);
    assert_eq!(last.total, 7);
    let beyond = repos
        .secrets
        .list(owned.team, &filter, Page { limit: 3, offset: 50 })
        .await
        .expect("listed");
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 7);
}

/// Every mutable field is replaced; id, team and creation stay.
async fn update_replaces_every_mutable_field(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "before").await;
    let editor = user(&repos).await;
    let updated = StorageSecret {
        name: name("after"),
        description: None,
        secret_type: SecretType::Wasabi,
        auth_method: AuthMethod::WasabiAccessKey,
        credentials_version: 2,
        credentials_updated_at: at(100),
        updated_at: at(101),
        updated_by: editor.into(),
        ..secret.clone()
    };
    let event = secret_audit(owned, &secret, AuditAction::Update);
    repos.secrets.update(&updated, 1, &event).await.expect("updated");
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(updated.clone()));
    assert!(has_event(&repos, owned.team, &event).await);

    // The version moved to 2: an update expecting 2 goes through.
    let again = StorageSecret {
        description: Some(description("")),
        ..updated
    };
    let event = secret_audit(owned, &secret, AuditAction::Update);
    repos.secrets.update(&again, 2, &event).await.expect("updated again");
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(again));
}

/// An external secret's field mappings are replaced (its connection stays).
async fn update_replaces_field_mappings_of_external_secret(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "doppler").await;
    let secret = external_secret(owned, "r2", connection.id);
    let event = secret_audit(owned, &secret, AuditAction::Create);
    repos.secrets.create(&secret, None, &event).await.expect("created");
    let updated = StorageSecret {
        storage: SecretStorage::External {
            vault_connection_id: connection.id,
            field_mappings: doppler_mappings("NEW_KEY_ID", "NEW_SECRET_KEY"),
        },
        credentials_version: 2,
        ..secret.clone()
    };
    let event = secret_audit(owned, &secret, AuditAction::Update);
    repos.secrets.update(&updated, 1, &event).await.expect("updated");
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(updated));
}

/// The storage mode and the vault connection never change: an update that
/// names others keeps the stored ones; a managed secret gains no mappings.
async fn update_never_changes_storage_mode_or_vault_connection(repos: RepoSet) {
    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "doppler").await;
    let other_connection = stored_connection(&repos, owned, "other").await;
    let external = external_secret(owned, "external", connection.id);
    let event = secret_audit(owned, &external, AuditAction::Create);
    repos.secrets.create(&external, None, &event).await.expect("created");

    let to_managed = StorageSecret {
        storage: SecretStorage::Managed,
        name: name("external-renamed"),
        ..external.clone()
    };
    let event = secret_audit(owned, &external, AuditAction::Update);
    repos.secrets.update(&to_managed, 1, &event).await.expect("updated");
    let stored = repos.secrets.get(owned.team, external.id).await.expect("get");
    assert_eq!(stored.storage, external.storage);
    assert_eq!(stored.name.as_str(), "external-renamed");

    let moved = StorageSecret {
        storage: SecretStorage::External {
            vault_connection_id: other_connection.id,
            field_mappings: doppler_mappings("MOVED_ID", "MOVED_SECRET"),
        },
        ..stored.clone()
    };
    let event = secret_audit(owned, &external, AuditAction::Update);
    repos.secrets.update(&moved, 1, &event).await.expect("updated");
    assert_eq!(
        repos.secrets.get(owned.team, external.id).await.expect("get").storage,
        SecretStorage::External {
            vault_connection_id: connection.id,
            field_mappings: doppler_mappings("MOVED_ID", "MOVED_SECRET"),
        }
    );
    assert_eq!(
        repos
            .vault_connections
            .secret_count(owned.team, other_connection.id)
            .await,
        Ok(0)
    );

    let managed = stored_secret(&repos, owned, "managed").await;
    let to_external = StorageSecret {
        storage: external.storage.clone(),
        ..managed.clone()
    };
    let event = secret_audit(owned, &managed, AuditAction::Update);
    repos.secrets.update(&to_external, 1, &event).await.expect("updated");
    assert_eq!(repos.secrets.get(owned.team, managed.id).await, Ok(managed));
}

/// `Conflict(Stale)` when the stored version is not the expected one; nothing changes.
async fn update_with_stale_version_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "versioned").await;
    let rotated = StorageSecret {
        credentials_version: 2,
        ..secret.clone()
    };
    let event = secret_audit(owned, &secret, AuditAction::Rotate);
    repos.secrets.update(&rotated, 1, &event).await.expect("first rotation");

    // A second writer that read version 1 loses.
    let late = StorageSecret {
        name: name("late-writer"),
        credentials_version: 2,
        ..secret.clone()
    };
    let late_event = secret_audit(owned, &secret, AuditAction::Rotate);
    assert_eq!(
        repos.secrets.update(&late, 1, &late_event).await,
        Err(RepoError::Conflict(ConflictKind::Stale))
    );
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(rotated));
    assert!(!has_event(&repos, owned.team, &late_event).await);
}

/// Optimistic concurrency holds under concurrent writers: 10 rotations that all read
/// version 1 leave exactly one winner and 9 `Conflict(Stale)`.
async fn concurrent_updates_of_one_version_let_exactly_one_through(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "contended").await;
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let repos = repos.clone();
            let rotated = StorageSecret {
                description: Some(description(&format!("writer {i}"))),
                credentials_version: 2,
                ..secret.clone()
            };
            tokio::spawn(async move {
                let event = secret_audit(owned, &rotated, AuditAction::Rotate);
                repos.secrets.update(&rotated, 1, &event).await.map(|()| rotated)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut stale = 0;
    for handle in handles {
        match handle.await.expect("task finished") {
            Ok(rotated) => winners.push(rotated),
            Err(RepoError::Conflict(ConflictKind::Stale)) => stale += 1,
            Err(other) => panic!("unexpected error from a concurrent update: {other}"),
        }
    }
    assert_eq!((winners.len(), stale), (1, 9));
    assert_eq!(repos.secrets.get(owned.team, secret.id).await.as_ref(), Ok(&winners[0]));
}

/// `Conflict(DuplicateName)` when renaming to a name another secret of the team has;
/// keeping one's own name is not a conflict.
async fn update_to_a_taken_name_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    stored_secret(&repos, owned, "taken").await;
    let secret = stored_secret(&repos, owned, "free").await;
    let renamed = StorageSecret {
        name: name("taken"),
        ..secret.clone()
    };
    let event = secret_audit(owned, &secret, AuditAction::Update);
    assert_eq!(
        repos.secrets.update(&renamed, 1, &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(secret.clone()));

    let same_name = StorageSecret {
        description: Some(description("same name, new description")),
        ..secret.clone()
    };
    repos
        .secrets
        .update(&same_name, 1, &event)
        .await
        .expect("own name is fine");
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(same_name));
}

/// `NotFound` when the secret is absent or belongs to another team.
async fn update_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "mine").await;
    let hijack = StorageSecret {
        team_id: other.team,
        name: name("hijacked"),
        ..secret.clone()
    };
    let event = secret_audit(other, &secret, AuditAction::Update);
    assert_eq!(repos.secrets.update(&hijack, 1, &event).await, Err(RepoError::NotFound));
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(secret));

    let absent = managed_secret(owned, "absent");
    let event = secret_audit(owned, &absent, AuditAction::Update);
    assert_eq!(repos.secrets.update(&absent, 1, &event).await, Err(RepoError::NotFound));
}

/// Delete returns the deleted record; it is gone afterwards and its event is recorded.
async fn delete_returns_the_record_and_removes_it(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "doomed").await;
    let kept = stored_secret(&repos, owned, "kept").await;
    let event = secret_audit(owned, &secret, AuditAction::Delete);
    assert_eq!(
        repos.secrets.delete(owned.team, secret.id, &event).await,
        Ok(secret.clone())
    );
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Err(RepoError::NotFound));
    assert_eq!(repos.secrets.get(owned.team, kept.id).await, Ok(kept));
    assert_eq!(repos.secrets.count(owned.team).await, Ok(1));
    assert!(has_event(&repos, owned.team, &event).await);
    // Deleted twice: NotFound.
    let again = secret_audit(owned, &secret, AuditAction::Delete);
    assert_eq!(
        repos.secrets.delete(owned.team, secret.id, &again).await,
        Err(RepoError::NotFound)
    );
}

/// `Conflict(SecretInUse)` while a location uses the secret; deletable once it is gone.
async fn delete_while_a_location_uses_it_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "used").await;
    let location = stored_location(&repos, owned, "bucket", secret.id).await;
    let event = secret_audit(owned, &secret, AuditAction::Delete);
    assert_eq!(
        repos.secrets.delete(owned.team, secret.id, &event).await,
        Err(RepoError::Conflict(ConflictKind::SecretInUse))
    );
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(secret.clone()));
    assert!(!has_event(&repos, owned.team, &event).await);

    let gone = audit(
        owned.team,
        AuditAction::Delete,
        ResourceType::Location,
        location.id.as_uuid(),
        owned.actor,
    );
    repos
        .locations
        .delete(owned.team, location.id, &gone)
        .await
        .expect("location deleted");
    assert_eq!(repos.secrets.delete(owned.team, secret.id, &event).await, Ok(secret));
}

/// `NotFound` when absent or in another team; the other team's secret stays.
async fn delete_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "mine").await;
    let event = secret_audit(other, &secret, AuditAction::Delete);
    assert_eq!(
        repos.secrets.delete(other.team, secret.id, &event).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.secrets.get(owned.team, secret.id).await, Ok(secret));
    assert_eq!(
        repos
            .secrets
            .delete(owned.team, SecretId::from_uuid(fresh_uuid()), &event)
            .await,
        Err(RepoError::NotFound)
    );
}

/// `count` is the number of secrets in the team, and only that team.
async fn count_counts_the_team_secrets(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    assert_eq!(repos.secrets.count(owned.team).await, Ok(0));
    let connection = stored_connection(&repos, owned, "doppler").await;
    stored_secret(&repos, owned, "one").await;
    let external = external_secret(owned, "two", connection.id);
    let event = secret_audit(owned, &external, AuditAction::Create);
    repos.secrets.create(&external, None, &event).await.expect("created");
    stored_secret(&repos, other, "theirs").await;
    assert_eq!(repos.secrets.count(owned.team).await, Ok(2));
    assert_eq!(repos.secrets.count(other.team).await, Ok(1));
    assert_eq!(repos.secrets.count(TeamId::from_uuid(fresh_uuid())).await, Ok(0));
    let distinct: HashSet<SecretId> = list(&repos, owned.team, SecretFilter::default())
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(distinct.len(), 2);
}
