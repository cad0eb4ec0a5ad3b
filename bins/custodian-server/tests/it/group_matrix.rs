//! Every `/api/svc/v1` secret-group route asked by every caller of the cast and by virtual
//! accounts of the viewer and operator roles: who may (200), who is too low (403
//! `forbidden`, or `value_view_forbidden` for a value read), who is in another team (404
//! `not_found`, never 403: the group and its keys do not exist for them) and who has no
//! token or an unknown one (401 `unauthenticated` with `WWW-Authenticate: Bearer`), every
//! refusal in the svc error shape. A refused change leaves the group as it was; an allowed
//! one is seen; only value reads answer with values.

use reqwest::Method;
use serde_json::{Value, json};

use crate::matrix::Role;
use crate::support::{
    Backend, Cast, GROUPS, Reply, SECRETS, TestServer, assert_no_failures, create_group, create_virtual_account,
    group_body, key_id, unique,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// Any authenticated caller.
    Anyone,
    /// At least this role in the group's team.
    Team(Role),
}

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Success,
    /// 200 without the fixture's group or keys (a list over the caller's own teams).
    Hidden,
    Status(u16, &'static str),
}

/// What an allowed call changes, checked afterwards by the tenant admin (a refused call
/// must change nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Nothing,
    /// A group named `new_name` exists.
    GroupCreated,
    /// The fixture group has the key `ADDED`.
    KeyAdded,
    /// The fixture group is gone.
    GroupDeleted,
    /// The fixture group's key `FIRST` is gone.
    KeyDeleted,
}

/// One route of the table.
struct Route {
    method: Method,
    /// `{group_id}`, `{group_name}`, `{key_id}` are filled from the fixture.
    path: &'static str,
    need: Need,
    /// The code of the 403 for too low a role.
    denied: &'static str,
    /// What a member of another team gets.
    outsider: Expect,
    effect: Effect,
    body: fn(&Target) -> Option<Value>,
    /// What a successful answer holds: `Err` says what is wrong.
    answer: fn(&Target, &Reply) -> Result<(), String>,
}

/// The fixture of a row: a group of the cast's team with the keys `FIRST` and `SECOND`, and
/// a fresh name for a group to create.
#[derive(Debug)]
struct Target {
    team_id: String,
    team_name: String,
    group_id: String,
    group_name: String,
    key_id: String,
    key_fqn: String,
    values: [String; 2],
    new_name: String,
}

impl Target {
    fn path(&self, template: &str) -> String {
        template
            .replace("{group_id}", &self.group_id)
            .replace("{group_name}", &self.group_name)
            .replace("{key_id}", &self.key_id)
    }

    /// `Err` when `reply` shows one of the fixture's values.
    fn no_values(&self, reply: &Reply) -> Result<(), String> {
        match self.values.iter().find(|v| reply.text.contains(v.as_str())) {
            Some(value) => Err(format!("a value ({value}) in an answer that shows none")),
            None => Ok(()),
        }
    }

    /// `Err` unless `reply` names the fixture's group (its id) and shows no value.
    fn shows_group(&self, reply: &Reply) -> Result<(), String> {
        if !reply.text.contains(&self.group_id) {
            return Err("the fixture's group is missing".to_owned());
        }
        self.no_values(reply)
    }

    /// `Err` unless `reply` names the fixture's key and shows its value.
    fn shows_value(&self, reply: &Reply) -> Result<(), String> {
        if reply.text.contains(&self.key_id) && reply.text.contains(&self.values[0]) {
            Ok(())
        } else {
            Err("the key's value is missing".to_owned())
        }
    }
}

fn no_body(_: &Target) -> Option<Value> {
    None
}

/// The secret-group routes, one row per route (and per variant that answers otherwise).
fn routes() -> Vec<Route> {
    use Role::{Admin, Operator, Viewer};
    const FORBIDDEN: &str = "forbidden";
    const VALUE_VIEW_FORBIDDEN: &str = "value_view_forbidden";
    const NOT_FOUND: Expect = Expect::Status(404, "not_found");
    vec![
        Route {
            method: Method::GET,
            path: "/api/svc/v1/integrations",
            need: Need::Anyone,
            denied: FORBIDDEN,
            outsider: Expect::Success,
            effect: Effect::Nothing,
            body: no_body,
            answer: |_, reply| match reply.json["data"][0]["id"].as_str() {
                Some("local") => Ok(()),
                _ => Err("the local integration is not listed".to_owned()),
            },
        },
        Route {
            method: Method::POST,
            path: GROUPS,
            need: Need::Team(Admin),
            denied: FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::GroupCreated,
            body: |t| {
                Some(group_body(
                    &t.new_name,
                    "local",
                    Some(&t.team_id),
                    &[("FIRST", &format!("{}-created", t.values[0]))],
                ))
            },
            answer: |t, reply| match reply.json["data"]["name"].as_str() {
                Some(name) if name == t.new_name => t.no_values(reply),
                _ => Err("not the group created".to_owned()),
            },
        },
        Route {
            method: Method::GET,
            path: "/api/svc/v1/secret-groups?search={group_name}",
            need: Need::Team(Viewer),
            denied: FORBIDDEN,
            outsider: Expect::Hidden,
            effect: Effect::Nothing,
            body: no_body,
            answer: Target::shows_group,
        },
        // A manifest of a new group owned by the cast's team. Another team's member names
        // a team they do not belong to: a field error saying it is not found.
        Route {
            method: Method::PUT,
            path: GROUPS,
            need: Need::Team(Admin),
            denied: FORBIDDEN,
            outsider: Expect::Status(422, "validation_failed"),
            effect: Effect::GroupCreated,
            body: |t| {
                Some(json!({ "manifest": {
                    "type": "secret-group",
                    "name": t.new_name,
                    "integration_fqn": "local",
                    "ownedBy": { "account": t.team_name },
                } }))
            },
            answer: |t, reply| match reply.json["data"]["name"].as_str() {
                Some(name) if name == t.new_name => t.no_values(reply),
                _ => Err("not the group of the manifest".to_owned()),
            },
        },
        // A manifest of the fixture's group, by name. Another team's member is told the
        // name is taken, as a create would.
        Route {
            method: Method::PUT,
            path: GROUPS,
            need: Need::Team(Admin),
            denied: FORBIDDEN,
            outsider: Expect::Status(409, "duplicate_name"),
            effect: Effect::Nothing,
            body: |t| Some(json!({ "manifest": { "name": t.group_name, "integration_fqn": "local" } })),
            answer: Target::shows_group,
        },
        Route {
            method: Method::GET,
            path: "/api/svc/v1/secret-groups/{group_id}",
            need: Need::Team(Viewer),
            denied: FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::Nothing,
            body: no_body,
            answer: Target::shows_group,
        },
        Route {
            method: Method::PUT,
            path: "/api/svc/v1/secret-groups/{group_id}",
            need: Need::Team(Admin),
            denied: FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::KeyAdded,
            body: |t| {
                Some(json!({ "secrets": [
                    { "key": "FIRST" },
                    { "key": "SECOND" },
                    { "key": "ADDED", "value": format!("{}-added", t.values[0]) },
                ] }))
            },
            answer: Target::shows_group,
        },
        Route {
            method: Method::DELETE,
            path: "/api/svc/v1/secret-groups/{group_id}",
            need: Need::Team(Admin),
            denied: FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::GroupDeleted,
            body: no_body,
            answer: |_, reply| match reply.json == json!({}) {
                true => Ok(()),
                false => Err("the answer is not {}".to_owned()),
            },
        },
        Route {
            method: Method::GET,
            path: "/api/svc/v1/secrets/{key_id}",
            need: Need::Team(Operator),
            denied: VALUE_VIEW_FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::Nothing,
            body: no_body,
            answer: Target::shows_value,
        },
        Route {
            method: Method::POST,
            path: SECRETS,
            need: Need::Team(Viewer),
            denied: FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::Nothing,
            body: |t| Some(json!({ "secretGroupId": t.group_id })),
            answer: Target::shows_group,
        },
        // By FQN: another team's keys are simply not there.
        Route {
            method: Method::POST,
            path: SECRETS,
            need: Need::Team(Viewer),
            denied: FORBIDDEN,
            outsider: Expect::Hidden,
            effect: Effect::Nothing,
            body: |t| Some(json!({ "secretFqns": [t.key_fqn] })),
            answer: Target::shows_group,
        },
        Route {
            method: Method::POST,
            path: SECRETS,
            need: Need::Team(Operator),
            denied: VALUE_VIEW_FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::Nothing,
            body: |t| Some(json!({ "secretGroupId": t.group_id, "withValue": true })),
            answer: Target::shows_value,
        },
        Route {
            method: Method::DELETE,
            path: "/api/svc/v1/secrets/{key_id}",
            need: Need::Team(Admin),
            denied: FORBIDDEN,
            outsider: NOT_FOUND,
            effect: Effect::KeyDeleted,
            body: no_body,
            answer: |_, reply| match reply.text.trim() {
                "1" => Ok(()),
                _ => Err("the answer is not 1".to_owned()),
            },
        },
    ]
}

/// Where a caller stands towards the cast's team.
#[derive(Debug, Clone, Copy)]
enum Standing {
    Member(Role),
    /// A member of another team only.
    Outsider,
    /// No token, or one nobody holds.
    Nobody,
}

struct Caller {
    label: &'static str,
    token: Option<String>,
    standing: Standing,
}

/// The cast (the tenant admin acting as an owner), its admin virtual account, and virtual
/// accounts of the viewer and operator roles.
async fn callers(server: &TestServer, cast: &Cast) -> Vec<Caller> {
    let (api, admin) = (&server.api, server.admin_token.as_str());
    let account_viewer = create_virtual_account(api, admin, &cast.team_id, "viewer").await;
    let account_operator = create_virtual_account(api, admin, &cast.team_id, "operator").await;
    let member = |label, token: &str, role| Caller {
        label,
        token: Some(token.to_owned()),
        standing: Standing::Member(role),
    };
    vec![
        member("tenant admin", &cast.tenant_admin.token, Role::Owner),
        member("owner", &cast.owner.token, Role::Owner),
        member("admin", &cast.admin.token, Role::Admin),
        member("operator", &cast.operator.token, Role::Operator),
        member("viewer", &cast.viewer.token, Role::Viewer),
        member("virtual account (admin)", &cast.account.token, Role::Admin),
        member("virtual account (operator)", &account_operator.token, Role::Operator),
        member("virtual account (viewer)", &account_viewer.token, Role::Viewer),
        Caller {
            label: "member of another team",
            token: Some(cast.outsider.token.clone()),
            standing: Standing::Outsider,
        },
        Caller {
            label: "no token",
            token: None,
            standing: Standing::Nobody,
        },
        Caller {
            label: "unknown token",
            token: Some(format!("cus_{}", "x".repeat(43))),
            standing: Standing::Nobody,
        },
    ]
}

fn expected(route: &Route, standing: Standing) -> Expect {
    match (standing, route.need) {
        (Standing::Nobody, _) => Expect::Status(401, "unauthenticated"),
        (Standing::Outsider, _) => route.outsider,
        (Standing::Member(_), Need::Anyone) => Expect::Success,
        (Standing::Member(role), Need::Team(minimum)) if role >= minimum => Expect::Success,
        (Standing::Member(_), Need::Team(_)) => Expect::Status(403, route.denied),
    }
}

/// A fresh group of the cast's team, made by the tenant admin.
async fn prepare(server: &TestServer, cast: &Cast) -> Target {
    let n = unique();
    let values = [format!("matrix-value-{n}-first"), format!("matrix-value-{n}-second")];
    let group_name = format!("grp-{n}-m");
    let group = create_group(
        &server.api,
        &server.admin_token,
        &group_body(
            &group_name,
            "local",
            Some(&cast.team_id),
            &[("FIRST", &values[0]), ("SECOND", &values[1])],
        ),
    )
    .await;
    let key_id = key_id(&group, "FIRST");
    let key_fqn = group["associatedSecrets"][0]["fqn"]
        .as_str()
        .expect("a key FQN")
        .to_owned();
    Target {
        team_id: cast.team_id.clone(),
        team_name: cast.team_name.clone(),
        group_id: group["id"].as_str().expect("a group id").to_owned(),
        group_name,
        key_id,
        key_fqn,
        values,
        new_name: format!("grp-{}-new", unique()),
    }
}

/// What the tenant admin sees of `effect` after the call: `Err` when an allowed call left
/// no trace, or a refused one left one.
async fn check_effect(server: &TestServer, effect: Effect, target: &Target, allowed: bool) -> Result<(), String> {
    let (api, admin) = (&server.api, server.admin_token.as_str());
    let group = format!("{GROUPS}/{}", target.group_id);
    let happened = match effect {
        Effect::Nothing => return Ok(()),
        Effect::GroupCreated => {
            let found = api.get(&format!("{GROUPS}?search={}", target.new_name), admin).await;
            found.json["data"]
                .as_array()
                .is_some_and(|groups| groups.iter().any(|g| g["name"] == target.new_name.as_str()))
        }
        Effect::GroupDeleted => api.get(&group, admin).await.status.as_u16() == 404,
        Effect::KeyAdded | Effect::KeyDeleted => {
            let reply = api.get(&group, admin).await;
            if reply.status.as_u16() != 200 {
                return Err(format!("reading the group back: {} {}", reply.status, reply.text));
            }
            let has = |key: &str| {
                reply.json["data"]["associatedSecrets"]
                    .as_array()
                    .is_some_and(|keys| keys.iter().any(|k| k["name"] == key))
            };
            if effect == Effect::KeyAdded {
                has("ADDED")
            } else {
                !has("FIRST")
            }
        }
    };
    match (allowed, happened) {
        (true, false) => Err(format!("{effect:?} did not happen although the call was allowed")),
        (false, true) => Err(format!("{effect:?} happened although the call was refused")),
        _ => Ok(()),
    }
}

async fn run_group_matrix(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let cast = Cast::create(&server).await;
    let callers = callers(&server, &cast).await;
    let routes = routes();
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in &routes {
        // Rows that change nothing share one fixture; the others get a fresh one per caller.
        let shared = match route.effect {
            Effect::Nothing => Some(prepare(&server, &cast).await),
            _ => None,
        };
        for caller in &callers {
            let fresh;
            let target = match &shared {
                Some(target) => target,
                None => {
                    fresh = prepare(&server, &cast).await;
                    &fresh
                }
            };
            let body = (route.body)(target);
            let reply = server
                .api
                .call(
                    route.method.clone(),
                    &target.path(route.path),
                    caller.token.as_deref(),
                    body.as_ref(),
                )
                .await;
            checked += 1;
            let expect = expected(route, caller.standing);
            let got = |problem: String| format!("{problem}; got {} {}", reply.status, reply.text);
            let problem = match expect {
                Expect::Success if reply.status.as_u16() == 200 => (route.answer)(target, &reply).err().map(got),
                Expect::Hidden if reply.status.as_u16() == 200 => [&target.group_id, &target.key_id]
                    .into_iter()
                    .any(|id| reply.text.contains(id.as_str()))
                    .then(|| "the fixture of another team is listed".to_owned())
                    .or_else(|| target.no_values(&reply).err())
                    .map(got),
                Expect::Success | Expect::Hidden => Some(got("expected 200".to_owned())),
                Expect::Status(status, code) => reply.svc_error_problem(status, code),
            };
            if let Some(problem) = problem {
                failures.push(format!(
                    "{} {} as {}: {problem}",
                    route.method, route.path, caller.label
                ));
            }
            let allowed = matches!(expect, Expect::Success);
            if let Err(problem) = check_effect(&server, route.effect, target, allowed).await {
                failures.push(format!(
                    "{} {} as {}: {problem}",
                    route.method, route.path, caller.label
                ));
            }
        }
    }
    assert_eq!(checked, routes.len() * callers.len());
    assert_no_failures(backend, checked, &failures);
}

/// Every secret-group route answers every caller by role on SQLite: success with the right
/// answer, 403 with the right code, 404 outside the team, 401 without a valid token; a
/// refused change changes nothing.
#[actix_web::test]
async fn every_group_route_answers_every_caller_by_role_on_sqlite() {
    run_group_matrix(Backend::Sqlite).await;
}

/// The same on PostgreSQL.
#[actix_web::test]
async fn every_group_route_answers_every_caller_by_role_on_postgres() {
    run_group_matrix(Backend::Postgres).await;
}

/// A few fixed points of the table, written out by hand.
#[test]
fn the_group_expectations_follow_the_role_table() {
    let table = routes();
    let route = |method: Method, path: &str| {
        table
            .iter()
            .find(|r| r.method == method && r.path == path)
            .unwrap_or_else(|| panic!("no row {method} {path}"))
    };
    let read = route(Method::GET, "/api/svc/v1/secrets/{key_id}");
    assert_eq!(expected(read, Standing::Member(Role::Operator)), Expect::Success);
    assert_eq!(
        expected(read, Standing::Member(Role::Viewer)),
        Expect::Status(403, "value_view_forbidden")
    );
    assert_eq!(expected(read, Standing::Outsider), Expect::Status(404, "not_found"));
    assert_eq!(expected(read, Standing::Nobody), Expect::Status(401, "unauthenticated"));
    let update = route(Method::PUT, "/api/svc/v1/secret-groups/{group_id}");
    assert_eq!(
        expected(update, Standing::Member(Role::Operator)),
        Expect::Status(403, "forbidden")
    );
    assert_eq!(expected(update, Standing::Member(Role::Owner)), Expect::Success);
    let listed = route(Method::GET, "/api/svc/v1/secret-groups?search={group_name}");
    assert_eq!(expected(listed, Standing::Outsider), Expect::Hidden);
    assert_eq!(expected(listed, Standing::Member(Role::Viewer)), Expect::Success);
}
