//! How port errors become core errors, and what their messages say.

use chrono::Utc;
use custodian_domain::{AuthMethod, Credentials, VaultType};
use secrecy::SecretString;

use super::*;

#[test]
fn every_repo_error_maps_to_its_core_error() {
    assert_eq!(CoreError::from(RepoError::NotFound), CoreError::NotFound);
    assert_eq!(
        CoreError::from(RepoError::Conflict(ConflictKind::LastOwner)),
        CoreError::Conflict(ConflictKind::LastOwner)
    );
    assert_eq!(
        CoreError::from(RepoError::LimitExceeded {
            kind: LimitKind::Members,
            limit: 1
        }),
        CoreError::LimitExceeded {
            kind: LimitKind::Members,
            limit: 1
        }
    );
    assert!(matches!(
        CoreError::from(RepoError::Unavailable("timeout".into())),
        CoreError::Unavailable {
            what: "the database",
            ..
        }
    ));
    assert!(matches!(
        CoreError::from(RepoError::Internal("bad row".into())),
        CoreError::Internal { cause: Some(c), .. } if c.to_string().contains("bad row")
    ));
    // The cause is kept for the log: the chain names what the adapter reported.
    let chain = CoreError::from(RepoError::Internal("row 7 has an invalid tier".into())).chain();
    assert_eq!(
        chain,
        "internal error: the database failed: database error: row 7 has an invalid tier"
    );
}

#[test]
fn every_store_error_maps_to_its_core_error() {
    assert!(matches!(
        CoreError::from(StoreError::NotFound),
        CoreError::Internal { .. }
    ));
    assert_eq!(
        CoreError::from(StoreError::AlreadyExists),
        CoreError::Conflict(ConflictKind::Stale)
    );
    match CoreError::from(StoreError::Rejected("over 8 KiB".into())) {
        CoreError::Validation(errors) => assert!(errors.has(&["credentials"])),
        other => panic!("unexpected {other:?}"),
    }
    // A write names the field whose value the store refused.
    match CoreError::from_store_write(StoreError::Rejected("over 8 KiB".into()), &["access_token"]) {
        CoreError::Validation(errors) => {
            assert!(errors.has(&["access_token"]));
            assert!(!errors.has(&["credentials"]));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        CoreError::from_store_write(StoreError::AlreadyExists, &["access_token"]),
        CoreError::Conflict(ConflictKind::Stale)
    );
    assert!(matches!(
        CoreError::from(StoreError::Integrity),
        CoreError::Internal { .. }
    ));
    let retry = Some(Duration::from_secs(3));
    assert_eq!(
        CoreError::from(StoreError::Unavailable {
            message: "throttled".into(),
            retry_after: retry,
        }),
        CoreError::Unavailable {
            what: "the credential store",
            message: "throttled".into(),
            retry_after: retry,
            cause: Some(Cause::new(StoreError::Unavailable {
                message: "throttled".into(),
                retry_after: retry
            })),
        }
    );
    assert!(matches!(
        CoreError::from(StoreError::Internal("x".into())),
        CoreError::Internal { .. }
    ));
}

#[test]
fn vault_errors_keep_their_kind_and_provider() {
    let cases = [
        (
            VaultError::Unavailable {
                provider: VaultType::Doppler,
                message: "down".into(),
            },
            "vault_unavailable",
        ),
        (
            VaultError::AuthFailed {
                provider: VaultType::Infisical,
            },
            "vault_auth_failed",
        ),
        (
            VaultError::ReferenceNotFound {
                provider: VaultType::OnePassword,
                reference: "op://v/i/f".into(),
            },
            "vault_reference_not_found",
        ),
        (
            VaultError::RateLimited {
                provider: VaultType::Doppler,
                retry_after: None,
            },
            "vault_rate_limited",
        ),
    ];
    for (error, code) in cases {
        let core = CoreError::from(error.clone());
        assert_eq!(core.code(), code);
        assert_eq!(core, CoreError::Vault(error));
    }
}

#[test]
fn validation_errors_of_credentials_never_show_the_values() {
    let value = "AKIA-very-secret-value ";
    let raw = vec![
        ("access_key_id".to_owned(), SecretString::from(value)),
        (
            "secret_access_key".to_owned(),
            SecretString::from("  another-secret-value"),
        ),
    ];
    let errors = Credentials::parse(AuthMethod::S3AccessKey, raw, Utc::now()).unwrap_err();
    for error in [
        CoreError::Validation(errors.clone()),
        CoreError::InvalidCredentials(errors),
    ] {
        let shown = format!("{error:?} {error}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("another-secret"), "{shown}");
        assert!(shown.contains("access_key_id"), "{shown}");
    }
}
