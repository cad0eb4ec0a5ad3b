//! Property tests: the bounds hold for every input, and no parser panics on any string.

use custodian_domain::error::kind;
use custodian_domain::{
    AuthMethod, BucketName, CreateSecretInput, Credentials, Description, DisplayName, Email, EndpointUrl,
    LocationInput, Name, NewLocation, NewStorageSecret, NewVaultConnection, RawFieldMapping, Region, SecretType,
    TokenName, VaultConnectionInput, VaultReference, VaultRotation, VaultType,
};
use proptest::prelude::*;
use secrecy::SecretString;

use crate::support::{now, raw};

/// A name of 1..=255 characters: no control characters, no padding.
fn valid_name() -> impl Strategy<Value = String> {
    "[^\\s\\p{Cc}]([^\\p{Cc}]{0,253}[^\\s\\p{Cc}])?"
}

/// Any string without whitespace or control characters of 1..=255 characters.
fn valid_bucket() -> impl Strategy<Value = String> {
    "[^\\s\\p{Cc}]{1,255}"
}

fn auth_method() -> impl Strategy<Value = AuthMethod> {
    prop::sample::select(AuthMethod::ALL)
}

fn vault_type() -> impl Strategy<Value = VaultType> {
    prop::sample::select(VaultType::ALL)
}

/// Strings that look like SAS URLs, to reach the query and date parsing.
fn sas_like() -> impl Strategy<Value = String> {
    "(https|http)://[a-z0-9.]{0,12}(:[0-9]{1,5})?/[a-z]{0,5}\\?((sv|se|sig|st|sp)=[-0-9A-Za-z:+%.TZ]{0,24}&?){0,5}"
}

proptest! {
    #[test]
    fn names_of_1_to_255_characters_without_padding_are_accepted(value in valid_name()) {
        let n = value.chars().count();
        prop_assert!((1..=255).contains(&n));
        let parsed = Name::parse_at("name", value.clone());
        prop_assert!(parsed.is_ok(), "{:?}: {:?}", value, parsed);
        prop_assert!(DisplayName::parse_at("display_name", value.clone()).is_ok());
        prop_assert_eq!(parsed.unwrap().into_inner(), value);
    }

    #[test]
    fn names_over_255_characters_are_refused(value in "[^\\s\\p{Cc}]\\PC{255,400}") {
        let err = Name::parse_at("name", value).unwrap_err();
        prop_assert_eq!(err.kind, kind::TOO_LONG);
        prop_assert_eq!(err.loc, vec!["name".to_owned()]);
    }

    #[test]
    fn padded_names_are_refused(core in "[^\\s\\p{Cc}]{1,200}", pad in "[ \\t\\n\\u{a0}\\u{2003}]{1,3}", front in any::<bool>()) {
        let value = if front { format!("{pad}{core}") } else { format!("{core}{pad}") };
        let err = Name::parse_at("name", value).unwrap_err();
        prop_assert_eq!(err.kind, kind::WHITESPACE);
    }

    #[test]
    fn blank_names_are_refused(value in "[ \\t\\n\\r\\u{a0}\\u{3000}]{0,20}") {
        let err = Name::parse_at("name", value).unwrap_err();
        prop_assert_eq!(err.kind, kind::BLANK);
    }

    #[test]
    fn descriptions_up_to_2000_characters_are_accepted(value in "[^\\p{Cc}]{0,2000}", lines in "[\\n\\t]{0,3}") {
        let text = format!("{lines}{value}");
        let text: String = text.chars().take(2000).collect();
        let parsed = Description::parse_at("description", text.clone());
        prop_assert!(parsed.is_ok(), "{:?}", parsed);
        prop_assert_eq!(parsed.unwrap().into_inner(), text);
    }

    #[test]
    fn descriptions_over_2000_characters_are_refused(value in "\\PC{2001,2300}") {
        let err = Description::parse_at("description", value).unwrap_err();
        prop_assert_eq!(err.kind, kind::TOO_LONG);
    }

    #[test]
    fn emails_are_lower_cased_and_idempotent(
        local in "[A-Za-z0-9._%+-]{1,40}",
        domain in "[A-Za-z0-9]{1,20}(\\.[A-Za-z]{2,10}){0,3}",
    ) {
        let address = format!("{local}@{domain}");
        let parsed = Email::parse_at("email", &address);
        prop_assert!(parsed.is_ok(), "{}: {:?}", address, parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.as_str(), address.to_lowercase());
        prop_assert!(!parsed.as_str().chars().any(|c| c.is_ascii_uppercase()));
        let again = Email::parse_at("email", parsed.as_str()).unwrap();
        prop_assert_eq!(again, parsed);
    }

    #[test]
    fn any_accepted_email_parses_again_to_itself(
        value in "[^\\s@]{1,30}@[A-Za-z0-9-]{1,10}(\\.[A-Za-z0-9-]{1,10}){0,2}",
    ) {
        if let Ok(parsed) = Email::parse_at("email", &value) {
            prop_assert_eq!(parsed.as_str(), value.to_lowercase());
            let again = Email::parse_at("email", parsed.as_str());
            prop_assert_eq!(again, Ok(parsed));
        }
    }

    #[test]
    fn bucket_names_without_whitespace_are_accepted(value in valid_bucket()) {
        let parsed = BucketName::parse_at("bucket_name", value.clone());
        prop_assert!(parsed.is_ok(), "{:?}", parsed);
        prop_assert_eq!(parsed.unwrap().into_inner(), value);
    }

    #[test]
    fn bucket_names_with_inner_whitespace_or_control_characters_are_refused(
        left in "[a-z0-9]{1,100}",
        bad in "[ \\t\\n\\r\\u{0}\\u{1b}\\u{7f}\\u{a0}\\u{2028}]",
        right in "[a-z0-9]{1,100}",
    ) {
        let err = BucketName::parse_at("bucket_name", format!("{left}{bad}{right}")).unwrap_err();
        prop_assert_eq!(err.kind, kind::INVALID_FORMAT);
    }

    #[test]
    fn bucket_names_over_255_characters_are_refused(value in "[a-z0-9.-]{256,400}") {
        let err = BucketName::parse_at("bucket_name", value).unwrap_err();
        prop_assert_eq!(err.kind, kind::TOO_LONG);
    }

    #[test]
    fn secret_type_spellings_round_trip(t in prop::sample::select(SecretType::ALL)) {
        prop_assert_eq!(t.as_str().parse::<SecretType>(), Ok(t));
        prop_assert_eq!(t.as_str().parse::<SecretType>().ok(), Some(t));
    }

    #[test]
    fn only_the_exact_spellings_parse(value in "\\PC{0,40}") {
        if let Ok(t) = value.parse::<SecretType>() {
            prop_assert_eq!(t.as_str(), value.as_str());
        }
        if let Ok(m) = value.parse::<AuthMethod>() {
            prop_assert_eq!(m.as_str(), value.as_str());
        }
        if let Ok(v) = value.parse::<VaultType>() {
            prop_assert_eq!(v.as_str(), value.as_str());
        }
    }

    #[test]
    fn text_parsers_never_panic(value in any::<String>()) {
        let _ = Name::parse_at("name", value.clone());
        let _ = Description::parse_at("description", value.clone());
        let _ = DisplayName::parse_at("display_name", value.clone());
        let _ = BucketName::parse_at("bucket_name", value.clone());
        let _ = Region::parse_at("region", value.clone());
        let _ = Email::parse_at("email", &value);
        let _ = TokenName::parse_at("name", &value);
        let _ = EndpointUrl::parse_at("endpoint_url", &value);
        for vt in VaultType::ALL {
            let _ = VaultReference::parse(*vt, &value);
        }
        let _ = value.parse::<SecretType>();
        let _ = value.parse::<AuthMethod>();
    }

    #[test]
    fn endpoint_parser_never_panics_on_url_like_input(value in "(https?|ftp)://\\PC{0,60}") {
        if let Ok(url) = EndpointUrl::parse_at("endpoint_url", &value) {
            prop_assert!(url.as_str().starts_with("http"));
            prop_assert!(!url.as_str().chars().any(char::is_whitespace));
        }
    }

    #[test]
    fn credential_parser_never_panics(method in auth_method(), field in "\\PC{0,30}", value in any::<String>()) {
        let mut pairs = raw(&[(field.as_str(), value.as_str())]);
        for f in method.credential_fields() {
            pairs.push((f.as_str().to_owned(), SecretString::from(value.clone())));
        }
        let _ = Credentials::parse(method, pairs, now());
        let _ = Credentials::from_payload(method, &SecretString::from(value), now());
    }

    #[test]
    fn sas_and_gcs_checks_never_panic(sas in sas_like(), json in "\\{(\"[a-z_]{1,12}\":(\"\\PC{0,20}\"|[0-9]{1,3}|null|\\[\\]),?){0,6}\\}") {
        let _ = Credentials::parse(AuthMethod::AzureSasUrl, raw(&[("sas_url", &sas)]), now());
        let _ = Credentials::parse(AuthMethod::GcsServiceAccount, raw(&[("service_account_json", &json)]), now());
    }

    #[test]
    fn credential_values_never_show_in_errors(method in auth_method(), suffix in "[A-Za-z0-9 /+=_.:-]{0,40}", pad in any::<bool>()) {
        let value = format!("CANARY{suffix}");
        let value = if pad { format!(" {value}") } else { value };
        let pairs: Vec<(String, SecretString)> = method
            .credential_fields()
            .iter()
            .map(|f| (f.as_str().to_owned(), SecretString::from(value.clone())))
            .collect();
        match Credentials::parse(method, pairs, now()) {
            Ok(c) => {
                let printed = format!("{c:?}");
                prop_assert!(!printed.contains("CANARY"), "{}", printed);
            }
            Err(e) => {
                let printed = format!("{e} {e:?}");
                prop_assert!(!printed.contains("CANARY"), "{}", printed);
            }
        }
    }

    #[test]
    fn whole_requests_never_panic(
        strings in prop::collection::vec(prop::option::of("\\PC{0,40}"), 12),
        method in auth_method(),
        vt in vault_type(),
    ) {
        let s = |i: usize| strings[i].clone();
        let input = CreateSecretInput {
            name: s(0),
            description: s(1),
            secret_type: s(2),
            auth_method: s(3).or_else(|| Some(method.as_str().to_owned())),
            credentials: s(4).map(|v| raw(&[("access_key_id", &v), ("secret_access_key", &v)])),
            vault_connection_id: s(5),
            field_mappings: s(6).map(|r| vec![RawFieldMapping { field_name: s(7).unwrap_or_default(), reference: r }]),
        };
        let vault = s(5).map(|_| custodian_domain::KnownVault { id: crate::support::vault_id(), vault_type: vt });
        let _ = NewStorageSecret::parse(input, vault, now());

        let connection = VaultConnectionInput {
            name: s(0),
            vault_type: s(8).or_else(|| Some(vt.as_str().to_owned())),
            description: s(1),
            access_token: s(9).map(SecretString::from),
            client_id: s(10),
            client_secret: s(11).map(SecretString::from),
            project: s(2),
            config: s(3),
            project_id: s(4),
            environment: s(6),
            secret_path: s(7),
            api_url: s(1),
        };
        let _ = NewVaultConnection::parse(connection);
        let _ = VaultRotation::parse(vt, s(9).map(SecretString::from), s(10), s(11).map(SecretString::from));

        let location = LocationInput {
            name: s(0),
            description: s(1),
            location_type: s(2),
            bucket_name: s(3),
            region: s(4),
            endpoint_url: s(5),
            secret_id: s(6),
        };
        let _ = NewLocation::parse(location, None);
    }
}
