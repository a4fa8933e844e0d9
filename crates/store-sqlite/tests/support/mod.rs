//! What the integration tests build their tasks and events with.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use longrun_core::{
    Change, Event, InboxEntry, Labels, NewTask, Outcome, Owner, Progress, Session, Task, TaskId,
    Timestamp, store::NewInboxItem,
};
use serde_json::json;

/// A task created at `created` milliseconds, kept for a minute after it ends.
pub(crate) fn new_task(created: u64) -> (Task, Arc<Event>) {
    let (task, first) = Task::create(NewTask {
        id: TaskId::random(),
        kind: "echo".into(),
        owner: Owner::default(),
        session: None,
        input: json!({"text": "hello"}),
        labels: Labels::new(),
        ttl: Duration::from_secs(60),
        deadline: None,
        created_at: Timestamp::from_millis(created),
        idempotency_key: None,
        start_at: None,
        trace: None,
    });
    (task, Arc::new(first))
}

/// The next event of `task` at `at`, folded into `task`.
pub(crate) fn step(task: &mut Task, at: u64, change: Change) -> Arc<Event> {
    let status = task
        .state()
        .after(&change)
        .expect("a legal change")
        .status();
    let event = Arc::new(Event {
        task: task.id,
        seq: task.last_seq().next(),
        at: Timestamp::from_millis(at),
        status,
        change,
    });
    task.apply(&event).expect("a legal change");
    event
}

pub(crate) fn started() -> Change {
    Change::Started { attempt: 1 }
}

pub(crate) fn progress(percent: f64) -> Change {
    Change::Progress(Progress {
        percent: Some(percent),
        message: Some("busy".into()),
    })
}

pub(crate) fn completed() -> Change {
    Change::Ended(Outcome::Completed {
        output: json!("done"),
    })
}

/// A message for `session`'s inbox.
pub(crate) fn message(session: &str, text: &str) -> NewInboxItem {
    NewInboxItem {
        session: Session::new(session),
        task: TaskId::random(),
        at: Timestamp::from_millis(1),
        entry: InboxEntry::Message {
            message: text.into(),
            trigger: false,
        },
    }
}
