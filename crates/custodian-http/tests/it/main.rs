//! The routes over the core and the in-memory repositories, through actix's test service.

mod identity;
mod openapi;
mod routes;
mod storage;
mod support;
