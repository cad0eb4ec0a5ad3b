//! SDK errors to [`StoreError`]: what is transient (throttling, 5xx, timeouts, a store
//! that cannot be reached) becomes `Unavailable`, the rest `Internal`. Messages name the
//! operation and the service's error code, never a value.

use std::time::Duration;

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use custodian_ports::StoreError;

/// When a throttled caller should try again.
pub(crate) const THROTTLED_RETRY_AFTER: Duration = Duration::from_secs(2);
/// When a caller should try again after a 5xx, a timeout or a connection failure.
pub(crate) const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Error codes SSM (and the AWS SDKs' retry classifier) treat as throttling.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "TooManyUpdates",
];

/// Error codes of a service-side fault that is worth retrying later.
const TRANSIENT_CODES: &[&str] = &["InternalServerError", "InternalFailure", "ServiceUnavailable"];

/// Whether a service message may be shown: never for calls that carried a value, since a
/// validation message could quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    Show,
    Hide,
}

/// The [`StoreError`] for a failed call of `operation` that no modelled variant explained.
pub(crate) fn classify<E>(operation: &'static str, error: &SdkError<E, HttpResponse>, message: Message) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().unwrap_or("no error code");
            let detail = match (message, context.err().message()) {
                (Message::Show, Some(text)) => format!(": {}", shorten(text)),
                _ => String::new(),
            };
            if THROTTLING_CODES.contains(&code) || status == 429 {
                StoreError::Unavailable {
                    message: format!("AWS SSM {operation} throttled ({code}, HTTP {status}) after retries"),
                    retry_after: Some(THROTTLED_RETRY_AFTER),
                }
            } else if status >= 500 || TRANSIENT_CODES.contains(&code) {
                StoreError::Unavailable {
                    message: format!("AWS SSM {operation} failed ({code}, HTTP {status}) after retries{detail}"),
                    retry_after: Some(UNAVAILABLE_RETRY_AFTER),
                }
            } else {
                StoreError::Internal(format!("AWS SSM {operation} failed ({code}, HTTP {status}){detail}"))
            }
        }
        SdkError::TimeoutError(_) => StoreError::Unavailable {
            message: format!("AWS SSM {operation} timed out"),
            retry_after: Some(UNAVAILABLE_RETRY_AFTER),
        },
        SdkError::DispatchFailure(failure) if failure.is_user() => StoreError::Internal(format!(
            "AWS SSM {operation} could not be sent: {}",
            describe_source(error)
        )),
        SdkError::DispatchFailure(failure) => StoreError::Unavailable {
            message: format!(
                "AWS SSM {operation} could not reach the service ({}): {}",
                if failure.is_timeout() { "timeout" } else { "connection" },
                describe_source(error)
            ),
            retry_after: Some(UNAVAILABLE_RETRY_AFTER),
        },
        SdkError::ResponseError(_) => StoreError::Unavailable {
            message: format!("AWS SSM {operation} answered with an unreadable response"),
            retry_after: Some(UNAVAILABLE_RETRY_AFTER),
        },
        SdkError::ConstructionFailure(_) => StoreError::Internal(format!(
            "AWS SSM {operation} request could not be built: {}",
            describe_source(error)
        )),
        _ => StoreError::Internal(format!("AWS SSM {operation} failed")),
    }
}

/// The chain of sources of an SDK error (which names causes such as a refused connection
/// or missing credentials, never request bodies).
fn describe_source(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        shorten(&parts.join(": "))
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 300;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(400);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
    }
}
