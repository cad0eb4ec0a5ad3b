//! Fresh stores for the contract suites.
