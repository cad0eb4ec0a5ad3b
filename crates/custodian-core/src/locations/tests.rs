//! Location use cases over mocked ports.

use custodian_domain::{AuthMethod, Role, SecretType, Tier};
use custodian_ports::ConflictKind;
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::Requirement;
use crate::test_support::*;

fn ctx() -> RequestContext {
    RequestContext::default()
}

fn input(location_type: &str, secret: &str) -> LocationInput {
    LocationInput {
        name: Some("raw-bucket".into()),
        location_type: Some(location_type.into()),
        bucket_name: Some("raw".into()),
        secret_id: Some(secret.into()),
        ..LocationInput::default()
    }
}

fn admin() -> Mocks {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin).team(team(Tier::Pro));
    mocks
}

#[tokio::test]
async fn a_location_uses_a_secret_of_its_team_and_type() {
    let mut mocks = admin();
    mocks.secret(managed_secret(1));
    mocks
        .locations
        .expect_create()
        .withf(|location, audit| {
            location.secret_id == secret_id()
                && location.location_type == SecretType::S3
                && audit.resource_type == ResourceType::Location
                && audit.resource_name.as_deref() == Some("raw-bucket")
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let view = mocks
        .build()
        .create_location(&alice(), &ctx(), team_id(), input("s3", &secret_id().to_string()))
        .await
        .unwrap();
    assert_eq!(view.secret_name, "prod-s3");
}

#[tokio::test]
async fn a_secret_of_another_team_is_a_validation_error_on_secret_id() {
    let mut mocks = admin();
    mocks.secrets.expect_get().returning(|_, _| Err(RepoError::NotFound));
    let result = mocks
        .build()
        .create_location(&alice(), &ctx(), team_id(), input("s3", &secret_id().to_string()))
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["secret_id"])));
}

#[tokio::test]
async fn the_location_type_must_equal_the_secrets_type() {
    let mut mocks = admin();
    mocks.secret(managed_secret(1));
    let result = mocks
        .build()
        .create_location(&alice(), &ctx(), team_id(), input("gcs", &secret_id().to_string()))
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["location_type"])));
}

#[tokio::test]
async fn a_viewer_cannot_create_a_location() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Viewer);
    let result = mocks
        .build()
        .create_location(&alice(), &ctx(), team_id(), input("s3", &secret_id().to_string()))
        .await;
    assert_eq!(
        result,
        Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Admin)
        })
    );
}

#[tokio::test]
async fn an_update_keeps_the_type_equal_to_the_secrets() {
    let mut mocks = admin();
    mocks.secret(managed_secret(1));
    mocks
        .locations
        .expect_get()
        .returning(|_, _| Ok(location(SecretType::S3)));
    let patch = LocationPatchInput {
        location_type: Some("r2".into()),
        ..LocationPatchInput::default()
    };
    let result = mocks
        .build()
        .update_location(&alice(), &ctx(), team_id(), location_id(), patch)
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["location_type"])));
}

#[tokio::test]
async fn an_update_applies_the_patch() {
    let mut mocks = admin();
    mocks.secret(managed_secret(1));
    mocks
        .locations
        .expect_get()
        .returning(|_, _| Ok(location(SecretType::S3)));
    mocks
        .locations
        .expect_update()
        .withf(|location, audit| {
            location.bucket_name.as_str() == "curated"
                && location.region.as_ref().map(|r| r.as_str()) == Some("eu-west-1")
                && location.updated_at == now()
                && audit.action == AuditAction::Update
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let patch = LocationPatchInput {
        bucket_name: Some("curated".into()),
        region: Some(Some("eu-west-1".into())),
        ..LocationPatchInput::default()
    };
    let view = mocks
        .build()
        .update_location(&alice(), &ctx(), team_id(), location_id(), patch)
        .await
        .unwrap();
    assert_eq!(view.location.bucket_name.as_str(), "curated");
}

#[tokio::test]
async fn a_duplicate_name_conflicts() {
    let mut mocks = admin();
    mocks.secret(managed_secret(1));
    mocks
        .locations
        .expect_create()
        .returning(|_, _| Err(RepoError::Conflict(ConflictKind::DuplicateName)));
    let result = mocks
        .build()
        .create_location(&alice(), &ctx(), team_id(), input("s3", &secret_id().to_string()))
        .await;
    assert_eq!(result, Err(CoreError::Conflict(ConflictKind::DuplicateName)));
}

#[tokio::test]
async fn verifying_a_location_checks_its_secret_and_records_the_location() {
    let mut mocks = Mocks::new();
    mocks
        .member(team_id(), alice_id(), Role::Operator)
        .secret(managed_secret(1))
        .audit_anything();
    mocks
        .locations
        .expect_get()
        .returning(|_, _| Ok(location(SecretType::S3)));
    let payload =
        custodian_domain::Credentials::parse(AuthMethod::S3AccessKey, s3_credentials("AKIA1", "s3cr3t"), now())
            .unwrap()
            .to_payload()
            .expose_secret()
            .to_owned();
    mocks
        .store
        .expect_get()
        .returning(move |_, _| Ok(SecretString::from(payload.clone())));
    let verification = mocks
        .build()
        .verify_location(&alice(), &ctx(), team_id(), location_id())
        .await
        .unwrap();
    assert!(verification.verified);
}

#[tokio::test]
async fn listing_names_each_locations_secret() {
    let mut mocks = Mocks::new();
    mocks
        .member(team_id(), alice_id(), Role::Viewer)
        .secret(managed_secret(1));
    mocks.locations.expect_list().returning(|_, _, _| {
        Ok(Paged {
            items: vec![location(SecretType::S3), location(SecretType::S3)],
            total: 2,
        })
    });
    let page = mocks
        .build()
        .list_locations(&alice(), team_id(), &LocationFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert!(page.items.iter().all(|v| v.secret_name == "prod-s3"));
}
