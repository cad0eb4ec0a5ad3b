//! The 1Password adapter against the test kit's fake `op`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use custodian_domain::{VaultReference, VaultSecret, VaultSettings, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use custodian_testkit::fakes::onepassword::FakeOp;
use custodian_vaults::{OnePasswordConfig, OnePasswordProvider};
use secrecy::{ExposeSecret, SecretString};

const TOKEN: &str = "ops_eyJzaWduSW5BZGRyZXNzIjoiQ0FOQVJZLVRPS0VOLTdmM2Ei";
const OTHER_TOKEN: &str = "ops_eyJzaWduSW5BZGRyZXNzIjoib3RoZXItdG9rZW4tOWMxZCJ9";
const CANARY_VALUE: &str = "CANARY-VALUE-5b8e0d";

/// The environment `op` may see, and no more.
const ALLOWED_ENV: [&str; 5] = [
    "HOME",
    "OP_BIOMETRIC_UNLOCK_ENABLED",
    "OP_CACHE",
    "OP_CONFIG_DIR",
    "OP_SERVICE_ACCOUNT_TOKEN",
];

/// The adapter over `fake`, with a 10-second timeout.
fn provider(fake: &FakeOp) -> OnePasswordProvider {
    provider_with_timeout(fake, Duration::from_secs(10))
}

fn provider_with_timeout(fake: &FakeOp, timeout: Duration) -> OnePasswordProvider {
    OnePasswordProvider::new(OnePasswordConfig {
        op_path: fake.path(),
        timeout,
    })
}

/// A fake accepting [`TOKEN`].
fn fake_op(mode: &str, secrets: &[(&str, &str)]) -> FakeOp {
    FakeOp::start(TOKEN, mode, secrets)
}

fn access(token: &str) -> VaultAccess {
    VaultAccess {
        connection_id: "00000000-0000-0000-0000-000000000001".parse().expect("a UUID"),
        revision: 1,
        settings: VaultSettings::OnePassword,
        secret: VaultSecret::from_stored(SecretString::from(token)),
    }
}

fn refs(references: &[&str]) -> Vec<VaultReference> {
    references
        .iter()
        .map(|r| VaultReference::parse(VaultType::OnePassword, r).expect("a valid reference"))
        .collect()
}

fn exposed(values: &[SecretString]) -> Vec<&str> {
    values.iter().map(|v| v.expose_secret()).collect()
}

/// Neither the token nor a value appears in an error's `Display` or `Debug`.
fn assert_no_canary(error: &VaultError) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(TOKEN), "token in {text}");
        assert!(!text.contains("ops_"), "token-shaped text in {text}");
        assert!(!text.contains(CANARY_VALUE), "value in {text}");
    }
}

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would still have one.
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Three references of one call, values holding newlines, braces and `$`, come back in
/// order from a single `op inject` process.
#[tokio::test]
async fn fetch_reads_every_reference_in_order_in_one_process() {
    let fake = fake_op(
        "ok",
        &[
            ("op://prod/s3/access_key_id", "AKIAIOSFODNN7EXAMPLE"),
            ("op://prod/s3/aws/secret_access_key", "line one\nline two {{ $HOME }}\n"),
            ("op://shared/r2.creds/endpoint", CANARY_VALUE),
        ],
    );
    let references = refs(&[
        "op://shared/r2.creds/endpoint",
        "op://prod/s3/aws/secret_access_key",
        "op://PROD/S3/access_key_id",
    ]);

    let values = provider(&fake)
        .fetch(&access(TOKEN), &references, Freshness::MayRevalidate)
        .await
        .unwrap();

    assert_eq!(
        exposed(&values),
        [CANARY_VALUE, "line one\nline two {{ $HOME }}\n", "AKIAIOSFODNN7EXAMPLE"]
    );
    let runs = fake.invocations();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].argv[..2], ["inject", "--in-file"]);
    assert!(runs[0].token_matched);
}

/// References `op inject`'s template syntax cannot carry (a space, a `?query`) are read
/// alone with `op read --no-newline`; the rest still share one `op inject`; order holds and
/// a value's own trailing newline survives.
#[tokio::test]
async fn fetch_reads_references_outside_the_template_syntax_one_by_one() {
    let fake = fake_op(
        "ok",
        &[
            ("op://prod/s3/access_key_id", "AKIAIOSFODNN7EXAMPLE"),
            ("op://prod/my item/secret_access_key", "ends with a newline\n"),
            (
                "op://prod/s3/secret_access_key",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            ("op://prod/s3/otp?attribute=otp", "123456"),
        ],
    );
    let references = refs(&[
        "op://prod/s3/access_key_id",
        "op://prod/my item/secret_access_key",
        "op://prod/s3/secret_access_key",
        "op://prod/s3/otp?attribute=otp",
    ]);

    let values = provider(&fake)
        .fetch(&access(TOKEN), &references, Freshness::Fresh)
        .await
        .unwrap();

    assert_eq!(
        exposed(&values),
        [
            "AKIAIOSFODNN7EXAMPLE",
            "ends with a newline\n",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "123456"
        ]
    );
    let argv: Vec<Vec<String>> = fake.invocations().into_iter().map(|i| i.argv).collect();
    assert_eq!(argv.len(), 3, "{argv:?}");
    assert_eq!(argv[0][0], "inject");
    assert_eq!(argv[1], ["read", "--no-newline", "op://prod/my item/secret_access_key"]);
    assert_eq!(argv[2], ["read", "--no-newline", "op://prod/s3/otp?attribute=otp"]);
}

/// `op` gets exactly the allowed environment: nothing of the test process's own (which
/// `cargo test` fills with `CARGO_*`, `PATH`, …) reaches it, `HOME` and `OP_CONFIG_DIR`
/// are a private directory that is gone after the call, caching and the desktop-app
/// integration are off, and the token is never in argv.
#[tokio::test]
async fn op_sees_only_the_allowed_environment() {
    // The canary: the test process's environment holds names `op` must not see.
    let own: BTreeSet<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert!(own.contains("CARGO_PKG_NAME"), "cargo sets CARGO_PKG_NAME for tests");
    let fake = fake_op("ok", &[("op://prod/s3/a", "1"), ("op://prod/s3/b", "2")]);
    let provider = provider(&fake);

    provider
        .fetch(
            &access(TOKEN),
            &refs(&["op://prod/s3/a", "op://prod/s3/b"]),
            Freshness::Fresh,
        )
        .await
        .unwrap();
    provider
        .fetch(&access(TOKEN), &refs(&["op://prod/s3/a"]), Freshness::Fresh)
        .await
        .unwrap();
    provider.verify(&access(TOKEN)).await.unwrap();

    let runs = fake.invocations();
    assert_eq!(runs.len(), 3, "{runs:?}");
    for run in &runs {
        assert_eq!(run.env_names, ALLOWED_ENV, "{:?}", run.argv);
        assert!(run.token_matched);
        assert!(run.argv.iter().all(|a| !a.contains("ops_")), "{:?}", run.argv);
        assert_eq!(run.env["OP_CACHE"], "false");
        assert_eq!(run.env["OP_BIOMETRIC_UNLOCK_ENABLED"], "false");
        let home = Path::new(&run.env["HOME"]);
        assert_ne!(Some(home.as_os_str()), std::env::var_os("HOME").as_deref());
        assert_eq!(Path::new(&run.env["OP_CONFIG_DIR"]).parent(), Some(home));
        assert!(!home.exists(), "the private directory outlives the call");
    }
}

/// `verify` is one `op vault list --format json`, and succeeds with a valid token.
#[tokio::test]
async fn verify_lists_vaults_once() {
    let fake = fake_op("ok", &[("op://prod/s3/a", "1")]);

    provider(&fake).verify(&access(TOKEN)).await.unwrap();

    let argv: Vec<Vec<String>> = fake.invocations().into_iter().map(|i| i.argv).collect();
    assert_eq!(argv, [["vault", "list", "--format", "json"]]);
}

/// A token 1Password refuses (`(401)`) or cannot decode is `AuthFailed`, from `fetch`
/// (batched and single) and from `verify`, and no error quotes it.
#[tokio::test]
async fn wrong_token_is_auth_failed() {
    let fake = fake_op("ok", &[("op://prod/s3/a", "1"), ("op://prod/s3/b", CANARY_VALUE)]);
    let provider = provider(&fake);
    let both = refs(&["op://prod/s3/a", "op://prod/s3/b"]);

    for token in [OTHER_TOKEN, "not-a-service-account-token"] {
        let errors = [
            provider
                .fetch(&access(token), &both, Freshness::Fresh)
                .await
                .unwrap_err(),
            provider
                .fetch(&access(token), &both[..1], Freshness::Fresh)
                .await
                .unwrap_err(),
            provider.verify(&access(token)).await.unwrap_err(),
        ];
        for error in errors {
            assert_eq!(
                error,
                VaultError::AuthFailed {
                    provider: VaultType::OnePassword
                }
            );
            assert_no_canary(&error);
            assert!(!error.to_string().contains(token));
        }
    }
}

/// A reference to a missing item, vault or field is `ReferenceNotFound` naming the first
/// missing reference of the call, even though `op inject` does not say which one failed,
/// and even when the missing name reads like another error ("rate limit").
#[tokio::test]
async fn unknown_reference_is_named() {
    let fake = fake_op("ok", &[("op://prod/s3/a", CANARY_VALUE), ("op://prod/s3/b", "2")]);
    let provider = provider(&fake);

    for missing in [
        "op://prod/nope/a",
        "op://staging/s3/a",
        "op://prod/s3/c",
        "op://prod/no such item/a",
        // Names that read like other errors: op quotes them, the adapter looks past quotes.
        "op://prod/rate limit/a",
        "op://prod/s3/Unauthorized",
    ] {
        let references = refs(&["op://prod/s3/a", missing, "op://prod/s3/b", "op://prod/s3/zzz"]);
        let error = provider
            .fetch(&access(TOKEN), &references, Freshness::Fresh)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            VaultError::ReferenceNotFound {
                provider: VaultType::OnePassword,
                reference: missing.to_owned()
            }
        );
        assert_no_canary(&error);
    }
}

/// `(429) Too Many Requests` is `RateLimited`, with op's "retry in 58 minutes" as
/// `retry_after`, from `fetch` and `verify`.
#[tokio::test]
async fn rate_limit_is_rate_limited() {
    let fake = fake_op("rate_limit", &[("op://prod/s3/a", "1"), ("op://prod/s3/b", "2")]);
    let provider = provider(&fake);
    let expected = VaultError::RateLimited {
        provider: VaultType::OnePassword,
        retry_after: Some(Duration::from_secs(58 * 60)),
    };

    let batched = provider
        .fetch(
            &access(TOKEN),
            &refs(&["op://prod/s3/a", "op://prod/s3/b"]),
            Freshness::Fresh,
        )
        .await
        .unwrap_err();
    let single = provider
        .fetch(&access(TOKEN), &refs(&["op://prod/s3/a"]), Freshness::Fresh)
        .await
        .unwrap_err();
    let verify = provider.verify(&access(TOKEN)).await.unwrap_err();

    assert_eq!(
        [batched, single, verify],
        [expected.clone(), expected.clone(), expected]
    );
}

/// An `op` that hangs past the timeout is `Unavailable`, and the process is killed and
/// reaped: it no longer exists when the call returns.
#[tokio::test]
async fn hang_past_timeout_is_unavailable_and_killed() {
    let fake = fake_op("hang", &[("op://prod/s3/a", "1"), ("op://prod/s3/b", "2")]);
    let provider = provider_with_timeout(&fake, Duration::from_millis(1500));

    // A hang guard only: the adapter's own timeout must end the call long before.
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        provider.fetch(
            &access(TOKEN),
            &refs(&["op://prod/s3/a", "op://prod/s3/b"]),
            Freshness::Fresh,
        ),
    )
    .await
    .expect("the adapter's timeout did not fire")
    .unwrap_err();

    assert!(
        matches!(&error, VaultError::Unavailable { message, .. } if message.contains("killed")),
        "{error:?}"
    );
    assert_no_canary(&error);
    let runs = fake.invocations();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(!alive(runs[0].pid), "op (pid {}) is still running", runs[0].pid);
}

/// An `op` that prints without end is cut off after a megabyte: the call is `Unavailable`
/// at once (not at the timeout), and the process is gone when it returns.
#[tokio::test]
async fn an_op_that_prints_too_much_is_cut_off() {
    let fake = fake_op("flood", &[("op://prod/s3/a", CANARY_VALUE)]);
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        provider(&fake).fetch(&access(TOKEN), &refs(&["op://prod/s3/a"]), Freshness::Fresh),
    )
    .await
    .expect("the call ends")
    .unwrap_err();
    assert!(
        matches!(&error, VaultError::Unavailable { message, .. } if message.contains("more than 1048576 bytes")),
        "{error:?}"
    );
    assert_no_canary(&error);
    let runs = fake.invocations();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(!alive(runs[0].pid), "op (pid {}) is still running", runs[0].pid);
}

/// A missing `op` executable is `Unavailable` naming the path, from `fetch` and `verify`.
#[tokio::test]
async fn missing_op_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let op_path = dir.path().join("no-such-op");
    let provider = OnePasswordProvider::new(OnePasswordConfig {
        op_path: op_path.clone(),
        ..OnePasswordConfig::default()
    });

    let errors = [
        provider
            .fetch(&access(TOKEN), &refs(&["op://prod/s3/a"]), Freshness::Fresh)
            .await
            .unwrap_err(),
        provider.verify(&access(TOKEN)).await.unwrap_err(),
    ];

    for error in errors {
        assert_eq!(
            error,
            VaultError::Unavailable {
                provider: VaultType::OnePassword,
                message: format!("op was not found at {}", op_path.display())
            }
        );
    }
}

/// An unknown failure is `Unavailable` quoting op's stderr, but neither the value `op`
/// printed to stdout before failing nor the token it echoed to stderr.
#[tokio::test]
async fn unknown_failure_quotes_neither_token_nor_value() {
    let fake = fake_op(
        "broken",
        &[("op://prod/s3/a", CANARY_VALUE), ("op://prod/s3/b", CANARY_VALUE)],
    );
    let provider = provider(&fake);

    let errors = [
        provider
            .fetch(
                &access(TOKEN),
                &refs(&["op://prod/s3/a", "op://prod/s3/b"]),
                Freshness::Fresh,
            )
            .await
            .unwrap_err(),
        provider
            .fetch(&access(TOKEN), &refs(&["op://prod/s3/a"]), Freshness::Fresh)
            .await
            .unwrap_err(),
        provider.verify(&access(TOKEN)).await.unwrap_err(),
    ];

    for error in errors {
        assert!(
            matches!(&error, VaultError::Unavailable { message, .. }
                if message.contains("unexpected failure talking to my.1password.com")),
            "{error:?}"
        );
        assert_no_canary(&error);
    }
}

/// The default configuration runs `op` from `PATH` with a 15-second timeout.
#[test]
fn default_config() {
    let config = OnePasswordConfig::default();
    assert_eq!(config.op_path, PathBuf::from("op"));
    assert_eq!(config.timeout, Duration::from_secs(15));
}
