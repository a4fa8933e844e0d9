//! The protocol's JSON shapes: what the runtime writes to a child's stdin and what it reads
//! from its stdout. Only this module knows them; the session converts to and from the task
//! model explicitly.

use std::{collections::BTreeMap, time::Duration};

use longrun::{TaskError, event::ArtifactChunk};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One line written to the child's stdin.
///
/// Fields are written in declaration order after `"type"`; the start line's `input` comes
/// last, which the protocol promises so that a shell handler can cut it out without a JSON
/// parser.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ToChild<'a> {
    /// The first line: what to do.
    Start {
        protocol: u32,
        task: String,
        kind: &'a str,
        attempt: u32,
        /// Protocol 2: the values earlier attempts saved, by step key.
        #[serde(skip_serializing_if = "Option::is_none")]
        steps: Option<&'a BTreeMap<String, Value>>,
        input: &'a Value,
    },
    /// The answer to a question the child asked.
    Answer { key: &'a str, value: &'a Value },
    /// Nobody answered the question in time.
    AnswerTimeout { key: &'a str },
    /// Protocol 2: the step `key` is durable (or the sleep `key` is over).
    StepSaved { key: &'a str },
    /// The task is being cancelled; SIGTERM follows (or precedes: they race).
    Cancel,
}

impl ToChild<'_> {
    /// The line, newline included.
    pub(crate) fn line(&self) -> Vec<u8> {
        // Serializing these shapes cannot fail: every map key is a string.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// One line read from the child's stdout. Unknown fields are ignored, so that a handler
/// written for a later revision of protocol 1 still runs; an unknown `type` is an error.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum FromChild {
    /// Progress: percent from 0 to 100 (optional) and a message (optional).
    Progress {
        #[serde(default)]
        percent: Option<f64>,
        #[serde(default)]
        message: String,
    },
    /// An artifact chunk.
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
    /// A question; the answer (or a time-out) comes back on stdin.
    Ask {
        key: String,
        request: Value,
        /// Absent: wait for as long as the task lives.
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Protocol 2: a step's value, to be saved durably; `step_saved` answers.
    Step { key: String, value: Value },
    /// Protocol 2: a durable sleep; `step_saved` answers when it is over.
    Sleep { key: String, ms: u64 },
    /// A message for the agent.
    Message {
        text: String,
        #[serde(default)]
        trigger: bool,
    },
    /// Outcome: success.
    Complete {
        #[serde(default)]
        output: Value,
    },
    /// Outcome: failure.
    Fail {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        details: Option<Value>,
        /// Protocol 2: `false` fails the task whatever its retry policy says.
        #[serde(default = "yes")]
        retryable: bool,
        /// Protocol 2: wait this long before the next attempt, instead of the kind's backoff.
        #[serde(default)]
        retry_after_ms: Option<u64>,
    },
    /// Outcome: the child stopped on its own account or after a cancel.
    Cancelled {
        #[serde(default)]
        message: String,
    },
}

fn yes() -> bool {
    true
}

/// How the child said its task ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reported {
    Complete(Value),
    Fail(TaskError),
    Cancelled(String),
}

/// A child's `artifact` line as the task model's chunk.
pub(crate) fn chunk(
    id: String,
    name: Option<String>,
    parts: Vec<Value>,
    append: bool,
    last_chunk: bool,
) -> ArtifactChunk {
    ArtifactChunk {
        id,
        name,
        parts,
        append,
        last_chunk,
    }
}

/// A child's `fail` line as the task model's error.
pub(crate) fn task_error(
    code: String,
    message: String,
    details: Option<Value>,
    retryable: bool,
    retry_after_ms: Option<u64>,
) -> TaskError {
    let mut error = TaskError::new(code, message);
    error.details = details;
    error.fatal = !retryable;
    error.retry_after = retry_after_ms.map(Duration::from_millis);
    error
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_start_line_ends_with_the_input() {
        let input = json!({"seconds": 3, "nested": {"input": "x"}});
        let line = ToChild::Start {
            protocol: 1,
            task: "task_0123".into(),
            kind: "countdown",
            attempt: 2,
            steps: None,
            input: &input,
        }
        .line();
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"type\":\"start\",\"protocol\":1,\"task\":\"task_0123\",\"kind\":\"countdown\",\
             \"attempt\":2,\"input\":{\"nested\":{\"input\":\"x\"},\"seconds\":3}}\n"
        );
    }

    #[test]
    fn protocol_2_puts_the_steps_before_the_input() {
        let input = json!("last");
        let steps = BTreeMap::from([("call-1".to_owned(), json!({"reply": "hi"}))]);
        let line = ToChild::Start {
            protocol: 2,
            task: "task_0123".into(),
            kind: "agent",
            attempt: 3,
            steps: Some(&steps),
            input: &input,
        }
        .line();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"type\":\"start\",\"protocol\":2,\"task\":\"task_0123\",\"kind\":\"agent\",\
             \"attempt\":3,\"steps\":{\"call-1\":{\"reply\":\"hi\"}},\"input\":\"last\"}\n"
        );
    }

    #[test]
    fn a_fail_line_says_whether_to_retry() {
        let parse = |line: &str| match serde_json::from_str::<FromChild>(line).unwrap() {
            FromChild::Fail {
                code,
                message,
                details,
                retryable,
                retry_after_ms,
            } => task_error(code, message, details, retryable, retry_after_ms),
            other => panic!("{other:?}"),
        };
        let plain = parse(r#"{"type":"fail","code":"x"}"#);
        assert!(plain.is_retryable() && plain.retry_after.is_none());
        let fatal = parse(r#"{"type":"fail","code":"x","retryable":false}"#);
        assert!(!fatal.is_retryable());
        let later = parse(r#"{"type":"fail","code":"x","retry_after_ms":1500}"#);
        assert_eq!(later.retry_after, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn lines_to_the_child_are_tagged() {
        let value = json!(true);
        let cases = [
            (
                ToChild::Answer {
                    key: "ok",
                    value: &value,
                },
                r#"{"type":"answer","key":"ok","value":true}"#,
            ),
            (
                ToChild::AnswerTimeout { key: "ok" },
                r#"{"type":"answer_timeout","key":"ok"}"#,
            ),
            (ToChild::Cancel, r#"{"type":"cancel"}"#),
            (
                ToChild::StepSaved { key: "s1" },
                r#"{"type":"step_saved","key":"s1"}"#,
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(message.line(), format!("{expected}\n").into_bytes());
        }
    }

    #[test]
    fn lines_from_the_child_parse_with_defaults() {
        let parse = |line: &str| serde_json::from_str::<FromChild>(line);
        assert!(matches!(
            parse(r#"{"type":"progress","percent":50}"#).unwrap(),
            FromChild::Progress { percent: Some(p), message } if p == 50.0 && message.is_empty()
        ));
        assert!(matches!(
            parse(r#"{"type":"artifact","id":"a","parts":["x"],"future_field":1}"#).unwrap(),
            FromChild::Artifact {
                append: false,
                last_chunk: false,
                name: None,
                ..
            }
        ));
        assert!(matches!(
            parse(r#"{"type":"ask","key":"k","request":{}}"#).unwrap(),
            FromChild::Ask {
                timeout_ms: None,
                ..
            }
        ));
        assert!(matches!(
            parse(r#"{"type":"complete"}"#).unwrap(),
            FromChild::Complete {
                output: Value::Null
            }
        ));
        assert!(matches!(
            parse(r#"{"type":"fail","code":"nope"}"#).unwrap(),
            FromChild::Fail { code, .. } if code == "nope"
        ));
        for bad in [
            r#"{"type":"dance"}"#,
            r#"{"percent":5}"#,
            r#"{"type":"fail"}"#,
            r#"{"type":"ask","key":"k"}"#,
            r#"[1,2]"#,
            "plain text",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
