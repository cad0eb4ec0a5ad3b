//! Bounded strings: names, descriptions, display names, emails, token names.

use custodian_domain::error::kind;
use custodian_domain::{Description, DisplayName, Email, Name, TokenName};

fn name(value: &str) -> Result<Name, &'static str> {
    Name::parse_at("name", value).map_err(|e| {
        assert_eq!(e.loc, ["name"], "reported where it was asked");
        e.kind
    })
}

#[test]
fn names_are_1_to_255_characters() {
    assert_eq!(Name::MIN_CHARS, 1);
    assert_eq!(Name::MAX_CHARS, 255);
    for ok in ["a", "Production S3", "prod/eu-west-1", "ünïcödé", &"n".repeat(255)] {
        assert_eq!(name(ok).unwrap().as_str(), ok);
    }
    assert_eq!(name("").unwrap_err(), kind::BLANK);
    assert_eq!(name(&"n".repeat(256)).unwrap_err(), kind::TOO_LONG);
}

#[test]
fn name_length_counts_characters_not_bytes() {
    let emoji = "\u{1f510}".repeat(255);
    assert_eq!(emoji.len(), 1020);
    assert!(name(&emoji).is_ok());
    assert_eq!(name(&"\u{1f510}".repeat(256)).unwrap_err(), kind::TOO_LONG);
}

#[test]
fn names_are_not_blank_or_padded() {
    for blank in [" ", "   ", "\t", "\u{a0}", "\u{3000}"] {
        assert_eq!(name(blank).unwrap_err(), kind::BLANK, "{blank:?}");
    }
    for padded in [" prod", "prod ", "\tprod", "prod\n", "\u{a0}prod"] {
        assert_eq!(name(padded).unwrap_err(), kind::WHITESPACE, "{padded:?}");
    }
    assert!(name("two words").is_ok(), "inner spaces are fine");
}

#[test]
fn names_refuse_control_characters() {
    for bad in [
        "line\nbreak",
        "tab\there",
        "nul\0byte",
        "esc\u{1b}[31m",
        "del\u{7f}",
        "c1\u{85}x",
    ] {
        assert_eq!(name(bad).unwrap_err(), kind::INVALID_FORMAT, "{bad:?}");
    }
    let dn = DisplayName::parse_at("display_name", "Ada\nLovelace").unwrap_err();
    assert_eq!(
        (dn.kind, dn.loc.as_slice()),
        (kind::INVALID_FORMAT, ["display_name".to_owned()].as_slice())
    );
    assert!(DisplayName::parse_at("display_name", "Ada Lovelace").is_ok());
}

#[test]
fn descriptions_are_at_most_2000_characters_and_may_be_empty() {
    let description = |v: &str| Description::parse_at("description", v).map_err(|e| e.kind);
    assert_eq!(Description::MAX_CHARS, 2000);
    for ok in [
        "",
        "x",
        &"x".repeat(2000),
        &"ß".repeat(2000),
        "line one\nline two\r\n\tindented",
        " padded ",
    ] {
        assert_eq!(description(ok).unwrap().as_str(), ok, "kept exactly as given");
    }
    assert_eq!(description(&"x".repeat(2001)).unwrap_err(), kind::TOO_LONG);
    for bad in ["nul\0", "bell\u{7}", "esc\u{1b}"] {
        assert_eq!(description(bad).unwrap_err(), kind::INVALID_FORMAT, "{bad:?}");
    }
}

fn email(value: &str) -> Result<Email, &'static str> {
    Email::parse_at("email", value).map_err(|e| e.kind)
}

#[test]
fn emails_are_lower_cased() {
    assert_eq!(email("Ada@Example.COM").unwrap().as_str(), "ada@example.com");
    assert_eq!(
        email("ADA.LOVELACE+custodian@EXAMPLE.co.uk").unwrap().as_str(),
        "ada.lovelace+custodian@example.co.uk"
    );
    assert_eq!(email("admin@localhost").unwrap().as_str(), "admin@localhost");
    let once = email("Ünïcode.User@Example.com").unwrap();
    assert_eq!(email(once.as_str()).unwrap(), once, "parsing again changes nothing");
}

#[test]
fn emails_must_look_like_local_at_domain() {
    for bad in [
        "ada",
        "@example.com",
        "ada@",
        "ada@.example.com",
        "ada@example.com.",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada@ex_ample.com",
        "ada@exämple.com",
        "a\0a@example.com",
    ] {
        assert!(email(bad).is_err(), "{bad:?}");
    }
    assert_eq!(email("").unwrap_err(), kind::BLANK);
    assert_eq!(email(" ada@example.com").unwrap_err(), kind::WHITESPACE);
    assert_eq!(email("a@").unwrap_err(), kind::TOO_SHORT);
}

#[test]
fn emails_are_at_most_254_characters_in_their_stored_form() {
    let at_limit = format!("{}@example.com", "a".repeat(254 - "@example.com".len()));
    assert_eq!(at_limit.chars().count(), 254);
    assert!(email(&at_limit).is_ok());
    assert_eq!(email(&format!("a{at_limit}")).unwrap_err(), kind::TOO_LONG);
    // 'İ' lower-cases to two characters: the limit holds for what is stored, so a stored
    // address always parses again.
    let grows = format!("{}@example.com", "\u{130}".repeat(200));
    assert_eq!(grows.chars().count(), 212);
    assert_eq!(email(&grows).unwrap_err(), kind::TOO_LONG);
    let fits = format!("{}@example.com", "\u{130}".repeat(100));
    let stored = email(&fits).unwrap();
    assert_eq!(stored.as_str().chars().count(), 212);
    assert_eq!(email(stored.as_str()).unwrap(), stored);
}

#[test]
fn token_names_are_3_to_36_of_lowercase_letters_digits_and_dashes() {
    let token = |v: &str| TokenName::parse_at("name", v).map_err(|e| e.kind);
    for ok in ["abc", "ci-deploy", "a1-2-3", &format!("a{}", "b".repeat(35))] {
        assert_eq!(token(ok).unwrap().as_str(), ok);
    }
    assert_eq!(token("ab").unwrap_err(), kind::TOO_SHORT);
    assert_eq!(token(&"a".repeat(37)).unwrap_err(), kind::TOO_LONG);
    for bad in ["Abc", "1abc", "-abc", "ab_c", "ab c", "abç"] {
        assert_eq!(token(bad).unwrap_err(), kind::INVALID_FORMAT, "{bad:?}");
    }
}
