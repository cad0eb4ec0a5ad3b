//! Integration tests of `custodian-domain`: every rule of the credential schemas and the storage-secret and vault-connection rules,
//! checked against expectations written here from the published API reference, not from the code.

mod support;

mod credentials;
mod locations;
mod matrix;
mod props;
mod secrets;
mod teams;
mod text;
mod vault;
