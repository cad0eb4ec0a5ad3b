//! The secret_type × auth_method matrix of the storage-secret API: all 13 × 14 pairs.

use custodian_domain::error::kind;
use custodian_domain::{
    AuthMethod, NewSecretStorage, NewStorageSecret, SecretStorage, SecretType, SecretUpdate, UpdateSecretInput,
};

use crate::support::{assert_error, error_at, managed_input, now, stored_secret, valid_credentials};

/// `secret_type` options of the create and update requests, in the reference's order.
const REFERENCE_SECRET_TYPES: [&str; 13] = [
    "s3",
    "azure_blob",
    "gcs",
    "r2",
    "b2",
    "wasabi",
    "railway",
    "oracle_object_storage_s3",
    "s3_compatible",
    "tigris",
    "digitalocean_spaces",
    "hetzner",
    "rabata",
];

/// `auth_method` options of the requests, in the reference's order.
const SEED_AUTH_METHODS: [&str; 14] = [
    "s3_access_key",
    "r2_access_key",
    "wasabi_access_key",
    "railway_access_key",
    "oracle_object_storage_s3_access_key",
    "s3_compatible_access_key",
    "tigris_access_key",
    "digitalocean_spaces_access_key",
    "hetzner_access_key",
    "rabata_access_key",
    "azure_account_key",
    "azure_sas_url",
    "gcs_service_account",
    "b2_application_key",
];

/// The create reference shows older, shorter lists; they must stay a subset of the update reference's.
const SEED_000_SECRET_TYPES: [&str; 9] = [
    "s3",
    "azure_blob",
    "gcs",
    "r2",
    "b2",
    "wasabi",
    "railway",
    "oracle_object_storage_s3",
    "s3_compatible",
];
const SEED_000_AUTH_METHODS: [&str; 10] = [
    "s3_access_key",
    "r2_access_key",
    "wasabi_access_key",
    "railway_access_key",
    "oracle_object_storage_s3_access_key",
    "s3_compatible_access_key",
    "azure_account_key",
    "azure_sas_url",
    "gcs_service_account",
    "b2_application_key",
];

/// The matrix, written out: each secret type with the only auth methods it accepts.
const EXPECTED: [(&str, &[&str]); 13] = [
    ("s3", &["s3_access_key"]),
    ("r2", &["r2_access_key"]),
    ("wasabi", &["wasabi_access_key"]),
    ("railway", &["railway_access_key"]),
    ("oracle_object_storage_s3", &["oracle_object_storage_s3_access_key"]),
    ("s3_compatible", &["s3_compatible_access_key"]),
    ("tigris", &["tigris_access_key"]),
    ("digitalocean_spaces", &["digitalocean_spaces_access_key"]),
    ("hetzner", &["hetzner_access_key"]),
    ("rabata", &["rabata_access_key"]),
    ("azure_blob", &["azure_account_key", "azure_sas_url"]),
    ("gcs", &["gcs_service_account"]),
    ("b2", &["b2_application_key"]),
];

fn expected_accepts(secret_type: &str, auth_method: &str) -> bool {
    EXPECTED
        .iter()
        .find(|(t, _)| *t == secret_type)
        .unwrap_or_else(|| panic!("{secret_type} missing from the expectation table"))
        .1
        .contains(&auth_method)
}

fn method(text: &str) -> AuthMethod {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn secret_type_list_is_exactly_seed_001s_13() {
    let listed: Vec<&str> = SecretType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(listed, REFERENCE_SECRET_TYPES);
    assert_eq!(SecretType::ALL.len(), 13);
    for text in REFERENCE_SECRET_TYPES {
        let parsed: SecretType = text.parse().unwrap();
        assert_eq!(parsed.as_str(), text);
        assert_eq!(parsed.to_string(), text);
    }
    // The refusal lists exactly the API reference's spellings.
    let err = "S3".parse::<SecretType>().unwrap_err();
    assert_eq!(err.expected, REFERENCE_SECRET_TYPES);
}

#[test]
fn auth_method_list_is_exactly_seed_001s_14() {
    let listed: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    assert_eq!(listed, SEED_AUTH_METHODS);
    assert_eq!(AuthMethod::ALL.len(), 14);
    for text in SEED_AUTH_METHODS {
        let parsed: AuthMethod = text.parse().unwrap();
        assert_eq!(parsed.as_str(), text);
        assert_eq!(parsed.to_string(), text);
    }
    let err = "access_key".parse::<AuthMethod>().unwrap_err();
    assert_eq!(err.expected, SEED_AUTH_METHODS);
}

#[test]
fn seed_000_enums_are_still_accepted() {
    for text in SEED_000_SECRET_TYPES {
        assert!(text.parse::<SecretType>().is_ok(), "{text}");
    }
    for text in SEED_000_AUTH_METHODS {
        assert!(text.parse::<AuthMethod>().is_ok(), "{text}");
    }
}

#[test]
fn enum_spellings_are_exact() {
    for near_miss in [
        "S3",
        " s3",
        "s3 ",
        "azure-blob",
        "azureBlob",
        "digital_ocean_spaces",
        "oracle",
        "",
    ] {
        assert!(
            near_miss.parse::<SecretType>().is_err(),
            "{near_miss:?} must be refused"
        );
    }
    for near_miss in [
        "S3_ACCESS_KEY",
        "s3-access-key",
        "azure_sas",
        "gcs_service_account ",
        "b2_app_key",
        "",
    ] {
        assert!(
            near_miss.parse::<AuthMethod>().is_err(),
            "{near_miss:?} must be refused"
        );
    }
}

#[test]
fn expectation_table_covers_every_type_and_every_method_once() {
    let types: Vec<&str> = EXPECTED.iter().map(|(t, _)| *t).collect();
    let mut sorted_types = types.clone();
    sorted_types.sort_unstable();
    let mut seed_types = REFERENCE_SECRET_TYPES.to_vec();
    seed_types.sort_unstable();
    assert_eq!(sorted_types, seed_types);

    let mut methods: Vec<&str> = EXPECTED.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    methods.sort_unstable();
    let mut seed_methods = SEED_AUTH_METHODS.to_vec();
    seed_methods.sort_unstable();
    assert_eq!(
        methods, seed_methods,
        "each auth method belongs to exactly one secret type"
    );
}

#[test]
fn accepts_and_auth_methods_agree_with_the_table() {
    for t in REFERENCE_SECRET_TYPES {
        let secret_type: SecretType = t.parse().unwrap();
        let listed: Vec<&str> = secret_type.auth_methods().iter().map(|m| m.as_str()).collect();
        let expected = EXPECTED.iter().find(|(e, _)| *e == t).unwrap().1;
        assert_eq!(listed, expected, "auth methods of {t}");
        for m in SEED_AUTH_METHODS {
            assert_eq!(secret_type.accepts(method(m)), expected_accepts(t, m), "({t}, {m})");
        }
    }
}

#[test]
fn create_checks_all_182_secret_type_auth_method_pairs() {
    let mut checked = 0;
    let mut accepted = 0;
    for t in REFERENCE_SECRET_TYPES {
        for m in SEED_AUTH_METHODS {
            checked += 1;
            let input = managed_input(t, m, valid_credentials(method(m)));
            let result = NewStorageSecret::parse(input, None, now());
            if expected_accepts(t, m) {
                accepted += 1;
                let secret = result.unwrap_or_else(|e| panic!("({t}, {m}) must be accepted: {e}"));
                assert_eq!(secret.secret_type.as_str(), t);
                assert_eq!(secret.auth_method.as_str(), m);
                let NewSecretStorage::Managed(credentials) = &secret.storage else {
                    panic!("({t}, {m}) must be a managed secret");
                };
                assert_eq!(credentials.auth_method().as_str(), m);
            } else {
                let errors = result.expect_err(&format!("({t}, {m}) must be refused"));
                assert_error(&errors, &["auth_method"], kind::INVALID_PAIR);
                assert_eq!(errors.errors().len(), 1, "({t}, {m}): only the pair is wrong: {errors}");
                let msg = &error_at(&errors, &["auth_method"]).msg;
                assert!(
                    msg.contains(m) && msg.contains(t),
                    "({t}, {m}) message names the rule: {msg}"
                );
                for valid in EXPECTED.iter().find(|(e, _)| *e == t).unwrap().1 {
                    assert!(msg.contains(valid), "({t}, {m}) message lists {valid}: {msg}");
                }
            }
        }
    }
    println!(
        "matrix (create): {checked} pairs checked, {accepted} accepted, {} refused",
        checked - accepted
    );
    assert_eq!(checked, 182);
    assert_eq!(accepted, 14);
    assert_eq!(checked - accepted, 168);
}

#[test]
fn update_checks_all_182_secret_type_auth_method_pairs() {
    let mut checked = 0;
    let mut accepted = 0;
    for t in REFERENCE_SECRET_TYPES {
        for m in SEED_AUTH_METHODS {
            checked += 1;
            // Start from a secret of another type, so the update really changes the pair.
            let start = if t == "s3" {
                AuthMethod::GcsServiceAccount
            } else {
                AuthMethod::S3AccessKey
            };
            let current = stored_secret(start, SecretStorage::Managed);
            let input = UpdateSecretInput {
                secret_type: Some(t.to_owned()),
                auth_method: Some(m.to_owned()),
                credentials: Some(valid_credentials(method(m))),
                ..UpdateSecretInput::default()
            };
            let result = SecretUpdate::parse(input, &current, &[], None, now());
            if expected_accepts(t, m) {
                accepted += 1;
                let update = result.unwrap_or_else(|e| panic!("({t}, {m}) must be accepted: {e}"));
                assert_eq!(update.secret_type.map(|s| s.as_str()), Some(t));
                assert_eq!(update.auth_method.map(|a| a.as_str()), Some(m));
                assert!(update.credentials.is_some());
            } else {
                let rejection = result.expect_err(&format!("({t}, {m}) must be refused"));
                let custodian_domain::UpdateRejection::Invalid(errors) = rejection else {
                    panic!("({t}, {m}): a bad pair is a 422, not {rejection:?}");
                };
                assert_error(&errors, &["auth_method"], kind::INVALID_PAIR);
                assert_eq!(errors.errors().len(), 1, "({t}, {m}): {errors}");
            }
        }
    }
    println!(
        "matrix (update): {checked} pairs checked, {accepted} accepted, {} refused",
        checked - accepted
    );
    assert_eq!((checked, accepted), (182, 14));
}
