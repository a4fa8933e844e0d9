//! `worker::Error`: what can go wrong between a worker and its server, as a handler or the
//! caller of [`Worker::run`](crate::Worker::run) sees it.

/// An error of the worker protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The assignment is not this worker's any more: the task ended (its cancel grace or
    /// deadline ran out), or the server gave up on this worker and gave the task to another.
    /// The handler should stop; nothing it reports is recorded.
    #[error("the assignment is gone: the task is no longer this worker's")]
    Gone,
    /// The task is being cancelled; a wait (`ask`, `sleep`) was cut short by it. Returning this
    /// error from a handler (it converts into [`Failure`](crate::Failure)) reports `cancelled`.
    #[error("the task is being cancelled")]
    Cancelled,
    /// Nobody answered the question `key` within its timeout.
    #[error("nobody answered the question {key:?} in time")]
    AnswerTimeout {
        /// The question's key.
        key: String,
    },
    /// The server refused a request with one of `/v1`'s error codes (`forbidden`,
    /// `unknown_kind`, `schema_mismatch`, `protocol_error`, …).
    #[error("the server refused {what} ({status} {code}): {message}")]
    Refused {
        /// What was asked, e.g. `register` or `report step`.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The error's `code`.
        code: String,
        /// The error's `message`.
        message: String,
    },
    /// The server could not be reached, or answered something that is not the protocol.
    #[error("{what}: {source}")]
    Transport {
        /// What was asked.
        what: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A saved step's value does not have the type the handler asks for, or a value could not
    /// be turned into JSON.
    #[error("step {key:?}: {source}")]
    StepValue {
        /// The step's key.
        key: String,
        /// Why the value did not fit.
        #[source]
        source: serde_json::Error,
    },
    /// The worker was built wrongly (no kind, capacity 0, a URL that is not `http://…`).
    #[error("invalid worker configuration: {0}")]
    Config(String),
}
