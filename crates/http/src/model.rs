//! The wire types: every JSON shape the HTTP API reads or writes.
//!
//! The runtime's domain types are not wire types; each one is converted here explicitly, so the
//! API's JSON changes only when this file does (and `docs/openapi.json` with it).
//!
//! Conventions:
//! - Times are whole **milliseconds since the Unix epoch**, in fields ending `_ms`
//!   (`created_at_ms`), like the durations (`ttl_ms`). One convention for both, exact, and what
//!   the runtime keeps.
//! - An optional field is left out when it has no value, except `next` on a page of tasks,
//!   which is `null` on the last page.
//! - Sessions are shown as the client named them (see the crate docs on scoping).

use std::collections::BTreeMap;

use longrun::TaskId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::unscope;

/// A task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, not yet running (queued at a limit, say).
    Submitted,
    /// The handler is running.
    Working,
    /// The handler waits for an answer: see the task's `questions`.
    InputRequired,
    /// Ended with a result: see `output`.
    Completed,
    /// Ended with an error: see `error`.
    Failed,
    /// Ended by cancellation: see `cancellation`.
    Cancelled,
    /// Refused before it started (a concurrency limit): see `error`.
    Rejected,
}

impl From<longrun::task::Status> for Status {
    fn from(status: longrun::task::Status) -> Self {
        match status {
            longrun::task::Status::Submitted => Self::Submitted,
            longrun::task::Status::Working => Self::Working,
            longrun::task::Status::InputRequired => Self::InputRequired,
            longrun::task::Status::Completed => Self::Completed,
            longrun::task::Status::Failed => Self::Failed,
            longrun::task::Status::Cancelled => Self::Cancelled,
            longrun::task::Status::Rejected => Self::Rejected,
        }
    }
}

impl Status {
    /// Whether the task has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Rejected
        )
    }
}

/// How far a task has got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// 0 to 100, when the handler can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// What the handler is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<&longrun::event::Progress> for Progress {
    fn from(progress: &longrun::event::Progress) -> Self {
        Self {
            percent: progress.percent,
            message: progress.message.clone(),
        }
    }
}

/// An artifact: every chunk the handler emitted so far, folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    /// Names the artifact within its task.
    pub id: String,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The content: JSON strings are text, anything else is data.
    pub parts: Vec<Value>,
    /// Whether the last chunk has arrived.
    pub complete: bool,
}

impl From<&longrun::event::Artifact> for Artifact {
    fn from(artifact: &longrun::event::Artifact) -> Self {
        Self {
            id: artifact.id.clone(),
            name: artifact.name.clone(),
            parts: artifact.parts.clone(),
            complete: artifact.complete,
        }
    }
}

/// Why a task failed or was rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskError {
    /// Stable and machine-readable: `handler_error`, `panicked`, `interrupted`,
    /// `limit_reached`, or the handler's own.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// Anything else the handler attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl From<&longrun::TaskError> for TaskError {
    fn from(error: &longrun::TaskError) -> Self {
        Self {
            code: error.code.clone(),
            message: error.message.clone(),
            details: error.details.clone(),
        }
    }
}

/// Why a task was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Somebody asked (`POST /v1/tasks/{id}/cancel`, or the embedding program).
    Requested,
    /// The task outlived its deadline.
    DeadlineExceeded,
    /// The server stopped every task (shutting down).
    Stopped,
    /// The handler reported that it cancelled itself.
    Handler,
}

/// How a cancellation came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cancellation {
    /// Why.
    pub reason: CancelReason,
    /// Who asked, when known (`requested` only): the principal, over this API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The handler's words (`handler` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<&longrun::task::CancelReason> for Cancellation {
    fn from(reason: &longrun::task::CancelReason) -> Self {
        let (reason, by, message) = match reason {
            longrun::task::CancelReason::Requested { by } => {
                (CancelReason::Requested, by.clone(), None)
            }
            longrun::task::CancelReason::DeadlineExceeded => {
                (CancelReason::DeadlineExceeded, None, None)
            }
            longrun::task::CancelReason::Stopped => (CancelReason::Stopped, None, None),
            longrun::task::CancelReason::Handler { message } => {
                (CancelReason::Handler, None, Some(message.clone()))
            }
        };
        Self {
            reason,
            by,
            message,
        }
    }
}

/// How a task ended, as the fields `output`, `error` and `cancellation` carry it.
#[derive(Debug, Clone, PartialEq, Default)]
struct Ending {
    output: Option<Value>,
    error: Option<TaskError>,
    cancellation: Option<Cancellation>,
}

impl From<&longrun::Outcome> for Ending {
    fn from(outcome: &longrun::Outcome) -> Self {
        match outcome {
            longrun::Outcome::Completed { output } => Self {
                output: Some(output.clone()),
                ..Self::default()
            },
            longrun::Outcome::Failed { error } | longrun::Outcome::Rejected { error } => Self {
                error: Some(error.into()),
                ..Self::default()
            },
            longrun::Outcome::Cancelled { reason } => Self {
                cancellation: Some(reason.into()),
                ..Self::default()
            },
        }
    }
}

/// A task: one unit of long-running work, as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    /// `task_` and 32 hex digits; unguessable.
    #[schema(value_type = String, example = "task_8c5b1f0e2a6d4b7c9e3f1a2b3c4d5e6f")]
    pub id: TaskId,
    /// The kind's name.
    pub kind: String,
    /// Where the task is in its life.
    pub status: Status,
    /// The latest message: the last progress message, or how the task ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// The latest progress report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Artifacts emitted so far.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// The open questions (key → what is asked) while the task is `input_required`; answer
    /// one with `POST /v1/tasks/{id}/answers/{key}`. Empty otherwise.
    #[serde(default)]
    pub questions: BTreeMap<String, Value>,
    /// The handler's output, when `completed` (which may itself be `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why, when `failed` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
    /// Why, when `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    /// How often the handler has been started: 1, or more after a crash re-ran it.
    pub attempt: u32,
    /// The session (conversation) the task belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Labels, for filtering.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The input the task was started with.
    pub input: Value,
    /// Whether a caller waiting with `wait_ms` stopped waiting and left it running (its outcome
    /// then goes to the session's inbox).
    #[serde(default)]
    pub detached: bool,
    /// The sequence number of the task's latest event: its event stream resumes after it.
    pub last_seq: u64,
    /// When it was created.
    pub created_at_ms: u64,
    /// When it last changed.
    pub updated_at_ms: u64,
    /// When the handler first started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// When it stops being readable (its end plus `ttl_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// When it is cancelled if it has not ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_at_ms: Option<u64>,
    /// How long it stays readable after it ends.
    pub ttl_ms: u64,
    /// When the handler may start, for a delayed start (`delay_ms` or `start_at_ms`): the task
    /// stays `submitted` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_ms: Option<u64>,
    /// The `Idempotency-Key` the task was started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<&longrun::Task> for Task {
    fn from(task: &longrun::Task) -> Self {
        let ending = task.outcome().map(Ending::from).unwrap_or_default();
        let owner = task.owner.as_str();
        Self {
            id: task.id,
            kind: task.kind.clone(),
            status: task.status().into(),
            status_message: task.status_message().map(str::to_owned),
            progress: task.progress().map(Progress::from),
            artifacts: task.artifacts().iter().map(Artifact::from).collect(),
            questions: task.state().pending_input().cloned().unwrap_or_default(),
            output: ending.output,
            error: ending.error,
            cancellation: ending.cancellation,
            attempt: task.attempt(),
            session: task
                .session
                .as_ref()
                .map(|session| unscope(owner, session.as_str()).to_owned()),
            labels: task.labels.clone(),
            input: task.input.clone(),
            detached: task.is_detached(),
            last_seq: task.last_seq().as_u64(),
            created_at_ms: task.created_at.as_millis(),
            updated_at_ms: task.updated_at().as_millis(),
            started_at_ms: task.started_at().map(|at| at.as_millis()),
            finished_at_ms: task.finished_at().map(|at| at.as_millis()),
            expires_at_ms: task.expires_at().map(|at| at.as_millis()),
            deadline_at_ms: task.deadline.map(|at| at.as_millis()),
            ttl_ms: millis(task.ttl),
            start_at_ms: task.start_at.map(|at| at.as_millis()),
            idempotency_key: task.idempotency_key.clone(),
        }
    }
}

/// `POST /v1/tasks`: what to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// The kind's name (`GET /v1/kinds` lists them).
    pub kind: String,
    /// The input; it must match the kind's `input_schema`.
    pub input: Value,
    /// The session (conversation) the task belongs to: background and detached tasks leave
    /// their outcome in its inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// How long the task stays readable after it ends (default: the kind's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The task's longest life, from now; it is cancelled when it passes (default: the kind's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Labels, for filtering (`label=key:value`); keys may not contain `:`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Wait up to this long for the task to end, then answer with the task as it stands (it
    /// keeps running, detached). Without it the answer comes at once. Capped by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Start the handler this long from now, not before: the task stays `submitted` until then,
    /// holding no concurrency slot. Not with `start_at_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Start the handler at this time (milliseconds since the Unix epoch), not before; a time
    /// already past starts at once. Not with `delay_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_ms: Option<u64>,
    /// POST the task's events to this receiver as they happen, signed (`docs/webhooks.md`).
    /// Default: the kind's webhook in the server's config, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// Where a task's events are POSTed, one event per POST (the body is an [`Event`], as on the
/// SSE streams), signed with the Standard Webhooks headers (`webhook-id`, stable across
/// retries, `webhook-timestamp`, `webhook-signature`). Failed POSTs are retried with backoff;
/// pending deliveries survive a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The receiver: an `http` or `https` URL on a public address (the server refuses
    /// loopback, private, link-local and reserved addresses unless its config allows loopback).
    pub url: String,
    /// Which events: every one (`all`, the default) or only the one that ends the task (`end`).
    #[serde(default)]
    pub events: WebhookEvents,
    /// The Standard Webhooks secret the POSTs are signed with: `whsec_` and the base64 of 24
    /// to 64 random bytes. Default: the server's `[webhooks] secret`; one of the two is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Which of a task's events a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvents {
    /// Every event, in order.
    #[default]
    All,
    /// Only the event that ends the task (completed, failed, cancelled or rejected).
    End,
}

/// `GET /v1/tasks`: one page of tasks, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskPage {
    /// The tasks.
    pub tasks: Vec<Task>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// An event of a task: every change is one, numbered from 1 with no gaps.
///
/// On the SSE streams each event is one SSE message: its `data` is this object; on a task's
/// stream its `id` is `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// The task.
    #[schema(value_type = String, example = "task_8c5b1f0e2a6d4b7c9e3f1a2b3c4d5e6f")]
    pub task: TaskId,
    /// Its place in the task's log, from 1.
    pub seq: u64,
    /// When it happened.
    pub at_ms: u64,
    /// The task's status after it.
    pub status: Status,
    /// What changed.
    pub change: Change,
}

impl From<&longrun::event::Event> for Event {
    fn from(event: &longrun::event::Event) -> Self {
        Self {
            task: event.task,
            seq: event.seq.as_u64(),
            at_ms: event.at.as_millis(),
            status: event.status.into(),
            change: (&event.change).into(),
        }
    }
}

/// What an event changed, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// The task was created (always event 1).
    Submitted,
    /// The handler started.
    Started {
        /// Which run: 1, or more after a crash re-run.
        attempt: u32,
    },
    /// The handler reported progress.
    Progress {
        /// 0 to 100, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<f64>,
        /// What is happening.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The handler emitted (part of) an artifact.
    Artifact {
        /// The artifact's id.
        id: String,
        /// A human-readable name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The content.
        parts: Vec<Value>,
        /// Extends the artifact instead of replacing it.
        append: bool,
        /// No further chunk of this artifact follows.
        last_chunk: bool,
    },
    /// The handler asked a question and waits for the answer.
    InputRequested {
        /// Names the question: answer at `/v1/tasks/{id}/answers/{key}`.
        key: String,
        /// What is asked.
        request: Value,
    },
    /// A question was answered.
    InputAnswered {
        /// The question.
        key: String,
        /// The answer.
        value: Value,
    },
    /// Nobody answered the question in time.
    InputTimedOut {
        /// The question.
        key: String,
    },
    /// The task left the agent a message (also placed in the session's inbox).
    AgentMessage {
        /// The message.
        message: String,
        /// Whether it asks for a new agent turn.
        trigger: bool,
    },
    /// The caller stopped waiting; the task runs on, detached.
    Detached,
    /// Cancellation was asked for; the handler has a grace period to stop.
    CancelRequested {
        /// Why.
        cancellation: Cancellation,
    },
    /// A durable step completed: a re-run or a retry gets `value` without running it again.
    StepSaved {
        /// Names the step.
        key: String,
        /// What the step returned.
        value: Value,
    },
    /// A durable sleep began: a re-run or a retry waits only until `until_ms`.
    TimerStarted {
        /// Names the timer.
        key: String,
        /// When the sleep ends (milliseconds since the Unix epoch).
        until_ms: u64,
    },
    /// An attempt failed with a retryable error; the task waits in `submitted` until `at_ms`,
    /// when the next attempt starts.
    RetryScheduled {
        /// The attempt that failed.
        attempt: u32,
        /// Why it failed.
        error: TaskError,
        /// When the next attempt starts (milliseconds since the Unix epoch).
        at_ms: u64,
    },
    /// The task ended; `status` says how, and one of the fields below why.
    Ended {
        /// The output, when `completed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        /// Why, when `failed` or `rejected`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<TaskError>,
        /// Why, when `cancelled`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancellation: Option<Cancellation>,
    },
}

impl From<&longrun::event::Change> for Change {
    fn from(change: &longrun::event::Change) -> Self {
        use longrun::event::Change as C;
        match change {
            C::Submitted => Self::Submitted,
            C::Started { attempt } => Self::Started { attempt: *attempt },
            C::Progress(progress) => Self::Progress {
                percent: progress.percent,
                message: progress.message.clone(),
            },
            C::Artifact(chunk) => Self::Artifact {
                id: chunk.id.clone(),
                name: chunk.name.clone(),
                parts: chunk.parts.clone(),
                append: chunk.append,
                last_chunk: chunk.last_chunk,
            },
            C::InputRequested { key, request } => Self::InputRequested {
                key: key.clone(),
                request: request.clone(),
            },
            C::InputAnswered { key, value } => Self::InputAnswered {
                key: key.clone(),
                value: value.clone(),
            },
            C::InputTimedOut { key } => Self::InputTimedOut { key: key.clone() },
            C::AgentMessage { message, trigger } => Self::AgentMessage {
                message: message.clone(),
                trigger: *trigger,
            },
            C::Detached => Self::Detached,
            C::StepSaved { key, value } => Self::StepSaved {
                key: key.clone(),
                value: value.clone(),
            },
            C::TimerStarted { key, until } => Self::TimerStarted {
                key: key.clone(),
                until_ms: until.as_millis(),
            },
            C::RetryScheduled { attempt, error, at } => Self::RetryScheduled {
                attempt: *attempt,
                error: error.into(),
                at_ms: at.as_millis(),
            },
            C::CancelRequested { reason } => Self::CancelRequested {
                cancellation: reason.into(),
            },
            C::Ended(outcome) => {
                let Ending {
                    output,
                    error,
                    cancellation,
                } = outcome.into();
                Self::Ended {
                    output,
                    error,
                    cancellation,
                }
            }
        }
    }
}

/// The data of a `lagged` message on `GET /v1/events`: the stream skipped events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lagged {
    /// How many events (of every principal's tasks) were skipped.
    pub missed: u64,
    /// What to do: re-read the tasks you follow.
    pub message: String,
}

/// `POST /v1/sessions/{session}/inbox:drain`: what to acknowledge and what to fetch. Every
/// field is optional; an empty body (or none) fetches without acknowledging.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// Acknowledge (remove for good) every item up to and including this position: the
    /// `through` of the previous drain, once its items are handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<u64>,
    /// Return at most this many items (default and cap: the server's). `0` only acknowledges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    /// If the inbox is empty, wait up to this long for an item to arrive. Capped by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// What a drain returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Drained {
    /// The oldest unacknowledged items. They stay in the inbox, and come again at the next
    /// drain, until acknowledged.
    pub items: Vec<InboxItem>,
    /// The last item's position: send it as `ack` with the next drain once the items are
    /// handled. `null` when there are no items.
    pub through: Option<u64>,
    /// How many items this request's `ack` removed.
    pub acknowledged: usize,
}

/// One item in a session's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboxItem {
    /// Its position: positions only grow within a session.
    pub position: u64,
    /// The task it is about.
    #[schema(value_type = String, example = "task_8c5b1f0e2a6d4b7c9e3f1a2b3c4d5e6f")]
    pub task: TaskId,
    /// When it was placed.
    pub at_ms: u64,
    /// Whether it asks for a new agent turn (outcomes always do).
    pub triggers: bool,
    /// What it says.
    pub entry: InboxEntry,
}

impl From<&longrun::inbox::InboxItem> for InboxItem {
    fn from(item: &longrun::inbox::InboxItem) -> Self {
        Self {
            position: item.position,
            task: item.task,
            at_ms: item.at.as_millis(),
            triggers: item.triggers(),
            entry: (&item.entry).into(),
        }
    }
}

/// What an inbox item says, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboxEntry {
    /// A message from a running task.
    Message {
        /// The message.
        message: String,
        /// Whether it asks for a new agent turn.
        trigger: bool,
    },
    /// A background or detached task ended.
    Outcome {
        /// The task's kind.
        kind: String,
        /// How it ended.
        status: Status,
        /// The output, when `completed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        /// Why, when `failed` or `rejected`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<TaskError>,
        /// Why, when `cancelled`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancellation: Option<Cancellation>,
    },
}

impl From<&longrun::inbox::InboxEntry> for InboxEntry {
    fn from(entry: &longrun::inbox::InboxEntry) -> Self {
        match entry {
            longrun::inbox::InboxEntry::Message { message, trigger } => Self::Message {
                message: message.clone(),
                trigger: *trigger,
            },
            longrun::inbox::InboxEntry::Outcome { kind, outcome } => {
                let Ending {
                    output,
                    error,
                    cancellation,
                } = outcome.into();
                Self::Outcome {
                    kind: kind.clone(),
                    status: outcome.status().into(),
                    output,
                    error,
                    cancellation,
                }
            }
        }
    }
}

/// What a crash does to a task of a kind that was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// The handler runs again, with the answers it already got.
    Rerun,
    /// The task ends `failed` with code `interrupted`.
    Fail,
}

/// A kind of task this server runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Kind {
    /// Its name, for `POST /v1/tasks`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The JSON schema its input must match.
    pub input_schema: Value,
    /// The JSON schema of its output, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// At most this many of its tasks run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// How long a finished task stays readable, unless the start says otherwise.
    pub ttl_ms: u64,
    /// The longest a task may live, unless the start says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// How long a cancelled handler may take to stop.
    pub cancel_grace_ms: u64,
    /// What a crash does to a running task.
    pub restart: RestartPolicy,
}

impl From<&longrun::KindSpec> for Kind {
    fn from(spec: &longrun::KindSpec) -> Self {
        Self {
            name: spec.name.clone(),
            description: spec.description.clone(),
            input_schema: spec.input_schema.clone(),
            output_schema: spec.output_schema.clone(),
            concurrency: spec.concurrency,
            ttl_ms: millis(spec.ttl),
            deadline_ms: spec.deadline.map(millis),
            cancel_grace_ms: millis(spec.cancel_grace),
            restart: match spec.restart {
                longrun::kind::RestartPolicy::Rerun => RestartPolicy::Rerun,
                longrun::kind::RestartPolicy::Fail => RestartPolicy::Fail,
            },
        }
    }
}

/// `GET /v1/kinds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KindList {
    /// The kinds, by name.
    pub kinds: Vec<Kind>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Every error response, and the data of an SSE `error` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `malformed_json`, `bad_request`, `unauthorized`,
    /// `not_found`, `method_not_allowed`, `already_ended`, `already_answered`,
    /// `question_closed`, `not_running`, `refused`, `too_large`, `unsupported_media_type`,
    /// `invalid_request`, `unknown_kind`, `invalid_input`, `too_many_streams`,
    /// `shutting_down`, `internal`.
    pub code: String,
    /// What happened and what to do, for people.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_status_converts() {
        for status in longrun::task::Status::ALL {
            let wire = Status::from(status);
            assert_eq!(serde_json::to_value(wire).unwrap(), json!(status.as_str()));
            assert_eq!(wire.is_terminal(), status.is_terminal());
        }
    }

    #[test]
    fn changes_are_tagged_by_type() {
        let ended = longrun::event::Change::Ended(longrun::Outcome::Cancelled {
            reason: longrun::task::CancelReason::Requested {
                by: Some("alice".into()),
            },
        });
        assert_eq!(
            serde_json::to_value(Change::from(&ended)).unwrap(),
            json!({"type": "ended", "cancellation": {"reason": "requested", "by": "alice"}})
        );
        let asked = longrun::event::Change::InputRequested {
            key: "approve".into(),
            request: json!({"question": "ok?"}),
        };
        assert_eq!(
            serde_json::to_value(Change::from(&asked)).unwrap(),
            json!({"type": "input_requested", "key": "approve", "request": {"question": "ok?"}})
        );
        assert_eq!(
            serde_json::to_value(Change::from(&longrun::event::Change::Detached)).unwrap(),
            json!({"type": "detached"})
        );
    }

    #[test]
    fn a_drain_request_refuses_unknown_fields() {
        assert!(serde_json::from_value::<DrainRequest>(json!({"ack": 3})).is_ok());
        assert!(serde_json::from_value::<DrainRequest>(json!({"acknowledge": 3})).is_err());
    }
}

/// `POST /v1/workers`: a worker registers (`docs/worker-protocol.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerRegistration {
    /// For people: a host name, a deployment.
    #[serde(default)]
    pub name: String,
    /// How many tasks the worker runs at once, all kinds together (at least 1; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<usize>,
    /// The kinds it serves: each a worker kind of this server that the caller may serve.
    pub kinds: Vec<WorkerKind>,
}

/// One kind a worker serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerKind {
    /// The kind's name.
    pub name: String,
    /// The JSON schema of the input the worker takes; must equal the configured one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
}

/// What a registration returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerRegistered {
    /// The worker's id (`wkr_…`), for every later call.
    pub worker: String,
    /// Send a heartbeat this often.
    pub heartbeat_ms: u64,
    /// A worker without a heartbeat for this long is lost.
    pub expiry_ms: u64,
    /// The version of the messages (the process protocol's).
    pub protocol: u32,
}

/// What a heartbeat returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerHeartbeat {
    /// The assignments the server counts as this worker's; drop any other.
    pub assignments: Vec<String>,
    /// Whether the worker drains (takes no new tasks).
    pub draining: bool,
}

/// A connected worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Worker {
    /// Its id.
    pub id: String,
    /// The name it registered with.
    pub name: String,
    /// The principal it authenticated as.
    pub principal: String,
    /// The kinds it serves.
    pub kinds: Vec<String>,
    /// How many tasks it runs at once.
    pub capacity: usize,
    /// The tasks it runs now.
    pub tasks: Vec<String>,
    /// Whether it drains.
    pub draining: bool,
    /// How long ago its last heartbeat came.
    pub last_heartbeat_ms_ago: u64,
    /// How long it has been connected.
    pub connected_ms: u64,
}

/// `GET /v1/workers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    /// The workers connected to this node.
    pub workers: Vec<Worker>,
}

/// One event of a worker's stream (`GET /v1/workers/{worker}/events`): the SSE `event` is its
/// `type`; the object is a process-protocol stdin message with the assignment it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerEvent {
    /// `start`, `answer`, `answer_timeout`, `step_saved`, `cancel` or `revoke`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The assignment (`asg_…`).
    pub assignment: String,
    /// `start`: the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// `start`: the steps saved so far, by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Value>,
    /// `start`: the input; `answer`: see `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// `answer`, `answer_timeout`, `step_saved`: the question's or step's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `answer`: the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// One report of a worker: a process-protocol stdout message (`progress`, `artifact`, `ask`,
/// `message`, `step`, `sleep`, `complete`, `fail`, `cancelled`), as `docs/process-protocol.md`
/// describes each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerReport {
    /// The message's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message's other fields.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}
