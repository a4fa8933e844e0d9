//! The door's one error type: every refusal, as the JSON-RPC error the MCP specification names
//! for it, with the HTTP status the Streamable HTTP transport sends it under.

use axum::http::StatusCode;
use longrun_surface::Refusal;
use serde_json::{Value, json};

use crate::version::{MODERN, TASKS_EXTENSION};

/// What went wrong with a request, in the protocol's own terms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Error {
    /// The body is not JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// Not a JSON-RPC request, or a request this transport cannot take in this state.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No such method in the request's protocol generation, or a call the tool's task support
    /// forbids (2025-11-25 names `-32601` for that).
    #[error("{0}")]
    MethodNotFound(String),
    /// Parameters of the wrong shape, an unknown tool, a malformed answer.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// No such task, it expired, or another principal owns it: never told apart, so that
    /// nobody learns which ids exist.
    #[error("task `{0}` is unknown or has expired")]
    UnknownTask(String),
    /// `resources/read` of a resource that does not exist (this server has none).
    #[error("resource not found: `{0}` (this server offers tools, not resources)")]
    ResourceNotFound(String),
    /// The server failed; the details are in its log.
    #[error("internal error: {0}")]
    Internal(String),
    /// The server's storage is failing (a full disk, a lost database): nothing was done, and
    /// the client may try again. HTTP 503 in both transports, as the other doors answer it.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// No principal: a missing or wrong bearer token (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The HTTP routing headers disagree with the body, or a required one is missing.
    #[error("header mismatch: {0}")]
    HeaderMismatch(String),
    /// Serving the request needs a client capability the client did not declare; the value is
    /// the `requiredCapabilities` object (shaped like `ClientCapabilities`).
    #[error("missing required client capability: {}", describe_capabilities(.0))]
    MissingCapability(Value),
    /// A protocol version this server does not speak.
    #[error("unsupported protocol version `{0}`")]
    UnsupportedVersion(String),
    /// The error a task ended with: its JSON-RPC error object, as the call would have answered.
    #[error("{message}")]
    Task {
        /// The JSON-RPC code.
        code: i64,
        /// What happened.
        message: String,
        /// What else the task's error carried.
        data: Option<Value>,
    },
}

impl Error {
    /// The JSON-RPC error code.
    pub(crate) fn code(&self) -> i64 {
        match self {
            Self::Parse(_) => -32700,
            Self::InvalidRequest(_) => -32600,
            Self::MethodNotFound(_) => -32601,
            Self::InvalidParams(_) | Self::UnknownTask(_) | Self::ResourceNotFound(_) => -32602,
            Self::Internal(_) => -32603,
            // In the server range, beside the others this server names.
            Self::Unavailable(_) => UNAVAILABLE,
            // JSON-RPC leaves -32000 to -32099 to servers; MCP names none for authentication.
            Self::Unauthenticated(_) => -32001,
            Self::HeaderMismatch(_) => -32020,
            Self::MissingCapability(_) => -32021,
            Self::UnsupportedVersion(_) => -32022,
            Self::Task { code, .. } => *code,
        }
    }

    /// The error object of a JSON-RPC error response.
    pub(crate) fn object(&self) -> Value {
        let mut object = json!({"code": self.code(), "message": self.to_string()});
        let data = match self {
            Self::MissingCapability(required) => Some(json!({"requiredCapabilities": required})),
            // The versions `server/discover` lists: a stateless client cannot fall back to a
            // session version on its own.
            Self::UnsupportedVersion(requested) => Some(json!({
                "supported": [MODERN],
                "requested": requested,
            })),
            Self::Task { data, .. } => data.clone(),
            Self::ResourceNotFound(uri) => Some(json!({"uri": uri})),
            _ => None,
        };
        if let Some(data) = data {
            object["data"] = data;
        }
        object
    }

    /// The HTTP status of a response that carries only this error.
    pub(crate) fn status(&self, version: Option<&str>) -> StatusCode {
        status_of(self.code(), version)
    }
}

/// The JSON-RPC code of [`Error::Unavailable`].
pub(crate) const UNAVAILABLE: i64 = -32030;

/// The HTTP status of a response that carries only an error with `code`. The 2026-07-28
/// transport names one for its own errors; a 2025-11-25 error travels in a 200 response, as
/// every result does, except that a message that could not be read at all is a 400.
pub(crate) fn status_of(code: i64, version: Option<&str>) -> StatusCode {
    match code {
        -32700 | -32600 => StatusCode::BAD_REQUEST,
        // A failing store is a 503 on every door and in both transports, so that a client or
        // proxy retries it as it would any other.
        UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        _ if version != Some(MODERN) => StatusCode::OK,
        -32601 => StatusCode::NOT_FOUND,
        -32602 | -32020 | -32021 | -32022 => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

impl Error {
    /// The error for a task-only tool called by a client without the tasks extension.
    pub(crate) fn tasks_required() -> Self {
        Self::MissingCapability(json!({"extensions": {TASKS_EXTENSION: {}}}))
    }
}

/// "sampling, extension io.modelcontextprotocol/tasks": the capabilities a
/// `requiredCapabilities` object names, for the error's message.
fn describe_capabilities(required: &Value) -> String {
    let mut names = Vec::new();
    if let Some(object) = required.as_object() {
        for (name, value) in object {
            match (name.as_str(), value.as_object()) {
                ("extensions", Some(extensions)) => {
                    names.extend(extensions.keys().map(|id| format!("the extension `{id}`")));
                }
                _ => names.push(format!("`{name}`")),
            }
        }
    }
    format!(
        "this request needs {}; declare it in `_meta.io.modelcontextprotocol/clientCapabilities` \
         (2026-07-28) or at `initialize`",
        names.join(" and ")
    )
}

impl From<longrun::Error> for Error {
    fn from(error: longrun::Error) -> Self {
        Refusal::from(error).into()
    }
}

/// The one place a shared refusal becomes this door's error: a new refusal breaks the build
/// here, not a client. Internal detail was already redacted by the surface.
#[deny(clippy::wildcard_enum_match_arm)]
impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound(id) => Self::UnknownTask(id),
            Refusal::UnknownKind(kind) => {
                Self::InvalidParams(format!("unknown tool `{kind}`: tools/list names the tools"))
            }
            Refusal::Unauthenticated { .. } => Self::Unauthenticated(refusal.to_string()),
            Refusal::ForeignHost => Self::InvalidRequest(refusal.to_string()),
            Refusal::InvalidInput(_)
            | Refusal::SchemaViolation { .. }
            | Refusal::KeyReused(_)
            | Refusal::TooLarge(_)
            | Refusal::Ended { .. }
            | Refusal::AlreadyAnswered { .. }
            | Refusal::QuestionClosed { .. }
            | Refusal::Conflict(_) => Self::InvalidParams(refusal.to_string()),
            Refusal::ShuttingDown
            | Refusal::AuthUnavailable
            | Refusal::NotRunning(_)
            | Refusal::TooManyStreams { .. }
            | Refusal::Internal { .. } => Self::Internal(refusal.to_string()),
            Refusal::StorageUnavailable { .. } => Self::Unavailable(refusal.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_the_specification() {
        let modern = Some(MODERN);
        let legacy = Some("2025-11-25");
        let cases = [
            (Error::Parse("x".into()), -32700, 400, 400),
            (Error::InvalidRequest("x".into()), -32600, 400, 400),
            (Error::MethodNotFound("x".into()), -32601, 404, 200),
            (Error::InvalidParams("x".into()), -32602, 400, 200),
            (Error::UnknownTask("t".into()), -32602, 400, 200),
            (Error::Internal("x".into()), -32603, 200, 200),
            (Error::Unavailable("x".into()), -32030, 503, 503),
            (Error::HeaderMismatch("x".into()), -32020, 400, 200),
            (Error::tasks_required(), -32021, 400, 200),
            (
                Error::UnsupportedVersion("1999-01-01".into()),
                -32022,
                400,
                200,
            ),
        ];
        for (error, code, modern_status, legacy_status) in cases {
            assert_eq!(error.code(), code, "{error}");
            assert_eq!(error.status(modern).as_u16(), modern_status, "{error}");
            assert_eq!(error.status(legacy).as_u16(), legacy_status, "{error}");
        }
    }

    #[test]
    fn errors_carry_the_data_the_specification_names() {
        let required = Error::tasks_required().object();
        assert!(
            required["message"]
                .as_str()
                .unwrap()
                .contains(TASKS_EXTENSION)
        );
        assert!(
            required["data"]["requiredCapabilities"]["extensions"][TASKS_EXTENSION].is_object()
        );
        let version = Error::UnsupportedVersion("1999-01-01".into()).object();
        assert_eq!(version["data"]["requested"], "1999-01-01");
        assert!(
            version["data"]["supported"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
        );
    }

    #[test]
    fn another_owners_task_reads_like_a_missing_one() {
        let id = longrun::TaskId::random();
        let missing = Error::from(longrun::Error::Unknown(id));
        assert_eq!(missing, Error::UnknownTask(id.to_string()));
    }
}
