//! The one place that maps longrun's tasks and events onto A2A's shapes.
//!
//! | longrun | A2A |
//! |---|---|
//! | status (DESIGN.md's table) | `TASK_STATE_*` (1.0) / kebab-case (0.3); `cancelled` → `CANCELED` |
//! | session | `contextId` (the principal's prefix taken off) |
//! | artifacts (folded) | `Task.artifacts`; artifact events → `artifactUpdate` with `append` / `lastChunk` |
//! | artifact part: string / `{"file": {…}}` / other JSON | `text` / `raw` or `url` part / `data` |
//! | `started`, answers, time-outs | `statusUpdate` with the new state |
//! | `progress` | `statusUpdate` (state unchanged) with the message as text, `metadata.longrun.progress` |
//! | `input_requested` | `statusUpdate` `INPUT_REQUIRED`, the question as the message's parts |
//! | `agent_message` | `statusUpdate` (state unchanged) with the message |
//! | `ended` | `statusUpdate` in the terminal state; the output (or error, or reason) as the message |
//! | `submitted`, `detached`, `cancel_requested` | nothing (a stream starts with a `Task` snapshot) |
//!
//! History is rebuilt from the event log: the message that started the task, each question and
//! each answer, each message to the agent, and the final message.

use longrun::{
    Outcome, Task, TaskError,
    event::{ArtifactChunk, Change, Event, Progress},
    task::{State, Status},
};
use serde_json::{Map, Value, json};

use crate::{
    input, time,
    wire::{self, Content, Message, Object, Part, Role, StatusUpdate, StreamResponse, TaskState},
};

/// The output key that makes a blocking `SendMessage` answer with a `Message` (see docs/a2a.md).
pub(crate) const MESSAGE_OUTPUT: &str = "a2a_message";

/// A2A's state for a longrun status.
pub(crate) fn state(status: Status) -> TaskState {
    match status {
        Status::Submitted => TaskState::Submitted,
        Status::Working => TaskState::Working,
        Status::InputRequired => TaskState::InputRequired,
        Status::Completed => TaskState::Completed,
        Status::Failed => TaskState::Failed,
        Status::Cancelled => TaskState::Canceled,
        Status::Rejected => TaskState::Rejected,
    }
}

/// longrun's status for an A2A state, for filters; `None` for states longrun never has.
pub(crate) fn status(state: TaskState) -> Option<Status> {
    Some(match state {
        TaskState::Submitted => Status::Submitted,
        TaskState::Working => Status::Working,
        TaskState::InputRequired => Status::InputRequired,
        TaskState::Completed => Status::Completed,
        TaskState::Failed => Status::Failed,
        TaskState::Canceled => Status::Cancelled,
        TaskState::Rejected => Status::Rejected,
        TaskState::Unspecified | TaskState::AuthRequired => return None,
    })
}

/// The `contextId` a client sees for a task: its session without the owner's prefix.
pub(crate) fn context_id(task: &Task) -> String {
    task.session.as_ref().map_or_else(String::new, |session| {
        longrun_surface::unscope(task.owner.as_str(), session.as_str()).to_owned()
    })
}

/// What a snapshot of a task includes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// At most this many history messages (`None`: all of them).
    pub(crate) history: Option<usize>,
    pub(crate) artifacts: bool,
}

impl Shape {
    /// Everything but history.
    pub(crate) const SNAPSHOT: Self = Self {
        history: Some(0),
        artifacts: true,
    };
}

/// The task as A2A shows it; `events` is its log (for the history), needed only when
/// `shape.history` is not `Some(0)`.
pub(crate) fn task(task: &Task, events: &[std::sync::Arc<Event>], shape: Shape) -> wire::Task {
    let id = task.id.to_string();
    let context = context_id(task);
    let message = status_message(task).map(|parts| agent_message(&id, &context, "status", parts));
    let artifacts = if shape.artifacts {
        task.artifacts()
            .iter()
            .map(|artifact| wire::Artifact {
                artifact_id: artifact.id.clone(),
                name: artifact.name.clone(),
                parts: parts(&artifact.parts),
            })
            .collect()
    } else {
        Vec::new()
    };
    let history = match shape.history {
        Some(0) => Vec::new(),
        limit => {
            let all = history(task, events);
            let skip = limit.map_or(0, |limit| all.len().saturating_sub(limit));
            all.into_iter().skip(skip).collect()
        }
    };
    let mut longrun = Map::new();
    longrun.insert("kind".into(), json!(task.kind));
    if let Some(progress) = task.progress() {
        longrun.insert("progress".into(), json!(progress));
    }
    wire::Task {
        id,
        context_id: context,
        status: wire::TaskStatus {
            state: state(task.status()),
            message,
            timestamp: Some(time::format(task.updated_at())),
        },
        artifacts,
        history,
        metadata: Some(Map::from_iter([(
            "longrun".to_owned(),
            Value::Object(longrun),
        )])),
    }
}

/// The task as it was created (`SUBMITTED`, nothing done yet), with the message that started
/// it as its history unless `history` is `Some(0)`: where a new task's stream starts.
pub(crate) fn created(task: &Task, history: Option<usize>) -> wire::Task {
    let id = task.id.to_string();
    let context = context_id(task);
    let history = if history == Some(0) {
        Vec::new()
    } else {
        let mut first = input::original(task);
        first.context_id.clone_from(&context);
        first.task_id.clone_from(&id);
        vec![first]
    };
    wire::Task {
        id,
        context_id: context,
        status: wire::TaskStatus {
            state: TaskState::Submitted,
            message: None,
            timestamp: Some(time::format(task.created_at)),
        },
        artifacts: Vec::new(),
        history,
        metadata: Some(Map::from_iter([(
            "longrun".to_owned(),
            json!({"kind": task.kind}),
        )])),
    }
}

/// The parts of the status message a task shows now: its open questions, how it ended, or its
/// latest progress message.
fn status_message(task: &Task) -> Option<Vec<Part>> {
    let parts = match task.state() {
        State::InputRequired { pending } => pending
            .iter()
            .flat_map(|(key, request)| question(key, request))
            .collect(),
        State::Ended(outcome) => outcome_parts(outcome),
        State::Submitted | State::Working => task
            .status_message()
            .map(|text| vec![Part::text(text)])
            .unwrap_or_default(),
    };
    (!parts.is_empty()).then_some(parts)
}

/// The parts that show a question: its `message` (or the request itself, if text) as text,
/// and the whole request as data, both tagged with the question's key.
fn question(key: &str, request: &Value) -> Vec<Part> {
    let tag = || Some(longrun_tag("question", json!(key)));
    let text = match request {
        Value::String(text) => Some(text.clone()),
        _ => request
            .get("message")
            .or_else(|| request.get("question"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let mut parts = Vec::new();
    if let Some(text) = text {
        parts.push(Part {
            metadata: tag(),
            ..Part::text(text)
        });
    }
    if !request.is_string() {
        parts.push(Part {
            metadata: tag(),
            ..Part::data(request.clone())
        });
    }
    parts
}

fn longrun_tag(key: &str, value: Value) -> Object {
    Map::from_iter([("longrun".to_owned(), json!({ key: value }))])
}

/// The parts that say how a task ended.
pub(crate) fn outcome_parts(outcome: &Outcome) -> Vec<Part> {
    match outcome {
        Outcome::Completed { output } => match output.get(MESSAGE_OUTPUT) {
            Some(message) if output.as_object().is_some_and(|o| o.len() == 1) => match message {
                Value::Array(items) => parts(items),
                other => value_parts(other),
            },
            _ => value_parts(output),
        },
        Outcome::Failed { error } | Outcome::Rejected { error } => error_parts(error),
        Outcome::Cancelled { reason } => vec![Part::text(reason.to_string())],
    }
}

fn error_parts(error: &TaskError) -> Vec<Part> {
    let mut detail = Map::new();
    detail.insert("code".into(), json!(error.code));
    if let Some(details) = &error.details {
        detail.insert("details".into(), details.clone());
    }
    vec![
        Part::text(error.message.clone()),
        Part::data(Value::Object(detail)),
    ]
}

/// One value as parts: nothing for null, text for a string, data for anything else.
pub(crate) fn value_parts(value: &Value) -> Vec<Part> {
    match value {
        Value::Null => Vec::new(),
        Value::String(text) => vec![Part::text(text.clone())],
        other => vec![Part::data(other.clone())],
    }
}

/// Artifact parts as a handler writes them: a string is text, `{"file": {"url" | "raw", …}}`
/// is a file, anything else is data.
pub(crate) fn parts(values: &[Value]) -> Vec<Part> {
    values.iter().map(part).collect()
}

fn part(value: &Value) -> Part {
    match value {
        Value::String(text) => Part::text(text.clone()),
        Value::Object(object) => file(object).unwrap_or_else(|| Part::data(value.clone())),
        other => Part::data(other.clone()),
    }
}

/// `{"file": {"url": …}}` or `{"file": {"raw": <base64>}}`, with optional `mediaType` and
/// `filename` beside the content; nothing else is a file.
fn file(object: &Map<String, Value>) -> Option<Part> {
    if object.len() != 1 {
        return None;
    }
    let file = object.get("file")?.as_object()?;
    let text = |key: &str| file.get(key).and_then(Value::as_str).map(str::to_owned);
    let known = ["url", "raw", "mediaType", "filename"];
    if file.keys().any(|key| !known.contains(&key.as_str())) {
        return None;
    }
    let content = match (text("url"), text("raw")) {
        (Some(url), None) => Content::Url(url),
        (None, Some(raw)) => Content::Raw(raw),
        _ => return None,
    };
    Some(Part {
        filename: text("filename"),
        media_type: text("mediaType"),
        ..Part::of(content)
    })
}

fn agent_message(task: &str, context: &str, suffix: &str, parts: Vec<Part>) -> Message {
    Message {
        message_id: format!("{task}-{suffix}"),
        context_id: context.to_owned(),
        task_id: task.to_owned(),
        role: Role::Agent,
        parts,
        ..Message::default()
    }
}

/// The task's conversation, oldest first, from its log.
fn history(task: &Task, events: &[std::sync::Arc<Event>]) -> Vec<Message> {
    let id = task.id.to_string();
    let context = context_id(task);
    let mut messages = Vec::new();
    for event in events {
        let suffix = event.seq.to_string();
        let (role, parts) = match &event.change {
            Change::Submitted => {
                let mut first = input::original(task);
                first.context_id.clone_from(&context);
                first.task_id.clone_from(&id);
                messages.push(first);
                continue;
            }
            Change::InputRequested { key, request } => (Role::Agent, question(key, request)),
            Change::InputAnswered { value, .. } => (Role::User, value_parts(value)),
            Change::AgentMessage { message, .. } => {
                (Role::Agent, vec![Part::text(message.clone())])
            }
            Change::Ended(outcome) => (Role::Agent, outcome_parts(outcome)),
            _ => continue,
        };
        if parts.is_empty() {
            continue;
        }
        let mut message = agent_message(&id, &context, &suffix, parts);
        message.role = role;
        messages.push(message);
    }
    messages
}

/// Turns a task's events into stream responses, following its status.
pub(crate) struct Mapper {
    task: String,
    context: String,
    /// `None` when the status before the next event is not known (a delivery resumed from the
    /// middle of the log): the next status change is then always shown.
    status: Option<Status>,
}

impl Mapper {
    /// A mapper for events after the snapshot `task`.
    pub(crate) fn new(task: &Task) -> Self {
        Self {
            task: task.id.to_string(),
            context: context_id(task),
            status: Some(task.status()),
        }
    }

    /// A mapper for events after `task`'s first event, when it was `submitted`.
    pub(crate) fn created(task: &Task) -> Self {
        Self {
            status: Some(Status::Submitted),
            ..Self::new(task)
        }
    }

    /// A mapper for events after some point of `task`'s log before its current state.
    pub(crate) fn resumed(task: &Task) -> Self {
        Self {
            status: None,
            ..Self::new(task)
        }
    }

    /// The status after the last event mapped, if known.
    pub(crate) fn status(&self) -> Option<Status> {
        self.status
    }

    /// The stream response for `event`, if A2A shows it.
    pub(crate) fn event(&mut self, event: &Event) -> Option<StreamResponse> {
        let before = self.status.replace(event.status);
        let changed = before != Some(event.status);
        let (message, metadata) = match &event.change {
            Change::Submitted | Change::Detached | Change::CancelRequested { .. } => return None,
            Change::Artifact(chunk) => return Some(self.artifact(chunk)),
            Change::Progress(progress) => {
                let parts = progress
                    .message
                    .iter()
                    .map(|text| Part::text(text.clone()))
                    .collect();
                (Some(parts), Some(progress_tag(progress)))
            }
            Change::InputRequested { key, request } => (Some(question(key, request)), None),
            Change::AgentMessage { message, .. } => (Some(vec![Part::text(message.clone())]), None),
            // Steps and retries show as status messages, as `tasks get` shows them.
            Change::StepSaved { key, .. } => {
                (Some(vec![Part::text(format!("step `{key}` done"))]), None)
            }
            Change::RetryScheduled { attempt, error, .. } => (
                Some(vec![Part::text(format!(
                    "attempt {attempt} failed ({}); retrying",
                    error.message
                ))]),
                None,
            ),
            Change::Ended(outcome) => (Some(outcome_parts(outcome)), None),
            Change::Started { .. }
            | Change::InputAnswered { .. }
            | Change::InputTimedOut { .. }
            | Change::TimerStarted { .. } => {
                if !changed {
                    return None;
                }
                (None, None)
            }
        };
        let message = message
            .filter(|parts: &Vec<Part>| !parts.is_empty())
            .map(|parts| agent_message(&self.task, &self.context, &event.seq.to_string(), parts));
        Some(StreamResponse::StatusUpdate(StatusUpdate {
            task_id: self.task.clone(),
            context_id: self.context.clone(),
            status: wire::TaskStatus {
                state: state(event.status),
                message,
                timestamp: Some(time::format(event.at)),
            },
            metadata,
        }))
    }

    fn artifact(&self, chunk: &ArtifactChunk) -> StreamResponse {
        StreamResponse::ArtifactUpdate(wire::ArtifactUpdate {
            task_id: self.task.clone(),
            context_id: self.context.clone(),
            artifact: wire::Artifact {
                artifact_id: chunk.id.clone(),
                name: chunk.name.clone(),
                parts: parts(&chunk.parts),
            },
            append: chunk.append,
            last_chunk: chunk.last_chunk,
        })
    }
}

fn progress_tag(progress: &Progress) -> Object {
    longrun_tag("progress", json!(progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_parts_follow_the_convention() {
        let parts = parts(&[
            json!("hello"),
            json!({"file": {"url": "https://e.com/a.txt", "mediaType": "text/plain", "filename": "a.txt"}}),
            json!({"file": {"raw": "dGNr"}}),
            json!({"file": {"url": "u", "raw": "r"}}),
            json!({"file": {"url": "u"}, "other": 1}),
            json!({"key": "value", "count": 42}),
            json!(3),
        ]);
        assert_eq!(parts[0].content, Content::Text("hello".into()));
        assert_eq!(parts[1].content, Content::Url("https://e.com/a.txt".into()));
        assert_eq!(parts[1].media_type.as_deref(), Some("text/plain"));
        assert_eq!(parts[2].content, Content::Raw("dGNr".into()));
        assert!(matches!(parts[3].content, Content::Data(_)));
        assert!(matches!(parts[4].content, Content::Data(_)));
        assert_eq!(
            parts[5].content,
            Content::Data(json!({"key": "value", "count": 42}))
        );
        assert_eq!(parts[6].content, Content::Data(json!(3)));
    }

    #[test]
    fn outputs_become_message_parts() {
        let completed = |output| outcome_parts(&Outcome::Completed { output });
        assert_eq!(completed(json!(null)), vec![]);
        assert_eq!(completed(json!("hi")), vec![Part::text("hi")]);
        assert_eq!(
            completed(json!({"n": 1})),
            vec![Part::data(json!({"n": 1}))]
        );
        assert_eq!(
            completed(json!({MESSAGE_OUTPUT: "direct"})),
            vec![Part::text("direct")]
        );
        assert_eq!(
            completed(json!({MESSAGE_OUTPUT: ["a", {"b": 1}]})),
            vec![Part::text("a"), Part::data(json!({"b": 1}))]
        );
        let failed = outcome_parts(&Outcome::Failed {
            error: TaskError::new("boom", "it broke"),
        });
        assert_eq!(failed[0], Part::text("it broke"));
        assert_eq!(failed[1], Part::data(json!({"code": "boom"})));
    }

    #[test]
    fn every_status_has_a_state() {
        for status in Status::ALL {
            let state = state(status);
            assert_eq!(self::status(state), Some(status));
        }
        assert_eq!(state(Status::Cancelled).name(), "TASK_STATE_CANCELED");
        assert_eq!(state(Status::InputRequired).name_v03(), "input-required");
    }

    #[test]
    fn questions_show_their_text_and_request() {
        let parts = question("approve", &json!({"type": "boolean", "message": "Go?"}));
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content, Content::Text("Go?".into()));
        assert_eq!(
            parts[0].metadata.as_ref().unwrap()["longrun"],
            json!({"question": "approve"})
        );
        assert!(matches!(parts[1].content, Content::Data(_)));
        assert_eq!(question("k", &json!("plain?")).len(), 1);
    }
}
