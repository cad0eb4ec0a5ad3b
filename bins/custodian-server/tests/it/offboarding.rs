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
}

#[actix_web::test]
async fn offboarding_on_sqlite() {
    a_disabled_users_tokens_are_refused_at_once(Backend::Sqlite).await;
}

#[actix_web::test]
async fn offboarding_on_postgres() {
    a_disabled_users_tokens_are_refused_at_once(Backend::Postgres).await;
}
