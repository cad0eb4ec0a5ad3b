//! Errors as the `/v1` API answers them: 422 lists every failing field as
//! `{"detail":[{"loc","msg","type"}]}`; every other error is
//! `{"detail":"human sentence","code":"snake_case_code"}`.

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use custodian_core::CoreError;
use custodian_domain::ValidationErrors;
use custodian_ports::VaultError;
use serde::Serialize;
use utoipa::ToSchema;

/// A use case's error on its way to the client. Never holds a credential, token or
/// secret value (neither does [`CoreError`]).
#[derive(Debug)]
pub struct ApiError(pub CoreError);

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        ApiError(error)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One failing field of a 422 answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FieldDetail {
    /// Where the field is: `["body", "credentials", "access_key_id"]`, `["query", "limit"]`.
    loc: Vec<String>,
    /// What is wrong, in a sentence.
    msg: String,
    /// The rule that failed (`missing`, `too_long`, `extra_forbidden`, …).
    #[serde(rename = "type")]
    kind: String,
}

/// A 422 answer: every failing field at once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ValidationBody {
    detail: Vec<FieldDetail>,
}

/// A location that blocks a change of a secret's type.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkedLocationBody {
    id: String,
    name: String,
    location_type: &'static str,
}

/// Every error but 422: a sentence and a stable code.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, in a sentence.
    detail: String,
    /// A stable `snake_case` code (`not_found`, `forbidden`, `tier_limit_exceeded`, …).
    code: &'static str,
    /// With `location_type_mismatch`: the locations that block the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    locations: Option<Vec<LinkedLocationBody>>,
}

fn validation_body(errors: &ValidationErrors) -> ValidationBody {
    ValidationBody {
        detail: errors
            .errors()
            .iter()
            .map(|e| FieldDetail {
                loc: e.loc.clone(),
                msg: e.msg.clone(),
                kind: e.kind.to_owned(),
            })
            .collect(),
    }
}

/// Log a 5xx once, where it becomes an answer, with every error under it. Client errors
/// (4xx) are the caller's, already in the answer, and not logged.
pub(crate) fn log_server_error(error: &CoreError, status: StatusCode) {
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), code = error.code(), error = %error.chain(), "request failed");
    }
}

impl ApiError {
    /// The human sentence of the body. An internal error's message stays in the log.
    fn detail(&self) -> String {
        match &self.0 {
            CoreError::Internal { .. } => "an internal error occurred".to_owned(),
            CoreError::Unauthenticated => "a valid bearer token is required".to_owned(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            CoreError::Validation(_) | CoreError::InvalidCredentials(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::NotFound => StatusCode::NOT_FOUND,
            CoreError::Forbidden { .. } | CoreError::LimitExceeded { .. } | CoreError::ValueViewForbidden { .. } => {
                StatusCode::FORBIDDEN
            }
            CoreError::Conflict(_) | CoreError::LocationTypeMismatch { .. } | CoreError::LastOwnerOf { .. } => {
                StatusCode::CONFLICT
            }
            CoreError::Unauthenticated => StatusCode::UNAUTHORIZED,
            CoreError::Vault(e) => match e {
                VaultError::Unavailable { .. } | VaultError::AuthFailed { .. } => StatusCode::BAD_GATEWAY,
                VaultError::ReferenceNotFound { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                VaultError::RateLimited { .. } => StatusCode::SERVICE_UNAVAILABLE,
            },
            CoreError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        let retry_after = match &self.0 {
            CoreError::Unavailable { retry_after, .. } => *retry_after,
            CoreError::Vault(VaultError::RateLimited { retry_after, .. }) => *retry_after,
            _ => None,
        };
        if let Some(retry) = retry_after {
            response.insert_header((header::RETRY_AFTER, retry.as_secs().max(1).to_string()));
        }
        match &self.0 {
            CoreError::Validation(errors) => return response.json(validation_body(errors)),
            CoreError::Unauthenticated => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        log_server_error(&self.0, self.status_code());
        let locations = match &self.0 {
            CoreError::LocationTypeMismatch { locations, .. } => Some(
                locations
                    .iter()
                    .map(|l| LinkedLocationBody {
                        id: l.id.to_string(),
                        name: l.name.clone(),
                        location_type: l.location_type.as_str(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        response.json(ErrorBody {
            detail: self.detail(),
            code: self.0.code(),
            locations,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::body::to_bytes;
    use custodian_core::Requirement;
    use custodian_domain::{FieldError, LimitKind, Role, VaultType};
    use custodian_ports::ConflictKind;

    use super::*;

    struct Answer {
        status: StatusCode,
        www_authenticate: Option<String>,
        retry_after: Option<String>,
        body: serde_json::Value,
    }

    async fn answer(error: CoreError) -> Answer {
        let response = ApiError(error).error_response();
        let header_of = |name: header::HeaderName| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let www_authenticate = header_of(header::WWW_AUTHENTICATE);
        let retry_after = header_of(header::RETRY_AFTER);
        let status = response.status();
        let bytes = to_bytes(response.into_body()).await.unwrap();
        Answer {
            status,
            www_authenticate,
            retry_after,
            body: serde_json::from_slice(&bytes).unwrap(),
        }
    }

    #[actix_web::test]
    async fn unauthenticated_is_401_with_a_bearer_challenge() {
        let a = answer(CoreError::Unauthenticated).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.www_authenticate.as_deref(), Some("Bearer"));
        assert_eq!(a.body["code"], "unauthenticated");
        assert!(a.body["detail"].as_str().unwrap().contains("token"));
    }

    #[actix_web::test]
    async fn validation_lists_every_field_in_the_detail_array() {
        let mut errors = ValidationErrors::new();
        errors.push(FieldError::new(&["body", "name"], "missing", "is required"));
        errors.push(FieldError::new(&["body", "email"], "invalid_format", "is not an email"));
        let a = answer(CoreError::Validation(errors)).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
        let detail = a.body["detail"].as_array().unwrap();
        assert_eq!(detail.len(), 2);
        assert_eq!(detail[0]["loc"], serde_json::json!(["body", "name"]));
        assert_eq!(detail[0]["type"], "missing");
        assert_eq!(detail[1]["msg"], "is not an email");
        assert!(a.body.get("code").is_none());
    }

    #[actix_web::test]
    async fn every_other_error_has_its_status_and_code() {
        let cases = [
            (CoreError::NotFound, StatusCode::NOT_FOUND, "not_found"),
            (
                CoreError::Forbidden {
                    needed: Requirement::Role(Role::Admin),
                },
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                CoreError::LimitExceeded {
                    kind: LimitKind::Members,
                    limit: 3,
                },
                StatusCode::FORBIDDEN,
                "tier_limit_exceeded",
            ),
            (
                CoreError::Conflict(ConflictKind::SecretInUse),
                StatusCode::CONFLICT,
                "secret_in_use",
            ),
            (
                CoreError::Vault(VaultError::AuthFailed {
                    provider: VaultType::Doppler,
                }),
                StatusCode::BAD_GATEWAY,
                "vault_auth_failed",
            ),
            (
                CoreError::Vault(VaultError::ReferenceNotFound {
                    provider: VaultType::Doppler,
                    reference: "KEY".into(),
                }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "vault_reference_not_found",
            ),
            (
                CoreError::internal("database: row 7 is corrupt"),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
            ),
        ];
        for (error, status, code) in cases {
            let a = answer(error).await;
            assert_eq!(a.status, status, "{code}");
            assert_eq!(a.body["code"], code);
            assert!(a.www_authenticate.is_none());
            assert!(!a.body["detail"].as_str().unwrap().contains("row 7"), "{code}");
        }
    }

    #[actix_web::test]
    async fn unavailable_is_503_with_retry_after() {
        let a = answer(CoreError::Unavailable {
            cause: None,
            what: "the database",
            message: "timed out".into(),
            retry_after: Some(Duration::from_secs(5)),
        })
        .await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.retry_after.as_deref(), Some("5"));
        assert_eq!(a.body["code"], "service_unavailable");
    }
}
