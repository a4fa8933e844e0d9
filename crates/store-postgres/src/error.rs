//! How database failures become [`store::Error`](longrun_core::store::Error)s.
//!
//! The domain errors (`Duplicate`, `NotFound`, `Refused`, `Fenced`) are decided by the writer in
//! memory, against rows it has locked, before anything is written; what reaches this module is
//! the database failing, which is `Backend`.

use longrun_core::store::Error;
use tokio_postgres::error::SqlState;

/// A backend error from anything that can be boxed (a driver error, a message).
pub(crate) fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Backend(error.into())
}

/// What a driver error says, with the server's detail when there is one: errors cannot be
/// cloned, so one failure shared by a whole batch reaches each caller as this text.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// Whether running the same transaction again may succeed: another transaction won a race (a
/// deadlock, a serialization failure, or a row with the same key inserted since this one looked).
pub(crate) fn is_transient(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::UNIQUE_VIOLATION
    )
}
