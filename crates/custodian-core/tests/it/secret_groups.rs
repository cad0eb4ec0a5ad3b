//! Secret groups over the in-memory ports: which versions the store holds after each step,
//! who may read what, and what a failure of the store in the middle of a change leaves.

use custodian_core::{CoreError, GroupListInput, KeyListInput, KeyView, Settings};
use custodian_domain::{
    AddMemberInput, AuditAction, CreateGroupInput, GroupSecretInput, NewVirtualAccountInput, ResourceType, Subject,
    TeamId, UpdateGroupInput,
};
use custodian_ports::{AuditFilter, AuditRepository, Page};
use secrecy::{ExposeSecret, SecretString};

use crate::support::{World, ctx};

fn entry(key: &str, value: Option<&str>) -> GroupSecretInput {
    GroupSecretInput {
        key: Some(key.into()),
        value: value.map(SecretString::from),
    }
}

fn create_input(name: &str, entries: &[(&str, &str)]) -> CreateGroupInput {
    CreateGroupInput {
        name: Some(name.into()),
        // The in-memory store is the deployment's one integration.
        integration_id: Some("memory".into()),
        secrets: Some(entries.iter().map(|(k, v)| entry(k, Some(v))).collect()),
    }
}

fn key<'a>(view: &'a [KeyView], name: &str) -> &'a KeyView {
    view.iter()
        .find(|k| k.details.secret.key.as_str() == name)
        .unwrap_or_else(|| panic!("no key {name}"))
}

fn value(key: &KeyView) -> &str {
    key.value.as_ref().expect("a value was read").expose_secret()
}

/// A user of the tenant with `role` in `team` (`None`: in no team), signed in.
async fn member(world: &World, email: &str, team: Option<(TeamId, &str)>) -> Subject {
    let c = &world.custodian;
    let (user, issued) = c
        .create_user(
            &world.admin,
            &ctx(),
            custodian_core::NewUserInput {
                email: Some(email.into()),
                display_name: None,
                tenant_admin: false,
            },
        )
        .await
        .expect("user created");
    if let Some((team, role)) = team {
        c.add_member(
            &world.admin,
            &ctx(),
            team,
            AddMemberInput {
                user_id: Some(user.id.to_string()),
                role: Some(role.into()),
                ..AddMemberInput::default()
            },
        )
        .await
        .expect("member added");
    }
    c.authenticate(&issued.token).await.expect("signed in")
}

/// Create → change one value, keep one, drop one, add one → every version of the changed
/// key readable; the dropped key's values gone from the store; delete → nothing left.
#[tokio::test]
async fn a_group_keeps_every_version_until_its_key_goes() {
    let world = World::new(Settings::default()).await;
    let team = world.team("apps", "pro").await;
    let admin = member(&world, "lead@example.com", Some((team.id, "admin"))).await;
    let c = &world.custodian;
    let created = c
        .create_group(
            &admin,
            &ctx(),
            None,
            create_input(
                "payments",
                &[("DB_PASSWORD", "one"), ("API_KEY", "two"), ("OLD", "three")],
            ),
        )
        .await
        .expect("created in the caller's only team");
    assert_eq!(created.group.team_id, team.id);
    assert!(
        created
            .keys
            .iter()
            .all(|k| k.value.is_none() && k.details.secret.version == 1)
    );
    assert_eq!(world.store.len(), 3);

    let updated = c
        .update_group(
            &admin,
            &ctx(),
            created.group.id,
            UpdateGroupInput {
                secrets: Some(vec![
                    entry("DB_PASSWORD", Some("one-b")),
                    entry("API_KEY", None),
                    entry("NEW", Some("four")),
                ]),
            },
        )
        .await
        .expect("updated");
    let names: Vec<&str> = updated.keys.iter().map(|k| k.details.secret.key.as_str()).collect();
    assert_eq!(names, ["API_KEY", "DB_PASSWORD", "NEW"]);
    assert_eq!(key(&updated.keys, "DB_PASSWORD").details.secret.version, 2);
    assert_eq!(key(&updated.keys, "API_KEY").details.secret.version, 1);
    assert_eq!(
        world.store.len(),
        4,
        "DB_PASSWORD v1 and v2, API_KEY v1, NEW v1; OLD removed"
    );

    let changed = key(&updated.keys, "DB_PASSWORD").details.secret.id;
    let all = c.read_group_key(&admin, &ctx(), changed, None).await.expect("read");
    assert_eq!(value(&all), "one-b");
    let versions: Vec<(i64, &str)> = all
        .versions
        .iter()
        .map(|v| (v.version.version, v.value.as_ref().unwrap().expose_secret()))
        .collect();
    assert_eq!(versions, [(1, "one"), (2, "one-b")]);
    let first = c.read_group_key(&admin, &ctx(), changed, Some(1)).await.expect("v1");
    assert_eq!(value(&first), "one");
    assert_eq!(first.versions.len(), 1);
    assert!(matches!(
        c.read_group_key(&admin, &ctx(), changed, Some(3)).await,
        Err(CoreError::Validation(_))
    ));

    // Sending the same value again changes nothing.
    let same = c
        .update_group(
            &admin,
            &ctx(),
            created.group.id,
            UpdateGroupInput {
                secrets: Some(vec![
                    entry("DB_PASSWORD", Some("one-b")),
                    entry("API_KEY", None),
                    entry("NEW", None),
                ]),
            },
        )
        .await
        .expect("unchanged");
    assert_eq!(key(&same.keys, "DB_PASSWORD").details.secret.version, 2);
    assert_eq!(world.store.len(), 4);

    assert_eq!(c.delete_group_key(&admin, &ctx(), changed).await, Ok(1));
    assert_eq!(world.store.len(), 2);
    c.delete_group(&admin, &ctx(), created.group.id, false)
        .await
        .expect("deleted");
    assert!(world.store.is_empty());
    assert!(matches!(
        c.get_group(&admin, created.group.id).await,
        Err(CoreError::NotFound)
    ));
}

/// Viewer: keys only; operator: values; the deployment's switch turns values off for
/// everyone; another team's member finds nothing.
#[tokio::test]
async fn values_need_the_operator_role_and_the_switch_turns_them_off() {
    for disabled in [false, true] {
        let world = World::new(Settings {
            disable_secret_value_view: disabled,
            ..Settings::default()
        })
        .await;
        let team = world.team("apps", "pro").await;
        let other = world.team("other", "pro").await;
        let c = &world.custodian;
        let group = c
            .create_group(
                &world.admin,
                &ctx(),
                Some(team.id),
                create_input("payments", &[("TOKEN", "t")]),
            )
            .await
            .expect("created");
        let id = group.keys[0].details.secret.id;
        let viewer = member(&world, "v@example.com", Some((team.id, "viewer"))).await;
        let operator = member(&world, "o@example.com", Some((team.id, "operator"))).await;
        let outsider = member(&world, "x@example.com", Some((other.id, "owner"))).await;

        let forbidden = |by_setting| Err(CoreError::ValueViewForbidden { by_setting });
        assert!(matches!(
            c.read_group_key(&viewer, &ctx(), id, None).await,
            Err(CoreError::ValueViewForbidden { by_setting: false })
        ));
        let listed = c
            .list_group_keys(&viewer, &ctx(), KeyListInput::default(), Page::default())
            .await
            .expect("a viewer lists keys");
        assert_eq!(listed.total, 1);
        assert!(listed.items[0].value.is_none());
        let with_value = KeyListInput {
            with_value: true,
            ..KeyListInput::default()
        };
        assert!(matches!(
            c.list_group_keys(&viewer, &ctx(), with_value.clone(), Page::default())
                .await,
            Err(CoreError::ValueViewForbidden { .. })
        ));
        let read = c.read_group_key(&operator, &ctx(), id, None).await;
        let listed = c.list_group_keys(&operator, &ctx(), with_value, Page::default()).await;
        if disabled {
            assert_eq!(read.map(|_| ()), forbidden(true));
            assert_eq!(listed.map(|_| ()), forbidden(true));
            assert_eq!(
                c.read_group_key(&world.admin, &ctx(), id, None).await.map(|_| ()),
                forbidden(true)
            );
        } else {
            assert_eq!(value(&read.expect("an operator reads")), "t");
            assert_eq!(value(&listed.expect("an operator lists values").items[0]), "t");
        }
        assert!(matches!(
            c.get_group(&outsider, group.group.id).await,
            Err(CoreError::NotFound)
        ));
        assert!(matches!(
            c.read_group_key(&outsider, &ctx(), id, None).await,
            Err(CoreError::NotFound)
        ));
        let seen = c
            .list_groups(&outsider, GroupListInput::default(), Page::default())
            .await
            .expect("list");
        assert_eq!(seen.total, 0);
        assert!(matches!(
            c.update_group(
                &operator,
                &ctx(),
                group.group.id,
                UpdateGroupInput { secrets: Some(vec![]) }
            )
            .await,
            Err(CoreError::Forbidden { .. })
        ));
    }
}

/// A user in several teams names the team; one in one team need not.
#[tokio::test]
async fn a_user_in_several_teams_names_the_team() {
    let world = World::new(Settings::default()).await;
    let (a, b) = (world.team("alpha", "pro").await, world.team("bravo", "pro").await);
    let both = member(&world, "both@example.com", Some((a.id, "admin"))).await;
    let c = &world.custodian;
    c.add_member(
        &world.admin,
        &ctx(),
        b.id,
        AddMemberInput {
            email: Some("both@example.com".into()),
            role: Some("admin".into()),
            ..AddMemberInput::default()
        },
    )
    .await
    .expect("second team");
    let refused = c
        .create_group(&both, &ctx(), None, create_input("orders", &[]))
        .await
        .expect_err("two teams, none named");
    let CoreError::Validation(errors) = refused else {
        panic!("expected a validation error, got {refused:?}")
    };
    assert_eq!(errors.errors()[0].loc, ["team_id"]);
    let made = c
        .create_group(&both, &ctx(), Some(b.id), create_input("orders", &[]))
        .await
        .expect("named");
    assert_eq!(made.group.team_id, b.id);
}

/// A store that fails on the second value of a create or an update leaves no value and no
/// row behind: the first value written is removed again and the group is as it was.
#[tokio::test]
async fn a_store_failure_in_the_middle_leaves_nothing_half_made() {
    let world = World::new(Settings::default()).await;
    let team = world.team("apps", "pro").await;
    let c = &world.custodian;
    world.flaky.fail_writes_of(Some("boom"));
    let refused = c
        .create_group(
            &world.admin,
            &ctx(),
            Some(team.id),
            create_input("payments", &[("A", "fine"), ("B", "boom")]),
        )
        .await;
    assert!(matches!(refused, Err(CoreError::Unavailable { .. })), "{refused:?}");
    assert!(world.store.is_empty(), "the first value is removed again");
    let listed = c
        .list_groups(&world.admin, GroupListInput::default(), Page::default())
        .await
        .expect("list");
    assert_eq!(listed.total, 0);

    world.flaky.fail_writes_of(None);
    let group = c
        .create_group(
            &world.admin,
            &ctx(),
            Some(team.id),
            create_input("payments", &[("A", "a1"), ("B", "b1")]),
        )
        .await
        .expect("created");
    world.flaky.fail_writes_of(Some("boom"));
    let refused = c
        .update_group(
            &world.admin,
            &ctx(),
            group.group.id,
            UpdateGroupInput {
                secrets: Some(vec![entry("A", Some("a2")), entry("B", Some("boom"))]),
            },
        )
        .await;
    assert!(matches!(refused, Err(CoreError::Unavailable { .. })), "{refused:?}");
    assert_eq!(world.store.len(), 2, "A v2 is removed again");
    let after = c.get_group(&world.admin, group.group.id).await.expect("get");
    assert!(after.keys.iter().all(|k| k.details.secret.version == 1));
}

/// Every change and every value read is audited, naming the key and version, and a
/// virtual account's read counts towards `activeDeploymentsCount`.
#[tokio::test]
async fn reads_and_changes_are_audited_and_reads_by_accounts_are_counted() {
    let world = World::new(Settings::default()).await;
    let team = world.team("apps", "pro").await;
    let c = &world.custodian;
    let group = c
        .create_group(
            &world.admin,
            &ctx(),
            Some(team.id),
            create_input("payments", &[("TOKEN", "secret-canary")]),
        )
        .await
        .expect("created");
    let id = group.keys[0].details.secret.id;
    let (_, issued) = c
        .create_virtual_account(
            &world.admin,
            &ctx(),
            team.id,
            NewVirtualAccountInput {
                name: Some("deployer".into()),
                role: Some("operator".into()),
                expires_at: None,
            },
        )
        .await
        .expect("account");
    let account = c.authenticate(&issued.token).await.expect("signed in");
    c.read_group_key(&account, &ctx(), id, None)
        .await
        .expect("read by the account");
    c.read_group_key(&account, &ctx(), id, Some(1))
        .await
        .expect("read again");
    c.read_group_key(&world.admin, &ctx(), id, None)
        .await
        .expect("read by the admin");
    let after = c.get_group(&world.admin, group.group.id).await.expect("get");
    assert_eq!(
        after.keys[0].active_deployments, 1,
        "one account, whatever its reads; users do not count"
    );

    world.clock.advance(chrono::Duration::hours(25));
    let later = c.get_group(&world.admin, group.group.id).await.expect("get");
    assert_eq!(
        later.keys[0].active_deployments, 0,
        "a read older than 24 hours no longer counts"
    );

    let trail = world
        .audit
        .list(team.id, &AuditFilter::default(), Page { limit: 200, offset: 0 })
        .await
        .expect("the team's trail");
    let mut reads: Vec<_> = trail
        .items
        .iter()
        .filter(|e| e.action == AuditAction::ReadValue)
        .collect();
    reads.sort_by_key(|e| e.occurred_at);
    assert_eq!(reads.len(), 3);
    assert!(reads.iter().all(|e| e.resource_type == ResourceType::GroupSecret
        && e.resource_id == Some(id.as_uuid())
        && e.resource_name.as_deref() == Some("payments:TOKEN")));
    assert_eq!(
        reads[0].detail.as_deref(),
        Some("value of payments:TOKEN version 1 read")
    );
    assert!(!format!("{trail:?}").contains("secret-canary"));
    assert!(
        trail
            .items
            .iter()
            .any(|e| e.action == AuditAction::Create && e.resource_type == ResourceType::SecretGroup)
    );
    assert!(
        !format!("{after:?}").contains("secret-canary"),
        "a view's Debug never shows a value"
    );
}
