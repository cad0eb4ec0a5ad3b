//! Against a real `moto_server`: the CredentialStore contract, and what the store leaves in
//! SSM read back through the SDK (names, SecureString, tiers, KMS key, pruned history).

use std::sync::Arc;

use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType};
use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind, CredentialStore, StoreError};
use custodian_testkit::{contract, run_cases};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::support::{self, moto_url, settings, unique_prefix};

fn key(kind: CredentialKind) -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::new_v4()),
        kind,
        record_id: Uuid::new_v4(),
    }
}

/// The parameter's type, value and version as SSM holds them (decrypted), or `None`.
async fn read_back(client: &aws_sdk_ssm::Client, name: &str) -> Option<(ParameterType, String, i64)> {
    match client.get_parameter().name(name).with_decryption(true).send().await {
        Ok(output) => {
            let parameter = output.parameter.expect("a parameter");
            assert_eq!(parameter.name.as_deref(), Some(name));
            Some((
                parameter.r#type.expect("a type"),
                parameter.value.expect("a value"),
                parameter.version,
            ))
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => None,
        Err(e) => panic!("GetParameter {name}: {e:?}"),
    }
}

/// Tier and KMS key of one parameter (DescribeParameters, which never returns values).
async fn describe(client: &aws_sdk_ssm::Client, name: &str) -> (Option<ParameterTier>, Option<String>) {
    let output = client
        .describe_parameters()
        .parameter_filters(
            ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .values(name)
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect("DescribeParameters");
    let [metadata] = output.parameters() else {
        panic!("one parameter named {name}: {:?}", output.parameters());
    };
    (metadata.tier.clone(), metadata.key_id.clone())
}

/// Every parameter name under `path`, sorted.
async fn names_under(client: &aws_sdk_ssm::Client, path: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .max_results(10)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("GetParametersByPath page");
        names.extend(page.parameters().iter().filter_map(|p| p.name.clone()));
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_on_moto() {
    let Some(url) = moto_url("credential store contract on moto") else {
        return;
    };
    let prefix = unique_prefix();
    run_cases(
        "aws-ssm (moto)",
        "credential_store",
        &contract::credential_store::cases(),
        || {
            let settings = settings(&url, &prefix);
            async move { Arc::new(support::store(&settings).await) as Arc<dyn CredentialStore> }
        },
    )
    .await;
}

#[tokio::test]
async fn each_version_is_a_secure_string_named_by_the_layout() {
    let Some(url) = moto_url("parameter names, type and content on moto") else {
        return;
    };
    let prefix = unique_prefix();
    let store = support::store(&settings(&url, &prefix)).await;
    let client = support::sdk_client(&url).await;
    let record = key(CredentialKind::StorageSecret);
    let value = r#"{"access_key_id":"AKIAEXAMPLE","secret_access_key":"wJalr/K7MDENG+bPxRfiCY"}"#;

    store.put(&record, 1, &SecretString::from(value)).await.expect("put v1");
    store
        .put(&record, 2, &SecretString::from("second"))
        .await
        .expect("put v2");

    let v1 = format!(
        "{prefix}/default/{}/storage-secret/{}/v1",
        record.team_id.as_uuid(),
        record.record_id
    );
    assert_eq!(store.parameter_name(&record, 1).expect("name"), v1);
    let (kind, stored, ssm_version) = read_back(&client, &v1).await.expect("v1 is in SSM");
    assert_eq!(kind, ParameterType::SecureString);
    assert!(stored == value, "the stored content is the value");
    assert_eq!(ssm_version, 1, "written once, never overwritten");

    let (tier, key_id) = describe(&client, &v1).await;
    assert_eq!(tier, Some(ParameterTier::Standard));
    assert_eq!(key_id.as_deref(), Some("alias/aws/ssm"), "SSM's default key");

    let record_path = format!(
        "{prefix}/default/{}/storage-secret/{}",
        record.team_id.as_uuid(),
        record.record_id
    );
    assert_eq!(
        names_under(&client, &prefix).await,
        vec![format!("{record_path}/v1"), format!("{record_path}/v2")],
        "nothing else is written"
    );
}

#[tokio::test]
async fn values_over_4_kib_use_the_advanced_tier_and_smaller_ones_standard() {
    let Some(url) = moto_url("Advanced tier above 4 KiB on moto") else {
        return;
    };
    let store = support::store(&settings(&url, &unique_prefix())).await;
    let client = support::sdk_client(&url).await;
    let record = key(CredentialKind::GroupSecret);
    let cases = [
        (1, "s".repeat(4096), ParameterTier::Standard),
        (2, "a".repeat(4097), ParameterTier::Advanced),
        (3, "€".repeat(1366), ParameterTier::Advanced), // 1366 characters, 4098 bytes
        (4, "m".repeat(8192), ParameterTier::Advanced),
    ];
    for (version, value, tier) in &cases {
        store
            .put(&record, *version, &SecretString::from(value.clone()))
            .await
            .unwrap_or_else(|e| panic!("put {} bytes: {e:?}", value.len()));
        let name = store.parameter_name(&record, *version).expect("name");
        assert_eq!(
            describe(&client, &name).await.0.as_ref(),
            Some(tier),
            "{} bytes",
            value.len()
        );
        let (_, stored, _) = read_back(&client, &name).await.expect("stored");
        assert!(stored == *value, "{} bytes round-trip", value.len());
        assert!(store.get(&record, *version).await.expect("get").expose_secret() == value.as_str());
    }
}

#[tokio::test]
async fn the_configured_kms_key_encrypts_the_parameters() {
    let Some(url) = moto_url("configured KMS key on moto") else {
        return;
    };
    let mut settings = settings(&url, &unique_prefix());
    settings.kms_key_id = Some("alias/custodian-credentials".to_owned());
    let store = support::store(&settings).await;
    let client = support::sdk_client(&url).await;
    let record = key(CredentialKind::VaultConnection);
    store.put(&record, 1, &SecretString::from("token")).await.expect("put");
    let name = store.parameter_name(&record, 1).expect("name");
    assert_eq!(
        describe(&client, &name).await.1.as_deref(),
        Some("alias/custodian-credentials")
    );
}

#[tokio::test]
async fn pruning_removes_old_versions_from_ssm_entirely() {
    let Some(url) = moto_url("prune leaves no history on moto") else {
        return;
    };
    let prefix = unique_prefix();
    let store = support::store(&settings(&url, &prefix)).await;
    let client = support::sdk_client(&url).await;
    let record = key(CredentialKind::StorageSecret);
    // More versions than one page of GetParametersByPath (10) and one DeleteParameters call
    // (10) hold.
    for version in 1..=23 {
        store
            .put(&record, version, &SecretString::from(format!("credentials {version}")))
            .await
            .expect("put");
    }
    store.prune(&record, 22).await.expect("prune keeping 22");
    let record_path = format!(
        "{prefix}/default/{}/storage-secret/{}",
        record.team_id.as_uuid(),
        record.record_id
    );
    assert_eq!(
        names_under(&client, &prefix).await,
        vec![format!("{record_path}/v22"), format!("{record_path}/v23")]
    );
    for version in 1..=21 {
        let name = store.parameter_name(&record, version).expect("name");
        assert!(
            read_back(&client, &name).await.is_none(),
            "v{version} is gone, history and all"
        );
        let history = client.get_parameter_history().name(&name).send().await;
        assert!(
            history.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_parameter_not_found())),
            "v{version} has no history left"
        );
    }
    assert_eq!(store.stored_versions(&record).await.expect("versions"), vec![22, 23]);

    store.delete_all(&record).await.expect("delete all");
    assert!(names_under(&client, &prefix).await.is_empty());
}

#[tokio::test]
async fn rejected_values_write_nothing() {
    let Some(url) = moto_url("size rejections write nothing on moto") else {
        return;
    };
    let prefix = unique_prefix();
    let store = support::store(&settings(&url, &prefix)).await;
    let client = support::sdk_client(&url).await;
    let record = key(CredentialKind::StorageSecret);
    // moto itself would accept 9000 bytes; the store refuses before the call.
    match store.put(&record, 1, &SecretString::from("z".repeat(9000))).await {
        Err(StoreError::Rejected(message)) => assert!(message.contains("9000 bytes"), "{message}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(names_under(&client, &prefix).await.is_empty());
    assert_eq!(store.get(&record, 1).await.err(), Some(StoreError::NotFound));
}

#[tokio::test]
async fn a_plain_string_planted_at_a_credential_name_is_not_trusted() {
    let Some(url) = moto_url("non-SecureString parameter on moto") else {
        return;
    };
    let store = support::store(&settings(&url, &unique_prefix())).await;
    let client = support::sdk_client(&url).await;
    let record = key(CredentialKind::StorageSecret);
    let name = store.parameter_name(&record, 1).expect("name");
    client
        .put_parameter()
        .name(&name)
        .value("planted")
        .r#type(ParameterType::String)
        .send()
        .await
        .expect("plant a String parameter");
    assert_eq!(store.get(&record, 1).await.err(), Some(StoreError::Integrity));
}
