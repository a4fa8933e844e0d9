//! Reading the server's JSON (tasks and events) for display and exit codes.
//!
//! The client works on `serde_json::Value` rather than on typed copies of the server's wire
//! types: `--json` output passes what the server said through unchanged (fields a newer server
//! adds included), and the few fields the client reads are read here, in one place.

use serde_json::Value;

use crate::Exit;

/// The exit code that tells how a task with `status` stands.
pub(crate) fn exit_for(status: &str) -> Exit {
    match status {
        "completed" => Exit::Completed,
        "failed" => Exit::Failed,
        "cancelled" => Exit::Cancelled,
        "rejected" => Exit::Rejected,
        _ => Exit::Running,
    }
}

/// Whether `status` is one a task never leaves.
pub(crate) fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled" | "rejected")
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A task as the server sent it.
#[derive(Clone, Copy)]
pub(crate) struct Task<'a>(pub(crate) &'a Value);

impl<'a> Task<'a> {
    /// `task_…`.
    pub(crate) fn id(self) -> &'a str {
        str_at(self.0, "id").unwrap_or("?")
    }

    /// The kind's name.
    pub(crate) fn kind(self) -> &'a str {
        str_at(self.0, "kind").unwrap_or("?")
    }

    /// `submitted`, `working`, `input_required`, or a terminal status.
    pub(crate) fn status(self) -> &'a str {
        str_at(self.0, "status").unwrap_or("unknown")
    }

    /// The latest progress: percent (0–100) and message.
    pub(crate) fn progress(self) -> (Option<f64>, Option<&'a str>) {
        let progress = self.0.get("progress");
        (
            progress
                .and_then(|p| p.get("percent"))
                .and_then(Value::as_f64),
            progress.and_then(|p| str_at(p, "message")),
        )
    }

    /// The open questions, by key.
    pub(crate) fn questions(self) -> Vec<(String, Value)> {
        ["questions", "input_required", "pending_input"]
            .into_iter()
            .find_map(|key| self.0.get(key).and_then(Value::as_object))
            .map(|open| {
                open.iter()
                    .map(|(key, request)| (key.clone(), request.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One line: how the task stands or how it ended.
    pub(crate) fn summary(self) -> String {
        let status = self.status();
        let detail = match status {
            "completed" => self
                .0
                .get("output")
                .map(|output| format!("output: {}", compact(output))),
            "failed" | "rejected" => error_text(self.0.get("error")),
            "cancelled" => cancellation_text(self.0.get("cancellation")),
            _ => match self.progress() {
                (Some(percent), Some(message)) => Some(format!("{percent:.0}% {message}")),
                (Some(percent), None) => Some(format!("{percent:.0}%")),
                (None, Some(message)) => Some(message.to_owned()),
                (None, None) => None,
            },
        }
        .or_else(|| str_at(self.0, "status_message").map(str::to_owned));
        match detail {
            Some(detail) => format!("{status}: {detail}"),
            None => status.to_owned(),
        }
    }
}

/// `code: message` of an error object.
fn error_text(error: Option<&Value>) -> Option<String> {
    let error = error?;
    match (str_at(error, "code"), str_at(error, "message")) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (None, Some(message)) => Some(message.to_owned()),
        _ => Some(compact(error)),
    }
}

/// `requested by alice`, `deadline_exceeded`, … of a cancellation object.
fn cancellation_text(cancellation: Option<&Value>) -> Option<String> {
    let cancellation = cancellation?;
    let reason = str_at(cancellation, "reason").unwrap_or("cancelled");
    Some(
        match (str_at(cancellation, "by"), str_at(cancellation, "message")) {
            (Some(by), _) => format!("{reason} by {by}"),
            (None, Some(message)) => format!("{reason}: {message}"),
            (None, None) => reason.to_owned(),
        },
    )
}

/// JSON on one line.
pub(crate) fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// An event as the server sent it in an SSE `data:` field.
#[derive(Clone, Copy)]
pub(crate) struct Event<'a>(pub(crate) &'a Value);

/// What an event changed, as the client cares about it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change<'a> {
    /// New progress.
    Progress {
        /// 0–100, when known.
        percent: Option<f64>,
        /// What the task is doing.
        message: Option<&'a str>,
    },
    /// A question was asked under `key`.
    Asked {
        /// The question's key.
        key: &'a str,
        /// What is asked.
        request: &'a Value,
    },
    /// The question under `key` was answered, or timed out.
    Closed {
        /// The question's key.
        key: &'a str,
    },
    /// The task ended.
    Ended,
    /// Anything else (submitted, started, artifact, message, detached, cancel requested).
    Other,
}

impl<'a> Event<'a> {
    /// The task it belongs to.
    pub(crate) fn task(self) -> Option<&'a str> {
        str_at(self.0, "task").or_else(|| str_at(self.0, "task_id"))
    }

    /// The task's status once the event applied.
    pub(crate) fn status(self) -> &'a str {
        str_at(self.0, "status").unwrap_or("unknown")
    }

    /// Its sequence number.
    pub(crate) fn seq(self) -> Option<u64> {
        self.0.get("seq").and_then(Value::as_u64)
    }

    /// The change itself: under `change` when the server nests it, else the event.
    fn change_value(self) -> &'a Value {
        self.0.get("change").unwrap_or(self.0)
    }

    /// The change's type, e.g. `progress`.
    pub(crate) fn kind(self) -> &'a str {
        str_at(self.change_value(), "type").unwrap_or("event")
    }

    /// What changed.
    pub(crate) fn change(self) -> Change<'a> {
        let change = self.change_value();
        let key = || str_at(change, "key").unwrap_or_default();
        match self.kind() {
            "progress" => {
                let inner = change.get("progress").unwrap_or(change);
                Change::Progress {
                    percent: inner.get("percent").and_then(Value::as_f64),
                    message: str_at(inner, "message"),
                }
            }
            "input_requested" => Change::Asked {
                key: key(),
                request: change.get("request").unwrap_or(&Value::Null),
            },
            "input_answered" | "input_timed_out" => Change::Closed { key: key() },
            "ended" => Change::Ended,
            _ if is_terminal(self.status()) => Change::Ended,
            _ => Change::Other,
        }
    }

    /// A `step_saved` event's key and value.
    pub(crate) fn step(self) -> Option<(&'a str, &'a Value)> {
        if self.kind() != "step_saved" {
            return None;
        }
        let change = self.change_value();
        Some((
            str_at(change, "key").unwrap_or_default(),
            change.get("value").unwrap_or(&Value::Null),
        ))
    }

    /// One line for people: `#3 working  progress 50% counting down`.
    pub(crate) fn line(self) -> String {
        let seq = self
            .seq()
            .map_or_else(String::new, |seq| format!("#{seq} "));
        let status = self.status();
        let detail = match self.change() {
            Change::Progress { percent, message } => {
                let percent = percent.map_or_else(String::new, |p| format!(" {p:.0}%"));
                let message = message.map_or_else(String::new, |m| format!(" {m}"));
                format!("progress{percent}{message}")
            }
            Change::Asked { key, request } => {
                format!("asks `{key}`: {}", question_text(request))
            }
            Change::Ended => {
                let ended = self.change_value();
                match status {
                    "completed" => ended
                        .get("output")
                        .map_or_else(|| "ended".to_owned(), |o| format!("output {}", compact(o))),
                    _ => error_text(ended.get("error"))
                        .or_else(|| cancellation_text(ended.get("cancellation")))
                        .unwrap_or_else(|| "ended".to_owned()),
                }
            }
            Change::Other if self.kind() == "started" => {
                let attempt = self.change_value().get("attempt").and_then(Value::as_u64);
                format!("started, attempt {}", attempt.unwrap_or(1))
            }
            Change::Other if let Some((key, value)) = self.step() => {
                format!("step `{key}` saved: {}", compact(value))
            }
            Change::Other if self.kind() == "retry_scheduled" => {
                let change = self.change_value();
                let attempt = change.get("attempt").and_then(Value::as_u64).unwrap_or(1);
                let error = error_text(change.get("error")).unwrap_or_default();
                format!("attempt {attempt} failed ({error}); retrying")
            }
            Change::Closed { .. } | Change::Other => {
                let mut fields = self.change_value().clone();
                if let Some(fields) = fields.as_object_mut() {
                    for noise in ["type", "task", "task_id", "seq", "at", "status"] {
                        fields.remove(noise);
                    }
                }
                match fields.as_object() {
                    Some(rest) if rest.is_empty() => self.kind().to_owned(),
                    _ => format!("{} {}", self.kind(), compact(&fields)),
                }
            }
        };
        if detail == status {
            return format!("{seq}{status}");
        }
        format!("{seq}{status:<15} {detail}")
    }
}

/// The words of a question: its `message` (or `question`, `prompt`), else its JSON.
pub(crate) fn question_text(request: &Value) -> String {
    ["message", "question", "prompt", "title"]
        .into_iter()
        .find_map(|key| str_at(request, key))
        .map_or_else(|| compact(request), str::to_owned)
}

/// The JSON type a question's answer should have, when the request says: a `type` of its own
/// (`{"type": "boolean", "message": …}`), or under `schema` / `requestedSchema`.
pub(crate) fn answer_type(request: &Value) -> Option<&str> {
    str_at(request, "type")
        .or_else(|| request.get("schema").and_then(|s| str_at(s, "type")))
        .or_else(|| {
            request
                .get("requestedSchema")
                .and_then(|s| str_at(s, "type"))
        })
}

/// Reads a typed answer to a question whose answer has `kind` (from [`answer_type`]):
/// yes/no for booleans, the text itself for strings that are not JSON, else one JSON value.
pub(crate) fn parse_answer(kind: Option<&str>, line: &str) -> Result<Value, String> {
    let line = line.trim();
    if kind == Some("boolean") {
        return match line.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" => Ok(Value::Bool(true)),
            "n" | "no" | "false" => Ok(Value::Bool(false)),
            _ => Err("answer y or n".to_owned()),
        };
    }
    match serde_json::from_str(line) {
        Ok(value) => Ok(value),
        Err(_) if kind == Some("string") => Ok(Value::String(line.to_owned())),
        Err(error) => Err(format!(
            "not JSON ({error}); strings need quotes, e.g. \"text\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn exit_codes_tell_outcomes_apart() {
        assert_eq!(exit_for("completed") as u8, 0);
        assert_eq!(exit_for("failed") as u8, 2);
        assert_eq!(exit_for("cancelled") as u8, 3);
        assert_eq!(exit_for("rejected") as u8, 4);
        assert_eq!(exit_for("working") as u8, 5);
        assert_eq!(exit_for("input_required") as u8, 5);
    }

    #[test]
    fn answers_are_read_by_the_requested_type() {
        assert_eq!(parse_answer(Some("boolean"), " Yes\n"), Ok(json!(true)));
        assert_eq!(parse_answer(Some("boolean"), "n"), Ok(json!(false)));
        assert!(parse_answer(Some("boolean"), "maybe").is_err());
        assert_eq!(parse_answer(Some("string"), "hello"), Ok(json!("hello")));
        assert_eq!(parse_answer(None, "{\"a\": 1}"), Ok(json!({"a": 1})));
        assert!(parse_answer(None, "hello").is_err());
    }

    #[test]
    fn question_types_are_found_where_requests_put_them() {
        assert_eq!(answer_type(&json!({"type": "boolean"})), Some("boolean"));
        assert_eq!(
            answer_type(&json!({"schema": {"type": "string"}})),
            Some("string")
        );
        assert_eq!(
            answer_type(&json!({"requestedSchema": {"type": "object"}})),
            Some("object")
        );
        assert_eq!(answer_type(&json!({"message": "hi"})), None);
        assert_eq!(question_text(&json!({"message": "Go on?"})), "Go on?");
    }

    #[test]
    fn task_summaries_say_how_it_stands() {
        let task = json!({"id": "task_1", "status": "working",
                          "progress": {"percent": 40.0, "message": "4 left"}});
        assert_eq!(Task(&task).summary(), "working: 40% 4 left");
        let task = json!({"status": "failed", "error": {"code": "boom", "message": "it broke"}});
        assert_eq!(Task(&task).summary(), "failed: boom: it broke");
        let task =
            json!({"status": "cancelled", "cancellation": {"reason": "requested", "by": "al"}});
        assert_eq!(Task(&task).summary(), "cancelled: requested by al");
    }

    #[test]
    fn steps_and_retries_read_as_sentences() {
        let step = json!({"seq": 4, "status": "working",
            "change": {"type": "step_saved", "key": "call-1", "value": {"reply": "hi"}}});
        assert_eq!(
            Event(&step).line(),
            r#"#4 working         step `call-1` saved: {"reply":"hi"}"#
        );
        let retry = json!({"seq": 5, "status": "submitted",
            "change": {"type": "retry_scheduled", "attempt": 1, "at_ms": 9,
                "error": {"code": "rate_limited", "message": "429"}}});
        assert_eq!(
            Event(&retry).line(),
            "#5 submitted       attempt 1 failed (rate_limited: 429); retrying"
        );
    }

    #[test]
    fn event_lines_read_the_servers_event_shape() {
        let line = |event: Value| Event(&event).line();
        assert_eq!(
            line(json!({"task": "task_1", "seq": 3, "status": "working",
                        "change": {"type": "progress", "percent": 50.0, "message": "half"}})),
            "#3 working         progress 50% half"
        );
        assert_eq!(
            line(
                json!({"task": "task_1", "seq": 4, "status": "input_required",
                        "change": {"type": "input_requested", "key": "go",
                                   "request": {"type": "boolean", "message": "Go on?"}}})
            ),
            "#4 input_required  asks `go`: Go on?"
        );
        assert_eq!(
            line(json!({"task": "task_1", "seq": 9, "status": "completed",
                        "change": {"type": "ended", "output": {"n": 1}}})),
            "#9 completed       output {\"n\":1}"
        );
        assert_eq!(
            line(json!({"task": "task_1", "seq": 2, "status": "working",
                        "change": {"type": "started", "attempt": 2}})),
            "#2 working         started, attempt 2"
        );
        assert_eq!(
            line(json!({"task": "task_1", "seq": 1, "status": "submitted",
                        "change": {"type": "submitted"}})),
            "#1 submitted"
        );
        let ended = json!({"task": "t", "seq": 5, "status": "failed",
                           "change": {"type": "ended", "error": {"code": "x", "message": "y"}}});
        assert_eq!(Event(&ended).change(), Change::Ended);
        assert_eq!(Event(&ended).line(), "#5 failed          x: y");
    }
}
