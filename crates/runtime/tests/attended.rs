//! A caller that waits for its task in its own way (a blocking A2A `SendMessage`): an attended
//! task is the caller's until it detaches it, and the events kept for the caller are the log.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use longrun_runtime::{
    Context, Event, KindSpec, Runtime, Seq, StartOptions, Started, Status, TaskError,
};
use serde_json::{Value, json};

/// `chatty` reports `input` progress events, asks `go`, reports once more and returns.
fn with_chatty(rt: &Runtime) {
    rt.register(
        KindSpec::new("chatty"),
        |ctx: Context, steps: u32| async move {
            for step in 0..steps {
                ctx.progress(None, format!("step {step}")).await?;
            }
            let go = ctx
                .ask("go", json!({"type": "boolean"}), Duration::MAX)
                .await?;
            ctx.progress(100.0, "done").await?;
            Ok::<_, TaskError>(go)
        },
    )
    .unwrap();
}

fn handle(started: Started) -> longrun_runtime::TaskHandle {
    match started {
        Started::Running(handle) => handle,
        other => panic!("an attended start returns at once, got {other:?}"),
    }
}

/// What `settled_with_events` gave is the task's log through the task it returned.
async fn assert_is_the_log(rt: &Runtime, task: &longrun_runtime::Task, events: &[Arc<Event>]) {
    let log = rt
        .events(task.id, Seq::ZERO, task.last_seq())
        .await
        .unwrap();
    let seqs = |events: &[Arc<Event>]| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(events), seqs(&log));
    assert_eq!(events.last().map(|e| e.seq), Some(task.last_seq()));
    for (kept, read) in events.iter().zip(&log) {
        assert_eq!(kept.change, read.change);
    }
}

#[tokio::test(start_paused = true)]
async fn an_attended_task_is_the_callers_until_it_detaches_it() {
    let rt = runtime();
    with_kinds(&rt);
    let options = || StartOptions::attended().session("s");

    // Ended while its caller waited: the caller has the outcome, the inbox has nothing.
    let echo = handle(rt.start("echo", 1, options()).await.unwrap());
    assert_eq!(echo.settled().await.unwrap().status(), Status::Completed);

    // The caller stops waiting first: once it detaches the task, the outcome is the inbox's.
    let sleep = handle(rt.start("sleep", 2000, options()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sleep.detach().await.unwrap(), "an attended task detaches");
    assert_eq!(sleep.wait().await.unwrap().status(), Status::Completed);

    let drained = rt.inbox("s").drain(10).await.unwrap();
    let tasks: Vec<_> = drained.items().iter().map(|item| item.task).collect();
    assert_eq!(tasks, [sleep.id()], "only the detached task's outcome");
}

#[tokio::test(start_paused = true)]
async fn the_events_kept_for_the_starter_are_its_log() {
    let rt = runtime();
    with_chatty(&rt);
    for steps in [0, 3, 100] {
        let options = StartOptions::attended().keep_events();
        let task = handle(rt.start("chatty", steps, options).await.unwrap());
        // Settled at the question: every event through it (past 64, read from the log).
        let (asked, events) = task.settled_with_events().await.unwrap();
        assert_eq!(asked.status(), Status::InputRequired, "{steps} steps");
        assert_is_the_log(&rt, &asked, &events).await;

        // The kept events were taken: the end's are read.
        task.answer("go", json!(true)).await.unwrap();
        let (ended, events) = task.settled_with_events().await.unwrap();
        assert_eq!(ended.status(), Status::Completed);
        assert_is_the_log(&rt, &ended, &events).await;
    }
    // Without `keep_events`, or for a task that ended before the wait began, the log is read.
    let background = rt
        .start("chatty", 2, StartOptions::background())
        .await
        .unwrap()
        .handle()
        .unwrap();
    let (asked, events) = background.settled_with_events().await.unwrap();
    assert_is_the_log(&rt, &asked, &events).await;
    background.answer("go", json!(false)).await.unwrap();
    background.wait().await.unwrap();
    let (ended, events) = background.settled_with_events().await.unwrap();
    assert_eq!(
        ended.outcome(),
        Some(&longrun_runtime::Outcome::Completed {
            output: Value::Bool(false)
        })
    );
    assert_is_the_log(&rt, &ended, &events).await;
}
