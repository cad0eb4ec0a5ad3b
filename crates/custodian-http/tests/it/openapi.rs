//! `GET /openapi.json`.

use actix_web::http::{Method, StatusCode};

use crate::service;
use crate::support::{send, world};

#[actix_web::test]
async fn the_document_is_openapi_3_1_with_the_bearer_scheme() {
    let w = world().await;
    let app = service!(w.state);
    let (status, doc) = send(&app, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["paths"]["/v1/me"]["get"].is_object(), "{}", doc["paths"]);
    assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
}

/// What a strict validator and a reader need: every response of every operation says what
/// it means, and every `limit` parameter carries the bounds the server enforces (1–200).
#[test]
fn every_response_is_described_and_every_limit_is_bounded() {
    let doc = serde_json::to_value(custodian_http::openapi()).expect("the document serializes");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                let described = response["description"].as_str().is_some_and(|d| !d.trim().is_empty());
                assert!(described, "{method} {path} {status} has no description");
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["name"] == "limit" {
                    let schema = &parameter["schema"];
                    assert_eq!(schema["minimum"], 1, "{method} {path}: {parameter}");
                    assert_eq!(schema["maximum"], 200, "{method} {path}: {parameter}");
                }
            }
        }
    }
}
