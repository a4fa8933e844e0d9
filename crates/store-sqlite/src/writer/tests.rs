//! Tests of the writer that need to see one batch at a time: what the public API cannot pin
//! down, because which calls share a batch depends on timing there.

use std::{sync::Arc, time::Duration};

use longrun_core::{
    Change, Event, InboxEntry, Labels, NewTask, Outcome, Owner, Session, Status, Task, TaskId,
    Timestamp,
    state::RefusalReason,
    store::{Error, NewInboxItem, Purge},
};
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::oneshot;

use super::{Command, Encoded, InboxRow, Write, Writer};
use crate::{codec::TaskRow, connect, options::Synchronous, read, schema};

/// A writer on a fresh file in `dir`, driven by hand.
fn writer(dir: &TempDir) -> Writer {
    let path = dir.path().join("store.db");
    let mut conn = connect::writer(&path, Synchronous::Full).expect("open");
    schema::migrate(&mut conn).expect("migrate");
    Writer::new(conn, path, 1024).expect("writer")
}

fn new_task(created: u64, ttl: Duration) -> Task {
    Task::create(NewTask {
        id: TaskId::random(),
        kind: "k".into(),
        owner: Owner::default(),
        session: None,
        input: json!({"n": created}),
        labels: Labels::new(),
        ttl,
        deadline: None,
        created_at: Timestamp::from_millis(created),
        idempotency_key: None,
        start_at: None,
        trace: None,
    })
    .0
}

/// The next event of `task` at `at`, without folding it.
fn next(task: &Task, at: u64, change: Change) -> Arc<Event> {
    let status = task
        .state()
        .after(&change)
        .map_or(task.status(), |state| state.status());
    Arc::new(Event {
        task: task.id,
        seq: task.last_seq().next(),
        at: Timestamp::from_millis(at),
        status,
        change,
    })
}

/// The next event of `task`, folded into it.
fn step(task: &mut Task, at: u64, change: Change) -> Arc<Event> {
    let event = next(task, at, change);
    task.apply(&event).expect("a legal change");
    event
}

type Answer<T> = oneshot::Receiver<Result<T, Error>>;

fn create(task: &Task) -> (Write, Answer<()>) {
    let (done, answer) = oneshot::channel();
    let first = Task::create(NewTask {
        id: task.id,
        kind: task.kind.clone(),
        owner: task.owner.clone(),
        session: None,
        input: task.input.clone(),
        labels: Labels::new(),
        ttl: task.ttl,
        deadline: None,
        created_at: task.created_at,
        idempotency_key: None,
        start_at: None,
        trace: None,
    })
    .1;
    let write = Write::Create {
        task: Box::new(task.clone()),
        row: Box::new(TaskRow::new(task).expect("row")),
        first: Encoded::new(&Arc::new(first)).expect("event"),
        done,
    };
    (write, answer)
}

fn append(events: &[Arc<Event>]) -> (Write, Answer<()>) {
    let (done, answer) = oneshot::channel();
    let events = events
        .iter()
        .map(|event| Encoded::new(event).expect("event"))
        .collect();
    (
        Write::Append {
            events,
            inbox: None,
            done,
        },
        answer,
    )
}

fn push(session: &str) -> (Write, Answer<()>) {
    let (done, answer) = oneshot::channel();
    let item = NewInboxItem {
        session: Session::new(session),
        task: TaskId::random(),
        at: Timestamp::from_millis(1),
        entry: InboxEntry::Message {
            message: "hello".into(),
            trigger: true,
        },
    };
    let row = InboxRow::new(&item).expect("row");
    (Write::Push { row, done }, answer)
}

fn answer<T>(mut answer: Answer<T>) -> Result<T, Error> {
    answer.try_recv().expect("answered once the batch is done")
}

fn stored(writer: &Writer, id: TaskId) -> Option<Task> {
    read::get(writer.connection(), id).expect("read")
}

fn started() -> Change {
    Change::Started { attempt: 1 }
}

fn completed() -> Change {
    Change::Ended(Outcome::Completed { output: json!(1) })
}

#[test]
fn a_refused_call_fails_alone_and_later_calls_see_earlier_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = writer(&dir);
    let mut task = new_task(1, Duration::from_secs(60));
    let unknown = new_task(2, Duration::from_secs(60));

    let (create, created) = create(&task);
    let start = step(&mut task, 10, started());
    let (first, first_ok) = append(std::slice::from_ref(&start));
    // The same event again: refused, because the call before it in this batch applied it.
    let (again, again_refused) = append(&[start]);
    let (ghost, ghost_missing) = append(&[next(&unknown, 11, started())]);
    let (pushed, push_ok) = push("s");
    let progress = Change::Progress(longrun_core::Progress {
        percent: Some(50.0),
        message: None,
    });
    let (later, later_ok) = append(&[step(&mut task, 12, progress)]);
    writer.run_batch(vec![create, first, again, ghost, pushed, later]);

    assert!(answer(created).is_ok());
    assert!(answer(first_ok).is_ok());
    assert!(matches!(
        answer(again_refused),
        Err(Error::Refused { task: id, refusal }) if id == task.id
            && refusal.reason == RefusalReason::OutOfSequence
    ));
    assert!(matches!(answer(ghost_missing), Err(Error::NotFound(id)) if id == unknown.id));
    assert!(answer(push_ok).is_ok());
    assert!(answer(later_ok).is_ok());

    let stats = &writer.counters;
    assert_eq!(stats.commits.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.writes.load(std::sync::atomic::Ordering::Relaxed), 6);
    assert_eq!(stored(&writer, task.id).as_ref(), Some(&task));
    assert_eq!(writer.cached(task.id), Some(&task));
    let log = read::events(writer.connection(), task.id, longrun_core::Seq::ZERO, 10).expect("log");
    assert_eq!(log.len(), 3);
}

#[test]
fn a_failed_batch_fails_every_call_and_restores_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = writer(&dir);
    let mut task = new_task(1, Duration::from_secs(60));
    let (made, made_ok) = create(&task);
    writer.run_batch(vec![made]);
    assert!(answer(made_ok).is_ok());
    let before = task.clone();

    // Any statement failing sinks the batch; a trigger makes the push fail on demand.
    writer
        .connection()
        .execute_batch(
            "CREATE TEMP TRIGGER sabotage BEFORE INSERT ON inbox \
             BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END;",
        )
        .expect("trigger");
    let other = new_task(2, Duration::from_secs(60));
    let (start, start_failed) = append(&[step(&mut task, 10, started())]);
    let (made_other, other_failed) = create(&other);
    let (pushed, push_failed) = push("s");
    writer.run_batch(vec![start, made_other, pushed]);
    for result in [
        answer(start_failed),
        answer(other_failed),
        answer(push_failed),
    ] {
        match result {
            Err(Error::Backend(error)) => {
                assert!(error.to_string().contains("on fire"), "{error}");
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
    }
    assert_eq!(
        writer.cached(task.id),
        Some(&before),
        "the cache was restored"
    );
    assert_eq!(writer.cached(other.id), None);
    assert_eq!(stored(&writer, task.id).as_ref(), Some(&before));
    assert_eq!(stored(&writer, other.id), None);
    assert_eq!(
        writer
            .counters
            .commits
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the failed batch is not counted"
    );

    // Once the fault is gone, the same writes go through: nothing half-remembered gets in
    // the way (no phantom duplicate, no skipped sequence number).
    writer
        .connection()
        .execute_batch("DROP TRIGGER sabotage")
        .expect("drop trigger");
    let mut task = before;
    let (start, start_ok) = append(&[step(&mut task, 10, started())]);
    let (made_other, other_ok) = create(&other);
    writer.run_batch(vec![start, made_other]);
    assert!(answer(start_ok).is_ok());
    assert!(answer(other_ok).is_ok());
    assert_eq!(stored(&writer, task.id).as_ref(), Some(&task));
    assert_eq!(stored(&writer, other.id).as_ref(), Some(&other));
}

#[test]
fn finished_tasks_leave_the_cache_and_refuse_from_the_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = writer(&dir);
    let mut task = new_task(1, Duration::from_secs(60));
    let (made, _) = create(&task);
    let events = [
        step(&mut task, 2, started()),
        step(&mut task, 3, completed()),
    ];
    let (ended, ended_ok) = append(&events);
    writer.run_batch(vec![made, ended]);
    assert!(answer(ended_ok).is_ok());
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(
        writer.cached(task.id),
        None,
        "finished tasks are not cached"
    );

    let (late, late_refused) = append(&[next(&task, 4, started())]);
    writer.run_batch(vec![late]);
    let late = answer(late_refused);
    assert!(
        matches!(&late, Err(Error::Refused { refusal, .. }) if refusal.reason == RefusalReason::Terminal),
        "{late:?}"
    );
    let (again, duplicate) = create(&task);
    writer.run_batch(vec![again]);
    assert!(matches!(answer(duplicate), Err(Error::Duplicate(id)) if id == task.id));
}

#[test]
fn a_purge_runs_in_bounded_steps_between_batches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = writer(&dir);
    let total = super::purge::PURGE_STEP * 2 + 10;
    let mut writes = Vec::new();
    for n in 0..total as u64 {
        let mut task = new_task(n, Duration::from_millis(10));
        writes.push(create(&task).0);
        let events = [
            step(&mut task, 100, started()),
            step(&mut task, 200, completed()),
        ];
        writes.push(append(&events).0);
    }
    writer.run_batch(writes);

    let (done, mut removed) = oneshot::channel();
    let mut queued = Vec::new();
    writer.take(
        Command::Purge {
            purge: Purge {
                now: Timestamp::from_millis(1_000),
                max_finished: usize::MAX,
            },
            done,
        },
        &mut queued,
    );
    assert!(queued.is_empty(), "a purge is a job, not a write");
    let mut batches = 0;
    let removed = loop {
        writer.run_batch(Vec::new());
        batches += 1;
        if let Ok(result) = removed.try_recv() {
            break result.expect("purge");
        }
        assert!(batches < 10, "the purge never finished");
    };
    assert_eq!(removed, total);
    assert_eq!(
        batches,
        3,
        "{total} tasks at {} a step",
        super::purge::PURGE_STEP
    );
}

#[test]
fn an_end_with_an_inbox_item_is_both_or_neither() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = writer(&dir);
    let mut task = new_task(1, Duration::from_secs(60));
    let (made, made_ok) = create(&task);
    let (start, start_ok) = append(&[step(&mut task, 2, started())]);
    writer.run_batch(vec![made, start]);
    assert!(answer(made_ok).is_ok() && answer(start_ok).is_ok());
    let before = task.clone();
    let end = step(&mut task, 3, completed());
    let with_item = |end: &Arc<Event>| {
        let (done, answer) = oneshot::channel();
        let item = NewInboxItem {
            session: Session::new("s"),
            task: task.id,
            at: Timestamp::from_millis(3),
            entry: InboxEntry::Outcome {
                kind: "k".into(),
                outcome: Outcome::Completed { output: json!(1) },
            },
        };
        let write = Write::Append {
            events: vec![Encoded::new(end).expect("event")],
            inbox: Some(InboxRow::new(&item).expect("row")),
            done,
        };
        (write, answer)
    };
    let items = |writer: &Writer| {
        read::peek(writer.connection(), &Session::new("s"), 0, 10)
            .expect("peek")
            .len()
    };

    // The item's insert fails: the end goes with it.
    writer
        .connection()
        .execute_batch(
            "CREATE TEMP TRIGGER sabotage BEFORE INSERT ON inbox \
             BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END;",
        )
        .expect("trigger");
    let (write, failed) = with_item(&end);
    writer.run_batch(vec![write]);
    assert!(matches!(answer(failed), Err(Error::Backend(_))));
    assert_eq!(stored(&writer, task.id).as_ref(), Some(&before));
    assert_eq!(items(&writer), 0);

    // Both go in together once the fault is gone.
    writer
        .connection()
        .execute_batch("DROP TRIGGER sabotage")
        .expect("drop trigger");
    let (write, ok) = with_item(&end);
    writer.run_batch(vec![write]);
    assert!(answer(ok).is_ok());
    assert_eq!(stored(&writer, task.id).as_ref(), Some(&task));
    assert_eq!(items(&writer), 1);
}
