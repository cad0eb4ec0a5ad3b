//! Vault-connection use cases over mocked ports.

use custodian_domain::{Role, Tier, VaultType};
use custodian_ports::{ConflictKind, CredentialKind, MockVaultProvider, RepoError, StoreError, VaultError};
use mockall::Sequence;
use secrecy::ExposeSecret;

use super::*;
use crate::Requirement;
use crate::test_support::*;

const TOKEN: &str = "dp.st.prd.a-very-secret-token";

fn ctx() -> RequestContext {
    RequestContext::default()
}

fn doppler_input() -> VaultConnectionInput {
    VaultConnectionInput {
        name: Some("doppler".into()),
        vault_type: Some("doppler".into()),
        access_token: Some(SecretString::from(TOKEN)),
        project: Some("backend".into()),
        config: Some("prd".into()),
        ..VaultConnectionInput::default()
    }
}

fn admin(tier: Tier) -> Mocks {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin).team(team(tier));
    mocks
}

#[tokio::test]
async fn a_connections_secret_is_stored_then_the_row_committed_with_the_limit() {
    let mut mocks = admin(Tier::Free);
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_put()
        .withf(|key, version, value| {
            key.kind == CredentialKind::VaultConnection && *version == 1 && value.expose_secret() == TOKEN
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .vault_connections
        .expect_create()
        .withf(|connection, limit, audit| {
            connection.vault_type() == VaultType::Doppler
                && *limit == Some(1)
                && audit.resource_type == ResourceType::VaultConnection
                && !format!("{connection:?}{audit:?}").contains("very-secret")
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| {
            Err(RepoError::LimitExceeded {
                kind: LimitKind::VaultConnections,
                limit: 1,
            })
        });
    mocks
        .store
        .expect_delete_version()
        .withf(|key, version| key.kind == CredentialKind::VaultConnection && *version == 1)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let result = mocks
        .build()
        .create_vault_connection(&alice(), &ctx(), team_id(), doppler_input())
        .await;
    assert_eq!(
        result,
        Err(CoreError::LimitExceeded {
            kind: LimitKind::VaultConnections,
            limit: 1
        })
    );
}

/// A token the credential store refuses is reported at the field that carried it, and no
/// row is written (the mock has no `create` expectation).
#[tokio::test]
async fn a_token_the_store_refuses_is_a_validation_error_at_access_token() {
    let mut mocks = admin(Tier::Free);
    mocks
        .store
        .expect_put()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Rejected("larger than 8 KiB".into())));
    let result = mocks
        .build()
        .create_vault_connection(&alice(), &ctx(), team_id(), doppler_input())
        .await;
    let Err(CoreError::Validation(errors)) = result else {
        panic!("expected a validation error, got {result:?}");
    };
    assert!(errors.has(&["access_token"]), "{errors:?}");
    assert!(!errors.has(&["credentials"]), "{errors:?}");
}

#[tokio::test]
async fn an_operator_cannot_create_a_connection() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Operator);
    let result = mocks
        .build()
        .create_vault_connection(&alice(), &ctx(), team_id(), doppler_input())
        .await;
    assert_eq!(
        result,
        Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Admin)
        })
    );
}

#[tokio::test]
async fn a_rotation_stores_n_plus_1_and_commits_against_n() {
    // The first attempt loses to a rotation that commits version 4 meanwhile: its version 4
    // is removed again, and the second attempt writes 5 over the row now at 4.
    let mut mocks = admin(Tier::Pro);
    let mut seq = Sequence::new();
    let at = |version: i64| {
        let mut connection = doppler_connection();
        connection.secret_version = version;
        connection
    };
    mocks
        .vault_connections
        .expect_get()
        .times(1)
        .in_sequence(&mut seq)
        .return_once(move |_, _| Ok(at(3)));
    mocks
        .store
        .expect_put()
        .withf(|_, version, value| *version == 4 && value.expose_secret() == "dp.st.prd.rotated-token")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .vault_connections
        .expect_update()
        .withf(|connection, expected, audit| {
            connection.secret_version == 4 && *expected == 3 && audit.action == AuditAction::Rotate
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::Stale)));
    mocks
        .store
        .expect_delete_version()
        .withf(|_, version| *version == 4)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .vault_connections
        .expect_get()
        .times(1)
        .in_sequence(&mut seq)
        .return_once(move |_, _| Ok(at(4)));
    mocks
        .store
        .expect_put()
        .withf(|_, version, _| *version == 5)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .vault_connections
        .expect_update()
        .withf(|connection, expected, _| connection.secret_version == 5 && *expected == 4)
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
    let rotated = mocks
        .build()
        .rotate_vault_connection(
            &alice(),
            &ctx(),
            team_id(),
            vault_id(),
            VaultRotationInput {
                access_token: Some(SecretString::from("dp.st.prd.rotated-token")),
                ..VaultRotationInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rotated.secret_version, 5, "one more than the rotation that won");
}

#[tokio::test]
async fn a_rotation_with_the_wrong_fields_stores_nothing() {
    let mut mocks = admin(Tier::Pro);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    let result = mocks
        .build()
        .rotate_vault_connection(
            &alice(),
            &ctx(),
            team_id(),
            vault_id(),
            VaultRotationInput {
                client_id: Some("id".into()),
                client_secret: Some(SecretString::from("s")),
                ..VaultRotationInput::default()
            },
        )
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["access_token"])));
}

fn verify_mocks(provider: MockVaultProvider) -> Mocks {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Operator);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    mocks
        .store
        .expect_get()
        .withf(|key, version| key.kind == CredentialKind::VaultConnection && *version == 3)
        .returning(|_, _| Ok(SecretString::from(TOKEN)));
    mocks.vaults.push(provider);
    mocks
}

fn provider(result: Result<(), VaultError>) -> MockVaultProvider {
    let mut provider = MockVaultProvider::new();
    provider.expect_vault_type().return_const(VaultType::Doppler);
    provider
        .expect_verify()
        .withf(|access| access.secret.expose().expose_secret() == TOKEN)
        .times(1)
        .returning(move |_| result.clone());
    provider
}

#[tokio::test]
async fn a_successful_verification_sets_last_verified_at() {
    let mut mocks = verify_mocks(provider(Ok(())));
    mocks
        .vault_connections
        .expect_update()
        .withf(|connection, expected, audit| {
            connection.last_verified_at == Some(now())
                && *expected == 3
                && audit.action == AuditAction::Verify
                && audit.outcome == Outcome::Success
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let verification = mocks
        .build()
        .verify_vault_connection(&alice(), &ctx(), team_id(), vault_id())
        .await
        .unwrap();
    assert!(verification.verified);
}

#[tokio::test]
async fn a_refused_verification_is_answered_and_recorded() {
    let mut mocks = verify_mocks(provider(Err(VaultError::AuthFailed {
        provider: VaultType::Doppler,
    })));
    mocks
        .audit
        .expect_record()
        .withf(|event| event.outcome == Outcome::Failure && event.detail.as_deref() == Some("vault_auth_failed"))
        .times(1)
        .returning(|_| Ok(()));
    let verification = mocks
        .build()
        .verify_vault_connection(&alice(), &ctx(), team_id(), vault_id())
        .await
        .unwrap();
    assert!(!verification.verified);
    assert_eq!(verification.error.unwrap().code, "vault_auth_failed");
}

#[tokio::test]
async fn a_vault_type_without_a_provider_is_answered_as_unavailable() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Operator);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    mocks.store.expect_get().returning(|_, _| Ok(SecretString::from(TOKEN)));
    mocks
        .audit
        .expect_record()
        .withf(|event| event.outcome == Outcome::Failure && event.detail.as_deref() == Some("vault_unavailable"))
        .times(1)
        .returning(|_| Ok(()));
    let verification = mocks
        .build()
        .verify_vault_connection(&alice(), &ctx(), team_id(), vault_id())
        .await
        .unwrap();
    assert!(!verification.verified);
    let error = verification.error.unwrap();
    assert_eq!(error.code, "vault_unavailable");
    assert!(error.message.contains("doppler"), "{}", error.message);
}

#[tokio::test]
async fn delete_removes_the_row_then_the_stored_secret() {
    let mut mocks = admin(Tier::Pro);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    let mut seq = Sequence::new();
    mocks
        .vault_connections
        .expect_delete()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(doppler_connection()));
    mocks
        .store
        .expect_delete_all()
        .withf(|key| key.kind == CredentialKind::VaultConnection)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(StoreError::Internal("io".into())));
    mocks
        .cleanup
        .expect_record()
        .withf(|key, task, at| {
            key.kind == CredentialKind::VaultConnection
                && key.team_id == team_id()
                && key.record_id == vault_id().as_uuid()
                && *task == CleanupTask::DeleteAll
                && *at == now()
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    // The store failure is recorded for gc: the request succeeds.
    mocks
        .build()
        .delete_vault_connection(&alice(), &ctx(), team_id(), vault_id())
        .await
        .unwrap();
}

fn rotation_to(token: &str) -> VaultRotationInput {
    VaultRotationInput {
        access_token: Some(SecretString::from(token)),
        ..VaultRotationInput::default()
    }
}

#[tokio::test]
async fn a_committed_rotation_prunes_below_the_new_version() {
    let mut mocks = admin(Tier::Pro);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_put()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .vault_connections
        .expect_update()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .store
        .expect_prune()
        .withf(|key, keep| key.kind == CredentialKind::VaultConnection && *keep == 4)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    // A successful prune records nothing: the cleanup mock has no expectation.
    let rotated = mocks
        .build()
        .rotate_vault_connection(&alice(), &ctx(), team_id(), vault_id(), rotation_to("dp.st.prd.new"))
        .await
        .unwrap();
    assert_eq!(rotated.secret_version, 4);
}

#[tokio::test]
async fn a_failed_prune_after_a_rotation_is_recorded_for_gc() {
    let mut mocks = admin(Tier::Pro);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    mocks.store.expect_put().returning(|_, _, _| Ok(()));
    mocks.vault_connections.expect_update().returning(|_, _, _| Ok(()));
    let mut seq = Sequence::new();
    mocks
        .store
        .expect_prune()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(store_down()));
    mocks
        .cleanup
        .expect_record()
        .withf(|key, task, _| {
            key.kind == CredentialKind::VaultConnection
                && key.record_id == vault_id().as_uuid()
                && *task == CleanupTask::PruneBelow(4)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let rotated = mocks
        .build()
        .rotate_vault_connection(&alice(), &ctx(), team_id(), vault_id(), rotation_to("dp.st.prd.new"))
        .await
        .unwrap();
    assert_eq!(rotated.secret_version, 4);
}

#[tokio::test]
async fn a_connection_in_use_is_kept() {
    let mut mocks = admin(Tier::Pro);
    mocks
        .vault_connections
        .expect_get()
        .returning(|_, _| Ok(doppler_connection()));
    mocks
        .vault_connections
        .expect_delete()
        .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::VaultConnectionInUse)));
    assert_eq!(
        mocks
            .build()
            .delete_vault_connection(&alice(), &ctx(), team_id(), vault_id())
            .await,
        Err(CoreError::Conflict(ConflictKind::VaultConnectionInUse))
    );
}
