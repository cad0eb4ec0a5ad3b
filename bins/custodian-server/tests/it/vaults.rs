//! External vaults through the built binary: the server reaches a fake Doppler, a fake
//! Infisical and a fake `op` from its `[vaults]` settings; a connection of each type and a
//! secret mapped through it are created, verified over HTTP and resolved by a service
//! attached to the same deployment; rotating a connection's token makes the next
//! resolution use the new one (the old one is revoked at the fake), and no token or value
//! reaches an answer, a log line at `trace` or the database file.

use std::path::Path;

use custodian_domain::{CredentialField, SecretId, TeamId};
use custodian_server::{Config, Deployment};
use custodian_testkit::fakes::doppler::FakeDoppler;
use custodian_testkit::fakes::infisical::FakeInfisical;
use custodian_testkit::fakes::onepassword::FakeOp;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::RunningServer;
use crate::support::{Api, config, create_virtual_account, unique};

/// Every token and value of this test carries this, so one search finds any leak.
const CANARY: &str = "vault-canary";

fn canary(label: &str) -> String {
    format!("{CANARY}-{label}-{}", unique())
}

/// A Doppler service token (`dp.st.` and 40 characters).
fn doppler_token(label: &str) -> String {
    format!("dp.st.production.{label}{}", "x".repeat(40))
}

/// A 1Password service-account token.
fn op_token(label: &str) -> String {
    format!("ops_{label}{}", "y".repeat(60))
}

/// A vault provider the test set up: how to create a connection to it, how to rotate its
/// secret, and the mappings of an S3 secret through it.
struct Vault {
    /// The connection's create body (its secret setting included).
    connection: Value,
    /// The rotation body (the new secret).
    rotation: Value,
    mappings: Value,
    /// What the mapped fields hold in the vault.
    key_id: String,
    secret_key: String,
}

fn s3_external(name: &str, connection_id: &str, mappings: &Value) -> Value {
    json!({
        "name": name,
        "secret_type": "s3",
        "auth_method": "s3_access_key",
        "vault_connection_id": connection_id,
        "field_mappings": mappings,
    })
}

/// The secret resolves, through a service attached to the deployment, to `key_id` and
/// `secret_key`.
async fn assert_resolves(deployment: &Deployment, worker: &str, team: &str, secret: &str, vault: &Vault) {
    let core = deployment.custodian();
    let subject = core
        .authenticate(&worker.to_owned().into())
        .await
        .expect("the worker's token works");
    let team: TeamId = team.parse().expect("a team id");
    let secret: SecretId = secret.parse().expect("a secret id");
    let credentials = core
        .resolve(&subject, team, secret)
        .await
        .unwrap_or_else(|e| panic!("{} resolves: {e}", vault.connection["vault_type"]));
    let field = |f| credentials.get(f).map(|v| v.expose_secret().to_owned());
    assert_eq!(
        field(CredentialField::AccessKeyId).as_deref(),
        Some(vault.key_id.as_str())
    );
    assert_eq!(
        field(CredentialField::SecretAccessKey).as_deref(),
        Some(vault.secret_key.as_str())
    );
}

/// Create the connection and a secret mapped through it; verify both over HTTP. Returns
/// the connection's and the secret's ids.
async fn connect(api: &Api, token: &str, team: &str, vault: &Vault) -> (String, String) {
    let kind = vault.connection["vault_type"]
        .as_str()
        .expect("a vault type")
        .to_owned();
    let created = api
        .post(&format!("/v1/teams/{team}/vault-connections"), token, &vault.connection)
        .await;
    created.expect_status(201, &format!("POST a {kind} vault connection"));
    let connection = created.str("id");
    let verified = api
        .post(
            &format!("/v1/teams/{team}/vault-connections/{connection}/verify"),
            token,
            &json!({}),
        )
        .await;
    verified.expect_status(200, &format!("verify the {kind} connection"));
    assert_eq!(verified.json["verified"], true, "{kind}: {}", verified.text);
    let shown = api
        .get(&format!("/v1/teams/{team}/vault-connections/{connection}"), token)
        .await;
    assert!(shown.json["last_verified_at"].is_string(), "{kind}: {}", shown.text);

    let secret = api
        .post(
            &format!("/v1/teams/{team}/secrets"),
            token,
            &s3_external(&format!("{kind}-landing-{}", unique()), &connection, &vault.mappings),
        )
        .await;
    secret.expect_status(201, &format!("POST a secret mapped through {kind}"));
    let secret_id = secret.str("id");
    let checked = api
        .post(
            &format!("/v1/teams/{team}/secrets/{secret_id}/verify"),
            token,
            &json!({}),
        )
        .await;
    checked.expect_status(200, &format!("verify the {kind} secret"));
    assert_eq!(checked.json["verified"], true, "{kind}: {}", checked.text);
    (connection, secret_id)
}

/// Every file of the data directory, as bytes.
fn database_bytes(data_dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data_dir).expect("the data dir") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).expect("a data file"));
        }
    }
    bytes
}

/// The whole life of a connection of each vault type through the binary, and a thousand
/// concurrent resolutions of a cold Doppler secret making one call to Doppler.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_of_each_vault_type_lives_through_the_binary() {
    let dir = TempDir::new().expect("a temp dir");
    let data_dir = dir.path().join("data");

    let doppler = FakeDoppler::start();
    let (doppler_old, doppler_new) = (doppler_token("old"), doppler_token("new"));
    let doppler_vault = Vault {
        connection: json!({"name": "doppler", "vault_type": "doppler", "access_token": doppler_old,
                           "project": "exports", "config": "production"}),
        rotation: json!({"access_token": doppler_new}),
        mappings: json!([{"field_name": "access_key_id", "reference": "S3_KEY_ID"},
                         {"field_name": "secret_access_key", "reference": "S3_SECRET"}]),
        key_id: "AKIADOPPLER".into(),
        secret_key: canary("doppler-value"),
    };
    doppler.add_config(
        "exports",
        "production",
        &[
            ("S3_KEY_ID", &doppler_vault.key_id),
            ("S3_SECRET", &doppler_vault.secret_key),
        ],
    );
    doppler.add_token(&doppler_old, "exports", "production");

    let infisical = FakeInfisical::start();
    let (infisical_old, infisical_new) = (canary("client-secret-old"), canary("client-secret-new"));
    let infisical_vault = Vault {
        connection: json!({"name": "infisical", "vault_type": "infisical", "client_id": "machine-1",
                           "client_secret": infisical_old, "project_id": "proj-1",
                           "environment": "prod", "secret_path": "/"}),
        rotation: json!({"client_id": "machine-2", "client_secret": infisical_new}),
        mappings: json!([{"field_name": "access_key_id", "reference": "aws/S3_KEY_ID"},
                         {"field_name": "secret_access_key", "reference": "aws/S3_SECRET"}]),
        key_id: "AKIAINFISICAL".into(),
        secret_key: canary("infisical-value"),
    };
    infisical.add_identity("machine-1", &infisical_old);
    infisical.add_secret("proj-1", "prod", "/aws", "S3_KEY_ID", &infisical_vault.key_id);
    infisical.add_secret("proj-1", "prod", "/aws", "S3_SECRET", &infisical_vault.secret_key);

    let (op_old, op_new) = (op_token("old"), op_token("new"));
    let op_vault = Vault {
        connection: json!({"name": "onepassword", "vault_type": "onepassword", "access_token": op_old}),
        rotation: json!({"access_token": op_new}),
        mappings: json!([{"field_name": "access_key_id", "reference": "op://prod/s3/key_id"},
                         {"field_name": "secret_access_key", "reference": "op://prod/s3/secret"}]),
        key_id: "AKIAONEPASSWORD".into(),
        secret_key: canary("onepassword-value"),
    };
    let op_secrets = [
        ("op://prod/s3/key_id", op_vault.key_id.as_str()),
        ("op://prod/s3/secret", op_vault.secret_key.as_str()),
    ];
    let op = FakeOp::start(&op_old, "ok", &op_secrets);

    let op_path = op.path().display().to_string();
    let infisical_url = infisical.url().to_string();
    let env = [
        ("CUSTODIAN_VAULTS__DOPPLER__API_URL", doppler.url()),
        ("CUSTODIAN_VAULTS__INFISICAL__API_URL", infisical_url.as_str()),
        ("CUSTODIAN_VAULTS__ONEPASSWORD__OP_PATH", op_path.as_str()),
    ];
    let (server, admin) = RunningServer::first_start(crate::process::custodian_on(&data_dir, "trace", None, &env));
    let api = server.api.clone();
    let me = api.get("/v1/me", &admin).await;
    let team = me.json["teams"][0]["id"].as_str().expect("the default team").to_owned();
    let worker = create_virtual_account(&api, &admin, &team, "operator").await;

    let mut made = Vec::new();
    for vault in [&doppler_vault, &infisical_vault, &op_vault] {
        made.push(connect(&api, &admin, &team, vault).await);
    }

    // A connection may name its own Infisical; one on a loopback address is refused when
    // it is called (this deployment does not allow private addresses), before any request.
    let mut own = infisical_vault.connection.clone();
    own["name"] = json!("infisical-own");
    own["api_url"] = json!(infisical_url);
    let created = api
        .post(&format!("/v1/teams/{team}/vault-connections"), &admin, &own)
        .await;
    created.expect_status(201, "POST an Infisical connection naming its own instance");
    assert_eq!(created.json["api_url"], json!(infisical_url), "{}", created.text);
    let asked = infisical.total_requests();
    let refused = api
        .post(
            &format!("/v1/teams/{team}/vault-connections/{}/verify", created.str("id")),
            &admin,
            &json!({}),
        )
        .await;
    refused.expect_status(200, "verify a connection to a loopback instance");
    assert_eq!(refused.json["verified"], false, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], "vault_unavailable", "{}", refused.text);
    assert_eq!(
        infisical.total_requests(),
        asked,
        "the loopback instance was not called"
    );
    api.delete(
        &format!("/v1/teams/{team}/vault-connections/{}", created.str("id")),
        &admin,
    )
    .await
    .expect_status(204, "delete the connection");

    let mut server_config: Config = config(&data_dir, None);
    server_config.vaults.doppler.api_url = doppler.url().to_owned();
    server_config.vaults.infisical.api_url = infisical_url.clone();
    server_config.vaults.onepassword.op_path = op.path();
    let deployment = Deployment::attach(&server_config).await.expect("a service attaches");
    // A thousand concurrent resolutions of the Doppler secret, nothing cached yet: one
    // call reaches Doppler, and every resolution gets its values.
    let before = doppler.requests();
    let deployment = std::sync::Arc::new(deployment);
    let resolutions: Vec<_> = (0..1000)
        .map(|_| {
            let (deployment, worker, team, secret) = (
                deployment.clone(),
                worker.token.clone(),
                team.clone(),
                made[0].1.clone(),
            );
            let key_id = doppler_vault.key_id.clone();
            tokio::spawn(async move {
                let core = deployment.custodian();
                let subject = core
                    .authenticate(&worker.into())
                    .await
                    .expect("the worker's token works");
                let credentials = core
                    .resolve(
                        &subject,
                        team.parse().expect("a team id"),
                        secret.parse().expect("a secret id"),
                    )
                    .await
                    .expect("the Doppler secret resolves");
                let got = credentials
                    .get(CredentialField::AccessKeyId)
                    .map(|v| v.expose_secret().to_owned());
                assert_eq!(got, Some(key_id));
            })
        })
        .collect();
    for resolution in resolutions {
        resolution.await.expect("a resolution task");
    }
    assert_eq!(
        doppler.requests() - before,
        1,
        "one call to Doppler for a thousand resolutions"
    );

    let vaults = [&doppler_vault, &infisical_vault, &op_vault];
    for (vault, (_, secret)) in vaults.iter().zip(&made) {
        assert_resolves(&deployment, &worker.token, &team, secret, vault).await;
    }
    // The service's cache answers again: Doppler is not asked.
    let asked = doppler.requests();
    assert_resolves(&deployment, &worker.token, &team, &made[0].1, &doppler_vault).await;
    assert_eq!(doppler.requests(), asked, "a cached resolution does not reach Doppler");

    // Rotate every connection over HTTP and revoke the old secrets at the fakes: the
    // service's next resolution must use the new ones (its cache holds the old revision).
    doppler.add_token(&doppler_new, "exports", "production");
    infisical.add_identity("machine-2", &infisical_new);
    for (vault, (connection, _)) in vaults.iter().zip(&made) {
        let rotated = api
            .post(
                &format!("/v1/teams/{team}/vault-connections/{connection}/rotate"),
                &admin,
                &vault.rotation,
            )
            .await;
        rotated.expect_status(200, "rotate a vault connection");
    }
    doppler.remove_token(&doppler_old);
    infisical.remove_identity("machine-1");
    op.write_state(&op_new, "ok", &op_secrets);
    for (vault, (_, secret)) in vaults.iter().zip(&made) {
        assert_resolves(&deployment, &worker.token, &team, secret, vault).await;
    }
    assert!(doppler.requests() > asked, "the rotated connection was read again");
    assert!(
        op.invocations().last().is_some_and(|run| run.token_matched),
        "op ran with the new token"
    );

    // A connection in use cannot go; once its secret is gone, it can.
    for (connection, secret) in &made {
        let refused = api
            .delete(&format!("/v1/teams/{team}/vault-connections/{connection}"), &admin)
            .await;
        refused.expect_status(409, "delete a connection a secret uses");
        api.delete(&format!("/v1/teams/{team}/secrets/{secret}"), &admin)
            .await
            .expect_status(204, "delete the mapped secret");
        api.delete(&format!("/v1/teams/{team}/vault-connections/{connection}"), &admin)
            .await
            .expect_status(204, "delete the connection");
    }

    let log = server.terminate().join("\n");
    let answers = api.seen().join("\n");
    for secret in [
        &doppler_old,
        &doppler_new,
        &infisical_old,
        &infisical_new,
        &op_old,
        &op_new,
        &doppler_vault.secret_key,
        &infisical_vault.secret_key,
        &op_vault.secret_key,
    ] {
        assert!(!log.contains(secret.as_str()), "the server's log holds {secret}");
        assert!(!answers.contains(secret.as_str()), "an answer holds {secret}");
    }
    let bytes = database_bytes(&data_dir);
    assert!(
        !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
        "a database file holds a canary"
    );
}
