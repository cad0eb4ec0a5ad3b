//! Clean-up after a commit over the in-memory ports: a credential store that fails after
//! the commit leaves work in the clean-up queue, and `run_cleanup` (`custodian gc`) does it
//! once the store is back, even after the team itself is gone.

use custodian_core::{CleanupReport, Settings, VaultRotationInput};
use custodian_domain::{UpdateSecretInput, VaultConnectionInput};
use custodian_ports::{CleanupTask, CredentialKey, CredentialKind};
use secrecy::SecretString;

use crate::support::{World, ctx, s3_input};

fn new_secret_value(value: &str) -> UpdateSecretInput {
    UpdateSecretInput {
        credentials: Some(vec![
            ("access_key_id".into(), SecretString::from("AKIAEXAMPLE")),
            ("secret_access_key".into(), SecretString::from(value)),
        ]),
        ..UpdateSecretInput::default()
    }
}

#[tokio::test]
async fn removals_that_fail_after_their_commit_are_done_later_by_gc() {
    let world = World::new(Settings::default()).await;
    let team = world.team("data", "pro").await;
    let c = &world.custodian;
    let secret = c
        .create_secret(&world.admin, &ctx(), team.id, s3_input("landing", "first"))
        .await
        .unwrap();
    let connection = c
        .create_vault_connection(
            &world.admin,
            &ctx(),
            team.id,
            VaultConnectionInput {
                name: Some("doppler".into()),
                vault_type: Some("doppler".into()),
                access_token: Some(SecretString::from("dp.st.prd.first-token")),
                project: Some("backend".into()),
                config: Some("prd".into()),
                ..VaultConnectionInput::default()
            },
        )
        .await
        .unwrap();
    let secret_key = CredentialKey {
        team_id: team.id,
        kind: CredentialKind::StorageSecret,
        record_id: secret.id.as_uuid(),
    };
    let connection_key = CredentialKey {
        team_id: team.id,
        kind: CredentialKind::VaultConnection,
        record_id: connection.id.as_uuid(),
    };
    assert_eq!(world.store.len(), 2);

    // The store fails every removal from now on; the requests still succeed.
    world.flaky.fail_removals(true);
    for value in ["second", "third"] {
        c.update_secret(&world.admin, &ctx(), team.id, secret.id, new_secret_value(value))
            .await
            .unwrap();
    }
    assert_eq!(world.store.len(), 4, "versions 1 and 2 of the secret are still stored");
    assert_eq!(world.cleanup.task(&secret_key), Some(CleanupTask::PruneBelow(3)));

    world.clock.advance(chrono::Duration::minutes(1));
    c.rotate_vault_connection(
        &world.admin,
        &ctx(),
        team.id,
        connection.id,
        VaultRotationInput {
            access_token: Some(SecretString::from("dp.st.prd.second-token")),
            ..VaultRotationInput::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(world.cleanup.task(&connection_key), Some(CleanupTask::PruneBelow(2)));

    // gc while the store is still down: nothing is done, nothing is lost.
    assert_eq!(c.run_cleanup(100).await.unwrap(), CleanupReport { done: 0, failed: 2 });
    assert_eq!(world.cleanup.len(), 2);

    // Both records are deleted, and then their team: the queue does not need the team.
    c.delete_secret(&world.admin, &ctx(), team.id, secret.id).await.unwrap();
    c.delete_vault_connection(&world.admin, &ctx(), team.id, connection.id)
        .await
        .unwrap();
    assert_eq!(world.cleanup.task(&secret_key), Some(CleanupTask::DeleteAll));
    assert_eq!(world.cleanup.task(&connection_key), Some(CleanupTask::DeleteAll));
    c.delete_team(&world.admin, &ctx(), team.id).await.unwrap();
    assert_eq!(world.store.len(), 5, "every version is still stored");

    // The store is back: gc removes everything, oldest task first, a batch at a time.
    world.flaky.fail_removals(false);
    assert_eq!(c.run_cleanup(1).await.unwrap(), CleanupReport { done: 1, failed: 0 });
    assert_eq!(
        world.cleanup.task(&secret_key),
        None,
        "the secret's task was the oldest"
    );
    assert_eq!(world.store.len(), 2, "only the connection's two versions are left");
    assert_eq!(c.run_cleanup(100).await.unwrap(), CleanupReport { done: 1, failed: 0 });
    assert!(world.store.is_empty());
    assert!(world.cleanup.is_empty());
    assert_eq!(c.run_cleanup(100).await.unwrap(), CleanupReport::default());
}

#[tokio::test]
async fn a_store_that_works_leaves_nothing_for_gc() {
    let world = World::new(Settings::default()).await;
    let team = world.team("data", "pro").await;
    let c = &world.custodian;
    let secret = c
        .create_secret(&world.admin, &ctx(), team.id, s3_input("landing", "first"))
        .await
        .unwrap();
    c.update_secret(&world.admin, &ctx(), team.id, secret.id, new_secret_value("second"))
        .await
        .unwrap();
    c.delete_secret(&world.admin, &ctx(), team.id, secret.id).await.unwrap();
    assert!(world.store.is_empty());
    assert!(world.cleanup.is_empty());
    assert_eq!(c.run_cleanup(100).await.unwrap(), CleanupReport::default());
}
