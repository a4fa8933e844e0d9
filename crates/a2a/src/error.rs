//! A2A's errors: the A2A-specific ones (`-32001` … `-32009`), the JSON-RPC standard ones, and
//! how each binding writes them.
//!
//! Every error carries an `ErrorInfo` detail (`reason` = the error's name in UPPER_SNAKE
//! without `Error`, `domain` = `a2a-protocol.org`) in 1.0: as `error.data[]` over JSON-RPC, as
//! `error.details[]` of a `google.rpc.Status` over HTTP+JSON. 0.3 has no details: its JSON-RPC
//! errors are the code and the message.

use std::collections::BTreeMap;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use longrun_surface::Refusal;
use serde_json::{Value, json};

use crate::version::Version;

/// Which error: its JSON-RPC code, HTTP status, gRPC status name and `ErrorInfo` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    TaskNotFound,
    TaskNotCancelable,
    /// Never sent: this server supports push notifications. Kept so the table is A2A's whole.
    #[cfg_attr(not(test), allow(dead_code))]
    PushNotificationNotSupported,
    UnsupportedOperation,
    ContentTypeNotSupported,
    /// Never sent: the door builds every response itself from the runtime's task.
    #[cfg_attr(not(test), allow(dead_code))]
    InvalidAgentResponse,
    ExtendedAgentCardNotConfigured,
    /// Never sent: no extension is required to talk to this agent.
    #[cfg_attr(not(test), allow(dead_code))]
    ExtensionSupportRequired,
    VersionNotSupported,
    JsonParse,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    Internal,
    /// No or a wrong bearer token. Not an A2A error: HTTP 401, JSON-RPC `-32000` (the range
    /// JSON-RPC leaves to servers).
    Unauthenticated,
    /// The server is stopping. HTTP 503, JSON-RPC `-32603`.
    Unavailable,
}

impl Kind {
    pub(crate) fn code(self) -> i64 {
        match self {
            Self::TaskNotFound => -32001,
            Self::TaskNotCancelable => -32002,
            Self::PushNotificationNotSupported => -32003,
            Self::UnsupportedOperation => -32004,
            Self::ContentTypeNotSupported => -32005,
            Self::InvalidAgentResponse => -32006,
            Self::ExtendedAgentCardNotConfigured => -32007,
            Self::ExtensionSupportRequired => -32008,
            Self::VersionNotSupported => -32009,
            Self::JsonParse => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::Internal | Self::Unavailable => -32603,
            Self::Unauthenticated => -32000,
        }
    }

    /// The HTTP status (1.0.1's table).
    pub(crate) fn http(self) -> StatusCode {
        match self {
            Self::TaskNotFound | Self::MethodNotFound => StatusCode::NOT_FOUND,
            Self::InvalidAgentResponse | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `google.rpc.Code` name.
    fn grpc(self) -> &'static str {
        match self {
            Self::TaskNotFound | Self::MethodNotFound => "NOT_FOUND",
            Self::ContentTypeNotSupported
            | Self::JsonParse
            | Self::InvalidRequest
            | Self::InvalidParams => "INVALID_ARGUMENT",
            Self::InvalidAgentResponse | Self::Internal => "INTERNAL",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Unavailable => "UNAVAILABLE",
            _ => "FAILED_PRECONDITION",
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::TaskNotFound => "TASK_NOT_FOUND",
            Self::TaskNotCancelable => "TASK_NOT_CANCELABLE",
            Self::PushNotificationNotSupported => "PUSH_NOTIFICATION_NOT_SUPPORTED",
            Self::UnsupportedOperation => "UNSUPPORTED_OPERATION",
            Self::ContentTypeNotSupported => "CONTENT_TYPE_NOT_SUPPORTED",
            Self::InvalidAgentResponse => "INVALID_AGENT_RESPONSE",
            Self::ExtendedAgentCardNotConfigured => "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            Self::ExtensionSupportRequired => "EXTENSION_SUPPORT_REQUIRED",
            Self::VersionNotSupported => "VERSION_NOT_SUPPORTED",
            Self::JsonParse => "JSON_PARSE",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::MethodNotFound => "METHOD_NOT_FOUND",
            Self::InvalidParams => "INVALID_PARAMS",
            Self::Internal => "INTERNAL_ERROR",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

/// One error, as the protocol reports it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Error {
    pub(crate) kind: Kind,
    pub(crate) message: String,
    /// `ErrorInfo.metadata`: machine-readable details (strings, as `ErrorInfo` allows).
    pub(crate) metadata: BTreeMap<String, String>,
    /// The HTTP status, where it is not the kind's (a request's own `Content-Type` is 415).
    pub(crate) http: Option<StatusCode>,
    /// The `WWW-Authenticate` challenge of an authentication error.
    pub(crate) challenge: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            metadata: BTreeMap::new(),
            http: None,
            challenge: None,
        }
    }

    /// The same error with another HTTP status.
    pub(crate) fn with_http(mut self, status: StatusCode) -> Self {
        self.http = Some(status);
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.http.unwrap_or_else(|| self.kind.http())
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    pub(crate) fn task_not_found(id: &str) -> Self {
        Self::new(
            Kind::TaskNotFound,
            format!("task `{}` is unknown or has expired", short(id)),
        )
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidParams, message)
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(Kind::UnsupportedOperation, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// The `ErrorInfo` detail.
    fn info(&self) -> Value {
        json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": self.kind.reason(),
            "domain": "a2a-protocol.org",
            "metadata": self.metadata,
        })
    }

    /// The JSON-RPC `error` member in `version`'s shape.
    pub(crate) fn jsonrpc(&self, version: Version) -> Value {
        match version {
            Version::V10 => json!({
                "code": self.kind.code(),
                "message": self.message,
                "data": [self.info()],
            }),
            Version::V03 => json!({"code": self.kind.code(), "message": self.message}),
        }
    }

    /// The HTTP+JSON body: a `google.rpc.Status`.
    pub(crate) fn status_body(&self) -> Value {
        json!({"error": {
            "code": self.status().as_u16(),
            "status": self.kind.grpc(),
            "message": self.message,
            "details": [self.info()],
        }})
    }

    /// The error from the runtime's, where nothing more specific applies: through the doors'
    /// one conversion, which keeps internal detail in the log.
    pub(crate) fn runtime(error: longrun::Error) -> Self {
        Self::from(Refusal::from(error))
    }
}

/// The one place a shared refusal becomes this door's error: a new refusal breaks the build
/// here, not a client. Internal detail was already redacted by the surface.
#[deny(clippy::wildcard_enum_match_arm)]
impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match &refusal {
            Refusal::NotFound(id) => Self::task_not_found(id),
            Refusal::Ended { id, status } => Self::unsupported(format!(
                "task {id} has already ended ({status}); send a new message without a taskId \
                 to start another"
            )),
            Refusal::UnknownKind(_)
            | Refusal::InvalidInput(_)
            | Refusal::TooLarge(_)
            | Refusal::KeyReused(_) => Self::invalid_params(refusal.to_string()),
            Refusal::SchemaViolation { kind, violations } => Self::invalid_params(format!(
                "the input does not match skill `{kind}`'s input schema: {}",
                violations.join("; ")
            ))
            .with("violations", violations.join("\n")),
            Refusal::AlreadyAnswered { .. }
            | Refusal::QuestionClosed { .. }
            | Refusal::Conflict(_) => Self::unsupported(refusal.to_string()),
            Refusal::ShuttingDown
            | Refusal::AuthUnavailable
            | Refusal::StorageUnavailable { .. } => {
                Self::new(Kind::Unavailable, refusal.to_string())
            }
            Refusal::ForeignHost => Self::new(Kind::InvalidRequest, refusal.to_string())
                .with_http(StatusCode::FORBIDDEN),
            Refusal::Unauthenticated { challenge, .. } => Self {
                challenge: Some(challenge.clone()),
                ..Self::new(Kind::Unauthenticated, refusal.to_string())
            },
            Refusal::TooManyStreams { .. } => Self::new(Kind::InvalidRequest, refusal.to_string())
                .with_http(StatusCode::TOO_MANY_REQUESTS),
            Refusal::NotRunning(_) | Refusal::Internal { .. } => {
                Self::internal(refusal.to_string())
            }
        }
    }
}

/// The `WWW-Authenticate` challenge of an authentication refusal, as every door sends it.
impl Error {
    /// The `WWW-Authenticate` value an unauthenticated error is answered with.
    pub(crate) fn challenge(&self) -> Option<HeaderValue> {
        self.challenge
            .as_deref()
            .and_then(|challenge| HeaderValue::from_str(challenge).ok())
    }
}

/// A task id as quoted back in a message: at most 80 characters of what the client sent.
pub(crate) fn short(text: &str) -> String {
    let mut short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// An HTTP+JSON error response.
pub(crate) struct Rest(pub(crate) Error);

impl IntoResponse for Rest {
    fn into_response(self) -> Response {
        let error = self.0;
        let mut response = (error.status(), axum::Json(error.status_body())).into_response();
        if let Some(challenge) = error.challenge() {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<Error> for Rest {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store's failure reaches the client as a correlation id, never in its own words (which
    /// may name files, hosts or queries), on both bindings and both versions, and as a 503 the
    /// client may retry.
    #[test]
    fn store_failures_are_redacted_and_unavailable() {
        let secret = "connection to db.internal:5432 refused";
        let error = Error::runtime(longrun::Error::Store(longrun::store::Error::Backend(
            secret.into(),
        )));
        assert_eq!(error.kind, Kind::Unavailable);
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        for shown in [
            error.jsonrpc(Version::V10).to_string(),
            error.jsonrpc(Version::V03).to_string(),
            error.status_body().to_string(),
        ] {
            assert!(!shown.contains("db.internal"), "{shown}");
            assert!(shown.contains("err_"), "{shown}");
        }
    }

    #[test]
    fn every_a2a_error_has_its_code_and_reason() {
        let table = [
            (Kind::TaskNotFound, -32001, 404, "TASK_NOT_FOUND"),
            (Kind::TaskNotCancelable, -32002, 400, "TASK_NOT_CANCELABLE"),
            (
                Kind::PushNotificationNotSupported,
                -32003,
                400,
                "PUSH_NOTIFICATION_NOT_SUPPORTED",
            ),
            (
                Kind::UnsupportedOperation,
                -32004,
                400,
                "UNSUPPORTED_OPERATION",
            ),
            (
                Kind::ContentTypeNotSupported,
                -32005,
                400,
                "CONTENT_TYPE_NOT_SUPPORTED",
            ),
            (
                Kind::InvalidAgentResponse,
                -32006,
                500,
                "INVALID_AGENT_RESPONSE",
            ),
            (
                Kind::ExtendedAgentCardNotConfigured,
                -32007,
                400,
                "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            ),
            (
                Kind::ExtensionSupportRequired,
                -32008,
                400,
                "EXTENSION_SUPPORT_REQUIRED",
            ),
            (
                Kind::VersionNotSupported,
                -32009,
                400,
                "VERSION_NOT_SUPPORTED",
            ),
        ];
        for (kind, code, http, reason) in table {
            let error = Error::new(kind, "m");
            assert_eq!(error.jsonrpc(Version::V10)["code"], code);
            assert_eq!(error.jsonrpc(Version::V10)["data"][0]["reason"], reason);
            assert_eq!(error.jsonrpc(Version::V03).get("data"), None);
            assert_eq!(error.status_body()["error"]["code"], http);
            assert_eq!(error.status_body()["error"]["details"][0]["reason"], reason);
        }
    }
}
