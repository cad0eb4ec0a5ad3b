//! A user's whole path through storage secrets over HTTP, on SQLite and PostgreSQL:
//! team → managed S3 secret → details (never credentials) → location → rotation → verify
//! → list → audit trail (JSON and CSV) → delete location → delete secret → 404.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, Backend, TestServer, create_team, location_body, s3_secret_body, unique};

/// What [`user_flow`] leaves behind for callers that go on.
#[derive(Debug)]
pub(crate) struct FlowOutcome {
    pub(crate) team_id: String,
    /// Every credential value the flow sent.
    pub(crate) credential_values: Vec<String>,
}

/// The keys of a create (and update) response, and nothing else.
const SEED_000_KEYS: [&str; 7] = [
    "id",
    "name",
    "description",
    "secret_type",
    "auth_method",
    "created_at",
    "created_by",
];

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort();
    keys
}

/// The `action`s of the audit events about `resource_id`, in the order given.
fn actions_about(events: &[Value], resource_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["resource_id"] == resource_id)
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The flow as `token` (a tenant admin or any user who may create teams).
pub(crate) async fn user_flow(api: &Api, token: &str) -> FlowOutcome {
    let me = api.get("/v1/me", token).await;
    me.expect_status(200, "GET /v1/me");
    let my_id = me.str("id");

    // A team; its creator owns it.
    let team_id = create_team(api, token, &format!("exports-{}", unique())).await;
    let team = api.get(&format!("/v1/teams/{team_id}"), token).await;
    team.expect_status(200, "GET /v1/teams/{team_id}");
    let secrets = format!("/v1/teams/{team_id}/secrets");

    // A managed S3 secret: the answer is the create response's shape, without credentials.
    let n = unique();
    let name = format!("nightly-export-{n}");
    let (first_id, first_key) = (format!("AKIAFLOWFIRST{n}"), format!("first/secret/{n}"));
    let created = api
        .post(&secrets, token, &s3_secret_body(&name, &first_id, &first_key))
        .await;
    created.expect_status(201, "POST secrets");
    assert_eq!(keys(&created.json), sorted(&SEED_000_KEYS), "{}", created.text);
    assert_eq!(created.json["name"], name.as_str());
    assert_eq!(created.json["secret_type"], "s3");
    assert_eq!(created.json["auth_method"], "s3_access_key");
    assert_eq!(created.json["created_by"], my_id.as_str());
    let secret_id = created.str("id");
    let secret = format!("{secrets}/{secret_id}");

    // Details: metadata, storage mode, version 1, no credentials.
    let details = api.get(&secret, token).await;
    details.expect_status(200, "GET secret");
    let d = &details.json;
    assert_eq!(d["id"], secret_id.as_str());
    assert_eq!(d["storage"], "managed");
    assert_eq!(d["credentials_version"], 1);
    assert_eq!(d["location_count"], 0);
    assert_eq!(d["locations"], json!([]));
    assert!(d["vault_connection_id"].is_null(), "{}", details.text);
    assert!(d.get("credentials").is_none(), "{}", details.text);
    for key in ["updated_at", "updated_by", "credentials_updated_at", "created_at"] {
        assert!(d[key].is_string(), "{key} in {}", details.text);
    }

    // A location over it names the secret.
    let location_name = format!("exports-bucket-{n}");
    let location = api
        .post(
            &format!("/v1/teams/{team_id}/locations"),
            token,
            &location_body(&location_name, &secret_id),
        )
        .await;
    location.expect_status(201, "POST locations");
    assert_eq!(location.json["secret_id"], secret_id.as_str());
    assert_eq!(location.json["secret_name"], name.as_str());
    assert_eq!(location.json["location_type"], "s3");
    let location_id = location.str("id");
    let details = api.get(&secret, token).await;
    details.expect_status(200, "GET secret with a location");
    assert_eq!(details.json["location_count"], 1);
    assert_eq!(
        details.json["locations"],
        json!([{ "id": location_id, "name": location_name }])
    );

    // Rotate the credentials: version 2, the answer is still the create response's shape.
    let (second_id, second_key) = (format!("AKIAFLOWSECOND{n}"), format!("second/secret/{n}"));
    let rotated = api
        .patch(
            &secret,
            token,
            &json!({ "credentials": { "access_key_id": second_id, "secret_access_key": second_key } }),
        )
        .await;
    rotated.expect_status(200, "PATCH secret credentials");
    assert_eq!(keys(&rotated.json), sorted(&SEED_000_KEYS), "{}", rotated.text);
    let details = api.get(&secret, token).await;
    details.expect_status(200, "GET secret after the rotation");
    assert_eq!(details.json["credentials_version"], 2);
    assert_eq!(details.json["updated_by"], my_id.as_str());

    // A change of metadata only: the credentials keep their version.
    let described = api
        .patch(
            &secret,
            token,
            &json!({ "description": "exports of the billing database" }),
        )
        .await;
    described.expect_status(200, "PATCH secret description");
    assert_eq!(described.json["description"], "exports of the billing database");
    let details = api.get(&secret, token).await;
    assert_eq!(details.json["credentials_version"], 2, "{}", details.text);

    // Verify: the fields found, never their values.
    let verified = api
        .call(Method::POST, &format!("{secret}/verify"), Some(token), None)
        .await;
    verified.expect_status(200, "POST secret verify");
    assert_eq!(verified.json["verified"], true, "{}", verified.text);
    assert!(verified.json["error"].is_null(), "{}", verified.text);
    assert!(verified.json["checked_at"].is_string(), "{}", verified.text);
    let mut fields: Vec<&str> = verified.json["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["access_key_id", "secret_access_key"]);

    // The list finds it, by name search and by type.
    for query in [
        String::new(),
        format!("?search={name}"),
        "?secret_type=s3&limit=200".to_owned(),
    ] {
        let list = api.get(&format!("{secrets}{query}"), token).await;
        list.expect_status(200, "GET secrets");
        assert!(list.json["total"].as_u64().is_some_and(|t| t >= 1), "{}", list.text);
        assert!(
            list.json["limit"].is_u64() && list.json["offset"].is_u64(),
            "{}",
            list.text
        );
        let items = list.json["items"].as_array().expect("items");
        assert!(
            items.iter().any(|i| i["id"] == secret_id.as_str()),
            "{query}: {}",
            list.text
        );
        assert!(items.iter().all(|i| i.get("credentials").is_none()), "{}", list.text);
    }
    let none = api.get(&format!("{secrets}?secret_type=gcs"), token).await;
    none.expect_status(200, "GET secrets of another type");
    assert_eq!(none.json["total"], 0, "{}", none.text);

    // The audit trail, newest first: create, the rotation and the update (both PATCH),
    // then verify.
    let audit = format!("/v1/teams/{team_id}/audit-events");
    let events = api.get(&format!("{audit}?resource_type=storage_secret"), token).await;
    events.expect_status(200, "GET audit events");
    let items = events.json["items"].as_array().expect("items").clone();
    let mut actions = actions_about(&items, &secret_id);
    actions.reverse();
    assert_eq!(actions, ["create", "rotate", "update", "verify"], "{}", events.text);
    let ours = items
        .iter()
        .find(|e| e["resource_id"] == secret_id.as_str())
        .expect("an event");
    assert_eq!(ours["resource_type"], "storage_secret");
    assert_eq!(ours["outcome"], "success");
    // Who, what and when; the secret's name, never its values.
    assert_eq!(ours["actor_id"], my_id.as_str());
    assert_eq!(ours["resource_name"], name.as_str());
    assert!(ours["occurred_at"].is_string(), "{ours}");

    // The same trail as CSV.
    let csv = api
        .call_with(
            Method::GET,
            &format!("{audit}?resource_type=storage_secret"),
            Some(token),
            None,
            &[("accept", "text/csv")],
        )
        .await;
    csv.expect_status(200, "GET audit events as CSV");
    let content_type = csv.headers.get("content-type").map(|v| v.to_str().unwrap_or_default());
    assert!(
        content_type.is_some_and(|v| v.starts_with("text/csv")),
        "{content_type:?}"
    );
    let mut lines = csv.text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split(',').collect();
    let action_column = header.iter().position(|h| *h == "action").expect("an action column");
    let mut csv_actions: Vec<String> = lines
        .filter(|l| l.contains(&secret_id))
        .map(|l| l.split(',').nth(action_column).unwrap_or_default().to_owned())
        .collect();
    csv_actions.reverse();
    assert_eq!(csv_actions, ["create", "rotate", "update", "verify"], "{}", csv.text);

    // A secret in use cannot go; once its location is gone it can, and then it is gone.
    let in_use = api.delete(&secret, token).await;
    in_use.expect_status(409, "DELETE a secret in use");
    assert_eq!(in_use.json["code"], "secret_in_use", "{}", in_use.text);
    api.delete(&format!("/v1/teams/{team_id}/locations/{location_id}"), token)
        .await
        .expect_status(204, "DELETE location");
    let deleted = api.delete(&secret, token).await;
    deleted.expect_status(204, "DELETE secret");
    assert!(deleted.text.is_empty(), "{}", deleted.text);
    let gone = api.get(&secret, token).await;
    gone.expect_status(404, "GET a deleted secret");
    assert_eq!(gone.json["code"], "not_found");
    let again = api.delete(&secret, token).await;
    again.expect_status(404, "DELETE a deleted secret");
    let events = api.get(&format!("{audit}?resource_type=storage_secret"), token).await;
    let items = events.json["items"].as_array().expect("items").clone();
    assert_eq!(
        actions_about(&items, &secret_id).first().map(String::as_str),
        Some("delete")
    );

    FlowOutcome {
        team_id,
        credential_values: vec![first_id, first_key, second_id, second_key],
    }
}

async fn run_flow(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let outcome = user_flow(&server.api, &server.admin_token).await;
    // No answer carried a credential value.
    for answer in server.api.seen() {
        for value in &outcome.credential_values {
            assert!(!answer.contains(value.as_str()), "{value} in {answer}");
        }
    }
}

#[actix_web::test]
async fn a_secret_lives_and_dies_over_http_on_sqlite() {
    run_flow(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_secret_lives_and_dies_over_http_on_postgres() {
    run_flow(Backend::Postgres).await;
}
