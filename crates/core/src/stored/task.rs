//! How a task is stored: the whole [`Task`], its state and what it folded from its events, in
//! one document.
//!
//! A task's derived fields (status message, progress, artifacts, …) are kept rather than
//! folded again from the log on every read: a read is one row.

use std::{borrow::Cow, collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Error, V1,
    change::StoredProgress,
    outcome::{StoredCancelReason, StoredOutcome, StoredTaskError, millis},
};
use crate::{
    event::Seq,
    id::TaskId,
    state::State,
    task::{Artifact, Labels, Outcome, Owner, Session, Task},
    time::Timestamp,
    trace::TraceContext,
};

/// A [`Task`] as stored. The open fields of the task come first, then what it folded from its
/// events; `status_message`, `progress`, `started_at` and `finished_at` are written even when
/// empty (as `null`), as version 1 always did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTask<'a> {
    /// The format's version.
    #[serde(rename = "v", default)]
    pub v: V1,
    /// The task's id.
    #[serde(rename = "id")]
    pub id: TaskId,
    /// The kind's name.
    #[serde(rename = "kind")]
    pub kind: Cow<'a, str>,
    /// The owner.
    #[serde(rename = "owner")]
    pub owner: Cow<'a, str>,
    /// The session.
    #[serde(rename = "session", default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Cow<'a, str>>,
    /// The handler's input.
    #[serde(rename = "input")]
    pub input: Cow<'a, Value>,
    /// The labels.
    #[serde(rename = "labels", default, skip_serializing_if = "is_empty")]
    pub labels: Cow<'a, Labels>,
    /// How long it stays readable after its end, in milliseconds.
    #[serde(rename = "ttl")]
    pub ttl: u64,
    /// When it must have ended, in milliseconds since the epoch.
    #[serde(rename = "deadline", default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// When it was created, in milliseconds since the epoch.
    #[serde(rename = "created_at")]
    pub created_at: u64,
    /// The key its start was made under.
    #[serde(
        rename = "idempotency_key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idempotency_key: Option<Cow<'a, str>>,
    /// When the handler may start, in milliseconds since the epoch.
    #[serde(rename = "start_at", default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<u64>,
    /// The trace it was started under.
    #[serde(rename = "trace", default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<StoredTrace<'a>>,
    /// Its state, with the state's data.
    #[serde(rename = "state")]
    pub state: StoredState<'a>,
    /// The latest status message.
    #[serde(rename = "status_message", default)]
    pub status_message: Option<Cow<'a, str>>,
    /// The latest progress report.
    #[serde(rename = "progress", default)]
    pub progress: Option<StoredProgress<'a>>,
    /// The artifacts so far.
    #[serde(rename = "artifacts")]
    pub artifacts: Vec<StoredArtifact<'a>>,
    /// How often the handler has started.
    #[serde(rename = "attempt")]
    pub attempt: u32,
    /// Whether a foreground caller stopped waiting.
    #[serde(rename = "detached")]
    pub detached: bool,
    /// When the handler first started, in milliseconds since the epoch.
    #[serde(rename = "started_at", default)]
    pub started_at: Option<u64>,
    /// When the task last changed, in milliseconds since the epoch.
    #[serde(rename = "updated_at")]
    pub updated_at: u64,
    /// When it ended, in milliseconds since the epoch.
    #[serde(rename = "finished_at", default)]
    pub finished_at: Option<u64>,
    /// When the next attempt starts, in a retry's backoff.
    #[serde(rename = "retry_at", default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<u64>,
    /// The sequence number of its latest event.
    #[serde(rename = "last_seq")]
    pub last_seq: u64,
}

#[expect(
    clippy::ptr_arg,
    reason = "`skip_serializing_if` hands over the field as it is"
)]
fn is_empty(labels: &Cow<'_, Labels>) -> bool {
    labels.is_empty()
}

impl<'a> From<&'a Task> for StoredTask<'a> {
    fn from(task: &'a Task) -> Self {
        Self {
            v: V1,
            id: task.id,
            kind: Cow::Borrowed(&task.kind),
            owner: Cow::Borrowed(task.owner.as_str()),
            session: task.session.as_ref().map(|s| Cow::Borrowed(s.as_str())),
            input: Cow::Borrowed(&task.input),
            labels: Cow::Borrowed(&task.labels),
            ttl: millis(task.ttl),
            deadline: task.deadline.map(Timestamp::as_millis),
            created_at: task.created_at.as_millis(),
            idempotency_key: task.idempotency_key.as_deref().map(Cow::Borrowed),
            start_at: task.start_at.map(Timestamp::as_millis),
            trace: task.trace.as_ref().map(StoredTrace::from),
            state: (&task.state).into(),
            status_message: task.status_message.as_deref().map(Cow::Borrowed),
            progress: task.progress.as_ref().map(StoredProgress::from),
            artifacts: task.artifacts.iter().map(StoredArtifact::from).collect(),
            attempt: task.attempt,
            detached: task.detached,
            started_at: task.started_at.map(Timestamp::as_millis),
            updated_at: task.updated_at.as_millis(),
            finished_at: task.finished_at.map(Timestamp::as_millis),
            retry_at: task.retry_at.map(Timestamp::as_millis),
            last_seq: task.last_seq.as_u64(),
        }
    }
}

impl TryFrom<StoredTask<'_>> for Task {
    type Error = Error;

    fn try_from(task: StoredTask<'_>) -> Result<Self, Error> {
        let trace = task.trace.map(TraceContext::try_from).transpose()?;
        Ok(Self {
            id: task.id,
            kind: task.kind.into_owned(),
            owner: Owner::new(task.owner.into_owned()),
            session: task.session.map(|s| Session::new(s.into_owned())),
            input: task.input.into_owned(),
            labels: task.labels.into_owned(),
            ttl: Duration::from_millis(task.ttl),
            deadline: task.deadline.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(task.created_at),
            idempotency_key: task.idempotency_key.map(Cow::into_owned),
            start_at: task.start_at.map(Timestamp::from_millis),
            trace,
            state: task.state.into(),
            status_message: task.status_message.map(Cow::into_owned),
            progress: task.progress.map(Into::into),
            artifacts: task.artifacts.into_iter().map(Into::into).collect(),
            attempt: task.attempt,
            detached: task.detached,
            started_at: task.started_at.map(Timestamp::from_millis),
            updated_at: Timestamp::from_millis(task.updated_at),
            finished_at: task.finished_at.map(Timestamp::from_millis),
            retry_at: task.retry_at.map(Timestamp::from_millis),
            last_seq: Seq::from_u64(task.last_seq),
        })
    }
}

/// A task's [`State`], tagged by `status`: the open states, or the outcome itself (not nested
/// under an `ended` tag, which would repeat `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum StoredState<'a> {
    /// `{"status": "submitted"}`
    #[serde(rename = "submitted")]
    Submitted,
    /// `{"status": "working"}`
    #[serde(rename = "working")]
    Working,
    /// `{"status": "input_required", "pending": {key: request}}`
    #[serde(rename = "input_required")]
    InputRequired {
        /// The open questions.
        #[serde(rename = "pending")]
        pending: Cow<'a, BTreeMap<String, Value>>,
    },
    /// `{"status": "completed", "output"}`
    #[serde(rename = "completed")]
    Completed {
        /// The handler's output.
        #[serde(rename = "output")]
        output: Cow<'a, Value>,
    },
    /// `{"status": "failed", "error"}`
    #[serde(rename = "failed")]
    Failed {
        /// Why.
        #[serde(rename = "error")]
        error: StoredTaskError<'a>,
    },
    /// `{"status": "cancelled", "reason", …}`
    #[serde(rename = "cancelled")]
    Cancelled {
        /// Why, flattened beside `status`.
        #[serde(flatten)]
        reason: StoredCancelReason<'a>,
    },
    /// `{"status": "rejected", "error"}`
    #[serde(rename = "rejected")]
    Rejected {
        /// Why.
        #[serde(rename = "error")]
        error: StoredTaskError<'a>,
    },
}

impl<'a> From<&'a State> for StoredState<'a> {
    fn from(state: &'a State) -> Self {
        match state {
            State::Submitted => Self::Submitted,
            State::Working => Self::Working,
            State::InputRequired { pending } => Self::InputRequired {
                pending: Cow::Borrowed(pending),
            },
            State::Ended(outcome) => match StoredOutcome::from(outcome) {
                StoredOutcome::Completed { output } => Self::Completed { output },
                StoredOutcome::Failed { error } => Self::Failed { error },
                StoredOutcome::Cancelled { reason } => Self::Cancelled { reason },
                StoredOutcome::Rejected { error } => Self::Rejected { error },
            },
        }
    }
}

impl From<StoredState<'_>> for State {
    fn from(state: StoredState<'_>) -> Self {
        let ended = |outcome: StoredOutcome<'_>| Self::Ended(Outcome::from(outcome));
        match state {
            StoredState::Submitted => Self::Submitted,
            StoredState::Working => Self::Working,
            StoredState::InputRequired { pending } => Self::InputRequired {
                pending: pending.into_owned(),
            },
            StoredState::Completed { output } => ended(StoredOutcome::Completed { output }),
            StoredState::Failed { error } => ended(StoredOutcome::Failed { error }),
            StoredState::Cancelled { reason } => ended(StoredOutcome::Cancelled { reason }),
            StoredState::Rejected { error } => ended(StoredOutcome::Rejected { error }),
        }
    }
}

/// An [`Artifact`] as folded on the task: `{"id", "name"?, "parts", "complete"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredArtifact<'a> {
    /// Its id.
    #[serde(rename = "id")]
    pub id: Cow<'a, str>,
    /// Its human-readable name.
    #[serde(rename = "name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    /// The content so far.
    #[serde(rename = "parts")]
    pub parts: Cow<'a, [Value]>,
    /// Whether the last chunk has arrived.
    #[serde(rename = "complete")]
    pub complete: bool,
}

impl<'a> From<&'a Artifact> for StoredArtifact<'a> {
    fn from(artifact: &'a Artifact) -> Self {
        Self {
            id: Cow::Borrowed(&artifact.id),
            name: artifact.name.as_deref().map(Cow::Borrowed),
            parts: Cow::Borrowed(&artifact.parts),
            complete: artifact.complete,
        }
    }
}

impl From<StoredArtifact<'_>> for Artifact {
    fn from(artifact: StoredArtifact<'_>) -> Self {
        Self {
            id: artifact.id.into_owned(),
            name: artifact.name.map(Cow::into_owned),
            parts: artifact.parts.into_owned(),
            complete: artifact.complete,
        }
    }
}

/// A [`TraceContext`]: `{"traceparent", "tracestate"?}`, checked again when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTrace<'a> {
    /// The W3C `traceparent`, in version `00` form.
    #[serde(rename = "traceparent")]
    pub traceparent: Cow<'a, str>,
    /// The W3C `tracestate`.
    #[serde(
        rename = "tracestate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tracestate: Option<Cow<'a, str>>,
}

impl<'a> From<&'a TraceContext> for StoredTrace<'a> {
    fn from(trace: &'a TraceContext) -> Self {
        Self {
            traceparent: Cow::Borrowed(trace.traceparent()),
            tracestate: trace.tracestate().map(Cow::Borrowed),
        }
    }
}

impl TryFrom<StoredTrace<'_>> for TraceContext {
    type Error = Error;

    fn try_from(trace: StoredTrace<'_>) -> Result<Self, Error> {
        Self::parse(&trace.traceparent, trace.tracestate.as_deref()).ok_or_else(|| {
            Error::Invalid(format!(
                "the stored traceparent `{}` is not a valid W3C trace context",
                trace.traceparent.chars().take(64).collect::<String>()
            ))
        })
    }
}
