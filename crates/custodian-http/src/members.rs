//! Routes of `members` (SPEC §5).

use actix_web::web;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi()]
pub(crate) struct Doc;

pub(crate) fn configure(_cfg: &mut web::ServiceConfig) {}
