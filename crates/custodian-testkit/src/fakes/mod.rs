//! Local fakes of the external services the adapters talk to, each answering as
//! `PROVIDERS.md` documents the real one.

pub mod infisical;
