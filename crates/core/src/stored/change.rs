//! How a change is stored inside its event, with the progress reports and artifact chunks some
//! changes carry.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::outcome::{StoredCancelReason, StoredOutcome, StoredTaskError};
use crate::{
    event::Change,
    task::{ArtifactChunk, Progress},
    time::Timestamp,
};

/// A [`Progress`] report: `{"percent"?, "message"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredProgress<'a> {
    /// 0 to 100.
    #[serde(rename = "percent", default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// What the handler is doing.
    #[serde(rename = "message", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Cow<'a, str>>,
}

impl<'a> From<&'a Progress> for StoredProgress<'a> {
    fn from(progress: &'a Progress) -> Self {
        Self {
            percent: progress.percent,
            message: progress.message.as_deref().map(Cow::Borrowed),
        }
    }
}

impl From<StoredProgress<'_>> for Progress {
    fn from(progress: StoredProgress<'_>) -> Self {
        Self {
            percent: progress.percent,
            message: progress.message.map(Cow::into_owned),
        }
    }
}

/// An [`ArtifactChunk`]: `{"id", "name"?, "parts", "append", "last_chunk"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredArtifactChunk<'a> {
    /// The artifact's id.
    #[serde(rename = "id")]
    pub id: Cow<'a, str>,
    /// Its human-readable name.
    #[serde(rename = "name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    /// The content of this chunk.
    #[serde(rename = "parts")]
    pub parts: Cow<'a, [Value]>,
    /// Whether it extends the artifact.
    #[serde(rename = "append", default)]
    pub append: bool,
    /// Whether it is the artifact's last.
    #[serde(rename = "last_chunk", default)]
    pub last_chunk: bool,
}

impl<'a> From<&'a ArtifactChunk> for StoredArtifactChunk<'a> {
    fn from(chunk: &'a ArtifactChunk) -> Self {
        Self {
            id: Cow::Borrowed(&chunk.id),
            name: chunk.name.as_deref().map(Cow::Borrowed),
            parts: Cow::Borrowed(&chunk.parts),
            append: chunk.append,
            last_chunk: chunk.last_chunk,
        }
    }
}

impl From<StoredArtifactChunk<'_>> for ArtifactChunk {
    fn from(chunk: StoredArtifactChunk<'_>) -> Self {
        Self {
            id: chunk.id.into_owned(),
            name: chunk.name.map(Cow::into_owned),
            parts: chunk.parts.into_owned(),
            append: chunk.append,
            last_chunk: chunk.last_chunk,
        }
    }
}

/// A [`Change`], tagged by `type`. The journal entries (`step_saved`, `timer_started`,
/// `retry_scheduled`) are changes like the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StoredChange<'a> {
    /// `{"type": "submitted"}`
    #[serde(rename = "submitted")]
    Submitted,
    /// `{"type": "started", "attempt"}`
    #[serde(rename = "started")]
    Started {
        /// Which run, from 1.
        #[serde(rename = "attempt")]
        attempt: u32,
    },
    /// `{"type": "progress", "percent"?, "message"?}`
    #[serde(rename = "progress")]
    Progress(StoredProgress<'a>),
    /// `{"type": "artifact", "id", …}`
    #[serde(rename = "artifact")]
    Artifact(StoredArtifactChunk<'a>),
    /// `{"type": "input_requested", "key", "request"}`
    #[serde(rename = "input_requested")]
    InputRequested {
        /// The question's key.
        #[serde(rename = "key")]
        key: Cow<'a, str>,
        /// What is asked.
        #[serde(rename = "request")]
        request: Cow<'a, Value>,
    },
    /// `{"type": "input_answered", "key", "value"}`
    #[serde(rename = "input_answered")]
    InputAnswered {
        /// The question's key.
        #[serde(rename = "key")]
        key: Cow<'a, str>,
        /// The answer.
        #[serde(rename = "value")]
        value: Cow<'a, Value>,
    },
    /// `{"type": "input_timed_out", "key"}`
    #[serde(rename = "input_timed_out")]
    InputTimedOut {
        /// The question's key.
        #[serde(rename = "key")]
        key: Cow<'a, str>,
    },
    /// `{"type": "agent_message", "message", "trigger"}`
    #[serde(rename = "agent_message")]
    AgentMessage {
        /// The message.
        #[serde(rename = "message")]
        message: Cow<'a, str>,
        /// Whether it wakes the agent.
        #[serde(rename = "trigger")]
        trigger: bool,
    },
    /// `{"type": "detached"}`
    #[serde(rename = "detached")]
    Detached,
    /// `{"type": "cancel_requested", "reason", …}`
    #[serde(rename = "cancel_requested")]
    CancelRequested {
        /// Why, flattened beside `type`.
        #[serde(flatten)]
        reason: StoredCancelReason<'a>,
    },
    /// `{"type": "step_saved", "key", "value"}`
    #[serde(rename = "step_saved")]
    StepSaved {
        /// The step's key.
        #[serde(rename = "key")]
        key: Cow<'a, str>,
        /// What it returned.
        #[serde(rename = "value")]
        value: Cow<'a, Value>,
    },
    /// `{"type": "timer_started", "key", "until"}`
    #[serde(rename = "timer_started")]
    TimerStarted {
        /// The timer's key.
        #[serde(rename = "key")]
        key: Cow<'a, str>,
        /// When the sleep ends, in milliseconds since the epoch.
        #[serde(rename = "until")]
        until: u64,
    },
    /// `{"type": "retry_scheduled", "attempt", "error", "at"}`
    #[serde(rename = "retry_scheduled")]
    RetryScheduled {
        /// The attempt that failed.
        #[serde(rename = "attempt")]
        attempt: u32,
        /// Why.
        #[serde(rename = "error")]
        error: StoredTaskError<'a>,
        /// When the next attempt starts, in milliseconds since the epoch.
        #[serde(rename = "at")]
        at: u64,
    },
    /// `{"type": "ended", "status", …}`: the outcome, flattened beside `type`.
    #[serde(rename = "ended")]
    Ended(StoredOutcome<'a>),
}

impl<'a> From<&'a Change> for StoredChange<'a> {
    fn from(change: &'a Change) -> Self {
        match change {
            Change::Submitted => Self::Submitted,
            Change::Started { attempt } => Self::Started { attempt: *attempt },
            Change::Progress(progress) => Self::Progress(progress.into()),
            Change::Artifact(chunk) => Self::Artifact(chunk.into()),
            Change::InputRequested { key, request } => Self::InputRequested {
                key: Cow::Borrowed(key),
                request: Cow::Borrowed(request),
            },
            Change::InputAnswered { key, value } => Self::InputAnswered {
                key: Cow::Borrowed(key),
                value: Cow::Borrowed(value),
            },
            Change::InputTimedOut { key } => Self::InputTimedOut {
                key: Cow::Borrowed(key),
            },
            Change::AgentMessage { message, trigger } => Self::AgentMessage {
                message: Cow::Borrowed(message),
                trigger: *trigger,
            },
            Change::Detached => Self::Detached,
            Change::CancelRequested { reason } => Self::CancelRequested {
                reason: reason.into(),
            },
            Change::StepSaved { key, value } => Self::StepSaved {
                key: Cow::Borrowed(key),
                value: Cow::Borrowed(value),
            },
            Change::TimerStarted { key, until } => Self::TimerStarted {
                key: Cow::Borrowed(key),
                until: until.as_millis(),
            },
            Change::RetryScheduled { attempt, error, at } => Self::RetryScheduled {
                attempt: *attempt,
                error: error.into(),
                at: at.as_millis(),
            },
            Change::Ended(outcome) => Self::Ended(outcome.into()),
        }
    }
}

impl From<StoredChange<'_>> for Change {
    fn from(change: StoredChange<'_>) -> Self {
        match change {
            StoredChange::Submitted => Self::Submitted,
            StoredChange::Started { attempt } => Self::Started { attempt },
            StoredChange::Progress(progress) => Self::Progress(progress.into()),
            StoredChange::Artifact(chunk) => Self::Artifact(chunk.into()),
            StoredChange::InputRequested { key, request } => Self::InputRequested {
                key: key.into_owned(),
                request: request.into_owned(),
            },
            StoredChange::InputAnswered { key, value } => Self::InputAnswered {
                key: key.into_owned(),
                value: value.into_owned(),
            },
            StoredChange::InputTimedOut { key } => Self::InputTimedOut {
                key: key.into_owned(),
            },
            StoredChange::AgentMessage { message, trigger } => Self::AgentMessage {
                message: message.into_owned(),
                trigger,
            },
            StoredChange::Detached => Self::Detached,
            StoredChange::CancelRequested { reason } => Self::CancelRequested {
                reason: reason.into(),
            },
            StoredChange::StepSaved { key, value } => Self::StepSaved {
                key: key.into_owned(),
                value: value.into_owned(),
            },
            StoredChange::TimerStarted { key, until } => Self::TimerStarted {
                key: key.into_owned(),
                until: Timestamp::from_millis(until),
            },
            StoredChange::RetryScheduled { attempt, error, at } => Self::RetryScheduled {
                attempt,
                error: error.into(),
                at: Timestamp::from_millis(at),
            },
            StoredChange::Ended(outcome) => Self::Ended(outcome.into()),
        }
    }
}
