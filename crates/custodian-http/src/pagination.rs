//! Lists: `limit` (1–200, default 50) and `offset` in, and
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

/// The page a list asks for; 422 under `["query","limit"]` when `limit` is out of 1–200.
pub(crate) fn page(limit: Option<u32>, offset: Option<u64>) -> Result<Page, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let error = FieldError::new(
            &["query", "limit"],
            "out_of_range",
            format!("must be between 1 and {MAX_LIMIT}"),
        );
        return Err(CoreError::Validation(ValidationErrors::single(error)).into());
    }
    Ok(Page {
        limit,
        offset: offset.unwrap_or(0),
    })
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
}
