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
