//! Vault connections: settings per vault type and their bounds, the secret
//! setting each type needs, and rotation.

use custodian_domain::error::kind;
use custodian_domain::{
    NewVaultConnection, ValidationErrors, VaultConnectionInput, VaultRotation, VaultSettings, VaultType,
};
use secrecy::{ExposeSecret, SecretString};

use crate::support::{assert_error, paths};

fn secret(value: &str) -> Option<SecretString> {
    Some(SecretString::from(value.to_owned()))
}

fn text(value: &str) -> Option<String> {
    Some(value.to_owned())
}

/// The vault-connection reference's 1Password example.
fn onepassword() -> VaultConnectionInput {
    VaultConnectionInput {
        name: text("1Password Production"),
        vault_type: text("onepassword"),
        access_token: secret("ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSJ9"),
        ..VaultConnectionInput::default()
    }
}

/// The vault-connection reference's Doppler example.
fn doppler() -> VaultConnectionInput {
    VaultConnectionInput {
        name: text("Doppler Production"),
        vault_type: text("doppler"),
        access_token: secret("dp.st.prd.abcdefghijklmnopqrstuvwxyz0123456789"),
        project: text("my-project"),
        config: text("production"),
        ..VaultConnectionInput::default()
    }
}

/// The vault-connection reference's Infisical example.
fn infisical() -> VaultConnectionInput {
    VaultConnectionInput {
        name: text("Infisical Production"),
        vault_type: text("infisical"),
        client_id: text("a1b2c3d4-e5f6-7890-abcd-ef1234567890"),
        client_secret: secret("st.abc123xyz0123456789"),
        project_id: text("f1e2d3c4-b5a6-7890-abcd-ef1234567890"),
        environment: text("prod"),
        secret_path: text("/aws"),
        ..VaultConnectionInput::default()
    }
}

fn refused(input: VaultConnectionInput) -> ValidationErrors {
    match NewVaultConnection::parse(input) {
        Ok(c) => panic!("must be refused: {c:?}"),
        Err(e) => e,
    }
}

fn accepted(input: VaultConnectionInput) -> NewVaultConnection {
    NewVaultConnection::parse(input).unwrap_or_else(|e| panic!("must be accepted: {e}"))
}

#[test]
fn the_seed_examples_are_accepted() {
    let c = accepted(onepassword());
    assert_eq!(c.name.as_str(), "1Password Production");
    assert_eq!(c.settings, VaultSettings::OnePassword);
    assert_eq!(c.settings.vault_type(), VaultType::OnePassword);
    assert!(c.secret.expose().expose_secret().starts_with("ops_"));

    let c = accepted(doppler());
    assert_eq!(
        c.settings,
        VaultSettings::Doppler {
            project: "my-project".to_owned(),
            config: "production".to_owned(),
        }
    );
    assert!(c.secret.expose().expose_secret().starts_with("dp.st."));

    let c = accepted(infisical());
    assert_eq!(
        c.settings,
        VaultSettings::Infisical {
            client_id: "a1b2c3d4-e5f6-7890-abcd-ef1234567890".to_owned(),
            project_id: "f1e2d3c4-b5a6-7890-abcd-ef1234567890".to_owned(),
            environment: "prod".to_owned(),
            secret_path: "/aws".to_owned(),
            api_url: None,
        }
    );
    assert_eq!(c.secret.expose().expose_secret(), "st.abc123xyz0123456789");
}

#[test]
fn vault_type_is_one_of_the_three() {
    assert_eq!(
        VaultType::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        ["onepassword", "doppler", "infisical"]
    );
    let errors = refused(VaultConnectionInput {
        vault_type: None,
        ..onepassword()
    });
    assert_error(&errors, &["vault_type"], kind::MISSING);
    for bad in ["1password", "OnePassword", "one_password", "vault", ""] {
        let errors = refused(VaultConnectionInput {
            vault_type: text(bad),
            ..onepassword()
        });
        assert_error(&errors, &["vault_type"], kind::INVALID_ENUM);
        assert!(
            errors.errors()[0].msg.contains("infisical"),
            "lists the accepted values"
        );
    }
}

#[test]
fn name_is_1_to_255_and_description_at_most_2000() {
    let named = |n: Option<String>| VaultConnectionInput { name: n, ..doppler() };
    assert_error(&refused(named(None)), &["name"], kind::MISSING);
    assert_error(&refused(named(text(""))), &["name"], kind::BLANK);
    assert_error(&refused(named(text("prod "))), &["name"], kind::WHITESPACE);
    assert_error(&refused(named(Some("n".repeat(256)))), &["name"], kind::TOO_LONG);
    accepted(named(Some("n".repeat(255))));

    let described = |d: String| VaultConnectionInput {
        description: Some(d),
        ..doppler()
    };
    assert_eq!(
        accepted(described("d".repeat(2000)))
            .description
            .unwrap()
            .as_str()
            .len(),
        2000
    );
    assert_error(&refused(described("d".repeat(2001))), &["description"], kind::TOO_LONG);
}

#[test]
fn access_token_is_required_for_onepassword_and_doppler() {
    for input in [onepassword(), doppler()] {
        let errors = refused(VaultConnectionInput {
            access_token: None,
            ..input
        });
        assert_error(&errors, &["access_token"], kind::MISSING);
    }
}

#[test]
fn access_tokens_carry_their_providers_prefix() {
    let with_token = |base: fn() -> VaultConnectionInput, token: &str| VaultConnectionInput {
        access_token: secret(token),
        ..base()
    };
    // 1Password service-account tokens start with ops_, Doppler service tokens with dp.st.
    accepted(with_token(onepassword, "ops_x"));
    accepted(with_token(doppler, "dp.st.x"));
    for (base, bad) in [
        (onepassword as fn() -> VaultConnectionInput, "dp.st.abc"),
        (onepassword, "OPS_abc"),
        (onepassword, "ops_"),
        (onepassword, "xops_abc"),
        (onepassword, "ops_with space"),
        (doppler, "ops_abc"),
        (doppler, "dp.pt.abc"),
        (doppler, "dp.st."),
        (doppler, "dp.st.abc\u{7f}"),
    ] {
        let errors = refused(with_token(base, bad));
        assert_error(&errors, &["access_token"], kind::INVALID_FORMAT);
    }
    assert_error(&refused(with_token(onepassword, "")), &["access_token"], kind::BLANK);
    assert_error(
        &refused(with_token(doppler, " dp.st.abc")),
        &["access_token"],
        kind::WHITESPACE,
    );
}

#[test]
fn access_token_is_at_most_4096_characters() {
    let long = |n: usize| VaultConnectionInput {
        access_token: secret(&format!("ops_{}", "a".repeat(n - 4))),
        ..onepassword()
    };
    accepted(long(4096));
    assert_error(&refused(long(4097)), &["access_token"], kind::TOO_LONG);
}

#[test]
fn doppler_needs_project_and_config_of_1_to_255() {
    let errors = refused(VaultConnectionInput {
        project: None,
        config: None,
        ..doppler()
    });
    assert_error(&errors, &["project"], kind::MISSING);
    assert_error(&errors, &["config"], kind::MISSING);
    for field in ["project", "config"] {
        let set = |value: String| {
            let mut input = doppler();
            match field {
                "project" => input.project = Some(value),
                _ => input.config = Some(value),
            }
            input
        };
        accepted(set("p".repeat(255)));
        assert_error(&refused(set("p".repeat(256))), &[field], kind::TOO_LONG);
        assert_error(&refused(set(String::new())), &[field], kind::BLANK);
        assert_error(&refused(set(" prd".to_owned())), &[field], kind::WHITESPACE);
    }
}

#[test]
fn infisical_needs_client_id_secret_project_and_environment() {
    let errors = refused(VaultConnectionInput {
        client_id: None,
        client_secret: None,
        project_id: None,
        environment: None,
        secret_path: None,
        ..infisical()
    });
    for field in ["client_id", "client_secret", "project_id", "environment"] {
        assert_error(&errors, &[field], kind::MISSING);
    }
    assert_eq!(
        errors.errors().len(),
        4,
        "secret_path is optional: {:?}",
        paths(&errors)
    );
}

#[test]
fn infisical_bounds_follow_seed_002() {
    // (field, max characters)
    for (field, max) in [
        ("client_id", 255),
        ("client_secret", 1000),
        ("project_id", 255),
        ("environment", 100),
    ] {
        let set = |value: String| {
            let mut input = infisical();
            match field {
                "client_id" => input.client_id = Some(value),
                "client_secret" => input.client_secret = Some(SecretString::from(value)),
                "project_id" => input.project_id = Some(value),
                _ => input.environment = Some(value),
            }
            input
        };
        accepted(set("e".repeat(max)));
        accepted(set("e".to_owned()));
        assert_error(&refused(set("e".repeat(max + 1))), &[field], kind::TOO_LONG);
        assert_error(&refused(set(String::new())), &[field], kind::BLANK);
    }
}

#[test]
fn infisical_secret_path_defaults_to_root_and_starts_with_a_slash() {
    let path = |p: Option<String>| VaultConnectionInput {
        secret_path: p,
        ..infisical()
    };
    let settings_path = |c: NewVaultConnection| match c.settings {
        VaultSettings::Infisical { secret_path, .. } => secret_path,
        other => panic!("{other:?}"),
    };
    assert_eq!(settings_path(accepted(path(None))), "/");
    for ok in ["/", "/aws", "/aws/prod", "/aws/prod/", &format!("/{}", "p".repeat(499))] {
        assert_eq!(settings_path(accepted(path(text(ok)))), ok);
    }
    assert_error(
        &refused(path(Some(format!("/{}", "p".repeat(500))))),
        &["secret_path"],
        kind::TOO_LONG,
    );
    for bad in ["", "aws", "aws/", "//aws", "/aws//prod", "/my folder", " /aws"] {
        assert_error(&refused(path(text(bad))), &["secret_path"], kind::INVALID_FORMAT);
    }
}

#[test]
fn settings_of_another_vault_type_are_refused() {
    let errors = refused(VaultConnectionInput {
        project: text("p"),
        client_id: text("c"),
        secret_path: text("/"),
        ..onepassword()
    });
    for field in ["project", "client_id", "secret_path"] {
        assert_error(&errors, &[field], kind::NOT_ALLOWED);
    }
    assert_eq!(errors.errors().len(), 3, "{:?}", paths(&errors));

    let errors = refused(VaultConnectionInput {
        client_secret: secret("s"),
        environment: text("prod"),
        project_id: text("p"),
        ..doppler()
    });
    for field in ["client_secret", "environment", "project_id"] {
        assert_error(&errors, &[field], kind::NOT_ALLOWED);
    }

    let errors = refused(VaultConnectionInput {
        access_token: secret("ops_abc"),
        project: text("p"),
        config: text("c"),
        ..infisical()
    });
    for field in ["access_token", "project", "config"] {
        assert_error(&errors, &[field], kind::NOT_ALLOWED);
    }
    assert!(errors.errors()[0].msg.contains("infisical"), "names the vault type");
}

#[test]
fn every_failing_setting_is_reported_at_once() {
    let errors = refused(VaultConnectionInput {
        name: text(""),
        description: Some("d".repeat(2001)),
        vault_type: text("infisical"),
        access_token: secret("ops_abc"),
        client_id: Some("c".repeat(256)),
        client_secret: None,
        project_id: text(" p"),
        environment: None,
        secret_path: text("aws"),
        ..VaultConnectionInput::default()
    });
    let expected = [
        ("name", kind::BLANK),
        ("description", kind::TOO_LONG),
        ("access_token", kind::NOT_ALLOWED),
        ("client_id", kind::TOO_LONG),
        ("client_secret", kind::MISSING),
        ("project_id", kind::WHITESPACE),
        ("environment", kind::MISSING),
        ("secret_path", kind::INVALID_FORMAT),
    ];
    for (field, k) in expected {
        assert_error(&errors, &[field], k);
    }
    assert_eq!(errors.errors().len(), expected.len(), "{:?}", paths(&errors));
}

const CANARY: &str = "CANARY-vault-5e2f";

#[test]
fn tokens_and_client_secrets_never_show_in_debug_or_errors() {
    let inputs = || {
        [
            VaultConnectionInput {
                access_token: secret(&format!("ops_{CANARY}")),
                ..onepassword()
            },
            VaultConnectionInput {
                access_token: secret(&format!("dp.st.{CANARY}")),
                ..doppler()
            },
            VaultConnectionInput {
                client_secret: secret(CANARY),
                ..infisical()
            },
        ]
    };
    for input in inputs() {
        assert!(!format!("{input:?}").contains(CANARY));
        let c = accepted(input);
        assert!(!format!("{c:?} {:?} {c:#?}", c.secret).contains(CANARY), "{c:?}");
    }
    // Refused secrets are not echoed either: wrong prefix, padding, too long, wrong type.
    let refused_inputs = [
        VaultConnectionInput {
            access_token: secret(&format!("dp.st.{CANARY}")),
            ..onepassword()
        },
        VaultConnectionInput {
            access_token: secret(&format!("{CANARY} ")),
            ..doppler()
        },
        VaultConnectionInput {
            client_secret: secret(&CANARY.repeat(100)),
            ..infisical()
        },
        VaultConnectionInput {
            access_token: secret(CANARY),
            ..infisical()
        },
    ];
    for input in refused_inputs {
        let errors = refused(input);
        let printed = format!("{errors} {errors:?}");
        assert!(!printed.contains(CANARY), "{printed}");
    }
}

// ---------------------------------------------------------------- rotation

fn rotate(
    vault_type: VaultType,
    access_token: Option<&str>,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Result<VaultRotation, ValidationErrors> {
    VaultRotation::parse(
        vault_type,
        access_token.and_then(secret),
        client_id.and_then(text),
        client_secret.and_then(secret),
    )
}

#[test]
fn onepassword_and_doppler_rotate_their_access_token() {
    let r = rotate(VaultType::OnePassword, Some("ops_new"), None, None).unwrap();
    assert_eq!(r.secret.expose().expose_secret(), "ops_new");
    assert!(r.client_id.is_none());
    let r = rotate(VaultType::Doppler, Some("dp.st.new"), None, None).unwrap();
    assert_eq!(r.secret.expose().expose_secret(), "dp.st.new");

    for (vt, bad) in [(VaultType::OnePassword, "dp.st.new"), (VaultType::Doppler, "ops_new")] {
        let errors = rotate(vt, Some(bad), None, None).unwrap_err();
        assert_error(&errors, &["access_token"], kind::INVALID_FORMAT);
    }
    for vt in [VaultType::OnePassword, VaultType::Doppler] {
        let errors = rotate(vt, None, None, None).unwrap_err();
        assert_error(&errors, &["access_token"], kind::MISSING);
        let errors = rotate(vt, Some("ops_new"), Some("id"), Some("secret")).unwrap_err();
        assert_error(&errors, &["client_id"], kind::NOT_ALLOWED);
        assert_error(&errors, &["client_secret"], kind::NOT_ALLOWED);
    }
    let long = format!("ops_{}", "a".repeat(4093));
    assert_error(
        &rotate(VaultType::OnePassword, Some(&long), None, None).unwrap_err(),
        &["access_token"],
        kind::TOO_LONG,
    );
}

#[test]
fn infisical_rotates_client_id_and_client_secret_together() {
    let r = rotate(VaultType::Infisical, None, Some("new-client"), Some("new-secret")).unwrap();
    assert_eq!(r.client_id.as_deref(), Some("new-client"));
    assert_eq!(r.secret.expose().expose_secret(), "new-secret");

    let errors = rotate(VaultType::Infisical, None, None, Some("new-secret")).unwrap_err();
    assert_error(&errors, &["client_id"], kind::MISSING);
    let errors = rotate(VaultType::Infisical, None, Some("new-client"), None).unwrap_err();
    assert_error(&errors, &["client_secret"], kind::MISSING);
    let errors = rotate(VaultType::Infisical, Some("ops_x"), Some("c"), Some("s")).unwrap_err();
    assert_error(&errors, &["access_token"], kind::NOT_ALLOWED);
    let errors = rotate(
        VaultType::Infisical,
        None,
        Some(&"c".repeat(256)),
        Some(&"s".repeat(1001)),
    )
    .unwrap_err();
    assert_error(&errors, &["client_id"], kind::TOO_LONG);
    assert_error(&errors, &["client_secret"], kind::TOO_LONG);
}

#[test]
fn rotation_never_shows_the_new_secret() {
    let r = rotate(VaultType::Doppler, Some(&format!("dp.st.{CANARY}")), None, None).unwrap();
    assert!(!format!("{r:?}").contains(CANARY));
    let r = rotate(VaultType::Infisical, None, Some("c"), Some(CANARY)).unwrap();
    assert!(!format!("{r:?}").contains(CANARY));
    let errors = rotate(VaultType::OnePassword, Some(CANARY), None, None).unwrap_err();
    assert!(!format!("{errors} {errors:?}").contains(CANARY));
}

// ---------------------------------------------------------------- the role and tier rules of virtual accounts

#[test]
fn creating_a_vault_connection_needs_admin_or_owner() {
    use custodian_domain::Role;
    let allowed: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| r.at_least(Role::Admin))
        .map(|r| r.as_str())
        .collect();
    assert_eq!(allowed, ["admin", "owner"]);
    assert_eq!(
        Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["viewer", "operator", "admin", "owner"],
        "lowest to highest"
    );
}

#[test]
fn vault_connection_tier_limits_default_to_seed_002() {
    use custodian_domain::{LimitKind, Tier, TierTable};
    let table = TierTable::default();
    assert_eq!(table.limit(Tier::Free, LimitKind::VaultConnections), Some(1));
    assert_eq!(table.limit(Tier::Pro, LimitKind::VaultConnections), Some(10));
    assert_eq!(table.limit(Tier::Enterprise, LimitKind::VaultConnections), None);
    // The role table's other defaults.
    assert_eq!(table.limit(Tier::Free, LimitKind::StorageSecrets), Some(5));
    assert_eq!(table.limit(Tier::Pro, LimitKind::StorageSecrets), Some(100));
    assert_eq!(table.limit(Tier::Free, LimitKind::Members), Some(1));
    assert_eq!(table.limit(Tier::Pro, LimitKind::Members), Some(20));
    assert_eq!(table.limit(Tier::Enterprise, LimitKind::Members), None);
}

/// An Infisical connection may name its own instance: an http(s) URL with a host and
/// nothing else in it; no other vault type takes one.
#[test]
fn an_infisical_connection_may_name_its_own_instance() {
    let own = |url: &str| VaultConnectionInput {
        api_url: text(url),
        ..infisical()
    };
    let c = accepted(own("https://infisical.internal.example.com"));
    assert!(matches!(
        c.settings,
        VaultSettings::Infisical { api_url: Some(ref u), .. } if u == "https://infisical.internal.example.com"
    ));
    for bad in [
        "ftp://infisical.example.com",
        "infisical.example.com",
        "https://user:pass@infisical.example.com",
        "https://infisical.example.com/?next=x",
        "",
    ] {
        let errors = refused(own(bad));
        assert_eq!(errors.errors()[0].loc, ["api_url"], "{bad}: {errors}");
    }
    let errors = refused(VaultConnectionInput {
        api_url: text("https://doppler.example.com"),
        ..doppler()
    });
    assert_eq!(errors.errors()[0].loc, ["api_url"]);
    assert_eq!(errors.errors()[0].kind, "not_allowed");
}
