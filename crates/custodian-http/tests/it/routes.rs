//! `/healthz`, `/readyz` and `/v1/me`.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::test;
use chrono::{Duration, Utc};
use custodian_core::{Custodian, NewTeamInput, NewVirtualAccountInput, Ports, Repositories, Settings};
use custodian_domain::RequestContext;
use custodian_http::ApiState;
use custodian_ports::{MockUserRepository, RepoError};
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::memory_store::MemoryCredentialStore;
use custodian_testkit::tokens::token_issuer;
use secrecy::ExposeSecret;

use crate::service;
use crate::support::world;

#[actix_web::test]
async fn healthz_and_readyz_answer_ok() {
    let w = world().await;
    let app = service!(w.state);
    for path in ["/healthz", "/readyz"] {
        let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["status"], "ok");
    }
}

#[actix_web::test]
async fn readyz_is_503_when_the_database_does_not_answer() {
    let mut users = MockUserRepository::new();
    users
        .expect_count()
        .returning(|| Err(RepoError::Unavailable("connection refused".into())));
    let repos = Repositories {
        users: Arc::new(users),
        ..MemoryRepos::new().repositories()
    };
    let custodian = Custodian::new(
        Ports::new(repos, Arc::new(MemoryCredentialStore::default()), token_issuer()),
        Settings::default(),
    );
    let app = service!(ApiState::new(custodian));
    let response = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["code"], "service_unavailable");
    // Health does not depend on the database.
    let response = test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn me_needs_a_bearer_token_the_core_accepts() {
    let w = world().await;
    let token = w.admin_token.expose_secret().to_owned();
    let app = service!(w.state);
    let refused = [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer cus_unknown".to_owned()),
        Some(format!("Token {token}")),
        Some(format!("Bearer {token}x")),
    ];
    for authorization in refused {
        let mut request = test::TestRequest::get().uri("/v1/me");
        if let Some(value) = &authorization {
            request = request.insert_header((header::AUTHORIZATION, value.as_str()));
        }
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(response.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["code"], "unauthenticated");
        assert!(!body.to_string().contains(&token));
    }
    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/v1/me")
            .insert_header((header::AUTHORIZATION, format!("bearer {token}")))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["type"], "user");
    assert_eq!(body["email"], "admin@example.com");
    assert_eq!(body["display_name"], "Ada Admin");
    assert_eq!(body["tenant_admin"], true);
    assert_eq!(body["teams"], serde_json::json!([]));
}

#[actix_web::test]
async fn me_of_a_virtual_account_names_it_and_has_no_email() {
    let w = world().await;
    let ctx = RequestContext::default();
    let custodian = w.state.custodian.clone();
    let team = custodian
        .create_team(
            &w.admin,
            &ctx,
            NewTeamInput {
                name: Some("data-platform".into()),
                ..NewTeamInput::default()
            },
        )
        .await
        .unwrap();
    let (_, issued) = custodian
        .create_virtual_account(
            &w.admin,
            &ctx,
            team.id,
            NewVirtualAccountInput {
                name: Some("transfer-worker".into()),
                role: Some("operator".into()),
                expires_at: Some(Utc::now() + Duration::days(1)),
            },
        )
        .await
        .unwrap();
    let app = service!(w.state);
    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/v1/me")
            .insert_header((
                header::AUTHORIZATION,
                format!("Bearer {}", issued.token.expose_secret()),
            ))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["type"], "virtual_account");
    assert_eq!(body["display_name"], "transfer-worker");
    assert_eq!(body["tenant_admin"], false);
    assert!(body.get("email").is_none(), "{body}");
}

/// A request no route takes answers JSON in its family's shape: 404 for a path the API does
/// not have, 405 with `Allow` for one it has under other methods (TRACE included).
#[actix_web::test]
async fn unknown_paths_and_methods_answer_json() {
    let w = world().await;
    let app = service!(w.state);
    let call = |method: &str, uri: &str| {
        test::TestRequest::default()
            .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .to_request()
    };
    let team = "0190f1f4-0000-7000-8000-000000000000";
    let cases = [
        ("GET", "/v1/nowhere".to_owned(), StatusCode::NOT_FOUND, "not_found"),
        (
            "TRACE",
            "/v1/teams".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "PUT",
            format!("/v1/teams/{team}/secrets"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, uri, status, code) in cases {
        let response = test::call_service(&app, call(method, &uri)).await;
        assert_eq!(response.status(), status, "{method} {uri}");
        let allow = response
            .headers()
            .get(header::ALLOW)
            .map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["code"], code, "{method} {uri}: {body}");
        assert!(body["detail"].is_string(), "{body}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            let allow = allow.expect("an Allow header");
            assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        }
    }
    // The /api/svc/v1 family answers in its own shape.
    let response = test::call_service(&app, call("GET", "/api/svc/v1/nowhere")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["statusCode"], 404, "{body}");
    assert_eq!(body["code"], "not_found");
}
