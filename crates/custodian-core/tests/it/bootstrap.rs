//! Making tenant admins from outside the API: the first start and `custodian bootstrap`.

use custodian_core::{BootstrapInput, CoreError, Custodian, FIRST_ADMIN_EMAIL, FIRST_TEAM, Settings};
use custodian_domain::{Role, Subject, Tier};
use custodian_ports::{ConflictKind, Page};
use custodian_testkit::memory::MemoryRepos;

use crate::support::World;

fn input(email: &str, team: &str, tier: Option<&str>) -> BootstrapInput {
    BootstrapInput {
        email: email.into(),
        team: team.into(),
        tier: tier.map(str::to_owned),
    }
}

async fn teams_of(custodian: &Custodian, subject: &Subject) -> Vec<(String, Role)> {
    let page = custodian
        .list_teams(subject, Page::default())
        .await
        .expect("the teams are listed");
    page.items
        .into_iter()
        .map(|(t, r)| (t.name.as_str().to_owned(), r))
        .collect()
}

#[tokio::test]
async fn a_first_start_makes_the_admin_and_its_team_once() {
    let custodian = Custodian::new(MemoryRepos::new().ports(), Settings::default());
    let made = custodian
        .bootstrap_first_start()
        .await
        .expect("the first start works")
        .expect("an empty deployment gets its admin");
    assert_eq!(made.user.email.as_str(), FIRST_ADMIN_EMAIL);
    assert!(made.user.tenant_admin);
    assert_eq!(made.team.name.as_str(), FIRST_TEAM);
    assert_eq!(made.team.tier, Settings::default().default_tier);
    assert!(!format!("{made:?}").contains(secrecy::ExposeSecret::expose_secret(&made.token)));

    // The token it hands out is the admin's, and the admin owns the team.
    let subject = custodian.authenticate(&made.token).await.expect("the token works");
    assert_eq!(subject.id(), made.user.id.into());
    assert_eq!(teams_of(&custodian, &subject).await[0].0, FIRST_TEAM);

    // A second start (or a second server) makes nothing.
    assert!(custodian.bootstrap_first_start().await.expect("it works").is_none());
}

#[tokio::test]
async fn bootstrap_creates_or_joins_the_team_and_sets_its_tier() {
    let world = World::new(Settings::default()).await;
    let core = &world.custodian;
    let first = core
        .bootstrap_admin(input("ops@example.com", "platform", Some("pro")))
        .await
        .expect("an admin is made");
    assert_eq!(first.team.tier, Tier::Pro);
    assert_eq!(first.user.display_name.as_str(), "ops");

    // The team exists: the next admin joins it as owner, and moves it to the tier given.
    let second = core
        .bootstrap_admin(input("sre@example.com", "platform", Some("enterprise")))
        .await
        .expect("a second admin is made");
    assert_eq!(second.team.id, first.team.id);
    assert_eq!(second.team.tier, Tier::Enterprise);
    let subject = core.authenticate(&second.token).await.expect("the token works");
    assert_eq!(teams_of(core, &subject).await, [("platform".to_owned(), Role::Owner)]);
}

#[tokio::test]
async fn bootstrap_refuses_bad_input_and_a_taken_email_before_writing() {
    let world = World::new(Settings::default()).await;
    let core = &world.custodian;
    let Err(CoreError::Validation(errors)) = core.bootstrap_admin(input("not-an-email", "", Some("gold"))).await else {
        panic!("bad input is a validation error");
    };
    let paths: Vec<String> = errors.errors().iter().map(|e| e.path()).collect();
    assert_eq!(paths, ["email", "team", "tier"]);

    core.bootstrap_admin(input("ops@example.com", "platform", None))
        .await
        .expect("an admin is made");
    let again = core.bootstrap_admin(input("ops@example.com", "analytics", None)).await;
    assert!(
        matches!(again, Err(CoreError::Conflict(ConflictKind::DuplicateEmail))),
        "{again:?}"
    );
    let teams = teams_of(core, &world.admin).await;
    assert_eq!(teams.len(), 1, "no team was made for the refused admin: {teams:?}");
}
