//! Conversions between longrun's values and this store's rows: the only place that knows how
//! an id, a time, a task, an event or an inbox entry is written down in SQLite.
//!
//! - A [`TaskId`] is a 16-byte big-endian BLOB. SQLite compares BLOBs with `memcmp`, which puts
//!   them in the same order as `TaskId`'s own `Ord`, so `ORDER BY created_at, id` agrees with
//!   the order the store traits promise; and 16 bytes instead of the 37 of its text keep the
//!   indexes small.
//! - Times and counters are SQLite INTEGERs, which are signed 64-bit: values above `i64::MAX`
//!   (about 292 million years of milliseconds) are clamped to it, so nothing overflows and the
//!   order of every real value is kept.
//! - A task, an event and an inbox entry are JSON documents in the stored format of
//!   `longrun_core::stored` (explicit, versioned types; never the domain types' own serde), so
//!   a rename in the domain changes nothing on disk. A task is kept whole, because its state
//!   can only be rebuilt from its document or by folding its events; the columns beside it are
//!   copies for indexes and filters.
//! - An event's document leaves out its task and sequence number, which are its key columns:
//!   the log is the largest table, and repeating 60 bytes per row in it buys nothing.
//!
//! Decoding never panics: a row that does not decode is a backend error naming the task.

use std::sync::Arc;

use longrun_core::{Event, InboxEntry, Seq, Task, TaskId, Timestamp, store::Error, stored};

use crate::error::backend;

/// A task id as its key column.
pub(crate) fn id_key(id: TaskId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

/// A task id from its key column.
pub(crate) fn id_from_key(key: &[u8]) -> Result<TaskId, Error> {
    let bytes: [u8; 16] = key.try_into().map_err(|_| {
        backend(
            format!("reading a task id of {} bytes", key.len()),
            "a stored id must be 16 bytes; the file was not written by this store",
        )
    })?;
    Ok(TaskId::from_u128(u128::from_be_bytes(bytes)))
}

/// A number as an SQLite INTEGER, clamped (see the module docs).
pub(crate) fn integer(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count or limit as an SQLite INTEGER, clamped.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A time as an SQLite INTEGER of milliseconds, clamped.
pub(crate) fn millis(at: Timestamp) -> i64 {
    integer(at.as_millis())
}

/// A stored non-negative INTEGER back as a number; `what` names it in the error.
pub(crate) fn unsigned(n: i64, what: impl FnOnce() -> String) -> Result<u64, Error> {
    u64::try_from(n).map_err(|_| backend(what(), format!("a negative value ({n}) is stored")))
}

/// The columns of a task's row, computed from the task.
#[derive(Debug)]
pub(crate) struct TaskRow {
    pub(crate) id: [u8; 16],
    pub(crate) kind: String,
    pub(crate) owner: String,
    pub(crate) session: Option<String>,
    pub(crate) status: &'static str,
    pub(crate) created_at: i64,
    pub(crate) finished_at: Option<i64>,
    pub(crate) expires_at: Option<i64>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) body: String,
}

impl TaskRow {
    /// The row of `task`.
    pub(crate) fn new(task: &Task) -> Result<Self, Error> {
        Ok(Self {
            id: id_key(task.id),
            kind: task.kind.clone(),
            owner: task.owner.as_str().to_owned(),
            session: task.session.as_ref().map(|s| s.as_str().to_owned()),
            status: task.status().as_str(),
            created_at: millis(task.created_at),
            finished_at: task.finished_at().map(millis),
            expires_at: task.expires_at().map(millis),
            idempotency_key: task.idempotency_key.clone(),
            body: encode_task(task)?,
        })
    }
}

/// The document of `task`'s row.
fn encode_task(task: &Task) -> Result<String, Error> {
    stored::encode_task(task).map_err(|e| backend(format!("encoding task {}", task.id), e))
}

/// A task from its stored document.
pub(crate) fn decode_task(id: TaskId, body: &str) -> Result<Task, Error> {
    let task = stored::decode_task(body).map_err(|e| backend(format!("reading task {id}"), e))?;
    if task.id != id {
        return Err(backend(
            format!("reading task {id}"),
            format!("its stored document names another task, {}", task.id),
        ));
    }
    Ok(task)
}

/// The document of `event`'s row: everything but its key.
pub(crate) fn encode_event(event: &Event) -> Result<String, Error> {
    stored::encode_event_body(event).map_err(|e| {
        backend(
            format!("encoding event {} of task {}", event.seq, event.task),
            e,
        )
    })
}

/// An event from its key and its row's document.
pub(crate) fn decode_event(task: TaskId, seq: i64, body: &str) -> Result<Arc<Event>, Error> {
    let seq = Seq::from_u64(unsigned(seq, || format!("reading the log of task {task}"))?);
    stored::decode_event_body(task, seq, body)
        .map(Arc::new)
        .map_err(|e| backend(format!("reading event {seq} of task {task}"), e))
}

/// The document of an inbox entry.
pub(crate) fn encode_entry(entry: &InboxEntry, task: TaskId) -> Result<String, Error> {
    stored::encode_inbox_entry(entry)
        .map_err(|e| backend(format!("encoding an inbox entry about task {task}"), e))
}

/// An inbox entry from its document.
pub(crate) fn decode_entry(position: u64, body: &str) -> Result<InboxEntry, Error> {
    stored::decode_inbox_entry(body)
        .map_err(|e| backend(format!("reading inbox item {position}"), e))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use longrun_core::{
        ArtifactChunk, CancelReason, Change, NewTask, Outcome, Owner, Progress, Session, TaskError,
    };
    use serde_json::json;

    use super::*;

    #[test]
    fn id_keys_sort_like_ids() {
        let mut ids: Vec<TaskId> = (0..200).map(|_| TaskId::random()).collect();
        let mut keys: Vec<[u8; 16]> = ids.iter().copied().map(id_key).collect();
        ids.sort();
        keys.sort();
        let back: Vec<TaskId> = keys
            .iter()
            .map(|key| id_from_key(key).expect("16 bytes"))
            .collect();
        assert_eq!(back, ids);
        assert!(id_from_key(&[1, 2, 3]).is_err());
    }

    #[test]
    fn integers_clamp_instead_of_wrapping() {
        assert_eq!(integer(5), 5);
        assert_eq!(integer(u64::MAX), i64::MAX);
        assert_eq!(limit(usize::MAX), i64::MAX);
        assert!(unsigned(-1, String::new).is_err());
    }

    /// A task created at 1 and taken through `changes`, one millisecond apart.
    fn folded(changes: Vec<Change>) -> Task {
        let (mut task, _) = Task::create(NewTask {
            id: TaskId::random(),
            kind: "k".into(),
            owner: Owner::new("alice"),
            session: Some(Session::new("chat")),
            input: json!({"q": [1, 2.5, null]}),
            labels: [("team".to_owned(), "x".to_owned())].into(),
            ttl: Duration::from_secs(60),
            deadline: Some(Timestamp::from_millis(99)),
            created_at: Timestamp::from_millis(1),
            idempotency_key: None,
            start_at: None,
            trace: None,
        });
        for (at, change) in (2..).zip(changes) {
            let status = task
                .state()
                .after(&change)
                .expect("a legal change")
                .status();
            let event = Event {
                task: task.id,
                seq: task.last_seq().next(),
                at: Timestamp::from_millis(at),
                status,
                change,
            };
            task.apply(&event).expect("a legal change");
        }
        task
    }

    #[test]
    fn tasks_in_every_state_round_trip() {
        let started = || Change::Started { attempt: 1 };
        let asked = |key: &str| Change::InputRequested {
            key: key.into(),
            request: json!({"question": "go on?"}),
        };
        let ended = |outcome| Change::Ended(outcome);
        let cancelled = |reason| ended(Outcome::Cancelled { reason });
        let busy = || {
            vec![
                started(),
                Change::Progress(Progress {
                    percent: Some(40.0),
                    message: Some("reading".into()),
                }),
                Change::Artifact(ArtifactChunk {
                    id: "out".into(),
                    name: Some("out.txt".into()),
                    parts: vec![json!("a")],
                    append: false,
                    last_chunk: true,
                }),
                Change::Detached,
            ]
        };
        let cases = [
            vec![],
            vec![started()],
            vec![started(), asked("a"), asked("b")],
            [
                busy(),
                vec![ended(Outcome::Completed {
                    output: json!({"n": 3}),
                })],
            ]
            .concat(),
            [
                busy(),
                vec![
                    asked("a"),
                    ended(Outcome::Failed {
                        error: TaskError::new("handler_error", "broke").with_details(json!([1])),
                    }),
                ],
            ]
            .concat(),
            vec![cancelled(CancelReason::Requested {
                by: Some("bob".into()),
            })],
            vec![cancelled(CancelReason::Requested { by: None })],
            [busy(), vec![cancelled(CancelReason::DeadlineExceeded)]].concat(),
            vec![started(), cancelled(CancelReason::Stopped)],
            vec![
                started(),
                asked("a"),
                cancelled(CancelReason::Handler {
                    message: "no".into(),
                }),
            ],
            vec![ended(Outcome::Rejected {
                error: TaskError::new("limit_reached", "full"),
            })],
        ];
        for changes in cases {
            let task = folded(changes);
            let row = TaskRow::new(&task).expect("encode");
            let back = decode_task(task.id, &row.body).unwrap_or_else(|e| {
                panic!("{:?} did not decode: {e}\n{}", task.status(), row.body)
            });
            assert_eq!(back, task, "{}", row.body);
            assert_eq!(row.finished_at, task.finished_at().map(millis));
            assert_eq!(row.status, task.status().as_str());
        }
    }

    #[test]
    fn a_task_row_that_does_not_decode_names_the_task() {
        let id = TaskId::random();
        let error = decode_task(id, "{\"not\": \"a task\"}").expect_err("garbage");
        assert!(error.to_string().contains(&id.to_string()), "{error}");
    }
}
