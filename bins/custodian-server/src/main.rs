//! `custodian`: the Custodian server.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use custodian_server::{Application, Config};
use secrecy::ExposeSecret;
use tracing_subscriber::EnvFilter;

/// A self-hosted secrets service for storage credentials.
#[derive(Debug, Parser)]
#[command(name = "custodian", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default). Configured by `CUSTODIAN_LISTEN`,
    /// `CUSTODIAN_DATA_DIR`, `CUSTODIAN_DATABASE_URL` and `CUSTODIAN_TENANT_NAME`.
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(serve(Config::from_env())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting");
    let mut app = Application::build(config).await?;
    if let Some(bootstrap) = app.take_bootstrap() {
        let token = bootstrap.token.expose_secret();
        eprintln!(
            "\nCustodian created the tenant admin {email} and its team \"default\".\n\
             Its personal access token is shown only this once; store it safely:\n\n    {token}\n\n\
             Try it: curl -H \"Authorization: Bearer {token}\" http://{addr}/v1/me\n",
            email = bootstrap.user.email,
            addr = app.local_addr(),
        );
    }
    app.run().await?;
    tracing::info!("stopped");
    Ok(())
}
