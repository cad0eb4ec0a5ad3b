//! Every contract suite of the repositories of this crate, on SQLite and on PostgreSQL.

use custodian_store_sql::test_support;
use custodian_testkit::{contract, run_cases};

use crate::support::{postgres_skipped, repo_set};

macro_rules! suite {
    ($suite:ident) => {
        mod $suite {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                run_cases(
                    "sqlite",
                    stringify!($suite),
                    &contract::$suite::cases(),
                    || async { repo_set(&test_support::sqlite().await) },
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if postgres_skipped() {
                    eprintln!("SKIPPED (postgres): contract {}", stringify!($suite));
                    return;
                }
                run_cases(
                    "postgres",
                    stringify!($suite),
                    &contract::$suite::cases(),
                    || async { repo_set(&test_support::postgres().await.expect("PostgreSQL tests run")) },
                )
                .await;
            }
        }
    };
}

suite!(users);
suite!(teams);
suite!(memberships);
suite!(virtual_accounts);
suite!(tokens);
suite!(audit);
