//! Backend failures: what the store was doing when SQLite (or a stored row) let it down.
//!
//! Every failure reaches callers as [`store::Error::Backend`]; the one type here only adds the
//! context (which file, which task, which step) that a bare SQLite message lacks.

use std::{error::Error as StdError, fmt};

use longrun_core::store;

/// A backend failure with what the store was doing when it happened.
#[derive(Debug)]
pub(crate) struct Failure {
    doing: String,
    cause: Option<Box<dyn StdError + Send + Sync>>,
}

impl Failure {
    /// A failure while `doing`, caused by `cause`.
    pub(crate) fn new(
        doing: impl Into<String>,
        cause: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            doing: doing.into(),
            cause: Some(cause.into()),
        }
    }

    /// A failure with no underlying error to point at.
    pub(crate) fn plain(what: impl Into<String>) -> Self {
        Self {
            doing: what.into(),
            cause: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause is part of the sentence because most callers print only the top error.
        match &self.cause {
            Some(cause) => write!(f, "{}: {cause}", self.doing),
            None => f.write_str(&self.doing),
        }
    }
}

impl StdError for Failure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn StdError + 'static))
    }
}

impl From<Failure> for store::Error {
    fn from(failure: Failure) -> Self {
        store::Error::Backend(Box::new(failure))
    }
}

/// A [`store::Error::Backend`] for a failure while `doing`.
pub(crate) fn backend(
    doing: impl Into<String>,
    cause: impl Into<Box<dyn StdError + Send + Sync>>,
) -> store::Error {
    Failure::new(doing, cause).into()
}
