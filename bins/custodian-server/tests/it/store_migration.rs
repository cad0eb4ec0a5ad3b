//! `custodian store migrate` end to end: the built binary moves a deployment's stored
//! credentials from the local store to AWS SSM Parameter Store (a real `moto_server`, read
//! back through the SDK) and back again, finishing a run that was cut short, while servers
//! refuse to start on the wrong store or half-way; no value reaches an output.

use std::path::Path;
use std::process::Output;

use diesel::prelude::*;
use reqwest::Method;
use serde_json::json;

use crate::process::{free_port, refused_start};
use crate::ssm::{
    SsmServer, Start, assert_parameters, canary, credential_blob_rows, custodian, database_bytes, holds, moto_place,
    moto_url, parameters_under,
};
use crate::support::{
    Api, GROUPS, Reply, create_group, create_team, doppler_body, group_body, group_secrets, key_id, read_value,
    s3_secret_body, unique,
};

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
    let (_dir, data_dir, prefix, ssm) = moto_place(&moto, "move").await;
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

/// The values of a group key: `(key id, version or the current one, value)`.
type GroupValues = Vec<(String, Option<i64>, String)>;

/// Every group value reads back through the API, each version as asked.
async fn check_group_values(api: &Api, token: &str, values: &GroupValues) {
    for (key, version, expected) in values {
        let (value, _) = read_value(api, token, key, *version).await;
        assert!(value == *expected, "{key} version {version:?} reads back another value");
    }
}

/// The group's `integrationId`, and the ids `GET /api/svc/v1/integrations` lists.
async fn integration_ids(api: &Api, token: &str, group_id: &str) -> (String, Vec<String>) {
    let group = api.get(&format!("{GROUPS}/{group_id}"), token).await;
    group.expect_status(200, "GET the group");
    let listed = api.get("/api/svc/v1/integrations", token).await;
    listed.expect_status(200, "GET the integrations");
    let ids = listed.json["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let integration = group.json["data"]["integrationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (integration, ids)
}

/// `PUT /api/svc/v1/secret-groups`: the manifest of the group `name` in `integration`, as
/// the SDK applies it.
async fn apply_manifest(api: &Api, token: &str, name: &str, integration: &str) -> Reply {
    let manifest = json!({ "manifest": { "type": "secret-group", "name": name, "integration_fqn": integration } });
    api.put(GROUPS, token, &manifest).await
}

/// `custodian store migrate` moves every version of a secret-group key to SSM (one
/// parameter per version) and back; each version reads back through the API after each
/// move, and no value reaches an output.
#[tokio::test]
async fn group_values_move_to_ssm_and_back_with_every_version_readable() {
    let Some(moto) = moto_url("store_migration::group_values_move_to_ssm_and_back_with_every_version_readable") else {
        return;
    };
    let (_dir, data_dir, prefix, ssm) = moto_place(&moto, "groups").await;
    let mut outputs: Vec<String> = Vec::new();

    // On the local store: ROTATED at versions 1 and 2, STEADY at version 1.
    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::First);
    let (api, token) = (server.api.clone(), server.token.clone());
    let team = create_team(&api, &token, &format!("groups-{}", unique())).await;
    let (first, second, steady) = (canary("GROUPV1"), canary("GROUPV2"), canary("GROUPSTEADY"));
    let group_name = format!("moving-{}", unique());
    let group = create_group(
        &api,
        &token,
        &group_body(
            &group_name,
            "local",
            Some(&team),
            &[("ROTATED", &first), ("STEADY", &steady)],
        ),
    )
    .await;
    let group_id = group["id"].as_str().expect("a group id").to_owned();
    api.put(
        &format!("{GROUPS}/{group_id}"),
        &token,
        &json!({ "secrets": group_secrets(&[("ROTATED", Some(&second)), ("STEADY", None)]) }),
    )
    .await
    .expect_status(200, "PUT a second version of ROTATED");
    let (rotated_id, steady_id) = (key_id(&group, "ROTATED"), key_id(&group, "STEADY"));
    let values: GroupValues = vec![
        (rotated_id.clone(), Some(1), first.clone()),
        (rotated_id.clone(), Some(2), second.clone()),
        (rotated_id.clone(), None, second.clone()),
        (steady_id.clone(), None, steady.clone()),
    ];
    check_group_values(&api, &token, &values).await;
    assert_eq!(
        integration_ids(&api, &token, &group_id).await,
        ("local".to_owned(), vec!["local".to_owned()])
    );
    outputs.extend(server.terminate());
    let local_rows = credential_blob_rows(&data_dir);

    // To SSM: three values, one parameter per version.
    let moved = migrate(&data_dir, "local", &moto, &prefix, "aws-ssm");
    let stdout = text(&moved.stdout);
    outputs.extend([stdout.clone(), text(&moved.stderr)]);
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    assert!(stdout.contains("copied: 3\n"), "{stdout}");
    assert!(stdout.contains("missing: 0\n"), "{stdout}");
    assert_eq!(credential_blob_rows(&data_dir), 0);
    let base = format!("{prefix}/default/{team}/group-secret");
    assert_parameters(
        &ssm,
        &base,
        vec![
            (format!("{base}/{rotated_id}/v1"), first.as_str()),
            (format!("{base}/{rotated_id}/v2"), second.as_str()),
            (format!("{base}/{steady_id}/v1"), steady.as_str()),
        ],
    )
    .await;

    let server = SsmServer::launch(&data_dir, "aws-ssm", &moto, &prefix, Start::Again(token.clone()));
    check_group_values(&server.api, &token, &values).await;
    // The SDK applies a group's manifest naming an integration the deployment lists: the
    // moved group must take the one there is. (The group's `integrationId` is recorded when
    // it is created.)
    let (on_ssm, listed) = integration_ids(&server.api, &token, &group_id).await;
    assert_eq!(listed, ["aws-ssm"]);
    let manifest = apply_manifest(&server.api, &token, &group_name, "aws-ssm").await;
    let manifest_problem = (manifest.status.as_u16() != 200).then(|| {
        format!(
            "after the move to aws-ssm the group's integrationId is {on_ssm:?}, and its manifest naming the one \
             listed integration (aws-ssm) answers {} {}",
            manifest.status, manifest.text
        )
    });
    outputs.extend(server.terminate());

    // And back: the same three values, nothing left in SSM.
    let back = migrate(&data_dir, "aws-ssm", &moto, &prefix, "local");
    let stdout = text(&back.stdout);
    outputs.extend([stdout.clone(), text(&back.stderr)]);
    assert!(back.status.success(), "{}", text(&back.stderr));
    assert!(stdout.contains("copied: 3\n"), "{stdout}");
    assert!(parameters_under(&ssm, &base).await.is_empty(), "parameters left in SSM");
    assert_eq!(credential_blob_rows(&data_dir), local_rows);
    let server = SsmServer::launch(&data_dir, "local", &moto, &prefix, Start::Again(token.clone()));
    check_group_values(&server.api, &token, &values).await;
    assert_eq!(
        integration_ids(&server.api, &token, &group_id).await,
        ("local".to_owned(), vec!["local".to_owned()])
    );
    apply_manifest(&server.api, &token, &group_name, "local")
        .await
        .expect_status(200, "PUT the group's manifest back on the local store");
    outputs.extend(server.terminate());

    for value in [&first, &second, &steady] {
        assert!(
            outputs.iter().all(|o| !o.contains(value.as_str())),
            "a group value reached an output"
        );
    }
    assert!(manifest_problem.is_none(), "{}", manifest_problem.unwrap_or_default());
}

#[tokio::test]
async fn a_migration_not_yet_switched_can_be_given_up() {
    let Some(moto) = moto_url("store_migration::a_migration_not_yet_switched_can_be_given_up") else {
        return;
    };
    let (_dir, data_dir, prefix, ssm) = moto_place(&moto, "undo").await;
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
    assert!(parameters_under(&ssm, &prefix).await.is_empty());

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
    let (_dir, data_dir, prefix, _) = moto_place(&moto, "old").await;
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
