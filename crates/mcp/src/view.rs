//! How a longrun task looks on each generation's wire: the one place that maps states,
//! outcomes, retention and timestamps onto MCP.
//!
//! | longrun | 2025-11-25 | 2026-07-28 |
//! |---|---|---|
//! | `submitted`, `working` | `working` | `working` |
//! | `input_required` | `input_required` | `input_required`, with `inputRequests` |
//! | `completed` | `completed` (`failed` when the result has `isError`) | `completed`, with `result` |
//! | `failed`, `rejected` | `failed` | `failed`, with `error` |
//! | `cancelled` | `cancelled` | `cancelled` |
//!
//! A failed task's error is a JSON-RPC error object: code `-32603`, the handler's message, and
//! `data` holding longrun's error code and details. Retention (`ttl` / `ttlMs`) counts from
//! creation in MCP and from the end in longrun: while a task runs it is its kind's ttl (the task
//! is kept at least that long from creation), and once it ended it is exactly when the task
//! expires, minus its creation.

use longrun::{Outcome, Task, task::State};
use serde_json::{Map, Value, json};

use crate::{error::Error, input::Question, time::rfc3339, tools};

/// The JSON-RPC code of a failed task's error.
const FAILED: i64 = -32603;

/// The status the given generation reports.
pub(crate) fn status(task: &Task, legacy: bool) -> &'static str {
    match task.state() {
        State::Submitted | State::Working => "working",
        State::InputRequired { .. } => "input_required",
        State::Ended(Outcome::Completed { output }) if legacy && tools::is_error(output) => {
            "failed"
        }
        State::Ended(Outcome::Completed { .. }) => "completed",
        State::Ended(Outcome::Failed { .. } | Outcome::Rejected { .. }) => "failed",
        State::Ended(Outcome::Cancelled { .. }) => "cancelled",
    }
}

/// Milliseconds the task is kept, counted from its creation.
fn ttl_ms(task: &Task) -> u64 {
    let kept = match task.expires_at() {
        Some(expires) => expires.saturating_since(task.created_at),
        None => task.ttl,
    };
    u64::try_from(kept.as_millis()).unwrap_or(u64::MAX)
}

/// The fields both generations share, with the given names for retention and polling.
fn common(task: &Task, legacy: bool, poll_ms: u64) -> Map<String, Value> {
    let (ttl, poll) = if legacy {
        ("ttl", "pollInterval")
    } else {
        ("ttlMs", "pollIntervalMs")
    };
    let mut view = Map::from_iter([
        ("taskId".to_owned(), json!(task.id.to_string())),
        ("status".to_owned(), json!(status(task, legacy))),
        ("createdAt".to_owned(), json!(rfc3339(task.created_at))),
        (
            "lastUpdatedAt".to_owned(),
            json!(rfc3339(task.updated_at())),
        ),
        (ttl.to_owned(), json!(ttl_ms(task))),
    ]);
    if !task.status().is_terminal() {
        view.insert(poll.to_owned(), json!(poll_ms.max(1)));
    }
    if let Some(message) = status_message(task) {
        view.insert("statusMessage".to_owned(), json!(message));
    }
    view
}

/// What the task is doing, in words: the latest progress message, the question it waits on,
/// or how it ended.
fn status_message(task: &Task) -> Option<String> {
    if let Some((key, request)) = task.state().pending_input().and_then(|p| p.iter().next()) {
        let question = Question::from_request(key, request);
        if let Some(message) = question.params().get("message").and_then(Value::as_str) {
            return Some(message.to_owned());
        }
        return Some(format!("waiting for an answer to `{key}`"));
    }
    task.status_message().map(str::to_owned)
}

/// A 2025-11-25 `Task`.
pub(crate) fn legacy(task: &Task, poll_ms: u64) -> Value {
    Value::Object(common(task, true, poll_ms))
}

/// A 2026-07-28 `Task` (the body of a `CreateTaskResult`, without `resultType`).
pub(crate) fn modern(task: &Task, poll_ms: u64) -> Map<String, Value> {
    common(task, false, poll_ms)
}

/// A 2026-07-28 `DetailedTask`: the task with its open questions, result or error inlined.
pub(crate) fn detailed(task: &Task, poll_ms: u64) -> Map<String, Value> {
    let mut view = modern(task, poll_ms);
    match task.state() {
        State::InputRequired { pending } => {
            let requests: Map<String, Value> = pending
                .iter()
                .map(|(key, request)| {
                    (
                        key.clone(),
                        Question::from_request(key, request).input_request(),
                    )
                })
                .collect();
            view.insert("inputRequests".to_owned(), Value::Object(requests));
        }
        State::Ended(Outcome::Completed { output }) => {
            let mut result = tools::call_result(output);
            result.insert("resultType".to_owned(), json!("complete"));
            view.insert("result".to_owned(), Value::Object(result));
        }
        State::Ended(Outcome::Failed { .. } | Outcome::Rejected { .. }) => {
            if let Some(Err(error)) = ended(task) {
                view.insert("error".to_owned(), error.object());
            }
        }
        _ => {}
    }
    view
}

/// The answer a call of this task gets once it ended: its `CallToolResult`, or the JSON-RPC
/// error it failed with. `None` while it runs.
pub(crate) fn ended(task: &Task) -> Option<Result<Map<String, Value>, Error>> {
    let outcome = task.outcome()?;
    Some(match outcome {
        Outcome::Completed { output } => Ok(tools::call_result(output)),
        Outcome::Failed { error } | Outcome::Rejected { error } => {
            let mut data = json!({"code": error.code});
            if let Some(details) = &error.details {
                data["details"] = details.clone();
            }
            let message = if error.message.is_empty() {
                error.code.clone()
            } else {
                error.message.clone()
            };
            Err(Error::Task {
                code: FAILED,
                message,
                data: Some(data),
            })
        }
        Outcome::Cancelled { reason } => Err(Error::Task {
            code: FAILED,
            message: format!("task {} was {reason}; it has no result", task.id),
            data: Some(json!({"code": "cancelled"})),
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use longrun::{
        TaskError, TaskId,
        event::{Change, Event},
        store::NewTask,
        task::{Labels, Owner},
        time::Timestamp,
    };

    use super::*;

    fn task() -> Task {
        Task::create(NewTask {
            id: TaskId::random(),
            kind: "k".into(),
            owner: Owner::default(),
            session: None,
            input: json!({}),
            labels: Labels::new(),
            ttl: Duration::from_secs(60),
            deadline: None,
            created_at: Timestamp::from_millis(1_000),
            idempotency_key: None,
            start_at: None,
        })
        .0
    }

    fn apply(task: &mut Task, change: Change, at: u64) {
        let status = task.state().after(&change).unwrap().status();
        let event = Event {
            task: task.id,
            seq: task.last_seq().next(),
            at: Timestamp::from_millis(at),
            status,
            change,
        };
        task.apply(&event).unwrap();
    }

    fn ended_with(outcome: Outcome) -> Task {
        let mut task = task();
        apply(&mut task, Change::Started { attempt: 1 }, 1_500);
        apply(&mut task, Change::Ended(outcome), 11_000);
        task
    }

    #[test]
    fn running_tasks_read_working_with_their_kinds_ttl() {
        let task = task();
        let view = legacy(&task, 500);
        assert_eq!(view["status"], "working");
        assert_eq!(view["ttl"], 60_000);
        assert_eq!(view["pollInterval"], 500);
        assert_eq!(view["createdAt"], "1970-01-01T00:00:01.000Z");
        let view = modern(&task, 500);
        assert_eq!(view["ttlMs"], 60_000);
        assert!(!view.contains_key("ttl"));
    }

    #[test]
    fn questions_are_inlined_and_named_in_the_status_message() {
        let mut task = task();
        apply(&mut task, Change::Started { attempt: 1 }, 1_500);
        let request = json!({"type": "boolean", "message": "Go on?"});
        apply(
            &mut task,
            Change::InputRequested {
                key: "go".into(),
                request,
            },
            2_000,
        );
        let view = detailed(&task, 500);
        assert_eq!(view["status"], "input_required");
        assert_eq!(view["statusMessage"], "Go on?");
        assert_eq!(view["inputRequests"]["go"]["method"], "elicitation/create");
    }

    #[test]
    fn outcomes_map_as_each_generation_wants() {
        let tool_error = ended_with(Outcome::Completed {
            output: json!({"content": [], "isError": true}),
        });
        assert_eq!(status(&tool_error, true), "failed");
        assert_eq!(status(&tool_error, false), "completed");
        let view = detailed(&tool_error, 500);
        assert_eq!(view["result"]["isError"], true);
        assert_eq!(view["result"]["resultType"], "complete");
        assert!(!view.contains_key("pollIntervalMs"));
        // Ended at 11 s, kept 60 s after: 70 s from creation at 1 s.
        assert_eq!(view["ttlMs"], 70_000);

        let failed = ended_with(Outcome::Failed {
            error: TaskError::new("boom", "it broke"),
        });
        let view = detailed(&failed, 500);
        assert_eq!(view["status"], "failed");
        assert_eq!(view["error"]["code"], -32603);
        assert_eq!(view["error"]["message"], "it broke");
        assert_eq!(view["error"]["data"]["code"], "boom");
        assert!(!view.contains_key("result"));

        let cancelled = ended_with(Outcome::Cancelled {
            reason: longrun::task::CancelReason::Requested { by: None },
        });
        assert_eq!(status(&cancelled, false), "cancelled");
        assert!(matches!(ended(&cancelled), Some(Err(_))));
        assert!(ended(&task()).is_none());
    }
}
