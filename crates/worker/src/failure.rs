//! [`Failure`]: how a handler ends a task other than by completing it: `failed` (with a code,
//! and retry hints for the kind's retry policy) or `cancelled`.

use std::time::Duration;

use serde_json::Value;

use crate::{Error, model::Report};

/// A handler's unsuccessful outcome. Build one with [`Failure::new`] (the task fails) or
/// [`Failure::cancelled`]; every [`Error`] of the worker converts into one, so `?` works on
/// the [`Job`](crate::Job)'s methods inside a handler.
///
/// ```
/// use std::time::Duration;
/// use longrun_worker::Failure;
///
/// let failure = Failure::new("rate_limited", "the model's API said 429")
///     .details(serde_json::json!({"status": 429}))
///     .retry_after(Duration::from_secs(2));
/// assert!(failure.is_retryable());
/// assert!(!Failure::cancelled().is_retryable());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Failed {
        code: String,
        message: String,
        details: Option<Value>,
        retryable: bool,
        retry_after: Option<Duration>,
    },
    Cancelled {
        message: Option<String>,
    },
    /// The assignment is no longer this worker's: report nothing.
    Gone,
}

impl Failure {
    /// The task fails with `code` (a short machine-readable word) and `message` (for people).
    /// It is retryable by default: with a `[kinds.retry]` policy the task runs again.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Failed {
                code: code.into(),
                message: message.into(),
                details: None,
                retryable: true,
                retry_after: None,
            },
        }
    }

    /// The task ends `cancelled`: the usual answer to [`Job::cancelled`](crate::Job::cancelled).
    pub fn cancelled() -> Self {
        Self {
            outcome: Outcome::Cancelled { message: None },
        }
    }

    /// The task ends `cancelled`, with a message for people.
    pub fn cancelled_with(message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Cancelled {
                message: Some(message.into()),
            },
        }
    }

    /// Any JSON that helps whoever reads the failure (no effect on a cancellation).
    #[must_use]
    pub fn details(mut self, value: Value) -> Self {
        if let Outcome::Failed { details, .. } = &mut self.outcome {
            *details = Some(value);
        }
        self
    }

    /// Whether a retry policy may run the task again (`true` unless said otherwise).
    #[must_use]
    pub fn retryable(mut self, yes: bool) -> Self {
        if let Outcome::Failed { retryable, .. } = &mut self.outcome {
            *retryable = yes;
        }
        self
    }

    /// Run again no sooner than `delay` from now, instead of the kind's backoff.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        if let Outcome::Failed { retry_after, .. } = &mut self.outcome {
            *retry_after = Some(delay);
        }
        self
    }

    /// The failure's code; `None` for a cancellation.
    pub fn code(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Failed { code, .. } => Some(code),
            Outcome::Cancelled { .. } | Outcome::Gone => None,
        }
    }

    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.outcome, Outcome::Cancelled { .. })
    }

    /// Whether a retry policy may run the task again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Failed {
                retryable: true,
                ..
            }
        )
    }

    /// The outcome report, or `None` when nothing must be reported (the assignment is gone).
    pub(crate) fn into_report(self) -> Option<Report> {
        match self.outcome {
            Outcome::Failed {
                code,
                message,
                details,
                retryable,
                retry_after,
            } => Some(Report::Fail {
                code,
                message: Some(message),
                details,
                retryable,
                retry_after_ms: retry_after.map(millis),
            }),
            Outcome::Cancelled { message } => Some(Report::Cancelled { message }),
            Outcome::Gone => None,
        }
    }
}

impl From<Error> for Failure {
    /// A cancellation stays a cancellation, a lost assignment reports nothing, an unanswered
    /// question fails with `answer_timeout`, and the rest fail with `worker_error`.
    fn from(error: Error) -> Self {
        match error {
            Error::Cancelled => Self::cancelled(),
            Error::Gone => Self {
                outcome: Outcome::Gone,
            },
            Error::AnswerTimeout { .. } => Self::new("answer_timeout", error.to_string()),
            other => Self::new("worker_error", other.to_string()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Outcome::Failed { code, message, .. } => write!(f, "{code}: {message}"),
            Outcome::Cancelled { message: None } => f.write_str("cancelled"),
            Outcome::Cancelled {
                message: Some(message),
            } => write!(f, "cancelled: {message}"),
            Outcome::Gone => f.write_str("the assignment is gone"),
        }
    }
}

impl std::error::Error for Failure {}

/// `duration` in whole milliseconds, saturating (the wire's unit).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
