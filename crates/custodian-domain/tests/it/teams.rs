//! Requests about teams, members and virtual accounts: every failing field at once, each
//! at its path with its kind and the sentence naming the rule.

use chrono::Duration;
use custodian_domain::error::kind;
use custodian_domain::{
    AddMemberInput, DisplayName, Email, MemberRef, NewMember, NewTeam, NewTeamInput, NewVirtualAccount,
    NewVirtualAccountInput, Role, RoleChange, RoleChangeInput, TeamPatch, TeamPatchInput, Tier, User, UserId,
    ValidationErrors,
};

use crate::support::{assert_error, error_at, now, paths};

fn refused<T: std::fmt::Debug>(result: Result<T, ValidationErrors>) -> ValidationErrors {
    match result {
        Ok(value) => panic!("must be refused: {value:?}"),
        Err(e) => e,
    }
}

fn assert_message(errors: &ValidationErrors, path: &[&str], kind: &str, msg: &str) {
    assert_error(errors, path, kind);
    assert_eq!(error_at(errors, path).msg, msg, "message at {path:?}");
}

const ROLES: &str = "must be one of: viewer, operator, admin, owner";

#[test]
fn a_new_team_needs_a_name_and_may_choose_a_tier() {
    let team = NewTeam::parse(NewTeamInput {
        name: Some("data-platform".into()),
        description: Some("batch jobs".into()),
        tier: None,
    })
    .unwrap();
    assert_eq!(team.name.as_str(), "data-platform");
    assert_eq!(team.description.unwrap().as_str(), "batch jobs");
    assert_eq!(team.tier, None, "no tier: the deployment's default applies");
    let team = NewTeam::parse(NewTeamInput {
        name: Some("x".into()),
        tier: Some("pro".into()),
        ..NewTeamInput::default()
    })
    .unwrap();
    assert_eq!(team.tier, Some(Tier::Pro));

    let errors = refused(NewTeam::parse(NewTeamInput::default()));
    assert_eq!(paths(&errors), ["name"]);
    assert_message(&errors, &["name"], kind::MISSING, "is required");
}

#[test]
fn every_failing_field_of_a_new_team_is_reported() {
    let errors = refused(NewTeam::parse(NewTeamInput {
        name: Some("n".repeat(256)),
        description: Some("d".repeat(2001)),
        tier: Some("gold".into()),
    }));
    assert_eq!(paths(&errors), ["name", "description", "tier"]);
    assert_message(&errors, &["name"], kind::TOO_LONG, "must be at most 255 characters");
    assert_message(
        &errors,
        &["description"],
        kind::TOO_LONG,
        "must be at most 2000 characters",
    );
    assert_message(
        &errors,
        &["tier"],
        kind::INVALID_ENUM,
        "must be one of: free, pro, enterprise",
    );
}

#[test]
fn a_team_patch_changes_only_what_it_names() {
    assert_eq!(
        TeamPatch::parse(TeamPatchInput::default()).unwrap(),
        TeamPatch::default()
    );
    let patch = TeamPatch::parse(TeamPatchInput {
        name: Some("renamed".into()),
        description: Some(None),
        tier: Some("enterprise".into()),
    })
    .unwrap();
    assert_eq!(patch.name.unwrap().as_str(), "renamed");
    assert_eq!(patch.description, Some(None), "null clears the description");
    assert_eq!(patch.tier, Some(Tier::Enterprise));

    let errors = refused(TeamPatch::parse(TeamPatchInput {
        name: Some("  ".into()),
        description: Some(Some("d".repeat(2001))),
        tier: Some("Free".into()),
    }));
    assert_eq!(paths(&errors), ["name", "description", "tier"]);
    assert_message(&errors, &["name"], kind::BLANK, "must not be empty or only whitespace");
    assert_error(&errors, &["description"], kind::TOO_LONG);
    assert_message(
        &errors,
        &["tier"],
        kind::INVALID_ENUM,
        "must be one of: free, pro, enterprise",
    );
}

fn user(email: &str) -> User {
    User {
        id: UserId::from_uuid(uuid::Uuid::from_u128(7)),
        email: Email::parse_at("email", email).expect("a valid email"),
        display_name: DisplayName::parse_at("display_name", "Bob").expect("a valid name"),
        tenant_admin: false,
        created_at: now(),
        disabled_at: None,
    }
}

fn add(email: Option<&str>, user_id: Option<&str>, role: Option<&str>) -> AddMemberInput {
    AddMemberInput {
        email: email.map(str::to_owned),
        user_id: user_id.map(str::to_owned),
        role: role.map(str::to_owned),
    }
}

#[test]
fn a_member_is_named_by_exactly_one_of_email_and_user_id() {
    let id = uuid::Uuid::from_u128(7).to_string();
    assert_eq!(
        add(Some("Bob@Example.com"), None, None).member_ref(),
        Some(MemberRef::Email(Email::parse_at("email", "bob@example.com").unwrap()))
    );
    assert_eq!(
        add(None, Some(&id), None).member_ref(),
        Some(MemberRef::Id(id.parse().unwrap()))
    );
    for nobody in [
        add(Some("bob@example.com"), Some(&id), None),
        add(None, None, None),
        add(Some("not-an-email"), None, None),
        add(None, Some("7"), None),
    ] {
        assert_eq!(nobody.member_ref(), None, "{nobody:?}");
    }
    assert!(add(None, None, Some("owner")).grants_owner());
    assert!(!add(None, None, Some("admin")).grants_owner());
    assert!(!add(None, None, Some("Owner")).grants_owner());
    assert!(!add(None, None, None).grants_owner());
}

#[test]
fn a_new_member_is_a_user_who_exists_with_a_role() {
    let member = NewMember::parse(
        add(Some("bob@example.com"), None, Some("operator")),
        Some(user("bob@example.com")),
    )
    .unwrap();
    assert_eq!(member.user.email.as_str(), "bob@example.com");
    assert_eq!(member.role, Role::Operator);

    let id = uuid::Uuid::from_u128(7).to_string();
    let member = NewMember::parse(add(None, Some(&id), Some("owner")), Some(user("bob@example.com"))).unwrap();
    assert_eq!(member.role, Role::Owner);
}

#[test]
fn a_user_who_does_not_exist_is_an_error_on_the_field_that_named_them() {
    // Reported together with the role's error.
    let errors = refused(NewMember::parse(
        add(Some("nobody@example.com"), None, Some("chief")),
        None,
    ));
    assert_eq!(paths(&errors), ["role", "email"]);
    assert_message(&errors, &["role"], kind::INVALID_ENUM, ROLES);
    assert_message(&errors, &["email"], kind::NOT_FOUND, "no user has this email");

    let id = uuid::Uuid::from_u128(8).to_string();
    let errors = refused(NewMember::parse(add(None, Some(&id), Some("viewer")), None));
    assert_eq!(paths(&errors), ["user_id"]);
    assert_message(&errors, &["user_id"], kind::NOT_FOUND, "no user has this id");
}

#[test]
fn a_member_request_names_one_well_formed_user_and_a_role() {
    let errors = refused(NewMember::parse(add(None, None, None), None));
    assert_eq!(paths(&errors), ["role", "email"]);
    assert_message(&errors, &["role"], kind::MISSING, "is required");
    assert_message(&errors, &["email"], kind::MISSING, "give email or user_id");

    let id = uuid::Uuid::from_u128(7).to_string();
    let errors = refused(NewMember::parse(
        add(Some("bob@example.com"), Some(&id), Some("viewer")),
        None,
    ));
    assert_eq!(paths(&errors), ["user_id"]);
    assert_message(
        &errors,
        &["user_id"],
        kind::NOT_ALLOWED,
        "give either email or user_id, not both",
    );

    let errors = refused(NewMember::parse(add(None, Some("7"), Some("viewer")), None));
    assert_message(&errors, &["user_id"], kind::INVALID_FORMAT, "must be a uuid");

    let errors = refused(NewMember::parse(add(Some("bob"), None, Some("viewer")), None));
    assert_eq!(paths(&errors), ["email"]);
    assert_error(&errors, &["email"], kind::INVALID_FORMAT);
}

#[test]
fn a_role_change_names_a_role() {
    let change = RoleChange::parse(RoleChangeInput {
        role: Some("admin".into()),
    })
    .unwrap();
    assert_eq!(change.role, Role::Admin);
    let errors = refused(RoleChange::parse(RoleChangeInput::default()));
    assert_eq!(paths(&errors), ["role"]);
    assert_message(&errors, &["role"], kind::MISSING, "is required");
    let errors = refused(RoleChange::parse(RoleChangeInput {
        role: Some("chief".into()),
    }));
    assert_message(&errors, &["role"], kind::INVALID_ENUM, ROLES);
}

#[test]
fn a_virtual_account_has_a_name_a_role_below_owner_and_a_future_expiry() {
    let account = NewVirtualAccount::parse(
        NewVirtualAccountInput {
            name: Some("worker".into()),
            role: Some("operator".into()),
            expires_at: Some(now() + Duration::days(90)),
        },
        now(),
    )
    .unwrap();
    assert_eq!(account.name.as_str(), "worker");
    assert_eq!(account.role, Role::Operator);
    assert_eq!(account.expires_at, Some(now() + Duration::days(90)));

    let errors = refused(NewVirtualAccount::parse(
        NewVirtualAccountInput {
            name: Some("worker".into()),
            role: Some("owner".into()),
            expires_at: Some(now()),
        },
        now(),
    ));
    assert_eq!(paths(&errors), ["role", "expires_at"]);
    assert_message(
        &errors,
        &["role"],
        kind::NOT_ALLOWED,
        "a virtual account cannot be owner; use viewer, operator or admin",
    );
    assert_message(&errors, &["expires_at"], kind::OUT_OF_RANGE, "must be in the future");

    let errors = refused(NewVirtualAccount::parse(NewVirtualAccountInput::default(), now()));
    assert_eq!(paths(&errors), ["name", "role"]);
    assert_message(&errors, &["name"], kind::MISSING, "is required");
    assert_message(&errors, &["role"], kind::MISSING, "is required");
}
