//! Configuration layering as the built binary sees it, through `custodian config print`:
//! defaults < TOML file (`--config` or `CUSTODIAN_CONFIG`) < `CUSTODIAN_*` variables,
//! `__` nesting, `*_FILE` secrets, unknown keys and variables, and redaction.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::process::{free_port, refused_start};

/// `custodian [args] config print` with exactly `env` as its environment; (success,
/// stdout, stderr).
fn print(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .args(["config", "print"])
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8(output.stdout).expect("UTF-8 output"),
        String::from_utf8(output.stderr).expect("UTF-8 output"),
    )
}

fn effective(args: &[&str], env: &[(&str, &str)]) -> toml::Table {
    let (ok, stdout, stderr) = print(args, env);
    assert!(ok, "{stderr}");
    stdout.parse().expect("config print writes TOML")
}

fn write(dir: &TempDir, name: &str, content: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("a temporary file");
    path
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

const FILE: &str = r#"
listen = "0.0.0.0:7000"
tenant_name = "acme"
default_tier = "pro"
log_format = "json"

[tiers.free]
storage_secrets = 2
members = "unlimited"
"#;

#[test]
fn defaults_then_the_file_then_the_environment() {
    let dir = TempDir::new().unwrap();
    let file = write(&dir, "custodian.toml", FILE);

    let defaults = effective(&[], &[]);
    assert_eq!(defaults["listen"].as_str(), Some("127.0.0.1:8080"));
    assert_eq!(defaults["tenant_name"].as_str(), Some("default"));
    assert_eq!(defaults["default_tier"].as_str(), Some("enterprise"));
    assert_eq!(defaults["credential_store"].as_str(), Some("local"));
    assert_eq!(defaults["tiers"]["free"]["storage_secrets"].as_integer(), Some(5));
    assert_eq!(defaults["tiers"]["enterprise"]["members"].as_str(), Some("unlimited"));

    // The file beats the defaults, for what it sets only.
    let from_file = effective(&["--config", text(&file)], &[]);
    assert_eq!(from_file["listen"].as_str(), Some("0.0.0.0:7000"));
    assert_eq!(from_file["tenant_name"].as_str(), Some("acme"));
    assert_eq!(from_file["default_tier"].as_str(), Some("pro"));
    assert_eq!(from_file["log_format"].as_str(), Some("json"));
    assert_eq!(from_file["tiers"]["free"]["storage_secrets"].as_integer(), Some(2));
    assert_eq!(from_file["tiers"]["free"]["members"].as_str(), Some("unlimited"));
    assert_eq!(from_file["tiers"]["free"]["vault_connections"].as_integer(), Some(1));
    assert_eq!(from_file["data_dir"].as_str(), Some("./custodian-data"));

    // CUSTODIAN_CONFIG names the file as well; `--config` wins over it.
    let named = effective(&[], &[("CUSTODIAN_CONFIG", text(&file))]);
    assert_eq!(named["tenant_name"].as_str(), Some("acme"));
    let other = write(&dir, "other.toml", "tenant_name = \"globex\"\n");
    let flag_wins = effective(&["--config", text(&other)], &[("CUSTODIAN_CONFIG", text(&file))]);
    assert_eq!(flag_wins["tenant_name"].as_str(), Some("globex"));
    assert_eq!(flag_wins["listen"].as_str(), Some("127.0.0.1:8080"));

    // The environment beats the file, `__` reaching into tables.
    let from_env = effective(
        &["--config", text(&file)],
        &[
            ("CUSTODIAN_TENANT_NAME", "initech"),
            ("CUSTODIAN_LISTEN", "127.0.0.1:9999"),
            ("CUSTODIAN_TIERS__FREE__STORAGE_SECRETS", "3"),
            ("CUSTODIAN_TIERS__PRO__MEMBERS", "unlimited"),
            ("CUSTODIAN_LOG_FORMAT", "text"),
            ("CUSTODIAN_TOKEN_GRACE_PERIOD", "300"),
            ("CUSTODIAN_DATA_DIR", "/srv/custodian"),
        ],
    );
    assert_eq!(from_env["tenant_name"].as_str(), Some("initech"));
    assert_eq!(from_env["listen"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(from_env["tiers"]["free"]["storage_secrets"].as_integer(), Some(3));
    assert_eq!(from_env["tiers"]["free"]["members"].as_str(), Some("unlimited"));
    assert_eq!(from_env["tiers"]["pro"]["members"].as_str(), Some("unlimited"));
    assert_eq!(from_env["tiers"]["pro"]["storage_secrets"].as_integer(), Some(100));
    assert_eq!(from_env["default_tier"].as_str(), Some("pro"));
    assert_eq!(from_env["log_format"].as_str(), Some("text"));
    assert_eq!(from_env["token_grace_period"].as_integer(), Some(300));
    assert_eq!(from_env["data_dir"].as_str(), Some("/srv/custodian"));
}

#[test]
fn unknown_keys_and_bad_values_are_clear_errors() {
    let dir = TempDir::new().unwrap();
    let typo = write(&dir, "typo.toml", "listen = \"127.0.0.1:1\"\ndatabase_uri = \"x\"\n");
    let (ok, stdout, stderr) = print(&["--config", text(&typo)], &[]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("database_uri"), "{stderr}");
    assert!(stderr.contains("typo.toml"), "{stderr}");

    let nested = write(&dir, "nested.toml", "[tiers.free]\nsecrets = 3\n");
    let (ok, _, stderr) = print(&["--config", text(&nested)], &[]);
    assert!(!ok);
    assert!(stderr.contains("tiers.free.secrets"), "{stderr}");

    let (ok, _, stderr) = print(&[], &[("CUSTODIAN_CREDENTIAL_STORE", "vault")]);
    assert!(!ok);
    assert!(stderr.contains("credential_store"), "{stderr}");
    let (ok, _, stderr) = print(&[], &[("CUSTODIAN_TIERS__FREE__MEMBERS", "many")]);
    assert!(!ok);
    assert!(stderr.contains("tiers.free.members"), "{stderr}");
    let (ok, _, stderr) = print(&["--config", text(&dir.path().join("absent.toml"))], &[]);
    assert!(!ok);
    assert!(stderr.contains("absent.toml"), "{stderr}");
}

#[test]
fn config_print_redacts_the_database_password_from_any_layer() {
    let dir = TempDir::new().unwrap();
    let from_file = write(
        &dir,
        "custodian.toml",
        "database_url = \"postgres://app:file-hunter2@db/custodian\"\n",
    );
    let (ok, stdout, stderr) = print(&["--config", text(&from_file)], &[]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("file-hunter2"), "{stdout}");
    assert!(
        stdout.contains("database_url = \"postgres://app:[REDACTED]@db/custodian\""),
        "{stdout}"
    );

    let (ok, stdout, stderr) = print(
        &[],
        &[("CUSTODIAN_DATABASE_URL", "postgres://app:env-hunter2@db/custodian")],
    );
    assert!(ok, "{stderr}");
    assert!(
        !stdout.contains("env-hunter2") && !stderr.contains("env-hunter2"),
        "{stdout}"
    );
    assert!(stdout.contains("[REDACTED]"));

    // A secret read from a file named by CUSTODIAN_DATABASE_URL_FILE, which beats the
    // TOML file like any variable.
    let secret = write(&dir, "db-url", "postgres://app:file-secret-hunter2@db/custodian\n");
    let (ok, stdout, stderr) = print(
        &["--config", text(&from_file)],
        &[("CUSTODIAN_DATABASE_URL_FILE", text(&secret))],
    );
    assert!(ok, "{stderr}");
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("database_url = \"postgres://app:[REDACTED]@db/custodian\""),
        "{stdout}"
    );

    // Both forms at once is ambiguous.
    let (ok, _, stderr) = print(
        &[],
        &[
            ("CUSTODIAN_DATABASE_URL_FILE", text(&secret)),
            ("CUSTODIAN_DATABASE_URL", "sqlite:///tmp/x.db"),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("CUSTODIAN_DATABASE_URL"), "{stderr}");
}

#[test]
fn a_database_url_file_is_what_the_server_uses() {
    let dir = TempDir::new().unwrap();
    // The URL file points at a database outside the data dir: migrate creates it there.
    let db_path = dir.path().join("elsewhere.db");
    let secret = write(&dir, "db-url", &format!("sqlite://{}\n", db_path.display()));
    let output = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .env_clear()
        .env("CUSTODIAN_DATA_DIR", dir.path().join("data"))
        .env("CUSTODIAN_DATABASE_URL_FILE", &secret)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(db_path.exists());
    assert!(!dir.path().join("data/custodian.db").exists());
}

/// A database password and a master key no output may show.
const CANARY_PASSWORD: &str = "canary-db-password-c41f";
const CANARY_KEY: &str = "Q0FOQVJZLW1hc3Rlci1rZXktbm90LXRvLWJlLXNob3du";

#[test]
fn config_print_shows_which_database_but_neither_its_password_nor_the_master_key() {
    let url = format!("postgres://custodian:{CANARY_PASSWORD}@db.internal:5432/custodian_prod");
    let (ok, stdout, stderr) = print(
        &[],
        &[("CUSTODIAN_DATABASE_URL", &url), ("CUSTODIAN_MASTER_KEY", CANARY_KEY)],
    );
    assert!(ok, "{stderr}");
    for output in [&stdout, &stderr] {
        assert!(!output.contains(CANARY_PASSWORD), "{output}");
        assert!(!output.contains(CANARY_KEY), "{output}");
    }
    let printed: toml::Table = stdout.parse().expect("config print writes TOML");
    assert_eq!(
        printed["database_url"].as_str(),
        Some("postgres://custodian:[REDACTED]@db.internal:5432/custodian_prod")
    );
    assert_eq!(printed["master_key"].as_str(), Some("[REDACTED]"));

    let sqlite = effective(
        &[],
        &[("CUSTODIAN_DATABASE_URL", "sqlite:///var/lib/custodian/custodian.db")],
    );
    assert_eq!(
        sqlite["database_url"].as_str(),
        Some("sqlite:///var/lib/custodian/custodian.db")
    );
}

#[test]
fn a_mistyped_variable_is_reported_with_the_setting_it_resembles() {
    let (ok, stdout, stderr) = print(
        &[],
        &[
            ("CUSTODIAN_DATABSE_URL", "postgres://app:typo-hunter2@db/custodian"),
            ("CUSTODIAN_CONFIG", ""),
            ("CUSTODIAN_TEST_POSTGRES", "skip"),
        ],
    );
    assert!(ok, "an unknown variable is ignored: {stderr}");
    assert!(
        stderr.contains("unknown setting CUSTODIAN_DATABSE_URL (did you mean CUSTODIAN_DATABASE_URL?)"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("CUSTODIAN_TEST_POSTGRES"), "{stderr}");
    let printed: toml::Table = stdout.parse().expect("config print writes TOML");
    assert_eq!(
        printed["database_url"].as_str(),
        Some("sqlite://./custodian-data/custodian.db")
    );

    // Known variables that are not settings are not reported.
    let dir = TempDir::new().unwrap();
    let file = write(&dir, "custodian.toml", "tenant_name = \"acme\"\n");
    let key = write(&dir, "master-key", CANARY_KEY);
    let (ok, _, stderr) = print(
        &[],
        &[
            ("CUSTODIAN_CONFIG", text(&file)),
            ("CUSTODIAN_MASTER_KEY_FILE", text(&key)),
            ("CUSTODIAN_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1/postgres"),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("unknown setting"), "{stderr}");
}

#[test]
fn serve_reports_a_mistyped_variable_and_logs_the_database_without_its_password() {
    let dir = TempDir::new().unwrap();
    // Nothing listens there: the start fails after logging its configuration.
    let url = format!(
        "postgres://custodian:{CANARY_PASSWORD}@127.0.0.1:{}/custodian_canary",
        free_port()
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_custodian"));
    command
        .env_clear()
        .env("CUSTODIAN_DATA_DIR", dir.path().join("data"))
        .env("CUSTODIAN_DATABASE_URL", &url)
        .env("CUSTODIAN_DATABSE_URL", &url)
        .env("CUSTODIAN_MASTER_KEY", CANARY_KEY);
    let output = refused_start(command);
    assert!(output.contains("did you mean CUSTODIAN_DATABASE_URL?"), "{output}");
    assert!(output.contains("custodian:[REDACTED]@127.0.0.1:"), "{output}");
    assert!(output.contains("/custodian_canary"), "{output}");
    assert!(!output.contains(CANARY_PASSWORD), "{output}");
    assert!(!output.contains(CANARY_KEY), "{output}");
}
