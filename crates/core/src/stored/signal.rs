//! How a signal for a task's holder is stored: `{"signal": "cancel", "v", "reason": {…}}` or
//! `{"signal": "answer", "v", "key", "value"}`. The task is the store's column.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Error, V1, outcome::StoredCancelReason};
use crate::cluster::Signal;

/// A [`Signal`] as stored, tagged by `signal`; each variant carries the format's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal")]
pub enum StoredSignal<'a> {
    /// Cancel the task.
    #[serde(rename = "cancel")]
    Cancel {
        /// The format's version.
        #[serde(rename = "v", default)]
        v: V1,
        /// Why, as an object of its own (not flattened).
        #[serde(rename = "reason")]
        reason: StoredCancelReason<'a>,
    },
    /// Answer a question of the handler.
    #[serde(rename = "answer")]
    Answer {
        /// The format's version.
        #[serde(rename = "v", default)]
        v: V1,
        /// The question's key.
        #[serde(rename = "key")]
        key: Cow<'a, str>,
        /// The answer.
        #[serde(rename = "value")]
        value: Cow<'a, Value>,
    },
}

impl<'a> From<&'a Signal> for StoredSignal<'a> {
    fn from(signal: &'a Signal) -> Self {
        match signal {
            Signal::Cancel { reason } => Self::Cancel {
                v: V1,
                reason: reason.into(),
            },
            Signal::Answer { key, value } => Self::Answer {
                v: V1,
                key: Cow::Borrowed(key),
                value: Cow::Borrowed(value),
            },
        }
    }
}

impl TryFrom<StoredSignal<'_>> for Signal {
    type Error = Error;

    /// Infallible in version 1; a `TryFrom` so that a later version's checks need no new
    /// signature.
    fn try_from(signal: StoredSignal<'_>) -> Result<Self, Error> {
        Ok(match signal {
            StoredSignal::Cancel { v: V1, reason } => Self::Cancel {
                reason: reason.into(),
            },
            StoredSignal::Answer { v: V1, key, value } => Self::Answer {
                key: key.into_owned(),
                value: value.into_owned(),
            },
        })
    }
}
