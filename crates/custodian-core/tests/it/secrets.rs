//! Storage secrets over the in-memory store: what is left in the credential store after
//! each step.

use custodian_core::{CoreError, Settings};
use custodian_domain::{CredentialField, LimitKind, LocationInput, SecretType, UpdateSecretInput};
use custodian_ports::ConflictKind;
use secrecy::{ExposeSecret, SecretString};

use crate::support::{World, ctx, s3_input};

#[tokio::test]
async fn create_rotate_resolve_delete_leaves_nothing_behind() {
    let world = World::new(Settings::default()).await;
    let team = world.team("data", "pro").await;
    let c = &world.custodian;
    let secret = c
        .create_secret(&world.admin, &ctx(), team.id, s3_input("landing", "first-secret"))
        .await
        .unwrap();
    assert_eq!(world.store.len(), 1);

    let rotated = c
        .update_secret(
            &world.admin,
            &ctx(),
            team.id,
            secret.id,
            UpdateSecretInput {
                credentials: Some(vec![
                    ("access_key_id".into(), SecretString::from("AKIAEXAMPLE")),
                    ("secret_access_key".into(), SecretString::from("second-secret")),
                ]),
                ..UpdateSecretInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rotated.credentials_version, 2);
    assert_eq!(world.store.len(), 1, "the old version is pruned");
    let resolved = c.resolve(&world.admin, team.id, secret.id).await.unwrap();
    assert_eq!(
        resolved.get(CredentialField::SecretAccessKey).unwrap().expose_secret(),
        "second-secret"
    );

    c.delete_secret(&world.admin, &ctx(), team.id, secret.id).await.unwrap();
    assert!(world.store.is_empty());
    assert_eq!(
        c.get_secret(&world.admin, team.id, secret.id).await,
        Err(CoreError::NotFound)
    );
}

#[tokio::test]
async fn the_tier_limit_holds_and_a_refused_create_leaves_no_credentials() {
    let world = World::new(Settings::default()).await;
    let team = world.team("small", "free").await;
    for i in 0..5 {
        world
            .custodian
            .create_secret(&world.admin, &ctx(), team.id, s3_input(&format!("s{i}"), "v"))
            .await
            .unwrap();
    }
    let sixth = world
        .custodian
        .create_secret(&world.admin, &ctx(), team.id, s3_input("s5", "v"))
        .await;
    assert_eq!(
        sixth,
        Err(CoreError::LimitExceeded {
            kind: LimitKind::StorageSecrets,
            limit: 5
        })
    );
    assert_eq!(world.store.len(), 5);

    let duplicate = world
        .custodian
        .create_secret(&world.admin, &ctx(), team.id, s3_input("s0", "v"))
        .await;
    assert!(duplicate.is_err());
    assert_eq!(world.store.len(), 5);
}

#[tokio::test]
async fn a_secret_in_use_stays_and_its_type_follows_its_locations() {
    let world = World::new(Settings::default()).await;
    let team = world.team("data", "pro").await;
    let c = &world.custodian;
    let secret = c
        .create_secret(&world.admin, &ctx(), team.id, s3_input("landing", "v"))
        .await
        .unwrap();
    let view = c
        .create_location(
            &world.admin,
            &ctx(),
            team.id,
            LocationInput {
                name: Some("raw".into()),
                location_type: Some("s3".into()),
                bucket_name: Some("raw-data".into()),
                secret_id: Some(secret.id.to_string()),
                ..LocationInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(view.secret_name, "landing");

    assert_eq!(
        c.delete_secret(&world.admin, &ctx(), team.id, secret.id).await,
        Err(CoreError::Conflict(ConflictKind::SecretInUse))
    );
    assert_eq!(world.store.len(), 1);

    let change = c
        .update_secret(
            &world.admin,
            &ctx(),
            team.id,
            secret.id,
            UpdateSecretInput {
                secret_type: Some("r2".into()),
                auth_method: Some("r2_access_key".into()),
                ..UpdateSecretInput::default()
            },
        )
        .await;
    match change {
        Err(CoreError::LocationTypeMismatch { secret_type, locations }) => {
            assert_eq!(secret_type, SecretType::R2);
            assert_eq!(locations[0].id, view.location.id);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn another_teams_member_cannot_tell_a_secret_exists() {
    let world = World::new(Settings::default()).await;
    let ours = world.team("ours", "pro").await;
    let theirs = world.team("theirs", "pro").await;
    let c = &world.custodian;
    let secret = c
        .create_secret(&world.admin, &ctx(), ours.id, s3_input("landing", "v"))
        .await
        .unwrap();
    let (_, issued) = c
        .create_virtual_account(
            &world.admin,
            &ctx(),
            theirs.id,
            custodian_core::NewVirtualAccountInput {
                name: Some("worker".into()),
                role: Some("admin".into()),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let worker = c.authenticate(&issued.token).await.unwrap();
    assert_eq!(
        c.resolve(&worker, ours.id, secret.id).await.err(),
        Some(CoreError::NotFound)
    );
    assert_eq!(
        c.get_secret(&worker, ours.id, secret.id).await,
        Err(CoreError::NotFound)
    );
    // Asking for it through its own team finds nothing either.
    assert_eq!(
        c.get_secret(&worker, theirs.id, secret.id).await,
        Err(CoreError::NotFound)
    );
}

#[tokio::test]
async fn the_facade_is_shared_across_tasks() {
    let world = World::new(Settings::default()).await;
    let team = world.team("data", "pro").await;
    let secret = world
        .custodian
        .create_secret(&world.admin, &ctx(), team.id, s3_input("landing", "v"))
        .await
        .unwrap();
    // An embedding service clones the facade into its tasks: every use case's future is
    // `Send`, so it can run on any worker thread.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let custodian = world.custodian.clone();
        let admin = world.admin.clone();
        tasks.push(tokio::spawn(async move {
            custodian
                .resolve(&admin, team.id, secret.id)
                .await
                .map(|c| c.field_names())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), vec!["access_key_id", "secret_access_key"]);
    }
}
