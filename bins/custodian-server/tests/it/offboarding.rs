//! Offboarding a user through the API, on SQLite and PostgreSQL: a tenant admin reads and
//! changes a user, and disabling them refuses every token of theirs at once (enabling
//! accepts them again). Nobody else may, and a tenant admin cannot lock themselves out.

use serde_json::json;

use crate::support::{Backend, TestServer, create_user};

async fn a_disabled_users_tokens_are_refused_at_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (api, admin) = (&server.api, server.admin_token.as_str());
    let bob = create_user(api, admin, "bob").await;
    let carol = create_user(api, admin, "carol").await;
    let path = format!("/v1/users/{}", bob.id);
    api.get("/v1/me", &bob.token)
        .await
        .expect_status(200, "bob's token works");

    let read = api.get(&path, admin).await;
    read.expect_status(200, "GET a user");
    assert_eq!(read.json["email"], bob.email.as_str());
    assert_eq!(read.json["disabled_at"], serde_json::Value::Null);

    // Only a tenant admin reads or changes users.
    api.get(&path, &carol.token)
        .await
        .expect_status(403, "GET a user as a non-admin");
    api.patch(&path, &carol.token, &json!({"disabled": true}))
        .await
        .expect_status(403, "disable as a non-admin");
    api.get("/v1/me", &bob.token)
        .await
        .expect_status(200, "a refused change changes nothing");

    let disabled = api
        .patch(&path, admin, &json!({"disabled": true, "display_name": "Bob (left)"}))
        .await;
    disabled.expect_status(200, "disable bob");
    assert!(disabled.json["disabled_at"].is_string(), "{}", disabled.text);
    assert_eq!(disabled.json["display_name"], "Bob (left)");
    let refused = api.get("/v1/me", &bob.token).await;
    refused.expect_status(401, "a disabled user's token is refused at once");
    assert!(refused.headers.contains_key("www-authenticate"));
    assert!(api.get(&path, admin).await.json["disabled_at"].is_string());

    let enabled = api.patch(&path, admin, &json!({"disabled": false})).await;
    enabled.expect_status(200, "enable bob");
    assert_eq!(enabled.json["disabled_at"], serde_json::Value::Null);
    api.get("/v1/me", &bob.token).await.expect_status(200, "enabled again");

    // Promoted, bob may act as a tenant admin; the tenant admin cannot lock themselves out.
    api.patch(&path, admin, &json!({"tenant_admin": true}))
        .await
        .expect_status(200, "promote bob");
    api.get(&format!("/v1/users/{}", carol.id), &bob.token)
        .await
        .expect_status(200, "bob reads users now");
    let me = api.get("/v1/me", admin).await;
    let admin_id = me.json["id"].as_str().expect("the admin's id").to_owned();
    let lockout = api
        .patch(
            &format!("/v1/users/{admin_id}"),
            admin,
            &json!({"disabled": true, "tenant_admin": false}),
        )
        .await;
    lockout.expect_status(422, "a tenant admin disabling themselves");
    let locs: Vec<&serde_json::Value> = lockout.json["detail"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["loc"])
        .collect();
    assert_eq!(
        locs,
        [&json!(["body", "disabled"]), &json!(["body", "tenant_admin"])],
        "{}",
        lockout.text
    );
    api.get("/v1/me", admin).await.expect_status(200, "still in");

    // Bad input and unknown users.
    api.patch(&path, admin, &json!({"display_name": ""}))
        .await
        .expect_status(422, "an empty display name");
    api.patch(&path, admin, &json!({"disabled": "yes"}))
        .await
        .expect_status(422, "disabled must be a boolean");
    api.get("/v1/users/01936d3e-0000-7000-8000-000000000000", admin)
        .await
        .expect_status(404, "an unknown user");
    api.get("/v1/users/not-an-id", admin)
        .await
        .expect_status(404, "not an id");

    // The tenant's trail shows who disabled bob, and the refusal of bob's token meanwhile.
    let trail = api.get("/v1/audit-events?resource_type=user&limit=200", admin).await;
    trail.expect_status(200, "the tenant's audit trail");
    let items = trail.json["items"].as_array().expect("a page of events");
    assert!(
        items.iter().any(|e| e["action"] == "update"
            && e["resource_id"] == bob.id.as_str()
            && e["detail"].as_str().is_some_and(|d| d.starts_with("disabled the user"))
            && e["actor_id"] == admin_id.as_str()),
        "{}",
        trail.text
    );
    assert!(
        items.iter().all(|e| e["team_id"].is_null()),
        "tenant events belong to no team"
    );
    let refusals = api.get("/v1/audit-events?limit=200", admin).await;
    assert!(
        refusals.json["items"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["action"] == "authenticate"
                && e["outcome"] == "failure"
                && e["detail"] == "the token's user is disabled"),
        "{}",
        refusals.text
    );
    let csv = api
        .call_with(
            reqwest::Method::GET,
            "/v1/audit-events?resource_type=user",
            Some(admin),
            None,
            &[("accept", "text/csv")],
        )
        .await;
    csv.expect_status(200, "the tenant's trail as CSV");
    assert!(csv.text.starts_with("id,"), "{}", csv.text);
    assert!(csv.text.contains(&bob.id), "{}", csv.text);
    api.get("/v1/audit-events", &carol.token)
        .await
        .expect_status(403, "the tenant's trail is for tenant admins");

    // Deleting: the only owner of a team is refused, naming it; once another member owns
    // it, the user goes with their tokens and memberships.
    let team_name = format!("carols-{}", crate::support::unique());
    let team = crate::support::create_team(api, &carol.token, &team_name).await;
    let carol_path = format!("/v1/users/{}", carol.id);
    let refused = api.delete(&carol_path, admin).await;
    refused.expect_status(409, "deleting the only owner of a team");
    assert_eq!(refused.json["code"], "last_owner", "{}", refused.text);
    assert!(
        refused.json["detail"].as_str().is_some_and(|d| d.contains(&team_name)),
        "{}",
        refused.text
    );
    api.get("/v1/me", &carol.token)
        .await
        .expect_status(200, "a refused delete changes nothing");
    crate::support::add_member(api, &carol.token, &team, &bob.id, "owner").await;
    api.delete(&carol_path, &carol.token)
        .await
        .expect_status(403, "a non-admin deletes no one");
    api.delete(&carol_path, admin).await.expect_status(204, "delete carol");
    api.get("/v1/me", &carol.token)
        .await
        .expect_status(401, "her token went with her");
    api.get(&carol_path, admin).await.expect_status(404, "she is gone");
    let members = api.get(&format!("/v1/teams/{team}/members"), &bob.token).await;
    assert_eq!(
        members.json["total"], 1,
        "her membership went with her: {}",
        members.text
    );
    let own = api.delete(&format!("/v1/users/{admin_id}"), admin).await;
    own.expect_status(422, "deleting oneself");
    assert_eq!(own.json["detail"][0]["loc"], json!(["path", "user_id"]), "{}", own.text);
    let trail = api.get("/v1/audit-events?resource_type=user&limit=200", admin).await;
    assert!(
        trail.json["items"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["action"] == "delete" && e["resource_id"] == carol.id.as_str() && e["outcome"] == "success"),
        "{}",
        trail.text
    );
}

#[actix_web::test]
async fn offboarding_on_sqlite() {
    a_disabled_users_tokens_are_refused_at_once(Backend::Sqlite).await;
}

#[actix_web::test]
async fn offboarding_on_postgres() {
    a_disabled_users_tokens_are_refused_at_once(Backend::Postgres).await;
}
