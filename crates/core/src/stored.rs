//! The stored format: the JSON documents a store keeps, defined here once, apart from the
//! domain types, so that a rename in [`Task`] or [`Change`](crate::Change) cannot change what is on disk.
//!
//! Every store that writes JSON (SQLite's `body` columns, PostgreSQL's `doc`, `entry` and
//! `signal` columns) encodes and decodes through this module and nothing else: the domain
//! types' own serde derives serve the doors and tests, never a store. Each stored type names
//! every field and variant with an explicit `#[serde(rename = "…")]`, equal to what version 1
//! wrote, and converts to and from its domain type by hand; the tests in `stored/tests.rs`
//! compare encodings with JSON literals, so changing a name here fails a test as well as the
//! golden fixtures (`crates/store-tests/fixtures/`).
//!
//! # Versions
//!
//! Each top-level document (a task, an event, an inbox entry, a signal) carries `"v": 1`.
//! Documents written before the field existed have none and read as version 1. A reader
//! refuses any other `v` with [`Error::Newer`], so a document of a later format is never
//! misread as this one. A future version 2 is told apart by its `v`: its reader dispatches on
//! the field, reads a document without `v` (or with `v: 1`) through these types, and writes
//! `"v": 2`. Which change needs a new version: anything an older build would misread or lose
//! when it rewrites the document (a renamed or removed field, a new required field, a new
//! variant). Nested values (a status, an outcome, an error, …) carry no version of their own:
//! they belong to the document around them.
//!
//! Fields a reader does not know are ignored, as version 1 always did; that is why a change an
//! older build would silently drop needs a new version.
//!
//! Values the handler or the caller chose (inputs, outputs, answers, details, saved steps) are
//! stored as the JSON they are. A task id is stored as its text (`task_` and 32 hex digits).
//!
//! Encoding borrows from the domain value (`Cow`), so writing a task copies nothing but the
//! JSON text; decoding owns what it reads.

mod change;
mod event;
mod inbox;
mod outcome;
mod signal;
mod task;
mod version;

#[cfg(test)]
mod tests;

pub use change::{StoredArtifactChunk, StoredChange, StoredProgress};
pub use event::StoredEvent;
pub use inbox::StoredInboxEntry;
pub use outcome::{StoredCancelReason, StoredOutcome, StoredStatus, StoredTaskError};
pub use signal::StoredSignal;
pub use task::{StoredArtifact, StoredState, StoredTask, StoredTrace};
pub use version::{Error, V1};

use serde::Serialize;

use crate::{
    cluster::Signal,
    event::{Event, Seq},
    id::TaskId,
    inbox::InboxEntry,
    task::Task,
};

/// The document a task is stored as.
pub fn encode_task(task: &Task) -> Result<String, Error> {
    encode(&StoredTask::from(task))
}

/// A task from its stored document.
pub fn decode_task(text: &str) -> Result<Task, Error> {
    version::decode::<StoredTask<'_>>(text)?.try_into()
}

/// The document an event is stored as, with its task and sequence number.
pub fn encode_event(event: &Event) -> Result<String, Error> {
    encode(&StoredEvent::from(event))
}

/// The document an event is stored as when its task and sequence number are key columns
/// beside it (they are left out).
pub fn encode_event_body(event: &Event) -> Result<String, Error> {
    encode(&StoredEvent::body_of(event))
}

/// An event from a document that holds its task and sequence number.
pub fn decode_event(text: &str) -> Result<Event, Error> {
    version::decode::<StoredEvent<'_>>(text)?.into_event(None)
}

/// An event of `task` numbered `seq` (read from key columns) from its document; a document
/// that names another task or number is refused.
pub fn decode_event_body(task: TaskId, seq: Seq, text: &str) -> Result<Event, Error> {
    version::decode::<StoredEvent<'_>>(text)?.into_event(Some((task, seq)))
}

/// The document an inbox entry is stored as.
pub fn encode_inbox_entry(entry: &InboxEntry) -> Result<String, Error> {
    encode(&StoredInboxEntry::from(entry))
}

/// An inbox entry from its stored document.
pub fn decode_inbox_entry(text: &str) -> Result<InboxEntry, Error> {
    version::decode::<StoredInboxEntry<'_>>(text)?.try_into()
}

/// The document a signal for a task's holder is stored as.
pub fn encode_signal(signal: &Signal) -> Result<String, Error> {
    encode(&StoredSignal::from(signal))
}

/// A signal from its stored document.
pub fn decode_signal(text: &str) -> Result<Signal, Error> {
    version::decode::<StoredSignal<'_>>(text)?.try_into()
}

fn encode(document: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(document).map_err(Error::Encode)
}
