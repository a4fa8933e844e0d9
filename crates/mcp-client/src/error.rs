//! The one error type of the client: what went wrong talking to an MCP server, in words that
//! say what happened and what to do.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A JSON-RPC error object, as a server sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The JSON-RPC error code (`-32602` invalid params, `-32601` method not found, ...).
    pub code: i64,
    /// What the server said.
    pub message: String,
    /// Anything the server attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// `-32601`: the method does not exist.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// `-32602`: invalid params (an unknown task id, among others).
    pub const INVALID_PARAMS: i64 = -32602;
    /// `-32603`: internal error.
    pub const INTERNAL_ERROR: i64 = -32603;

    /// An error with a code and a message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (JSON-RPC error {})", self.message, self.code)
    }
}

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached or did not complete the handshake.
    #[error("could not connect to the MCP server {target}: {reason}")]
    Connect {
        /// The URL or command.
        target: String,
        /// Why.
        reason: String,
    },
    /// The connection broke, or the server's process ended.
    #[error("the connection to the MCP server was lost: {0}. Connect again")]
    Disconnected(String),
    /// The server answered with a JSON-RPC error.
    #[error("the MCP server refused `{method}`: {error}")]
    Rpc {
        /// The method that was refused.
        method: String,
        /// The server's error object.
        error: RpcError,
    },
    /// The server answered something that is not what the protocol says it should.
    #[error("the MCP server answered `{method}` with something this client cannot read: {reason}")]
    Protocol {
        /// The method.
        method: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The server does not offer what was asked for in the protocol generation it speaks.
    #[error("{0}")]
    Unsupported(String),
    /// The task ran longer than the TTL the caller gave; it was cancelled on the server.
    #[error(
        "task {task_id} did not finish within its TTL of {} ms and was cancelled; \
         give it a longer TTL if it needs more time",
        ttl.as_millis()
    )]
    TtlExpired {
        /// The server's id of the task (empty for a tool called without a task).
        task_id: String,
        /// The TTL that ran out.
        ttl: Duration,
    },
    /// The task ended `failed` with a JSON-RPC error.
    #[error("task {task_id} failed: {error}")]
    TaskFailed {
        /// The server's id of the task.
        task_id: String,
        /// The error the task ended with.
        error: RpcError,
    },
    /// The task ended `cancelled`: on the server's own account, or because the caller asked.
    #[error("task {task_id} was cancelled{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Cancelled {
        /// The server's id of the task (empty for a tool called without a task).
        task_id: String,
        /// Why, when known.
        reason: Option<String>,
    },
}

impl Error {
    /// Whether the connection itself is gone (the server or its process is lost), as opposed to
    /// one call failing.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }

    pub(crate) fn protocol(method: &str, reason: impl std::fmt::Display) -> Self {
        Self::Protocol {
            method: method.to_owned(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn rpc(method: &str, error: RpcError) -> Self {
        Self::Rpc {
            method: method.to_owned(),
            error,
        }
    }
}
