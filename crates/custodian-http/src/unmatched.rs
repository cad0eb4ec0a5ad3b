//! What a request that names no route gets: a JSON 404 for a path the API does not have,
//! and a JSON 405 with `Allow` for a path it has under other methods, each in the error
//! shape of its API family (`/api/svc/v1` or the rest). The routes are read from the
//! OpenAPI document, so the two cannot drift apart; the API reference's page (`/docs`,
//! not an operation of the document) is added to them.

use std::sync::LazyLock;

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

/// Each documented path template, split into its segments, with the methods it answers.
/// Read from the served document once, at the first request no route took.
static ROUTES: LazyLock<Vec<(Vec<String>, Vec<Method>)>> = LazyLock::new(|| {
    // The document is this crate's own file, checked by a test: it always parses.
    let doc: Value = serde_json::from_str(crate::OPENAPI_JSON).unwrap_or_default();
    doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(template, item)| {
            let methods = [Method::GET, Method::PUT, Method::POST, Method::DELETE, Method::PATCH]
                .into_iter()
                .filter(|method| item[method.as_str().to_ascii_lowercase()].is_object())
                .collect();
            (template.split('/').map(str::to_owned).collect(), methods)
        })
        .collect()
});

/// The methods the API answers at `path`; empty when it has no such path.
fn methods_at(path: &str) -> Vec<Method> {
    if crate::docs::serves(path) {
        return vec![Method::GET];
    }
    let segments: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<Method> = ROUTES
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    if t.starts_with('{') && t.ends_with('}') {
                        !s.is_empty()
                    } else {
                        t == s
                    }
                })
        })
        .flat_map(|(_, methods)| methods.iter().cloned())
        .collect();
    methods.dedup();
    methods
}

/// The answer to a request no route took: 405 with `Allow` when the path exists, 404
/// otherwise, as JSON in the family's error shape.
pub(crate) async fn answer(req: HttpRequest) -> HttpResponse {
    respond(&req, &methods_at(req.path()))
}

/// The JSON 404 of `req`'s family, for a route that has no such item.
pub(crate) fn not_found(req: &HttpRequest) -> HttpResponse {
    respond(req, &[])
}

/// 405 with `Allow` when `allowed` names methods, 404 otherwise.
fn respond(req: &HttpRequest, allowed: &[Method]) -> HttpResponse {
    let (status, code, message) = if allowed.is_empty() {
        (StatusCode::NOT_FOUND, "not_found", "not found".to_owned())
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not allowed here",
                crate::extract::printable(req.method().as_str())
            ),
        )
    };
    let mut response = HttpResponse::build(status);
    if !allowed.is_empty() {
        let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        response.insert_header((header::ALLOW, allow.join(", ")));
    }
    if req.path().starts_with("/api/svc/") {
        response.json(json!({
            "statusCode": status.as_u16(),
            "message": message,
            "code": code,
            "details": [],
        }))
    } else {
        response.json(json!({ "detail": message, "code": code }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_paths_give_their_methods_and_others_none() {
        assert_eq!(methods_at("/v1/teams"), [Method::GET, Method::POST]);
        let team = methods_at("/v1/teams/0190f1f4-0000-7000-8000-000000000000");
        assert!(
            team.contains(&Method::PATCH) && team.contains(&Method::DELETE),
            "{team:?}"
        );
        assert!(methods_at("/v1/nowhere").is_empty());
        assert!(methods_at("/v1/teams//members").is_empty());
        assert_eq!(methods_at("/healthz"), [Method::GET]);
        assert_eq!(methods_at("/docs"), [Method::GET]);
        assert_eq!(methods_at("/docs/swagger-ui.css"), [Method::GET]);
    }
}
