//! Concurrent rotations of one secret, against the real server on SQLite and PostgreSQL:
//! without a precondition, every rotation succeeds (the last to commit wins), and
//! `credentials_version` counts exactly the rotations that succeeded.

use serde_json::json;

use crate::support::{Backend, TestServer, create_secret};

/// How many rotations race on one secret.
const ROTATIONS: usize = 6;

async fn concurrent_rotations_all_succeed_and_are_counted(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (api, token) = (&server.api, server.admin_token.as_str());
    let me = api.get("/v1/me", token).await;
    let team_id = me.json["teams"][0]["id"].as_str().expect("the default team").to_owned();
    let secret_id = create_secret(api, token, &team_id).await;
    let path = format!("/v1/teams/{team_id}/secrets/{secret_id}");

    let mut racing = tokio::task::JoinSet::new();
    for i in 0..ROTATIONS {
        let body = json!({"credentials": {
            "access_key_id": format!("AKIARACE{i}"),
            "secret_access_key": format!("race-secret-{i}"),
        }});
        let (api, token, path) = (api.clone(), token.to_owned(), path.clone());
        racing.spawn(async move { api.patch(&path, &token, &body).await });
    }
    let replies = racing.join_all().await;
    for reply in &replies {
        reply.expect_status(200, "a rotation racing others succeeds");
    }
    let details = api.get(&path, token).await;
    assert_eq!(
        details.json["credentials_version"],
        1 + ROTATIONS as i64,
        "{}",
        details.text
    );
    let events = api
        .get(
            &format!("/v1/teams/{team_id}/audit-events?resource_type=storage_secret&limit=200"),
            token,
        )
        .await;
    let rotations = events.json["items"]
        .as_array()
        .expect("a page of events")
        .iter()
        .filter(|e| e["action"] == "rotate" && e["resource_id"] == secret_id.as_str())
        .count();
    assert_eq!(rotations, ROTATIONS, "one rotate event per rotation: {}", events.text);
    let verified = api.post(&format!("{path}/verify"), token, &json!({})).await;
    assert_eq!(verified.json["verified"], true, "{}", verified.text);
}

#[actix_web::test]
async fn concurrent_rotations_on_sqlite() {
    concurrent_rotations_all_succeed_and_are_counted(Backend::Sqlite).await;
}

#[actix_web::test]
async fn concurrent_rotations_on_postgres() {
    concurrent_rotations_all_succeed_and_are_counted(Backend::Postgres).await;
}
