//! Validation errors: every failing field, with its path, reported at once.

use std::fmt;

/// One failing field: where it is, what rule it broke, and a machine-readable kind.
///
/// `loc` is relative to the input that was parsed (`["credentials", "access_key_id"]`);
/// the HTTP layer prefixes it with `"body"` or `"query"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
    pub kind: &'static str,
}

impl FieldError {
    pub fn new(loc: &[&str], kind: &'static str, msg: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
            kind,
        }
    }

    /// The same error one level deeper (`at("credentials")` turns `["x"]` into `["credentials", "x"]`).
    #[must_use]
    pub fn under(mut self, parent: &str) -> Self {
        self.loc.insert(0, parent.to_owned());
        self
    }

    pub fn path(&self) -> String {
        self.loc.join(".")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path(), self.msg)
    }
}

/// Every field that failed validation. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        write!(f, "invalid input: {}", parts.join("; "))
    }
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(error: FieldError) -> Self {
        Self { errors: vec![error] }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn extend(&mut self, other: ValidationErrors) {
        self.errors.extend(other.errors);
    }

    /// Keep the value of a successful parse, or record its errors (prefixed with `parent`).
    pub fn collect<T>(&mut self, parent: Option<&str>, result: Result<T, ValidationErrors>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(errs) => {
                for e in errs.errors {
                    self.push(match parent {
                        Some(p) => e.under(p),
                        None => e,
                    });
                }
                None
            }
        }
    }

    /// Like [`collect`](Self::collect) for a parse that fails with a single field error.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// `Ok(value)` when nothing failed, else these errors.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() { Ok(value()) } else { Err(self) }
    }

    /// Whether some error sits at exactly this path (handy in tests and mapping).
    pub fn has(&self, path: &[&str]) -> bool {
        self.errors
            .iter()
            .any(|e| e.loc.iter().map(String::as_str).eq(path.iter().copied()))
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(error: FieldError) -> Self {
        Self::single(error)
    }
}

/// Error kinds used in [`FieldError::kind`]; stable strings that clients may match on.
pub mod kind {
    pub const MISSING: &str = "missing";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const TOO_SHORT: &str = "too_short";
    pub const TOO_LONG: &str = "too_long";
    pub const BLANK: &str = "blank";
    pub const WHITESPACE: &str = "whitespace_padded";
    pub const INVALID_ENUM: &str = "invalid_enum";
    pub const INVALID_FORMAT: &str = "invalid_format";
    pub const INVALID_PAIR: &str = "invalid_combination";
    pub const DUPLICATE: &str = "duplicate";
    pub const NOT_ALLOWED: &str = "not_allowed";
    pub const EXPIRED: &str = "expired";
    pub const NOT_FOUND: &str = "not_found";
    pub const OUT_OF_RANGE: &str = "out_of_range";
}
