//! The adapters against local fakes of each provider.

mod infisical;
mod infisical_sdk;
