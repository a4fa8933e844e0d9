//! Why a door refuses a request, decided once for every door: each door turns a [`Refusal`]
//! into its own protocol's error shape with one exhaustive conversion, and nothing else.
//!
//! Internal failures are redacted here, in the one place every door's errors pass: the
//! failure's own words (a store's, which may name files, hosts or queries) go to the log with a
//! correlation id, and the client gets only that id to quote to the operator.

use std::fmt;

use longrun::{TaskId, task::Status};

use crate::{AuthError, InputError};

/// The longest part of a client's text (an id, a key) quoted back in a message.
const QUOTE_CHARS: usize = 80;

/// Why a request is refused, whatever door it came through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The server is stopping and takes no new requests.
    #[error("the server is shutting down and takes no new requests")]
    ShuttingDown,
    /// A server without tokens was reached under a name that is not this machine's (DNS
    /// rebinding): `Host` or `Origin` names another host.
    #[error(
        "this server takes requests without a token, so only from this machine: the Host and \
         Origin headers must name localhost, 127.0.0.1 or [::1]"
    )]
    ForeignHost,
    /// No principal: a missing or refused credential. `challenge` is the `WWW-Authenticate`
    /// value every door answers it with.
    #[error("{error}")]
    Unauthenticated {
        /// Why.
        error: AuthError,
        /// The `WWW-Authenticate` value.
        challenge: String,
    },
    /// The credentials could not be checked now (the OAuth issuer cannot be reached): try again.
    #[error("the credentials cannot be checked right now; try again shortly")]
    AuthUnavailable,
    /// No such task, it expired, it is not a task id at all, or another principal owns it:
    /// never told apart, so that nobody learns which ids exist. Holds the id as the client
    /// wrote it, cut to a quotable length.
    #[error("task `{0}` is unknown or has expired")]
    NotFound(String),
    /// The task has already ended; nothing was changed.
    #[error("task {id} has already ended ({status}); nothing was changed")]
    Ended {
        /// The task.
        id: TaskId,
        /// How it ended.
        status: Status,
    },
    /// The question was already answered; the first answer stands.
    #[error("question `{key}` of task {id} was already answered; the first answer stands")]
    AlreadyAnswered {
        /// The task.
        id: TaskId,
        /// The question.
        key: String,
    },
    /// The question timed out before the answer came.
    #[error("question `{key}` of task {id} timed out before this answer arrived")]
    QuestionClosed {
        /// The task.
        id: TaskId,
        /// The question.
        key: String,
    },
    /// The task is stored but not running on this server yet (it is taken up after a
    /// restart): try again shortly.
    #[error("task {0} is not running on this server yet; try again shortly")]
    NotRunning(TaskId),
    /// The task's state does not allow the change.
    #[error("{0}")]
    Conflict(String),
    /// No kind of this name.
    #[error("unknown kind `{0}`")]
    UnknownKind(String),
    /// The input does not match the kind's input type.
    #[error("{0}")]
    InvalidInput(String),
    /// The input breaks the kind's JSON schema; `violations` says where and how (the first
    /// few).
    #[error("the input does not match the input schema of kind `{kind}`: {}", violations.join("; "))]
    SchemaViolation {
        /// The kind whose schema was broken.
        kind: String,
        /// One line per violation: where in the input (a JSON pointer) and what is wrong.
        violations: Vec<String>,
    },
    /// The idempotency key already started a task of another kind or with another input.
    #[error("{0}")]
    KeyReused(String),
    /// A body, an input, an answer or another payload is above a size bound.
    #[error("{0}")]
    TooLarge(String),
    /// The principal holds as many open streams as it may.
    #[error("too many open streams: at most {limit} per principal; close one and try again")]
    TooManyStreams {
        /// The bound.
        limit: usize,
    },
    /// The server failed. The failure's own words are in the server's log under
    /// `correlation`; the client gets only the id.
    #[error(
        "the server failed to handle the request; quote `{correlation}` to its operator (the \
         server log says why)"
    )]
    Internal {
        /// The id the log line carries.
        correlation: Correlation,
    },
}

/// The id of one internal failure, shared by the log line and the client's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation(String);

impl Correlation {
    fn new() -> Self {
        Self(format!(
            "err_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ))
    }

    /// The id, as the log and the client see it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Correlation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Refusal {
    /// An internal failure: `detail` goes to the log with a new correlation id, and only the
    /// id to the client.
    pub fn internal(detail: &dyn fmt::Display) -> Self {
        let correlation = Correlation::new();
        tracing::error!(%correlation, error = %detail, "a request failed on the server's side");
        Self::Internal { correlation }
    }

    /// A task that is unknown to this caller, quoting what the client wrote.
    pub fn not_found(id: &str) -> Self {
        Self::NotFound(quote(id))
    }
}

/// At most [`QUOTE_CHARS`] characters of a client's text, with `…` when cut.
pub fn quote(text: &str) -> String {
    let mut quoted: String = text.chars().take(QUOTE_CHARS).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    quoted
}

impl From<longrun::Error> for Refusal {
    fn from(error: longrun::Error) -> Self {
        use longrun::Error as E;
        match error {
            E::UnknownKind(kind) => Self::UnknownKind(kind),
            E::InvalidInput { .. } => Self::InvalidInput(error.to_string()),
            E::TooLarge { .. } => Self::TooLarge(error.to_string()),
            E::Unknown(id) => Self::NotFound(id.to_string()),
            E::Ended { id, status } => Self::Ended { id, status },
            E::NotRunning(id) => Self::NotRunning(id),
            E::AlreadyAnswered { id, key } => Self::AlreadyAnswered { id, key },
            E::QuestionClosed { id, key } => Self::QuestionClosed { id, key },
            E::Refused(refusal) => Self::Conflict(refusal.to_string()),
            E::KeyReused { .. } => Self::KeyReused(error.to_string()),
            E::Store(error) => Self::from(error),
            E::ShuttingDown => Self::ShuttingDown,
            // Neither comes from a call a door makes (registration, a handler's progress); if
            // one ever does, it is the server's fault, not the caller's.
            E::DuplicateKind(_) | E::InvalidProgress(_) => Self::internal(&error),
        }
    }
}

impl From<longrun::store::Error> for Refusal {
    fn from(error: longrun::store::Error) -> Self {
        use longrun::store::Error as E;
        match error {
            E::NotFound(id) => Self::NotFound(id.to_string()),
            E::Refused { refusal, .. } => Self::Conflict(refusal.to_string()),
            // The store's own words stay in the log: they may name files, hosts or queries.
            // A key taken is settled by the runtime (it answers with the first task); one that
            // reaches a door is the server's failure.
            E::Duplicate(_) | E::KeyTaken { .. } | E::Fenced(_) | E::Backend(_) => {
                Self::internal(&error)
            }
        }
    }
}

impl From<InputError> for Refusal {
    fn from(error: InputError) -> Self {
        match error {
            InputError::UnknownKind(kind) => Self::UnknownKind(kind),
            InputError::Invalid { kind, violations } => Self::SchemaViolation { kind, violations },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_redacted() {
        let secret = "could not connect to db.internal:5432 as admin";
        let error = longrun::store::Error::Backend(secret.into());
        let refusal = Refusal::from(longrun::Error::Store(error));
        let Refusal::Internal { correlation } = &refusal else {
            panic!("{refusal:?}");
        };
        let message = refusal.to_string();
        assert!(!message.contains("db.internal"), "{message}");
        assert!(message.contains(correlation.as_str()), "{message}");
        assert!(correlation.as_str().starts_with("err_"));
        // Each failure has its own id.
        let again = Refusal::internal(&"x");
        assert_ne!(again, refusal);
    }

    #[test]
    fn quotes_are_cut() {
        assert_eq!(quote("task_1"), "task_1");
        let long = "x".repeat(200);
        assert_eq!(quote(&long).chars().count(), QUOTE_CHARS + 1);
        assert_eq!(Refusal::not_found(&long), Refusal::NotFound(quote(&long)));
    }
}
