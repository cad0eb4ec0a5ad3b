//! The use cases of Custodian. They depend on `custodian-domain` and `custodian-ports`
//! only; the crate is in the workspace so the architecture checks cover it from the start.
