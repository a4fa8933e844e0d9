//! What the client reports about tasks, the same for both protocol generations.
//!
//! The two generations spell a task differently (`ttl` / `pollInterval` in 2025-11-25,
//! `ttlMs` / `pollIntervalMs` in 2026-07-28; a nested `task` in the first's task handle, a flat
//! one in the second's). `TaskInfo::from_wire` reads either, so nothing above this module
//! knows the difference.
//!
//! The payloads both generations share (tool results, elicitation and sampling requests and
//! their results) are rmcp's types, re-exported here.

use std::time::Duration;

#[allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); MCP Tasks still carry it.
pub use rmcp::model::{
    CallToolResult, ContentBlock, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, ElicitationAction, Role, SamplingMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task's status; the same five values in both generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being processed.
    Working,
    /// Waiting for an answer to an elicitation or sampling request.
    InputRequired,
    /// Ended with a result (which may be a tool error, `isError: true`).
    Completed,
    /// Ended with an error.
    Failed,
    /// Ended because it was cancelled.
    Cancelled,
}

impl Status {
    /// Whether the task has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task as the server last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The server's id of the task.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// What the server says it is doing, if anything.
    pub status_message: Option<String>,
    /// When it was created (ISO 8601, as the server wrote it).
    pub created_at: String,
    /// When it last changed (ISO 8601, as the server wrote it).
    pub last_updated_at: String,
    /// How long the server keeps it after creation; `None` is unlimited or not said.
    pub ttl: Option<Duration>,
    /// How often the server would like to be polled, if it said.
    pub poll_interval: Option<Duration>,
}

impl TaskInfo {
    /// Reads a task object of either generation. `None` when it is not one (no `taskId`, or a
    /// status outside the five).
    pub(crate) fn from_wire(value: &Value) -> Option<Self> {
        let field = |a: &str, b: &str| value.get(a).or_else(|| value.get(b));
        let millis = |a: &str, b: &str| {
            field(a, b)
                .and_then(Value::as_f64)
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .map(|ms| Duration::from_millis(ms as u64))
        };
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            id: text("taskId")?,
            status: serde_json::from_value(value.get("status")?.clone()).ok()?,
            status_message: text("statusMessage"),
            created_at: text("createdAt").unwrap_or_default(),
            last_updated_at: text("lastUpdatedAt").unwrap_or_default(),
            ttl: millis("ttl", "ttlMs"),
            poll_interval: millis("pollInterval", "pollIntervalMs"),
        })
    }
}

/// One page of [`Client::list_tasks`](crate::Client::list_tasks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPage {
    /// The tasks on this page.
    pub tasks: Vec<TaskInfo>,
    /// Pass it to the next call for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What a running call reports to its caller while it runs (see
/// [`TaskCall::on_update`](crate::TaskCall::on_update)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Update {
    /// The server made the call a task.
    Created(TaskInfo),
    /// The task's status or status message changed.
    Status(TaskInfo),
    /// A progress notification: `progress` so far, out of `total` when known.
    Progress {
        /// How far along.
        progress: f64,
        /// Out of how much, if known.
        total: Option<f64>,
        /// What is happening.
        message: Option<String>,
    },
    /// The server asked a question (an elicitation or a sampling request) under `key`.
    InputRequested {
        /// The key the answer goes under (the `inputRequests` key in 2026-07-28, the server's
        /// request id in 2025-11-25).
        key: String,
        /// `elicitation/create` or `sampling/createMessage`.
        method: String,
    },
}

/// The protocol generation a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Try 2026-07-28 (`server/discover`) first, and fall back to 2025-11-25 (`initialize`)
    /// when the server does not know it.
    #[default]
    Auto,
    /// Protocol 2026-07-28 with the tasks extension `io.modelcontextprotocol/tasks`.
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
    /// Protocol 2025-11-25 with its experimental tasks.
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
}

impl Protocol {
    /// The version string, `"auto"` for [`Protocol::Auto`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::V2026_07_28 => "2026-07-28",
            Self::V2025_11_25 => "2025-11-25",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a tool may be called, from its `execution.taskSupport` (2025-11-25 only; 2026-07-28
/// servers decide per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSupport {
    /// Never as a task (the default when the tool says nothing).
    #[default]
    Forbidden,
    /// Either way.
    Optional,
    /// Only as a task.
    Required,
}

/// A tool the server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The JSON schema of its arguments.
    pub input_schema: Value,
    /// The JSON schema of its structured output, if it has one.
    pub output_schema: Option<Value>,
    /// Whether it runs as a task: from `execution.taskSupport` on 2025-11-25 servers; `None`
    /// when the server did not say (every tool of a 2026-07-28 server, where the server decides
    /// per call).
    pub task_support: Option<TaskSupport>,
}

impl ToolInfo {
    /// Reads one entry of a `tools/list` result, keeping `execution.taskSupport`.
    pub(crate) fn from_wire(value: &Value) -> Option<Self> {
        let task_support = value
            .pointer("/execution/taskSupport")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        Some(Self {
            name: value.get("name")?.as_str()?.to_owned(),
            description: value
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            input_schema: value
                .get("inputSchema")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object"})),
            output_schema: value.get("outputSchema").cloned(),
            task_support,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_a_task_of_either_generation() {
        let v1 = json!({"taskId": "a", "status": "working", "ttl": 300000, "pollInterval": 1000,
            "createdAt": "c", "lastUpdatedAt": "u", "statusMessage": "busy"});
        let v2 = json!({"taskId": "a", "status": "working", "ttlMs": 300000, "pollIntervalMs": 1000,
            "createdAt": "c", "lastUpdatedAt": "u", "statusMessage": "busy", "resultType": "task"});
        let one = TaskInfo::from_wire(&v1).expect("a v1 task");
        assert_eq!(one, TaskInfo::from_wire(&v2).expect("a v2 task"));
        assert_eq!(one.ttl, Some(Duration::from_secs(300)));
        assert_eq!(one.poll_interval, Some(Duration::from_secs(1)));
        assert_eq!(one.status_message.as_deref(), Some("busy"));
    }

    #[test]
    fn refuses_what_is_not_a_task() {
        assert_eq!(TaskInfo::from_wire(&json!({"status": "working"})), None);
        assert_eq!(
            TaskInfo::from_wire(&json!({"taskId": "a", "status": "sleeping"})),
            None
        );
        // A null ttl is unlimited, a negative one is nonsense: both read as "not said".
        let t = TaskInfo::from_wire(
            &json!({"taskId": "a", "status": "failed", "ttl": null, "pollInterval": -5}),
        )
        .expect("a task");
        assert_eq!((t.ttl, t.poll_interval), (None, None));
    }

    #[test]
    fn reads_task_support_from_tools() {
        let tool = ToolInfo::from_wire(&json!({"name": "t", "inputSchema": {"type": "object"},
            "execution": {"taskSupport": "required"}}))
        .expect("a tool");
        assert_eq!(tool.task_support, Some(TaskSupport::Required));
        let plain = ToolInfo::from_wire(&json!({"name": "p"})).expect("a tool");
        assert_eq!(plain.task_support, None);
    }
}
