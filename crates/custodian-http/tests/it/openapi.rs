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

/// The server answers `GET /openapi.json` with the document written into the crate; it must
/// be the one the handlers describe now. After a change to a route, write it again with
/// `CUSTODIAN_WRITE_OPENAPI=1 cargo test -p custodian-http --test it openapi`.
#[test]
fn the_served_document_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(&custodian_http::openapi()).expect("the document serializes") + "\n";
    if generated == custodian_http::OPENAPI_JSON {
        return;
    }
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("CUSTODIAN_WRITE_OPENAPI").is_some() {
        std::fs::write(&file, &generated).expect("openapi.json is written");
        panic!(
            "{} was out of date and has been written again: build again",
            file.display()
        );
    }
    panic!(
        "{} is not the document the handlers describe: write it again with \
         `CUSTODIAN_WRITE_OPENAPI=1 cargo test -p custodian-http --test it openapi`",
        file.display()
    );
}

/// What the server answers is that file, byte for byte, as JSON.
#[actix_web::test]
async fn the_document_is_served_as_written() {
    let w = world().await;
    let app = service!(w.state);
    let request = actix_web::test::TestRequest::get().uri("/openapi.json").to_request();
    let response = actix_web::test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/json"));
    let body = actix_web::test::read_body(response).await;
    assert_eq!(body, custodian_http::OPENAPI_JSON.as_bytes());
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

/// Every operation that reads a body documents what the body reader answers before any
/// rule of the operation runs: 413 (larger than 64 KiB), 415 (not JSON) and 422 (a field
/// that does not parse), each with a schema.
#[test]
fn every_operation_with_a_body_documents_413_415_and_422() {
    let doc = serde_json::to_value(custodian_http::openapi()).expect("the document serializes");
    let mut with_body = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if operation.get("requestBody").is_none() {
                continue;
            }
            with_body += 1;
            for status in ["413", "415", "422"] {
                let response = &operation["responses"][status];
                assert!(
                    response["content"]["application/json"]["schema"].is_object(),
                    "{method} {path} does not document {status} with a JSON body: {}",
                    operation["responses"]
                );
            }
        }
    }
    assert!(with_body >= 15, "only {with_body} operations with a body");
}

/// `offset` is bounded in the document as the server bounds it (0 to 2^53 − 1), and so is
/// the `offset` every list echoes.
#[test]
fn every_offset_is_bounded() {
    const MAX_OFFSET: u64 = (1 << 53) - 1;
    let doc = serde_json::to_value(custodian_http::openapi()).expect("the document serializes");
    let mut offsets = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["name"] == "offset" {
                    offsets += 1;
                    let schema = &parameter["schema"];
                    assert_eq!(schema["minimum"], 0, "{method} {path}: {parameter}");
                    assert_eq!(schema["maximum"], MAX_OFFSET, "{method} {path}: {parameter}");
                }
            }
        }
    }
    assert!(offsets >= 9, "only {offsets} offset parameters");
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if name.starts_with("ListBody") {
            assert_eq!(schema["properties"]["offset"]["maximum"], MAX_OFFSET, "{name}");
        }
    }
}

/// Every name, display name and email a request body takes says how short and how long it
/// may be, as the server's rules do.
#[test]
fn every_name_and_email_in_a_request_body_has_its_length_bounds() {
    let doc = serde_json::to_value(custodian_http::openapi()).expect("the document serializes");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut bodies = Vec::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            if let Some(reference) = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                bodies.push(reference.trim_start_matches("#/components/schemas/").to_owned());
            }
        }
    }
    let mut checked = 0;
    for body in &bodies {
        let properties = schemas[body.as_str()]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (field, schema) in properties {
            if ["name", "display_name", "email"].contains(&field.as_str()) {
                checked += 1;
                let min = schema["minLength"].as_u64().unwrap_or(0);
                assert!(min >= 1, "{body}.{field} has no minLength: {schema}");
                assert!(
                    schema["maxLength"].as_u64().is_some_and(|max| max >= min),
                    "{body}.{field}: {schema}"
                );
            }
        }
    }
    assert!(checked >= 12, "only {checked} names and emails in {bodies:?}");
}

/// `credentials` documents the fields of every auth method: one shape per group of
/// methods, its fields required and described, nothing else accepted.
#[test]
fn credentials_document_the_fields_of_every_auth_method() {
    use custodian_domain::AuthMethod;

    let doc = serde_json::to_value(custodian_http::openapi()).expect("the document serializes");
    let credentials = &doc["components"]["schemas"]["Credentials"];
    let shapes = credentials["oneOf"].as_array().expect("Credentials is a oneOf");
    for method in AuthMethod::ALL {
        let named = format!("`{}`", method.as_str());
        let shape = shapes
            .iter()
            .find(|shape| shape["description"].as_str().is_some_and(|d| d.contains(&named)))
            .unwrap_or_else(|| panic!("no credentials shape names {named}: {credentials}"));
        let fields: Vec<&str> = method.credential_fields().iter().map(|f| f.as_str()).collect();
        let mut required: Vec<&str> = shape["required"]
            .as_array()
            .expect("required fields")
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        required.sort_unstable();
        let mut expected = fields.clone();
        expected.sort_unstable();
        assert_eq!(required, expected, "{named}");
        assert_eq!(shape["additionalProperties"], false, "{named}");
        for field in fields {
            let property = &shape["properties"][field];
            assert_eq!(property["minLength"], 1, "{named}.{field}");
            assert!(
                property["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{named}.{field}"
            );
        }
    }
    for body in ["CreateSecretBody", "UpdateSecretBody"] {
        let property = doc["components"]["schemas"][body]["properties"]["credentials"].to_string();
        assert!(
            property.contains("#/components/schemas/Credentials"),
            "{body}: {property}"
        );
    }
}
