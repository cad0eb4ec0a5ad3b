//! `custodian`: the Custodian server and its operator commands.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use custodian_core::MigrationReport;
use custodian_server::{Application, Config, CredentialStoreKind, DEFAULT_TEAM, LogFormat, commands, process_env};
use secrecy::ExposeSecret;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A self-hosted secrets service for storage credentials.
///
/// Configuration: defaults < TOML file (`--config` or `CUSTODIAN_CONFIG`) < `CUSTODIAN_*`
/// environment variables (nested keys joined with `__`, e.g.
/// `CUSTODIAN_TIERS__FREE__STORAGE_SECRETS=3`); a setting also accepts
/// `CUSTODIAN_<NAME>_FILE`, the path of a file holding its value (for secrets). A
/// `CUSTODIAN_*` variable that is not a setting is reported and ignored.
#[derive(Debug, Parser)]
#[command(name = "custodian", version, about)]
struct Cli {
    /// The TOML configuration file (default: the file `CUSTODIAN_CONFIG` names, if any).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Run the pending database migrations, print each one applied, and exit.
    Migrate,
    /// Create a tenant admin owning a team; prints {"user_id","team_id","token"} on stdout.
    Bootstrap {
        /// The new admin's email; must not belong to a user yet.
        #[arg(long)]
        email: String,
        /// The team it owns: created, or joined as owner when the name is taken.
        #[arg(long, default_value = DEFAULT_TEAM)]
        team: String,
        /// The team's tier (free, pro or enterprise; default: the configured default_tier).
        #[arg(long)]
        tier: Option<String>,
    },
    /// Manage the keyring of the data directory.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Show the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage the credential store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Retry the credential clean-ups that failed after a commit, remove stored values no
    /// row points at, and print the counts.
    Gc {
        /// At most this many tasks, oldest first.
        #[arg(long, default_value_t = commands::GC_DEFAULT_LIMIT)]
        limit: u32,
        /// Remove values no row points at once they are this many seconds old (default:
        /// the configured orphan_min_age). Shorter than a request only with every server
        /// stopped.
        #[arg(long, value_name = "SECONDS")]
        orphan_min_age: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new master key active and re-wrap every stored credential under it; safe
    /// while servers run. With a keyring file, a fresh key is added to it; with configured
    /// master keys, the new one is `master_key` and the old ones `previous_master_keys`.
    /// The old keys stay until `keys remove`.
    Rotate,
    /// Retire old master keys once every server has the active one: what is still sealed
    /// under them is re-wrapped, then the database refuses them (and the keyring file drops
    /// them). Refused for the active key.
    Remove {
        /// The key ids to retire (as `keys list` shows them).
        #[arg(required_unless_present = "all_inactive", conflicts_with = "all_inactive")]
        key_ids: Vec<String>,
        /// Retire every key but the active one.
        #[arg(long)]
        all_inactive: bool,
    },
    /// List the master keys the database accepts: which is active, how many values each
    /// seals, whether this configuration's keyring holds it.
    List,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Move every stored credential to another credential store: copy each value, switch
    /// the rows to the new store, then remove the values from the old one. Stop the servers
    /// first; an interrupted run is finished by running it again, and `--to` the old store
    /// gives up a migration not yet switched. Afterwards configure the new store.
    Migrate {
        /// The store to move to: local or aws-ssm (the aws-ssm store is the one `[ssm]`
        /// configures).
        #[arg(long, value_parser = parse_store)]
        to: CredentialStoreKind,
        /// Switch even when some rows point at values the old store does not hold (they
        /// stay unresolvable); without it such rows stop the migration before the switch.
        #[arg(long)]
        allow_missing: bool,
    },
}

fn parse_store(value: &str) -> Result<CredentialStoreKind, String> {
    CredentialStoreKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == value)
        .ok_or_else(|| "expected local or aws-ssm".to_owned())
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML: the master key shown as [REDACTED], the
    /// database URL with only its password [REDACTED].
    Print,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let unknown = Config::unknown_variables(process_env());
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            for variable in &unknown {
                eprintln!("custodian: warning: {variable}");
            }
            eprintln!("custodian: {error}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(config.log_format);
    for variable in &unknown {
        tracing::warn!("{variable}");
    }
    let command = cli.command.unwrap_or(Command::Serve);
    let result = match command {
        Command::Config {
            command: ConfigCommand::Print,
        } => print(&config.to_redacted_toml()),
        command => actix_web::rt::System::new().block_on(run(command, config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; stdout is for the commands' results. A span's close is a line too:
/// each request's span closes with its method, route, status and request id (the access
/// log).
///
/// `RUST_LOG` is a default level and `target=level` pairs (`warn,custodian_core=debug`);
/// unset or empty means `info`. A value that does not parse is reported and `info` used.
fn init_logging(format: LogFormat) {
    let (filter, refused) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let lines = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Text => lines.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => lines.json().with_current_span(true).with_span_list(false).boxed(),
    };
    tracing_subscriber::registry().with(lines.with_filter(filter)).init();
    if let Some(refused) = refused {
        tracing::warn!("RUST_LOG is not understood ({refused}); logging at info");
    }
}

/// The log filter `RUST_LOG` asks for, and why it was refused when it was.
///
/// A filter by target and level: the span and field directives of `tracing-subscriber`'s
/// `EnvFilter` would link a second regular-expression engine into the binary for a
/// feature the service does not need (see docs/DECISIONS.md).
fn log_filter(value: Option<&str>) -> (Targets, Option<String>) {
    let info = || Targets::new().with_default(tracing::Level::INFO);
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => (info(), None),
        Some(value) => match value.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(error) => (info(), Some(error.to_string())),
        },
    }
}

/// Write `text` to stdout, with a final newline.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let applied = commands::migrate(&config).await?;
            if applied.is_empty() {
                print("no pending migration: the database is up to date")
            } else {
                let lines: Vec<String> = applied.iter().map(|v| format!("applied {v}")).collect();
                print(&lines.join("\n"))
            }
        }
        Command::Bootstrap { email, team, tier } => {
            let outcome = commands::bootstrap(&config, &email, &team, tier.as_deref()).await?;
            let shown = serde_json::json!({
                "user_id": outcome.user.id.to_string(),
                "team_id": outcome.team.id.to_string(),
                "token": outcome.token.expose_secret(),
            });
            print(&shown.to_string())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let rotation = commands::rotate_keys(&config).await?;
            let mut lines = vec![
                format!("active key: {}", rotation.active_key),
                format!("re-wrapped credentials: {}", rotation.rewrapped),
            ];
            for key in &rotation.old_keys {
                lines.push(format!(
                    "old key: {} ({} value(s) still sealed under it)",
                    key.id, key.values
                ));
            }
            if !rotation.old_keys.is_empty() {
                lines.push(
                    "once every server has the new key (servers on this data directory pick it up by themselves), \
                     retire the old ones: custodian keys remove --all-inactive"
                        .to_owned(),
                );
            }
            print(&lines.join("\n"))
        }
        Command::Keys {
            command: KeysCommand::Remove { key_ids, all_inactive },
        } => {
            let which = if all_inactive {
                commands::KeysToRemove::AllInactive
            } else {
                commands::KeysToRemove::Ids(key_ids)
            };
            let removal = commands::remove_keys(&config, which).await?;
            let mut lines = vec![format!("re-wrapped credentials: {}", removal.rewrapped)];
            if removal.removed.is_empty() {
                lines.push("no key to remove".to_owned());
            }
            lines.extend(removal.removed.iter().map(|id| format!("removed key: {id}")));
            print(&lines.join("\n"))
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let keys = commands::list_keys(&config).await?;
            let lines: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}\t{}\t{} value(s)\t{}",
                        k.id,
                        if k.active { "active" } else { "old" },
                        k.values,
                        if k.in_keyring {
                            "in this keyring"
                        } else {
                            "NOT in this keyring"
                        }
                    )
                })
                .collect();
            print(&lines.join("\n"))
        }
        Command::Store {
            command: StoreCommand::Migrate { to, allow_missing },
        } => {
            let report = commands::migrate_store(&config, to, allow_missing).await?;
            print(&store_migration_summary(&report, to))
        }
        Command::Gc { limit, orphan_min_age } => {
            let min_age = orphan_min_age.map(|s| std::time::Duration::from_secs(u64::from(s)));
            let report = commands::gc(&config, limit, min_age).await?;
            let sweep = &report.sweep;
            let mut lines = vec![
                format!("done: {}", report.cleanup.done),
                format!("failed: {}", report.cleanup.failed),
            ];
            match &sweep.skipped {
                Some(why) => lines.push(format!("orphans: not swept ({why})")),
                None => lines.push(format!(
                    "orphans removed: {} (of {} stored values; {} failed)",
                    sweep.removed, sweep.examined, sweep.failed
                )),
            }
            print(&lines.join("\n"))
        }
        Command::Config { .. } => print(&config.to_redacted_toml()),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting");
    let (token_file, log_format) = (config.first_token_file.clone(), config.log_format);
    let mut app = Application::build(config).await?;
    if let Some(bootstrap) = app.take_bootstrap() {
        let token = bootstrap.token.expose_secret();
        match token_file {
            // Written where only this user can read it; the log names the file, not the token.
            Some(path) => {
                write_private(&path, token)?;
                tracing::info!(
                    path = %path.display(),
                    email = %bootstrap.user.email,
                    "created the tenant admin; its personal access token is in the first_token_file"
                );
            }
            None => {
                let message = format!(
                    "\nCustodian created the tenant admin {email} and its team \"default\".\n\
                     Its personal access token is shown only this once; store it safely:\n\n    {token}\n\n\
                     Try it: curl -H \"Authorization: Bearer {token}\" http://{addr}/v1/me\n",
                    email = bootstrap.user.email,
                    addr = app.local_addr(),
                );
                // Outside the log stream: JSON logs go to stderr, so the token goes to stdout.
                match log_format {
                    LogFormat::Text => eprintln!("{message}"),
                    LogFormat::Json => print(&message)?,
                }
            }
        }
    }
    app.run().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Write `token` to `path`, readable and writable by this user only (mode 0600), replacing
/// what the file held.
fn write_private(path: &std::path::Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(format!("{token}\n").as_bytes())
        });
    anyhow::Context::with_context(written, || {
        format!("cannot write the first token to {}", path.display())
    })
}

/// What `store migrate` prints: the counts, and what to configure next.
fn store_migration_summary(report: &MigrationReport, to: CredentialStoreKind) -> String {
    let worked = report.copied + report.present + report.replaced + report.retired > 0 || report.abandoned.is_some();
    if !worked && let Some(store) = &report.store {
        return format!("the credentials are already in {store}: nothing to do");
    }
    let mut lines = Vec::new();
    if let Some(given_up) = &report.abandoned {
        lines.push(format!("gave up the migration to {given_up}"));
    }
    if let Some(store) = &report.store {
        lines.push(format!("credential store: {store}"));
    }
    lines.push(format!("copied: {}", report.copied));
    lines.push(format!("already there: {}", report.present));
    lines.push(format!("replaced: {}", report.replaced));
    lines.push(format!("missing: {}", report.missing.len()));
    for missing in &report.missing {
        lines.push(format!("  missing: {} version {}", missing.key, missing.version));
    }
    if let Some(retired) = &report.retired_store {
        lines.push(format!("removed from {retired}: {} records", report.retired));
    }
    lines.push(format!(
        "next: configure credential_store = \"{store}\" (CUSTODIAN_CREDENTIAL_STORE={store}) and start the servers",
        store = to.as_str()
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn an_unset_or_empty_rust_log_logs_at_info() {
        for value in [None, Some(""), Some("  ")] {
            let (filter, refused) = log_filter(value);
            assert!(refused.is_none(), "{value:?}");
            assert!(filter.would_enable("custodian_http", &Level::INFO), "{value:?}");
            assert!(!filter.would_enable("custodian_http", &Level::DEBUG), "{value:?}");
        }
    }

    #[test]
    fn a_default_level_and_targets_are_each_applied() {
        let (filter, refused) = log_filter(Some("warn,custodian_core=debug"));
        assert!(refused.is_none());
        assert!(filter.would_enable("custodian_core::secrets", &Level::DEBUG));
        assert!(!filter.would_enable("custodian_core::secrets", &Level::TRACE));
        assert!(filter.would_enable("actix_server", &Level::WARN));
        assert!(!filter.would_enable("actix_server", &Level::INFO));
        let (filter, _) = log_filter(Some("trace"));
        assert!(filter.would_enable("anything", &Level::TRACE));
    }

    #[test]
    fn a_filter_that_does_not_parse_is_refused_and_info_used() {
        let (filter, refused) = log_filter(Some("custodian_core=loud"));
        assert!(refused.is_some());
        assert!(filter.would_enable("custodian_core", &Level::INFO));
        assert!(!filter.would_enable("custodian_core", &Level::DEBUG));
    }
}
