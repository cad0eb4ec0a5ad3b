//! Bounded, checked strings: a `Name` that breaks its bounds cannot exist.

use std::fmt;

use crate::error::{FieldError, ValidationErrors, kind};

/// Which characters a bounded text may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// One line: no control characters (a NUL or a line break in a name is never meant,
    /// and PostgreSQL cannot store a NUL at all).
    SingleLine,
    /// Free text: tabs and line breaks allowed, other control characters not.
    MultiLine,
    /// An identifier given by a provider (bucket, region): no whitespace at all.
    Token,
}

impl Charset {
    fn check(self, loc: &str, value: &str) -> Result<(), FieldError> {
        let (bad, msg): (fn(char) -> bool, &str) = match self {
            Charset::SingleLine => (
                char::is_control,
                "must not contain control characters such as line breaks",
            ),
            Charset::MultiLine => (
                |c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'),
                "must not contain control characters other than tabs and line breaks",
            ),
            Charset::Token => (
                |c| c.is_control() || c.is_whitespace(),
                "must not contain whitespace or control characters",
            ),
        };
        if value.chars().any(bad) {
            return Err(FieldError::new(&[loc], kind::INVALID_FORMAT, msg));
        }
        Ok(())
    }
}

/// Check a one-line value: length in characters within `min..=max`, (when `min > 0`) not
/// blank and not padded with whitespace, and no control characters.
pub(crate) fn bounded(loc: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    bounded_as(loc, value, min, max, Charset::SingleLine)
}

/// [`bounded`] with the characters of `charset`.
pub(crate) fn bounded_as(loc: &str, value: &str, min: usize, max: usize, charset: Charset) -> Result<(), FieldError> {
    let len = value.chars().count();
    if min > 0 && value.trim().is_empty() {
        return Err(FieldError::new(
            &[loc],
            kind::BLANK,
            "must not be empty or only whitespace",
        ));
    }
    if len < min {
        return Err(FieldError::new(
            &[loc],
            kind::TOO_SHORT,
            format!("must be at least {min} characters"),
        ));
    }
    if len > max {
        return Err(FieldError::new(
            &[loc],
            kind::TOO_LONG,
            format!("must be at most {max} characters"),
        ));
    }
    if min > 0 && value.trim() != value {
        return Err(FieldError::new(
            &[loc],
            kind::WHITESPACE,
            "must not start or end with whitespace",
        ));
    }
    charset.check(loc, value)
}

macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident, $min:expr, $max:expr, $charset:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;

            /// Parse `value`, reporting a failure at path `[loc]`.
            pub fn parse_at(loc: &str, value: impl Into<String>) -> Result<Self, FieldError> {
                let value = value.into();
                bounded_as(loc, &value, $min, $max, $charset)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_type!(
    /// A resource name: secret, location, vault connection, team (1–255 characters).
    Name, 1, 255, Charset::SingleLine
);
text_type!(
    /// A free-text description (at most 2000 characters; may be empty; tabs and line breaks allowed).
    Description, 0, 2000, Charset::MultiLine
);
text_type!(
    /// A person's display name (1–255 characters).
    DisplayName, 1, 255, Charset::SingleLine
);
impl Description {
    /// A description in an update, at `description`: absent (`None`) keeps it, `null`
    /// (`Some(None)`) clears it, a text replaces it once it passes the rule. A failing text
    /// is pushed to `errors` and gives `None`, as if absent.
    pub fn parse_patch(errors: &mut ValidationErrors, value: Option<Option<String>>) -> Option<Option<Self>> {
        match value {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => errors.check(Self::parse_at("description", d)).map(Some),
        }
    }
}

impl DisplayName {
    /// The display name a user gets when none is given: the local part of their email
    /// (`ada` for `ada@example.com`), checked like any display name at `display_name`.
    pub fn from_email(email: &Email) -> Result<Self, FieldError> {
        let local = email.as_str().split('@').next().unwrap_or_default();
        Self::parse_at("display_name", local)
    }
}

text_type!(
    /// A bucket or container name as the provider spells it (1–255 characters, no whitespace).
    BucketName, 1, 255, Charset::Token
);
text_type!(
    /// A provider region (1–64 characters, no whitespace).
    Region, 1, 64, Charset::Token
);

/// An email address, stored lower-cased (unique per deployment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    /// Parse `value`, reporting a failure at path `[loc]`. The address is lower-cased
    /// first and every rule (length included) holds for the lower-cased form, so parsing
    /// a stored address again gives the same address.
    pub fn parse_at(loc: &str, value: &str) -> Result<Self, FieldError> {
        let lowered = value.to_lowercase();
        let value = lowered.as_str();
        bounded(loc, value, 3, Self::MAX_CHARS)?;
        let (local, domain) = value
            .rsplit_once('@')
            .ok_or_else(|| FieldError::new(&[loc], kind::INVALID_FORMAT, "must be an email address (local@domain)"))?;
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.chars().any(char::is_whitespace) || !domain_ok {
            return Err(FieldError::new(
                &[loc],
                kind::INVALID_FORMAT,
                "must be an email address (local@domain)",
            ));
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A token name chosen by its owner: 3–36 characters of `[a-z][a-z0-9-]*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse_at(loc: &str, value: &str) -> Result<Self, FieldError> {
        bounded(loc, value, 3, 36)?;
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(FieldError::new(
                &[loc],
                kind::INVALID_FORMAT,
                "must start with a lowercase letter and hold only lowercase letters, digits and '-'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
