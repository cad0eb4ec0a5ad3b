//! Local fakes of the vault providers (their HTTP APIs, and the 1Password CLI), answering as the providers document,
//! for the adapters' tests and any other test that needs a provider on `127.0.0.1`.

pub mod doppler;
pub mod infisical;
pub mod onepassword;
