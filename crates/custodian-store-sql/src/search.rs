//! Case-insensitive substring search, the same on both backends: `lower(column) LIKE
//! '%…%' ESCAPE '\'` with the search text lower-cased and its `%`, `_` and `\` escaped, so
//! they match themselves.
//!
//! Case folds ASCII letters only: SQLite's `lower()` and `LIKE` know no other, nor does
//! PostgreSQL's `lower()` on the `"C"`-collated name columns. The search text is folded
//! the same way (never with Unicode's rules, which would turn a character the columns keep,
//! such as the Kelvin sign, into an ASCII letter), so other characters match exactly, on
//! every backend alike. The storage-secret and secret-group searches both use this module.

use diesel::sql_types::Text;

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    fn lower(x: Text) -> Text;
}

/// The `LIKE` pattern (escape character `\`) matching names that contain `search`,
/// ignoring case.
pub(crate) fn contains_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn pattern_escapes_wildcards_and_lowercases() {
        assert_eq!(contains_pattern("Ab"), "%ab%");
        assert_eq!(contains_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern("ÜNÏ-X"), "%ÜnÏ-x%");
        assert_eq!(
            contains_pattern("\u{212A}AFKA"),
            "%\u{212A}afka%",
            "the Kelvin sign is no K"
        );
    }
}
