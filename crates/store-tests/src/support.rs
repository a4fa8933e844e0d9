//! What the checks build their tasks and events with, so each check reads as a short story.
//!
//! A [`Local`] is a task as the check expects the store to hold it: every event the check
//! appends is also folded into the local copy with [`Task::apply`], so "the store agrees" is
//! one `assert_eq!` on whole tasks and whole logs.

use std::{sync::Arc, time::Duration};

use longrun_core::{
    ArtifactChunk, CancelReason, Change, Event, Labels, NewTask, Outcome, Owner, Progress, Seq,
    Status, Task, TaskError, TaskId, Timestamp,
    state::RefusalReason,
    store::{Error, Store},
};
use serde_json::{Value, json};

/// The time every check starts from: any fixed instant works, and a round one reads well.
pub(crate) const T0: u64 = 1_700_000_000_000;

/// More than any check stores or reads in one call; not `usize::MAX`, which a SQL backend
/// would have to clamp to fit its integer type.
pub(crate) const ALL: usize = 10_000;

/// `T0` plus `offset` milliseconds.
pub(crate) fn at(offset: u64) -> Timestamp {
    Timestamp::from_millis(T0 + offset)
}

/// A plain task created at `T0 + created`, kept for a minute after it ends.
pub(crate) fn new_task(created: u64) -> NewTask {
    NewTask {
        id: TaskId::random(),
        kind: "echo".into(),
        owner: Owner::default(),
        session: None,
        input: json!({"text": "hello"}),
        labels: Labels::new(),
        ttl: Duration::from_secs(60),
        deadline: None,
        created_at: at(created),
        idempotency_key: None,
        start_at: None,
        trace: None,
    }
}

/// Labels from pairs.
pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// The next event of `task`: the next sequence number, and the status the state machine gives
/// after `change`. A change the machine refuses keeps the current status, so checks build the
/// events they expect to be refused the same way.
pub(crate) fn event(task: &Task, offset: u64, change: Change) -> Arc<Event> {
    let status = task
        .state()
        .after(&change)
        .map_or(task.status(), |state| state.status());
    Arc::new(Event {
        task: task.id,
        seq: task.last_seq().next(),
        at: at(offset),
        status,
        change,
    })
}

/// A task as the store should hold it, and its log.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub(crate) task: Task,
    pub(crate) events: Vec<Arc<Event>>,
}

impl Local {
    /// A task that exists only here, never stored.
    pub(crate) fn new(new: NewTask) -> Self {
        let (task, first) = Task::create(new);
        Self {
            task,
            events: vec![Arc::new(first)],
        }
    }

    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        self.task.id
    }

    /// Creates `new` in `store`.
    pub(crate) async fn create(store: &dyn Store, new: NewTask) -> Self {
        let local = Self::new(new);
        store
            .create(&local.task, &local.events[0])
            .await
            .unwrap_or_else(|error| panic!("creating {}: {error}", local.id()));
        local
    }

    /// The next event, folded here but not appended anywhere: for building batches.
    pub(crate) fn next(&mut self, offset: u64, change: Change) -> Arc<Event> {
        let event = event(&self.task, offset, change);
        self.task
            .apply(&event)
            .unwrap_or_else(|refusal| panic!("the check's own event was refused: {refusal}"));
        self.events.push(Arc::clone(&event));
        event
    }

    /// Appends the next event to `store` and folds it here.
    pub(crate) async fn step(&mut self, store: &dyn Store, offset: u64, change: Change) {
        let event = self.next(offset, change);
        store
            .append(&[event])
            .await
            .unwrap_or_else(|error| panic!("appending to {}: {error}", self.id()));
    }

    /// Drives a created task to `status` with the usual changes, `offset` onwards.
    pub(crate) async fn reach(&mut self, store: &dyn Store, status: Status, offset: u64) {
        let changes = match status {
            Status::Submitted => vec![],
            Status::Working => vec![started()],
            Status::InputRequired => vec![started(), input_requested("confirm")],
            Status::Completed => vec![started(), completed(json!("done"))],
            Status::Failed => vec![started(), failed("it broke")],
            Status::Cancelled => vec![cancelled()],
            Status::Rejected => vec![rejected()],
        };
        for (n, change) in (0..).zip(changes) {
            self.step(store, offset + n, change).await;
        }
        assert_eq!(self.task.status(), status);
    }
}

/// The task as stored, which must exist.
pub(crate) async fn stored(store: &dyn Store, id: TaskId) -> Task {
    store
        .get(id)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("task {id} should be stored"))
}

/// Every event of `id`.
pub(crate) async fn log(store: &dyn Store, id: TaskId) -> Vec<Arc<Event>> {
    store.read(id, Seq::ZERO, ALL).await.expect("read")
}

/// Asserts `store` holds exactly `local`: the task and its whole log.
pub(crate) async fn assert_stored(store: &dyn Store, local: &Local) {
    assert_eq!(
        stored(store, local.id()).await,
        local.task,
        "the stored task"
    );
    assert_eq!(log(store, local.id()).await, local.events, "the stored log");
}

/// Asserts a write was refused by the state machine, for `task`, because of `reason`.
pub(crate) fn assert_refused(result: Result<(), Error>, task: TaskId, reason: RefusalReason) {
    match result {
        Err(Error::Refused {
            task: refused,
            refusal,
        }) => {
            assert_eq!(refused, task, "the refused task");
            assert_eq!(refusal.reason, reason, "why it was refused: {refusal}");
        }
        other => panic!("expected a refusal ({reason:?}) for {task}, got {other:?}"),
    }
}

pub(crate) fn started() -> Change {
    Change::Started { attempt: 1 }
}

pub(crate) fn progress(percent: f64, message: &str) -> Change {
    Change::Progress(Progress {
        percent: Some(percent),
        message: Some(message.to_owned()),
    })
}

pub(crate) fn chunk(id: &str, text: &str, append: bool, last_chunk: bool) -> Change {
    Change::Artifact(ArtifactChunk {
        id: id.to_owned(),
        name: Some(format!("{id}.txt")),
        parts: vec![Value::from(text)],
        append,
        last_chunk,
    })
}

pub(crate) fn input_requested(key: &str) -> Change {
    Change::InputRequested {
        key: key.to_owned(),
        request: json!({"question": "go on?"}),
    }
}

pub(crate) fn completed(output: Value) -> Change {
    Change::Ended(Outcome::Completed { output })
}

pub(crate) fn failed(message: &str) -> Change {
    Change::Ended(Outcome::Failed {
        error: TaskError::new(TaskError::HANDLER_ERROR, message),
    })
}

pub(crate) fn cancelled() -> Change {
    Change::Ended(Outcome::Cancelled {
        reason: CancelReason::Requested {
            by: Some("a check".into()),
        },
    })
}

pub(crate) fn rejected() -> Change {
    Change::Ended(Outcome::Rejected {
        error: TaskError::new(TaskError::LIMIT_REACHED, "full"),
    })
}
