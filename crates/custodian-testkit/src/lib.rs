//! Test support shared by every storage adapter.
//!
//! - [`RepoSet`]: one of each repository port, all over the same store, so the suites can
//!   follow a record across ports (a secret needs its team, a location its secret).
//! - [`tokens`]: the token issuer every test uses (real `cus_` tokens, a fixed pepper).
//! - [`contract`]: one suite per storage port. A suite is a list of named [`Case`]s; an
//!   adapter's test runs every case on a fresh, empty store with [`run_cases`]. The same
//!   suites run against the in-memory fakes, SQLite and PostgreSQL.
//! - [`fakes`]: local fakes of the vault providers' HTTP APIs (Doppler, Infisical).

use std::future::Future;
use std::pin::Pin;

pub mod contract;
pub mod fakes;
pub mod memory;
pub mod memory_cleanup;
pub mod memory_groups;
pub mod memory_store;
pub mod tokens;

/// One of each repository port over one store: the ports' own bundle, under the name
/// the suites use for it.
pub type RepoSet = custodian_ports::Repositories;

/// A boxed future, as the cases return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One named case of a contract suite, run on a fresh, empty store of type `S`.
pub struct Case<S> {
    pub name: &'static str,
    pub run: fn(S) -> BoxFuture<()>,
}

impl<S> std::fmt::Debug for Case<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

/// Run every case on its own fresh store made by `fresh`, printing one line per case
/// (`contract <backend> <suite>::<case> ... ok`), so a test's output shows what ran where.
/// A failing case panics with its name; the remaining cases are not run.
pub async fn run_cases<S, F, Fut>(backend: &str, suite: &str, cases: &[Case<S>], mut fresh: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    assert!(!cases.is_empty(), "suite {suite} has no cases");
    for case in cases {
        let store = fresh().await;
        eprintln!("contract {backend} {suite}::{} ...", case.name);
        let outcome = tokio::spawn((case.run)(store)).await;
        if let Err(e) = outcome {
            panic!("contract {backend} {suite}::{} failed: {e}", case.name);
        }
        eprintln!("contract {backend} {suite}::{} ... ok", case.name);
    }
}
