//! Request extractors with the API's own error shapes.
//!
//! - [`ApiJson`]: a JSON body of at most [`MAX_BODY_BYTES`] (413 beyond), with
//!   `Content-Type: application/json` (415 otherwise); a body that does not deserialize
//!   (unknown field, wrong type, malformed JSON) answers 422 with the failing field's `loc`.
//! - [`ApiQuery`]: query parameters; a bad one answers 422 under `["query", name]`.
//! - [`parse_id`]: a path id; one that cannot be an id answers 404, like any id that
//!   names nothing.
//!
//! serde's messages quote the offending value (`invalid type: string "…"`); the messages
//! built here never do, so a credential sent in the wrong place is not echoed back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use custodian_core::CoreError;
use custodian_domain::{FieldError, ValidationErrors};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The largest request body the API reads (64 KiB).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a body may take to arrive when the state does not say.
pub(crate) const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How much of a too-large body is read and dropped before the 413, so that the client,
/// still sending, reads the answer instead of a reset connection.
const DRAIN_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// A request the API refuses before any use case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// 413 `payload_too_large`.
    TooLarge,
    /// 415 `unsupported_media_type`.
    NotJson,
    /// 408 `request_timeout`: the body did not arrive in time.
    TimedOut,
}

#[derive(Serialize)]
struct BodyErrorBody {
    detail: String,
    code: &'static str,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge => write!(f, "the request body is larger than {MAX_BODY_BYTES} bytes"),
            BodyError::NotJson => f.write_str("the request body must be JSON (Content-Type: application/json)"),
            BodyError::TimedOut => f.write_str("the request body did not arrive in time"),
        }
    }
}

impl ResponseError for BodyError {
    fn status_code(&self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            BodyError::TooLarge => "payload_too_large",
            BodyError::NotJson => "unsupported_media_type",
            BodyError::TimedOut => "request_timeout",
        };
        let mut response = HttpResponse::build(self.status_code());
        if *self == BodyError::TimedOut {
            // What is left of the body will not be read: the connection cannot be reused.
            response.force_close();
        }
        response.json(BodyErrorBody {
            detail: self.to_string(),
            code,
        })
    }
}

/// A JSON request body, deserialized with the failing field's path on error.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T> ApiJson<T> {
    /// The deserialized body.
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let too_long = declared_length(req).is_some_and(|n| n > MAX_BODY_BYTES);
        let mut payload = payload.take();
        let timeout = req
            .app_data::<web::Data<crate::ApiState>>()
            .map_or(DEFAULT_BODY_TIMEOUT, |state| state.body_timeout);
        Box::pin(async move {
            let mut body = web::BytesMut::new();
            let mut read = 0usize;
            let deadline = actix_web::rt::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(actix_web::rt::time::Instant::now());
                let next = actix_web::rt::time::timeout(left, payload.next()).await;
                let Ok(next) = next else {
                    return Err(BodyError::TimedOut.into());
                };
                let Some(chunk) = next else { break };
                let chunk = chunk?;
                read += chunk.len();
                if too_long || read > MAX_BODY_BYTES {
                    // Read on (and drop) what the client is still sending, up to a bound:
                    // closing a socket with unread data resets the connection, and the
                    // client would never see the 413.
                    if read > DRAIN_LIMIT_BYTES {
                        break;
                    }
                    continue;
                }
                body.extend_from_slice(&chunk);
            }
            if too_long || read > MAX_BODY_BYTES {
                return Err(BodyError::TooLarge.into());
            }
            if !json {
                return Err(BodyError::NotJson.into());
            }
            decode_body(&body).map(ApiJson).map_err(|e| ApiError::from(e).into())
        })
    }
}

/// Deserialize a JSON body; on failure, a validation error at the failing path. The body
/// must be one JSON object in which no object repeats a key: an array would be matched to
/// the fields by position, and a repeated key would let the last one win silently.
pub(crate) fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CoreError> {
    check_shape(body)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let failure = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => match de.end() {
            Ok(()) => return Ok(value),
            Err(trailing) => (Vec::new(), trailing),
        },
        Err(error) => (path_segments(error.path()), error.into_inner()),
    };
    let (path, inner) = failure;
    let mut loc = vec!["body".to_owned()];
    loc.extend(path);
    let (kind, msg, field) = describe(&inner);
    // serde names a missing (or unknown) field in its message, not in the path.
    if let Some(field) = field.filter(|f| loc.last() != Some(f)) {
        loc.push(field);
    }
    Err(CoreError::Validation(ValidationErrors::single(field_error(
        loc, kind, msg,
    ))))
}

/// The body is one JSON object, and no object in it repeats a key (422 otherwise, at the
/// object that repeats it). Malformed JSON is left to the typed decoding, which says so.
fn check_shape(body: &[u8]) -> Result<(), CoreError> {
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| b != b'{') {
        return Err(CoreError::Validation(ValidationErrors::single(FieldError::new(
            &["body"],
            "type_error",
            "the body must be a JSON object",
        ))));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, UniqueKeys>(&mut de) {
        Ok(UniqueKeys) => Ok(()),
        Err(error) => {
            let text = error.inner().to_string();
            let Some(key) = text
                .strip_prefix(DUPLICATE_KEY)
                .and_then(|rest| rest.split(" at line ").next())
            else {
                return Ok(());
            };
            let mut loc = vec!["body".to_owned()];
            loc.extend(path_segments(error.path()));
            loc.push(key.to_owned());
            Err(CoreError::Validation(ValidationErrors::single(field_error(
                loc,
                "duplicate_key",
                format!("the key `{key}` appears more than once"),
            ))))
        }
    }
}

const DUPLICATE_KEY: &str = "duplicate key ";

/// Any JSON value, read only to find an object that repeats a key; nothing is kept.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE_KEY}{}", printable(&key))));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

/// A name the client sent (a parameter or a field), as it may appear in an answer or a log
/// line: control characters escaped, so a name cannot forge a log line.
pub(crate) fn printable(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn field_error(loc: Vec<String>, kind: &'static str, msg: String) -> FieldError {
    let parts: Vec<&str> = loc.iter().map(String::as_str).collect();
    FieldError::new(&parts, kind, msg)
}

fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(printable(key)),
            Segment::Enum { variant } => Some(printable(variant)),
            Segment::Unknown => None,
        })
        .collect()
}

/// A type and message for a serde error that never quote the value that was sent, and the
/// field it names when it is about a missing or unknown field.
fn describe(error: &serde_json::Error) -> (&'static str, String, Option<String>) {
    use serde_json::error::Category;
    let text = error.to_string();
    // serde_json appends " at line L column C"; the location is of no use to a client.
    let text = text.split(" at line ").next().unwrap_or("").to_owned();
    match error.classify() {
        Category::Syntax | Category::Eof => ("json_invalid", "the body is not valid JSON".to_owned(), None),
        Category::Io => ("json_invalid", "the body could not be read".to_owned(), None),
        Category::Data => {
            if let Some(rest) = text.strip_prefix("unknown field ") {
                let field = printable(rest.split(',').next().unwrap_or("").trim_matches('`'));
                ("extra_forbidden", format!("unknown field `{field}`"), Some(field))
            } else if let Some(rest) = text.strip_prefix("missing field ") {
                let field = printable(rest.trim_matches('`'));
                ("missing", "is required".to_owned(), Some(field))
            } else if let Some((_, expected)) = text.rsplit_once(", expected ") {
                ("type_error", format!("expected {expected}"), None)
            } else {
                ("value_error", "has an invalid value".to_owned(), None)
            }
        }
    }
}

/// Query parameters, with 422 `["query", name]` when one does not parse.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T> ApiQuery<T> {
    /// The parsed parameters.
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(decode_query(req.query_string()).map(ApiQuery).map_err(ApiError::from))
    }
}

/// Parse a query string; on failure, a validation error under `["query", …]`. No
/// parameter may hold a NUL character: no database keeps one in text, and PostgreSQL
/// refuses it outright.
pub(crate) fn decode_query<T: DeserializeOwned>(query: &str) -> Result<T, CoreError> {
    let nul = form_urlencoded::parse(query.as_bytes()).find(|(n, v)| n.contains('\0') || v.contains('\0'));
    if let Some((name, _)) = nul {
        return Err(CoreError::Validation(ValidationErrors::single(field_error(
            vec!["query".to_owned(), printable(&name)],
            "invalid_characters",
            "must not contain a NUL character".to_owned(),
        ))));
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(value) => Ok(value),
        Err(error) => {
            let mut loc = vec!["query".to_owned()];
            loc.extend(path_segments(error.path()));
            let text = error.into_inner().to_string();
            let (kind, msg) = if let Some(rest) = text.strip_prefix("unknown field ") {
                let field = printable(rest.split(',').next().unwrap_or("").trim_matches('`'));
                if loc.last() != Some(&field) {
                    loc.push(field.clone());
                }
                ("extra_forbidden", format!("unknown parameter `{field}`"))
            } else if let Some(rest) = text.strip_prefix("missing field ") {
                let field = rest.trim_matches('`').to_owned();
                loc.push(field.clone());
                ("missing", format!("parameter `{field}` is required"))
            } else {
                ("type_error", "has an invalid value".to_owned())
            };
            Err(CoreError::Validation(ValidationErrors::single(field_error(
                loc, kind, msg,
            ))))
        }
    }
}

/// A path id; one that cannot be an id answers 404, as an id that names nothing does.
pub(crate) fn parse_id<T: FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError(CoreError::NotFound))
}

/// The two ids of a `/{team_id}/…/{id}` path, each as [`parse_id`] reads it.
pub(crate) fn parse_ids<A: FromStr, B: FromStr>(path: &(String, String)) -> Result<(A, B), ApiError> {
    Ok((parse_id(&path.0)?, parse_id(&path.1)?))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        count: u32,
    }

    fn error_of(body: &str) -> FieldError {
        match decode_body::<Body>(body.as_bytes()) {
            Err(CoreError::Validation(errors)) => errors.errors()[0].clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_names_its_path_and_never_quotes_the_value() {
        let e = error_of(r#"{"name":"n","inner":{"count":"canary-value-7"}}"#);
        assert_eq!(e.loc, ["body", "inner", "count"]);
        assert_eq!(e.kind, "type_error");
        assert!(!e.msg.contains("canary-value-7"), "{}", e.msg);
    }

    #[test]
    fn an_unknown_field_is_named() {
        let e = error_of(r#"{"name":"n","colour":"red"}"#);
        assert_eq!(e.kind, "extra_forbidden");
        assert_eq!(e.loc, ["body", "colour"]);
        assert!(e.msg.contains("colour"), "{}", e.msg);
    }

    #[test]
    fn a_missing_field_and_malformed_json_are_validation_errors() {
        let missing = error_of(r#"{}"#);
        assert_eq!(missing.kind, "missing");
        assert_eq!(missing.loc, ["body", "name"]);
        assert_eq!(error_of(r#"{"name":"n","inner":{}}"#).loc, ["body", "inner", "count"]);
        let e = error_of(r#"{"name": "secret-canary"#);
        assert_eq!(e.kind, "json_invalid");
        assert!(!e.msg.contains("secret-canary"));
        assert_eq!(error_of(r#"{"name":"n"} trailing"#).kind, "json_invalid");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        limit: Option<u32>,
        search: Option<String>,
    }

    #[test]
    fn query_parameters_parse_into_their_types() {
        let q: Query = decode_query("limit=20&search=a%20b").unwrap();
        assert_eq!(q.limit, Some(20));
        assert_eq!(q.search.as_deref(), Some("a b"));
        let q: Query = decode_query("").unwrap();
        assert!(q.limit.is_none());
    }

    #[test]
    fn a_bad_query_parameter_is_named_under_query() {
        match decode_query::<Query>("limit=lots") {
            Err(CoreError::Validation(errors)) => {
                assert_eq!(errors.errors()[0].loc, ["query", "limit"]);
            }
            other => panic!("{other:?}"),
        }
        match decode_query::<Query>("colour=red") {
            Err(CoreError::Validation(errors)) => {
                assert_eq!(errors.errors()[0].loc, ["query", "colour"]);
                assert_eq!(errors.errors()[0].kind, "extra_forbidden");
            }
            other => panic!("{other:?}"),
        }
    }

    fn query_error(query: &str) -> FieldError {
        match decode_query::<Query>(query) {
            Err(CoreError::Validation(errors)) => errors.errors()[0].clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_nul_in_any_query_parameter_is_refused_naming_it() {
        let e = query_error("limit=5&search=a%00b");
        assert_eq!(e.loc, ["query", "search"]);
        assert_eq!(e.kind, "invalid_characters");
        // In a parameter's name too, which is shown escaped.
        assert_eq!(query_error("sea%00rch=x").loc, ["query", "sea\\u{0}rch"]);
    }

    #[test]
    fn names_sent_by_the_client_cannot_forge_a_log_line() {
        let e = query_error("x%0A2026-12-04T00:00:00Z%20INFO%20FORGED=1");
        assert_eq!(e.kind, "extra_forbidden");
        let shown = format!("{} {}", e.loc.join("."), e.msg);
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.contains("x\\n2026"), "{shown}");
        let e = error_of("{\"name\":\"n\",\"a\\nINFO forged\":1}");
        assert!(!format!("{:?} {}", e.loc, e.msg).contains('\n'), "{e:?}");
    }

    #[test]
    fn a_body_must_be_an_object() {
        for body in [r#"["x@x.com","Arr",true]"#, "null", "\"text\"", "7"] {
            let e = error_of(body);
            assert_eq!(e.loc, ["body"], "{body}");
            assert_eq!(e.kind, "type_error", "{body}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_naming_it_where_it_repeats() {
        let e = error_of(r#"{"name":"a","name":"b"}"#);
        assert_eq!(e.loc, ["body", "name"]);
        assert_eq!(e.kind, "duplicate_key");
        let e = error_of(r#"{"name":"a","inner":{"count":1,"count":2}}"#);
        assert_eq!(e.loc, ["body", "inner", "count"]);
        // The same key in two objects is no repetition.
        let ok: Result<Body, _> = decode_body(br#"{"name":"a","inner":{"count":1}}"#);
        assert!(ok.is_ok());
    }
}
