//! How a status, an error, a cancel reason and an outcome are stored (inside a task, an event,
//! an inbox entry or a signal).

use std::{borrow::Cow, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    state::Status,
    task::{CancelReason, Outcome, TaskError},
};

/// A status, as an event stores it beside its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredStatus {
    /// `submitted`
    #[serde(rename = "submitted")]
    Submitted,
    /// `working`
    #[serde(rename = "working")]
    Working,
    /// `input_required`
    #[serde(rename = "input_required")]
    InputRequired,
    /// `completed`
    #[serde(rename = "completed")]
    Completed,
    /// `failed`
    #[serde(rename = "failed")]
    Failed,
    /// `cancelled`
    #[serde(rename = "cancelled")]
    Cancelled,
    /// `rejected`
    #[serde(rename = "rejected")]
    Rejected,
}

impl From<Status> for StoredStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Submitted => Self::Submitted,
            Status::Working => Self::Working,
            Status::InputRequired => Self::InputRequired,
            Status::Completed => Self::Completed,
            Status::Failed => Self::Failed,
            Status::Cancelled => Self::Cancelled,
            Status::Rejected => Self::Rejected,
        }
    }
}

impl From<StoredStatus> for Status {
    fn from(status: StoredStatus) -> Self {
        match status {
            StoredStatus::Submitted => Self::Submitted,
            StoredStatus::Working => Self::Working,
            StoredStatus::InputRequired => Self::InputRequired,
            StoredStatus::Completed => Self::Completed,
            StoredStatus::Failed => Self::Failed,
            StoredStatus::Cancelled => Self::Cancelled,
            StoredStatus::Rejected => Self::Rejected,
        }
    }
}

/// A [`TaskError`]: `{"code", "message", "details"?, "fatal"?, "retry_after_ms"?}`; `fatal` is
/// written only when true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTaskError<'a> {
    /// The machine-readable code.
    #[serde(rename = "code")]
    pub code: Cow<'a, str>,
    /// The sentence for people.
    #[serde(rename = "message")]
    pub message: Cow<'a, str>,
    /// What the handler attached.
    #[serde(rename = "details", default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Cow<'a, Value>>,
    /// Whether no further attempt can help.
    #[serde(rename = "fatal", default, skip_serializing_if = "is_false")]
    pub fatal: bool,
    /// The delay before the next attempt, in milliseconds.
    #[serde(
        rename = "retry_after_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after_ms: Option<u64>,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

/// A duration as stored milliseconds; the far future saturates.
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl<'a> From<&'a TaskError> for StoredTaskError<'a> {
    fn from(error: &'a TaskError) -> Self {
        Self {
            code: Cow::Borrowed(&error.code),
            message: Cow::Borrowed(&error.message),
            details: error.details.as_ref().map(Cow::Borrowed),
            fatal: error.fatal,
            retry_after_ms: error.retry_after.map(millis),
        }
    }
}

impl From<StoredTaskError<'_>> for TaskError {
    fn from(error: StoredTaskError<'_>) -> Self {
        Self {
            code: error.code.into_owned(),
            message: error.message.into_owned(),
            details: error.details.map(Cow::into_owned),
            fatal: error.fatal,
            retry_after: error.retry_after_ms.map(Duration::from_millis),
        }
    }
}

/// A [`CancelReason`], tagged by `reason`. It is flattened into the object around it (an
/// outcome, a cancel request), except in a signal, where it is the value of `reason`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason")]
pub enum StoredCancelReason<'a> {
    /// `{"reason": "requested", "by"?}`
    #[serde(rename = "requested")]
    Requested {
        /// Who asked, when known.
        #[serde(rename = "by", default, skip_serializing_if = "Option::is_none")]
        by: Option<Cow<'a, str>>,
    },
    /// `{"reason": "deadline_exceeded"}`
    #[serde(rename = "deadline_exceeded")]
    DeadlineExceeded,
    /// `{"reason": "stopped"}`
    #[serde(rename = "stopped")]
    Stopped,
    /// `{"reason": "handler", "message"}`
    #[serde(rename = "handler")]
    Handler {
        /// The handler's words.
        #[serde(rename = "message")]
        message: Cow<'a, str>,
    },
}

impl<'a> From<&'a CancelReason> for StoredCancelReason<'a> {
    fn from(reason: &'a CancelReason) -> Self {
        match reason {
            CancelReason::Requested { by } => Self::Requested {
                by: by.as_deref().map(Cow::Borrowed),
            },
            CancelReason::DeadlineExceeded => Self::DeadlineExceeded,
            CancelReason::Stopped => Self::Stopped,
            CancelReason::Handler { message } => Self::Handler {
                message: Cow::Borrowed(message),
            },
        }
    }
}

impl From<StoredCancelReason<'_>> for CancelReason {
    fn from(reason: StoredCancelReason<'_>) -> Self {
        match reason {
            StoredCancelReason::Requested { by } => Self::Requested {
                by: by.map(Cow::into_owned),
            },
            StoredCancelReason::DeadlineExceeded => Self::DeadlineExceeded,
            StoredCancelReason::Stopped => Self::Stopped,
            StoredCancelReason::Handler { message } => Self::Handler {
                message: message.into_owned(),
            },
        }
    }
}

/// An [`Outcome`], tagged by `status`: `{"status": "completed", "output"}`,
/// `{"status": "failed" | "rejected", "error"}`, `{"status": "cancelled", "reason", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum StoredOutcome<'a> {
    /// The handler's result.
    #[serde(rename = "completed")]
    Completed {
        /// The handler's output.
        #[serde(rename = "output")]
        output: Cow<'a, Value>,
    },
    /// The handler's error.
    #[serde(rename = "failed")]
    Failed {
        /// Why.
        #[serde(rename = "error")]
        error: StoredTaskError<'a>,
    },
    /// Cancelled before it finished.
    #[serde(rename = "cancelled")]
    Cancelled {
        /// Why, flattened beside `status`.
        #[serde(flatten)]
        reason: StoredCancelReason<'a>,
    },
    /// Refused before it started.
    #[serde(rename = "rejected")]
    Rejected {
        /// Why.
        #[serde(rename = "error")]
        error: StoredTaskError<'a>,
    },
}

impl<'a> From<&'a Outcome> for StoredOutcome<'a> {
    fn from(outcome: &'a Outcome) -> Self {
        match outcome {
            Outcome::Completed { output } => Self::Completed {
                output: Cow::Borrowed(output),
            },
            Outcome::Failed { error } => Self::Failed {
                error: error.into(),
            },
            Outcome::Cancelled { reason } => Self::Cancelled {
                reason: reason.into(),
            },
            Outcome::Rejected { error } => Self::Rejected {
                error: error.into(),
            },
        }
    }
}

impl From<StoredOutcome<'_>> for Outcome {
    fn from(outcome: StoredOutcome<'_>) -> Self {
        match outcome {
            StoredOutcome::Completed { output } => Self::Completed {
                output: output.into_owned(),
            },
            StoredOutcome::Failed { error } => Self::Failed {
                error: error.into(),
            },
            StoredOutcome::Cancelled { reason } => Self::Cancelled {
                reason: reason.into(),
            },
            StoredOutcome::Rejected { error } => Self::Rejected {
                error: error.into(),
            },
        }
    }
}
