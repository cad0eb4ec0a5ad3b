//! A secret group's whole life through the built binary, on SQLite and PostgreSQL: an
//! admin creates it with three keys → an operator reads a value → the admin changes one
//! key, keeps one, drops one and adds one → every version reads back → a viewer sees keys
//! but no value → a virtual account's read counts as an active deployment → a key and then
//! the group are deleted → the audit trail holds every change and read, never a value.
//! Then the refusals (a taken name, a repeated key, an unknown integration, a value over
//! 32 KiB, a caller of two teams naming none), and a second start with
//! `CUSTODIAN_DISABLE_SECRET_VALUE_VIEW=true`, where nobody reads a value but keys stay listed.

use std::path::Path;
use std::process::Command;

use custodian_test_db::TestPostgres;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::{RunningServer, free_port};
use crate::support::{
    Api, Backend, Cast, GROUPS, Person, Reply, SECRETS, add_member, create_group, create_team, create_user,
    create_virtual_account, group_body, group_secrets, key_id, read_key, read_value, unique,
};

/// The binary over `data_dir`, on `database_url` when given (SQLite in the data directory
/// otherwise), with value reads turned off when `no_value_view`.
fn command(data_dir: &Path, database_url: Option<&str>, no_value_view: bool) -> Command {
    let env: &[(&str, &str)] = if no_value_view {
        &[("CUSTODIAN_DISABLE_SECRET_VALUE_VIEW", "true")]
    } else {
        &[]
    };
    crate::process::custodian_on(data_dir, "info", database_url, env)
}

/// The names of a group's keys (`associatedSecrets`) or of a key list (`data`), in order.
fn names(keys: &Value) -> Vec<String> {
    keys.as_array()
        .unwrap_or_else(|| panic!("a list of keys: {keys}"))
        .iter()
        .map(|k| k["name"].as_str().expect("a key name").to_owned())
        .collect()
}

/// The key `name` of a group's `associatedSecrets` or of a key list.
fn key<'a>(keys: &'a Value, name: &str) -> &'a Value {
    keys.as_array()
        .into_iter()
        .flatten()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no key {name} in {keys}"))
}

/// The version numbers of a key, in order.
fn versions(key: &Value) -> Vec<i64> {
    key["secretVersions"]
        .as_array()
        .expect("secretVersions")
        .iter()
        .map(|v| v["version"].as_i64().expect("a version number"))
        .collect()
}

/// Panics when a group or key answer shows a value anywhere: in a key or in a version.
#[track_caller]
fn assert_no_value(reply: &Reply, what: &str) {
    let keys = match &reply.json["data"] {
        Value::Array(keys) => keys.clone(),
        group => group["associatedSecrets"]
            .as_array()
            .expect("associatedSecrets")
            .clone(),
    };
    for k in &keys {
        assert!(k.get("value").is_none(), "{what}: a value in {}", reply.text);
        for v in k["secretVersions"].as_array().into_iter().flatten() {
            assert!(v.get("value").is_none(), "{what}: a value in {}", reply.text);
        }
    }
}

/// `POST /api/svc/v1/secrets` for the keys of `group_id` as `token`.
async fn list_keys(api: &Api, token: &str, group_id: &str, with_value: bool) -> Reply {
    api.post(
        SECRETS,
        token,
        &json!({ "secretGroupId": group_id, "withValue": with_value }),
    )
    .await
}

/// The `activeDeploymentsCount` of key `name` in the group, as the team's admin sees it.
async fn active_deployments(api: &Api, token: &str, group: &str, name: &str) -> u64 {
    let reply = api.get(group, token).await;
    reply.expect_status(200, "GET the group");
    key(&reply.json["data"]["associatedSecrets"], name)["activeDeploymentsCount"]
        .as_u64()
        .expect("activeDeploymentsCount")
}

/// What the life of a group leaves to check at the end.
struct Lived {
    group_id: String,
    /// The key ids by name: `DB_URL`, `API_KEY`, `TOKEN`, `NEW_KEY`.
    keys: Vec<(&'static str, String)>,
    /// Every value sent.
    values: Vec<String>,
    /// The virtual account that read a value.
    worker: Person,
}

impl Lived {
    fn key(&self, name: &str) -> &str {
        &self.keys.iter().find(|(n, _)| *n == name).expect("a key of the flow").1
    }
}

/// Create, read, update, read every version, read as a viewer and as a virtual account,
/// delete a key, delete the group. What is wrong but lets the flow go on is added to
/// `problems`.
async fn group_life(api: &Api, cast: &Cast, problems: &mut Vec<String>) -> Lived {
    let (admin, operator, viewer) = (&cast.admin.token, &cast.operator.token, &cast.viewer.token);
    let n = unique();
    let value = |label: &str| format!("flow-{label}-value-{n}");
    let (db_url_1, api_key_1, token_1) = (value("db-url-1"), value("api-key-1"), value("token-1"));
    let (db_url_2, new_key_1) = (value("db-url-2"), value("new-key-1"));
    let values = vec![
        db_url_1.clone(),
        api_key_1.clone(),
        token_1.clone(),
        db_url_2.clone(),
        new_key_1.clone(),
    ];

    // The deployment's one integration.
    let integrations = api.get("/api/svc/v1/integrations", viewer).await;
    integrations.expect_status(200, "GET /api/svc/v1/integrations");
    assert_eq!(integrations.json["data"][0]["id"], "local", "{}", integrations.text);
    assert_eq!(integrations.json["data"][0]["type"], "local", "{}", integrations.text);
    assert_eq!(integrations.json["pagination"]["total"], 1, "{}", integrations.text);

    // The admin, in one team, creates the group there without naming it.
    let name = format!("payments-{n}");
    let created = api
        .post(
            GROUPS,
            admin,
            &group_body(
                &name,
                "local",
                None,
                &[("DB_URL", &db_url_1), ("API_KEY", &api_key_1), ("TOKEN", &token_1)],
            ),
        )
        .await;
    created.expect_status(200, "POST a group with three keys");
    assert_no_value(&created, "the create answer");
    let group = &created.json["data"];
    let tenant = group["tenantName"].as_str().expect("tenantName");
    assert_eq!(group["name"], name.as_str());
    assert_eq!(group["fqn"], format!("custodian://{tenant}:{name}"));
    assert_eq!(group["accountId"], cast.team_id.as_str(), "{}", created.text);
    assert_eq!(group["integrationId"], "local");
    assert_eq!(group["createdBySubject"]["subjectSlug"], cast.admin.email.as_str());
    assert_eq!(group["createdBy"], cast.admin.id.as_str());
    let keys = &group["associatedSecrets"];
    assert_eq!(names(keys), ["API_KEY", "DB_URL", "TOKEN"], "ordered by key");
    for name in ["API_KEY", "DB_URL", "TOKEN"] {
        assert_eq!(versions(key(keys, name)), [1], "{}", created.text);
    }
    let group_id = group["id"].as_str().expect("a group id").to_owned();
    let group_path = format!("{GROUPS}/{group_id}");
    let keys: Vec<(&'static str, String)> = ["DB_URL", "API_KEY", "TOKEN"]
        .into_iter()
        .map(|k| (k, key_id(group, k)))
        .collect();
    let mut lived = Lived {
        group_id: group_id.clone(),
        keys,
        values,
        worker: create_virtual_account(api, &cast.tenant_admin.token, &cast.team_id, "operator").await,
    };

    // An operator reads a value: version 1.
    let (current, shown) = read_value(api, operator, lived.key("API_KEY"), None).await;
    assert_eq!(current, api_key_1);
    assert_eq!(shown, [(1, api_key_1.clone())]);

    // The admin changes DB_URL, keeps API_KEY (no value), drops TOKEN, adds NEW_KEY.
    let updated = api
        .put(
            &group_path,
            admin,
            &json!({ "secrets": group_secrets(&[
                ("DB_URL", Some(&db_url_2)),
                ("API_KEY", None),
                ("NEW_KEY", Some(&new_key_1)),
            ]) }),
        )
        .await;
    updated.expect_status(200, "PUT the group's keys");
    assert_no_value(&updated, "the update answer");
    let keys = &updated.json["data"]["associatedSecrets"];
    assert_eq!(names(keys), ["API_KEY", "DB_URL", "NEW_KEY"], "{}", updated.text);
    assert_eq!(versions(key(keys, "DB_URL")), [1, 2], "{}", updated.text);
    assert_eq!(versions(key(keys, "API_KEY")), [1], "{}", updated.text);
    assert_eq!(versions(key(keys, "NEW_KEY")), [1], "{}", updated.text);
    assert_eq!(
        key(keys, "DB_URL")["id"],
        lived.key("DB_URL"),
        "a changed key keeps its id"
    );
    assert_eq!(
        key(keys, "API_KEY")["id"],
        lived.key("API_KEY"),
        "a kept key keeps its id"
    );
    lived.keys.push((
        "NEW_KEY",
        key(keys, "NEW_KEY")["id"].as_str().expect("an id").to_owned(),
    ));
    read_key(api, operator, lived.key("TOKEN"), None)
        .await
        .expect_svc_error(404, "not_found", "GET a dropped key");

    // Every version of the changed key, one at a time and all together; the kept key
    // keeps its value.
    let db_url = lived.key("DB_URL").to_owned();
    let (first, shown) = read_value(api, operator, &db_url, Some(1)).await;
    assert_eq!((first, shown), (db_url_1.clone(), vec![(1, db_url_1.clone())]));
    let (second, shown) = read_value(api, operator, &db_url, Some(2)).await;
    assert_eq!((second, shown), (db_url_2.clone(), vec![(2, db_url_2.clone())]));
    let (current, shown) = read_value(api, operator, &db_url, None).await;
    assert_eq!(current, db_url_2);
    assert_eq!(shown, [(1, db_url_1.clone()), (2, db_url_2.clone())]);
    read_key(api, operator, &db_url, Some(3)).await.expect_field_error(
        &["query", "version"],
        Some("not_found"),
        "GET a version the key does not have",
    );
    let (kept, _) = read_value(api, operator, lived.key("API_KEY"), None).await;
    assert_eq!(kept, api_key_1);

    // A viewer sees the keys, never a value.
    let refusals = [
        ("GET a value as a viewer", read_key(api, viewer, &db_url, None).await),
        (
            "POST /secrets withValue as a viewer",
            list_keys(api, viewer, &group_id, true).await,
        ),
    ];
    for (what, refused) in refusals {
        refused.expect_status(403, what);
        problems.extend(
            refused
                .svc_error_problem(403, "value_view_forbidden")
                .map(|p| format!("{what}: {p}")),
        );
    }
    let listed = list_keys(api, viewer, &group_id, false).await;
    listed.expect_status(200, "POST /secrets as a viewer");
    assert_eq!(names(&listed.json["data"]), ["API_KEY", "DB_URL", "NEW_KEY"]);
    assert_eq!(listed.json["pagination"]["total"], 3, "{}", listed.text);
    assert_no_value(&listed, "the viewer's key list");
    let seen = api.get(&group_path, viewer).await;
    seen.expect_status(200, "GET the group as a viewer");
    assert_eq!(
        names(&seen.json["data"]["associatedSecrets"]),
        ["API_KEY", "DB_URL", "NEW_KEY"]
    );
    assert_no_value(&seen, "the group as a viewer");

    // A virtual account's read is an active deployment of that key; users' reads are not,
    // and the same account counts once.
    assert_eq!(active_deployments(api, admin, &group_path, "DB_URL").await, 0);
    let worker = lived.worker.token.clone();
    let (current, _) = read_value(api, &worker, &db_url, None).await;
    assert_eq!(current, db_url_2);
    assert_eq!(active_deployments(api, admin, &group_path, "DB_URL").await, 1);
    assert_eq!(active_deployments(api, admin, &group_path, "API_KEY").await, 0);
    read_value(api, &worker, &db_url, Some(1)).await;
    assert_eq!(active_deployments(api, admin, &group_path, "DB_URL").await, 1);
    let by_operator = read_key(api, operator, &db_url, None).await;
    assert_eq!(
        by_operator.json["data"]["activeDeploymentsCount"], 1,
        "{}",
        by_operator.text
    );

    // Delete a key: `1`, and it is gone.
    let new_key = lived.key("NEW_KEY").to_owned();
    let deleted = api.delete(&format!("{SECRETS}/{new_key}"), admin).await;
    deleted.expect_status(200, "DELETE a key");
    assert_eq!(deleted.json, json!(1), "{}", deleted.text);
    read_key(api, operator, &new_key, None)
        .await
        .expect_svc_error(404, "not_found", "GET a deleted key");
    api.delete(&format!("{SECRETS}/{new_key}"), admin)
        .await
        .expect_svc_error(404, "not_found", "DELETE a deleted key");
    let seen = api.get(&group_path, viewer).await;
    assert_eq!(names(&seen.json["data"]["associatedSecrets"]), ["API_KEY", "DB_URL"]);

    // Delete the group: `{}`, and it is gone with its keys.
    let deleted = api.delete(&group_path, admin).await;
    deleted.expect_status(200, "DELETE the group");
    assert_eq!(deleted.json, json!({}), "{}", deleted.text);
    api.get(&group_path, admin)
        .await
        .expect_svc_error(404, "not_found", "GET a deleted group");
    read_key(api, operator, &db_url, None)
        .await
        .expect_svc_error(404, "not_found", "GET a key of a deleted group");
    api.delete(&group_path, admin)
        .await
        .expect_svc_error(404, "not_found", "DELETE a deleted group");
    let search = api.get(&format!("{GROUPS}?search={name}"), admin).await;
    search.expect_status(200, "GET groups by name");
    assert_eq!(search.json["data"], json!([]), "{}", search.text);
    lived
}

/// The team's audit trail holds the group's create, update and delete, each read of a
/// value by whom and of which version (its `detail` naming the key too, or an entry in
/// `problems`), and the key's delete; never a value (JSON or CSV).
async fn audit_holds_the_life(api: &Api, cast: &Cast, lived: &Lived, problems: &mut Vec<String>) {
    let audit = format!("/v1/teams/{}/audit-events?limit=200", cast.team_id);
    let events = api.get(&audit, &cast.admin.token).await;
    events.expect_status(200, "GET the team's audit events");
    let csv = api
        .call_with(
            Method::GET,
            &audit,
            Some(&cast.admin.token),
            None,
            &[("accept", "text/csv")],
        )
        .await;
    csv.expect_status(200, "GET the team's audit events as CSV");
    for value in &lived.values {
        assert!(!events.text.contains(value.as_str()), "a value in the audit trail");
        assert!(!csv.text.contains(value.as_str()), "a value in the audit CSV");
    }
    let items = events.json["items"].as_array().expect("items");
    let about = |id: &str| -> Vec<&Value> {
        let mut found: Vec<&Value> = items.iter().filter(|e| e["resource_id"] == id).collect();
        found.reverse();
        found
    };
    let group_events = about(&lived.group_id);
    let actions: Vec<&str> = group_events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["create", "update", "delete"], "{}", events.text);
    for event in &group_events {
        assert_eq!(event["resource_type"], "secret_group");
        assert_eq!(event["actor_id"], cast.admin.id.as_str());
        assert_eq!(event["outcome"], "success");
    }
    let new_key = about(lived.key("NEW_KEY"));
    assert_eq!(
        new_key.last().map(|e| (&e["action"], &e["resource_type"])),
        Some((&json!("delete"), &json!("group_secret"))),
        "{}",
        events.text
    );

    // Reads: the operator's of API_KEY (version 1) and of DB_URL (1, 2, both), the
    // virtual account's of DB_URL; the viewer's refused reads are no read.
    let reads = |id: &str| -> Vec<Value> {
        about(id)
            .into_iter()
            .filter(|e| e["action"] == "read_value" && e["outcome"] == "success")
            .cloned()
            .collect()
    };
    let api_key_reads = reads(lived.key("API_KEY"));
    let db_url_reads = reads(lived.key("DB_URL"));
    for event in api_key_reads.iter().chain(&db_url_reads) {
        assert_eq!(event["resource_type"], "group_secret", "{event}");
        assert!(event["detail"].is_string(), "{event}");
    }
    let by = |events: &[Value], actor: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["actor_id"] == actor)
            .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let operator_api_key = by(&api_key_reads, &cast.operator.id);
    assert_eq!(operator_api_key.len(), 2, "{operator_api_key:?}");
    assert!(
        operator_api_key.iter().all(|d| d.contains("version 1")),
        "{operator_api_key:?}"
    );
    // Version 1, version 2, both, (version 3 refused: no read), both again.
    let operator_db_url = by(&db_url_reads, &cast.operator.id);
    assert_eq!(operator_db_url.len(), 4, "{operator_db_url:?}");
    assert!(operator_db_url[0].contains("version 1"), "{operator_db_url:?}");
    assert!(operator_db_url[1].contains("version 2"), "{operator_db_url:?}");
    assert!(operator_db_url[2].contains("versions 1, 2"), "{operator_db_url:?}");
    assert!(operator_db_url[3].contains("versions 1, 2"), "{operator_db_url:?}");
    // The virtual account: every version, then version 1.
    let worker_db_url: Vec<&Value> = db_url_reads
        .iter()
        .filter(|e| e["actor_id"] == lived.worker.id.as_str())
        .collect();
    assert_eq!(worker_db_url.len(), 2, "{db_url_reads:?}");
    assert_eq!(worker_db_url[0]["actor_type"], "virtual_account");
    let details: Vec<&str> = worker_db_url
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or(""))
        .collect();
    assert!(
        details[0].contains("versions 1, 2") && details[1].contains("version 1"),
        "{details:?}"
    );
    for event in api_key_reads.iter().chain(&db_url_reads) {
        let key = event["resource_name"]
            .as_str()
            .and_then(|n| n.rsplit(':').next())
            .unwrap_or_default();
        let detail = event["detail"].as_str().unwrap_or_default();
        if key.is_empty() || !detail.contains(key) {
            problems.push(format!(
                "a read_value event's detail names no key: detail {}, resource_name {}",
                event["detail"], event["resource_name"]
            ));
        }
    }
}

/// A create that must be refused: a label (the name's start), the integration, the keys,
/// where the field error is and its rule.
type Refused<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [&'a str], &'a str);

/// The refusals of a create, on a running server. Returns the group a caller of two teams
/// created (naming the team), with its key id and value.
async fn refusals(api: &Api, cast: &Cast) -> (String, String, String) {
    let (admin, tenant_admin) = (&cast.admin.token, &cast.tenant_admin.token);
    let n = unique();
    let exists = |name: String| async move {
        let found = api.get(&format!("{GROUPS}?search={name}"), tenant_admin).await;
        found.expect_status(200, "GET groups by name");
        found.json["data"].as_array().is_some_and(|g| !g.is_empty())
    };

    // A name is taken in the whole tenant, by any team.
    let taken = format!("taken-{n}");
    create_group(api, admin, &group_body(&taken, "local", None, &[("A", "first")])).await;
    api.post(GROUPS, admin, &group_body(&taken, "local", None, &[("A", "again")]))
        .await
        .expect_svc_error(409, "duplicate_name", "POST a taken name");
    api.post(
        GROUPS,
        &cast.outsider.token,
        &group_body(&taken, "local", None, &[("A", "elsewhere")]),
    )
    .await
    .expect_svc_error(409, "duplicate_name", "POST a name taken in another team");

    // Refused, creating nothing: a key given twice (at its second mention), an integration
    // that is not configured, a value over 32 KiB.
    let over = format!("{}{}", "x".repeat(32 * 1024), "y");
    let refused: [Refused; 3] = [
        (
            "repeated",
            "local",
            vec![("A", "1"), ("B", "2"), ("A", "3")],
            &["body", "secrets", "2", "key"],
            "duplicate",
        ),
        (
            "unknown",
            "vault-9",
            vec![("A", "1")],
            &["body", "integrationId"],
            "not_found",
        ),
        (
            "too-big",
            "local",
            vec![("A", &over)],
            &["body", "secrets", "0", "value"],
            "too_long",
        ),
    ];
    for (label, integration, secrets, loc, kind) in refused {
        let name = format!("{label}-{n}");
        api.post(GROUPS, admin, &group_body(&name, integration, None, &secrets))
            .await
            .expect_field_error(loc, Some(kind), &format!("POST a group refused: {label}"));
        assert!(!exists(name).await, "the refused group {label} was created");
    }
    // A value of 32 KiB is taken, and reads back whole.
    let largest = "z".repeat(32 * 1024);
    let big = create_group(
        api,
        admin,
        &group_body(&format!("largest-{n}"), "local", None, &[("A", &largest)]),
    )
    .await;
    let (read, _) = read_value(api, &cast.operator.token, &key_id(&big, "A"), None).await;
    assert_eq!(read, largest, "a value of 32 KiB reads back whole");

    // A user of two teams must name one; naming it creates the group there.
    let both = create_user(api, tenant_admin, "two-teams").await;
    let second_team = create_team(api, tenant_admin, &format!("second-{n}")).await;
    add_member(api, tenant_admin, &cast.team_id, &both.id, "admin").await;
    add_member(api, tenant_admin, &second_team, &both.id, "admin").await;
    let named = format!("named-{n}");
    let value = format!("two-teams-value-{n}");
    api.post(
        GROUPS,
        &both.token,
        &group_body(&named, "local", None, &[("A", &value)]),
    )
    .await
    .expect_field_error(
        &["body", "teamId"],
        Some("missing"),
        "POST without teamId from two teams",
    );
    assert!(!exists(named.clone()).await, "a refused group was created");
    let group = create_group(
        api,
        &both.token,
        &group_body(&named, "local", Some(&second_team), &[("A", &value)]),
    )
    .await;
    assert_eq!(group["accountId"], second_team.as_str(), "{group}");
    (
        group["id"].as_str().expect("a group id").to_owned(),
        key_id(&group, "A"),
        value,
    )
}

/// With value reads turned off, even the tenant admin reads no value, while the keys stay
/// listed.
async fn value_reads_are_off(api: &Api, tenant_admin: &str, (group_id, key, value): &(String, String, String)) {
    read_key(api, tenant_admin, key, None).await.expect_svc_error(
        403,
        "value_view_forbidden",
        "GET a value with value reads turned off",
    );
    list_keys(api, tenant_admin, group_id, true).await.expect_svc_error(
        403,
        "value_view_forbidden",
        "POST /secrets withValue with value reads turned off",
    );
    let listed = list_keys(api, tenant_admin, group_id, false).await;
    listed.expect_status(200, "POST /secrets with value reads turned off");
    assert_eq!(names(&listed.json["data"]), ["A"]);
    let group = api.get(&format!("{GROUPS}/{group_id}"), tenant_admin).await;
    group.expect_status(200, "GET the group with value reads turned off");
    assert_eq!(names(&group.json["data"]["associatedSecrets"]), ["A"]);
    for answer in api.seen() {
        assert!(!answer.contains(value.as_str()), "the value in {answer}");
    }
}

async fn run_group_flow(backend: Backend) {
    let postgres = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match TestPostgres::start("custodian_server_empty", |_| async { Ok(()) }).await {
            Some(db) => Some(db),
            None => return,
        },
    };
    let url = postgres.as_ref().map(TestPostgres::url);
    let dir = TempDir::new().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let (server, token) = RunningServer::first_start(command(&data_dir, url, false));
    let api = server.api.clone();
    let cast = Cast::create_on(&api, &token).await;
    let mut problems = Vec::new();
    let lived = group_life(&api, &cast, &mut problems).await;
    audit_holds_the_life(&api, &cast, &lived, &mut problems).await;
    let kept = refusals(&api, &cast).await;
    let output = server.terminate();
    for value in &lived.values {
        assert!(output.iter().all(|l| !l.contains(value.as_str())), "a value was logged");
    }

    let server = RunningServer::start(command(&data_dir, url, true), free_port(), "listening");
    value_reads_are_off(&server.api, &token, &kept).await;
    server.terminate();

    assert!(
        problems.is_empty(),
        "{backend:?}: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A group's whole life through the binary on SQLite, its refusals, and value reads
/// turned off by configuration.
#[tokio::test]
async fn a_secret_group_lives_and_dies_through_the_binary_on_sqlite() {
    run_group_flow(Backend::Sqlite).await;
}

/// The same on PostgreSQL.
#[tokio::test]
async fn a_secret_group_lives_and_dies_through_the_binary_on_postgres() {
    run_group_flow(Backend::Postgres).await;
}
