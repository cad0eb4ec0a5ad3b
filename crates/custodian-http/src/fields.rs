//! Wire pieces every route module shares: where a field error is placed (`body`,
//! `query`), fields a body must hold, the absent-or-`null` distinction of PATCH bodies,
//! and strings read straight into `SecretString`.

use custodian_core::CoreError;
use custodian_domain::{FieldError, ValidationErrors, error::kind};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use crate::ApiError;

/// A field error of the core, whose `loc` is relative to the body, placed under `"body"`.
/// Errors already placed (under `"body"`, `"query"` or `"path"`) stay as they are.
pub(crate) fn in_body(error: CoreError) -> ApiError {
    placed_under("body", error)
}

/// A field error of the core about a path parameter (its `loc` is the parameter's name),
/// placed under `"path"`.
pub(crate) fn in_path(error: CoreError) -> ApiError {
    placed_under("path", error)
}

/// A field error of the core about a query parameter (its `loc` is the parameter's
/// name), placed under `"query"`.
pub(crate) fn in_query(error: CoreError) -> ApiError {
    placed_under("query", error)
}

/// The core's field errors placed under `part`; those already placed (under `"body"`,
/// `"query"` or `"path"`) stay as they are.
fn placed_under(part: &str, error: CoreError) -> ApiError {
    match error {
        CoreError::Validation(errors) => {
            let mut placed = ValidationErrors::new();
            for e in errors.into_errors() {
                let known = matches!(e.loc.first().map(String::as_str), Some("body" | "query" | "path"));
                placed.push(if known { e } else { e.under(part) });
            }
            ApiError(CoreError::Validation(placed))
        }
        other => ApiError(other),
    }
}

/// A 422 at `["query", name]` for a parameter that names no known value.
pub(crate) fn query_error(name: &str, kind: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError(CoreError::Validation(ValidationErrors::single(FieldError::new(
        &["query", name],
        kind,
        msg,
    ))))
}

/// A query parameter naming one value of an enum; 422 at `["query", name]` otherwise.
pub(crate) fn parse_query_enum<T>(name: &str, value: Option<&str>) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr<Err = custodian_domain::UnknownVariant>,
{
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| query_error(name, "invalid_enum", e.to_string()))
        })
        .transpose()
}

/// `Some(None)` for an explicit `null`, `Some(Some(v))` for a value; with
/// `#[serde(default)]` an absent field stays `None`. PATCH bodies use it for the fields
/// that `null` clears.
pub(crate) fn absent_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A string read straight into a `SecretString` (`null` is `None`).
pub(crate) fn secret_string<'de, D>(deserializer: D) -> Result<Option<SecretString>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(deserializer)?.map(SecretString::from))
}

/// A field the body must hold: 422 `missing` at `["body", field]` when it does not.
///
/// Request bodies take every field as optional and leave the "is it there" check to this
/// function or to the core, so a 422 lists every failing field at once, each at its own
/// `loc` (serde would stop at the first missing field).
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError(CoreError::Validation(ValidationErrors::single(FieldError::new(
            &["body", field],
            kind::MISSING,
            "is required",
        ))))
    })
}
