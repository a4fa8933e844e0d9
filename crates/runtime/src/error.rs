//! The runtime's errors: one enum for everything a caller of [`crate::Runtime`] can be told.

use longrun_core::{Refusal, Status, TaskId, store};

/// What went wrong, in words that say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No kind is registered under this name.
    #[error("unknown kind `{0}`: register it with Runtime::register before starting tasks of it")]
    UnknownKind(String),
    /// A kind with this name is already registered.
    #[error("kind `{0}` is already registered; kind names must be unique")]
    DuplicateKind(String),
    /// The input does not match the kind's input type.
    #[error("invalid input for kind `{kind}`: {message}")]
    InvalidInput {
        /// The kind.
        kind: String,
        /// What the input deserializer said.
        message: String,
    },
    /// Something is larger than the runtime's bounds allow.
    #[error("{what} is {size} bytes, above the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// A progress percentage outside 0–100.
    #[error("progress percent must be a number from 0 to 100, got {0}")]
    InvalidProgress(f64),
    /// No such task, or it expired.
    #[error("task {0} is unknown or has expired")]
    Unknown(TaskId),
    /// The task has already ended; nothing was changed.
    #[error("task {id} has already ended ({status}); nothing was changed")]
    Ended {
        /// The task.
        id: TaskId,
        /// How it ended.
        status: Status,
    },
    /// The task is not running on this runtime (for example, not yet resumed after a restart).
    #[error("task {0} is not running on this runtime")]
    NotRunning(TaskId),
    /// The question was already answered; the first answer stands.
    #[error("question `{key}` of task {id} was already answered; the first answer stands")]
    AlreadyAnswered {
        /// The task.
        id: TaskId,
        /// The question's key.
        key: String,
    },
    /// The question timed out before the answer arrived.
    #[error("question `{key}` of task {id} timed out before this answer arrived")]
    QuestionClosed {
        /// The task.
        id: TaskId,
        /// The question's key.
        key: String,
    },
    /// The idempotency key already started a task of another kind or with another input.
    #[error(
        "idempotency key `{key}` already started task {existing} with another kind or input; \
         use a new key for a different start"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// The task it started.
        existing: TaskId,
    },
    /// The state machine refused the change.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The runtime is shutting down and takes no new work.
    #[error("the runtime is shutting down and accepts no new tasks")]
    ShuttingDown,
}

/// Why [`crate::Context::ask`] returned without an answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// This task already asked a question under this key; keys name one question each.
    #[error("this task already asked a question under key `{0}`; use a new key per question")]
    KeyReused(String),
    /// Nobody answered in time.
    #[error("nobody answered question `{0}` in time")]
    TimedOut(String),
    /// The task is being cancelled.
    #[error("the task is being cancelled")]
    Cancelled,
    /// The question could not be recorded.
    #[error(transparent)]
    Runtime(#[from] Error),
}

impl From<Error> for longrun_core::TaskError {
    fn from(error: Error) -> Self {
        Self::new("runtime_error", error.to_string())
    }
}

impl From<AskError> for longrun_core::TaskError {
    fn from(error: AskError) -> Self {
        let code = match &error {
            AskError::TimedOut(_) => "input_timed_out",
            AskError::Cancelled => "cancelled",
            AskError::KeyReused(_) | AskError::Runtime(_) => "runtime_error",
        };
        Self::new(code, error.to_string())
    }
}
