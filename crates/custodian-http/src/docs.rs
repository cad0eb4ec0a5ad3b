//! `GET /docs/`: an interactive reference of the OpenAPI document (Swagger UI), whose page
//! reads `GET /openapi.json`. Every file of the page is built into the binary (the crate
//! `utoipa-swagger-ui` with its `vendored` feature) and served from here, so the page works
//! without internet access and names no other host.
//!
//! Not an API operation, so not in the OpenAPI document; [`serves`] tells the answer to
//! unmatched requests that these paths exist (for `GET`).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use utoipa_swagger_ui::Config;

/// The page's own path: `/docs` redirects here, and its files live under it.
pub(crate) const PAGE: &str = "/docs/";

/// What the page shows: the document this server already serves. The online validator
/// badge is off: it would load an image from another host.
static CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::new(["/openapi.json"]).validator_url("none")));

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/docs", web::get().to(redirect))
        .route("/docs/{file:.*}", web::get().to(file));
}

/// Whether `path` is the page or one of its files.
pub(crate) fn serves(path: &str) -> bool {
    path == "/docs" || path.starts_with(PAGE)
}

/// `/docs` → `/docs/`, so that the page's relative links resolve under it.
async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, PAGE))
        .finish()
}

/// The page (`/docs/`) or one of its files; a JSON 404 for a name it does not have.
async fn file(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    match utoipa_swagger_ui::serve(&name, Arc::clone(&CONFIG)) {
        Ok(Some(file)) => {
            let body = match file.bytes {
                Cow::Borrowed(bytes) => Bytes::from_static(bytes),
                Cow::Owned(bytes) => Bytes::from(bytes),
            };
            HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, with_charset(file.content_type)))
                .body(body)
        }
        Ok(None) => crate::unmatched::not_found(&req),
        Err(e) => {
            tracing::error!(error = %e, file = %name, "cannot serve a file of the API reference");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The page's text files are UTF-8: say so, so that no browser guesses.
fn with_charset(content_type: String) -> String {
    let text = content_type.starts_with("text/") || content_type == "application/javascript";
    if text && !content_type.contains("charset") {
        format!("{content_type}; charset=utf-8")
    } else {
        content_type
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_served_here_and_nothing_else() {
        assert!(serves("/docs"));
        assert!(serves("/docs/"));
        assert!(serves("/docs/swagger-ui.css"));
        assert!(!serves("/docsx"));
        assert!(!serves("/v1/docs/"));
    }

    #[test]
    fn text_files_say_they_are_utf8() {
        assert_eq!(with_charset("text/html".into()), "text/html; charset=utf-8");
        assert_eq!(
            with_charset("application/javascript".into()),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(with_charset("image/png".into()), "image/png");
        assert_eq!(
            with_charset("text/css; charset=utf-8".into()),
            "text/css; charset=utf-8"
        );
    }
}
