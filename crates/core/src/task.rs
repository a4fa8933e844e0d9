//! The task: what was asked, by whom, how far it got and how it ended.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    TraceContext,
    event::{Change, Event, Seq},
    id::TaskId,
    state::{Refusal, State, Status},
    time::Timestamp,
};

/// Free-form key/value labels, for filtering.
pub type Labels = BTreeMap<String, String>;

macro_rules! name_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cloning is cheap: the text is shared.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Wraps a name.
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into().into())
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self(name.into())
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                Self(name.into())
            }
        }
    };
}

name_newtype!(
    /// The principal (tenant) a task belongs to. A principal sees and touches only its own tasks.
    Owner
);
name_newtype!(
    /// The conversation a task belongs to (nekro's `chat_key`, A2A's `contextId`, an MCP session).
    /// The agent inbox is kept per session.
    Session
);

impl Default for Owner {
    /// The owner of tasks started without one: the embedding program itself.
    fn default() -> Self {
        static LOCAL: std::sync::LazyLock<Owner> = std::sync::LazyLock::new(|| Owner::new("local"));
        LOCAL.clone()
    }
}

/// How far a task has got: an optional percentage and an optional message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// 0 to 100, when the handler can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// What the handler is doing now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Progress {
    /// Whether the percentage, if any, is a number from 0 to 100.
    pub fn is_valid(&self) -> bool {
        self.percent.is_none_or(|p| (0.0..=100.0).contains(&p))
    }
}

/// One piece of an artifact as the handler emits it. Chunks with `append` extend the artifact of
/// the same id; `last_chunk` says no more will follow (A2A's streaming artifact updates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactChunk {
    /// Names the artifact; chunks of one artifact share it.
    pub id: String,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The content: JSON strings are text, anything else is data.
    pub parts: Vec<Value>,
    /// Extend the artifact instead of replacing it.
    #[serde(default)]
    pub append: bool,
    /// No further chunk of this artifact will follow.
    #[serde(default)]
    pub last_chunk: bool,
}

/// An artifact as stored on the task: every chunk so far, folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// The artifact's id.
    pub id: String,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The content so far.
    pub parts: Vec<Value>,
    /// Whether the last chunk has arrived.
    pub complete: bool,
}

/// Why a task failed (or was rejected): a stable machine-readable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskError {
    /// Stable and machine-readable, e.g. `handler_error`, `panicked`, `interrupted`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// Anything else the handler chose to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Whether another attempt cannot help: a fatal error ends the task even when its kind's
    /// retry policy has attempts left. Errors are retryable unless marked fatal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fatal: bool,
    /// How long to wait before the next attempt, overriding the kind's backoff (a rate limit's
    /// `Retry-After`, for example).
    #[serde(
        default,
        rename = "retry_after_ms",
        skip_serializing_if = "Option::is_none",
        with = "crate::millis::option"
    )]
    pub retry_after: Option<Duration>,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

impl TaskError {
    /// The code a handler's plain error gets.
    pub const HANDLER_ERROR: &str = "handler_error";
    /// The code of a task whose handler panicked.
    pub const PANICKED: &str = "panicked";
    /// The code of a task whose run was cut short by a crash and whose kind does not re-run.
    pub const INTERRUPTED: &str = "interrupted";
    /// The code of a task whose input did not match its kind's input type.
    pub const INVALID_INPUT: &str = "invalid_input";
    /// The code of a task whose output could not be serialized.
    pub const INVALID_OUTPUT: &str = "invalid_output";
    /// The code of a task refused at a concurrency limit.
    pub const LIMIT_REACHED: &str = "limit_reached";

    /// An error with a code and a message; retryable, like every error not marked fatal.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
            fatal: false,
            retry_after: None,
        }
    }

    /// An error that no further attempt can mend: the task fails at once, whatever its retry
    /// policy says. The code is [`TaskError::HANDLER_ERROR`].
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(Self::HANDLER_ERROR, message).into_fatal()
    }

    /// Marks this error fatal (see [`TaskError::fatal`]).
    pub fn into_fatal(mut self) -> Self {
        self.fatal = true;
        self
    }

    /// Asks for the next attempt after `delay`, instead of the kind's backoff.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Whether another attempt may help (the error is not fatal).
    pub fn is_retryable(&self) -> bool {
        !self.fatal
    }

    /// Attaches details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for TaskError {}

impl From<String> for TaskError {
    fn from(message: String) -> Self {
        Self::new(Self::HANDLER_ERROR, message)
    }
}

impl From<&str> for TaskError {
    fn from(message: &str) -> Self {
        Self::new(Self::HANDLER_ERROR, message)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for TaskError {
    fn from(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::new(Self::HANDLER_ERROR, error.to_string())
    }
}

impl From<serde_json::Error> for TaskError {
    fn from(error: serde_json::Error) -> Self {
        Self::new(Self::HANDLER_ERROR, error.to_string())
    }
}

impl From<std::io::Error> for TaskError {
    fn from(error: std::io::Error) -> Self {
        Self::new(Self::HANDLER_ERROR, error.to_string())
    }
}

/// Why a task was cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum CancelReason {
    /// Somebody asked for it.
    Requested {
        /// Who or what asked, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// The task outlived its deadline.
    DeadlineExceeded,
    /// The runtime stopped every task (`stop_all`).
    Stopped,
    /// The handler itself reported that it cancelled (a stream handler's cancel signal).
    Handler {
        /// The handler's words.
        message: String,
    },
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Requested { by: Some(by) } => write!(f, "cancelled by {by}"),
            Self::Requested { by: None } => f.write_str("cancelled on request"),
            Self::DeadlineExceeded => f.write_str("cancelled: deadline exceeded"),
            Self::Stopped => f.write_str("cancelled: the runtime stopped all tasks"),
            Self::Handler { message } => write!(f, "cancelled by the handler: {message}"),
        }
    }
}

/// How a task ended. Each terminal status carries its own data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The handler returned a result.
    Completed {
        /// The handler's output.
        output: Value,
    },
    /// The handler returned an error, panicked, or its run was interrupted.
    Failed {
        /// Why.
        error: TaskError,
    },
    /// The task was cancelled before it finished.
    Cancelled {
        /// Why.
        #[serde(flatten)]
        reason: CancelReason,
    },
    /// The task was refused before it started (a limit, a policy).
    Rejected {
        /// Why.
        error: TaskError,
    },
}

impl Outcome {
    /// The terminal status this outcome gives.
    pub fn status(&self) -> Status {
        match self {
            Self::Completed { .. } => Status::Completed,
            Self::Failed { .. } => Status::Failed,
            Self::Cancelled { .. } => Status::Cancelled,
            Self::Rejected { .. } => Status::Rejected,
        }
    }

    /// A sentence describing the outcome, used as the status message.
    pub fn describe(&self) -> String {
        match self {
            Self::Completed { .. } => "completed".to_owned(),
            Self::Failed { error } => format!("failed: {}", error.message),
            Self::Cancelled { reason } => reason.to_string(),
            Self::Rejected { error } => format!("rejected: {}", error.message),
        }
    }
}

/// Everything needed to create a task; the runtime fills it from the start options and the kind.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The id, usually [`TaskId::random`].
    pub id: TaskId,
    /// The kind's name.
    pub kind: String,
    /// Who owns it.
    pub owner: Owner,
    /// The conversation it belongs to.
    pub session: Option<Session>,
    /// The handler's input.
    pub input: Value,
    /// Labels for filtering.
    pub labels: Labels,
    /// How long the task stays readable after it ends.
    pub ttl: Duration,
    /// When the task must have ended; it is cancelled then.
    pub deadline: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Names the start for its owner, so that a repeated start finds this task instead of
    /// creating another (see [`Task::idempotency_key`]).
    pub idempotency_key: Option<String>,
    /// When the handler may start, if later than creation (a delayed start).
    pub start_at: Option<Timestamp>,
    /// The trace the task's spans belong to (see [`Task::trace`]).
    pub trace: Option<TraceContext>,
}

/// A task: the unit of long-running work.
///
/// The state only changes through [`Task::apply`], which consults the state machine, so a stored
/// task can never be in a state the rules do not allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// The kind's name.
    pub kind: String,
    /// Who owns it.
    pub owner: Owner,
    /// The conversation it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// The handler's input.
    pub input: Value,
    /// Labels for filtering.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// How long the task stays readable after it ends.
    #[serde(with = "crate::millis")]
    pub ttl: Duration,
    /// When the task must have ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// The key its start was made under: unique per owner among the stored tasks, so a second
    /// start with the same key finds this task. Purging the task frees the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When the handler may start (a delayed start): the task stays `submitted` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
    /// The W3C trace context the task was started under (its caller's `traceparent`), or the
    /// task's own span when it started a trace. Kept so that every attempt, also a re-run after
    /// a restart, joins the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    // The fields below change only through `apply`; `crate::stored` reads and rebuilds them.
    pub(crate) state: State,
    pub(crate) status_message: Option<String>,
    pub(crate) progress: Option<Progress>,
    pub(crate) artifacts: Vec<Artifact>,
    pub(crate) attempt: u32,
    pub(crate) detached: bool,
    pub(crate) started_at: Option<Timestamp>,
    pub(crate) updated_at: Timestamp,
    pub(crate) finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry_at: Option<Timestamp>,
    pub(crate) last_seq: Seq,
}

impl Task {
    /// A new task in `submitted`, together with its first event (sequence 1).
    pub fn create(new: NewTask) -> (Self, Event) {
        let event = Event {
            task: new.id,
            seq: Seq::FIRST,
            at: new.created_at,
            status: Status::Submitted,
            change: Change::Submitted,
        };
        let task = Self {
            id: new.id,
            kind: new.kind,
            owner: new.owner,
            session: new.session,
            input: new.input,
            labels: new.labels,
            ttl: new.ttl,
            deadline: new.deadline,
            created_at: new.created_at,
            idempotency_key: new.idempotency_key,
            start_at: new.start_at,
            trace: new.trace,
            state: State::Submitted,
            status_message: None,
            progress: None,
            artifacts: Vec::new(),
            attempt: 0,
            detached: false,
            started_at: None,
            updated_at: new.created_at,
            finished_at: None,
            retry_at: None,
            last_seq: Seq::FIRST,
        };
        (task, event)
    }

    /// The state, with its data.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The status, without data.
    pub fn status(&self) -> Status {
        self.state.status()
    }

    /// The latest human-readable status message.
    pub fn status_message(&self) -> Option<&str> {
        self.status_message.as_deref()
    }

    /// The latest progress report.
    pub fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    /// Artifacts emitted so far.
    pub fn artifacts(&self) -> &[Artifact] {
        &self.artifacts
    }

    /// How often the handler has been started (1 for the first run, more after crash re-runs).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether a foreground caller stopped waiting and left the task running.
    pub fn is_detached(&self) -> bool {
        self.detached
    }

    /// When the handler first started.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }

    /// When the task last changed.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// When the task ended.
    pub fn finished_at(&self) -> Option<Timestamp> {
        self.finished_at
    }

    /// When the next attempt starts, while the task waits in `submitted` after a retryable
    /// failure.
    pub fn retry_at(&self) -> Option<Timestamp> {
        self.retry_at
    }

    /// When the task stops being readable: its end plus its ttl.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.finished_at.map(|at| at.saturating_add(self.ttl))
    }

    /// The outcome, once terminal.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Ended(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// The sequence number of the latest event applied.
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// Folds one event into the task. Events must come in sequence order, name this task, and
    /// carry the status their change leads to; one the state machine refuses, or that breaks
    /// any of those rules, changes nothing and is refused.
    pub fn apply(&mut self, event: &Event) -> Result<(), Refusal> {
        if event.seq != self.last_seq.next() {
            return Err(Refusal::out_of_sequence(self.status(), &event.change));
        }
        let next = self.state.after(&event.change)?;
        if event.task != self.id || event.status != next.status() {
            // A log must say what folding it gives: an event naming another task, or a status
            // its change does not lead to, is a writer's bug and is kept out of the store.
            return Err(Refusal::inconsistent(self.status(), &event.change));
        }
        self.state = next;
        self.last_seq = event.seq;
        self.updated_at = event.at;
        match &event.change {
            Change::Submitted => {}
            Change::Started { attempt } => {
                self.attempt = *attempt;
                self.started_at.get_or_insert(event.at);
                self.status_message = None;
                self.retry_at = None;
            }
            Change::StepSaved { key, .. } => {
                self.status_message = Some(format!("step `{key}` done"));
            }
            Change::TimerStarted { key, .. } => {
                self.status_message = Some(format!("sleeping (timer `{key}`)"));
            }
            Change::RetryScheduled { attempt, error, at } => {
                self.retry_at = Some(*at);
                self.status_message = Some(format!(
                    "attempt {attempt} failed ({}); the next attempt starts in {} ms",
                    error.message,
                    at.saturating_since(event.at).as_millis()
                ));
            }
            Change::Progress(progress) => {
                if progress.message.is_some() {
                    self.status_message.clone_from(&progress.message);
                }
                self.progress = Some(progress.clone());
            }
            Change::Artifact(chunk) => self.fold_artifact(chunk),
            Change::InputRequested { .. }
            | Change::InputAnswered { .. }
            | Change::InputTimedOut { .. }
            | Change::AgentMessage { .. }
            | Change::CancelRequested { .. } => {}
            Change::Detached => self.detached = true,
            Change::Ended(outcome) => {
                self.finished_at = Some(event.at);
                self.status_message = Some(outcome.describe());
            }
        }
        Ok(())
    }

    fn fold_artifact(&mut self, chunk: &ArtifactChunk) {
        match self.artifacts.iter_mut().find(|a| a.id == chunk.id) {
            Some(artifact) => {
                if chunk.append {
                    artifact.parts.extend(chunk.parts.iter().cloned());
                } else {
                    artifact.parts.clone_from(&chunk.parts);
                }
                if chunk.name.is_some() {
                    artifact.name.clone_from(&chunk.name);
                }
                artifact.complete = chunk.last_chunk;
            }
            None => self.artifacts.push(Artifact {
                id: chunk.id.clone(),
                name: chunk.name.clone(),
                parts: chunk.parts.clone(),
                complete: chunk.last_chunk,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn new_task() -> Task {
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
            trace: None,
        })
        .0
    }

    fn event(task: &Task, change: Change) -> Event {
        let status = task
            .state()
            .after(&change)
            .map_or(task.status(), |next| next.status());
        Event {
            task: task.id,
            seq: task.last_seq().next(),
            at: Timestamp::from_millis(2_000),
            status,
            change,
        }
    }

    #[test]
    fn refuses_inconsistent_events() {
        let mut task = new_task();
        let mut wrong_status = event(&task, Change::Started { attempt: 1 });
        wrong_status.status = Status::Completed;
        assert!(task.apply(&wrong_status).is_err());
        let mut other_task = event(&task, Change::Started { attempt: 1 });
        other_task.task = TaskId::random();
        assert!(task.apply(&other_task).is_err());
        assert_eq!(task.status(), Status::Submitted);
    }

    #[test]
    fn folds_a_whole_life() {
        let mut task = new_task();
        task.apply(&event(&task, Change::Started { attempt: 1 }))
            .unwrap();
        let progress = Progress {
            percent: Some(50.0),
            message: Some("half".into()),
        };
        task.apply(&event(&task, Change::Progress(progress.clone())))
            .unwrap();
        for (text, append, last) in [("a", false, false), ("b", true, true)] {
            let chunk = ArtifactChunk {
                id: "out".into(),
                name: None,
                parts: vec![json!(text)],
                append,
                last_chunk: last,
            };
            task.apply(&event(&task, Change::Artifact(chunk))).unwrap();
        }
        let done = Outcome::Completed { output: json!(3) };
        task.apply(&event(&task, Change::Ended(done.clone())))
            .unwrap();

        assert_eq!(task.status(), Status::Completed);
        assert_eq!(task.progress(), Some(&progress));
        assert_eq!(task.artifacts()[0].parts, vec![json!("a"), json!("b")]);
        assert!(task.artifacts()[0].complete);
        assert_eq!(task.outcome(), Some(&done));
        assert_eq!(task.last_seq(), Seq::from_u64(6));
        assert_eq!(
            task.expires_at(),
            Some(Timestamp::from_millis(2_000 + 60_000))
        );
    }

    #[test]
    fn a_retry_waits_in_submitted_until_the_next_start() {
        let mut task = new_task();
        task.apply(&event(&task, Change::Started { attempt: 1 }))
            .unwrap();
        let step = Change::StepSaved {
            key: "fetch".into(),
            value: json!([1, 2]),
        };
        task.apply(&event(&task, step)).unwrap();
        assert_eq!(task.status_message(), Some("step `fetch` done"));
        let retry = Change::RetryScheduled {
            attempt: 1,
            error: TaskError::new("rate_limited", "429"),
            at: Timestamp::from_millis(7_000),
        };
        task.apply(&event(&task, retry)).unwrap();
        assert_eq!(task.status(), Status::Submitted);
        assert_eq!(task.retry_at(), Some(Timestamp::from_millis(7_000)));
        assert!(task.status_message().unwrap().contains("5000 ms"));
        task.apply(&event(&task, Change::Started { attempt: 2 }))
            .unwrap();
        assert_eq!((task.attempt(), task.retry_at()), (2, None));
    }

    #[test]
    fn errors_are_retryable_unless_fatal_and_keep_their_flags_as_json() {
        let plain = TaskError::new("x", "y");
        assert!(plain.is_retryable());
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            json!({"code": "x", "message": "y"})
        );
        let fatal = TaskError::fatal("no").retry_after(Duration::from_millis(250));
        assert!(!fatal.is_retryable());
        let text = serde_json::to_value(&fatal).unwrap();
        assert_eq!(text["fatal"], json!(true));
        assert_eq!(text["retry_after_ms"], json!(250));
        assert_eq!(serde_json::from_value::<TaskError>(text).unwrap(), fatal);
    }

    #[test]
    fn refuses_events_out_of_sequence() {
        let mut task = new_task();
        let mut late = event(&task, Change::Started { attempt: 1 });
        late.seq = Seq::from_u64(7);
        assert!(task.apply(&late).is_err());
        assert_eq!(task.status(), Status::Submitted);
    }

    #[test]
    fn terminal_tasks_refuse_further_events() {
        let mut task = new_task();
        task.apply(&event(
            &task,
            Change::Ended(Outcome::Cancelled {
                reason: CancelReason::Requested { by: None },
            }),
        ))
        .unwrap();
        let before = task.clone();
        assert!(
            task.apply(&event(&task, Change::Started { attempt: 1 }))
                .is_err()
        );
        assert_eq!(task, before);
    }

    #[test]
    fn serializes_and_back_in_every_state() {
        let round_trip = |task: &Task| {
            let text = serde_json::to_string(task).unwrap();
            assert_eq!(
                &serde_json::from_str::<Task>(&text).unwrap(),
                task,
                "{text}"
            );
        };
        let outcomes = [
            Outcome::Completed {
                output: json!({"a": 1}),
            },
            Outcome::Failed {
                error: TaskError::new("bad", "it broke"),
            },
            Outcome::Cancelled {
                reason: CancelReason::DeadlineExceeded,
            },
        ];
        for outcome in outcomes {
            let mut task = new_task();
            round_trip(&task);
            task.apply(&event(&task, Change::Started { attempt: 1 }))
                .unwrap();
            round_trip(&task);
            let asked = Change::InputRequested {
                key: "k".into(),
                request: json!({}),
            };
            task.apply(&event(&task, asked)).unwrap();
            round_trip(&task);
            task.apply(&event(&task, Change::Ended(outcome))).unwrap();
            round_trip(&task);
        }
        let mut rejected = new_task();
        let error = TaskError::new(TaskError::LIMIT_REACHED, "full");
        rejected
            .apply(&event(
                &rejected,
                Change::Ended(Outcome::Rejected { error }),
            ))
            .unwrap();
        round_trip(&rejected);
    }
}
