//! Events: every change to a task, numbered per task.
//!
//! A task's events have sequence numbers 1, 2, 3, … with no gaps. A subscriber that remembers
//! the last number it saw can resume from the log and get every later event exactly once.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    id::TaskId,
    state::{Action, Status},
    task::{ArtifactChunk, CancelReason, Outcome, Progress, TaskError},
    time::Timestamp,
};

/// A per-task event sequence number. The first event of every task is 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    /// Before the first event: subscribing "after `ZERO`" replays the whole log.
    pub const ZERO: Self = Self(0);
    /// The first event of every task.
    pub const FIRST: Self = Self(1);

    /// A sequence number from its integer.
    pub const fn from_u64(n: u64) -> Self {
        Self(n)
    }

    /// The integer.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The number after this one.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One change to one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The task it belongs to.
    pub task: TaskId,
    /// Its place in the task's log.
    pub seq: Seq,
    /// When it happened.
    pub at: Timestamp,
    /// The task's status once this event is applied.
    pub status: Status,
    /// What changed.
    pub change: Change,
}

impl Event {
    /// Whether this event ends the task.
    pub fn is_terminal(&self) -> bool {
        matches!(self.change, Change::Ended(_))
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// The task was created (always sequence 1).
    Submitted,
    /// The handler started (`attempt` counts runs: more than 1 after a crash re-run).
    Started {
        /// Which run this is, from 1.
        attempt: u32,
    },
    /// The handler reported progress.
    Progress(Progress),
    /// The handler emitted (part of) an artifact.
    Artifact(ArtifactChunk),
    /// The handler asked for input under `key` and waits for it.
    InputRequested {
        /// Names the question; unique within a task.
        key: String,
        /// What is asked (for MCP, an elicitation or sampling request).
        request: Value,
    },
    /// An answer arrived for `key` (possibly before the question was asked).
    InputAnswered {
        /// The question's key.
        key: String,
        /// The answer.
        value: Value,
    },
    /// Nobody answered `key` in time.
    InputTimedOut {
        /// The question's key.
        key: String,
    },
    /// The handler sent the agent a message (also placed in the session's inbox).
    AgentMessage {
        /// The message.
        message: String,
        /// Whether it should wake the agent for a new turn.
        trigger: bool,
    },
    /// The foreground caller stopped waiting; the task keeps running in the background.
    Detached,
    /// Somebody asked the task to stop; the handler has a grace period to do so.
    CancelRequested {
        /// Why.
        #[serde(flatten)]
        reason: CancelReason,
    },
    /// A durable step of the handler completed: a re-run or a retry returns `value` for `key`
    /// instead of running the step again.
    StepSaved {
        /// Names the step; unique within an attempt.
        key: String,
        /// What the step returned.
        value: Value,
    },
    /// The handler began a durable sleep under `key`: a re-run or a retry waits only until
    /// `until`, not for the whole duration again.
    TimerStarted {
        /// Names the timer; unique within an attempt.
        key: String,
        /// When the sleep ends.
        until: Timestamp,
    },
    /// An attempt failed with a retryable error; the next one starts at `at`. The task waits in
    /// `submitted` meanwhile, holding no concurrency slot.
    RetryScheduled {
        /// The attempt that failed.
        attempt: u32,
        /// Why it failed.
        error: TaskError,
        /// When the next attempt starts.
        at: Timestamp,
    },
    /// The task ended.
    Ended(Outcome),
}

impl Change {
    /// The name of this kind of change, as the state machine knows it.
    pub fn action(&self) -> Action {
        match self {
            Self::Submitted => Action::Submit,
            Self::Started { .. } => Action::Start,
            Self::Progress(_) => Action::Progress,
            Self::Artifact(_) => Action::Artifact,
            Self::InputRequested { .. } => Action::RequestInput,
            Self::InputAnswered { .. } => Action::Answer,
            Self::InputTimedOut { .. } => Action::TimeOutInput,
            Self::AgentMessage { .. } => Action::MessageAgent,
            Self::Detached => Action::Detach,
            Self::CancelRequested { .. } => Action::RequestCancel,
            Self::StepSaved { .. } => Action::SaveStep,
            Self::TimerStarted { .. } => Action::StartTimer,
            Self::RetryScheduled { .. } => Action::ScheduleRetry,
            Self::Ended(Outcome::Completed { .. }) => Action::Complete,
            Self::Ended(Outcome::Failed { .. }) => Action::Fail,
            Self::Ended(Outcome::Cancelled { .. }) => Action::Cancel,
            Self::Ended(Outcome::Rejected { .. }) => Action::Reject,
        }
    }
}
