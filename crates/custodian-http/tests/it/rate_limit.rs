//! Rate limits per client address and per token: 429 past the limit, with `Retry-After`
//! and the `X-RateLimit-*` headers, and `X-Forwarded-For` believed only from a trusted
//! proxy.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, test, web};
use custodian_http::{RateLimitSettings, RateLimits};

use crate::support::world;

fn header(response: &actix_web::dev::ServiceResponse, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("a text header").to_owned())
}

fn from(peer: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri("/healthz")
        .peer_addr(peer.parse::<SocketAddr>().expect("a socket address"))
}

#[actix_web::test]
async fn each_client_address_has_its_budget_and_forwarded_for_is_believed_from_trusted_proxies_only() {
    let w = world().await;
    let limits = RateLimits::new(RateLimitSettings {
        per_address_per_minute: NonZeroU32::new(3),
        per_token_per_minute: None,
        trusted_proxies: vec!["10.0.0.9".parse().unwrap()],
    });
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(w.state))
            .app_data(web::Data::new(limits))
            .configure(custodian_http::configure)
            .wrap(from_fn(custodian_http::rate_limit)),
    )
    .await;

    for remaining in ["2", "1", "0"] {
        let response = test::call_service(&app, from("10.0.0.1:4000").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header(&response, "x-ratelimit-remaining").as_deref(), Some(remaining));
        assert!(header(&response, "x-ratelimit-reset").is_some());
    }
    let refused = test::call_service(&app, from("10.0.0.1:4001").to_request()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(header(&refused, "x-ratelimit-remaining").as_deref(), Some("0"));
    let body: serde_json::Value = test::read_body_json(refused).await;
    assert_eq!(body["code"], "rate_limited");

    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let forged = from("10.0.0.1:4002")
        .insert_header(("x-forwarded-for", "192.0.2.7"))
        .to_request();
    assert_eq!(
        test::call_service(&app, forged).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another address has its own budget.
    assert_eq!(
        test::call_service(&app, from("10.0.0.2:4000").to_request())
            .await
            .status(),
        StatusCode::OK
    );
    // Behind the trusted proxy, each forwarded client has its own budget.
    for client in ["192.0.2.1", "192.0.2.2"] {
        for _ in 0..3 {
            let request = from("10.0.0.9:5000")
                .insert_header(("x-forwarded-for", client))
                .to_request();
            assert_eq!(
                test::call_service(&app, request).await.status(),
                StatusCode::OK,
                "{client}"
            );
        }
        let request = from("10.0.0.9:5000")
            .insert_header(("x-forwarded-for", client))
            .to_request();
        assert_eq!(
            test::call_service(&app, request).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[actix_web::test]
async fn a_token_has_its_budget_across_addresses() {
    let w = world().await;
    let limits = RateLimits::new(RateLimitSettings {
        per_address_per_minute: None,
        per_token_per_minute: NonZeroU32::new(2),
        trusted_proxies: Vec::new(),
    });
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(w.state))
            .app_data(web::Data::new(limits))
            .configure(custodian_http::configure)
            .wrap(from_fn(custodian_http::rate_limit)),
    )
    .await;
    let with_token = |peer: &str, token: &str| {
        from(peer)
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request()
    };
    for peer in ["10.0.0.1:1", "10.0.0.2:1"] {
        let response = test::call_service(&app, with_token(peer, "cus_flood")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = test::call_service(&app, with_token("10.0.0.3:1", "cus_flood")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another token, and no token, are not held back by it.
    let response = test::call_service(&app, with_token("10.0.0.3:1", "cus_other")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = test::call_service(&app, from("10.0.0.3:1").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        header(&response, "x-ratelimit-limit").is_none(),
        "no limit applies without a token"
    );
}
