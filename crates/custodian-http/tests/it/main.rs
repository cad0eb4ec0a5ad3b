//! The routes over the core and the in-memory repositories, through actix's test service.

mod docs;
mod identity;
mod openapi;
mod rate_limit;
mod routes;
mod storage;
mod support;
