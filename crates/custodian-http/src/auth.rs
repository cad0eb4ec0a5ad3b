//! Bearer authentication of `/v1` requests.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use custodian_core::CoreError;
use custodian_domain::{RequestContext, Subject};
use secrecy::SecretString;
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
            let state = state.ok_or_else(|| CoreError::Internal("the API state is not configured".into()))?;
            let token = token.ok_or(CoreError::Unauthenticated)?;
            let subject = state.custodian.authenticate_with_context(&token, &context).await?;
            Ok(Authenticated { subject, context })
        })
    }
}
