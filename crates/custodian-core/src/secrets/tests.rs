//! Storage-secret use cases over mocked ports.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use custodian_domain::{LimitKind, RawFieldMapping, Role, SecretType, Tier};
use custodian_ports::{ConflictKind, CredentialKey, CredentialKind, RepoError, SealedCredential, StoreError};
use mockall::Sequence;
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::Requirement;
use crate::credential_writes::{MAX_VERSIONS_SKIPPED, STEP_OVER_FROM_ATTEMPT, WRITE_ATTEMPTS};
use crate::test_support::*;

const KEY_ID: &str = "AKIAEXAMPLEKEYID";
const SECRET: &str = "wJalrXUtnFEMI-very-secret-value";

fn ctx() -> RequestContext {
    RequestContext::default()
}

fn managed_input() -> CreateSecretInput {
    CreateSecretInput {
        name: Some("prod-s3".into()),
        secret_type: Some("s3".into()),
        auth_method: Some("s3_access_key".into()),
        credentials: Some(s3_credentials(KEY_ID, SECRET)),
        ..CreateSecretInput::default()
    }
}

fn external_input(vault: &str) -> CreateSecretInput {
    CreateSecretInput {
        name: Some("prod-s3".into()),
        secret_type: Some("s3".into()),
        auth_method: Some("s3_access_key".into()),
        vault_connection_id: Some(vault.into()),
        field_mappings: Some(vec![
            RawFieldMapping {
                field_name: "access_key_id".into(),
                reference: "S3_KEY_ID".into(),
            },
            RawFieldMapping {
                field_name: "secret_access_key".into(),
                reference: "S3_SECRET".into(),
            },
        ]),
        ..CreateSecretInput::default()
    }
}

fn admin_mocks(tier: Tier) -> Mocks {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin).team(team(tier));
    mocks
}

/// What the store is given for a create of [`managed_input`]: its credentials as version 1
/// of a storage secret of the team.
fn is_the_first_version_of_the_request(key: &CredentialKey, version: &i64, value: &SecretString) -> bool {
    key.kind == CredentialKind::StorageSecret
        && key.team_id == team_id()
        && *version == 1
        && value.expose_secret().contains(SECRET)
}

#[tokio::test]
async fn a_managed_secret_is_stored_as_version_1_then_committed_with_the_tier_limit() {
    let mut mocks = admin_mocks(Tier::Free);
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_put()
        .withf(is_the_first_version_of_the_request)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .secrets
        .expect_create()
        .withf(|secret, limit, audit| {
            secret.storage == SecretStorage::Managed
                && secret.credentials_version == 1
                && *limit == Some(5)
                && audit.action == AuditAction::Create
                && audit.resource_type == ResourceType::StorageSecret
                && audit.resource_id == Some(secret.id.as_uuid())
                && audit.detail.is_none()
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let secret = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), managed_input())
        .await
        .unwrap();
    assert_eq!(secret.name.as_str(), "prod-s3");
    assert_eq!(secret.created_by, alice_id().into());
    assert!(!format!("{secret:?}").contains(SECRET));
}

#[tokio::test]
async fn credentials_the_store_seals_for_the_row_are_written_in_its_transaction_without_a_put() {
    let mut mocks = admin_mocks(Tier::Free);
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_seal_for_commit()
        .withf(is_the_first_version_of_the_request)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|key, version, _| Ok(Some(SealedCredential::new(*key, version, 7_u8))));
    mocks
        .secrets
        .expect_create_with_credentials()
        .withf(|secret, limit, audit, sealed| {
            secret.storage == SecretStorage::Managed
                && *limit == Some(5)
                && audit.action == AuditAction::Create
                && audit.resource_id == Some(secret.id.as_uuid())
                && sealed.key().record_id == secret.id.as_uuid()
                && sealed.version() == 1
                && sealed.sealed::<u8>() == Some(&7)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _, _| Ok(()));
    // No put, no separate create, nothing to remove on failure.
    mocks.store.expect_put().never();
    mocks.secrets.expect_create().never();
    let secret = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), managed_input())
        .await
        .unwrap();
    assert_eq!(secret.credentials_version, 1);
}

#[tokio::test]
async fn a_failed_transaction_with_sealed_credentials_leaves_nothing_to_remove() {
    let mut mocks = admin_mocks(Tier::Free);
    mocks
        .store
        .expect_seal_for_commit()
        .times(1)
        .returning(|key, version, _| Ok(Some(SealedCredential::new(*key, version, ()))));
    mocks
        .secrets
        .expect_create_with_credentials()
        .times(1)
        .returning(|_, _, _, _| Err(RepoError::Conflict(ConflictKind::DuplicateName)));
    // The transaction wrote nothing: no version to delete, nothing for gc.
    mocks.store.expect_delete_version().never();
    mocks.cleanup.expect_record().never();
    let result = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), managed_input())
        .await;
    assert_eq!(
        result,
        Err(CoreError::from(RepoError::Conflict(ConflictKind::DuplicateName)))
    );
}

#[tokio::test]
async fn a_value_the_store_refuses_to_seal_is_a_validation_error_at_credentials() {
    let mut mocks = admin_mocks(Tier::Free);
    mocks
        .store
        .expect_seal_for_commit()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Rejected("too large".into())));
    mocks.secrets.expect_create_with_credentials().never();
    let result = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), managed_input())
        .await;
    let Err(CoreError::Validation(errors)) = result else {
        panic!("expected a validation error, got {result:?}");
    };
    assert!(format!("{errors:?}").contains("credentials"), "{errors:?}");
}

#[tokio::test]
async fn a_failed_commit_removes_the_written_version() {
    let failures = [
        RepoError::LimitExceeded {
            kind: LimitKind::StorageSecrets,
            limit: 5,
        },
        RepoError::Conflict(ConflictKind::DuplicateName),
        RepoError::Unavailable("connection reset".into()),
    ];
    for failure in failures {
        let expected = CoreError::from(failure.clone());
        let mut mocks = admin_mocks(Tier::Free);
        let mut seq = Sequence::new();
        mocks
            .store
            .expect_put()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        mocks
            .secrets
            .expect_create()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _| Err(failure.clone()));
        mocks
            .store
            .expect_delete_version()
            .withf(|key, version| key.kind == CredentialKind::StorageSecret && *version == 1)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        let result = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), managed_input())
            .await;
        assert_eq!(result, Err(expected));
    }
}

#[tokio::test]
async fn a_create_whose_commit_and_undo_both_fail_queues_its_credentials_for_gc() {
    let mut mocks = admin_mocks(Tier::Pro);
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_put()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .secrets
        .expect_create()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(RepoError::Unavailable("connection reset".into())));
    mocks
        .store
        .expect_delete_version()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(store_down()));
    mocks
        .cleanup
        .expect_record()
        .withf(|key, task, _| key.kind == CredentialKind::StorageSecret && *task == CleanupTask::DeleteAll)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let result = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), managed_input())
        .await;
    assert!(matches!(result, Err(CoreError::Unavailable { .. })), "{result:?}");
}

#[tokio::test]
async fn a_failed_put_commits_nothing() {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks.store.expect_put().times(1).returning(|_, _, _| Err(store_down()));
    // No expectation on secrets.create or delete_version: reaching them panics.
    let result = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), managed_input())
        .await;
    assert!(matches!(
        result,
        Err(CoreError::Unavailable {
            what: "the credential store",
            ..
        })
    ));
}

#[tokio::test]
async fn too_low_a_role_writes_nothing() {
    for role in [Role::Viewer, Role::Operator] {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), role);
        let result = mocks
            .build()
            .create_secret(&alice(), &ctx(), team_id(), managed_input())
            .await;
        assert_eq!(
            result,
            Err(CoreError::Forbidden {
                needed: Requirement::Role(Role::Admin)
            })
        );
    }
    let mut mocks = Mocks::new();
    mocks.stranger(alice_id());
    let result = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), managed_input())
        .await;
    assert_eq!(result, Err(CoreError::NotFound));
}

#[tokio::test]
async fn a_tenant_admin_finds_no_secret_in_a_team_that_does_not_exist() {
    // The secret's lookup by team and id answers for the missing team: no read of the team.
    let mut mocks = Mocks::new();
    mocks.teams.expect_get().never();
    mocks
        .secrets
        .expect_get_with_locations()
        .withf(|team, id| *team == team_id() && *id == secret_id())
        .times(1)
        .returning(|_, _| Err(RepoError::NotFound));
    let result = mocks.build().get_secret(&root(), team_id(), secret_id()).await;
    assert_eq!(result, Err(CoreError::NotFound));
}

#[tokio::test]
async fn a_tenant_admin_cannot_create_a_secret_in_a_team_that_does_not_exist() {
    // The read of the team for its tier answers 404; nothing is stored or committed.
    let mut mocks = Mocks::new();
    mocks
        .teams
        .expect_get()
        .withf(|team| *team == team_id())
        .times(1)
        .returning(|_| Err(RepoError::NotFound));
    mocks.store.expect_put().never();
    mocks.secrets.expect_create().never();
    let result = mocks
        .build()
        .create_secret(&root(), &ctx(), team_id(), managed_input())
        .await;
    assert_eq!(result, Err(CoreError::NotFound));
}

#[tokio::test]
async fn invalid_credentials_are_refused_before_the_store_and_never_shown() {
    let mocks = admin_mocks(Tier::Pro);
    let mut input = managed_input();
    input.credentials = Some(s3_credentials(KEY_ID, " wJalrXUtnFEMI-very-secret-value"));
    let error = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), input)
        .await
        .unwrap_err();
    assert!(matches!(&error, CoreError::Validation(e) if e.has(&["credentials", "secret_access_key"])));
    let shown = format!("{error:?} {error}");
    assert!(!shown.contains("very-secret"), "{shown}");
}

#[tokio::test]
async fn an_external_secret_needs_a_vault_connection_of_the_team() {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Err(RepoError::NotFound));
    let result = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), external_input(&vault_id().to_string()))
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["vault_connection_id"])));

    let mut mocks = admin_mocks(Tier::Pro);
    mocks
        .vault_connections
        .expect_get()
        .withf(|team, id| *team == team_id() && *id == vault_id())
        .returning(|_, _| Ok(doppler_connection()));
    mocks
        .secrets
        .expect_create()
        .withf(|secret, limit, _| {
            matches!(&secret.storage, SecretStorage::External { vault_connection_id, field_mappings }
                if *vault_connection_id == vault_id() && field_mappings.as_slice().len() == 2)
                && *limit == Some(100)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let secret = mocks
        .build()
        .create_secret(&alice(), &ctx(), team_id(), external_input(&vault_id().to_string()))
        .await
        .unwrap();
    assert_eq!(secret.storage.mode(), custodian_domain::StorageMode::External);
}

fn rotation() -> UpdateSecretInput {
    UpdateSecretInput {
        credentials: Some(s3_credentials(KEY_ID, "the-new-secret-value")),
        ..UpdateSecretInput::default()
    }
}

fn update_mocks(current: StorageSecret) -> Mocks {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks.secret_in_use(current, Vec::new());
    mocks
}

#[tokio::test]
async fn a_rotation_writes_n_plus_1_commits_against_n_then_prunes() {
    let mut mocks = update_mocks(managed_secret(4));
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_put()
        .withf(|_, version, value| *version == 5 && value.expose_secret().contains("the-new-secret-value"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .secrets
        .expect_update()
        .withf(|secret, expected, audit| {
            secret.credentials_version == 5 && *expected == 4 && audit.action == AuditAction::Rotate
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .store
        .expect_prune()
        .withf(|_, keep| *keep == 5)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let updated = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await
        .unwrap();
    assert_eq!(updated.credentials_version, 5);
    assert_eq!(updated.updated_by, alice_id().into());
}

/// A taken next version is first taken for a concurrent rotation about to commit (the row
/// is read again after a backoff); once that cannot be, for a version a failed rotation
/// left behind, which is stepped over and pruned with the rest.
#[tokio::test]
async fn a_rotation_steps_over_a_version_left_behind_and_prunes_it_with_the_rest() {
    let mut mocks = update_mocks(managed_secret(4));
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_put()
        .withf(|_, version, _| *version == 5)
        .times(STEP_OVER_FROM_ATTEMPT as usize + 1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(StoreError::AlreadyExists));
    mocks
        .store
        .expect_put()
        .withf(|_, version, _| *version == 6)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .secrets
        .expect_update()
        .withf(|next, expected, _| next.credentials_version == 6 && *expected == 4)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .store
        .expect_prune()
        .withf(|_, keep| *keep == 6)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let updated = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await
        .unwrap();
    assert_eq!(updated.credentials_version, 6);
}

#[tokio::test]
async fn a_rotation_gives_up_after_a_bounded_number_of_taken_versions() {
    let mut mocks = update_mocks(managed_secret(4));
    let stepping_attempts = (WRITE_ATTEMPTS - STEP_OVER_FROM_ATTEMPT) as usize;
    mocks
        .store
        .expect_put()
        .times(STEP_OVER_FROM_ATTEMPT as usize + stepping_attempts * MAX_VERSIONS_SKIPPED as usize)
        .returning(|_, _, _| Err(StoreError::AlreadyExists));
    // No expectation on secrets.update: reaching it panics.
    let result = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await;
    assert_eq!(result, Err(CoreError::Conflict(ConflictKind::Stale)));
}

/// Last writer wins: a rotation whose commit loses to another one removes its version and
/// is made again over the row the winner left, so versions count committed rotations.
#[tokio::test]
async fn a_rotation_that_loses_a_race_is_made_again_over_the_winner() {
    let mut mocks = admin_mocks(Tier::Pro);
    let mut seq = Sequence::new();
    mocks
        .secrets
        .expect_get_with_locations()
        .times(1)
        .in_sequence(&mut seq)
        .return_once(|_, _| Ok((managed_secret(4), Vec::new())));
    mocks
        .store
        .expect_put()
        .withf(|_, version, _| *version == 5)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .secrets
        .expect_update()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::Stale)));
    mocks
        .store
        .expect_delete_version()
        .withf(|_, version| *version == 5)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .secrets
        .expect_get_with_locations()
        .times(1)
        .in_sequence(&mut seq)
        .return_once(|_, _| Ok((managed_secret(5), Vec::new())));
    mocks
        .store
        .expect_put()
        .withf(|_, version, _| *version == 6)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .secrets
        .expect_update()
        .withf(|next, expected, _| next.credentials_version == 6 && *expected == 5)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .store
        .expect_prune()
        .withf(|_, keep| *keep == 6)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let updated = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await
        .unwrap();
    assert_eq!(updated.credentials_version, 6);
}

#[tokio::test]
async fn a_rotation_whose_commit_fails_removes_the_new_version_and_prunes_nothing() {
    let mut mocks = update_mocks(managed_secret(4));
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_put()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .secrets
        .expect_update()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(RepoError::Unavailable("the database is down".into())));
    mocks
        .store
        .expect_delete_version()
        .withf(|_, version| *version == 5)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let result = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await;
    assert!(matches!(result, Err(CoreError::Unavailable { .. })), "{result:?}");
}

#[tokio::test]
async fn a_rotation_whose_put_fails_commits_nothing() {
    let mut mocks = update_mocks(managed_secret(4));
    mocks
        .store
        .expect_put()
        .returning(|_, _, _| Err(StoreError::Rejected("value over 8 KiB".into())));
    let result = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["credentials"])));
}

#[tokio::test]
async fn a_failed_prune_is_recorded_for_gc_and_does_not_fail_the_rotation() {
    let mut mocks = update_mocks(managed_secret(1));
    let mut seq = Sequence::new();
    mocks.store.expect_put().returning(|_, _, _| Ok(()));
    mocks.secrets.expect_update().returning(|_, _, _| Ok(()));
    mocks
        .store
        .expect_prune()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(StoreError::Internal("io".into())));
    mocks
        .cleanup
        .expect_record()
        .withf(|key, task, at| {
            key.kind == CredentialKind::StorageSecret
                && key.team_id == team_id()
                && key.record_id == secret_id().as_uuid()
                && *task == CleanupTask::PruneBelow(2)
                && *at == now()
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let updated = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await
        .unwrap();
    assert_eq!(updated.credentials_version, 2);
}

#[tokio::test]
async fn a_rotation_still_succeeds_when_neither_prune_nor_its_record_works() {
    let mut mocks = update_mocks(managed_secret(1));
    mocks.store.expect_put().returning(|_, _, _| Ok(()));
    mocks.secrets.expect_update().returning(|_, _, _| Ok(()));
    mocks
        .store
        .expect_prune()
        .times(1)
        .returning(|_, _| Err(StoreError::Internal("io".into())));
    mocks
        .cleanup
        .expect_record()
        .times(1)
        .returning(|_, _, _| Err(RepoError::Unavailable("timeout".into())));
    let updated = mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), rotation())
        .await
        .unwrap();
    assert_eq!(updated.credentials_version, 2);
}

#[tokio::test]
async fn a_rename_touches_no_credentials() {
    let mut mocks = update_mocks(managed_secret(3));
    mocks
        .secrets
        .expect_update()
        .withf(|secret, expected, audit| {
            secret.name.as_str() == "renamed"
                && secret.credentials_version == 3
                && *expected == 3
                && audit.action == AuditAction::Update
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let input = UpdateSecretInput {
        name: Some("renamed".into()),
        ..UpdateSecretInput::default()
    };
    mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), input)
        .await
        .unwrap();
}

#[tokio::test]
async fn changing_the_type_under_linked_locations_is_a_location_type_mismatch() {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks.secret_in_use(
        managed_secret(1),
        vec![LinkedLocation {
            id: location_id(),
            name: "raw-bucket".into(),
            location_type: SecretType::S3,
        }],
    );
    let input = UpdateSecretInput {
        secret_type: Some("r2".into()),
        auth_method: Some("r2_access_key".into()),
        ..UpdateSecretInput::default()
    };
    match mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), input)
        .await
    {
        Err(CoreError::LocationTypeMismatch { secret_type, locations }) => {
            assert_eq!(secret_type, SecretType::R2);
            assert_eq!(locations.len(), 1);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn new_field_mappings_bump_an_external_secrets_version_without_the_store() {
    let mut mocks = update_mocks(external_secret());
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    mocks
        .secrets
        .expect_update()
        .withf(|secret, expected, _| {
            let SecretStorage::External { field_mappings, .. } = &secret.storage else {
                return false;
            };
            secret.credentials_version == 2
                && *expected == 1
                && field_mappings.as_slice()[0].reference.as_str() == "NEW_KEY_ID"
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let input = UpdateSecretInput {
        field_mappings: Some(vec![
            RawFieldMapping {
                field_name: "access_key_id".into(),
                reference: "NEW_KEY_ID".into(),
            },
            RawFieldMapping {
                field_name: "secret_access_key".into(),
                reference: "NEW_SECRET".into(),
            },
        ]),
        ..UpdateSecretInput::default()
    };
    mocks
        .build()
        .update_secret(&alice(), &ctx(), team_id(), secret_id(), input)
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_commits_the_removal_then_deletes_every_version() {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks.secret(managed_secret(2));
    let mut seq = Sequence::new();
    mocks
        .secrets
        .expect_delete()
        .withf(|_, _, audit| audit.action == AuditAction::Delete)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(managed_secret(2)));
    mocks
        .store
        .expect_delete_all()
        .withf(|key| key.record_id == secret_id().as_uuid())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    // Nothing is recorded for gc: the cleanup mock has no expectation.
    mocks
        .build()
        .delete_secret(&alice(), &ctx(), team_id(), secret_id())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_removal_after_delete_is_recorded_for_gc_and_the_delete_succeeds() {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks.secret(managed_secret(2));
    let mut seq = Sequence::new();
    mocks
        .secrets
        .expect_delete()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(managed_secret(2)));
    mocks
        .store
        .expect_delete_all()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(store_down()));
    mocks
        .cleanup
        .expect_record()
        .withf(|key, task, _| {
            key.kind == CredentialKind::StorageSecret
                && key.record_id == secret_id().as_uuid()
                && *task == CleanupTask::DeleteAll
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .build()
        .delete_secret(&alice(), &ctx(), team_id(), secret_id())
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_an_external_secret_touches_neither_store_nor_queue() {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks.secret(external_secret());
    mocks
        .secrets
        .expect_delete()
        .times(1)
        .returning(|_, _, _| Ok(external_secret()));
    mocks
        .build()
        .delete_secret(&alice(), &ctx(), team_id(), secret_id())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_secret_in_use_keeps_its_credentials() {
    let mut mocks = admin_mocks(Tier::Pro);
    mocks.secret(managed_secret(2));
    mocks
        .secrets
        .expect_delete()
        .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::SecretInUse)));
    assert_eq!(
        mocks
            .build()
            .delete_secret(&alice(), &ctx(), team_id(), secret_id())
            .await,
        Err(CoreError::Conflict(ConflictKind::SecretInUse))
    );
}

#[tokio::test]
async fn details_show_the_locations_and_the_vault_connection() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Viewer);
    mocks.secrets.expect_get_with_locations().returning(|_, _| {
        Ok((
            external_secret(),
            vec![LinkedLocation {
                id: location_id(),
                name: "raw-bucket".into(),
                location_type: SecretType::S3,
            }],
        ))
    });
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    let details = mocks
        .build()
        .get_secret(&alice(), team_id(), secret_id())
        .await
        .unwrap();
    assert_eq!(details.locations.len(), 1);
    assert_eq!(details.vault_connection.unwrap().id, vault_id());
}

/// A team whose tier is answered by a shared cell, read by the test: the reads of it and
/// what it answers.
fn tier_read_from(mocks: &mut Mocks, tier: Arc<Mutex<Tier>>) -> Arc<AtomicUsize> {
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = reads.clone();
    mocks
        .teams
        .expect_get()
        .withf(|id| *id == team_id())
        .returning(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(team(*tier.lock().unwrap()))
        });
    reads
}

/// The limits creates were given, in turn.
fn limits_given(mocks: &mut Mocks) -> Arc<Mutex<Vec<Option<u32>>>> {
    let limits = Arc::new(Mutex::new(Vec::new()));
    let given = limits.clone();
    mocks.store.expect_put().returning(|_, _, _| Ok(()));
    mocks.secrets.expect_create().returning(move |_, limit, _| {
        given.lock().unwrap().push(limit);
        Ok(())
    });
    limits
}

fn named(name: &str) -> CreateSecretInput {
    CreateSecretInput {
        name: Some(name.into()),
        ..managed_input()
    }
}

#[tokio::test]
async fn a_teams_tier_is_read_once_while_remembered_and_again_after_it_changed_here() {
    let mut mocks = Mocks::new();
    let tier = Arc::new(Mutex::new(Tier::Free));
    let reads = tier_read_from(&mut mocks, tier.clone());
    let limits = limits_given(&mut mocks);
    mocks.teams.expect_update().returning(|_, _| Ok(()));
    let custodian = mocks.build();
    for name in ["first", "second"] {
        custodian
            .create_secret(&root(), &ctx(), team_id(), named(name))
            .await
            .expect("created");
    }
    assert_eq!(reads.load(Ordering::SeqCst), 1, "remembered");

    // The tenant admin moves the team to Pro through this process: forgotten at once.
    let to_pro = custodian_domain::TeamPatchInput {
        tier: Some("pro".into()),
        ..Default::default()
    };
    custodian
        .update_team(&root(), &ctx(), team_id(), to_pro)
        .await
        .expect("updated");
    *tier.lock().unwrap() = Tier::Pro;
    custodian
        .create_secret(&root(), &ctx(), team_id(), named("third"))
        .await
        .expect("created");
    assert_eq!(*limits.lock().unwrap(), [Some(5), Some(5), Some(100)]);

    // A rename keeps what is remembered.
    let before = reads.load(Ordering::SeqCst);
    let rename = custodian_domain::TeamPatchInput {
        name: Some("renamed".into()),
        ..Default::default()
    };
    custodian
        .update_team(&root(), &ctx(), team_id(), rename)
        .await
        .expect("renamed");
    custodian
        .create_secret(&root(), &ctx(), team_id(), named("fourth"))
        .await
        .expect("created");
    assert_eq!(
        reads.load(Ordering::SeqCst),
        before + 2,
        "only the rename's own reads of the team (its authorization and its update)"
    );
}

#[tokio::test]
async fn a_tier_changed_through_another_server_is_read_again_once_the_epoch_moved() {
    let mut mocks = Mocks::new();
    mocks.settings.subject_cache.epoch_check_interval = std::time::Duration::ZERO;
    let epoch = Arc::new(AtomicU64::new(1));
    let seen = epoch.clone();
    mocks
        .tokens
        .expect_identity_epoch()
        .returning(move || Ok(seen.load(Ordering::SeqCst)));
    let tier = Arc::new(Mutex::new(Tier::Free));
    let reads = tier_read_from(&mut mocks, tier.clone());
    let limits = limits_given(&mut mocks);
    let custodian = mocks.build();
    custodian
        .create_secret(&root(), &ctx(), team_id(), named("first"))
        .await
        .expect("created");
    *tier.lock().unwrap() = Tier::Enterprise;
    custodian
        .create_secret(&root(), &ctx(), team_id(), named("second"))
        .await
        .expect("created");
    epoch.store(2, Ordering::SeqCst);
    custodian
        .create_secret(&root(), &ctx(), team_id(), named("third"))
        .await
        .expect("created");
    assert_eq!(reads.load(Ordering::SeqCst), 2);
    assert_eq!(
        *limits.lock().unwrap(),
        [Some(5), Some(5), None],
        "the remembered tier until the epoch moved"
    );
}

#[tokio::test]
async fn a_tier_is_read_at_every_create_when_nothing_is_remembered() {
    let mut mocks = Mocks::new();
    mocks.settings.subject_cache.ttl = std::time::Duration::ZERO;
    let reads = tier_read_from(&mut mocks, Arc::new(Mutex::new(Tier::Pro)));
    let _limits = limits_given(&mut mocks);
    let custodian = mocks.build();
    for name in ["first", "second"] {
        custodian
            .create_secret(&root(), &ctx(), team_id(), named(name))
            .await
            .expect("created");
    }
    assert_eq!(reads.load(Ordering::SeqCst), 2);
}
