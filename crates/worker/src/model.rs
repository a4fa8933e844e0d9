//! The protocol's JSON shapes (`docs/worker-protocol.md`): what the worker sends (registration,
//! reports) and what it receives (the registration's answer, the heartbeat's answer, events,
//! errors). Nothing outside this file knows a field name of the wire.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/workers`.
#[derive(Serialize)]
pub(crate) struct Register<'a> {
    pub(crate) name: &'a str,
    pub(crate) capacity: usize,
    pub(crate) kinds: Vec<KindDeclaration<'a>>,
}

/// One kind a worker declares.
#[derive(Serialize)]
pub(crate) struct KindDeclaration<'a> {
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) input_schema: Option<&'a Value>,
}

/// `201` to a registration.
#[derive(Deserialize)]
pub(crate) struct Registered {
    pub(crate) worker: String,
    pub(crate) heartbeat_ms: u64,
    pub(crate) expiry_ms: u64,
}

/// `200` to a heartbeat.
#[derive(Deserialize)]
pub(crate) struct Heartbeat {
    pub(crate) assignments: Vec<String>,
}

/// `/v1`'s error body, `{"error": {"code": …, "message": …}}`.
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Deserialize)]
pub(crate) struct ErrorDetail {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// The `data` of one event of the push stream. Every event names its assignment.
#[derive(Deserialize, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Event {
    /// An assignment: run the kind's handler.
    Start(Start),
    /// The answer to the question `key`.
    Answer {
        assignment: String,
        key: String,
        #[serde(default)]
        value: Value,
    },
    /// Nobody answered the question `key` in time.
    AnswerTimeout { assignment: String, key: String },
    /// The step `key` is durable, or the sleep `key` is over.
    StepSaved { assignment: String, key: String },
    /// The task is being cancelled.
    Cancel { assignment: String },
    /// The task is no longer this worker's: stop at once, report nothing.
    Revoke {
        assignment: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// A later revision's event this worker does not know: ignored, as the protocol asks.
    #[serde(other)]
    Unknown,
}

/// The `start` event.
#[derive(Deserialize, Debug, PartialEq)]
pub(crate) struct Start {
    pub(crate) assignment: String,
    pub(crate) task: String,
    pub(crate) kind: String,
    pub(crate) attempt: u32,
    #[serde(default)]
    pub(crate) steps: Map<String, Value>,
    #[serde(default)]
    pub(crate) input: Value,
}

/// One report, the body of `POST …/assignments/{assignment}/reports`: a process-protocol
/// stdout message.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Report {
    Progress {
        #[serde(skip_serializing_if = "Option::is_none")]
        percent: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Artifact {
        id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        parts: Vec<Value>,
        append: bool,
        last_chunk: bool,
    },
    Ask {
        key: String,
        request: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    Message {
        text: String,
        trigger: bool,
    },
    Step {
        key: String,
        value: Value,
    },
    Sleep {
        key: String,
        ms: u64,
    },
    Complete {
        output: Value,
    },
    Fail {
        code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<Value>,
        retryable: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Cancelled {
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

impl Report {
    /// The `type`, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Progress { .. } => "progress",
            Self::Artifact { .. } => "artifact",
            Self::Ask { .. } => "ask",
            Self::Message { .. } => "message",
            Self::Step { .. } => "step",
            Self::Sleep { .. } => "sleep",
            Self::Complete { .. } => "complete",
            Self::Fail { .. } => "fail",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_parse_as_the_protocol_writes_them() {
        let start: Event = serde_json::from_value(json!({
            "type": "start", "assignment": "asg_1", "protocol": 2, "task": "task_1",
            "kind": "research", "attempt": 2, "steps": {"a": 1}, "input": {"topic": "tides"},
        }))
        .expect("a start event parses");
        let Event::Start(start) = start else {
            panic!("not a start: {start:?}");
        };
        assert_eq!(start.attempt, 2);
        assert_eq!(start.steps.get("a"), Some(&json!(1)));
        assert_eq!(start.input, json!({"topic": "tides"}));

        let revoke: Event = serde_json::from_value(
            json!({"type": "revoke", "assignment": "asg_1", "reason": "lost"}),
        )
        .expect("a revoke parses");
        assert_eq!(
            revoke,
            Event::Revoke {
                assignment: "asg_1".into(),
                reason: Some("lost".into())
            }
        );
        let later: Event = serde_json::from_value(json!({"type": "pause", "assignment": "asg_1"}))
            .expect("an unknown event parses");
        assert_eq!(later, Event::Unknown);
    }

    #[test]
    fn reports_serialize_as_process_protocol_lines() {
        let fail = Report::Fail {
            code: "rate_limited".into(),
            message: None,
            details: None,
            retryable: true,
            retry_after_ms: Some(500),
        };
        assert_eq!(
            serde_json::to_value(&fail).expect("serializes"),
            json!({"type": "fail", "code": "rate_limited", "retryable": true, "retry_after_ms": 500})
        );
        let progress = Report::Progress {
            percent: Some(40),
            message: None,
        };
        assert_eq!(
            serde_json::to_value(&progress).expect("serializes"),
            json!({"type": "progress", "percent": 40})
        );
    }
}
