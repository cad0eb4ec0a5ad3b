//! Every `/v1` route asked by every caller of the cast: who may (the success
//! status), who is too low (403 `forbidden`), who is outside the team (404 `not_found`,
//! never 403) and who has no token or an unknown one (401 `unauthenticated`). The role table gives the minimum roles.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Backend, Cast, TestServer, add_member, assert_no_failures, create_location, create_secret, create_team,
    create_user, create_vault_connection, create_virtual_account, doppler_body, location_body, s3_secret_body, unique,
};

/// Team roles, lowest to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Viewer,
    Operator,
    Admin,
    Owner,
}

impl Role {
    fn parse(text: &str) -> Self {
        match text {
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            other => panic!("not a role: {other}"),
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No token needed.
    Public,
    /// Any authenticated caller.
    Anyone,
    /// Any user; a virtual account gets 403.
    User,
    /// Only a tenant admin.
    TenantAdmin,
    /// At least this role in the team of the path.
    Team(Role),
}

/// What a row needs to exist before its request, fresh for every caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixture {
    Nothing,
    /// A user of the tenant who is not in the team (`new_user_id`, `new_user_email`).
    Outsider,
    /// A new member of the team with this role (`user_id`).
    Member(&'static str),
    /// A new virtual account of the team (`id`).
    VirtualAccount,
    /// A managed secret (`secret_id`).
    Secret,
    /// A location over a new secret (`id`, `secret_id`).
    Location,
    /// A Doppler vault connection (`id`).
    VaultConnection,
    /// A new empty team with the cast's four members in their roles and a virtual account
    /// of the cast account's role (`team_id`, `account_token`).
    EmptyTeam,
}

/// One route of the table.
struct Route {
    method: Method,
    /// The path template as the API reference writes it; `{name}` is filled from the fixture.
    path: &'static str,
    access: Access,
    success: u16,
    fixture: Fixture,
    body: fn(&Target) -> Option<Value>,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    success: u16,
    fixture: Fixture,
    body: fn(&Target) -> Option<Value>,
) -> Route {
    Route {
        method,
        path,
        access,
        success,
        fixture,
        body,
    }
}

fn no_body(_: &Target) -> Option<Value> {
    None
}

/// The API reference, one row per route (and per role-dependent variant of a route).
fn routes() -> Vec<Route> {
    use Access::{Anyone, Public, Team, TenantAdmin, User};
    use Fixture as F;
    use Role::{Admin, Operator, Owner, Viewer};
    let (get, post, patch, delete) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);
    vec![
        route(get.clone(), "/healthz", Public, 200, F::Nothing, no_body),
        route(get.clone(), "/readyz", Public, 200, F::Nothing, no_body),
        route(get.clone(), "/openapi.json", Public, 200, F::Nothing, no_body),
        route(get.clone(), "/v1/me", Anyone, 200, F::Nothing, no_body),
        // Identity.
        route(post.clone(), "/v1/users", TenantAdmin, 201, F::Nothing, |_| {
            Some(json!({ "email": format!("matrix-{}@example.com", unique()), "display_name": "Matrix" }))
        }),
        route(get.clone(), "/v1/users", TenantAdmin, 200, F::Nothing, no_body),
        // Teams.
        route(post.clone(), "/v1/teams", User, 201, F::Nothing, |_| {
            Some(json!({ "name": format!("matrix-{}", unique()) }))
        }),
        route(get.clone(), "/v1/teams", Anyone, 200, F::Nothing, no_body),
        route(
            get.clone(),
            "/v1/teams/{team_id}",
            Team(Viewer),
            200,
            F::Nothing,
            no_body,
        ),
        route(
            patch.clone(),
            "/v1/teams/{team_id}",
            Team(Admin),
            200,
            F::Nothing,
            |_| Some(json!({ "description": format!("edited {}", unique()) })),
        ),
        route(
            delete.clone(),
            "/v1/teams/{team_id}",
            Team(Owner),
            204,
            F::EmptyTeam,
            no_body,
        ),
        // Members.
        route(
            get.clone(),
            "/v1/teams/{team_id}/members",
            Team(Viewer),
            200,
            F::Nothing,
            no_body,
        ),
        route(
            post.clone(),
            "/v1/teams/{team_id}/members",
            Team(Admin),
            201,
            F::Outsider,
            |t| Some(json!({ "user_id": t.get("new_user_id"), "role": "viewer" })),
        ),
        route(
            post.clone(),
            "/v1/teams/{team_id}/members",
            Team(Owner),
            201,
            F::Outsider,
            |t| Some(json!({ "email": t.get("new_user_email"), "role": "owner" })),
        ),
        route(
            patch.clone(),
            "/v1/teams/{team_id}/members/{user_id}",
            Team(Admin),
            200,
            F::Member("viewer"),
            |_| Some(json!({ "role": "operator" })),
        ),
        route(
            patch.clone(),
            "/v1/teams/{team_id}/members/{user_id}",
            Team(Owner),
            200,
            F::Member("viewer"),
            |_| Some(json!({ "role": "owner" })),
        ),
        route(
            delete.clone(),
            "/v1/teams/{team_id}/members/{user_id}",
            Team(Admin),
            204,
            F::Member("operator"),
            no_body,
        ),
        route(
            delete.clone(),
            "/v1/teams/{team_id}/members/{user_id}",
            Team(Owner),
            204,
            F::Member("owner"),
            no_body,
        ),
        // Virtual accounts.
        route(
            get.clone(),
            "/v1/teams/{team_id}/virtual-accounts",
            Team(Viewer),
            200,
            F::Nothing,
            no_body,
        ),
        route(
            post.clone(),
            "/v1/teams/{team_id}/virtual-accounts",
            Team(Admin),
            201,
            F::Nothing,
            |_| Some(json!({ "name": format!("matrix-{}", unique()), "role": "viewer" })),
        ),
        route(
            delete.clone(),
            "/v1/teams/{team_id}/virtual-accounts/{id}",
            Team(Admin),
            204,
            F::VirtualAccount,
            no_body,
        ),
        route(
            post.clone(),
            "/v1/teams/{team_id}/virtual-accounts/{id}/regenerate-token",
            Team(Admin),
            200,
            F::VirtualAccount,
            |_| Some(json!({ "grace_period_seconds": 0 })),
        ),
        // Storage secrets.
        route(
            post.clone(),
            "/v1/teams/{team_id}/secrets",
            Team(Admin),
            201,
            F::Nothing,
            |_| {
                let n = unique();
                Some(s3_secret_body(
                    &format!("matrix-{n}"),
                    &format!("AKIAMATRIX{n}"),
                    "matrix/secret/key",
                ))
            },
        ),
        route(
            get.clone(),
            "/v1/teams/{team_id}/secrets",
            Team(Viewer),
            200,
            F::Nothing,
            no_body,
        ),
        route(
            get.clone(),
            "/v1/teams/{team_id}/secrets/{secret_id}",
            Team(Viewer),
            200,
            F::Secret,
            no_body,
        ),
        route(
            patch.clone(),
            "/v1/teams/{team_id}/secrets/{secret_id}",
            Team(Admin),
            200,
            F::Secret,
            |_| Some(json!({ "description": format!("edited {}", unique()) })),
        ),
        route(
            delete.clone(),
            "/v1/teams/{team_id}/secrets/{secret_id}",
            Team(Admin),
            204,
            F::Secret,
            no_body,
        ),
        route(
            post.clone(),
            "/v1/teams/{team_id}/secrets/{secret_id}/verify",
            Team(Operator),
            200,
            F::Secret,
            no_body,
        ),
        // Locations.
        route(
            post.clone(),
            "/v1/teams/{team_id}/locations",
            Team(Admin),
            201,
            F::Secret,
            |t| Some(location_body(&format!("matrix-{}", unique()), t.get("secret_id"))),
        ),
        route(
            get.clone(),
            "/v1/teams/{team_id}/locations",
            Team(Viewer),
            200,
            F::Nothing,
            no_body,
        ),
        route(
            get.clone(),
            "/v1/teams/{team_id}/locations/{id}",
            Team(Viewer),
            200,
            F::Location,
            no_body,
        ),
        route(
            patch.clone(),
            "/v1/teams/{team_id}/locations/{id}",
            Team(Admin),
            200,
            F::Location,
            |_| Some(json!({ "description": format!("edited {}", unique()) })),
        ),
        route(
            delete.clone(),
            "/v1/teams/{team_id}/locations/{id}",
            Team(Admin),
            204,
            F::Location,
            no_body,
        ),
        // Vault connections.
        route(
            post.clone(),
            "/v1/teams/{team_id}/vault-connections",
            Team(Admin),
            201,
            F::Nothing,
            |_| {
                let n = unique();
                Some(doppler_body(&format!("matrix-{n}"), &format!("dp.st.matrix{n}")))
            },
        ),
        route(
            get.clone(),
            "/v1/teams/{team_id}/vault-connections",
            Team(Viewer),
            200,
            F::Nothing,
            no_body,
        ),
        route(
            get.clone(),
            "/v1/teams/{team_id}/vault-connections/{id}",
            Team(Viewer),
            200,
            F::VaultConnection,
            no_body,
        ),
        route(
            patch.clone(),
            "/v1/teams/{team_id}/vault-connections/{id}",
            Team(Admin),
            200,
            F::VaultConnection,
            |_| Some(json!({ "description": format!("edited {}", unique()) })),
        ),
        route(
            post.clone(),
            "/v1/teams/{team_id}/vault-connections/{id}/rotate",
            Team(Admin),
            200,
            F::VaultConnection,
            |_| Some(json!({ "access_token": format!("dp.st.rotated{}", unique()) })),
        ),
        route(
            post.clone(),
            "/v1/teams/{team_id}/vault-connections/{id}/verify",
            Team(Operator),
            200,
            F::VaultConnection,
            no_body,
        ),
        route(
            delete.clone(),
            "/v1/teams/{team_id}/vault-connections/{id}",
            Team(Admin),
            204,
            F::VaultConnection,
            no_body,
        ),
        // Audit.
        route(
            get,
            "/v1/teams/{team_id}/audit-events",
            Team(Viewer),
            200,
            F::Nothing,
            no_body,
        ),
    ]
}

/// The values a row's fixture made: path parameters and body inputs by name.
#[derive(Debug, Default)]
struct Target {
    values: HashMap<&'static str, String>,
    /// The token the "virtual account" caller uses for this row, when the row's team is
    /// not the cast's team.
    account_token: Option<String>,
}

impl Target {
    fn get(&self, key: &str) -> &str {
        self.values
            .get(key)
            .unwrap_or_else(|| panic!("the fixture made no {key}"))
    }

    fn path(&self, template: &str) -> String {
        let mut path = template.to_owned();
        for (key, value) in &self.values {
            path = path.replace(&format!("{{{key}}}"), value);
        }
        assert!(!path.contains('{'), "unfilled parameter in {path}");
        path
    }
}

/// Everyone who calls each route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    TenantAdmin,
    Owner,
    Admin,
    Operator,
    Viewer,
    Account,
    Outsider,
    Anonymous,
    /// A well-formed bearer token that no one holds.
    UnknownToken,
}

const CALLERS: [Caller; 9] = [
    Caller::TenantAdmin,
    Caller::Owner,
    Caller::Admin,
    Caller::Operator,
    Caller::Viewer,
    Caller::Account,
    Caller::Outsider,
    Caller::Anonymous,
    Caller::UnknownToken,
];

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Success,
    Status(u16, &'static str),
}

const FORBIDDEN: Expect = Expect::Status(403, "forbidden");
const NOT_FOUND: Expect = Expect::Status(404, "not_found");
const UNAUTHENTICATED: Expect = Expect::Status(401, "unauthenticated");

fn expected(access: Access, caller: Caller) -> Expect {
    let member_role = match caller {
        Caller::TenantAdmin => Some(Role::Owner),
        Caller::Owner => Some(Role::Owner),
        Caller::Admin => Some(Role::Admin),
        Caller::Operator => Some(Role::Operator),
        Caller::Viewer => Some(Role::Viewer),
        Caller::Account => Some(Role::parse(Cast::ACCOUNT_ROLE)),
        Caller::Outsider | Caller::Anonymous | Caller::UnknownToken => None,
    };
    match (access, caller) {
        (Access::Public, _) => Expect::Success,
        (_, Caller::Anonymous | Caller::UnknownToken) => UNAUTHENTICATED,
        (Access::Anyone, _) => Expect::Success,
        (Access::User, Caller::Account) => FORBIDDEN,
        (Access::User, _) => Expect::Success,
        (Access::TenantAdmin, Caller::TenantAdmin) => Expect::Success,
        (Access::TenantAdmin, _) => FORBIDDEN,
        (Access::Team(_), Caller::Outsider) => NOT_FOUND,
        (Access::Team(minimum), _) => match member_role {
            Some(role) if role >= minimum => Expect::Success,
            _ => FORBIDDEN,
        },
    }
}

fn token_of(cast: &Cast, target: &Target, caller: Caller) -> Option<String> {
    let person = match caller {
        Caller::TenantAdmin => &cast.tenant_admin,
        Caller::Owner => &cast.owner,
        Caller::Admin => &cast.admin,
        Caller::Operator => &cast.operator,
        Caller::Viewer => &cast.viewer,
        Caller::Account => {
            return Some(
                target
                    .account_token
                    .clone()
                    .unwrap_or_else(|| cast.account.token.clone()),
            );
        }
        Caller::Outsider => &cast.outsider,
        Caller::Anonymous => return None,
        Caller::UnknownToken => return Some(format!("cus_{}", "x".repeat(43))),
    };
    Some(person.token.clone())
}

async fn prepare(server: &TestServer, cast: &Cast, fixture: Fixture) -> Target {
    let api = &server.api;
    let admin = server.admin_token.as_str();
    let team = cast.team_id.as_str();
    let mut target = Target::default();
    target.values.insert("team_id", cast.team_id.clone());
    match fixture {
        Fixture::Nothing => {}
        Fixture::Outsider => {
            let person = create_user(api, admin, "candidate").await;
            target.values.insert("new_user_id", person.id);
            target.values.insert("new_user_email", person.email);
        }
        Fixture::Member(role) => {
            let person = create_user(api, admin, role).await;
            add_member(api, admin, team, &person.id, role).await;
            target.values.insert("user_id", person.id);
        }
        Fixture::VirtualAccount => {
            let account = create_virtual_account(api, admin, team, "viewer").await;
            target.values.insert("id", account.id);
        }
        Fixture::Secret => {
            target.values.insert("secret_id", create_secret(api, admin, team).await);
        }
        Fixture::Location => {
            let secret = create_secret(api, admin, team).await;
            target
                .values
                .insert("id", create_location(api, admin, team, &secret).await);
            target.values.insert("secret_id", secret);
        }
        Fixture::VaultConnection => {
            target
                .values
                .insert("id", create_vault_connection(api, admin, team).await);
        }
        Fixture::EmptyTeam => {
            let fresh = create_team(api, admin, &format!("doomed-{}", unique())).await;
            for (person, role) in [
                (&cast.owner, "owner"),
                (&cast.admin, "admin"),
                (&cast.operator, "operator"),
                (&cast.viewer, "viewer"),
            ] {
                add_member(api, admin, &fresh, &person.id, role).await;
            }
            let account = create_virtual_account(api, admin, &fresh, Cast::ACCOUNT_ROLE).await;
            target.account_token = Some(account.token);
            target.values.insert("team_id", fresh);
        }
    }
    target
}

/// After a `DELETE`, ask the tenant admin whether the resource is still there: gone after
/// an allowed delete, untouched after a refused one. Resources without a read route of their
/// own (members, virtual accounts) are looked up in their list.
async fn check_deleted(server: &TestServer, template: &str, target: &Target, allowed: bool) -> Option<String> {
    let listed = [
        ("/v1/teams/{team_id}/members/{user_id}", "user_id"),
        ("/v1/teams/{team_id}/virtual-accounts/{id}", "id"),
    ];
    let present = match listed.iter().find(|(path, _)| *path == template) {
        Some((path, key)) => {
            let list = path.rsplit_once('/').map_or(*path, |(list, _)| list);
            let reply = server
                .api
                .get(&format!("{}?limit=200", target.path(list)), &server.admin_token)
                .await;
            if reply.status.as_u16() != 200 {
                return Some(format!("listing {list}: {} {}", reply.status, reply.text));
            }
            reply.text.contains(target.get(key))
        }
        None => {
            let reply = server.api.get(&target.path(template), &server.admin_token).await;
            match reply.status.as_u16() {
                200 => true,
                404 => false,
                _ => return Some(format!("reading it back: {} {}", reply.status, reply.text)),
            }
        }
    };
    match (allowed, present) {
        (true, true) => Some("still there after the delete".to_owned()),
        (false, false) => Some("gone although the delete was refused".to_owned()),
        _ => None,
    }
}

async fn run_matrix(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let cast = Cast::create(&server).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in routes() {
        // Reads share one fixture; anything else gets a fresh one per caller, so a
        // successful delete never takes a later caller's resource away.
        let shared = if row.method == Method::GET {
            Some(prepare(&server, &cast, row.fixture).await)
        } else {
            None
        };
        for caller in CALLERS {
            let fresh;
            let target = match &shared {
                Some(target) => target,
                None => {
                    fresh = prepare(&server, &cast, row.fixture).await;
                    &fresh
                }
            };
            let path = target.path(row.path);
            let body = (row.body)(target);
            let token = token_of(&cast, target, caller);
            let reply = server
                .api
                .call(row.method.clone(), &path, token.as_deref(), body.as_ref())
                .await;
            checked += 1;
            let label = format!("{} {} as {caller:?}", row.method, row.path);
            let problem = match expected(row.access, caller) {
                Expect::Success if reply.status.as_u16() == row.success => None,
                Expect::Success => Some(format!("expected {}, got {} {}", row.success, reply.status, reply.text)),
                Expect::Status(status, code) => {
                    let mut problems = Vec::new();
                    if reply.status.as_u16() != status || reply.json["code"] != code {
                        problems.push(format!("expected {status} {code}, got {} {}", reply.status, reply.text));
                    }
                    if !reply.json["detail"].is_string() {
                        problems.push(format!("no detail sentence in {}", reply.text));
                    }
                    if status == 401 && reply.headers.get("www-authenticate").is_none_or(|v| v != "Bearer") {
                        problems.push("no `WWW-Authenticate: Bearer`".to_owned());
                    }
                    (!problems.is_empty()).then(|| problems.join("; "))
                }
            };
            if let Some(problem) = problem {
                failures.push(format!("{label}: {problem}"));
            }
            if let Some(sent) = body
                .as_ref()
                .and_then(|b| b.get("description"))
                .filter(|_| row.method == Method::PATCH)
            {
                // A refused change leaves the description as it was; an allowed one sets it.
                let allowed = expected(row.access, caller) == Expect::Success;
                let now = server.api.get(&path, &server.admin_token).await;
                if (now.json["description"] == *sent) != allowed {
                    failures.push(format!(
                        "{label}: the description after the PATCH is {}",
                        now.json["description"]
                    ));
                }
            }
            if row.method == Method::DELETE {
                let allowed = expected(row.access, caller) == Expect::Success;
                if let Some(problem) = check_deleted(&server, row.path, target, allowed).await {
                    failures.push(format!("{label}: {problem}"));
                }
            }
        }
    }
    // The other way round: the outsider's team does not exist for the cast's members.
    for person in [&cast.owner, &cast.admin, &cast.operator, &cast.viewer, &cast.account] {
        let reply = server
            .api
            .get(&format!("/v1/teams/{}", cast.outsider_team_id), &person.token)
            .await;
        if reply.status.as_u16() != 404 || reply.json["code"] != "not_found" {
            failures.push(format!(
                "GET another team as {}: {} {}",
                person.email, reply.status, reply.text
            ));
        }
    }
    assert_eq!(checked, routes().len() * CALLERS.len());
    assert_no_failures(backend, checked, &failures);
}

#[actix_web::test]
async fn every_route_answers_every_caller_by_role_on_sqlite() {
    run_matrix(Backend::Sqlite).await;
}

#[actix_web::test]
async fn every_route_answers_every_caller_by_role_on_postgres() {
    run_matrix(Backend::Postgres).await;
}

/// `/v1/teams/{team_id}/secrets/{secret_id}` → `/v1/teams/{}/secrets/{}`: parameter names
/// are the handlers' choice, the shape of the path is the contract.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if inside => {}
            c => out.push(c),
        }
    }
    out
}

#[actix_web::test]
async fn every_route_of_the_table_is_in_the_openapi_document() {
    let server = TestServer::start(Backend::Sqlite).await.expect("SQLite always runs");
    let reply = server.api.call(Method::GET, "/openapi.json", None, None).await;
    reply.expect_status(200, "GET /openapi.json");
    assert!(
        reply.json["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        reply.json["openapi"]
    );
    let paths = reply.json["paths"].as_object().expect("a paths object");
    let documented: HashMap<String, &Value> = paths.iter().map(|(path, item)| (shape(path), item)).collect();
    let mut missing = Vec::new();
    for row in routes() {
        let method = row.method.as_str().to_ascii_lowercase();
        let found = documented
            .get(&shape(row.path))
            .is_some_and(|item| item.get(&method).is_some());
        if !found {
            missing.push(format!("{} {}", row.method, row.path));
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json:\n{}",
        missing.join("\n")
    );
    // Every /v1 operation names the bearer scheme.
    for (path, item) in paths.iter().filter(|(p, _)| p.starts_with("/v1/")) {
        for (method, operation) in item.as_object().into_iter().flatten() {
            assert!(
                operation["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some())),
                "{method} {path} has no bearer security"
            );
        }
    }
}

#[test]
fn the_expectations_follow_the_spec_table() {
    // A few fixed points of the role table, written out by hand.
    assert_eq!(expected(Access::Team(Role::Viewer), Caller::Viewer), Expect::Success);
    assert_eq!(expected(Access::Team(Role::Operator), Caller::Viewer), FORBIDDEN);
    assert_eq!(expected(Access::Team(Role::Owner), Caller::Admin), FORBIDDEN);
    assert_eq!(
        expected(Access::Team(Role::Owner), Caller::TenantAdmin),
        Expect::Success
    );
    assert_eq!(expected(Access::Team(Role::Viewer), Caller::Outsider), NOT_FOUND);
    assert_eq!(expected(Access::Team(Role::Owner), Caller::Account), FORBIDDEN);
    assert_eq!(expected(Access::TenantAdmin, Caller::Owner), FORBIDDEN);
    assert_eq!(expected(Access::User, Caller::Account), FORBIDDEN);
    assert_eq!(expected(Access::Anyone, Caller::Anonymous), UNAUTHENTICATED);
    assert_eq!(expected(Access::Public, Caller::Anonymous), Expect::Success);
    assert_eq!(
        expected(Access::Team(Role::Viewer), Caller::UnknownToken),
        UNAUTHENTICATED
    );
    assert_eq!(shape("/v1/teams/{team_id}/locations/{id}"), "/v1/teams/{}/locations/{}");
}
