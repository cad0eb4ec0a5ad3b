//! The contract suites against [`MemoryRepos`]: the fake must keep every rule that the
//! SQL adapters keep.

use custodian_testkit::contract::{locations, secrets, vault_connections};
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::run_cases;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_contract() {
    run_cases("memory", "secrets", &secrets::cases(), || async {
        MemoryRepos::default().repositories()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locations_contract() {
    run_cases("memory", "locations", &locations::cases(), || async {
        MemoryRepos::default().repositories()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vault_connections_contract() {
    run_cases("memory", "vault_connections", &vault_connections::cases(), || async {
        MemoryRepos::default().repositories()
    })
    .await;
}

/// The suites of the other ports, against the same fake.
mod other_ports {
    use custodian_testkit::contract;
    use custodian_testkit::memory::MemoryRepos;
    use custodian_testkit::run_cases;

    macro_rules! suite {
        ($suite:ident) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $suite() {
                run_cases(
                    "memory",
                    stringify!($suite),
                    &contract::$suite::cases(),
                    || async { MemoryRepos::default().repositories() },
                )
                .await;
            }
        };
    }

    suite!(users);
    suite!(teams);
    suite!(memberships);
    suite!(virtual_accounts);
    suite!(tokens);
    suite!(audit);
}

/// The rules of the other ports that cross records, kept by the one shared state.
mod cross_port {
    use chrono::{DateTime, Utc};
    use custodian_domain::{
        AuditAction, AuditEvent, AuditEventId, DisplayName, Email, LimitKind, Membership, Name, Outcome,
        RequestContext, ResourceType, Role, SubjectKind, Team, TeamId, Tier, TokenDigest, TokenId, TokenOwner,
        TokenRecord, User, UserId, VirtualAccount, VirtualAccountId,
    };
    use custodian_ports::{AuditFilter, ConflictKind, Page, RepoError};
    use custodian_testkit::RepoSet;
    use custodian_testkit::memory::MemoryRepos;
    use uuid::Uuid;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("test setup")
    }

    fn event(team: Option<TeamId>, resource_type: ResourceType, secs: i64) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::from_uuid(Uuid::now_v7()),
            occurred_at: at(secs),
            team_id: team,
            actor_id: None,
            actor_kind: Some(SubjectKind::User),
            action: AuditAction::Create,
            resource_type,
            resource_id: None,
            resource_name: None,
            outcome: Outcome::Success,
            detail: None,
            context: RequestContext::default(),
        }
    }

    fn token(owner: TokenOwner, secs: i64) -> TokenRecord {
        let mut digest = [0u8; 32];
        digest[..16].copy_from_slice(Uuid::now_v7().as_bytes());
        TokenRecord {
            id: TokenId::from_uuid(Uuid::now_v7()),
            owner,
            name: None,
            digest: TokenDigest(digest),
            created_at: at(secs),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        }
    }

    async fn user(repos: &RepoSet, email: &str) -> User {
        let user = User {
            id: UserId::from_uuid(Uuid::now_v7()),
            email: Email::parse_at("email", email).expect("test setup"),
            display_name: DisplayName::parse_at("display_name", "Someone").expect("test setup"),
            tenant_admin: false,
            created_at: at(0),
            disabled_at: None,
        };
        repos
            .users
            .create(&user, None, &event(None, ResourceType::User, 0))
            .await
            .expect("test setup");
        user
    }

    async fn team(repos: &RepoSet, name: &str, owner: UserId) -> TeamId {
        let id = TeamId::from_uuid(Uuid::now_v7());
        let team = Team {
            id,
            name: Name::parse_at("name", name).expect("test setup"),
            description: None,
            tier: Tier::Free,
            created_at: at(0),
            created_by: owner.into(),
            updated_at: at(0),
        };
        let owner = Membership {
            team_id: id,
            user_id: owner,
            role: Role::Owner,
            created_at: at(0),
        };
        repos
            .teams
            .create(&team, &owner, &event(Some(id), ResourceType::Team, 1))
            .await
            .expect("test setup");
        id
    }

    fn member(team: TeamId, user: UserId, role: Role) -> Membership {
        Membership {
            team_id: team,
            user_id: user,
            role,
            created_at: at(2),
        }
    }

    #[tokio::test]
    async fn users_are_unique_by_email_and_listed_by_email() {
        let repos = MemoryRepos::new().repositories();
        user(&repos, "b@example.com").await;
        let a = user(&repos, "a@example.com").await;
        let twin = User {
            id: UserId::from_uuid(Uuid::now_v7()),
            ..a.clone()
        };
        assert_eq!(
            repos
                .users
                .create(&twin, None, &event(None, ResourceType::User, 0))
                .await,
            Err(RepoError::Conflict(ConflictKind::DuplicateEmail))
        );
        let page = repos.users.list(Page::default()).await.expect("test setup");
        let emails: Vec<&str> = page.items.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails, ["a@example.com", "b@example.com"]);
        assert_eq!(repos.users.count().await, Ok(2));
        assert_eq!(repos.users.find_by_email(&a.email).await, Ok(Some(a)));
    }

    #[tokio::test]
    async fn team_names_are_unique_and_the_creator_is_owner() {
        let repos = MemoryRepos::new().repositories();
        let owner = user(&repos, "o@example.com").await;
        let id = team(&repos, "ops", owner.id).await;
        assert_eq!(
            repos
                .memberships
                .get(id, owner.id)
                .await
                .expect("test setup")
                .map(|m| m.role),
            Some(Role::Owner)
        );
        let clash = Team {
            id: TeamId::from_uuid(Uuid::now_v7()),
            ..repos.teams.get(id).await.expect("test setup")
        };
        assert_eq!(
            repos
                .teams
                .create(
                    &clash,
                    &member(clash.id, owner.id, Role::Owner),
                    &event(None, ResourceType::Team, 0)
                )
                .await,
            Err(RepoError::Conflict(ConflictKind::DuplicateName))
        );
        let listed = repos
            .teams
            .list_for_user(owner.id, Page::default())
            .await
            .expect("test setup");
        assert_eq!(listed.total, 1);
        assert_eq!(listed.items[0].1, Role::Owner);
    }

    #[tokio::test]
    async fn memberships_keep_an_owner_and_their_limit() {
        let repos = MemoryRepos::new().repositories();
        let owner = user(&repos, "o@example.com").await;
        let other = user(&repos, "p@example.com").await;
        let third = user(&repos, "q@example.com").await;
        let id = team(&repos, "ops", owner.id).await;
        let ev = || event(Some(id), ResourceType::Member, 3);
        assert_eq!(
            repos.memberships.update_role(id, owner.id, Role::Admin, &ev()).await,
            Err(RepoError::Conflict(ConflictKind::LastOwner))
        );
        assert_eq!(
            repos.memberships.remove(id, owner.id, &ev()).await,
            Err(RepoError::Conflict(ConflictKind::LastOwner))
        );
        assert_eq!(
            repos
                .memberships
                .add(&member(id, other.id, Role::Viewer), Some(1), &ev())
                .await,
            Err(RepoError::LimitExceeded {
                kind: LimitKind::Members,
                limit: 1
            })
        );
        repos
            .memberships
            .add(&member(id, other.id, Role::Viewer), Some(2), &ev())
            .await
            .expect("test setup");
        assert_eq!(
            repos
                .memberships
                .add(&member(id, other.id, Role::Admin), None, &ev())
                .await,
            Err(RepoError::Conflict(ConflictKind::AlreadyMember))
        );
        assert_eq!(
            repos
                .memberships
                .add(
                    &member(TeamId::from_uuid(Uuid::now_v7()), third.id, Role::Viewer),
                    None,
                    &ev()
                )
                .await,
            Err(RepoError::NotFound)
        );
        // With a second owner the first may step down.
        repos
            .memberships
            .update_role(id, other.id, Role::Owner, &ev())
            .await
            .expect("test setup");
        let demoted = repos
            .memberships
            .update_role(id, owner.id, Role::Viewer, &ev())
            .await
            .expect("test setup");
        assert_eq!(demoted.role, Role::Viewer);
        let members = repos.memberships.list(id, Page::default()).await.expect("test setup");
        let emails: Vec<&str> = members.items.iter().map(|(_, u)| u.email.as_str()).collect();
        assert_eq!(emails, ["o@example.com", "p@example.com"]);
    }

    #[tokio::test]
    async fn deleting_a_team_removes_members_accounts_and_their_tokens() {
        let repos = MemoryRepos::new().repositories();
        let owner = user(&repos, "o@example.com").await;
        let id = team(&repos, "ops", owner.id).await;
        let account = VirtualAccount {
            id: VirtualAccountId::from_uuid(Uuid::now_v7()),
            team_id: id,
            name: Name::parse_at("name", "ci").expect("test setup"),
            role: Role::Operator,
            expires_at: None,
            created_at: at(3),
            created_by: owner.id.into(),
        };
        let first = token(TokenOwner::VirtualAccount(account.id), 3);
        repos
            .virtual_accounts
            .create(&account, &first, &event(Some(id), ResourceType::VirtualAccount, 3))
            .await
            .expect("test setup");
        assert_eq!(
            repos.tokens.find_by_digest(&first.digest).await,
            Ok(Some(first.clone()))
        );
        repos
            .teams
            .delete(id, &event(Some(id), ResourceType::Team, 4))
            .await
            .expect("test setup");
        assert_eq!(repos.teams.get(id).await, Err(RepoError::NotFound));
        assert_eq!(repos.memberships.get(id, owner.id).await, Ok(None));
        assert_eq!(
            repos.virtual_accounts.get_by_id(account.id).await,
            Err(RepoError::NotFound)
        );
        assert_eq!(repos.tokens.get(first.id).await, Err(RepoError::NotFound));
        assert_eq!(repos.users.get(owner.id).await, Ok(owner));
    }

    #[tokio::test]
    async fn replacing_tokens_revokes_the_old_ones_and_keeps_earlier_revocations() {
        let repos = MemoryRepos::new().repositories();
        let owner = user(&repos, "o@example.com").await;
        let who = TokenOwner::User(owner.id);
        let ev = || event(None, ResourceType::Token, 5);
        let old = token(who, 1);
        let revoked = token(who, 2);
        repos.tokens.create(&old, &ev()).await.expect("test setup");
        repos.tokens.create(&revoked, &ev()).await.expect("test setup");
        repos.tokens.revoke(revoked.id, at(3), &ev()).await.expect("test setup");
        let fresh = token(who, 10);
        repos
            .tokens
            .replace_for_owner(who, at(20), &fresh, &ev())
            .await
            .expect("test setup");
        let listed = repos.tokens.list_for_owner(who).await.expect("test setup");
        let ids: Vec<TokenId> = listed.iter().map(|t| t.id).collect();
        assert_eq!(ids, [fresh.id, revoked.id, old.id], "newest first");
        assert_eq!(listed[0].revoked_at, None);
        assert_eq!(listed[1].revoked_at, Some(at(3)));
        assert_eq!(listed[2].revoked_at, Some(at(20)));
        assert_eq!(
            repos
                .tokens
                .create(&token(TokenOwner::User(UserId::from_uuid(Uuid::now_v7())), 1), &ev())
                .await,
            Err(RepoError::NotFound)
        );
    }

    #[tokio::test]
    async fn audit_lists_newest_first_within_the_filter() {
        let repos = MemoryRepos::new().repositories();
        let id = TeamId::from_uuid(Uuid::now_v7());
        for secs in [5, 7, 6] {
            repos
                .audit
                .record(&event(Some(id), ResourceType::StorageSecret, secs))
                .await
                .expect("test setup");
        }
        repos
            .audit
            .record(&event(Some(id), ResourceType::Location, 8))
            .await
            .expect("test setup");
        repos
            .audit
            .record(&event(None, ResourceType::StorageSecret, 9))
            .await
            .expect("test setup");
        let filter = AuditFilter {
            resource_type: Some(ResourceType::StorageSecret),
            since: Some(at(6)),
            until: Some(at(8)),
            ..AuditFilter::default()
        };
        let page = repos
            .audit
            .list(id, &filter, Page::default())
            .await
            .expect("test setup");
        let times: Vec<DateTime<Utc>> = page.items.iter().map(|e| e.occurred_at).collect();
        assert_eq!(times, [at(7), at(6)]);
        assert_eq!(page.total, 2);
        let all = repos
            .audit
            .list(id, &AuditFilter::default(), Page::default())
            .await
            .expect("test setup");
        assert_eq!(all.total, 4);
    }
}
