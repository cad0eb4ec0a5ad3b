//! Input an attacker or a confused client sends, against the real server on SQLite and
//! PostgreSQL: each is refused with a 422 naming what is wrong, and writes nothing.

use reqwest::Method;
use serde_json::json;

use crate::support::{Backend, TestServer, create_secret};

async fn hostile_input_is_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (api, token) = (&server.api, server.admin_token.as_str());
    let me = api.get("/v1/me", token).await;
    let team_id = me.json["teams"][0]["id"].as_str().expect("the default team").to_owned();
    create_secret(api, token, &team_id).await;

    // A NUL in a text query parameter: a 422 naming it, on both backends (PostgreSQL
    // refuses NUL in text, SQLite would have ignored the filter).
    for path in [
        format!("/v1/teams/{team_id}/secrets?search=a%00b"),
        format!("/v1/teams/{team_id}/locations?location_type=s3%00"),
        "/v1/users?limit=10&colour%00=x".to_owned(),
    ] {
        let reply = api.get(&path, token).await;
        reply.expect_status(422, &path);
        let loc = &reply.json["detail"][0]["loc"];
        assert_eq!(loc[0], "query", "{path}: {}", reply.text);
        assert_eq!(reply.json["detail"][0]["type"], "invalid_characters", "{}", reply.text);
    }

    // A JSON array is not a body: no tenant admin is made from `["x@x.com", "Arr", true]`.
    let users_before = api.get("/v1/users", token).await.json["total"].clone();
    let array = json!(["x@x.com", "Arr", true]);
    let reply = api.call(Method::POST, "/v1/users", Some(token), Some(&array)).await;
    reply.expect_status(422, "POST /v1/users with an array");
    assert_eq!(reply.json["detail"][0]["loc"], json!(["body"]), "{}", reply.text);
    assert_eq!(api.get("/v1/users", token).await.json["total"], users_before);

    // A repeated key is named, and the team keeps its name.
    let reply = api
        .call_raw(Method::POST, "/v1/teams", token, r#"{"name":"first","name":"second"}"#)
        .await;
    reply.expect_status(422, "POST /v1/teams with a repeated key");
    assert_eq!(
        reply.json["detail"][0]["loc"],
        json!(["body", "name"]),
        "{}",
        reply.text
    );
    assert_eq!(reply.json["detail"][0]["type"], "duplicate_key");
}

#[actix_web::test]
async fn hostile_input_is_refused_on_sqlite() {
    hostile_input_is_refused(Backend::Sqlite).await;
}

#[actix_web::test]
async fn hostile_input_is_refused_on_postgres() {
    hostile_input_is_refused(Backend::Postgres).await;
}
