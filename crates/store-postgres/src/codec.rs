//! Conversions between domain values and what the tables hold.
//!
//! Only this module knows the storage shapes: ids are `uuid`, domain times and sequence numbers
//! are `bigint`, and tasks, events, inbox entries and signals are JSON documents in the stored
//! format of `longrun_core::stored` (explicit, versioned types; never the domain types' own
//! serde), sent and read as text so the server keeps them byte for byte. An event's document
//! holds the whole event, its task and sequence number included. The `labels` column is a copy
//! of the task's labels, a flat JSON object of strings, for containment filters.

use longrun_core::{
    Event, InboxEntry, Labels, Seq, Signal, Task, TaskId, Timestamp, store::Error, stored,
};
use uuid::Uuid;

use crate::error::backend;

/// A task id as the `uuid` it is stored as.
pub(crate) fn uuid(id: TaskId) -> Uuid {
    Uuid::from_u128(id.as_u128())
}

/// A stored `uuid` as a task id.
pub(crate) fn task_id(id: Uuid) -> TaskId {
    TaskId::from_u128(id.as_u128())
}

/// A timestamp as `bigint` milliseconds; the far future saturates.
pub(crate) fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

/// Stored `bigint` milliseconds as a timestamp.
pub(crate) fn timestamp(millis: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// A sequence number as `bigint`.
pub(crate) fn seq(seq: Seq) -> i64 {
    i64::try_from(seq.as_u64()).unwrap_or(i64::MAX)
}

/// A count or a limit as `bigint`; `usize::MAX` saturates.
pub(crate) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count the database returned.
pub(crate) fn usize_of(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Labels as the JSON object the `labels` column stores.
pub(crate) fn labels(labels: &Labels) -> Result<String, Error> {
    serde_json::to_string(labels).map_err(backend)
}

/// A stored document that did not decode: `what` names it. Either the row was written by
/// another version (a later format is named as such by the stored error) or not by longrun.
fn unreadable(what: &str, error: stored::Error) -> Error {
    backend(format!("a stored {what} cannot be read: {error}"))
}

/// The document a task is stored as.
pub(crate) fn task_doc(task: &Task) -> Result<String, Error> {
    stored::encode_task(task).map_err(backend)
}

/// The task a stored document holds.
pub(crate) fn parse_task(text: &str) -> Result<Task, Error> {
    stored::decode_task(text).map_err(|error| unreadable("task", error))
}

/// The event a stored document holds.
pub(crate) fn parse_event(text: &str) -> Result<Event, Error> {
    stored::decode_event(text).map_err(|error| unreadable("event", error))
}

/// The document an inbox entry is stored as.
pub(crate) fn entry_doc(entry: &InboxEntry) -> Result<String, Error> {
    stored::encode_inbox_entry(entry).map_err(backend)
}

/// The inbox entry a stored document holds.
pub(crate) fn parse_entry(text: &str) -> Result<InboxEntry, Error> {
    stored::decode_inbox_entry(text).map_err(|error| unreadable("inbox entry", error))
}

/// The document a signal is stored as.
pub(crate) fn signal_doc(signal: &Signal) -> Result<String, Error> {
    stored::encode_signal(signal).map_err(backend)
}

/// The signal a stored document holds.
pub(crate) fn parse_signal(text: &str) -> Result<Signal, Error> {
    stored::decode_signal(text).map_err(|error| unreadable("signal", error))
}

/// A task's row, but for its lease: what is written whenever the task changes.
#[derive(Debug)]
pub(crate) struct TaskRow {
    pub(crate) id: Uuid,
    pub(crate) kind: String,
    pub(crate) owner: String,
    pub(crate) session: Option<String>,
    pub(crate) labels: String,
    pub(crate) status: String,
    pub(crate) created_at: i64,
    pub(crate) finished_at: Option<i64>,
    pub(crate) expires_at: Option<i64>,
    pub(crate) last_seq: i64,
    pub(crate) doc: String,
}

impl TaskRow {
    pub(crate) fn new(task: &Task) -> Result<Self, Error> {
        Ok(Self {
            id: uuid(task.id),
            kind: task.kind.clone(),
            owner: task.owner.as_str().to_owned(),
            session: task.session.as_ref().map(|s| s.as_str().to_owned()),
            labels: labels(&task.labels)?,
            status: task.status().as_str().to_owned(),
            created_at: millis(task.created_at),
            finished_at: task.finished_at().map(millis),
            expires_at: task.expires_at().map(millis),
            last_seq: seq(task.last_seq()),
            doc: task_doc(task)?,
        })
    }
}

/// An event's row.
#[derive(Debug)]
pub(crate) struct EventRow {
    pub(crate) task: Uuid,
    pub(crate) seq: i64,
    pub(crate) doc: String,
}

impl EventRow {
    pub(crate) fn new(event: &Event) -> Result<Self, Error> {
        Ok(Self {
            task: uuid(event.task),
            seq: seq(event.seq),
            doc: stored::encode_event(event).map_err(backend)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use longrun_core::{Change, Outcome, Status};
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_and_times_round_trip() {
        let id = TaskId::random();
        assert_eq!(task_id(uuid(id)), id);
        let at = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(timestamp(millis(at)), at);
        assert_eq!(millis(Timestamp::from_millis(u64::MAX)), i64::MAX);
        assert_eq!(count(usize::MAX), i64::MAX);
    }

    #[test]
    fn ended_tasks_read_back_whole() {
        use std::time::Duration;

        use longrun_core::{
            ArtifactChunk, CancelReason, Labels, NewTask, Owner, Progress, TaskError,
        };

        let outcomes = [
            Outcome::Completed {
                output: json!({"n": 1}),
            },
            Outcome::Failed {
                error: TaskError::new("e", "boom").with_details(json!([1])),
            },
            Outcome::Cancelled {
                reason: CancelReason::Requested {
                    by: Some("me".into()),
                },
            },
            Outcome::Cancelled {
                reason: CancelReason::DeadlineExceeded,
            },
            Outcome::Rejected {
                error: TaskError::new("limit_reached", "full"),
            },
        ];
        for outcome in outcomes {
            let (mut task, _) = Task::create(NewTask {
                id: TaskId::random(),
                kind: "k".into(),
                owner: Owner::default(),
                session: None,
                input: json!(null),
                labels: Labels::new(),
                ttl: Duration::from_secs(1),
                deadline: None,
                created_at: Timestamp::from_millis(1),
                idempotency_key: None,
                start_at: None,
                trace: None,
            });
            let mut changes = Vec::new();
            if outcome.status() != Status::Rejected {
                changes.push(Change::Started { attempt: 2 });
                changes.push(Change::Progress(Progress {
                    percent: Some(5.0),
                    message: Some("going".into()),
                }));
                changes.push(Change::Artifact(ArtifactChunk {
                    id: "a".into(),
                    name: None,
                    parts: vec![json!("x")],
                    append: false,
                    last_chunk: true,
                }));
            }
            changes.push(Change::Detached);
            changes.push(Change::Ended(outcome));
            for (at, change) in (10..).zip(changes) {
                let status = task.state().after(&change).expect("legal").status();
                let event = Event {
                    task: task.id,
                    seq: task.last_seq().next(),
                    at: Timestamp::from_millis(at),
                    status,
                    change,
                };
                task.apply(&event).expect("legal");
            }
            let row = TaskRow::new(&task).expect("encodes");
            assert_eq!(parse_task(&row.doc).expect("read back"), task);
        }
    }

    #[test]
    fn uuid_order_is_task_id_order() {
        // Listings sort by the stored uuid and promise the order of `TaskId`.
        let mut ids: Vec<TaskId> = (0..100).map(|_| TaskId::random()).collect();
        let mut uuids: Vec<Uuid> = ids.iter().copied().map(uuid).collect();
        ids.sort();
        uuids.sort();
        assert_eq!(ids, uuids.into_iter().map(task_id).collect::<Vec<_>>());
    }
}
