//! The adapters against local fakes of each provider.

mod doppler;
mod doppler_cli;
mod infisical;
mod infisical_sdk;
mod onepassword;
