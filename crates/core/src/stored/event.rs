//! How an event is stored: `{"v", "task"?, "seq"?, "at", "status", "change"}`.
//!
//! A store whose key columns hold the task and the sequence number leaves them out of the
//! document (SQLite: the log is its largest table); one that keeps the whole event in its
//! document (PostgreSQL) writes them.

use serde::{Deserialize, Serialize};

use super::{Error, V1, change::StoredChange, outcome::StoredStatus};
use crate::{
    event::{Event, Seq},
    id::TaskId,
    time::Timestamp,
};

/// An [`Event`] as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent<'a> {
    /// The format's version.
    #[serde(rename = "v", default)]
    pub v: V1,
    /// The task, unless a key column holds it.
    #[serde(rename = "task", default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
    /// The sequence number, unless a key column holds it.
    #[serde(rename = "seq", default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When it happened, in milliseconds since the epoch.
    #[serde(rename = "at")]
    pub at: u64,
    /// The task's status once it is applied.
    #[serde(rename = "status")]
    pub status: StoredStatus,
    /// What changed.
    #[serde(rename = "change")]
    pub change: StoredChange<'a>,
}

impl<'a> From<&'a Event> for StoredEvent<'a> {
    /// The whole event, its task and sequence number included.
    fn from(event: &'a Event) -> Self {
        Self {
            task: Some(event.task),
            seq: Some(event.seq.as_u64()),
            ..Self::body_of(event)
        }
    }
}

impl<'a> StoredEvent<'a> {
    /// The event without its task and sequence number, for a store whose key columns hold them.
    pub fn body_of(event: &'a Event) -> Self {
        Self {
            v: V1,
            task: None,
            seq: None,
            at: event.at.as_millis(),
            status: event.status.into(),
            change: (&event.change).into(),
        }
    }

    /// The event, with its task and sequence number from `key` (the store's key columns) or
    /// else from the document. Either must say them; when both do, they must agree.
    pub fn into_event(self, key: Option<(TaskId, Seq)>) -> Result<Event, Error> {
        let stored = self.task.zip(self.seq.map(Seq::from_u64));
        let (task, seq) = match (key, stored) {
            (Some(key), Some(stored)) if key != stored => {
                return Err(Error::Invalid(format!(
                    "the event stored as {} #{} names {} #{}",
                    key.0, key.1, stored.0, stored.1
                )));
            }
            (Some(key), _) | (None, Some(key)) => key,
            (None, None) => {
                return Err(Error::Invalid(
                    "an event stored without its task and sequence number".to_owned(),
                ));
            }
        };
        Ok(Event {
            task,
            seq,
            at: Timestamp::from_millis(self.at),
            status: self.status.into(),
            change: self.change.into(),
        })
    }
}
