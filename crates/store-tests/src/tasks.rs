//! Checks of [`TaskStore`](longrun_core::store::TaskStore): creating, reading and folding tasks.

use std::{sync::Arc, time::Duration};

use longrun_core::{
    Artifact, Change, Outcome, Owner, Progress, Seq, Session, Status, Task, TaskId, TraceContext,
    state::RefusalReason,
    store::{Error, Store},
};
use serde_json::json;

use crate::support::{
    Local, assert_refused, assert_stored, at, chunk, completed, event, failed, input_requested,
    labels, new_task, progress, started, stored,
};

/// A created task (with a trace context) reads back equal in every field, with its first event as its whole log; an id
/// that was never stored reads as `None`.
pub async fn create_then_get(store: Arc<dyn Store>) {
    let store = &*store;
    let mut new = new_task(0);
    new.kind = "summarize".into();
    new.owner = Owner::new("alice");
    new.session = Some(Session::new("chat-1"));
    new.input = json!({"url": "https://example.com", "depth": [1, 2.5, {"x": null}], "ü": "✓"});
    new.labels = labels(&[("team", "search"), ("tier", "gold")]);
    new.ttl = Duration::from_millis(1_234);
    new.deadline = Some(at(99_000));
    new.trace = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("vendor=x"),
    );
    assert!(new.trace.is_some());
    let local = Local::create(store, new).await;

    assert_stored(store, &local).await;
    assert_eq!(store.get(TaskId::random()).await.expect("get"), None);
}

/// Creating a task whose id is taken fails with `Duplicate` and keeps the first task as it was.
pub async fn duplicate_create_is_refused(store: Arc<dyn Store>) {
    let store = &*store;
    let mut first = Local::create(store, new_task(0)).await;
    first.step(store, 1, started()).await;

    let mut again = new_task(5);
    again.id = first.id();
    again.kind = "other".into();
    let again = Local::new(again);
    let result = store.create(&again.task, &again.events[0]).await;
    assert!(
        matches!(result, Err(Error::Duplicate(id)) if id == first.id()),
        "expected Duplicate({}), got {result:?}",
        first.id()
    );
    assert_stored(store, &first).await;
}

/// Appended events are folded with [`Task::apply`]: status, progress, artifacts (replaced,
/// appended, completed by their last chunk), questions and the outcome all agree with the same
/// events folded locally, and the log holds every event in order.
pub async fn append_folds_events(store: Arc<dyn Store>) {
    let store = &*store;
    let mut local = Local::create(store, new_task(0)).await;

    local.step(store, 1, started()).await;
    assert_eq!(stored(store, local.id()).await.status(), Status::Working);
    local.step(store, 2, progress(40.0, "reading")).await;
    local
        .step(store, 3, chunk("report", "draft", false, false))
        .await;
    local
        .step(store, 4, chunk("report", "part one", false, false))
        .await;
    local
        .step(store, 5, chunk("report", " part two", true, true))
        .await;
    local.step(store, 6, chunk("log", "x", false, true)).await;
    local.step(store, 7, input_requested("confirm")).await;
    assert_eq!(stored(store, local.id()).await, local.task);
    assert_eq!(local.task.status(), Status::InputRequired);
    let answer = Change::InputAnswered {
        key: "confirm".into(),
        value: json!(true),
    };
    local.step(store, 8, answer).await;
    local.step(store, 9, Change::Detached).await;
    local.step(store, 10, completed(json!({"words": 3}))).await;

    let task = stored(store, local.id()).await;
    assert_eq!(task, local.task);
    // The local fold is the reference; these spell out what it must have produced, so a store
    // and a broken fold cannot agree by accident.
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(
        task.progress(),
        Some(&Progress {
            percent: Some(40.0),
            message: Some("reading".into()),
        })
    );
    assert_eq!(
        task.artifacts(),
        [
            Artifact {
                id: "report".into(),
                name: Some("report.txt".into()),
                parts: vec![json!("part one"), json!(" part two")],
                complete: true,
            },
            Artifact {
                id: "log".into(),
                name: Some("log.txt".into()),
                parts: vec![json!("x")],
                complete: true,
            },
        ]
    );
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"words": 3})
        })
    );
    assert!(task.is_detached());
    assert_eq!(task.started_at(), Some(at(1)));
    assert_eq!(task.finished_at(), Some(at(10)));
    assert_eq!(task.updated_at(), at(10));
    assert_eq!(task.last_seq(), Seq::from_u64(11));
    assert_stored(store, &local).await;
}

/// One call with several events, of one task and of several interleaved, applies them all in
/// the caller's order.
pub async fn append_applies_batches_in_order(store: Arc<dyn Store>) {
    let store = &*store;
    let mut a = Local::create(store, new_task(0)).await;
    let mut b = Local::create(store, new_task(1)).await;

    let one_task = [
        a.next(2, started()),
        a.next(3, progress(10.0, "a")),
        a.next(4, progress(20.0, "b")),
    ];
    store.append(&one_task).await.expect("append a batch");
    assert_stored(store, &a).await;

    let interleaved = [
        b.next(5, started()),
        a.next(6, chunk("out", "1", false, false)),
        b.next(7, progress(50.0, "half")),
        a.next(8, chunk("out", "2", true, true)),
        a.next(9, completed(json!(1))),
        b.next(10, failed("no")),
    ];
    store.append(&interleaved).await.expect("append a batch");
    assert_stored(store, &a).await;
    assert_stored(store, &b).await;

    store.append(&[]).await.expect("an empty append is a no-op");
    assert_stored(store, &a).await;
}

/// An event the state machine refuses (out of sequence, not allowed now, after the end) fails
/// the call with `Refused`, and the call changes nothing: not the task, not its log, and not
/// the other events of the same call.
pub async fn refused_event_changes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let mut local = Local::create(store, new_task(0)).await;
    local.step(store, 1, started()).await;

    // Skipping a sequence number.
    let mut skip = (*event(&local.task, 2, progress(1.0, "x"))).clone();
    skip.seq = skip.seq.next();
    let result = store.append(&[Arc::new(skip)]).await;
    assert_refused(result, local.id(), RefusalReason::OutOfSequence);

    // Replaying an event already applied.
    let replay = Arc::clone(&local.events[1]);
    let result = store.append(&[replay]).await;
    assert_refused(result, local.id(), RefusalReason::OutOfSequence);

    // Timing out a question nobody asked.
    let result = store
        .append(&[event(
            &local.task,
            2,
            Change::InputTimedOut { key: "q".into() },
        )])
        .await;
    assert_refused(result, local.id(), RefusalReason::UnknownKey);

    // A good event followed by a refused one, in one call: neither is applied.
    let mut ahead = local.clone();
    let good = ahead.next(2, progress(5.0, "fine"));
    let bad = event(&ahead.task, 3, Change::Submitted);
    let result = store.append(&[good, bad]).await;
    assert_refused(result, local.id(), RefusalReason::NotAllowed);
    assert_stored(store, &local).await;

    // Anything after the end.
    local.step(store, 4, completed(json!("ok"))).await;
    let late = event(&local.task, 5, progress(99.0, "late"));
    let result = store.append(&[Arc::clone(&late)]).await;
    assert_refused(result, local.id(), RefusalReason::Terminal);
    assert_stored(store, &local).await;
    let after_end = store
        .read(local.id(), local.task.last_seq(), 10)
        .await
        .expect("read");
    assert!(
        after_end.is_empty(),
        "a refused event reached the log: {after_end:?}"
    );

    // A call over two tasks whose second event is refused leaves the first task alone.
    let mut other = Local::create(store, new_task(1)).await;
    other.step(store, 2, started()).await;
    let fine = event(&other.task, 6, progress(10.0, "fine"));
    let result = store.append(&[fine, late]).await;
    assert_refused(result, local.id(), RefusalReason::Terminal);
    assert_stored(store, &other).await;
    assert_stored(store, &local).await;
}

/// Events for a task that is not stored fail with `NotFound`; in a call with others, none of
/// them is applied.
pub async fn append_to_unknown_task_is_not_found(store: Arc<dyn Store>) {
    let store = &*store;
    let mut ghost = Local::new(new_task(0));
    let result = store.append(&[ghost.next(1, started())]).await;
    assert!(
        matches!(result, Err(Error::NotFound(id)) if id == ghost.id()),
        "expected NotFound({}), got {result:?}",
        ghost.id()
    );
    assert_eq!(store.get(ghost.id()).await.expect("get"), None);

    let known = Local::create(store, new_task(0)).await;
    let mut ahead = known.clone();
    let result = store
        .append(&[ahead.next(2, started()), ghost.next(3, progress(1.0, "x"))])
        .await;
    assert!(
        matches!(result, Err(Error::NotFound(id)) if id == ghost.id()),
        "expected NotFound({}), got {result:?}",
        ghost.id()
    );
    assert_stored(store, &known).await;
}

/// `unfinished` gives every task that has not ended, oldest first, and no ended one.
pub async fn unfinished_is_oldest_first(store: Arc<dyn Store>) {
    let store = &*store;
    // Created out of order, so a store that answers in insertion order fails.
    let plan = [
        (30, Status::Working),
        (10, Status::Submitted),
        (50, Status::Completed),
        (20, Status::InputRequired),
        (5, Status::Cancelled),
        (40, Status::Failed),
        (60, Status::Submitted),
        (1, Status::Rejected),
    ];
    let mut expected: Vec<Task> = Vec::new();
    for (created, status) in plan {
        let mut local = Local::create(store, new_task(created)).await;
        local.reach(store, status, 100).await;
        if !status.is_terminal() {
            expected.push(local.task);
        }
    }
    expected.sort_by_key(|task| task.created_at);

    let unfinished = store.unfinished().await.expect("unfinished");
    assert_eq!(unfinished, expected);
}
