//! The vault fakes as a program, to try Custodian's vault connections without a real
//! Doppler, Infisical or 1Password: a fake Doppler and a fake Infisical on `127.0.0.1`, and
//! a fake `op`, each holding one S3 key pair. Prints the settings that point a server at
//! them and the demo secrets to connect with, then serves until stopped (Ctrl-C).
//!
//! `cargo run -p custodian-testkit --example vault_fakes`

use std::io::Write;

use custodian_testkit::fakes::doppler::FakeDoppler;
use custodian_testkit::fakes::infisical::FakeInfisical;
use custodian_testkit::fakes::onepassword::FakeOp;

/// The demo's Doppler service token.
const DOPPLER_TOKEN: &str = "dp.st.prd.demo0000000000000000000000000000000000000000";
/// The token a rotation moves to.
const DOPPLER_NEXT_TOKEN: &str = "dp.st.prd.demo1111111111111111111111111111111111111111";
/// The demo's Infisical machine identity.
const INFISICAL_CLIENT: (&str, &str) = ("demo-client", "demo-client-secret");
/// The demo's 1Password service-account token.
const OP_TOKEN: &str = "ops_demo000000000000000000000000000000000000000000";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let doppler = FakeDoppler::start();
    doppler.add_config(
        "exports",
        "prd",
        &[("S3_KEY_ID", "AKIADOPPLERDEMO"), ("S3_SECRET", "doppler-demo-secret")],
    );
    doppler.add_token(DOPPLER_TOKEN, "exports", "prd");
    doppler.add_token(DOPPLER_NEXT_TOKEN, "exports", "prd");

    let infisical = FakeInfisical::start();
    infisical.add_identity(INFISICAL_CLIENT.0, INFISICAL_CLIENT.1);
    infisical.add_secret("demo-project", "prod", "/", "S3_KEY_ID", "AKIAINFISICALDEMO");
    infisical.add_secret("demo-project", "prod", "/", "S3_SECRET", "infisical-demo-secret");

    let op = FakeOp::start(
        OP_TOKEN,
        "ok",
        &[
            ("op://prod/s3/key_id", "AKIAONEPASSWORDDEMO"),
            ("op://prod/s3/secret", "onepassword-demo-secret"),
        ],
    );

    let mut out = std::io::stdout().lock();
    writeln!(out, "# The server's settings (paste into the shell that starts it):")?;
    writeln!(out, "export CUSTODIAN_VAULTS__DOPPLER__API_URL={}", doppler.url())?;
    writeln!(out, "export CUSTODIAN_VAULTS__INFISICAL__API_URL={}", infisical.url())?;
    writeln!(
        out,
        "export CUSTODIAN_VAULTS__ONEPASSWORD__OP_PATH={}",
        op.path().display()
    )?;
    writeln!(out, "# Demo secrets to connect with:")?;
    writeln!(
        out,
        "#   doppler: access_token {DOPPLER_TOKEN} (project exports, config prd);"
    )?;
    writeln!(out, "#            rotate to {DOPPLER_NEXT_TOKEN}")?;
    writeln!(
        out,
        "#   infisical: client_id {} client_secret {} (project_id demo-project, environment prod)",
        INFISICAL_CLIENT.0, INFISICAL_CLIENT.1
    )?;
    writeln!(out, "#   onepassword: access_token {OP_TOKEN}")?;
    writeln!(
        out,
        "#   references: S3_KEY_ID and S3_SECRET; op://prod/s3/key_id and op://prod/s3/secret"
    )?;
    out.flush()?;
    drop(out);
    // Serve until the process is stopped; the fakes stop with it.
    std::future::pending::<()>().await;
    Ok(())
}
