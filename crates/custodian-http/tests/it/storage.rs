//! The storage routes: secrets, locations, vault connections and the audit trail.

use std::collections::HashMap;
use std::sync::Arc;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::test;
use custodian_core::{AddMemberInput, Custodian, NewTeamInput, NewUserInput};
use custodian_domain::{RequestContext, TeamId, VaultType};
use custodian_ports::{MockVaultProvider, VaultProvider};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::service;
use crate::support::{World, send, world, world_with_vaults};

/// Credential values planted in requests; no response body may ever contain one.
const KEY_ID: &str = "AKIACANARYKEYID0001";
const SECRET: &str = "canary-secret-access-key-7f3a";
const ROTATED: &str = "canary-rotated-secret-key-19c2";
const TOKEN: &str = "dp.st.prd.canary-vault-token-5e1d";
const ROTATED_TOKEN: &str = "dp.st.prd.canary-rotated-token-88aa";
const VAULT_VALUE: &str = "canary-value-from-the-vault-3b7";
const CANARIES: [&str; 6] = [KEY_ID, SECRET, ROTATED, TOKEN, ROTATED_TOKEN, VAULT_VALUE];

fn ctx() -> RequestContext {
    RequestContext::default()
}

async fn team(custodian: &Custodian, w: &World, name: &str) -> TeamId {
    custodian
        .create_team(
            &w.admin,
            &ctx(),
            NewTeamInput {
                name: Some(name.into()),
                ..NewTeamInput::default()
            },
        )
        .await
        .expect("the team is created")
        .id
}

/// A user who is not a tenant admin, with `role` in `team`; their token.
async fn member(custodian: &Custodian, w: &World, team: TeamId, email: &str, role: &str) -> SecretString {
    let (user, issued) = custodian
        .create_user(
            &w.admin,
            &ctx(),
            NewUserInput {
                email: Some(email.into()),
                display_name: None,
                tenant_admin: false,
            },
        )
        .await
        .expect("the user is created");
    custodian
        .add_member(
            &w.admin,
            &ctx(),
            team,
            AddMemberInput {
                email: None,
                user_id: Some(user.id.to_string()),
                role: Some(role.into()),
            },
        )
        .await
        .expect("the user joins the team");
    issued.token
}

/// A Doppler that accepts any token and answers every reference with [`VAULT_VALUE`].
fn doppler() -> HashMap<VaultType, Arc<dyn VaultProvider>> {
    let mut provider = MockVaultProvider::new();
    provider.expect_vault_type().return_const(VaultType::Doppler);
    provider.expect_verify().returning(|_| Ok(()));
    provider
        .expect_fetch()
        .returning(|_, references, _| Ok(references.iter().map(|_| SecretString::from(VAULT_VALUE)).collect()));
    HashMap::from([(VaultType::Doppler, Arc::new(provider) as Arc<dyn VaultProvider>)])
}

fn s3_secret(name: &str, secret: &str) -> Value {
    json!({
        "name": name,
        "secret_type": "s3",
        "auth_method": "s3_access_key",
        "description": "Raw data landing zone",
        "credentials": {"access_key_id": KEY_ID, "secret_access_key": secret},
    })
}

/// Every response body seen, to check at the end that no credential reached one.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    async fn send<S, B>(
        &mut self,
        app: &S,
        method: Method,
        uri: &str,
        token: &SecretString,
        body: Option<Value>,
    ) -> (StatusCode, Value)
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let (status, value) = send(app, method, uri, Some(token), body).await;
        self.0.push(value.to_string());
        (status, value)
    }

    fn assert_no_canary(&self) {
        for body in &self.0 {
            for canary in CANARIES {
                assert!(!body.contains(canary), "a credential reached a response: {body}");
            }
        }
    }
}

/// `GET uri` with `Accept: text/csv`: the status, the content type and the body.
async fn get_csv<S, B>(app: &S, uri: &str, token: &SecretString) -> (StatusCode, String, String)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let request = test::TestRequest::get()
        .uri(uri)
        .insert_header((header::AUTHORIZATION, format!("Bearer {}", token.expose_secret())))
        .insert_header((header::ACCEPT, "text/csv"))
        .to_request();
    let response = test::call_service(app, request).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = String::from_utf8(test::read_body(response).await.to_vec()).expect("CSV is UTF-8");
    (status, content_type, body)
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn locs(body: &Value) -> Vec<Value> {
    body["detail"]
        .as_array()
        .expect("a 422 detail list")
        .iter()
        .map(|d| d["loc"].clone())
        .collect()
}

#[actix_web::test]
async fn a_managed_secret_is_created_listed_detailed_rotated_verified_and_deleted() {
    let w = world().await;
    let custodian = w.state.custodian.clone();
    let team = team(&custodian, &w, "data-platform").await;
    let token = w.admin_token.clone();
    let app = service!(w.state);
    let mut seen = Seen::default();
    let base = format!("/v1/teams/{team}/secrets");

    let (status, created) = seen
        .send(&app, Method::POST, &base, &token, Some(s3_secret("prod-s3", SECRET)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // The create reference's response, exactly.
    assert_eq!(
        keys(&created),
        [
            "auth_method",
            "created_at",
            "created_by",
            "description",
            "id",
            "name",
            "secret_type"
        ]
    );
    assert_eq!(created["name"], "prod-s3");
    assert_eq!(created["secret_type"], "s3");
    assert_eq!(created["auth_method"], "s3_access_key");
    assert_eq!(created["description"], "Raw data landing zone");
    let id = created["id"].as_str().unwrap().to_owned();
    let uri = format!("{base}/{id}");

    let (status, list) = seen.send(&app, Method::GET, &base, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["limit"], 50);
    assert_eq!(list["offset"], 0);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["storage"], "managed");
    let (_, filtered) = seen
        .send(&app, Method::GET, &format!("{base}?secret_type=r2"), &token, None)
        .await;
    assert_eq!(filtered["total"], 0);
    let (_, searched) = seen
        .send(&app, Method::GET, &format!("{base}?search=PROD&limit=1"), &token, None)
        .await;
    assert_eq!(searched["total"], 1);
    assert_eq!(searched["limit"], 1);
    let (status, bad) = seen
        .send(&app, Method::GET, &format!("{base}?secret_type=ftp"), &token, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&bad), [json!(["query", "secret_type"])]);

    let (status, details) = seen.send(&app, Method::GET, &uri, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["storage"], "managed");
    assert_eq!(details["location_count"], 0);
    assert_eq!(details["locations"], json!([]));
    assert_eq!(details["credentials_version"], 1);
    assert!(details["vault_connection_id"].is_null());
    assert!(details["external_field_mappings"].is_null());
    assert!(details["updated_at"].is_string() && details["credentials_updated_at"].is_string());
    assert!(details.get("credentials").is_none());

    // Absent leaves the description; null clears it.
    let (status, renamed) = seen
        .send(&app, Method::PATCH, &uri, &token, Some(json!({"name": "prod-s3-raw"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["description"], "Raw data landing zone");
    assert_eq!(keys(&renamed), keys(&created));
    let (_, cleared) = seen
        .send(&app, Method::PATCH, &uri, &token, Some(json!({"description": null})))
        .await;
    assert!(cleared["description"].is_null());
    assert_eq!(cleared["name"], "prod-s3-raw");

    let rotation = json!({"credentials": {"access_key_id": KEY_ID, "secret_access_key": ROTATED}});
    let (status, rotated) = seen.send(&app, Method::PATCH, &uri, &token, Some(rotation)).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (_, details) = seen.send(&app, Method::GET, &uri, &token, None).await;
    assert_eq!(details["credentials_version"], 2);

    let (status, verified) = seen
        .send(&app, Method::POST, &format!("{uri}/verify"), &token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["fields"], json!(["access_key_id", "secret_access_key"]));
    assert!(verified["error"].is_null());
    assert!(verified["checked_at"].is_string());

    let (status, _) = seen.send(&app, Method::DELETE, &uri, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = seen.send(&app, Method::GET, &uri, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["code"], "not_found");
    seen.assert_no_canary();
}

#[actix_web::test]
async fn a_422_lists_every_failing_field_at_once_and_never_echoes_a_value() {
    let w = world().await;
    let custodian = w.state.custodian.clone();
    let team = team(&custodian, &w, "data-platform").await;
    let token = w.admin_token.clone();
    let app = service!(w.state);
    let mut seen = Seen::default();
    let base = format!("/v1/teams/{team}/secrets");

    let body = json!({
        "name": "",
        "secret_type": "s3",
        "auth_method": "s3_access_key",
        "description": "x".repeat(2001),
        "credentials": {"access_key_id": KEY_ID},
    });
    let (status, answer) = seen.send(&app, Method::POST, &base, &token, Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let found = locs(&answer);
    for expected in [
        json!(["body", "name"]),
        json!(["body", "description"]),
        json!(["body", "credentials", "secret_access_key"]),
    ] {
        assert!(found.contains(&expected), "{expected} not in {answer}");
    }
    assert!(answer.get("code").is_none());

    // A wrong pair and an unknown credential field, together.
    let body = json!({
        "name": "prod",
        "secret_type": "gcs",
        "auth_method": "s3_access_key",
        "credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET},
    });
    let (_, answer) = seen.send(&app, Method::POST, &base, &token, Some(body)).await;
    assert_eq!(locs(&answer), [json!(["body", "auth_method"])]);
    assert_eq!(answer["detail"][0]["type"], "invalid_combination");

    // Values that are not strings are named, every one, and not repeated.
    let body = json!({
        "name": "prod",
        "secret_type": "s3",
        "auth_method": "s3_access_key",
        "credentials": {"access_key_id": 4_242_424_242_u64, "secret_access_key": {"nested": SECRET}},
    });
    let (status, answer) = seen.send(&app, Method::POST, &base, &token, Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        locs(&answer),
        [
            json!(["body", "credentials", "access_key_id"]),
            json!(["body", "credentials", "secret_access_key"])
        ]
    );
    assert!(!answer.to_string().contains("4242424242"));

    // Unknown top-level fields are refused.
    let mut body = s3_secret("prod", SECRET);
    body["colour"] = json!("blue");
    let (status, answer) = seen.send(&app, Method::POST, &base, &token, Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["detail"][0]["type"], "extra_forbidden");

    // A padded credential value: the field is named, the value is not repeated.
    let body = s3_secret("prod", &format!(" {SECRET} "));
    let (status, answer) = seen.send(&app, Method::POST, &base, &token, Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&answer), [json!(["body", "credentials", "secret_access_key"])]);

    let (_, list) = seen.send(&app, Method::GET, &base, &token, None).await;
    assert_eq!(list["total"], 0, "nothing was written");
    seen.assert_no_canary();
}

#[actix_web::test]
async fn neither_or_both_storage_modes_are_refused() {
    let w = world_with_vaults(doppler()).await;
    let custodian = w.state.custodian.clone();
    let team = team(&custodian, &w, "data-platform").await;
    let token = w.admin_token.clone();
    let app = service!(w.state);
    let mut seen = Seen::default();
    let (_, vault) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{team}/vault-connections"),
            &token,
            Some(json!({"name": "doppler", "vault_type": "doppler", "access_token": TOKEN, "project": "backend", "config": "prd"})),
        )
        .await;
    let base = format!("/v1/teams/{team}/secrets");
    let neither = json!({"name": "prod", "secret_type": "s3", "auth_method": "s3_access_key"});
    let (status, answer) = seen.send(&app, Method::POST, &base, &token, Some(neither)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&answer), [json!(["body", "credentials"])]);

    let mut both = s3_secret("prod", SECRET);
    both["vault_connection_id"] = vault["id"].clone();
    both["field_mappings"] = json!([
        {"field_name": "access_key_id", "reference": "S3_KEY_ID"},
        {"field_name": "secret_access_key", "reference": "S3_SECRET"},
    ]);
    let (status, answer) = seen.send(&app, Method::POST, &base, &token, Some(both)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(locs(&answer).contains(&json!(["body", "credentials"])), "{answer}");
    seen.assert_no_canary();
}

#[actix_web::test]
async fn locations_follow_their_secret_and_keep_it_from_being_deleted() {
    let w = world().await;
    let custodian = w.state.custodian.clone();
    let team = team(&custodian, &w, "data-platform").await;
    let token = w.admin_token.clone();
    let app = service!(w.state);
    let mut seen = Seen::default();
    let (_, secret) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{team}/secrets"),
            &token,
            Some(s3_secret("prod-s3", SECRET)),
        )
        .await;
    let secret_id = secret["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/teams/{team}/locations");

    let mismatch = json!({"name": "raw", "location_type": "r2", "bucket_name": "raw", "secret_id": secret_id});
    let (status, answer) = seen.send(&app, Method::POST, &base, &token, Some(mismatch)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(locs(&answer).contains(&json!(["body", "location_type"])), "{answer}");

    let good = json!({
        "name": "raw",
        "location_type": "s3",
        "bucket_name": "raw-landing",
        "region": "eu-west-1",
        "secret_id": secret_id,
    });
    let (status, location) = seen.send(&app, Method::POST, &base, &token, Some(good)).await;
    assert_eq!(status, StatusCode::CREATED, "{location}");
    assert_eq!(location["secret_name"], "prod-s3");
    assert_eq!(location["secret_id"], secret_id.as_str());
    assert_eq!(location["bucket_name"], "raw-landing");
    assert_eq!(location["region"], "eu-west-1");
    assert!(location["endpoint_url"].is_null());
    let uri = format!("{base}/{}", location["id"].as_str().unwrap());

    let (status, in_use) = seen
        .send(
            &app,
            Method::DELETE,
            &format!("/v1/teams/{team}/secrets/{secret_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(in_use["code"], "secret_in_use");

    let (_, details) = seen
        .send(
            &app,
            Method::GET,
            &format!("/v1/teams/{team}/secrets/{secret_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(details["location_count"], 1);
    assert_eq!(details["locations"][0]["name"], "raw");

    // Changing the secret's type while the location is s3: 409 naming it.
    let (status, mismatch) = seen
        .send(
            &app,
            Method::PATCH,
            &format!("/v1/teams/{team}/secrets/{secret_id}"),
            &token,
            Some(json!({"secret_type": "r2", "auth_method": "r2_access_key"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(mismatch["code"], "location_type_mismatch");
    assert_eq!(mismatch["locations"][0]["name"], "raw");

    let (status, list) = seen
        .send(
            &app,
            Method::GET,
            &format!("{base}?secret_id={secret_id}&location_type=s3"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["secret_name"], "prod-s3");
    let (status, _) = seen
        .send(&app, Method::GET, &format!("{base}?secret_id=not-an-id"), &token, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, fetched) = seen.send(&app, Method::GET, &uri, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["name"], "raw");

    let (status, patched) = seen
        .send(
            &app,
            Method::PATCH,
            &uri,
            &token,
            Some(json!({"region": null, "description": "landing"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert!(patched["region"].is_null());
    assert_eq!(patched["description"], "landing");
    let (status, answer) = seen
        .send(&app, Method::PATCH, &uri, &token, Some(json!({"location_type": "gcs"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(locs(&answer).contains(&json!(["body", "location_type"])), "{answer}");

    let (status, verified) = seen
        .send(&app, Method::POST, &format!("{uri}/verify"), &token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["fields"], json!(["access_key_id", "secret_access_key"]));

    let (status, _) = seen.send(&app, Method::DELETE, &uri, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = seen
        .send(
            &app,
            Method::DELETE,
            &format!("/v1/teams/{team}/secrets/{secret_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    seen.assert_no_canary();
}

#[actix_web::test]
async fn another_teams_resources_answer_404_and_a_viewer_reads_but_does_not_write() {
    let w = world().await;
    let custodian = w.state.custodian.clone();
    let ours = team(&custodian, &w, "data-platform").await;
    let theirs = team(&custodian, &w, "finance").await;
    let admin = member(&custodian, &w, ours, "ada@example.com", "admin").await;
    let viewer = member(&custodian, &w, ours, "vic@example.com", "viewer").await;
    let root = w.admin_token.clone();
    let app = service!(w.state);
    let mut seen = Seen::default();

    let (status, our_secret) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{ours}/secrets"),
            &admin,
            Some(s3_secret("ours", SECRET)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, their_secret) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{theirs}/secrets"),
            &root,
            Some(s3_secret("theirs", SECRET)),
        )
        .await;
    let their_id = their_secret["id"].as_str().unwrap();

    // Their secret, through their team or ours: 404 either way, as for a made-up id.
    for uri in [
        format!("/v1/teams/{theirs}/secrets/{their_id}"),
        format!("/v1/teams/{ours}/secrets/{their_id}"),
        format!("/v1/teams/{ours}/secrets/00000000-0000-0000-0000-000000000000"),
        format!("/v1/teams/{ours}/secrets/not-an-id"),
        format!("/v1/teams/{theirs}/secrets"),
        format!("/v1/teams/{theirs}/locations"),
        format!("/v1/teams/{theirs}/vault-connections"),
        format!("/v1/teams/{theirs}/audit-events"),
    ] {
        let (status, body) = seen.send(&app, Method::GET, &uri, &admin, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert_eq!(body["code"], "not_found");
    }
    let (status, _) = seen
        .send(
            &app,
            Method::DELETE,
            &format!("/v1/teams/{ours}/secrets/{their_id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A location in our team cannot use their secret: 422 naming secret_id.
    let (status, answer) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{ours}/locations"),
            &admin,
            Some(json!({"name": "raw", "location_type": "s3", "bucket_name": "raw", "secret_id": their_id})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&answer), [json!(["body", "secret_id"])]);

    // A viewer lists and reads …
    let (status, list) = seen
        .send(&app, Method::GET, &format!("/v1/teams/{ours}/secrets"), &viewer, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    for path in ["locations", "vault-connections", "audit-events"] {
        let (status, _) = seen
            .send(&app, Method::GET, &format!("/v1/teams/{ours}/{path}"), &viewer, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // … but neither creates nor verifies.
    let (status, refused) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{ours}/secrets"),
            &viewer,
            Some(s3_secret("mine", SECRET)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["code"], "forbidden");
    let our_id = our_secret["id"].as_str().unwrap();
    let (status, _) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{ours}/secrets/{our_id}/verify"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{ours}/vault-connections"),
            &viewer,
            Some(json!({"name": "d", "vault_type": "doppler", "access_token": TOKEN, "project": "p", "config": "c"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    seen.assert_no_canary();
}

#[actix_web::test]
async fn vault_connections_and_external_secrets_never_show_a_token_or_a_value() {
    let w = world_with_vaults(doppler()).await;
    let custodian = w.state.custodian.clone();
    let team = team(&custodian, &w, "data-platform").await;
    let token = w.admin_token.clone();
    let app = service!(w.state);
    let mut seen = Seen::default();
    let base = format!("/v1/teams/{team}/vault-connections");

    // A field of another vault type, and bounds, all at once.
    let (status, answer) = seen
        .send(
            &app,
            Method::POST,
            &base,
            &token,
            Some(json!({"name": "", "vault_type": "doppler", "access_token": TOKEN, "project": "backend", "client_id": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let found = locs(&answer);
    for expected in [
        json!(["body", "name"]),
        json!(["body", "config"]),
        json!(["body", "client_id"]),
    ] {
        assert!(found.contains(&expected), "{expected} not in {answer}");
    }

    let (status, created) = seen
        .send(
            &app,
            Method::POST,
            &base,
            &token,
            Some(json!({
                "name": "Doppler Production",
                "vault_type": "doppler",
                "description": "backend secrets",
                "access_token": TOKEN,
                "project": "backend",
                "config": "prd",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        keys(&created),
        [
            "config",
            "created_at",
            "created_by",
            "description",
            "id",
            "last_verified_at",
            "name",
            "project",
            "vault_type"
        ]
    );
    assert_eq!(created["vault_type"], "doppler");
    assert!(created["last_verified_at"].is_null());
    let vault_id = created["id"].as_str().unwrap().to_owned();
    let uri = format!("{base}/{vault_id}");

    let (status, list) = seen.send(&app, Method::GET, &base, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["project"], "backend");

    // An external secret through it.
    let secrets = format!("/v1/teams/{team}/secrets");
    let (status, secret) = seen
        .send(
            &app,
            Method::POST,
            &secrets,
            &token,
            Some(json!({
                "name": "prod-s3",
                "secret_type": "s3",
                "auth_method": "s3_access_key",
                "credentials": {},
                "vault_connection_id": vault_id,
                "field_mappings": [
                    {"field_name": "access_key_id", "reference": "S3_KEY_ID"},
                    {"field_name": "secret_access_key", "reference": "S3_SECRET"},
                ],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{secret}");
    let secret_uri = format!("{secrets}/{}", secret["id"].as_str().unwrap());
    let (_, details) = seen.send(&app, Method::GET, &secret_uri, &token, None).await;
    assert_eq!(details["storage"], "external");
    assert_eq!(details["vault_connection_id"], vault_id.as_str());
    assert_eq!(details["vault_connection_name"], "Doppler Production");
    assert_eq!(details["vault_type"], "doppler");
    assert_eq!(
        details["external_field_mappings"],
        json!({"access_key_id": "S3_KEY_ID", "secret_access_key": "S3_SECRET"})
    );
    let (status, verified) = seen
        .send(&app, Method::POST, &format!("{secret_uri}/verify"), &token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["fields"], json!(["access_key_id", "secret_access_key"]));
    // An external secret takes no credentials.
    let (status, answer) = seen
        .send(
            &app,
            Method::PATCH,
            &secret_uri,
            &token,
            Some(json!({"credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&answer), [json!(["body", "credentials"])]);

    let (status, fetched) = seen.send(&app, Method::GET, &uri, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["secret_count"], 1);
    assert_eq!(fetched["name"], "Doppler Production");

    let (status, renamed) = seen
        .send(
            &app,
            Method::PATCH,
            &uri,
            &token,
            Some(json!({"name": "doppler-prd", "description": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "doppler-prd");
    assert!(renamed["description"].is_null());
    let (status, answer) = seen
        .send(
            &app,
            Method::PATCH,
            &uri,
            &token,
            Some(json!({"access_token": ROTATED_TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["detail"][0]["type"], "extra_forbidden");

    let (status, verified) = seen
        .send(&app, Method::POST, &format!("{uri}/verify"), &token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["verified"], true);
    let (_, fetched) = seen.send(&app, Method::GET, &uri, &token, None).await;
    assert!(fetched["last_verified_at"].is_string(), "{fetched}");

    let (status, answer) = seen
        .send(
            &app,
            Method::POST,
            &format!("{uri}/rotate"),
            &token,
            Some(json!({"access_token": "ops_wrong"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locs(&answer), [json!(["body", "access_token"])]);
    let (status, rotated) = seen
        .send(
            &app,
            Method::POST,
            &format!("{uri}/rotate"),
            &token,
            Some(json!({"access_token": ROTATED_TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert!(rotated["last_verified_at"].is_null());

    let (status, in_use) = seen.send(&app, Method::DELETE, &uri, &token, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(in_use["code"], "vault_connection_in_use");
    let (status, _) = seen.send(&app, Method::DELETE, &secret_uri, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = seen.send(&app, Method::DELETE, &uri, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = seen.send(&app, Method::GET, &uri, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The whole story is in the trail, without a token or a value, as JSON and as CSV.
    let audit = format!("/v1/teams/{team}/audit-events?limit=200");
    let (status, events) = seen.send(&app, Method::GET, &audit, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, content_type, csv) = get_csv(&app, &audit, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    for canary in CANARIES {
        assert!(!csv.contains(canary), "a credential reached the CSV");
    }
    let trail: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["resource_type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            "delete vault_connection",
            "delete storage_secret",
            "rotate vault_connection",
            "verify vault_connection",
            "update vault_connection",
            "verify storage_secret",
            "create storage_secret",
            "create vault_connection",
            "create team",
        ]
    );
    let total = events["total"].as_u64().unwrap();
    assert_eq!(csv.lines().count() as u64, total + 1);
    seen.assert_no_canary();
}

#[actix_web::test]
async fn the_audit_trail_is_newest_first_filtered_and_exported_as_csv() {
    let w = world().await;
    let custodian = w.state.custodian.clone();
    let team = team(&custodian, &w, "data-platform").await;
    let token = w.admin_token.clone();
    let admin_id = w.admin.id().to_string();
    let app = service!(w.state);
    let mut seen = Seen::default();
    let (_, secret) = seen
        .send(
            &app,
            Method::POST,
            &format!("/v1/teams/{team}/secrets"),
            &token,
            Some(s3_secret("=HYPERLINK(\"http://evil\")", SECRET)),
        )
        .await;
    let secret_uri = format!("/v1/teams/{team}/secrets/{}", secret["id"].as_str().unwrap());
    seen.send(
        &app,
        Method::PATCH,
        &secret_uri,
        &token,
        Some(json!({"credentials": {"access_key_id": KEY_ID, "secret_access_key": ROTATED}})),
    )
    .await;
    seen.send(&app, Method::POST, &format!("{secret_uri}/verify"), &token, None)
        .await;

    let base = format!("/v1/teams/{team}/audit-events");
    let (status, events) = seen
        .send(
            &app,
            Method::GET,
            &format!("{base}?resource_type=storage_secret"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["verify", "rotate", "create"], "newest first");
    let first = &events["items"][0];
    assert_eq!(first["actor_id"], admin_id.as_str());
    assert_eq!(first["actor_type"], "user");
    assert_eq!(first["resource_type"], "storage_secret");
    assert_eq!(first["outcome"], "success");

    let (_, by_actor) = seen
        .send(
            &app,
            Method::GET,
            &format!("{base}?resource_type=storage_secret&actor_id={admin_id}&limit=2"),
            &token,
            None,
        )
        .await;
    assert_eq!(by_actor["total"], 3);
    assert_eq!(by_actor["items"].as_array().unwrap().len(), 2);
    let (_, nobody) = seen
        .send(
            &app,
            Method::GET,
            &format!("{base}?actor_id=00000000-0000-0000-0000-000000000000"),
            &token,
            None,
        )
        .await;
    assert_eq!(nobody["total"], 0);
    let (_, future) = seen
        .send(
            &app,
            Method::GET,
            &format!("{base}?since=2999-01-01T00:00:00Z"),
            &token,
            None,
        )
        .await;
    assert_eq!(future["total"], 0);
    let (_, past) = seen
        .send(
            &app,
            Method::GET,
            &format!("{base}?until=2000-01-01T00:00:00%2B00:00"),
            &token,
            None,
        )
        .await;
    assert_eq!(past["total"], 0);
    let (status, bad) = seen
        .send(
            &app,
            Method::GET,
            &format!("{base}?since=yesterday&resource_type=x"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["detail"][0]["loc"][0], "query");

    let (status, _, csv) = get_csv(&app, &format!("{base}?resource_type=storage_secret"), &token).await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..5], ["id", "occurred_at", "actor_id", "actor_type", "action"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    let action = header.iter().position(|h| h == "action").unwrap();
    let name = header.iter().position(|h| h == "resource_name").unwrap();
    assert_eq!(&rows[0][action], "verify");
    assert_eq!(&rows[2][action], "create");
    // A name a spreadsheet would run as a formula is defused.
    assert!(rows[2][name].starts_with("'="), "{}", &rows[2][name]);
    for canary in CANARIES {
        assert!(!csv.contains(canary));
    }
    seen.assert_no_canary();
}

#[actix_web::test]
async fn the_document_describes_every_storage_route() {
    let w = world().await;
    let app = service!(w.state);
    let (status, doc) = send(&app, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let routes = [
        ("/v1/teams/{team_id}/secrets", ["post", "get"].as_slice()),
        ("/v1/teams/{team_id}/secrets/{secret_id}", &["get", "patch", "delete"]),
        ("/v1/teams/{team_id}/secrets/{secret_id}/verify", &["post"]),
        ("/v1/teams/{team_id}/locations", &["post", "get"]),
        (
            "/v1/teams/{team_id}/locations/{location_id}",
            &["get", "patch", "delete"],
        ),
        ("/v1/teams/{team_id}/locations/{location_id}/verify", &["post"]),
        ("/v1/teams/{team_id}/vault-connections", &["post", "get"]),
        (
            "/v1/teams/{team_id}/vault-connections/{connection_id}",
            &["get", "patch", "delete"],
        ),
        (
            "/v1/teams/{team_id}/vault-connections/{connection_id}/rotate",
            &["post"],
        ),
        (
            "/v1/teams/{team_id}/vault-connections/{connection_id}/verify",
            &["post"],
        ),
        ("/v1/teams/{team_id}/audit-events", &["get"]),
    ];
    for (path, methods) in routes {
        for method in methods {
            let operation = &doc["paths"][path][method];
            assert!(operation.is_object(), "{method} {path}");
            assert!(operation["security"].is_array(), "{method} {path}");
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        }
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["SecretTypeName"]["enum"].as_array().unwrap().len(), 13);
    assert_eq!(schemas["AuthMethodName"]["enum"].as_array().unwrap().len(), 14);
    assert!(
        schemas["CreateSecretBody"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("name"))
    );
    let audit = &doc["paths"]["/v1/teams/{team_id}/audit-events"]["get"]["responses"]["200"]["content"];
    assert!(
        audit["text/csv"].is_object() && audit["application/json"].is_object(),
        "{audit}"
    );
    // Every reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas[name].is_object(), "{name} is referenced but not defined");
    }
}

#[actix_web::test]
async fn a_free_team_gets_one_vault_connection() {
    let w = world().await;
    let custodian = w.state.custodian.clone();
    let team = custodian
        .create_team(
            &w.admin,
            &ctx(),
            NewTeamInput {
                name: Some("hobby".into()),
                tier: Some("free".into()),
                ..NewTeamInput::default()
            },
        )
        .await
        .unwrap()
        .id;
    let token = w.admin_token.clone();
    let app = service!(w.state);
    let mut seen = Seen::default();
    let base = format!("/v1/teams/{team}/vault-connections");
    let body = |name: &str| json!({"name": name, "vault_type": "onepassword", "access_token": "ops_canary-free-tier"});
    let (status, _) = seen.send(&app, Method::POST, &base, &token, Some(body("first"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, refused) = seen.send(&app, Method::POST, &base, &token, Some(body("second"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["code"], "tier_limit_exceeded");
    let (_, list) = seen.send(&app, Method::GET, &base, &token, None).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["vault_type"], "onepassword");
    assert!(seen.0.iter().all(|b| !b.contains("ops_canary-free-tier")));
}
