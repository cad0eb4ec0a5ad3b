//! Bearer authentication of `/v1` requests.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use custodian_core::CoreError;
use custodian_domain::{RequestContext, Subject};
use secrecy::SecretString;
use tracing::Instrument;
use tracing_actix_web::RequestId;

use crate::{ApiError, ApiState};

/// The authenticated caller of a request (`Authorization: Bearer <token>`).
///
/// A missing or malformed header, or a token the core refuses, answers 401 with
/// `WWW-Authenticate: Bearer`.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who the token belongs to.
    pub subject: Subject,
    /// Where the request came from, for audit events.
    pub context: RequestContext,
}

/// The request's audit context: its id, peer address and user agent.
///
/// The id is the one `tracing_actix_web::TracingLogger` gave the request (its log span's
/// `request_id`, echoed to the client in `X-Request-Id`), so an audit event and the log
/// lines of its request share it. Without that middleware (an embedder's own app), the
/// client's `X-Request-Id` header is used, if any.
pub(crate) fn request_context(req: &HttpRequest) -> RequestContext {
    let header_text = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(255).collect::<String>())
    };
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    RequestContext {
        request_id: request_id.or_else(|| header_text("x-request-id")),
        client_ip: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent: header_text(header::USER_AGENT.as_str()),
    }
}

/// The bearer token of the request, if its `Authorization` header carries one.
fn bearer_token(req: &HttpRequest) -> Option<SecretString> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| SecretString::from(token.to_owned()))
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ApiState>>().cloned();
        let token = bearer_token(req);
        let context = request_context(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| CoreError::internal("the API state is not configured"))?;
            let token = token.ok_or(CoreError::Unauthenticated)?;
            // Its own task: when another extractor of the request fails first, actix drops
            // this future, and a database call dropped half-way is what SQLite's blocking
            // connection wrapper cannot take on a worker's single-threaded runtime. The
            // task finishes the lookup (and its audit event) whatever happens here.
            let authenticating = actix_web::rt::spawn(
                async move {
                    let subject = state.custodian.authenticate_with_context(&token, &context).await?;
                    Ok::<_, CoreError>(Authenticated { subject, context })
                }
                .instrument(tracing::Span::current()),
            );
            match authenticating.await {
                Ok(outcome) => Ok(outcome?),
                Err(_) => Err(CoreError::internal("the authentication task was cancelled").into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, HttpResponse, test};
    use tracing_actix_web::TracingLogger;

    use super::*;

    async fn show(req: HttpRequest, id: Option<RequestId>) -> HttpResponse {
        HttpResponse::Ok().json((request_context(&req).request_id, id.map(|i| i.to_string())))
    }

    #[actix_web::test]
    async fn the_request_id_is_the_one_the_tracing_logger_gave() {
        let app = test::init_service(
            App::new()
                .wrap(TracingLogger::default())
                .route("/", web::get().to(show)),
        )
        .await;
        let mut seen = Vec::new();
        for _ in 0..2 {
            let req = test::TestRequest::get()
                .uri("/")
                .insert_header(("x-request-id", "chosen-by-the-client"))
                .to_request();
            let (context, logger): (Option<String>, Option<String>) = test::call_and_read_body_json(&app, req).await;
            assert!(logger.is_some());
            assert_eq!(context, logger);
            seen.push(context);
        }
        assert_ne!(seen[0], seen[1], "one id per request");
    }

    #[actix_web::test]
    async fn without_the_logger_the_client_header_is_used() {
        let app = test::init_service(App::new().route("/", web::get().to(show))).await;
        let req = test::TestRequest::get()
            .uri("/")
            .insert_header(("x-request-id", "chosen-by-the-client"))
            .to_request();
        let (context, logger): (Option<String>, Option<String>) = test::call_and_read_body_json(&app, req).await;
        assert_eq!(context.as_deref(), Some("chosen-by-the-client"));
        assert_eq!(logger, None);
    }
}
