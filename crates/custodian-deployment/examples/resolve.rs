//! A data-transfer worker resolving the credentials of a storage secret at run time, from
//! a running Custodian deployment: the same database, keyring (or master key) and
//! credential store as its servers, read from the same configuration.
//!
//! ```text
//! CUSTODIAN_DATA_DIR=/var/lib/custodian \
//! WORKER_TOKEN=cus_... \
//!   cargo run -p custodian-deployment --example resolve -- <team_id> <secret_id>
//! ```
//!
//! `CUSTODIAN_CONFIG`, `CUSTODIAN_DATABASE_URL` and every other setting work as they do
//! for `custodian serve`. `WORKER_TOKEN` is the token of a virtual account of the team
//! with the role `operator` or above. The example prints the auth method and the names of
//! the fields it resolved, never a value.

#![allow(clippy::print_stdout, reason = "an example reports to its terminal")]

use anyhow::Context;
use custodian_deployment::{Config, Deployment};
use custodian_domain::{SecretId, TeamId};
use secrecy::SecretString;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(team), Some(secret)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: resolve <team_id> <secret_id> (with WORKER_TOKEN set)");
    };
    let team: TeamId = team.parse().context("the team id is not a uuid")?;
    let secret: SecretId = secret.parse().context("the secret id is not a uuid")?;
    let token = SecretString::from(std::env::var("WORKER_TOKEN").context("WORKER_TOKEN is not set")?);

    // The configuration the servers read; attaching changes nothing of the deployment.
    let config = Config::load(None)?;
    let deployment = Deployment::attach(&config).await?;
    let custodian = deployment.custodian();

    // The worker acts as its virtual account: what it may resolve, and the audit trail
    // records it as the one who did.
    let worker = custodian.authenticate(&token).await?;
    let credentials = custodian.resolve(&worker, team, secret).await?;
    println!(
        "resolved {} credentials with the fields {}",
        credentials.auth_method(),
        credentials.field_names().join(", ")
    );
    Ok(())
}
