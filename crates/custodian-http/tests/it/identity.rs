//! Users, teams, members, virtual accounts (`/v1`) and personal access tokens
//! (`/api/svc/v1`).

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::test;
use custodian_domain::{CreateSecretInput, RequestContext, TeamId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::service;
use crate::support::{World, send, world};

fn bearer(token: &Value) -> SecretString {
    SecretString::from(token.as_str().expect("a token string").to_owned())
}

/// A user created by the tenant admin: their id and first token.
async fn new_user<S, B>(app: &S, w: &World, email: &str) -> (String, SecretString)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, body) = send(
        app,
        Method::POST,
        "/v1/users",
        Some(&w.admin_token),
        Some(json!({ "email": email })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["id"].as_str().expect("an id").to_owned(), bearer(&body["token"]))
}

/// A team created by `token`'s user (its owner): its id.
async fn new_team<S, B>(app: &S, token: &SecretString, name: &str) -> String
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, body) = send(
        app,
        Method::POST,
        "/v1/teams",
        Some(token),
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("an id").to_owned()
}

async fn me_status<S, B>(app: &S, token: &SecretString) -> StatusCode
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    send(app, Method::GET, "/v1/me", Some(token), None).await.0
}

fn assert_no_token(body: &Value, tokens: &[&SecretString]) {
    let text = body.to_string();
    assert!(!text.contains("cus_"), "a token in {text}");
    for token in tokens {
        assert!(!text.contains(token.expose_secret()), "a token in {text}");
    }
}

fn locs(body: &Value) -> Vec<Value> {
    body["detail"]
        .as_array()
        .expect("a 422 detail list")
        .iter()
        .map(|d| d["loc"].clone())
        .collect()
}

#[actix_web::test]
async fn a_tenant_admin_creates_a_user_with_a_first_token_shown_once() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/users",
        Some(&w.admin_token),
        Some(json!({ "email": "bob@example.com", "display_name": "Bob Builder" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["email"], "bob@example.com");
    assert_eq!(body["display_name"], "Bob Builder");
    assert_eq!(body["tenant_admin"], false);
    assert!(body["id"].is_string() && body["created_at"].is_string(), "{body}");
    let token = bearer(&body["token"]);
    assert!(token.expose_secret().starts_with("cus_"));
    assert_eq!(me_status(&app, &token).await, StatusCode::OK);

    // Without a display name, the part of the email before `@`.
    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/users",
        Some(&w.admin_token),
        Some(json!({ "email": "carol@example.com", "tenant_admin": true })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["display_name"], "carol");
    assert_eq!(body["tenant_admin"], true);

    let (status, list) = send(&app, Method::GET, "/v1/users?limit=2", Some(&w.admin_token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 3);
    assert_eq!(list["limit"], 2);
    assert_eq!(list["offset"], 0);
    let emails: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@example.com", "bob@example.com"]);
    assert!(list["items"][0].get("token").is_none());
    assert_no_token(&list, &[&token, &w.admin_token]);
}

#[actix_web::test]
async fn creating_users_refuses_duplicates_bad_fields_and_callers_who_are_not_tenant_admins() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;

    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/users",
        Some(&w.admin_token),
        Some(json!({ "email": "bob@example.com" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "duplicate_email");

    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/users",
        Some(&w.admin_token),
        Some(json!({ "email": "not-an-email" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "email"])]);

    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/users",
        Some(&w.admin_token),
        Some(json!({ "email": "dan@example.com", "colour": "red" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "colour"])]);
    assert_eq!(body["detail"][0]["type"], "extra_forbidden");

    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/users",
        Some(&bob),
        Some(json!({ "email": "eve@example.com" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    let (status, _) = send(&app, Method::GET, "/v1/users", Some(&bob), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(&app, Method::GET, "/v1/users", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_user_creates_reads_renames_and_deletes_a_team() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;

    let (status, team) = send(
        &app,
        Method::POST,
        "/v1/teams",
        Some(&bob),
        Some(json!({ "name": "data-platform", "description": "Pipelines" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(team["name"], "data-platform");
    assert_eq!(team["description"], "Pipelines");
    assert_eq!(team["tier"], "enterprise");
    assert_eq!(team["role"], "owner");
    assert!(team["created_at"].is_string());
    let id = team["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/teams/{id}");

    let (status, got) = send(&app, Method::GET, &path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["name"], "data-platform");
    assert_eq!(got["role"], "owner");

    let (status, list) = send(&app, Method::GET, "/v1/teams", Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id.as_str());

    let (status, patched) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&bob),
        Some(json!({ "name": "data-eng", "description": null })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "data-eng");
    assert_eq!(patched["description"], Value::Null);

    // Leaving a field out keeps it.
    let (status, patched) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&bob),
        Some(json!({ "description": "Batch jobs" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["name"], "data-eng");
    assert_eq!(patched["description"], "Batch jobs");

    let (status, body) = send(&app, Method::PATCH, &path, Some(&bob), Some(json!({ "name": "" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "name"])]);

    let (status, body) = send(&app, Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = send(&app, Method::GET, &path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[actix_web::test]
async fn only_a_tenant_admin_sets_a_teams_tier() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;

    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/teams",
        Some(&bob),
        Some(json!({ "name": "analytics", "tier": "pro" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");

    let (status, team) = send(
        &app,
        Method::POST,
        "/v1/teams",
        Some(&w.admin_token),
        Some(json!({ "name": "analytics", "tier": "free" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(team["tier"], "free");
    let path = format!("/v1/teams/{}", team["id"].as_str().unwrap());
    // A free team has room for one member: its owner.
    let add_bob = json!({ "email": "bob@example.com", "role": "viewer" });
    let members = format!("{path}/members");
    let (status, body) = send(
        &app,
        Method::POST,
        &members,
        Some(&w.admin_token),
        Some(add_bob.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tier_limit_exceeded");

    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/teams",
        Some(&w.admin_token),
        Some(json!({ "name": "other", "tier": "gold" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "tier"])]);

    // Bob owns a team of his own; a tier change by him is refused before anything changes.
    let bobs = new_team(&app, &bob, "bobs-team").await;
    let bobs_path = format!("/v1/teams/{bobs}");
    let (status, _) = send(
        &app,
        Method::PATCH,
        &bobs_path,
        Some(&bob),
        Some(json!({ "name": "renamed", "tier": "free" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, got) = send(&app, Method::GET, &bobs_path, Some(&bob), None).await;
    assert_eq!(got["name"], "bobs-team");
    assert_eq!(got["tier"], "enterprise");

    let (status, patched) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&w.admin_token),
        Some(json!({ "tier": "pro" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["tier"], "pro");
    assert_eq!(patched["name"], "analytics");
    let (status, _) = send(&app, Method::POST, &members, Some(&w.admin_token), Some(add_bob)).await;
    assert_eq!(status, StatusCode::CREATED);

    // A tenant admin lists every team, as owner.
    let (_, list) = send(&app, Method::GET, "/v1/teams", Some(&w.admin_token), None).await;
    assert_eq!(list["total"], 2);
    assert!(list["items"].as_array().unwrap().iter().all(|t| t["role"] == "owner"));
}

/// The team's audit events about the team itself, oldest first, as `(action, name)`.
async fn team_events<S, B>(app: &S, w: &World, team: &str) -> Vec<(String, String)>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let uri = format!("/v1/teams/{team}/audit-events?resource_type=team&limit=200");
    let (status, list) = send(app, Method::GET, &uri, Some(&w.admin_token), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut events: Vec<(String, String, String)> = list["items"]
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (text("occurred_at"), text("action"), text("resource_name"))
        })
        .collect();
    events.sort();
    events.into_iter().map(|(_, action, name)| (action, name)).collect()
}

#[actix_web::test]
async fn a_rename_with_a_tier_change_is_one_change_with_one_audit_event() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;
    let team = new_team(&app, &bob, "bobs-team").await;
    let path = format!("/v1/teams/{team}");
    let created = vec![("create".to_owned(), "bobs-team".to_owned())];
    assert_eq!(team_events(&app, &w, &team).await, created);

    // The owner may rename the team but not choose its tier: the whole change is refused.
    let (status, body) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&bob),
        Some(json!({ "name": "renamed", "tier": "free", "description": "new" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden");
    let (_, got) = send(&app, Method::GET, &path, Some(&bob), None).await;
    assert_eq!(
        (&got["name"], &got["description"], &got["tier"]),
        (&json!("bobs-team"), &Value::Null, &json!("enterprise"))
    );
    assert_eq!(team_events(&app, &w, &team).await, created);

    // A tenant admin renames it and changes its tier: one change, one audit event.
    let (status, patched) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&w.admin_token),
        Some(json!({ "name": "renamed", "tier": "free" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (&patched["name"], &patched["tier"]),
        (&json!("renamed"), &json!("free"))
    );
    assert_eq!(patched["role"], "owner");
    let mut expected = created.clone();
    expected.push(("update".to_owned(), "renamed".to_owned()));
    assert_eq!(team_events(&app, &w, &team).await, expected);

    // A bad name and a bad tier are reported together, and nothing changes.
    let (status, body) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&w.admin_token),
        Some(json!({ "name": "", "tier": "gold" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "name"]), json!(["body", "tier"])]);
    assert_eq!(team_events(&app, &w, &team).await, expected);
}

#[actix_web::test]
async fn a_team_that_holds_a_secret_cannot_be_deleted() {
    let w = world().await;
    let app = service!(w.state.clone());
    let id = new_team(&app, &w.admin_token, "storage").await;
    let team: TeamId = id.parse().unwrap();
    w.state
        .custodian
        .create_secret(
            &w.admin,
            &RequestContext::default(),
            team,
            CreateSecretInput {
                name: Some("prod-s3".into()),
                secret_type: Some("s3".into()),
                auth_method: Some("s3_access_key".into()),
                credentials: Some(vec![
                    ("access_key_id".into(), SecretString::from("AKIAEXAMPLEKEYID")),
                    ("secret_access_key".into(), SecretString::from("wJalrXUtnFEMI-example")),
                ]),
                ..CreateSecretInput::default()
            },
        )
        .await
        .unwrap();
    let (status, body) = send(
        &app,
        Method::DELETE,
        &format!("/v1/teams/{id}"),
        Some(&w.admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "team_not_empty");
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/v1/teams/{id}"),
        Some(&w.admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn an_owner_manages_members_and_the_team_keeps_an_owner() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (bob_id, bob) = new_user(&app, &w, "bob@example.com").await;
    let (carol_id, carol) = new_user(&app, &w, "carol@example.com").await;
    let (dan_id, _) = new_user(&app, &w, "dan@example.com").await;
    let team = new_team(&app, &bob, "data-platform").await;
    let members = format!("/v1/teams/{team}/members");

    let (status, member) = send(
        &app,
        Method::POST,
        &members,
        Some(&bob),
        Some(json!({ "email": "carol@example.com", "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["user_id"], carol_id.as_str());
    assert_eq!(member["email"], "carol@example.com");
    assert_eq!(member["display_name"], "carol");
    assert_eq!(member["role"], "viewer");
    assert!(member["created_at"].is_string());

    let (status, member) = send(
        &app,
        Method::POST,
        &members,
        Some(&bob),
        Some(json!({ "user_id": dan_id, "role": "operator" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(member["email"], "dan@example.com");

    let (status, body) = send(
        &app,
        Method::POST,
        &members,
        Some(&bob),
        Some(json!({ "email": "dan@example.com", "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "already_member");

    let (status, body) = send(
        &app,
        Method::POST,
        &members,
        Some(&bob),
        Some(json!({ "email": "nobody@example.com", "role": "chief" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let found = locs(&body);
    assert!(found.contains(&json!(["body", "role"])), "{body}");
    assert!(found.contains(&json!(["body", "email"])), "{body}");
    let (status, body) = send(
        &app,
        Method::POST,
        &members,
        Some(&bob),
        Some(json!({ "email": "dan@example.com", "user_id": dan_id, "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "user_id"])]);

    // A viewer reads the members but may not change them.
    let (status, list) = send(&app, Method::GET, &members, Some(&carol), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 3);
    let emails: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["bob@example.com", "carol@example.com", "dan@example.com"]);
    let (status, body) = send(
        &app,
        Method::POST,
        &members,
        Some(&carol),
        Some(json!({ "email": "admin@example.com", "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    let (status, _) = send(&app, Method::DELETE, &format!("{members}/{dan_id}"), Some(&carol), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, member) = send(
        &app,
        Method::PATCH,
        &format!("{members}/{carol_id}"),
        Some(&bob),
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(member["role"], "admin");
    assert_eq!(member["email"], "carol@example.com");

    // The last owner can be neither demoted nor removed.
    let bob_path = format!("{members}/{bob_id}");
    let (status, body) = send(
        &app,
        Method::PATCH,
        &bob_path,
        Some(&bob),
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "last_owner");
    let (status, body) = send(&app, Method::DELETE, &bob_path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "last_owner");
    // An admin may not touch an owner at all.
    let (status, _) = send(&app, Method::DELETE, &bob_path, Some(&carol), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = send(&app, Method::DELETE, &format!("{members}/{dan_id}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, _) = send(&app, Method::DELETE, &format!("{members}/{dan_id}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&app, Method::DELETE, &format!("{members}/not-a-uuid"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn another_teams_resources_answer_404() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;
    let (_, carol) = new_user(&app, &w, "carol@example.com").await;
    let bobs = new_team(&app, &bob, "bobs-team").await;
    let carols = new_team(&app, &carol, "carols-team").await;
    let (status, account) = send(
        &app,
        Method::POST,
        &format!("/v1/teams/{bobs}/virtual-accounts"),
        Some(&bob),
        Some(json!({ "name": "worker", "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let account_id = account["id"].as_str().unwrap();

    for (method, path) in [
        (Method::GET, format!("/v1/teams/{bobs}")),
        (Method::DELETE, format!("/v1/teams/{bobs}")),
        (Method::GET, format!("/v1/teams/{bobs}/members")),
        (Method::GET, format!("/v1/teams/{bobs}/virtual-accounts")),
        (
            Method::DELETE,
            format!("/v1/teams/{bobs}/virtual-accounts/{account_id}"),
        ),
        // Carol's own team does not hold Bob's account either.
        (
            Method::DELETE,
            format!("/v1/teams/{carols}/virtual-accounts/{account_id}"),
        ),
        (
            Method::POST,
            format!("/v1/teams/{carols}/virtual-accounts/{account_id}/regenerate-token"),
        ),
    ] {
        let (status, body) = send(&app, method.clone(), &path, Some(&carol), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["code"], "not_found");
    }
    let (_, list) = send(&app, Method::GET, "/v1/teams", Some(&carol), None).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["name"], "carols-team");
}

#[actix_web::test]
async fn a_virtual_account_gets_a_token_once_and_regenerates_it_with_a_grace_period() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;
    let team = new_team(&app, &bob, "data-platform").await;
    let accounts = format!("/v1/teams/{team}/virtual-accounts");

    let (status, account) = send(
        &app,
        Method::POST,
        &accounts,
        Some(&bob),
        Some(json!({ "name": "transfer-worker", "role": "operator", "expires_at": "2999-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["name"], "transfer-worker");
    assert_eq!(account["role"], "operator");
    assert_eq!(account["team_id"], team.as_str());
    assert_eq!(account["expires_at"], "2999-01-01T00:00:00Z");
    assert!(account["created_at"].is_string());
    let first = bearer(&account["token"]);
    assert_eq!(me_status(&app, &first).await, StatusCode::OK);
    let id = account["id"].as_str().unwrap().to_owned();
    let regenerate = format!("{accounts}/{id}/regenerate-token");

    let (status, list) = send(&app, Method::GET, &accounts, Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["name"], "transfer-worker");
    assert_no_token(&list, &[&first]);

    // With a grace period, the old token keeps working beside the new one.
    let (status, second) = send(
        &app,
        Method::POST,
        &regenerate,
        Some(&bob),
        Some(json!({ "grace_period_seconds": 3600 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["id"], id.as_str());
    assert_eq!(second["name"], "transfer-worker");
    assert!(second["old_token_expires_at"].is_string(), "{second}");
    let second_token = bearer(&second["token"]);
    assert_ne!(second_token.expose_secret(), first.expose_secret());
    assert_eq!(me_status(&app, &first).await, StatusCode::OK);
    assert_eq!(me_status(&app, &second_token).await, StatusCode::OK);

    // With none, every older token stops at once.
    let (status, third) = send(
        &app,
        Method::POST,
        &regenerate,
        Some(&bob),
        Some(json!({ "grace_period_seconds": 0 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let third_token = bearer(&third["token"]);
    assert_eq!(me_status(&app, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &second_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &third_token).await, StatusCode::OK);

    // Without a body, the configured grace period (none in this world).
    let (status, fourth) = send(&app, Method::POST, &regenerate, Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK, "{fourth}");
    assert_eq!(me_status(&app, &third_token).await, StatusCode::UNAUTHORIZED);
    let fourth_token = bearer(&fourth["token"]);
    // An empty JSON request is no body either; a body that is not JSON is refused.
    let with_type = |content_type: &'static str, payload: &'static str| {
        test::TestRequest::post()
            .uri(&regenerate)
            .insert_header((header::AUTHORIZATION, format!("Bearer {}", bob.expose_secret())))
            .insert_header((header::CONTENT_TYPE, content_type))
            .set_payload(payload)
            .to_request()
    };
    let response = test::call_service(&app, with_type("application/json", "")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let fifth: Value = test::read_body_json(response).await;
    assert_eq!(me_status(&app, &fourth_token).await, StatusCode::UNAUTHORIZED);
    let fifth_token = bearer(&fifth["token"]);
    let response = test::call_service(&app, with_type("text/plain", "grace=60")).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(me_status(&app, &fifth_token).await, StatusCode::OK);

    let (status, body) = send(
        &app,
        Method::POST,
        &regenerate,
        Some(&bob),
        Some(json!({ "grace_period_seconds": 8 * 24 * 3600 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "grace_period_seconds"])]);

    let (status, _) = send(&app, Method::DELETE, &format!("{accounts}/{id}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &fifth_token).await, StatusCode::UNAUTHORIZED);
    let (status, _) = send(&app, Method::DELETE, &format!("{accounts}/{id}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn virtual_accounts_need_an_admin_and_a_valid_body() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;
    let (_, carol) = new_user(&app, &w, "carol@example.com").await;
    let team = new_team(&app, &bob, "data-platform").await;
    let accounts = format!("/v1/teams/{team}/virtual-accounts");
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/v1/teams/{team}/members"),
        Some(&bob),
        Some(json!({ "email": "carol@example.com", "role": "operator" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = send(
        &app,
        Method::POST,
        &accounts,
        Some(&carol),
        Some(json!({ "name": "worker", "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");

    let (status, body) = send(
        &app,
        Method::POST,
        &accounts,
        Some(&bob),
        Some(json!({ "name": "worker", "role": "owner", "expires_at": "2001-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let found = locs(&body);
    assert!(found.contains(&json!(["body", "role"])), "{body}");
    assert!(found.contains(&json!(["body", "expires_at"])), "{body}");

    let (status, body) = send(
        &app,
        Method::POST,
        &accounts,
        Some(&bob),
        Some(json!({ "name": "worker" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "role"])]);
    assert_eq!(body["detail"][0]["type"], "missing");
    // Every missing field at once.
    let (status, body) = send(&app, Method::POST, &accounts, Some(&bob), Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&body), [json!(["body", "name"]), json!(["body", "role"])]);

    let (status, _) = send(
        &app,
        Method::POST,
        &accounts,
        Some(&bob),
        Some(json!({ "name": "worker", "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = send(
        &app,
        Method::POST,
        &accounts,
        Some(&bob),
        Some(json!({ "name": "worker", "role": "admin" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "duplicate_name");
}

#[actix_web::test]
async fn a_personal_access_token_works_until_it_is_deleted() {
    let w = world().await;
    let app = service!(w.state.clone());
    let (_, bob) = new_user(&app, &w, "bob@example.com").await;
    let tokens = "/api/svc/v1/personal-access-tokens";

    let (status, created) = send(
        &app,
        Method::POST,
        tokens,
        Some(&bob),
        Some(json!({ "name": "ci-deploy", "expirationDate": "2999-06-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["data"]["name"], "ci-deploy");
    assert_eq!(created["data"]["expirationDate"], "2999-06-01T00:00:00Z");
    assert!(created["data"]["createdAt"].is_string());
    assert_eq!(created["data"]["lastUsedAt"], Value::Null);
    assert!(created["data"].get("token").is_none());
    let token = bearer(&created["token"]);
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(me_status(&app, &token).await, StatusCode::OK);

    let (status, list) = send(&app, Method::GET, tokens, Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci-deploy", "initial"]);
    assert_eq!(list["pagination"], json!({ "total": 2, "offset": 0, "limit": 50 }));
    assert!(list["data"][0]["lastUsedAt"].is_string(), "{list}");
    assert_no_token(&list, &[&token, &bob]);

    let (status, page) = send(
        &app,
        Method::GET,
        &format!("{tokens}?limit=1&offset=1"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["name"], "initial");

    let (status, body) = send(&app, Method::DELETE, &format!("{tokens}/{id}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
    assert_eq!(me_status(&app, &token).await, StatusCode::UNAUTHORIZED);
    let (_, list) = send(&app, Method::GET, tokens, Some(&bob), None).await;
    assert_eq!(list["pagination"]["total"], 1);

    // Another user's token is not found.
    let (status, body) = send(&app, Method::GET, tokens, Some(&w.admin_token), None).await;
    assert_eq!(status, StatusCode::OK);
    let admins = body["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = send(&app, Method::DELETE, &format!("{tokens}/{admins}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["statusCode"], 404);
    assert_eq!(body["code"], "not_found");
    assert_eq!(me_status(&app, &w.admin_token).await, StatusCode::OK);
}

#[actix_web::test]
async fn personal_access_token_errors_have_the_svc_shape() {
    let w = world().await;
    let app = service!(w.state.clone());
    let tokens = "/api/svc/v1/personal-access-tokens";

    let (status, body) = send(&app, Method::GET, tokens, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["statusCode"], 401);
    assert_eq!(body["code"], "unauthenticated");
    assert_eq!(body["details"], json!([]));
    assert!(body["message"].is_string());

    for (name, kind) in [
        ("ab", "too_short"),
        ("CI-deploy", "invalid_format"),
        ("9lives", "invalid_format"),
    ] {
        let (status, body) = send(
            &app,
            Method::POST,
            tokens,
            Some(&w.admin_token),
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert_eq!(body["statusCode"], 422);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["details"][0]["loc"], json!(["body", "name"]), "{body}");
        assert_eq!(body["details"][0]["type"], kind, "{name}: {body}");
    }

    let (status, body) = send(
        &app,
        Method::POST,
        tokens,
        Some(&w.admin_token),
        Some(json!({ "name": "ci-deploy", "expirationDate": "2001-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["loc"], json!(["body", "expirationDate"]));

    let (status, body) = send(
        &app,
        Method::POST,
        tokens,
        Some(&w.admin_token),
        Some(json!({ "name": "ci-deploy", "scopes": ["all"] })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["loc"], json!(["body", "scopes"]));
    assert_eq!(body["details"][0]["type"], "extra_forbidden");

    let (status, body) = send(
        &app,
        Method::GET,
        &format!("{tokens}?limit=0"),
        Some(&w.admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["loc"], json!(["query", "limit"]));

    let (status, body) = send(
        &app,
        Method::DELETE,
        &format!("{tokens}/nope"),
        Some(&w.admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["statusCode"], 404);

    let request = test::TestRequest::post()
        .uri(tokens)
        .insert_header((
            header::AUTHORIZATION,
            format!("Bearer {}", w.admin_token.expose_secret()),
        ))
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload("name=ci-deploy")
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = test::read_body_json(response).await;
    assert_eq!(body["statusCode"], 415);
    assert_eq!(body["code"], "unsupported_media_type");

    // A virtual account holds no personal access tokens.
    let team = new_team(&app, &w.admin_token, "machines").await;
    let (_, account) = send(
        &app,
        Method::POST,
        &format!("/v1/teams/{team}/virtual-accounts"),
        Some(&w.admin_token),
        Some(json!({ "name": "worker", "role": "admin" })),
    )
    .await;
    let machine = bearer(&account["token"]);
    let (status, body) = send(
        &app,
        Method::POST,
        tokens,
        Some(&machine),
        Some(json!({ "name": "ci-deploy" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["statusCode"], 403);
    assert_eq!(body["code"], "forbidden");
}

#[actix_web::test]
async fn a_team_body_over_64_kib_is_413_and_one_that_is_not_json_is_415() {
    let w = world().await;
    let app = service!(w.state.clone());
    let authorization = format!("Bearer {}", w.admin_token.expose_secret());

    let huge = json!({ "name": "big", "description": "x".repeat(70 * 1024) }).to_string();
    let request = test::TestRequest::post()
        .uri("/v1/teams")
        .insert_header((header::AUTHORIZATION, authorization.clone()))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(huge)
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = test::read_body_json(response).await;
    assert_eq!(body["code"], "payload_too_large");

    let request = test::TestRequest::post()
        .uri("/v1/teams")
        .insert_header((header::AUTHORIZATION, authorization))
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload(r#"{"name":"plain"}"#)
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = test::read_body_json(response).await;
    assert_eq!(body["code"], "unsupported_media_type");

    let (_, list) = send(&app, Method::GET, "/v1/teams", Some(&w.admin_token), None).await;
    assert_eq!(list["total"], 0);
}

#[actix_web::test]
async fn the_document_lists_every_identity_route() {
    let w = world().await;
    let app = service!(w.state);
    let (_, doc) = send(&app, Method::GET, "/openapi.json", None, None).await;
    let paths = &doc["paths"];
    for (path, method) in [
        ("/v1/users", "post"),
        ("/v1/users", "get"),
        ("/v1/teams", "post"),
        ("/v1/teams", "get"),
        ("/v1/teams/{team_id}", "get"),
        ("/v1/teams/{team_id}", "patch"),
        ("/v1/teams/{team_id}", "delete"),
        ("/v1/teams/{team_id}/members", "get"),
        ("/v1/teams/{team_id}/members", "post"),
        ("/v1/teams/{team_id}/members/{user_id}", "patch"),
        ("/v1/teams/{team_id}/members/{user_id}", "delete"),
        ("/v1/teams/{team_id}/virtual-accounts", "get"),
        ("/v1/teams/{team_id}/virtual-accounts", "post"),
        ("/v1/teams/{team_id}/virtual-accounts/{id}", "delete"),
        ("/v1/teams/{team_id}/virtual-accounts/{id}/regenerate-token", "post"),
        ("/api/svc/v1/personal-access-tokens", "get"),
        ("/api/svc/v1/personal-access-tokens", "post"),
        ("/api/svc/v1/personal-access-tokens/{id}", "delete"),
    ] {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path}");
        assert_eq!(operation["security"], json!([{ "bearer": [] }]), "{method} {path}");
    }
    assert!(paths["/v1/teams"]["post"]["responses"]["201"].is_object());
    assert!(paths["/v1/teams/{team_id}"]["delete"]["responses"]["204"].is_object());
    assert!(doc["components"]["schemas"]["SvcErrorBody"].is_object());
}
