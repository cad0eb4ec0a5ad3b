//! `GET /metrics`, and authenticated subjects remembered by each server of a deployment.

use custodian_server::Application;
use custodian_test_db::TestPostgres;
use secrecy::ExposeSecret;
use serde_json::json;
use tempfile::TempDir;

use crate::support::{Api, Backend, TestServer, config, create_team, create_user, s3_secret_body};

/// Start a server of `config`; its API and the tenant admin's token when it made one.
async fn start(config: custodian_server::Config) -> (Api, Option<String>) {
    let mut app = Application::build(config).await.expect("the server starts");
    let api = Api::new(format!("http://{}", app.local_addr()));
    let token = app.take_bootstrap().map(|b| b.token.expose_secret().to_owned());
    actix_web::rt::spawn(app.run());
    (api, token)
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern_and_show_no_token_value_or_id() {
    let server = TestServer::start(Backend::Sqlite).await.expect("SQLite always runs");
    let (api, admin) = (&server.api, server.admin_token.as_str());
    let team = create_team(api, admin, "metered").await;
    let canary = "CANARYmetricsSecretValue0123456789";
    let created = api
        .post(
            &format!("/v1/teams/{team}/secrets"),
            admin,
            &s3_secret_body("metered-s3", "AKIAMETRICS0000001", canary),
        )
        .await;
    created.expect_status(201, "POST /v1/teams/{team}/secrets");
    let secret = created.str("id");
    for _ in 0..3 {
        api.get(&format!("/v1/teams/{team}/secrets/{secret}"), admin)
            .await
            .expect_status(200, "GET the secret");
    }
    api.get("/v1/no-such-route/12345", admin)
        .await
        .expect_status(404, "an unknown path");

    let scraped = reqwest::get(format!("{}/metrics", api.base)).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "Prometheus' text format"
    );
    let text = scraped.text().await.unwrap();
    // The process's one recorder counts every server of this test binary: at least what
    // this test sent.
    for (series, at_least) in [
        (
            r#"custodian_http_requests_total{method="GET",route="/v1/teams/{team_id}/secrets/{secret_id}",status="200"}"#,
            3.0,
        ),
        (
            r#"custodian_http_requests_total{method="POST",route="/v1/teams/{team_id}/secrets",status="201"}"#,
            1.0,
        ),
        (
            r#"custodian_http_requests_total{method="GET",route="unmatched",status="404"}"#,
            1.0,
        ),
        (
            r#"custodian_http_request_duration_seconds_bucket{method="GET",route="/v1/teams/{team_id}/secrets/{secret_id}",status="200",le="+Inf"}"#,
            3.0,
        ),
        (r#"custodian_subject_cache_total{outcome="hit"}"#, 1.0),
        (r#"custodian_subject_cache_total{outcome="miss"}"#, 1.0),
        (
            // The local store seals a new secret's credentials for the row's transaction.
            r#"custodian_credential_store_calls_total{backend="local",operation="seal_for_commit",outcome="ok"}"#,
            1.0,
        ),
        (r#"custodian_db_pool_connections{state="open"}"#, 1.0),
        ("custodian_db_pool_wait_seconds_count", 1.0),
        // The team's and the secret's creates, one write transaction each on SQLite.
        ("custodian_db_writer_wait_seconds_count", 2.0),
    ] {
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        assert!(value >= at_least, "{series} is {value}, below {at_least}");
    }
    for secret_text in [admin, canary, team.as_str(), secret.as_str(), "12345"] {
        assert!(!text.contains(secret_text), "the metrics hold {secret_text}");
    }
}

#[actix_web::test]
async fn metrics_are_refused_to_a_connection_outside_the_scraper_networks() {
    let dir = TempDir::new().unwrap();
    let mut config = config(&dir.path().join("data"), None);
    config.metrics.scrapers = vec!["10.0.0.0/8".parse().unwrap()];
    let (api, _) = start(config).await;
    let refused = api.call(reqwest::Method::GET, "/metrics", None, None).await;
    refused.expect_status(403, "GET /metrics from loopback");
    assert_eq!(refused.json["code"], "forbidden");
    assert!(refused.str("detail").contains("metrics.scrapers"), "{}", refused.text);
}

/// Two servers of one deployment on one PostgreSQL database, the tenant admin's token, and
/// what must live as long as they do.
struct TwoServers {
    one: Api,
    other: Api,
    admin: String,
    _database: TestPostgres,
    _dir: TempDir,
}

/// [`TwoServers`] on a fresh database; `None` where PostgreSQL is not available.
async fn two_servers_on_postgres() -> Option<TwoServers> {
    let postgres = TestPostgres::start("custodian_server_empty", |_| async { Ok(()) }).await?;
    let dir = TempDir::new().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let (one, admin) = start(config(&data_dir, Some(postgres.url()))).await;
    let admin = admin.expect("the first start creates the tenant admin");
    let (other, none) = start(config(&data_dir, Some(postgres.url()))).await;
    assert!(none.is_none(), "the second server finds the tenant admin");
    Some(TwoServers {
        one,
        other,
        admin,
        _database: postgres,
        _dir: dir,
    })
}

/// Two servers on one PostgreSQL database: a token the second one remembers is refused by
/// it within a second of its revocation through the first.
#[actix_web::test]
async fn a_revocation_through_one_server_reaches_another_within_a_second() {
    let Some(TwoServers {
        one,
        other,
        admin,
        _database,
        _dir,
    }) = two_servers_on_postgres().await
    else {
        return;
    };

    let ada = create_user(&one, &admin, "ada").await;
    for _ in 0..3 {
        other
            .get("/v1/me", &ada.token)
            .await
            .expect_status(200, "ada on the other server");
    }
    one.patch(&format!("/v1/users/{}", ada.id), &admin, &json!({ "disabled": true }))
        .await
        .expect_status(200, "disable ada");
    one.get("/v1/me", &ada.token)
        .await
        .expect_status(401, "the server that disabled ada refuses her at once");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    other
        .get("/v1/me", &ada.token)
        .await
        .expect_status(401, "the other server a second later");
}

/// Two servers on one PostgreSQL database: a team's tier the second one remembers (for the
/// team's limits) is read again by it within a second of a change through the first.
#[actix_web::test]
async fn a_tier_changed_through_one_server_reaches_another_within_a_second() {
    let Some(TwoServers {
        one,
        other,
        admin,
        _database,
        _dir,
    }) = two_servers_on_postgres().await
    else {
        return;
    };

    let team = create_team(&one, &admin, "retiered").await;
    let secrets = format!("/v1/teams/{team}/secrets");
    // Enterprise (no limit), remembered by the other server as it creates five.
    for n in 0..5 {
        other
            .post(
                &secrets,
                &admin,
                &s3_secret_body(
                    &format!("s3-{n}"),
                    "AKIATIER00000001",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTIER000001",
                ),
            )
            .await
            .expect_status(201, "a create under the enterprise tier");
    }
    one.patch(&format!("/v1/teams/{team}"), &admin, &json!({ "tier": "free" }))
        .await
        .expect_status(200, "the team moves to the free tier (5 storage secrets)");
    let refused = one
        .post(
            &secrets,
            &admin,
            &s3_secret_body("s3-5", "AKIATIER00000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTIER000001"),
        )
        .await;
    refused.expect_status(403, "the server that changed the tier applies it at once");
    assert_eq!(refused.json["code"], "tier_limit_exceeded");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let refused = other
        .post(
            &secrets,
            &admin,
            &s3_secret_body("s3-6", "AKIATIER00000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTIER000001"),
        )
        .await;
    refused.expect_status(403, "the other server a second later");
    assert_eq!(refused.json["code"], "tier_limit_exceeded");
}
