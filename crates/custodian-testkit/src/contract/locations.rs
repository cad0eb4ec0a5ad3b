//! Contract of [`LocationRepository`](custodian_ports::LocationRepository): one case per
//! rule of its documentation.

use custodian_domain::{
    AuditAction, AuditEvent, AuthMethod, BucketName, EndpointUrl, LinkedLocation, Location, LocationId, Region,
    ResourceType, SecretId, SecretType, StorageSecret, TeamId,
};
use custodian_ports::{ConflictKind, LocationFilter, Page, RepoError};
use uuid::Uuid;

use super::fixtures::cases;
use super::secrets::{
    ALL, Owned, at, audit, audit_events, description, has_event, location, managed_secret, name, secret_audit,
    stored_location, stored_secret, team, user,
};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        create_then_get_returns_it,
        create_records_its_audit_event,
        create_needs_a_secret_of_the_same_team,
        create_duplicate_name_in_team_conflicts,
        create_same_name_in_other_team_is_allowed,
        get_absent_or_in_other_team_is_not_found,
        list_orders_by_name_and_is_team_scoped,
        list_filters_by_secret_and_type,
        list_pages_with_the_total_of_matches,
        linked_to_secret_gives_type_and_name_ordered_by_name,
        a_secret_is_read_with_the_locations_that_use_it,
        update_replaces_every_mutable_field,
        update_absent_or_in_other_team_is_not_found,
        update_to_a_secret_outside_the_team_is_not_found,
        update_to_a_taken_name_conflicts,
        delete_removes_it_and_records_its_event,
        delete_absent_or_in_other_team_is_not_found,
    ]
}

fn location_audit(owned: Owned, location: &Location, action: AuditAction) -> AuditEvent {
    audit(
        owned.team,
        action,
        ResourceType::Location,
        location.id.as_uuid(),
        owned.actor,
    )
}

fn names(locations: &[Location]) -> Vec<&str> {
    locations.iter().map(|l| l.name.as_str()).collect()
}

fn absent_secret() -> SecretId {
    SecretId::from_uuid(Uuid::now_v7())
}

/// Store a managed `azure_blob` secret (another type than the `s3` default).
async fn azure_secret(repos: &RepoSet, owned: Owned, secret_name: &str) -> StorageSecret {
    let secret = StorageSecret {
        secret_type: SecretType::AzureBlob,
        auth_method: AuthMethod::AzureSasUrl,
        ..managed_secret(owned, secret_name)
    };
    let event = secret_audit(owned, &secret, AuditAction::Create);
    repos
        .secrets
        .create(&secret, None, &event)
        .await
        .expect("secret created");
    secret
}

async fn list(repos: &RepoSet, team: TeamId, filter: LocationFilter) -> Vec<Location> {
    repos.locations.list(team, &filter, ALL).await.expect("listed").items
}

/// A created location reads back exactly as written, optional fields included.
async fn create_then_get_returns_it(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s3").await;
    let full = Location {
        description: Some(description("nightly dumps")),
        region: Some(Region::parse_at("region", "eu-central-1").expect("region")),
        endpoint_url: Some(EndpointUrl::parse_at("endpoint_url", "https://s3.example.com").expect("url")),
        ..location(owned, "full", secret.id)
    };
    let bare = location(owned, "bare", secret.id);
    for l in [&full, &bare] {
        let event = location_audit(owned, l, AuditAction::Create);
        repos.locations.create(l, &event).await.expect("created");
    }
    assert_eq!(repos.locations.get(owned.team, full.id).await, Ok(full));
    assert_eq!(repos.locations.get(owned.team, bare.id).await, Ok(bare));
}

/// A create records its audit event; a refused create records nothing.
async fn create_records_its_audit_event(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s3").await;
    let created = location(owned, "audited", secret.id);
    let event = location_audit(owned, &created, AuditAction::Create);
    repos.locations.create(&created, &event).await.expect("created");
    assert!(has_event(&repos, owned.team, &event).await);

    let before = audit_events(&repos, owned.team).await.len();
    let duplicate = location(owned, "audited", secret.id);
    let refused = location_audit(owned, &duplicate, AuditAction::Create);
    assert!(repos.locations.create(&duplicate, &refused).await.is_err());
    assert_eq!(audit_events(&repos, owned.team).await.len(), before);
}

/// `NotFound` when the secret does not exist, or exists in another team.
async fn create_needs_a_secret_of_the_same_team(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let foreign = stored_secret(&repos, other, "theirs").await;
    for secret in [absent_secret(), foreign.id] {
        let l = location(owned, "bucket", secret);
        let event = location_audit(owned, &l, AuditAction::Create);
        assert_eq!(repos.locations.create(&l, &event).await, Err(RepoError::NotFound));
        assert_eq!(repos.locations.get(owned.team, l.id).await, Err(RepoError::NotFound));
    }
    assert!(list(&repos, owned.team, LocationFilter::default()).await.is_empty());
    assert!(list(&repos, other.team, LocationFilter::default()).await.is_empty());
}

/// `Conflict(DuplicateName)` for a name the team already uses.
async fn create_duplicate_name_in_team_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let one = stored_secret(&repos, owned, "one").await;
    let two = stored_secret(&repos, owned, "two").await;
    let first = stored_location(&repos, owned, "bucket", one.id).await;
    // Even with another secret, the name is taken in the team.
    let second = location(owned, "bucket", two.id);
    let event = location_audit(owned, &second, AuditAction::Create);
    assert_eq!(
        repos.locations.create(&second, &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(
        names(&list(&repos, owned.team, LocationFilter::default()).await),
        ["bucket"]
    );
    assert_eq!(repos.locations.get(owned.team, first.id).await, Ok(first));
}

/// Names are unique per team, not across teams.
async fn create_same_name_in_other_team_is_allowed(repos: RepoSet) {
    let a = team(&repos).await;
    let b = team(&repos).await;
    let sa = stored_secret(&repos, a, "s").await;
    let sb = stored_secret(&repos, b, "s").await;
    stored_location(&repos, a, "bucket", sa.id).await;
    let theirs = stored_location(&repos, b, "bucket", sb.id).await;
    assert_eq!(repos.locations.get(b.team, theirs.id).await, Ok(theirs));
}

/// `NotFound` when absent or in another team.
async fn get_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let mine = stored_location(&repos, owned, "mine", secret.id).await;
    assert_eq!(repos.locations.get(other.team, mine.id).await, Err(RepoError::NotFound));
    assert_eq!(
        repos
            .locations
            .get(owned.team, LocationId::from_uuid(Uuid::now_v7()))
            .await,
        Err(RepoError::NotFound)
    );
}

/// The list holds the team's locations only, ordered by name.
async fn list_orders_by_name_and_is_team_scoped(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let theirs = stored_secret(&repos, other, "s").await;
    for n in ["gamma", "alpha", "delta", "beta"] {
        stored_location(&repos, owned, n, secret.id).await;
    }
    stored_location(&repos, other, "aaa", theirs.id).await;
    let page = repos
        .locations
        .list(owned.team, &LocationFilter::default(), ALL)
        .await
        .expect("listed");
    assert_eq!(names(&page.items), ["alpha", "beta", "delta", "gamma"]);
    assert_eq!(page.total, 4);
}

/// `secret_id` and `location_type` filter the list, alone and together.
async fn list_filters_by_secret_and_type(repos: RepoSet) {
    let owned = team(&repos).await;
    let s3a = stored_secret(&repos, owned, "s3-a").await;
    let s3b = stored_secret(&repos, owned, "s3-b").await;
    let azure = azure_secret(&repos, owned, "azure").await;
    stored_location(&repos, owned, "a1", s3a.id).await;
    stored_location(&repos, owned, "a2", s3a.id).await;
    stored_location(&repos, owned, "b1", s3b.id).await;
    let container = Location {
        location_type: SecretType::AzureBlob,
        ..location(owned, "c1", azure.id)
    };
    let event = location_audit(owned, &container, AuditAction::Create);
    repos.locations.create(&container, &event).await.expect("created");

    let by_secret = LocationFilter {
        secret_id: Some(s3a.id),
        ..LocationFilter::default()
    };
    assert_eq!(names(&list(&repos, owned.team, by_secret).await), ["a1", "a2"]);
    let by_type = LocationFilter {
        location_type: Some(SecretType::S3),
        ..LocationFilter::default()
    };
    assert_eq!(names(&list(&repos, owned.team, by_type).await), ["a1", "a2", "b1"]);
    let azure_only = LocationFilter {
        location_type: Some(SecretType::AzureBlob),
        ..LocationFilter::default()
    };
    assert_eq!(names(&list(&repos, owned.team, azure_only).await), ["c1"]);
    let both = LocationFilter {
        secret_id: Some(s3b.id),
        location_type: Some(SecretType::S3),
    };
    assert_eq!(names(&list(&repos, owned.team, both).await), ["b1"]);
    let none = LocationFilter {
        secret_id: Some(s3b.id),
        location_type: Some(SecretType::AzureBlob),
    };
    assert!(list(&repos, owned.team, none).await.is_empty());
}

/// `limit`/`offset` select a page; `total` counts every match of the filter.
async fn list_pages_with_the_total_of_matches(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let other_secret = stored_secret(&repos, owned, "t").await;
    for i in 0..5 {
        stored_location(&repos, owned, &format!("loc-{i}"), secret.id).await;
    }
    stored_location(&repos, owned, "elsewhere", other_secret.id).await;
    let filter = LocationFilter {
        secret_id: Some(secret.id),
        ..LocationFilter::default()
    };
    let page = repos
        .locations
        .list(owned.team, &filter, Page { limit: 2, offset: 2 })
        .await
        .expect("listed");
    assert_eq!(names(&page.items), ["loc-2", "loc-3"]);
    assert_eq!(page.total, 5);
    let all = repos
        .locations
        .list(owned.team, &LocationFilter::default(), Page { limit: 4, offset: 4 })
        .await
        .expect("listed");
    assert_eq!(names(&all.items), ["loc-3", "loc-4"]);
    assert_eq!(all.total, 6);
}

/// The locations using a secret, with id, type and name, ordered by name; only that
/// secret's, only in that team.
async fn linked_to_secret_gives_type_and_name_ordered_by_name(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let unrelated = stored_secret(&repos, owned, "u").await;
    let zulu = stored_location(&repos, owned, "zulu", secret.id).await;
    let alpha = stored_location(&repos, owned, "alpha", secret.id).await;
    stored_location(&repos, owned, "mike", unrelated.id).await;
    assert_eq!(
        repos.locations.linked_to_secret(owned.team, secret.id).await,
        Ok(vec![
            LinkedLocation {
                id: alpha.id,
                name: "alpha".into(),
                location_type: SecretType::S3,
            },
            LinkedLocation {
                id: zulu.id,
                name: "zulu".into(),
                location_type: SecretType::S3,
            },
        ])
    );
    assert_eq!(
        repos.locations.linked_to_secret(other.team, secret.id).await,
        Ok(vec![])
    );
    assert_eq!(
        repos.locations.linked_to_secret(owned.team, absent_secret()).await,
        Ok(vec![])
    );
}

/// A secret read with its locations: the secret as `get` gives it and the locations as
/// `linked_to_secret` gives them (none for a secret no location uses); `NotFound` for a
/// secret that is absent or in another team.
async fn a_secret_is_read_with_the_locations_that_use_it(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let unused = stored_secret(&repos, owned, "u").await;
    stored_location(&repos, owned, "zulu", secret.id).await;
    stored_location(&repos, owned, "alpha", secret.id).await;
    stored_location(&repos, owned, "mike", secret.id).await;
    let (read, linked) = repos
        .secrets
        .get_with_locations(owned.team, secret.id)
        .await
        .expect("the secret and its locations");
    assert_eq!(
        read,
        repos.secrets.get(owned.team, secret.id).await.expect("the secret")
    );
    assert_eq!(
        linked,
        repos
            .locations
            .linked_to_secret(owned.team, secret.id)
            .await
            .expect("its locations")
    );
    let names: Vec<&str> = linked.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["alpha", "mike", "zulu"]);
    assert_eq!(
        repos.secrets.get_with_locations(owned.team, unused.id).await,
        Ok((
            repos
                .secrets
                .get(owned.team, unused.id)
                .await
                .expect("the unused secret"),
            vec![]
        ))
    );
    assert_eq!(
        repos.secrets.get_with_locations(other.team, secret.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos.secrets.get_with_locations(owned.team, absent_secret()).await,
        Err(RepoError::NotFound)
    );
}

/// Every mutable field is replaced, the secret included; id, team and creation stay.
async fn update_replaces_every_mutable_field(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s3").await;
    let azure = azure_secret(&repos, owned, "azure").await;
    let before = stored_location(&repos, owned, "before", secret.id).await;
    let editor = user(&repos).await;
    let after = Location {
        name: name("after"),
        description: Some(description("moved to azure")),
        location_type: SecretType::AzureBlob,
        bucket_name: BucketName::parse_at("bucket_name", "container-1").expect("bucket"),
        region: Some(Region::parse_at("region", "westeurope").expect("region")),
        endpoint_url: Some(EndpointUrl::parse_at("endpoint_url", "https://acct.blob.core.windows.net").expect("url")),
        secret_id: azure.id,
        updated_at: at(200),
        updated_by: editor.into(),
        ..before.clone()
    };
    let event = location_audit(owned, &before, AuditAction::Update);
    repos.locations.update(&after, &event).await.expect("updated");
    assert_eq!(repos.locations.get(owned.team, before.id).await, Ok(after.clone()));
    assert!(has_event(&repos, owned.team, &event).await);
    assert_eq!(
        repos.locations.linked_to_secret(owned.team, secret.id).await,
        Ok(vec![])
    );

    // Optional fields can be cleared again.
    let cleared = Location {
        description: None,
        region: None,
        endpoint_url: None,
        ..after
    };
    let event = location_audit(owned, &before, AuditAction::Update);
    repos.locations.update(&cleared, &event).await.expect("updated");
    assert_eq!(repos.locations.get(owned.team, before.id).await, Ok(cleared));
}

/// `NotFound` when the location is absent or in another team.
async fn update_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let theirs = stored_secret(&repos, other, "s").await;
    let mine = stored_location(&repos, owned, "mine", secret.id).await;
    let hijack = Location {
        team_id: other.team,
        secret_id: theirs.id,
        name: name("hijacked"),
        ..mine.clone()
    };
    let event = location_audit(other, &mine, AuditAction::Update);
    assert_eq!(repos.locations.update(&hijack, &event).await, Err(RepoError::NotFound));
    assert_eq!(repos.locations.get(owned.team, mine.id).await, Ok(mine));
    assert!(!has_event(&repos, other.team, &event).await);

    let absent = location(owned, "absent", secret.id);
    let event = location_audit(owned, &absent, AuditAction::Update);
    assert_eq!(repos.locations.update(&absent, &event).await, Err(RepoError::NotFound));
}

/// `NotFound` when the new secret does not exist in the team; nothing changes.
async fn update_to_a_secret_outside_the_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let foreign = stored_secret(&repos, other, "theirs").await;
    let mine = stored_location(&repos, owned, "mine", secret.id).await;
    for target in [absent_secret(), foreign.id] {
        let moved = Location {
            secret_id: target,
            ..mine.clone()
        };
        let event = location_audit(owned, &mine, AuditAction::Update);
        assert_eq!(repos.locations.update(&moved, &event).await, Err(RepoError::NotFound));
        assert!(!has_event(&repos, owned.team, &event).await);
    }
    assert_eq!(repos.locations.get(owned.team, mine.id).await, Ok(mine));
}

/// `Conflict(DuplicateName)` when renaming to a name another location of the team has;
/// keeping one's own name is fine.
async fn update_to_a_taken_name_conflicts(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    stored_location(&repos, owned, "taken", secret.id).await;
    let mine = stored_location(&repos, owned, "mine", secret.id).await;
    let renamed = Location {
        name: name("taken"),
        ..mine.clone()
    };
    let event = location_audit(owned, &mine, AuditAction::Update);
    assert_eq!(
        repos.locations.update(&renamed, &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(repos.locations.get(owned.team, mine.id).await, Ok(mine.clone()));
    let same = Location {
        bucket_name: BucketName::parse_at("bucket_name", "other-bucket").expect("bucket"),
        ..mine.clone()
    };
    repos.locations.update(&same, &event).await.expect("own name is fine");
    assert_eq!(repos.locations.get(owned.team, mine.id).await, Ok(same));
}

/// Delete removes the location, records its event, and frees its secret.
async fn delete_removes_it_and_records_its_event(repos: RepoSet) {
    let owned = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let doomed = stored_location(&repos, owned, "doomed", secret.id).await;
    let kept = stored_location(&repos, owned, "kept", secret.id).await;
    let event = location_audit(owned, &doomed, AuditAction::Delete);
    assert_eq!(repos.locations.delete(owned.team, doomed.id, &event).await, Ok(()));
    assert_eq!(
        repos.locations.get(owned.team, doomed.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.locations.get(owned.team, kept.id).await, Ok(kept));
    assert!(has_event(&repos, owned.team, &event).await);
    let again = location_audit(owned, &doomed, AuditAction::Delete);
    assert_eq!(
        repos.locations.delete(owned.team, doomed.id, &again).await,
        Err(RepoError::NotFound)
    );
}

/// `NotFound` when absent or in another team; the location stays.
async fn delete_absent_or_in_other_team_is_not_found(repos: RepoSet) {
    let owned = team(&repos).await;
    let other = team(&repos).await;
    let secret = stored_secret(&repos, owned, "s").await;
    let mine = stored_location(&repos, owned, "mine", secret.id).await;
    let event = location_audit(other, &mine, AuditAction::Delete);
    assert_eq!(
        repos.locations.delete(other.team, mine.id, &event).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.locations.get(owned.team, mine.id).await, Ok(mine));
    assert!(!has_event(&repos, other.team, &event).await);
    assert_eq!(
        repos
            .locations
            .delete(owned.team, LocationId::from_uuid(Uuid::now_v7()), &event)
            .await,
        Err(RepoError::NotFound)
    );
}
