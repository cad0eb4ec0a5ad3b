//! Locations: bucket names, regions, endpoint URLs and the location_type rule.

use chrono::Utc;
use custodian_domain::error::kind;
use custodian_domain::{
    BucketName, EndpointUrl, KnownSecret, Location, LocationInput, LocationPatch, LocationPatchInput, NewLocation,
    Region, SecretId, SecretType, ValidationErrors,
};

use crate::support::{assert_error, paths};

fn secret_id(n: u128) -> SecretId {
    uuid::Uuid::from_u128(n).into()
}

fn known(n: u128, secret_type: SecretType) -> Option<KnownSecret> {
    Some(KnownSecret {
        id: secret_id(n),
        secret_type,
    })
}

fn s3_location() -> LocationInput {
    LocationInput {
        name: Some("eu backups".to_owned()),
        description: None,
        location_type: Some("s3".to_owned()),
        bucket_name: Some("acme-backups".to_owned()),
        region: Some("eu-west-1".to_owned()),
        endpoint_url: None,
        secret_id: Some(secret_id(1).to_string()),
    }
}

fn minio_location() -> LocationInput {
    LocationInput {
        location_type: Some("s3_compatible".to_owned()),
        endpoint_url: Some("https://minio.internal.example:9000".to_owned()),
        ..s3_location()
    }
}

fn refused(input: LocationInput, secret: Option<KnownSecret>) -> ValidationErrors {
    match NewLocation::parse(input, secret) {
        Ok(l) => panic!("must be refused: {l:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_location_is_created_for_a_secret_of_its_type() {
    let l = NewLocation::parse(s3_location(), known(1, SecretType::S3)).unwrap();
    assert_eq!(l.name.as_str(), "eu backups");
    assert_eq!(l.location_type, SecretType::S3);
    assert_eq!(l.bucket_name.as_str(), "acme-backups");
    assert_eq!(l.region.unwrap().as_str(), "eu-west-1");
    assert_eq!(l.secret_id, secret_id(1));
    assert!(l.endpoint_url.is_none());
}

#[test]
fn location_type_is_the_secret_type_enum_and_must_equal_the_secrets_type() {
    for t in SecretType::ALL.iter().copied() {
        let input = LocationInput {
            location_type: Some(t.as_str().to_owned()),
            endpoint_url: Some("https://storage.example.com".to_owned()),
            ..s3_location()
        };
        let l = NewLocation::parse(input, known(1, t)).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(l.location_type, t);
    }
    let errors = refused(s3_location(), known(1, SecretType::R2));
    assert_error(&errors, &["location_type"], kind::INVALID_PAIR);
    assert!(errors.errors()[0].msg.contains("r2"), "names the secret's type");

    let errors = refused(
        LocationInput {
            location_type: Some("bucket".to_owned()),
            ..s3_location()
        },
        known(1, SecretType::S3),
    );
    assert_error(&errors, &["location_type"], kind::INVALID_ENUM);
    let errors = refused(
        LocationInput {
            location_type: None,
            ..s3_location()
        },
        known(1, SecretType::S3),
    );
    assert_error(&errors, &["location_type"], kind::MISSING);
}

#[test]
fn the_secret_must_exist_in_the_same_team() {
    let errors = refused(s3_location(), None);
    assert_error(&errors, &["secret_id"], kind::NOT_FOUND);
    let errors = refused(
        LocationInput {
            secret_id: None,
            ..s3_location()
        },
        None,
    );
    assert_error(&errors, &["secret_id"], kind::MISSING);
}

#[test]
fn s3_compatible_and_wasabi_need_an_endpoint() {
    for t in [SecretType::S3Compatible, SecretType::Wasabi] {
        let input = LocationInput {
            location_type: Some(t.as_str().to_owned()),
            endpoint_url: None,
            ..s3_location()
        };
        let errors = refused(input, known(1, t));
        assert_error(&errors, &["endpoint_url"], kind::MISSING);
        assert!(errors.errors()[0].msg.contains(t.as_str()));
    }
    let l = NewLocation::parse(minio_location(), known(1, SecretType::S3Compatible)).unwrap();
    assert_eq!(l.endpoint_url.unwrap().as_str(), "https://minio.internal.example:9000");
    // Other types may name one (a private endpoint), or not.
    for t in [
        SecretType::S3,
        SecretType::R2,
        SecretType::Gcs,
        SecretType::AzureBlob,
        SecretType::B2,
    ] {
        let input = LocationInput {
            location_type: Some(t.as_str().to_owned()),
            ..s3_location()
        };
        NewLocation::parse(input, known(1, t)).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}

fn endpoint(value: &str) -> Result<EndpointUrl, String> {
    EndpointUrl::parse_at("endpoint_url", value).map_err(|e| {
        assert_eq!(e.loc, ["endpoint_url"]);
        e.kind.to_owned()
    })
}

#[test]
fn endpoint_urls_are_absolute_https_without_credentials_path_query_or_fragment() {
    for (given, kept) in [
        ("https://s3.example.com", "https://s3.example.com"),
        ("https://s3.example.com/", "https://s3.example.com"),
        (
            "https://s3.eu-central-003.backblazeb2.com",
            "https://s3.eu-central-003.backblazeb2.com",
        ),
        ("https://minio.local:9000", "https://minio.local:9000"),
        ("https://10.0.0.5:9000", "https://10.0.0.5:9000"),
        ("https://[2001:db8::1]:9000", "https://[2001:db8::1]:9000"),
        // Plain http only for loopback (local MinIO, moto, Azurite).
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://localhost:4566", "http://localhost:4566"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ] {
        assert_eq!(endpoint(given).unwrap().as_str(), kept, "{given}");
    }
    for bad in [
        "http://s3.example.com",
        "http://10.0.0.5:9000",
        "ftp://s3.example.com",
        "s3.example.com",
        "//s3.example.com",
        "https://",
        "https://user:pass@s3.example.com",
        "https://user@s3.example.com",
        "https://s3.example.com?x-id=1",
        "https://s3.example.com/?",
        "https://s3.example.com#frag",
        "https://s3.example.com/bucket",
        "https://s3.example.com/a/b/",
        "file:///etc/passwd",
        "",
        "not a url",
    ] {
        assert_eq!(endpoint(bad).unwrap_err(), kind::INVALID_FORMAT, "{bad}");
    }
    assert_eq!(
        endpoint(&format!("https://{}.com", "a".repeat(2040))).unwrap_err(),
        kind::TOO_LONG
    );
}

#[test]
fn endpoint_urls_with_whitespace_or_control_characters_are_refused() {
    // The URL parser would drop these silently while the value is stored as given.
    for bad in [
        " https://s3.example.com",
        "https://s3.example.com ",
        "https://s3.exa\nmple.com",
        "https://s3.example.com\t",
        "https://s3.example.com\0",
        "\u{1}https://s3.example.com",
    ] {
        assert_eq!(endpoint(bad).unwrap_err(), kind::INVALID_FORMAT, "{bad:?}");
    }
}

#[test]
fn bucket_names_are_1_to_255_characters_without_whitespace() {
    let bucket = |b: &str| BucketName::parse_at("bucket_name", b).map_err(|e| e.kind);
    for ok in [
        "b",
        "acme-backups",
        "acme.backups.eu",
        "Acme_Backups",
        &"b".repeat(255),
        "container1",
    ] {
        assert_eq!(bucket(ok).unwrap().as_str(), ok);
    }
    assert_eq!(bucket("").unwrap_err(), kind::BLANK);
    assert_eq!(bucket(" ").unwrap_err(), kind::BLANK);
    assert_eq!(bucket(&"b".repeat(256)).unwrap_err(), kind::TOO_LONG);
    assert_eq!(bucket(" acme").unwrap_err(), kind::WHITESPACE);
    for bad in ["acme backups", "acme\tbackups", "acme\nbackups", "acme\0", "ac\u{7f}me"] {
        assert_eq!(bucket(bad).unwrap_err(), kind::INVALID_FORMAT, "{bad:?}");
    }
    let errors = refused(
        LocationInput {
            bucket_name: None,
            ..s3_location()
        },
        known(1, SecretType::S3),
    );
    assert_error(&errors, &["bucket_name"], kind::MISSING);
}

#[test]
fn regions_are_optional_1_to_64_characters_without_whitespace() {
    let region = |r: &str| Region::parse_at("region", r).map_err(|e| e.kind);
    for ok in ["us-east-1", "auto", "eu-central-003", "fsn1", &"r".repeat(64)] {
        assert_eq!(region(ok).unwrap().as_str(), ok);
    }
    assert_eq!(region("").unwrap_err(), kind::BLANK);
    assert_eq!(region(&"r".repeat(65)).unwrap_err(), kind::TOO_LONG);
    assert_eq!(region("us-east-1 ").unwrap_err(), kind::WHITESPACE);
    assert_eq!(region("us east 1").unwrap_err(), kind::INVALID_FORMAT);
    let l = NewLocation::parse(
        LocationInput {
            region: None,
            ..s3_location()
        },
        known(1, SecretType::S3),
    )
    .unwrap();
    assert!(l.region.is_none());
}

#[test]
fn location_create_reports_every_failing_field() {
    let input = LocationInput {
        name: Some(String::new()),
        description: Some("d".repeat(2001)),
        location_type: Some("s3_compatible".to_owned()),
        bucket_name: Some("my bucket".to_owned()),
        region: Some("r".repeat(65)),
        endpoint_url: Some("http://minio.example.com".to_owned()),
        secret_id: Some("nope".to_owned()),
    };
    let errors = refused(input, None);
    let expected = [
        ("name", kind::BLANK),
        ("description", kind::TOO_LONG),
        ("bucket_name", kind::INVALID_FORMAT),
        ("region", kind::TOO_LONG),
        ("endpoint_url", kind::INVALID_FORMAT),
        ("secret_id", kind::NOT_FOUND),
    ];
    for (field, k) in expected {
        assert_error(&errors, &[field], k);
    }
    assert_eq!(errors.errors().len(), expected.len(), "{:?}", paths(&errors));
}

// ---------------------------------------------------------------- update

fn stored(location_type: SecretType, endpoint: Option<&str>) -> Location {
    let t = Utc::now();
    Location {
        id: uuid::Uuid::from_u128(9).into(),
        team_id: uuid::Uuid::from_u128(2).into(),
        name: custodian_domain::Name::parse_at("name", "loc").expect("fixture is valid"),
        description: None,
        location_type,
        bucket_name: BucketName::parse_at("bucket_name", "bucket").expect("fixture is valid"),
        region: Some(Region::parse_at("region", "us-east-1").expect("fixture is valid")),
        endpoint_url: endpoint.map(|e| EndpointUrl::parse_at("endpoint_url", e).expect("fixture is valid")),
        secret_id: secret_id(1),
        created_at: t,
        created_by: uuid::Uuid::from_u128(3).into(),
        updated_at: t,
        updated_by: uuid::Uuid::from_u128(3).into(),
    }
}

fn patch(
    input: LocationPatchInput,
    current: &Location,
    secret: Option<KnownSecret>,
) -> Result<LocationPatch, ValidationErrors> {
    LocationPatch::parse(input, current, secret)
}

#[test]
fn patch_changes_only_what_is_given() {
    let current = stored(SecretType::S3, None);
    let p = patch(LocationPatchInput::default(), &current, known(1, SecretType::S3)).unwrap();
    assert!(p.name.is_none() && p.location_type.is_none() && p.secret_id.is_none() && p.region.is_none());

    let p = patch(
        LocationPatchInput {
            name: Some("renamed".to_owned()),
            bucket_name: Some("other-bucket".to_owned()),
            region: Some(None),
            description: Some(Some("text".to_owned())),
            ..LocationPatchInput::default()
        },
        &current,
        known(1, SecretType::S3),
    )
    .unwrap();
    assert_eq!(p.name.unwrap().as_str(), "renamed");
    assert_eq!(p.bucket_name.unwrap().as_str(), "other-bucket");
    assert_eq!(p.region, Some(None));
}

#[test]
fn patch_keeps_location_type_equal_to_the_secrets_type() {
    let current = stored(SecretType::S3, None);
    // Moving to a secret of another type without changing the location type.
    let errors = patch(
        LocationPatchInput {
            secret_id: Some(secret_id(5).to_string()),
            ..LocationPatchInput::default()
        },
        &current,
        known(5, SecretType::Gcs),
    )
    .unwrap_err();
    assert_error(&errors, &["secret_id"], kind::INVALID_PAIR);
    // Changing the type alone while the secret stays s3.
    let errors = patch(
        LocationPatchInput {
            location_type: Some("gcs".to_owned()),
            ..LocationPatchInput::default()
        },
        &current,
        known(1, SecretType::S3),
    )
    .unwrap_err();
    assert_error(&errors, &["location_type"], kind::INVALID_PAIR);
    // Both together: accepted, and the new secret is reported.
    let p = patch(
        LocationPatchInput {
            location_type: Some("gcs".to_owned()),
            secret_id: Some(secret_id(5).to_string()),
            ..LocationPatchInput::default()
        },
        &current,
        known(5, SecretType::Gcs),
    )
    .unwrap();
    assert_eq!(p.location_type, Some(SecretType::Gcs));
    assert_eq!(p.secret_id, Some(secret_id(5)));
    // An unknown new secret.
    let errors = patch(
        LocationPatchInput {
            secret_id: Some(secret_id(6).to_string()),
            ..LocationPatchInput::default()
        },
        &current,
        None,
    )
    .unwrap_err();
    assert_error(&errors, &["secret_id"], kind::NOT_FOUND);
}

#[test]
fn patch_keeps_an_endpoint_where_one_is_required() {
    let current = stored(SecretType::S3Compatible, Some("https://minio.example.com"));
    let errors = patch(
        LocationPatchInput {
            endpoint_url: Some(None),
            ..LocationPatchInput::default()
        },
        &current,
        known(1, SecretType::S3Compatible),
    )
    .unwrap_err();
    assert_error(&errors, &["endpoint_url"], kind::MISSING);
    let p = patch(
        LocationPatchInput {
            endpoint_url: Some(Some("https://minio2.example.com/".to_owned())),
            ..LocationPatchInput::default()
        },
        &current,
        known(1, SecretType::S3Compatible),
    )
    .unwrap();
    assert_eq!(p.endpoint_url.unwrap().unwrap().as_str(), "https://minio2.example.com");
    // Turning an s3 location into wasabi needs an endpoint.
    let s3 = stored(SecretType::S3, None);
    let errors = patch(
        LocationPatchInput {
            location_type: Some("wasabi".to_owned()),
            secret_id: Some(secret_id(7).to_string()),
            ..LocationPatchInput::default()
        },
        &s3,
        known(7, SecretType::Wasabi),
    )
    .unwrap_err();
    assert_error(&errors, &["endpoint_url"], kind::MISSING);
    // A bad new endpoint is reported as such, not also as missing.
    let errors = patch(
        LocationPatchInput {
            endpoint_url: Some(Some("http://minio.example.com".to_owned())),
            ..LocationPatchInput::default()
        },
        &current,
        known(1, SecretType::S3Compatible),
    )
    .unwrap_err();
    assert_error(&errors, &["endpoint_url"], kind::INVALID_FORMAT);
    assert_eq!(errors.errors().len(), 1, "{errors}");
}
