//! Credential schemas per auth method (the credential schemas and the providers' documented formats): required fields, format
//! checks, unknown/duplicate/oversized values, and that no value is ever printed.

use base64::Engine as _;
use custodian_domain::credentials::MAX_CREDENTIAL_VALUE_CHARS;
use custodian_domain::error::kind;
use custodian_domain::{AuthMethod, CredentialField, Credentials, NewStorageSecret, ValidationErrors};
use secrecy::{ExposeSecret, SecretString};

use crate::support::{AZURE_KEY, SAS_URL, assert_error, gcs_json, managed_input, now, paths, raw, valid_credentials};

/// The credential schemas, written out: the credential fields of every auth method, in wire order.
const EXPECTED_FIELDS: [(&str, &[&str]); 14] = [
    ("s3_access_key", &["access_key_id", "secret_access_key"]),
    ("r2_access_key", &["access_key_id", "secret_access_key"]),
    ("wasabi_access_key", &["access_key_id", "secret_access_key"]),
    ("railway_access_key", &["access_key_id", "secret_access_key"]),
    (
        "oracle_object_storage_s3_access_key",
        &["access_key_id", "secret_access_key"],
    ),
    ("s3_compatible_access_key", &["access_key_id", "secret_access_key"]),
    ("tigris_access_key", &["access_key_id", "secret_access_key"]),
    (
        "digitalocean_spaces_access_key",
        &["access_key_id", "secret_access_key"],
    ),
    ("hetzner_access_key", &["access_key_id", "secret_access_key"]),
    ("rabata_access_key", &["access_key_id", "secret_access_key"]),
    ("azure_account_key", &["account_name", "account_key"]),
    ("azure_sas_url", &["sas_url"]),
    ("gcs_service_account", &["service_account_json"]),
    ("b2_application_key", &["application_key_id", "application_key"]),
];

fn all_methods() -> impl Iterator<Item = (AuthMethod, &'static [&'static str])> {
    EXPECTED_FIELDS
        .iter()
        .map(|(m, f)| (m.parse().expect("seed spelling"), *f))
}

fn parse(method: AuthMethod, pairs: &[(&str, &str)]) -> Result<Credentials, ValidationErrors> {
    Credentials::parse(method, raw(pairs), now())
}

/// `pairs` is refused with `kind` at `[field]`, and no value of 8+ characters shows up in
/// the error's `Display` or `Debug`.
fn refused(method: AuthMethod, pairs: &[(&str, &str)], field: &str, expected_kind: &str) -> ValidationErrors {
    let errors = parse(method, pairs).expect_err(&format!("{method} {:?} must be refused at {field}", keys(pairs)));
    assert_error(&errors, &[field], expected_kind);
    let printed = format!("{errors} {errors:?}");
    for (_, value) in pairs {
        if value.len() >= 8 {
            assert!(
                !printed.contains(value),
                "a credential value leaked into the error: {printed}"
            );
        }
    }
    errors
}

fn keys<'a>(pairs: &[(&'a str, &str)]) -> Vec<&'a str> {
    pairs.iter().map(|(k, _)| *k).collect()
}

/// The valid set of `method` with `field` replaced by `value`.
fn with(method: AuthMethod, field: &str, value: &str) -> Vec<(String, String)> {
    valid_credentials(method)
        .into_iter()
        .map(|(k, v)| {
            let v = if k == field {
                value.to_owned()
            } else {
                v.expose_secret().to_owned()
            };
            (k, v)
        })
        .collect()
}

fn as_pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn accepted_with(method: AuthMethod, field: &str, value: &str) {
    let owned = with(method, field, value);
    if let Err(e) = parse(method, &as_pairs(&owned)) {
        panic!("{method}: {field} = {value:?} must be accepted: {e}");
    }
}

fn refused_with(method: AuthMethod, field: &str, value: &str, expected_kind: &str) -> ValidationErrors {
    let owned = with(method, field, value);
    refused(method, &as_pairs(&owned), field, expected_kind)
}

#[test]
fn every_method_takes_exactly_its_fields() {
    for (method, fields) in all_methods() {
        let fields_of_code: Vec<&str> = method.credential_fields().iter().map(|f| f.as_str()).collect();
        assert_eq!(fields_of_code, fields, "fields of {method}");
        let credentials = Credentials::parse(method, valid_credentials(method), now())
            .unwrap_or_else(|e| panic!("valid {method} credentials refused: {e}"));
        assert_eq!(credentials.auth_method(), method);
        assert_eq!(credentials.field_names(), fields);
        for name in fields {
            let field: CredentialField = name.parse().unwrap();
            assert!(credentials.get(field).is_some(), "{method} keeps {name}");
        }
    }
}

#[test]
fn fields_are_kept_in_wire_order_whatever_order_they_come_in() {
    let mut reversed = valid_credentials(AuthMethod::B2ApplicationKey);
    reversed.reverse();
    let credentials = Credentials::parse(AuthMethod::B2ApplicationKey, reversed, now()).unwrap();
    assert_eq!(credentials.field_names(), ["application_key_id", "application_key"]);
    let key = credentials.get(CredentialField::ApplicationKey).unwrap();
    assert_eq!(key.expose_secret(), "K004abcdefghijklmnopqrstuvwxyz0");
}

#[test]
fn each_missing_field_is_reported_at_its_name() {
    for (method, fields) in all_methods() {
        for missing in fields {
            let rest: Vec<(String, SecretString)> = valid_credentials(method)
                .into_iter()
                .filter(|(k, _)| k != missing)
                .collect();
            let errors = Credentials::parse(method, rest, now()).unwrap_err();
            assert_error(&errors, &[missing], kind::MISSING);
            assert_eq!(errors.errors().len(), 1, "{method} without {missing}: {errors}");
            assert!(
                errors.errors()[0].msg.contains(method.as_str()),
                "names the auth method"
            );
        }
        let errors = Credentials::parse(method, Vec::new(), now()).unwrap_err();
        assert_eq!(
            paths(&errors),
            fields.to_vec(),
            "{method} with nothing: every field missing"
        );
    }
}

#[test]
fn blank_and_padded_values_are_refused_for_every_field() {
    for (method, fields) in all_methods() {
        for field in fields {
            refused_with(method, field, "", kind::BLANK);
            refused_with(method, field, "   ", kind::BLANK);
            refused_with(method, field, "\t\n", kind::BLANK);
            let valid = valid_credentials(method)
                .into_iter()
                .find(|(k, _)| k == field)
                .unwrap()
                .1;
            let valid = valid.expose_secret();
            refused_with(method, field, &format!(" {valid}"), kind::WHITESPACE);
            refused_with(method, field, &format!("{valid}\n"), kind::WHITESPACE);
        }
    }
}

#[test]
fn values_longer_than_8192_characters_are_refused() {
    assert_eq!(MAX_CREDENTIAL_VALUE_CHARS, 8192);
    let at_limit = "k".repeat(8192);
    let over = "k".repeat(8193);
    // Fields without a format check: the limit itself is accepted.
    for method in [
        AuthMethod::S3AccessKey,
        AuthMethod::HetznerAccessKey,
        AuthMethod::B2ApplicationKey,
    ] {
        for field in method.credential_fields() {
            accepted_with(method, field.as_str(), &at_limit);
            refused_with(method, field.as_str(), &over, kind::TOO_LONG);
        }
    }
    // Characters, not bytes: 8192 two-byte characters fit.
    accepted_with(AuthMethod::R2AccessKey, "secret_access_key", &"é".repeat(8192));
    refused_with(
        AuthMethod::R2AccessKey,
        "secret_access_key",
        &"é".repeat(8193),
        kind::TOO_LONG,
    );
    // Format-checked fields report the length first.
    refused_with(
        AuthMethod::GcsServiceAccount,
        "service_account_json",
        &over,
        kind::TOO_LONG,
    );
    refused_with(
        AuthMethod::AzureSasUrl,
        "sas_url",
        &format!("{SAS_URL}&x={over}"),
        kind::TOO_LONG,
    );
}

#[test]
fn unknown_fields_are_refused_with_the_expected_list() {
    let mut pairs = valid_credentials(AuthMethod::S3AccessKey);
    pairs.extend(raw(&[("session_token", "FwoGZXIvYXdzEBY")]));
    let errors = Credentials::parse(AuthMethod::S3AccessKey, pairs, now()).unwrap_err();
    assert_error(&errors, &["session_token"], kind::UNKNOWN_FIELD);
    let msg = &errors.errors()[0].msg;
    assert!(
        msg.contains("access_key_id") && msg.contains("secret_access_key"),
        "{msg}"
    );
    assert_eq!(errors.errors().len(), 1);

    // A real field of another auth method is unknown here too.
    for (method, fields) in all_methods() {
        for (other, other_fields) in all_methods() {
            for foreign in other_fields.iter().filter(|f| !fields.contains(f)) {
                let mut pairs = valid_credentials(method);
                pairs.extend(raw(&[(foreign, "value-of-another-method")]));
                let errors = Credentials::parse(method, pairs, now()).unwrap_err();
                assert_error(&errors, &[foreign], kind::UNKNOWN_FIELD);
                let _ = other;
            }
        }
    }
    // Field names are exact.
    let errors = parse(AuthMethod::AzureSasUrl, &[("SAS_URL", SAS_URL), ("sas_url ", SAS_URL)]).unwrap_err();
    assert_error(&errors, &["SAS_URL"], kind::UNKNOWN_FIELD);
    assert_error(&errors, &["sas_url "], kind::UNKNOWN_FIELD);
    assert_error(&errors, &["sas_url"], kind::MISSING);
}

#[test]
fn a_field_given_twice_is_a_duplicate() {
    let mut pairs = valid_credentials(AuthMethod::WasabiAccessKey);
    pairs.extend(raw(&[("access_key_id", "AKIAOTHERKEY00000000")]));
    let errors = Credentials::parse(AuthMethod::WasabiAccessKey, pairs, now()).unwrap_err();
    assert_error(&errors, &["access_key_id"], kind::DUPLICATE);
    assert_eq!(errors.errors().len(), 1, "{errors}");
}

#[test]
fn a_field_given_twice_is_a_duplicate_even_when_the_first_value_is_invalid() {
    let errors = parse(
        AuthMethod::AzureAccountKey,
        &[
            ("account_name", "Not Valid"),
            ("account_name", "custodiantest"),
            ("account_key", AZURE_KEY),
        ],
    )
    .unwrap_err();
    assert_error(&errors, &["account_name"], kind::INVALID_FORMAT);
    assert!(
        errors
            .errors()
            .iter()
            .any(|e| e.kind == kind::DUPLICATE && e.path() == "account_name"),
        "the second account_name is a duplicate: {errors}"
    );
}

#[test]
fn every_failing_field_is_reported_at_once() {
    let errors = parse(
        AuthMethod::AzureAccountKey,
        &[("account_name", "UPPER"), ("account_key", "   "), ("sas_url", SAS_URL)],
    )
    .unwrap_err();
    assert_error(&errors, &["account_name"], kind::INVALID_FORMAT);
    assert_error(&errors, &["account_key"], kind::BLANK);
    assert_error(&errors, &["sas_url"], kind::UNKNOWN_FIELD);
    assert_eq!(errors.errors().len(), 3, "{errors}");
}

#[test]
fn access_keys_are_not_judged_on_length_or_alphabet() {
    // Providers differ: AWS, R2 (32/64 hex), Hetzner, Tigris, MinIO-style keys.
    let samples = [
        ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        (
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        ("tid_ABCdef123", "tsec_ABCdef123+/="),
        ("k", "s"),
        ("minio-user", "minio password with spaces inside"),
    ];
    for method in AuthMethod::ALL.iter().filter(|m| m.as_str().ends_with("_access_key")) {
        for (id, secret) in samples {
            let result = parse(*method, &[("access_key_id", id), ("secret_access_key", secret)]);
            assert!(result.is_ok(), "{method} ({id}, {secret}): {result:?}");
        }
    }
    // B2 keys are opaque as well.
    for (id, key) in [
        ("0041234567890ab0000000001", "K004abcdefghijklmnopqrstuvwxyz0"),
        ("a1b2c3d4e5f6", "0f".repeat(21).as_str()),
    ] {
        assert!(
            parse(
                AuthMethod::B2ApplicationKey,
                &[("application_key_id", id), ("application_key", key)]
            )
            .is_ok()
        );
    }
}

#[test]
fn azure_account_name_is_3_to_24_lowercase_letters_and_digits() {
    let m = AuthMethod::AzureAccountKey;
    for ok in ["abc", "custodiantest", "store2026", &"a".repeat(24), "123"] {
        accepted_with(m, "account_name", ok);
    }
    for bad in [
        "ab",
        &"a".repeat(25),
        "Custodian",
        "cust-odian",
        "cust_odian",
        "cust.odian",
        "caf\u{e9}store",
    ] {
        refused_with(m, "account_name", bad, kind::INVALID_FORMAT);
    }
}

#[test]
fn azure_account_key_is_base64_of_64_bytes() {
    let m = AuthMethod::AzureAccountKey;
    let b64 = base64::engine::general_purpose::STANDARD;
    accepted_with(m, "account_key", AZURE_KEY);
    accepted_with(m, "account_key", &b64.encode([0xffu8; 64]));
    for bad_len in [32usize, 63, 65, 96] {
        refused_with(m, "account_key", &b64.encode(vec![7u8; bad_len]), kind::INVALID_FORMAT);
    }
    // Missing padding, the URL-safe alphabet, stray characters, plain text.
    refused_with(m, "account_key", AZURE_KEY.trim_end_matches('='), kind::INVALID_FORMAT);
    refused_with(m, "account_key", &AZURE_KEY.replace('+', "-"), kind::INVALID_FORMAT);
    refused_with(
        m,
        "account_key",
        &format!("{}!==", &AZURE_KEY[..85]),
        kind::INVALID_FORMAT,
    );
    refused_with(m, "account_key", "not-a-key-canary-3f9a", kind::INVALID_FORMAT);
}

fn sas(query: &str) -> String {
    format!("https://custodiantest.blob.core.windows.net/backups?{query}")
}

#[test]
fn sas_url_needs_https_and_sv_sig_se() {
    let m = AuthMethod::AzureSasUrl;
    accepted_with(m, "sas_url", SAS_URL);
    accepted_with(
        m,
        "sas_url",
        &sas("sv=2022-11-02&ss=b&srt=co&sp=rl&se=2027-01-01T00:00Z&sig=abc"),
    );
    accepted_with(m, "sas_url", &sas("se=2027-01-01&sig=abc&sv=2022-11-02"));
    // Azurite, the local emulator, speaks plain http on loopback.
    accepted_with(
        m,
        "sas_url",
        "http://127.0.0.1:10000/devstoreaccount1/c?sv=2022-11-02&se=2030-01-01T00:00:00Z&sig=abc",
    );

    refused_with(
        m,
        "sas_url",
        "http://custodiantest.blob.core.windows.net/c?sv=1&se=2030-01-01&sig=abc",
        kind::INVALID_FORMAT,
    );
    refused_with(
        m,
        "sas_url",
        "ftp://custodiantest.blob.core.windows.net/c?sv=1&se=2030-01-01&sig=abc",
        kind::INVALID_FORMAT,
    );
    refused_with(
        m,
        "sas_url",
        "custodiantest.blob.core.windows.net/c?sv=1&se=2030-01-01&sig=abc",
        kind::INVALID_FORMAT,
    );
    refused_with(m, "sas_url", "sv=1&se=2030-01-01&sig=abc", kind::INVALID_FORMAT);
    for missing in ["sv", "sig", "se"] {
        let query: Vec<&str> = ["sv=2022-11-02", "se=2030-01-01T00:00:00Z", "sig=abc"]
            .into_iter()
            .filter(|p| !p.starts_with(&format!("{missing}=")))
            .collect();
        let errors = refused_with(m, "sas_url", &sas(&query.join("&")), kind::INVALID_FORMAT);
        assert!(errors.errors()[0].msg.contains(missing), "names {missing}: {errors}");
        // Present but empty counts as missing.
        let emptied = sas(&format!("{}&{missing}=", query.join("&")));
        refused_with(m, "sas_url", &emptied, kind::INVALID_FORMAT);
    }
    refused_with(m, "sas_url", &sas("sv=1&se=next-year&sig=abc"), kind::INVALID_FORMAT);
    refused_with(m, "sas_url", &sas("sv=1&se=2030-13-01&sig=abc"), kind::INVALID_FORMAT);
}

#[test]
fn sas_url_with_expiry_in_the_past_is_expired() {
    let m = AuthMethod::AzureSasUrl;
    // now() is 2026-06-01T12:00:00Z.
    for past in [
        "2026-06-01T11:59:59Z",
        "2025-01-01T00:00:00Z",
        "2026-05-31",
        "2026-06-01T11:00Z",
    ] {
        let url = sas(&format!("sv=2022-11-02&se={past}&sig=c2VjcmV0Y2FuYXJ5"));
        let errors = refused_with(m, "sas_url", &url, kind::EXPIRED);
        assert!(
            !format!("{errors:?}").contains("c2VjcmV0Y2FuYXJ5"),
            "the signature never shows"
        );
    }
    for future in [
        "2026-06-01T12:00:01Z",
        "2030-01-01T00:00:00.0000000Z",
        "2026-06-01T14:00:00%2B02:00",
        "2026-06-01",
        "2026-06-02T00:00Z",
    ] {
        accepted_with(m, "sas_url", &sas(&format!("sv=2022-11-02&se={future}&sig=abc")));
    }
    // An expiry given with an offset is compared in UTC: 13:30+02:00 is 11:30Z, before now.
    refused_with(
        m,
        "sas_url",
        &sas("sv=1&se=2026-06-01T13:30:00%2B02:00&sig=abc"),
        kind::EXPIRED,
    );
}

#[test]
fn gcs_service_account_json_is_a_key_file() {
    let m = AuthMethod::GcsServiceAccount;
    accepted_with(m, "service_account_json", &gcs_json());
    let base: serde_json::Value = serde_json::from_str(&gcs_json()).unwrap();
    let variant = |key: &str, value: Option<serde_json::Value>| {
        let mut v = base.clone();
        let obj = v.as_object_mut().unwrap();
        match value {
            Some(x) => obj.insert(key.to_owned(), x),
            None => obj.remove(key),
        };
        v.to_string()
    };
    // Extra fields (universe_domain, …) are fine.
    accepted_with(
        m,
        "service_account_json",
        &variant("universe_domain", Some("googleapis.com".into())),
    );

    let cases: Vec<(String, &str)> = vec![
        ("{not json".to_owned(), "JSON"),
        ("[1, 2, 3]".to_owned(), "object"),
        ("\"service_account\"".to_owned(), "object"),
        (variant("type", Some("authorized_user".into())), "type"),
        (variant("type", None), "type"),
        (variant("private_key", None), "private_key"),
        (variant("private_key", Some("MIIEvQIBADANBgkq".into())), "private_key"),
        (variant("private_key", Some(serde_json::json!(42))), "private_key"),
        (variant("client_email", None), "client_email"),
        (variant("client_email", Some("svc.example.com".into())), "client_email"),
        (variant("token_uri", None), "token_uri"),
        (
            variant("token_uri", Some("oauth2.googleapis.com/token".into())),
            "token_uri",
        ),
    ];
    for (json, named) in cases {
        let errors = refused_with(m, "service_account_json", &json, kind::INVALID_FORMAT);
        assert!(
            errors.errors()[0].msg.contains(named),
            "{json}: message names {named}: {errors}"
        );
    }
    // Several problems are listed together.
    let errors = refused_with(m, "service_account_json", r#"{"type":"x"}"#, kind::INVALID_FORMAT);
    let msg = &errors.errors()[0].msg;
    for named in ["type", "private_key", "client_email", "token_uri"] {
        assert!(msg.contains(named), "{msg}");
    }
    // The private key is never repeated in the error.
    let leaky = variant("client_email", None).replace("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "CANARYPRIVATEKEY0042");
    refused_with(m, "service_account_json", &leaky, kind::INVALID_FORMAT);
}

const CANARY: &str = "CANARY-7d1e4c-do-not-print";

fn canary_credentials(method: AuthMethod) -> Vec<(String, SecretString)> {
    match method {
        AuthMethod::AzureAccountKey => {
            let key =
                base64::engine::general_purpose::STANDARD.encode(format!("{CANARY}{}", "x".repeat(64 - CANARY.len())));
            raw(&[("account_name", "canarystore"), ("account_key", &key)])
        }
        AuthMethod::AzureSasUrl => raw(&[("sas_url", &format!("{SAS_URL}&canary={CANARY}"))]),
        AuthMethod::GcsServiceAccount => raw(&[(
            "service_account_json",
            &gcs_json().replace("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", CANARY),
        )]),
        _ => method
            .credential_fields()
            .iter()
            .map(|f| {
                (
                    f.as_str().to_owned(),
                    SecretString::from(format!("{CANARY}-{}", f.as_str())),
                )
            })
            .collect(),
    }
}

#[test]
fn debug_of_parsed_credentials_never_shows_a_value() {
    for method in AuthMethod::ALL.iter().copied() {
        let credentials =
            Credentials::parse(method, canary_credentials(method), now()).unwrap_or_else(|e| panic!("{method}: {e}"));
        for printed in [format!("{credentials:?}"), format!("{credentials:#?}")] {
            assert!(!printed.contains("CANARY"), "{method}: {printed}");
            assert!(
                printed.contains(&format!("{method:?}")),
                "Debug still names the method: {printed}"
            );
        }
        // Neither does the checked create request that holds them, nor the raw input.
        let input = managed_input(
            method.secret_type().as_str(),
            method.as_str(),
            canary_credentials(method),
        );
        assert!(!format!("{input:?}").contains("CANARY"), "{method}: raw input Debug");
        let secret = NewStorageSecret::parse(input, None, now()).unwrap();
        assert!(
            !format!("{secret:?}").contains("CANARY"),
            "{method}: NewStorageSecret Debug"
        );
        // Nor an update that rotates to them.
        let update_input = custodian_domain::UpdateSecretInput {
            credentials: Some(canary_credentials(method)),
            ..custodian_domain::UpdateSecretInput::default()
        };
        assert!(
            !format!("{update_input:?}").contains("CANARY"),
            "{method}: update input Debug"
        );
        let current = crate::support::stored_secret(method, custodian_domain::SecretStorage::Managed);
        let update = custodian_domain::SecretUpdate::parse(update_input, &current, &[], None, now()).unwrap();
        assert!(update.credentials.is_some());
        assert!(
            !format!("{update:?}").contains("CANARY"),
            "{method}: SecretUpdate Debug"
        );
        // The payload for a credential store is a secret too.
        let payload = credentials.to_payload();
        assert!(!format!("{payload:?}").contains("CANARY"));
        // (The Azure key carries the canary base64-encoded.)
        if method != AuthMethod::AzureAccountKey {
            assert!(
                payload.expose_secret().contains(CANARY),
                "the payload carries the values"
            );
        }
    }
}

#[test]
fn errors_about_canary_values_never_show_them() {
    let cases: Vec<(AuthMethod, Vec<(String, SecretString)>)> = vec![
        (
            AuthMethod::S3AccessKey,
            raw(&[
                ("access_key_id", &format!(" {CANARY}")),
                ("secret_access_key", &format!("{CANARY}\n")),
            ]),
        ),
        (
            AuthMethod::AzureAccountKey,
            raw(&[("account_name", CANARY), ("account_key", CANARY)]),
        ),
        (
            AuthMethod::AzureSasUrl,
            raw(&[(
                "sas_url",
                &format!("https://a.blob.core.windows.net/?sv=1&se=2020-01-01&sig={CANARY}"),
            )]),
        ),
        (
            AuthMethod::AzureSasUrl,
            raw(&[("sas_url", &format!("http://example.com/?sig={CANARY}"))]),
        ),
        (
            AuthMethod::GcsServiceAccount,
            raw(&[("service_account_json", &format!("{{\"private_key\":\"{CANARY}\"}}"))]),
        ),
        (
            AuthMethod::B2ApplicationKey,
            raw(&[("application_key", &CANARY.repeat(400))]),
        ),
    ];
    for (method, pairs) in cases {
        let errors = Credentials::parse(method, pairs, now()).unwrap_err();
        let printed = format!("{errors} {errors:?} {errors:#?}");
        assert!(!printed.contains("CANARY"), "{method}: {printed}");
    }
}

#[test]
fn payload_round_trips_and_is_checked_again() {
    for method in AuthMethod::ALL.iter().copied() {
        let credentials = Credentials::parse(method, valid_credentials(method), now()).unwrap();
        let back = Credentials::from_payload(method, &credentials.to_payload(), now()).unwrap();
        assert_eq!(back.field_names(), credentials.field_names());
        for field in method.credential_fields() {
            assert_eq!(
                back.get(*field).unwrap().expose_secret(),
                credentials.get(*field).unwrap().expose_secret()
            );
        }
    }
    // A stored payload read under another auth method is refused, not trusted.
    let s3 = Credentials::parse(
        AuthMethod::S3AccessKey,
        valid_credentials(AuthMethod::S3AccessKey),
        now(),
    )
    .unwrap();
    let errors = Credentials::from_payload(AuthMethod::B2ApplicationKey, &s3.to_payload(), now()).unwrap_err();
    assert_error(&errors, &["access_key_id"], kind::UNKNOWN_FIELD);
    assert_error(&errors, &["application_key"], kind::MISSING);
    // Garbage and non-string values.
    let garbage = SecretString::from(format!("not json {CANARY}"));
    let errors = Credentials::from_payload(AuthMethod::S3AccessKey, &garbage, now()).unwrap_err();
    assert!(!format!("{errors:?}").contains("CANARY"));
    let array = SecretString::from("[]".to_owned());
    assert!(Credentials::from_payload(AuthMethod::S3AccessKey, &array, now()).is_err());
    let number = SecretString::from(r#"{"access_key_id":12,"secret_access_key":"x"}"#.to_owned());
    let errors = Credentials::from_payload(AuthMethod::S3AccessKey, &number, now()).unwrap_err();
    assert_error(&errors, &["access_key_id"], kind::INVALID_FORMAT);
    // A SAS URL stored before its expiry is refused once it has expired.
    let sas_creds = Credentials::parse(
        AuthMethod::AzureSasUrl,
        valid_credentials(AuthMethod::AzureSasUrl),
        now(),
    )
    .unwrap();
    let later = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:01Z")
        .unwrap()
        .to_utc();
    let errors = Credentials::from_payload(AuthMethod::AzureSasUrl, &sas_creds.to_payload(), later).unwrap_err();
    assert_error(&errors, &["sas_url"], kind::EXPIRED);
}
