//! Storage secrets: the create rule and every update rule.

use custodian_domain::error::kind;
use custodian_domain::{
    AuthMethod, CreateSecretInput, LinkedLocation, NewSecretStorage, NewStorageSecret, RawFieldMapping, SecretStorage,
    SecretType, SecretUpdate, UpdateRejection, UpdateSecretInput, ValidationErrors, VaultType,
};

use crate::support::{
    assert_error, external_input, external_storage, known_vault, managed_input, now, paths, raw, stored_secret,
    valid_credentials, valid_mappings, vault_id,
};

fn create(input: CreateSecretInput, vault: Option<VaultType>) -> Result<NewStorageSecret, ValidationErrors> {
    NewStorageSecret::parse(input, vault.map(known_vault), now())
}

fn s3_input() -> CreateSecretInput {
    managed_input("s3", "s3_access_key", valid_credentials(AuthMethod::S3AccessKey))
}

fn refused(input: CreateSecretInput, vault: Option<VaultType>) -> ValidationErrors {
    match create(input, vault) {
        Ok(secret) => panic!("must be refused: {secret:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- create: storage mode

#[test]
fn managed_secret_is_created_from_credentials() {
    let secret = create(s3_input(), None).unwrap();
    assert_eq!(secret.name.as_str(), "backups");
    assert_eq!(secret.description.as_ref().map(|d| d.as_str()), Some("nightly backups"));
    assert_eq!(secret.secret_type, SecretType::S3);
    assert!(matches!(secret.storage, NewSecretStorage::Managed(_)));
}

#[test]
fn external_secret_is_created_for_every_vault_type_and_auth_method() {
    let mut created = 0;
    for vault_type in VaultType::ALL.iter().copied() {
        for method in AuthMethod::ALL.iter().copied() {
            let secret = create(external_input(vault_type, method), Some(vault_type))
                .unwrap_or_else(|e| panic!("{vault_type}/{method}: {e}"));
            let NewSecretStorage::External {
                vault_connection_id,
                field_mappings,
            } = secret.storage
            else {
                panic!("{vault_type}/{method} must be external");
            };
            assert_eq!(vault_connection_id, vault_id());
            let fields: Vec<_> = field_mappings.iter().map(|m| m.field).collect();
            assert_eq!(fields, method.credential_fields());
            created += 1;
        }
    }
    assert_eq!(created, 3 * 14);
}

#[test]
fn both_storage_modes_at_once_is_an_error_at_credentials() {
    let credentials = || Some(valid_credentials(AuthMethod::S3AccessKey));
    let both = [
        (
            Some(vault_id().to_string()),
            Some(valid_mappings(VaultType::Doppler, AuthMethod::S3AccessKey)),
        ),
        (Some(vault_id().to_string()), None),
        (None, Some(valid_mappings(VaultType::Doppler, AuthMethod::S3AccessKey))),
    ];
    for (vault_connection_id, field_mappings) in both {
        let input = CreateSecretInput {
            credentials: credentials(),
            vault_connection_id,
            field_mappings,
            ..s3_input()
        };
        let errors = refused(input, Some(VaultType::Doppler));
        assert_error(&errors, &["credentials"], kind::NOT_ALLOWED);
        assert_eq!(errors.errors().len(), 1, "{errors}");
    }
}

#[test]
fn neither_storage_mode_is_an_error_at_credentials() {
    for credentials in [None, Some(Vec::new())] {
        let input = CreateSecretInput {
            credentials,
            ..s3_input()
        };
        let errors = refused(input, None);
        assert_error(&errors, &["credentials"], kind::MISSING);
        assert!(
            errors.errors()[0].msg.contains("vault_connection_id"),
            "says what else would do"
        );
    }
}

#[test]
fn empty_credentials_next_to_a_vault_reference_count_as_absent() {
    // The create reference's own example sends `"credentials": {}` with a vault reference.
    let input = CreateSecretInput {
        credentials: Some(Vec::new()),
        ..external_input(VaultType::OnePassword, AuthMethod::GcsServiceAccount)
    };
    let secret = create(input, Some(VaultType::OnePassword)).unwrap();
    assert!(matches!(secret.storage, NewSecretStorage::External { .. }));
}

#[test]
fn a_vault_reference_needs_both_the_connection_and_the_mappings() {
    let without_mappings = CreateSecretInput {
        field_mappings: None,
        ..external_input(VaultType::Doppler, AuthMethod::S3AccessKey)
    };
    assert_error(
        &refused(without_mappings, Some(VaultType::Doppler)),
        &["field_mappings"],
        kind::MISSING,
    );

    let without_connection = CreateSecretInput {
        vault_connection_id: None,
        ..external_input(VaultType::Doppler, AuthMethod::S3AccessKey)
    };
    assert_error(
        &refused(without_connection, None),
        &["vault_connection_id"],
        kind::MISSING,
    );

    // Named but not found in the team (or not a uuid): the caller passes no KnownVault.
    for id in [vault_id().to_string(), "not-a-uuid".to_owned()] {
        let unknown = CreateSecretInput {
            vault_connection_id: Some(id),
            ..external_input(VaultType::Doppler, AuthMethod::S3AccessKey)
        };
        assert_error(&refused(unknown, None), &["vault_connection_id"], kind::NOT_FOUND);
    }
}

// ---------------------------------------------------------------- create: name, description, enums

#[test]
fn name_is_required_and_1_to_255_characters_without_padding() {
    let named = |name: Option<&str>| CreateSecretInput {
        name: name.map(str::to_owned),
        ..s3_input()
    };
    assert_error(&refused(named(None), None), &["name"], kind::MISSING);
    assert_error(&refused(named(Some("")), None), &["name"], kind::BLANK);
    assert_error(&refused(named(Some("   ")), None), &["name"], kind::BLANK);
    assert_error(&refused(named(Some(" backups")), None), &["name"], kind::WHITESPACE);
    assert_error(&refused(named(Some("backups\t")), None), &["name"], kind::WHITESPACE);
    assert_error(&refused(named(Some(&"n".repeat(256))), None), &["name"], kind::TOO_LONG);
    for ok in [
        "b",
        "nightly backups (eu-west)",
        &"n".repeat(255),
        &"é".repeat(255),
        "桶",
    ] {
        let secret = create(named(Some(ok)), None).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        assert_eq!(secret.name.as_str(), ok, "names are kept as given");
    }
}

#[test]
fn description_is_optional_and_at_most_2000_characters() {
    let described = |d: Option<String>| CreateSecretInput {
        description: d,
        ..s3_input()
    };
    assert!(create(described(None), None).unwrap().description.is_none());
    for ok in [
        String::new(),
        "x".repeat(2000),
        "ü".repeat(2000),
        "line one\nline two".to_owned(),
    ] {
        let secret = create(described(Some(ok.clone())), None).unwrap();
        assert_eq!(secret.description.unwrap().as_str(), ok);
    }
    let errors = refused(described(Some("x".repeat(2001))), None);
    assert_error(&errors, &["description"], kind::TOO_LONG);
    assert!(errors.errors()[0].msg.contains("2000"));
}

#[test]
fn secret_type_and_auth_method_are_required_enums() {
    let errors = refused(
        CreateSecretInput {
            secret_type: None,
            auth_method: None,
            ..s3_input()
        },
        None,
    );
    assert_error(&errors, &["secret_type"], kind::MISSING);
    assert_error(&errors, &["auth_method"], kind::MISSING);

    let errors = refused(
        CreateSecretInput {
            secret_type: Some("minio".to_owned()),
            auth_method: Some("password".to_owned()),
            ..s3_input()
        },
        None,
    );
    assert_error(&errors, &["secret_type"], kind::INVALID_ENUM);
    assert_error(&errors, &["auth_method"], kind::INVALID_ENUM);
    assert!(
        errors.errors()[0].msg.contains("digitalocean_spaces"),
        "lists the accepted values"
    );
}

// ---------------------------------------------------------------- create: field mappings

fn mapping(field_name: &str, reference: &str) -> RawFieldMapping {
    RawFieldMapping {
        field_name: field_name.to_owned(),
        reference: reference.to_owned(),
    }
}

/// Field mappings for an `azure_sas_url` secret: one field, `sas_url`, at `reference`.
fn sas_mapping(vault_type: VaultType, reference: &str) -> Result<NewStorageSecret, ValidationErrors> {
    let input = CreateSecretInput {
        field_mappings: Some(vec![mapping("sas_url", reference)]),
        ..external_input(vault_type, AuthMethod::AzureSasUrl)
    };
    create(input, Some(vault_type))
}

fn reference_ok(vault_type: VaultType, reference: &str) {
    if let Err(e) = sas_mapping(vault_type, reference) {
        panic!("{vault_type}: {reference:?} must be accepted: {e}");
    }
}

fn reference_refused(vault_type: VaultType, reference: &str, expected_kind: &str) {
    let errors = sas_mapping(vault_type, reference).expect_err(&format!("{vault_type}: {reference:?} must be refused"));
    assert_error(&errors, &["field_mappings", "0", "reference"], expected_kind);
    assert_eq!(errors.errors().len(), 1, "{errors}");
}

#[test]
fn onepassword_references_are_op_uris() {
    let v = VaultType::OnePassword;
    for ok in [
        "op://Storage/backups/sas_url",
        "op://Storage/backups/azure/sas_url",
        "op://Prod Vault/Azure Blob.prod/credential-1",
        "op://vault/item/field?attribute=otp",
        "op://a1b2c3d4e5f6/xyz987/password",
    ] {
        reference_ok(v, ok);
    }
    for bad in [
        "Storage/backups/sas_url",
        "op:/Storage/backups/sas_url",
        "OP://Storage/backups/sas_url",
        "op://Storage/sas_url",
        "op://a/b/c/d/e",
        "op://Storage//sas_url",
        "op://Storage/backups/sas$url",
        "op://Storage/backups/",
        "https://Storage/backups/sas_url",
        "SAS_URL",
    ] {
        reference_refused(v, bad, kind::INVALID_FORMAT);
    }
}

#[test]
fn doppler_references_are_secret_names() {
    let v = VaultType::Doppler;
    for ok in ["SAS_URL", "_PRIVATE", "AZURE_SAS_URL_2", "A"] {
        reference_ok(v, ok);
    }
    for bad in [
        "sas_url",
        "Sas_Url",
        "1SAS",
        "SAS-URL",
        "SAS URL",
        "SAS.URL",
        "/SAS_URL",
        "op://a/b/c",
    ] {
        reference_refused(v, bad, kind::INVALID_FORMAT);
    }
}

#[test]
fn infisical_references_are_keys_with_an_optional_folder_path() {
    let v = VaultType::Infisical;
    for ok in [
        "SAS_URL",
        "/SAS_URL",
        "/azure/SAS_URL",
        "azure/prod/sas-url.v2",
        "/a/b/c/KEY_1",
    ] {
        reference_ok(v, ok);
    }
    for bad in [
        "/",
        "azure/",
        "/azure//SAS_URL",
        "SAS URL",
        "SAS$URL",
        "op://a/b/c",
        "//SAS",
    ] {
        reference_refused(v, bad, kind::INVALID_FORMAT);
    }
}

#[test]
fn references_are_non_empty_and_at_most_1024_characters() {
    for v in VaultType::ALL.iter().copied() {
        reference_refused(v, "", kind::BLANK);
        reference_refused(v, "   ", kind::BLANK);
    }
    reference_ok(VaultType::Doppler, &"A".repeat(1024));
    reference_refused(VaultType::Doppler, &"A".repeat(1025), kind::TOO_LONG);
    let op_at_limit = format!("op://v/i/{}", "f".repeat(1024 - "op://v/i/".len()));
    reference_ok(VaultType::OnePassword, &op_at_limit);
    reference_refused(VaultType::OnePassword, &format!("{op_at_limit}f"), kind::TOO_LONG);
    reference_refused(VaultType::Infisical, &format!("/{}", "k".repeat(1024)), kind::TOO_LONG);
}

#[test]
fn references_are_not_padded_and_hold_no_control_characters() {
    // 1Password item names may hold spaces, but never at either end of the reference or a segment.
    reference_refused(
        VaultType::OnePassword,
        "op://Storage/backups/sas_url ",
        kind::WHITESPACE,
    );
    reference_refused(
        VaultType::OnePassword,
        " op://Storage/backups/sas_url",
        kind::WHITESPACE,
    );
    reference_refused(
        VaultType::OnePassword,
        "op://Storage/ backups/sas_url",
        kind::INVALID_FORMAT,
    );
    reference_refused(VaultType::OnePassword, "op://Storage/   /sas_url", kind::INVALID_FORMAT);
    reference_refused(
        VaultType::OnePassword,
        "op://Storage/backups/sas_url?attribute=\0",
        kind::INVALID_FORMAT,
    );
    reference_refused(
        VaultType::OnePassword,
        "op://Storage/backups/sas_url?\u{1b}",
        kind::INVALID_FORMAT,
    );
    reference_refused(VaultType::Doppler, "SAS_URL\n", kind::WHITESPACE);
    reference_refused(VaultType::Infisical, "\t/aws/SAS_URL", kind::WHITESPACE);
}

#[test]
fn mappings_cover_each_required_field_exactly_once() {
    let v = VaultType::Doppler;
    let with_mappings = |m: Vec<RawFieldMapping>| CreateSecretInput {
        field_mappings: Some(m),
        ..external_input(v, AuthMethod::B2ApplicationKey)
    };
    // Missing one required field: an error on the list itself.
    let errors = refused(with_mappings(vec![mapping("application_key_id", "B2_KEY_ID")]), Some(v));
    assert_error(&errors, &["field_mappings"], kind::MISSING);
    assert!(errors.errors()[0].msg.contains("application_key"));

    // Unknown and duplicate field names, each at its index.
    let errors = refused(
        with_mappings(vec![
            mapping("application_key_id", "B2_KEY_ID"),
            mapping("access_key_id", "AWS_KEY"),
            mapping("application_key", "B2_KEY"),
            mapping("application_key", "B2_KEY_AGAIN"),
        ]),
        Some(v),
    );
    assert_error(&errors, &["field_mappings", "1", "field_name"], kind::UNKNOWN_FIELD);
    assert_error(&errors, &["field_mappings", "3", "field_name"], kind::DUPLICATE);
    assert_eq!(errors.errors().len(), 2, "{errors}");

    // Order does not matter; the result is in wire order.
    let secret = create(
        with_mappings(vec![
            mapping("application_key", "B2_KEY"),
            mapping("application_key_id", "B2_KEY_ID"),
        ]),
        Some(v),
    )
    .unwrap();
    let NewSecretStorage::External { field_mappings, .. } = secret.storage else {
        panic!("external");
    };
    let refs: Vec<&str> = field_mappings.iter().map(|m| m.reference.as_str()).collect();
    assert_eq!(refs, ["B2_KEY_ID", "B2_KEY"]);
}

#[test]
fn mappings_are_checked_against_the_connections_vault_type() {
    // Doppler-style names in a 1Password connection are refused, at each index.
    let input = CreateSecretInput {
        field_mappings: Some(valid_mappings(VaultType::Doppler, AuthMethod::S3AccessKey)),
        ..external_input(VaultType::OnePassword, AuthMethod::S3AccessKey)
    };
    let errors = refused(input, Some(VaultType::OnePassword));
    assert_error(&errors, &["field_mappings", "0", "reference"], kind::INVALID_FORMAT);
    assert_error(&errors, &["field_mappings", "1", "reference"], kind::INVALID_FORMAT);
}

// ---------------------------------------------------------------- create: every error at once

#[test]
fn create_reports_every_failing_field_with_its_path() {
    let input = CreateSecretInput {
        name: Some(String::new()),
        description: Some("d".repeat(2001)),
        secret_type: Some("s3".to_owned()),
        auth_method: Some("s3_access_key".to_owned()),
        credentials: Some(raw(&[("secret_access_key", " padded "), ("region", "us-east-1")])),
        vault_connection_id: None,
        field_mappings: None,
    };
    let errors = refused(input, None);
    assert_error(&errors, &["name"], kind::BLANK);
    assert_error(&errors, &["description"], kind::TOO_LONG);
    assert_error(&errors, &["credentials", "secret_access_key"], kind::WHITESPACE);
    assert_error(&errors, &["credentials", "region"], kind::UNKNOWN_FIELD);
    assert_error(&errors, &["credentials", "access_key_id"], kind::MISSING);
    assert_eq!(errors.errors().len(), 5, "{:?}", paths(&errors));

    // Enum errors and external-mode errors come together as well.
    let input = CreateSecretInput {
        name: Some(" x".to_owned()),
        description: None,
        secret_type: Some("S3".to_owned()),
        auth_method: Some("gcs_service_account".to_owned()),
        credentials: None,
        vault_connection_id: Some(vault_id().to_string()),
        field_mappings: Some(vec![mapping("service_account_json", "")]),
    };
    let errors = refused(input, Some(VaultType::Infisical));
    assert_error(&errors, &["name"], kind::WHITESPACE);
    assert_error(&errors, &["secret_type"], kind::INVALID_ENUM);
    assert_error(&errors, &["field_mappings", "0", "reference"], kind::BLANK);
    assert_eq!(errors.errors().len(), 3, "{:?}", paths(&errors));
}

// ---------------------------------------------------------------- update

fn update(
    input: UpdateSecretInput,
    current_method: AuthMethod,
    storage: SecretStorage,
    linked: &[LinkedLocation],
    vault: Option<VaultType>,
) -> Result<SecretUpdate, UpdateRejection> {
    let current = stored_secret(current_method, storage);
    SecretUpdate::parse(input, &current, linked, vault, now())
}

fn managed_update(input: UpdateSecretInput, current_method: AuthMethod) -> Result<SecretUpdate, UpdateRejection> {
    update(input, current_method, SecretStorage::Managed, &[], None)
}

fn invalid(result: Result<SecretUpdate, UpdateRejection>) -> ValidationErrors {
    match result {
        Err(UpdateRejection::Invalid(errors)) => errors,
        other => panic!("expected a 422, got {other:?}"),
    }
}

fn linked(n: u128, location_type: SecretType) -> LinkedLocation {
    LinkedLocation {
        id: uuid::Uuid::from_u128(100 + n).into(),
        name: format!("location-{n}"),
        location_type,
    }
}

#[test]
fn an_empty_update_changes_nothing() {
    let u = managed_update(UpdateSecretInput::default(), AuthMethod::S3AccessKey).unwrap();
    assert!(u.name.is_none() && u.description.is_none() && u.secret_type.is_none());
    assert!(u.auth_method.is_none() && u.credentials.is_none() && u.field_mappings.is_none());
}

#[test]
fn update_renames_and_rewrites_or_clears_the_description() {
    let u = managed_update(
        UpdateSecretInput {
            name: Some("renamed".to_owned()),
            description: Some(Some("new text".to_owned())),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    )
    .unwrap();
    assert_eq!(u.name.unwrap().as_str(), "renamed");
    assert_eq!(u.description.unwrap().unwrap().as_str(), "new text");

    let cleared = managed_update(
        UpdateSecretInput {
            description: Some(None),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    )
    .unwrap();
    assert_eq!(cleared.description, Some(None));

    let errors = invalid(managed_update(
        UpdateSecretInput {
            name: Some(String::new()),
            description: Some(Some("x".repeat(2001))),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    ));
    assert_error(&errors, &["name"], kind::BLANK);
    assert_error(&errors, &["description"], kind::TOO_LONG);
    let long = invalid(managed_update(
        UpdateSecretInput {
            name: Some("n".repeat(256)),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    ));
    assert_error(&long, &["name"], kind::TOO_LONG);
}

#[test]
fn changing_secret_type_needs_every_linked_location_to_match() {
    let input = || UpdateSecretInput {
        secret_type: Some("r2".to_owned()),
        auth_method: Some("r2_access_key".to_owned()),
        ..UpdateSecretInput::default()
    };
    let locations = [
        linked(1, SecretType::S3),
        linked(2, SecretType::R2),
        linked(3, SecretType::S3),
    ];
    let result = update(
        input(),
        AuthMethod::S3AccessKey,
        SecretStorage::Managed,
        &locations,
        None,
    );
    match result {
        Err(UpdateRejection::LocationTypeMismatch {
            secret_type,
            locations: mismatched,
        }) => {
            assert_eq!(secret_type, SecretType::R2);
            let names: Vec<&str> = mismatched.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(
                names,
                ["location-1", "location-3"],
                "lists exactly the mismatching ones"
            );
        }
        other => panic!("expected location_type_mismatch, got {other:?}"),
    }
    // All linked locations already of the new type: accepted.
    let matching = [linked(1, SecretType::R2), linked(2, SecretType::R2)];
    let u = update(
        input(),
        AuthMethod::S3AccessKey,
        SecretStorage::Managed,
        &matching,
        None,
    )
    .unwrap();
    assert_eq!(u.secret_type, Some(SecretType::R2));
    // Sending the current type again is not a change.
    let same = UpdateSecretInput {
        secret_type: Some("s3".to_owned()),
        ..UpdateSecretInput::default()
    };
    update(same, AuthMethod::S3AccessKey, SecretStorage::Managed, &locations, None).unwrap();
}

#[test]
fn the_resulting_pair_must_be_valid() {
    // A new auth method must suit the existing secret type …
    let errors = invalid(managed_update(
        UpdateSecretInput {
            auth_method: Some("r2_access_key".to_owned()),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    ));
    assert_error(&errors, &["auth_method"], kind::INVALID_PAIR);
    // … a new secret type must suit the existing auth method …
    let errors = invalid(managed_update(
        UpdateSecretInput {
            secret_type: Some("wasabi".to_owned()),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    ));
    assert_error(&errors, &["secret_type"], kind::INVALID_PAIR);
    // … and both changed together must suit each other.
    let errors = invalid(managed_update(
        UpdateSecretInput {
            secret_type: Some("gcs".to_owned()),
            auth_method: Some("b2_application_key".to_owned()),
            credentials: Some(valid_credentials(AuthMethod::B2ApplicationKey)),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    ));
    assert_error(&errors, &["auth_method"], kind::INVALID_PAIR);
    // Unknown spellings are enum errors, not pair errors.
    let errors = invalid(managed_update(
        UpdateSecretInput {
            secret_type: Some("aws".to_owned()),
            auth_method: Some("s3".to_owned()),
            ..UpdateSecretInput::default()
        },
        AuthMethod::S3AccessKey,
    ));
    assert_error(&errors, &["secret_type"], kind::INVALID_ENUM);
    assert_error(&errors, &["auth_method"], kind::INVALID_ENUM);
    assert_eq!(errors.errors().len(), 2, "{errors}");
}

#[test]
fn credentials_are_checked_against_the_existing_or_new_auth_method() {
    // Existing method: azure_account_key credentials rotate an azure_account_key secret.
    let u = managed_update(
        UpdateSecretInput {
            credentials: Some(valid_credentials(AuthMethod::AzureAccountKey)),
            ..UpdateSecretInput::default()
        },
        AuthMethod::AzureAccountKey,
    )
    .unwrap();
    assert_eq!(u.credentials.unwrap().auth_method(), AuthMethod::AzureAccountKey);
    // … but SAS credentials do not fit it.
    let errors = invalid(managed_update(
        UpdateSecretInput {
            credentials: Some(valid_credentials(AuthMethod::AzureSasUrl)),
            ..UpdateSecretInput::default()
        },
        AuthMethod::AzureAccountKey,
    ));
    assert_error(&errors, &["credentials", "sas_url"], kind::UNKNOWN_FIELD);
    assert_error(&errors, &["credentials", "account_name"], kind::MISSING);
    // New method: SAS credentials with auth_method azure_sas_url.
    let u = managed_update(
        UpdateSecretInput {
            auth_method: Some("azure_sas_url".to_owned()),
            credentials: Some(valid_credentials(AuthMethod::AzureSasUrl)),
            ..UpdateSecretInput::default()
        },
        AuthMethod::AzureAccountKey,
    )
    .unwrap();
    assert_eq!(u.auth_method, Some(AuthMethod::AzureSasUrl));
    assert_eq!(u.credentials.unwrap().auth_method(), AuthMethod::AzureSasUrl);
    // Format checks apply on rotation too (an expired SAS URL).
    let expired = raw(&[(
        "sas_url",
        "https://a.blob.core.windows.net/c?sv=2022-11-02&se=2026-01-01&sig=abc",
    )]);
    let errors = invalid(managed_update(
        UpdateSecretInput {
            credentials: Some(expired),
            ..UpdateSecretInput::default()
        },
        AuthMethod::AzureSasUrl,
    ));
    assert_error(&errors, &["credentials", "sas_url"], kind::EXPIRED);
}

#[test]
fn a_new_auth_method_with_other_fields_needs_new_credentials_or_mappings() {
    let to_sas = || UpdateSecretInput {
        auth_method: Some("azure_sas_url".to_owned()),
        ..UpdateSecretInput::default()
    };
    let errors = invalid(managed_update(to_sas(), AuthMethod::AzureAccountKey));
    assert_error(&errors, &["credentials"], kind::MISSING);
    assert!(errors.errors()[0].msg.contains("sas_url"), "names the fields needed");

    let v = VaultType::Infisical;
    let storage = || external_storage(v, AuthMethod::AzureAccountKey);
    let errors = invalid(update(to_sas(), AuthMethod::AzureAccountKey, storage(), &[], Some(v)));
    assert_error(&errors, &["field_mappings"], kind::MISSING);

    let with_mappings = UpdateSecretInput {
        field_mappings: Some(valid_mappings(v, AuthMethod::AzureSasUrl)),
        ..to_sas()
    };
    let u = update(with_mappings, AuthMethod::AzureAccountKey, storage(), &[], Some(v)).unwrap();
    let fields: Vec<_> = u.field_mappings.unwrap().iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["sas_url"]);

    // A new method with the same fields (s3 → r2 access keys) keeps what is stored.
    let same_fields = UpdateSecretInput {
        secret_type: Some("r2".to_owned()),
        auth_method: Some("r2_access_key".to_owned()),
        ..UpdateSecretInput::default()
    };
    let u = managed_update(same_fields, AuthMethod::S3AccessKey).unwrap();
    assert!(u.credentials.is_none());
}

#[test]
fn external_secrets_reject_credentials() {
    let v = VaultType::OnePassword;
    let input = UpdateSecretInput {
        credentials: Some(valid_credentials(AuthMethod::S3AccessKey)),
        ..UpdateSecretInput::default()
    };
    let errors = invalid(update(
        input,
        AuthMethod::S3AccessKey,
        external_storage(v, AuthMethod::S3AccessKey),
        &[],
        Some(v),
    ));
    assert_error(&errors, &["credentials"], kind::NOT_ALLOWED);
    assert_eq!(errors.errors().len(), 1, "{errors}");
    assert!(
        errors.errors()[0].msg.contains("field_mappings"),
        "says what to do instead"
    );
    // Their field mappings can be updated.
    let input = UpdateSecretInput {
        field_mappings: Some(vec![
            RawFieldMapping {
                field_name: "access_key_id".to_owned(),
                reference: "op://Storage/rotated/access_key_id".to_owned(),
            },
            RawFieldMapping {
                field_name: "secret_access_key".to_owned(),
                reference: "op://Storage/rotated/secret_access_key".to_owned(),
            },
        ]),
        ..UpdateSecretInput::default()
    };
    let u = update(
        input,
        AuthMethod::S3AccessKey,
        external_storage(v, AuthMethod::S3AccessKey),
        &[],
        Some(v),
    )
    .unwrap();
    assert_eq!(
        u.field_mappings.unwrap().as_slice()[0].reference.as_str(),
        "op://Storage/rotated/access_key_id"
    );
}

#[test]
fn managed_secrets_reject_field_mappings() {
    let input = UpdateSecretInput {
        field_mappings: Some(valid_mappings(VaultType::Doppler, AuthMethod::S3AccessKey)),
        ..UpdateSecretInput::default()
    };
    let errors = invalid(update(
        input,
        AuthMethod::S3AccessKey,
        SecretStorage::Managed,
        &[],
        Some(VaultType::Doppler),
    ));
    assert_error(&errors, &["field_mappings"], kind::NOT_ALLOWED);
    assert_eq!(errors.errors().len(), 1, "{errors}");
    assert!(
        errors.errors()[0].msg.contains("credentials"),
        "says what to do instead"
    );
}

#[test]
fn credentials_and_field_mappings_together_are_refused() {
    for (storage, vault) in [
        (SecretStorage::Managed, None),
        (
            external_storage(VaultType::Doppler, AuthMethod::S3AccessKey),
            Some(VaultType::Doppler),
        ),
    ] {
        let input = UpdateSecretInput {
            credentials: Some(valid_credentials(AuthMethod::S3AccessKey)),
            field_mappings: Some(valid_mappings(VaultType::Doppler, AuthMethod::S3AccessKey)),
            ..UpdateSecretInput::default()
        };
        let errors = invalid(update(input, AuthMethod::S3AccessKey, storage, &[], vault));
        assert!(
            errors
                .errors()
                .iter()
                .any(|e| e.kind == kind::NOT_ALLOWED && e.path() == "field_mappings" && e.msg.contains("together")),
            "{errors}"
        );
    }
}

#[test]
fn empty_credentials_next_to_field_mappings_count_as_absent_on_update() {
    let v = VaultType::Doppler;
    let input = UpdateSecretInput {
        credentials: Some(Vec::new()),
        field_mappings: Some(valid_mappings(v, AuthMethod::S3AccessKey)),
        ..UpdateSecretInput::default()
    };
    let u = update(
        input,
        AuthMethod::S3AccessKey,
        external_storage(v, AuthMethod::S3AccessKey),
        &[],
        Some(v),
    )
    .unwrap();
    assert!(u.field_mappings.is_some() && u.credentials.is_none());
}

#[test]
fn mappings_of_an_external_secret_whose_connection_is_gone_are_refused() {
    let v = VaultType::Doppler;
    let input = UpdateSecretInput {
        field_mappings: Some(valid_mappings(v, AuthMethod::S3AccessKey)),
        ..UpdateSecretInput::default()
    };
    let errors = invalid(update(
        input,
        AuthMethod::S3AccessKey,
        external_storage(v, AuthMethod::S3AccessKey),
        &[],
        None,
    ));
    assert_error(&errors, &["field_mappings"], kind::NOT_FOUND);
}

#[test]
fn update_field_mappings_are_checked_like_create() {
    let v = VaultType::Infisical;
    let input = UpdateSecretInput {
        field_mappings: Some(vec![
            RawFieldMapping {
                field_name: "access_key_id".to_owned(),
                reference: "bad key".to_owned(),
            },
            RawFieldMapping {
                field_name: "access_key_id".to_owned(),
                reference: "/aws/KEY".to_owned(),
            },
        ]),
        ..UpdateSecretInput::default()
    };
    let errors = invalid(update(
        input,
        AuthMethod::S3AccessKey,
        external_storage(v, AuthMethod::S3AccessKey),
        &[],
        Some(v),
    ));
    assert_error(&errors, &["field_mappings", "0", "reference"], kind::INVALID_FORMAT);
    assert_error(&errors, &["field_mappings", "1", "field_name"], kind::DUPLICATE);
    assert_error(&errors, &["field_mappings"], kind::MISSING);
}

#[test]
fn update_reports_every_failing_field_with_its_path() {
    let input = UpdateSecretInput {
        name: Some("  ".to_owned()),
        description: Some(Some("d".repeat(2001))),
        secret_type: None,
        auth_method: Some("azure_sas_url".to_owned()),
        credentials: Some(raw(&[("sas_url", "http://example.com/?sv=1"), ("account_key", "x")])),
        field_mappings: None,
    };
    let errors = invalid(managed_update(input, AuthMethod::AzureAccountKey));
    assert_error(&errors, &["name"], kind::BLANK);
    assert_error(&errors, &["description"], kind::TOO_LONG);
    assert_error(&errors, &["credentials", "sas_url"], kind::INVALID_FORMAT);
    assert_error(&errors, &["credentials", "account_key"], kind::UNKNOWN_FIELD);
    assert_eq!(errors.errors().len(), 4, "{:?}", paths(&errors));
}

#[test]
fn validation_errors_come_before_the_location_check() {
    // A 422 is reported first; the 409 only once the request itself is valid.
    let input = UpdateSecretInput {
        name: Some(String::new()),
        secret_type: Some("r2".to_owned()),
        auth_method: Some("r2_access_key".to_owned()),
        ..UpdateSecretInput::default()
    };
    let errors = invalid(update(
        input,
        AuthMethod::S3AccessKey,
        SecretStorage::Managed,
        &[linked(1, SecretType::S3)],
        None,
    ));
    assert_error(&errors, &["name"], kind::BLANK);
}
