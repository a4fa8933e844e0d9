//! The protocol's JSON shapes (`docs/worker-protocol.md`): what a worker sends to register and
//! report, and what the hub pushes on its event stream. Only this module knows them; the relay
//! converts to and from the task model explicitly.
//!
//! The reports and pushed events are the process protocol's messages
//! (`docs/process-protocol.md`) with an `assignment` added to what is pushed: a worker is a
//! process handler that lives across tasks and talks HTTP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of the messages a worker speaks: the process protocol's version 2 (steps,
/// sleeps, retry hints).
pub const PROTOCOL: u32 = 2;

/// `POST /v1/workers`: who the worker is and what it serves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// For people: a host name, a deployment.
    #[serde(default)]
    pub name: String,
    /// How many tasks it runs at once, all kinds together (at least 1).
    #[serde(default = "one")]
    pub capacity: usize,
    /// The kinds it serves (at least one).
    pub kinds: Vec<DeclaredKind>,
}

fn one() -> usize {
    1
}

/// One kind a worker serves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredKind {
    /// The kind's name, as configured on the server.
    pub name: String,
    /// The JSON schema of the input the worker's handler takes, if it says.
    #[serde(default)]
    pub input_schema: Option<Value>,
}

/// One report: a process-protocol stdout message. Unknown fields are ignored, as a process
/// handler's are; an unknown `type` is a protocol error.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Report {
    Progress {
        #[serde(default)]
        percent: Option<f64>,
        #[serde(default)]
        message: String,
    },
    Artifact {
        id: String,
        #[serde(default)]
        name: Option<String>,
        parts: Vec<Value>,
        #[serde(default)]
        append: bool,
        #[serde(default)]
        last_chunk: bool,
    },
    Ask {
        key: String,
        request: Value,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    Step {
        key: String,
        value: Value,
    },
    Sleep {
        key: String,
        ms: u64,
    },
    Message {
        text: String,
        #[serde(default)]
        trigger: bool,
    },
    Complete {
        #[serde(default)]
        output: Value,
    },
    Fail {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        details: Option<Value>,
        #[serde(default = "yes")]
        retryable: bool,
        #[serde(default)]
        retry_after_ms: Option<u64>,
    },
    Cancelled {
        #[serde(default)]
        message: String,
    },
}

fn yes() -> bool {
    true
}

/// One event pushed to a worker. Serialized as the SSE event's `data`; its `type` is also the
/// event's name.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Push<'a> {
    /// An assignment. `input` is last, as in the process protocol's start line.
    Start {
        assignment: &'a str,
        protocol: u32,
        task: String,
        kind: &'a str,
        attempt: u32,
        steps: &'a BTreeMap<String, Value>,
        /// The attempt's W3C trace context, for the worker's own spans; absent without one.
        #[serde(skip_serializing_if = "Option::is_none")]
        traceparent: Option<&'a str>,
        input: &'a Value,
    },
    Answer {
        assignment: &'a str,
        key: &'a str,
        value: &'a Value,
    },
    AnswerTimeout {
        assignment: &'a str,
        key: &'a str,
    },
    StepSaved {
        assignment: &'a str,
        key: &'a str,
    },
    Cancel {
        assignment: &'a str,
    },
    Revoke {
        assignment: &'a str,
        reason: &'a str,
    },
}

impl Push<'_> {
    /// The event's name: its `type`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Push::Start { .. } => "start",
            Push::Answer { .. } => "answer",
            Push::AnswerTimeout { .. } => "answer_timeout",
            Push::StepSaved { .. } => "step_saved",
            Push::Cancel { .. } => "cancel",
            Push::Revoke { .. } => "revoke",
        }
    }

    /// The event's data.
    pub(crate) fn data(&self) -> String {
        // Serializing these shapes cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_start_event_ends_with_the_input_and_names_the_assignment() {
        let steps = BTreeMap::from([("s1".to_owned(), json!(1))]);
        let input = json!({"topic": "tides"});
        let push = Push::Start {
            assignment: "asg_1",
            protocol: PROTOCOL,
            task: "task_1".into(),
            kind: "research",
            attempt: 2,
            steps: &steps,
            traceparent: None,
            input: &input,
        };
        assert_eq!(push.name(), "start");
        assert_eq!(
            push.data(),
            r#"{"type":"start","assignment":"asg_1","protocol":2,"task":"task_1","kind":"research","attempt":2,"steps":{"s1":1},"input":{"topic":"tides"}}"#
        );
        let traced = Push::Start {
            assignment: "asg_1",
            protocol: PROTOCOL,
            task: "task_1".into(),
            kind: "research",
            attempt: 1,
            steps: &BTreeMap::new(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            input: &input,
        };
        assert_eq!(
            traced.data(),
            r#"{"type":"start","assignment":"asg_1","protocol":2,"task":"task_1","kind":"research","attempt":1,"steps":{},"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","input":{"topic":"tides"}}"#
        );
    }

    #[test]
    fn reports_parse_as_the_process_protocol_does() {
        let parse = |text: &str| serde_json::from_str::<Report>(text);
        assert!(matches!(
            parse(r#"{"type":"fail","code":"x"}"#).unwrap(),
            Report::Fail {
                retryable: true,
                ..
            }
        ));
        assert!(matches!(
            parse(r#"{"type":"progress","future":1}"#).unwrap(),
            Report::Progress { percent: None, .. }
        ));
        for bad in [r#"{"type":"dance"}"#, r#"{"type":"ask","key":"k"}"#, "[]"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_registration_has_defaults_and_refuses_unknown_fields() {
        let registration: Registration =
            serde_json::from_value(json!({"kinds": [{"name": "k"}]})).unwrap();
        assert_eq!(registration.capacity, 1);
        assert!(
            serde_json::from_value::<Registration>(json!({"kinds": [], "capacty": 2})).is_err()
        );
    }
}
