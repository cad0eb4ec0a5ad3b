//! What every `/api/svc/v1` route shares: the error shape
//! `{"statusCode":N,"message":"…","code":"…","details":[…]}`, the `{"data": …}` envelope,
//! the list envelope with its `pagination`, and extractors that answer in that shape.
//!
//! The status of each error, and its `WWW-Authenticate` and `Retry-After` headers, are
//! those of the `/v1` API ([`ApiError`], [`BodyError`]); only the body differs. A 422 lists
//! every failing field in `details` as `{loc, msg, type}`, `loc` starting with `body` or
//! `query`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use custodian_core::CoreError;
use custodian_domain::{FieldError, ValidationErrors};
use custodian_ports::Page;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::{ApiError, ApiJson, Authenticated, BodyError};

/// An `/api/svc/v1` error: a use case's error, or a body refused before any use case ran.
#[derive(Debug)]
pub(crate) enum SvcError {
    Core(CoreError),
    Body(BodyError),
}

impl From<CoreError> for SvcError {
    fn from(error: CoreError) -> Self {
        SvcError::Core(error)
    }
}

impl From<ApiError> for SvcError {
    fn from(error: ApiError) -> Self {
        SvcError::Core(error.0)
    }
}

impl From<BodyError> for SvcError {
    fn from(error: BodyError) -> Self {
        SvcError::Body(error)
    }
}

impl SvcError {
    /// The `/api/svc/v1` error for a request extractor's failure ([`ApiJson`]'s is an
    /// `actix_web::Error` holding a [`BodyError`] or an [`ApiError`]).
    fn from_extractor(error: &actix_web::Error) -> Self {
        if let Some(body) = error.as_error::<BodyError>() {
            return SvcError::Body(*body);
        }
        if let Some(api) = error.as_error::<ApiError>() {
            return SvcError::Core(api.0.clone());
        }
        // The payload could not be read (the client went away, a broken chunk).
        SvcError::Core(CoreError::Validation(ValidationErrors::single(FieldError::new(
            &["body"],
            "json_invalid",
            "the body could not be read",
        ))))
    }

    fn code(&self) -> &'static str {
        match self {
            SvcError::Core(error) => error.code(),
            SvcError::Body(BodyError::TooLarge) => "payload_too_large",
            SvcError::Body(BodyError::NotJson) => "unsupported_media_type",
            SvcError::Body(BodyError::TimedOut) => "request_timeout",
        }
    }

    /// The sentence of the body. An internal error's message stays in the log.
    fn message(&self) -> String {
        match self {
            SvcError::Core(CoreError::Internal { .. }) => "an internal error occurred".to_owned(),
            SvcError::Core(CoreError::Unauthenticated) => "a valid bearer token is required".to_owned(),
            SvcError::Core(CoreError::Validation(_)) => "the request is not valid".to_owned(),
            SvcError::Core(CoreError::InvalidCredentials(_)) => {
                "the stored credentials are not valid for the auth method".to_owned()
            }
            SvcError::Core(other) => other.to_string(),
            SvcError::Body(body) => body.to_string(),
        }
    }

    fn details(&self) -> Vec<SvcFieldDetail> {
        match self {
            SvcError::Core(CoreError::Validation(errors) | CoreError::InvalidCredentials(errors)) => errors
                .errors()
                .iter()
                .map(|e| SvcFieldDetail {
                    loc: e.loc.clone(),
                    msg: e.msg.clone(),
                    kind: e.kind.to_owned(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for SvcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvcError::Core(error) => fmt::Display::fmt(error, f),
            SvcError::Body(error) => fmt::Display::fmt(error, f),
        }
    }
}

/// One failing field of a 422 answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SvcFieldDetail {
    /// Where the field is: `["body", "name"]`, `["query", "limit"]`.
    loc: Vec<String>,
    /// What is wrong, in a sentence.
    msg: String,
    /// The rule that failed (`missing`, `too_short`, `extra_forbidden`, …).
    #[serde(rename = "type")]
    kind: String,
}

/// Every `/api/svc/v1` error.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SvcErrorBody {
    /// The HTTP status, repeated.
    status_code: u16,
    /// What went wrong, in a sentence.
    message: String,
    /// A stable `snake_case` code (`not_found`, `validation_failed`, …).
    code: &'static str,
    /// With a 422: every failing field; empty otherwise.
    details: Vec<SvcFieldDetail>,
}

impl ResponseError for SvcError {
    fn status_code(&self) -> StatusCode {
        match self {
            SvcError::Core(error) => ApiError(error.clone()).status_code(),
            SvcError::Body(error) => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The `/v1` answer gives the status and the headers (and logs an internal error
        // once); the body is replaced by this API's shape.
        let base = match self {
            SvcError::Core(error) => ApiError(error.clone()).error_response(),
            SvcError::Body(error) => error.error_response(),
        };
        let body = SvcErrorBody {
            status_code: base.status().as_u16(),
            message: self.message(),
            code: self.code(),
            details: self.details(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        base.set_body(BoxBody::new(bytes))
    }
}

/// A successful `/api/svc/v1` body: `{"data": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Data<T> {
    pub(crate) data: T,
}

impl<T> Data<T> {
    pub(crate) fn new(data: T) -> Self {
        Data { data }
    }
}

/// Where a list page sits among every record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Pagination {
    /// How many records match, over every page.
    pub(crate) total: u64,
    /// The `offset` of the request.
    pub(crate) offset: u64,
    /// The `limit` of the request.
    pub(crate) limit: u32,
}

/// A list page: `{"data":[…],"pagination":{"total","offset","limit"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListData<T> {
    pub(crate) data: Vec<T>,
    pub(crate) pagination: Pagination,
}

impl<T> ListData<T> {
    /// One page of `items` (the whole list, in order) as `page` asks for it.
    pub(crate) fn slice_of<R>(items: Vec<R>, page: Page, item: impl FnMut(R) -> T) -> Self {
        let total = items.len() as u64;
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(page.limit).unwrap_or(usize::MAX);
        ListData {
            data: items.into_iter().skip(skip).take(take).map(item).collect(),
            pagination: Pagination {
                total,
                offset: page.offset,
                limit: page.limit,
            },
        }
    }
}

/// An empty object, the body of a delete: `{}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Empty {}

/// A use case's error on a request body: its failing fields under `body`.
pub(crate) fn in_body(error: CoreError) -> SvcError {
    SvcError::from(crate::fields::in_body(error))
}

/// The authenticated caller; a refusal answers 401 in this API's shape.
#[derive(Debug)]
pub(crate) struct SvcCaller(pub(crate) Authenticated);

impl FromRequest for SvcCaller {
    type Error = SvcError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Authenticated::from_request(req, payload);
        Box::pin(async move { caller.await.map(SvcCaller).map_err(SvcError::from) })
    }
}

/// A JSON body as [`ApiJson`] reads it; its refusals in this API's shape.
#[derive(Debug)]
pub(crate) struct SvcJson<T>(pub(crate) T);

impl<T: DeserializeOwned + 'static> FromRequest for SvcJson<T> {
    type Error = SvcError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = ApiJson::<T>::from_request(req, payload);
        Box::pin(async move {
            body.await
                .map(|b| SvcJson(b.into_inner()))
                .map_err(|e| SvcError::from_extractor(&e))
        })
    }
}

/// Query parameters as [`ApiQuery`] reads them; a bad one answers 422 in this API's shape.
#[derive(Debug)]
pub(crate) struct SvcQuery<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest for SvcQuery<T> {
    type Error = SvcError;
    type Future = std::future::Ready<Result<Self, SvcError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let parsed = crate::extract::decode_query::<T>(req.query_string());
        std::future::ready(parsed.map(SvcQuery).map_err(SvcError::from))
    }
}

/// A path id; one that cannot be an id answers 404 in this API's shape.
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, SvcError> {
    crate::extract::parse_id(raw).map_err(SvcError::from)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::body::to_bytes;
    use actix_web::http::header;

    use super::*;

    async fn answer(error: SvcError) -> (StatusCode, HttpResponse<()>, serde_json::Value) {
        let response = error.error_response();
        let status = response.status();
        let (head, body) = response.into_parts();
        let bytes = to_bytes(body).await.unwrap();
        (status, head, serde_json::from_slice(&bytes).unwrap())
    }

    #[actix_web::test]
    async fn a_refused_token_is_401_with_the_bearer_challenge_in_the_svc_shape() {
        let (status, head, body) = answer(CoreError::Unauthenticated.into()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(head.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
        assert_eq!(
            body,
            serde_json::json!({
                "statusCode": 401,
                "message": "a valid bearer token is required",
                "code": "unauthenticated",
                "details": [],
            })
        );
    }

    #[actix_web::test]
    async fn a_validation_error_lists_every_field_in_details() {
        let mut errors = ValidationErrors::new();
        errors.push(FieldError::new(&["body", "name"], "too_short", "is too short"));
        errors.push(FieldError::new(
            &["body", "expirationDate"],
            "out_of_range",
            "must be in the future",
        ));
        let (status, _, body) = answer(CoreError::Validation(errors).into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["statusCode"], 422);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["details"][0]["loc"], serde_json::json!(["body", "name"]));
        assert_eq!(body["details"][0]["type"], "too_short");
        assert_eq!(body["details"][1]["msg"], "must be in the future");
    }

    #[actix_web::test]
    async fn an_internal_error_keeps_its_message_out_of_the_answer() {
        let (status, _, body) = answer(CoreError::internal("database: row 7 is corrupt").into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["code"], "internal_error");
        assert!(!body.to_string().contains("row 7"), "{body}");
    }

    #[actix_web::test]
    async fn unavailable_keeps_retry_after_and_refused_bodies_keep_their_status() {
        let (status, head, body) = answer(
            CoreError::Unavailable {
                cause: None,
                what: "the database",
                message: "timed out".into(),
                retry_after: Some(Duration::from_secs(3)),
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(head.headers().get(header::RETRY_AFTER).unwrap(), "3");
        assert_eq!(body["code"], "service_unavailable");

        let (status, _, body) = answer(BodyError::TooLarge.into()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["statusCode"], 413);
        assert_eq!(body["code"], "payload_too_large");
        let (status, _, body) = answer(BodyError::NotJson.into()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["code"], "unsupported_media_type");
    }

    #[test]
    fn a_list_page_is_sliced_from_the_whole_list() {
        let page = ListData::slice_of(vec![1, 2, 3, 4, 5], Page { limit: 2, offset: 3 }, |n| n * 10);
        assert_eq!(page.data, [40, 50]);
        assert_eq!(page.pagination.total, 5);
        let past_the_end = ListData::slice_of(vec![1], Page { limit: 2, offset: 9 }, |n: i32| n);
        assert!(past_the_end.data.is_empty());
        assert_eq!(past_the_end.pagination.total, 1);
    }
}
