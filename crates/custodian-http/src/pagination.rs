//! Lists: `limit` (1–200, default 50) and `offset` (0–2^53−1, default 0) in, and
//! `{"items":[…],"total":N,"limit":L,"offset":O}` out.

use custodian_core::CoreError;
use custodian_domain::{FieldError, ValidationErrors};
use custodian_ports::{Page, Paged};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;

/// The largest `limit` a list accepts.
pub(crate) const MAX_LIMIT: u32 = 200;
/// The `limit` of a list that does not give one.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// The largest `offset` a list accepts: 2^53 − 1, the largest integer every JSON client
/// reads exactly (a JavaScript number), well inside the `int64` the document names.
pub(crate) const MAX_OFFSET: u64 = (1 << 53) - 1;

/// The page a list asks for; 422 under `["query","limit"]` when `limit` is out of 1–200,
/// and under `["query","offset"]` when `offset` is over [`MAX_OFFSET`] (both when both are).
pub(crate) fn page(limit: Option<u32>, offset: Option<u64>) -> Result<Page, ApiError> {
    page_in("query", limit, offset, DEFAULT_LIMIT, MAX_LIMIT)
}

/// The page a list asks for in `part` (`query`, or `body` for a list that is a POST), with
/// its own default and largest `limit`; 422 under `[part, "limit"]` or `[part, "offset"]`.
pub(crate) fn page_in(
    part: &str,
    limit: Option<u32>,
    offset: Option<u64>,
    default_limit: u32,
    max_limit: u32,
) -> Result<Page, ApiError> {
    let limit = limit.unwrap_or(default_limit);
    let offset = offset.unwrap_or(0);
    let mut errors = ValidationErrors::new();
    if !(1..=max_limit).contains(&limit) {
        errors.push(FieldError::new(
            &[part, "limit"],
            "out_of_range",
            format!("must be between 1 and {max_limit}"),
        ));
    }
    if offset > MAX_OFFSET {
        errors.push(FieldError::new(
            &[part, "offset"],
            "out_of_range",
            format!("must be between 0 and {MAX_OFFSET}"),
        ));
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors).into());
    }
    Ok(Page { limit, offset })
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListBody<T> {
    /// The records of this page.
    pub(crate) items: Vec<T>,
    /// How many records match, over every page.
    pub(crate) total: u64,
    /// The `limit` of the request.
    pub(crate) limit: u32,
    /// The `offset` of the request.
    #[schema(maximum = 9_007_199_254_740_991_u64)]
    pub(crate) offset: u64,
}

impl<T> ListBody<T> {
    /// The body for `paged`, asked for as `page`, each item turned into its response.
    pub(crate) fn new<R>(paged: Paged<R>, page: Page, item: impl FnMut(R) -> T) -> Self {
        ListBody {
            items: paged.items.into_iter().map(item).collect(),
            total: paged.total,
            limit: page.limit,
            offset: page.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_50_and_must_be_1_to_200() {
        assert_eq!(page(None, None).unwrap(), Page { limit: 50, offset: 0 });
        assert_eq!(page(Some(200), Some(7)).unwrap(), Page { limit: 200, offset: 7 });
        for bad in [0, 201] {
            match page(Some(bad), None) {
                Err(ApiError(CoreError::Validation(e))) => assert_eq!(e.errors()[0].loc, ["query", "limit"]),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn offset_is_at_most_2_pow_53_minus_1() {
        assert_eq!(page(None, Some(MAX_OFFSET)).unwrap().offset, 9_007_199_254_740_991);
        for bad in [MAX_OFFSET + 1, u64::MAX] {
            match page(None, Some(bad)) {
                Err(ApiError(CoreError::Validation(e))) => assert_eq!(e.errors()[0].loc, ["query", "offset"]),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match page(Some(0), Some(u64::MAX)) {
            Err(ApiError(CoreError::Validation(e))) => assert_eq!(e.errors().len(), 2, "both at once"),
            other => panic!("{other:?}"),
        }
    }
}
