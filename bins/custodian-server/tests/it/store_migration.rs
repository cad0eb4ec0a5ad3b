//! `custodian store migrate` end to end: the built binary moves a deployment's stored
//! credentials from the local store to AWS SSM Parameter Store (a real `moto_server`, read
//! back through the SDK) and back again, finishing a run that was cut short, while servers
//! refuse to start on the wrong store or half-way; no value reaches an output.

use std::path::Path;
use std::process::Output;

use diesel::prelude::*;
use reqwest::Method;
use serde_json::json;
use tempfile::TempDir;

use crate::process::{free_port, refused_start};
use crate::ssm::{
    SsmServer, Start, canary, credential_blob_rows, custodian, database_bytes, holds, moto_url, parameters_under,
    sdk_client,
};
use crate::support::{Api, create_team, doppler_body, s3_secret_body, unique};

/// What the deployment holds, to check after each move.
struct Deployment {
    team: String,
    /// `(secret id, version in use, every credential value of that version)`.
    secrets: Vec<(String, i64, Vec<String>)>,
    vault_connection: String,
    vault_token: String,
    /// Every value written, current or rotated away.
    values: Vec<String>,
}

/// Run `custodian store migrate --to <to>` with the `[ssm]` settings of `endpoint`.
fn migrate(data_dir: &Path, configured: &str, endpoint: &str, prefix: &str, to: &str) -> Output {
    custodian(data_dir, configured, endpoint, prefix)
        .args(["store", "migrate", "--to", to])
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server start on `store` that must fail; what it wrote.
fn refused_serve(data_dir: &Path, store: &str, endpoint: &str, prefix: &str) -> String {
    refused_start(custodian(data_dir, store, endpoint, prefix))
}

/// Every secret resolves and verifies, at the version it had.
async fn check_secrets_resolve(api: &Api, token: &str, deployment: &Deployment) {
    for (secret, version, _) in &deployment.secrets {
        let path = format!("/v1/teams/{}/secrets/{secret}", deployment.team);
        let details = api.get(&path, token).await;
        details.expect_status(200, "GET a migrated secret");
        assert_eq!(details.json["credentials_version"], *version, "{}", details.text);
        let verified = api
            .call(Method::POST, &format!("{path}/verify"), Some(token), None)
            .await;
        verified.expect_status(200, "POST verify of a migrated secret");
        assert_eq!(verified.json["verified"], true, "{}", verified.text);
    }
}

#[tokio::test]
async fn a_deployment_moves_its_credentials_to_ssm_and_back_with_one_command() {
    let Some(moto) = moto_url("store_migration::a_deployment_moves_its_credentials_to_ssm_and_back_with_one_command")
    else {
        return;
    };
    let dir = TempDir::new().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let prefix = format!("/custodian-move-{}", uuid::Uuid::new_v4().simple());
    let ssm = sdk_client(&moto).await;
    let mut outputs: Vec<String> = Vec::new();

    // A deployment on the local store: three secrets (one rotated) and a vault connection.
    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::First);
    let (api, token) = (server.api.clone(), server.token.clone());
    let team = create_team(&api, &token, &format!("move-{}", unique())).await;
    let mut deployment = Deployment {
        team: team.clone(),
        secrets: Vec::new(),
        vault_connection: String::new(),
        vault_token: format!("dp.st.production.{}", canary("VAULT")),
        values: Vec::new(),
    };
    for n in 0..3 {
        let (id, key) = (canary(&format!("AKID{n}")), canary(&format!("KEY{n}")));
        let created = api
            .post(
                &format!("/v1/teams/{team}/secrets"),
                &token,
                &s3_secret_body(&format!("export-{n}-{}", unique()), &id, &key),
            )
            .await;
        created.expect_status(201, "POST a managed secret on the local store");
        deployment.values.extend([id.clone(), key.clone()]);
        deployment.secrets.push((created.str("id"), 1, vec![id, key]));
    }
    let (id, key) = (canary("AKIDROT"), canary("KEYROT"));
    let rotated = &mut deployment.secrets[0];
    api.patch(
        &format!("/v1/teams/{team}/secrets/{}", rotated.0),
        &token,
        &json!({ "credentials": { "access_key_id": id, "secret_access_key": key } }),
    )
    .await
    .expect_status(200, "PATCH a secret's credentials");
    *rotated = (rotated.0.clone(), 2, vec![id.clone(), key.clone()]);
    deployment.values.extend([id, key]);
    let connection = api
        .post(
            &format!("/v1/teams/{team}/vault-connections"),
            &token,
            &doppler_body(&format!("doppler-{}", unique()), &deployment.vault_token),
        )
        .await;
    connection.expect_status(201, "POST a vault connection");
    deployment.vault_connection = connection.str("id");
    deployment.values.push(deployment.vault_token.clone());
    outputs.extend(server.terminate());
    assert_eq!(
        credential_blob_rows(&data_dir),
        4,
        "three secrets and one vault connection"
    );

    // A run that cannot reach SSM stops after recording the migration, moving nothing; no
    // server starts half-way, on either store.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let cut_short = migrate(&data_dir, "local", &closed, &prefix, "aws-ssm");
    outputs.extend([text(&cut_short.stdout), text(&cut_short.stderr)]);
    assert!(!cut_short.status.success(), "{}", text(&cut_short.stderr));
    assert_eq!(credential_blob_rows(&data_dir), 4);
    let schema = custodian(&data_dir, "local", &moto, &prefix)
        .arg("migrate")
        .output()
        .expect("the binary runs");
    assert!(schema.status.success(), "{}", text(&schema.stderr));
    for store in ["local", "aws-ssm"] {
        let refused = refused_serve(&data_dir, store, &moto, &prefix);
        assert!(refused.contains("was interrupted"), "{refused}");
        assert!(refused.contains("custodian store migrate --to aws-ssm"), "{refused}");
        outputs.push(refused);
    }

    // Run again: everything is copied, the rows switch, the local store is emptied.
    let moved = migrate(&data_dir, "local", &moto, &prefix, "aws-ssm");
    let stdout = text(&moved.stdout);
    outputs.extend([stdout.clone(), text(&moved.stderr)]);
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    assert!(stdout.contains("copied: 4\n"), "{stdout}");
    assert!(stdout.contains("missing: 0\n"), "{stdout}");
    assert!(stdout.contains("removed from local (default): 4 records"), "{stdout}");
    assert!(stdout.contains("CUSTODIAN_CREDENTIAL_STORE=aws-ssm"), "{stdout}");
    assert_eq!(credential_blob_rows(&data_dir), 0);
    let base = format!("{prefix}/default/{team}");
    let stored = parameters_under(&ssm, &base).await;
    let mut expected: Vec<String> = deployment
        .secrets
        .iter()
        .map(|(id, version, _)| format!("{base}/storage-secret/{id}/v{version}"))
        .collect();
    expected.push(format!("{base}/vault-connection/{}/v1", deployment.vault_connection));
    expected.sort();
    assert_eq!(stored.iter().map(|p| p.name.clone()).collect::<Vec<_>>(), expected);
    for (id, version, values) in &deployment.secrets {
        let name = format!("{base}/storage-secret/{id}/v{version}");
        let parameter = stored.iter().find(|p| p.name == name).expect("the secret's parameter");
        assert!(values.iter().all(|v| parameter.value.contains(v.as_str())), "{name}");
    }

    // Once more: nothing left to do, nothing written twice.
    let again = migrate(&data_dir, "local", &moto, &prefix, "aws-ssm");
    outputs.extend([text(&again.stdout), text(&again.stderr)]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("already in aws-ssm"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(parameters_under(&ssm, &base).await.len(), expected.len());

    // The local store is refused now; the aws-ssm store serves every secret as before.
    let refused = refused_serve(&data_dir, "local", &moto, &prefix);
    assert!(
        refused.contains("the database's credentials are in aws-ssm"),
        "{refused}"
    );
    outputs.push(refused);
    let server = SsmServer::launch(&data_dir, "aws-ssm", &moto, &prefix, Start::Again(token.clone()));
    check_secrets_resolve(&server.api, &token, &deployment).await;
    outputs.extend(server.terminate());
    let bytes = database_bytes(&data_dir);
    for value in &deployment.values {
        assert!(!holds(&bytes, value), "a credential is in the SQLite files");
    }

    // And back to the local store.
    let back = migrate(&data_dir, "aws-ssm", &moto, &prefix, "local");
    let stdout = text(&back.stdout);
    outputs.extend([stdout.clone(), text(&back.stderr)]);
    assert!(back.status.success(), "{}", text(&back.stderr));
    assert!(stdout.contains("copied: 4\n"), "{stdout}");
    assert!(parameters_under(&ssm, &base).await.is_empty(), "parameters left in SSM");
    assert_eq!(credential_blob_rows(&data_dir), 4);
    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::Again(token.clone()));
    check_secrets_resolve(&server.api, &token, &deployment).await;
    outputs.extend(server.terminate());

    for value in &deployment.values {
        assert!(
            outputs.iter().all(|o| !o.contains(value.as_str())),
            "a credential reached an output"
        );
    }
}

#[tokio::test]
async fn a_migration_not_yet_switched_can_be_given_up() {
    let Some(moto) = moto_url("store_migration::a_migration_not_yet_switched_can_be_given_up") else {
        return;
    };
    let dir = TempDir::new().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let prefix = format!("/custodian-undo-{}", uuid::Uuid::new_v4().simple());
    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::First);
    let (api, token) = (server.api.clone(), server.token.clone());
    let team = create_team(&api, &token, &format!("undo-{}", unique())).await;
    let key = canary("UNDO");
    let created = api
        .post(
            &format!("/v1/teams/{team}/secrets"),
            &token,
            &s3_secret_body(&format!("undo-{}", unique()), &canary("AKID"), &key),
        )
        .await;
    created.expect_status(201, "POST a managed secret");
    let secret = created.str("id");
    server.terminate();

    let closed = format!("http://127.0.0.1:{}", free_port());
    assert!(
        !migrate(&data_dir, "local", &closed, &prefix, "aws-ssm")
            .status
            .success()
    );
    let given_up = migrate(&data_dir, "local", &moto, &prefix, "local");
    let stdout = text(&given_up.stdout);
    assert!(given_up.status.success(), "{}", text(&given_up.stderr));
    assert!(stdout.contains("gave up the migration to aws-ssm"), "{stdout}");
    assert!(!stdout.contains(&key) && !text(&given_up.stderr).contains(&key));
    assert!(parameters_under(&sdk_client(&moto).await, &prefix).await.is_empty());

    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::Again(token.clone()));
    let verified = server
        .api
        .call(
            Method::POST,
            &format!("/v1/teams/{team}/secrets/{secret}/verify"),
            Some(&token),
            None,
        )
        .await;
    verified.expect_status(200, "POST verify after giving the migration up");
    assert_eq!(verified.json["verified"], true, "{}", verified.text);
    server.terminate();
}

#[tokio::test]
async fn a_database_from_before_the_binding_keeps_its_local_credentials() {
    let Some(moto) = moto_url("store_migration::a_database_from_before_the_binding_keeps_its_local_credentials") else {
        return;
    };
    let dir = TempDir::new().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let prefix = format!("/custodian-old-{}", uuid::Uuid::new_v4().simple());
    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::First);
    let (api, token) = (server.api.clone(), server.token.clone());
    let team = create_team(&api, &token, &format!("old-{}", unique())).await;
    let created = api
        .post(
            &format!("/v1/teams/{team}/secrets"),
            &token,
            &s3_secret_body(&format!("old-{}", unique()), &canary("AKID"), &canary("KEY")),
        )
        .await;
    created.expect_status(201, "POST a managed secret");
    let secret = created.str("id");
    server.terminate();
    // As a database written before the store was recorded.
    let mut connection = SqliteConnection::establish(data_dir.join("custodian.db").to_str().expect("a UTF-8 path"))
        .expect("open the server's SQLite database");
    diesel::sql_query("DELETE FROM credential_store_binding")
        .execute(&mut connection)
        .expect("forget the binding");

    // Its configuration switched to aws-ssm without moving anything: refused, not emptied.
    let refused = refused_serve(&data_dir, "aws-ssm", &moto, &prefix);
    assert!(
        refused.contains("the database's credentials are in local (default)"),
        "{refused}"
    );
    assert!(refused.contains("custodian store migrate --to aws-ssm"), "{refused}");
    assert_eq!(credential_blob_rows(&data_dir), 1);
    // On the local store it serves the secret as before.
    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::Again(token.clone()));
    let verified = server
        .api
        .call(
            Method::POST,
            &format!("/v1/teams/{team}/secrets/{secret}/verify"),
            Some(&token),
            None,
        )
        .await;
    verified.expect_status(200, "POST verify on the local store");
    assert_eq!(verified.json["verified"], true, "{}", verified.text);
    server.terminate();
}
