//! How an inbox entry is stored: `{"type": "message", "v", "message", "trigger"}` or
//! `{"type": "outcome", "v", "kind", "outcome"}`. The session, position, task and time of the
//! item are the store's columns.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Error, V1, outcome::StoredOutcome};
use crate::inbox::InboxEntry;

/// An [`InboxEntry`] as stored, tagged by `type`; each variant carries the format's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StoredInboxEntry<'a> {
    /// A message from a running task.
    #[serde(rename = "message")]
    Message {
        /// The format's version.
        #[serde(rename = "v", default)]
        v: V1,
        /// The message.
        #[serde(rename = "message")]
        message: Cow<'a, str>,
        /// Whether it asks for a new agent turn.
        #[serde(rename = "trigger")]
        trigger: bool,
    },
    /// A task's end.
    #[serde(rename = "outcome")]
    Outcome {
        /// The format's version.
        #[serde(rename = "v", default)]
        v: V1,
        /// The task's kind.
        #[serde(rename = "kind")]
        kind: Cow<'a, str>,
        /// How it ended.
        #[serde(rename = "outcome")]
        outcome: StoredOutcome<'a>,
    },
}

impl<'a> From<&'a InboxEntry> for StoredInboxEntry<'a> {
    fn from(entry: &'a InboxEntry) -> Self {
        match entry {
            InboxEntry::Message { message, trigger } => Self::Message {
                v: V1,
                message: Cow::Borrowed(message),
                trigger: *trigger,
            },
            InboxEntry::Outcome { kind, outcome } => Self::Outcome {
                v: V1,
                kind: Cow::Borrowed(kind),
                outcome: outcome.into(),
            },
        }
    }
}

impl TryFrom<StoredInboxEntry<'_>> for InboxEntry {
    type Error = Error;

    /// Infallible in version 1; a `TryFrom` so that a later version's checks need no new
    /// signature.
    fn try_from(entry: StoredInboxEntry<'_>) -> Result<Self, Error> {
        Ok(match entry {
            StoredInboxEntry::Message {
                v: V1,
                message,
                trigger,
            } => Self::Message {
                message: message.into_owned(),
                trigger,
            },
            StoredInboxEntry::Outcome {
                v: V1,
                kind,
                outcome,
            } => Self::Outcome {
                kind: kind.into_owned(),
                outcome: outcome.into(),
            },
        })
    }
}
