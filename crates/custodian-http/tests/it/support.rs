//! The test world shared by the route tests: the core over in-memory ports, a stored
//! tenant admin with its token, and helpers to call the routes.

use std::collections::HashMap;
use std::sync::Arc;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::test;
use custodian_core::{Custodian, NewUserInput, Ports, Settings};
use custodian_domain::{DisplayName, Email, RequestContext, Subject, UserId, VaultType};
use custodian_http::ApiState;
use custodian_ports::{IdGenerator, UuidV7Ids, VaultProvider};
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::memory_store::MemoryCredentialStore;
use custodian_testkit::tokens::token_issuer;
use secrecy::{ExposeSecret, SecretString};

/// The routes over in-memory ports, with a stored tenant admin and its token.
pub(crate) struct World {
    pub(crate) state: ApiState,
    pub(crate) admin: Subject,
    pub(crate) admin_token: SecretString,
}

pub(crate) async fn world() -> World {
    world_with_vaults(HashMap::new()).await
}

/// [`world`] with these vault providers (for vault connections and external secrets).
pub(crate) async fn world_with_vaults(vault_providers: HashMap<VaultType, Arc<dyn VaultProvider>>) -> World {
    let repos = MemoryRepos::new().repositories();
    let ports = vault_providers.into_values().fold(
        Ports::new(repos, Arc::new(MemoryCredentialStore::default()), token_issuer()),
        Ports::with_vault_provider,
    );
    let custodian = Custodian::new(ports, Settings::default());
    // An operator outside the database creates the first admin, as the server's first start does.
    let operator = Subject::User {
        id: UserId::from_uuid(UuidV7Ids.new_id()),
        email: Email::parse_at("email", "operator@localhost").expect("a valid email"),
        display_name: DisplayName::parse_at("display_name", "Operator").expect("a valid name"),
        tenant_admin: true,
    };
    let (user, issued) = custodian
        .create_user(
            &operator,
            &RequestContext::default(),
            NewUserInput {
                email: Some("admin@example.com".into()),
                display_name: Some("Ada Admin".into()),
                tenant_admin: true,
            },
        )
        .await
        .expect("the first admin is created");
    World {
        admin: Subject::User {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            tenant_admin: true,
        },
        admin_token: issued.token,
        state: ApiState::new(custodian),
    }
}

/// An actix test service over `state` with every route.
#[macro_export]
macro_rules! service {
    ($state:expr) => {
        actix_web::test::init_service(
            actix_web::App::new()
                .app_data(actix_web::web::Data::new($state))
                .configure(custodian_http::configure),
        )
        .await
    };
}

/// Send `method uri` with `token` as bearer (when given) and `body` as JSON (when given);
/// the status and the body (JSON, or `Null` when empty or not JSON).
pub(crate) async fn send<S, B>(
    app: &S,
    method: Method,
    uri: &str,
    token: Option<&SecretString>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = test::TestRequest::default().method(method).uri(uri);
    if let Some(token) = token {
        request = request.insert_header((header::AUTHORIZATION, format!("Bearer {}", token.expose_secret())));
    }
    if let Some(body) = body {
        request = request.set_json(body);
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status();
    let bytes = test::read_body(response).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
