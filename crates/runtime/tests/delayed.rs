//! Delayed starts: a task stays `submitted`, holding no slot, until its start time; a restart
//! waits only for what remains; a cancel ends it at once.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use longrun_runtime::{
    Change, Context, KindSpec, Options, OverLimit, Runtime, Seq, StartOptions, Status, TaskError,
    TaskId, Timestamp, TokioClock,
};
use longrun_store_memory::MemoryStore;
use serde_json::Value;

/// When the task's `started` event was written, if it was.
async fn started_at(rt: &Runtime, id: TaskId) -> Option<Timestamp> {
    let mut subscription = rt.subscribe(id, Seq::ZERO).await.unwrap();
    let mut at = None;
    while let Some(notice) = subscription.next().await.unwrap() {
        if let longrun_runtime::Notice::Event(event) = notice
            && matches!(event.change, Change::Started { .. })
        {
            at = Some(event.at);
        }
    }
    at
}

#[tokio::test(start_paused = true)]
async fn a_delayed_task_starts_at_its_time_and_not_before() {
    let rt = runtime();
    with_kinds(&rt);
    let started = rt
        .start(
            "echo",
            7,
            StartOptions::background().delay(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let id = started.id();
    let task = rt.get(id).await.unwrap();
    let due = task
        .start_at
        .expect("a delayed task records its start time");
    assert_eq!(due, task.created_at.saturating_add(Duration::from_secs(10)));

    tokio::time::sleep(Duration::from_millis(9_999)).await;
    let task = rt.get(id).await.unwrap();
    assert_eq!(task.status(), Status::Submitted);
    assert_eq!(task.started_at(), None);

    let task = rt.handle(id).wait().await.unwrap();
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(task.started_at(), Some(due));
    assert_eq!(started_at(&rt, id).await, Some(due));
}

#[tokio::test(start_paused = true)]
async fn a_time_already_past_starts_at_once() {
    let rt = runtime();
    with_kinds(&rt);
    let clock = TokioClock::new();
    let past = longrun_core::Clock::now(&clock);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = rt
        .start("echo", 1, StartOptions::foreground().start_at(past))
        .await
        .unwrap();
    let task = started.finished().unwrap();
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(task.start_at, None);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_task_holds_no_slot() {
    let rt = runtime();
    rt.register(
        KindSpec::new("one")
            .concurrency(1)
            .over_limit(OverLimit::Reject),
        |_ctx: Context, _: Value| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, TaskError>(())
        },
    )
    .unwrap();
    let later = rt
        .start(
            "one",
            (),
            StartOptions::background().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap()
        .id();
    // The only slot is free while `later` waits.
    let now = rt
        .start("one", (), StartOptions::foreground())
        .await
        .unwrap();
    assert_eq!(now.finished().unwrap().status(), Status::Completed);
    assert_eq!(rt.get(later).await.unwrap().status(), Status::Submitted);
    let task = rt.handle(later).wait().await.unwrap();
    assert_eq!(task.status(), Status::Completed);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_before_the_start_time_ends_it_at_once() {
    let rt = runtime();
    with_kinds(&rt);
    let id = rt
        .start(
            "echo",
            1,
            StartOptions::background().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .id();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = tokio::time::Instant::now();
    let task = rt.cancel(id).await.unwrap();
    assert_eq!(
        before.elapsed(),
        Duration::ZERO,
        "the cancel did not wait for the start"
    );
    assert_eq!(task.status(), Status::Cancelled);
    assert_eq!(task.attempt(), 0, "the handler never ran");
    assert_eq!(history(&rt, id).await, ["submitted", "ended"]);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_task_survives_a_restart_and_waits_only_the_remainder() {
    let store = Arc::new(MemoryStore::new());
    // One clock for both incarnations, as the wall clock would be.
    let clock = Arc::new(TokioClock::new());
    let node = || {
        let rt = Runtime::new(Options {
            store: Some(store.clone()),
            clock: Some(clock.clone()),
            ..Options::default()
        });
        with_kinds(&rt);
        rt
    };
    let first = node();
    let id = first
        .start(
            "echo",
            1,
            StartOptions::background().delay(Duration::from_secs(10)),
        )
        .await
        .unwrap()
        .id();
    let due = first.get(id).await.unwrap().start_at.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(first.leave().await, 1);

    let second = node();
    let recovery = second.recover().await.unwrap();
    assert_eq!(recovery.resubmitted, 1, "{recovery:?}");
    // 4 s have passed: 6 remain, not 10.
    tokio::time::sleep(Duration::from_millis(5_999)).await;
    assert_eq!(second.get(id).await.unwrap().status(), Status::Submitted);
    let task = second.handle(id).wait().await.unwrap();
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(task.started_at(), Some(due));
}
