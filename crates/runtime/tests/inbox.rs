//! The agent inbox: messages and detached outcomes, drained with acknowledgement.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::time::Duration;

use common::*;
use longrun_core::inbox::InboxEntry;
use longrun_runtime::{Context, KindSpec, Runtime, StartOptions, Status, TaskError};
use serde_json::Value;

fn with_notifier(rt: &Runtime) {
    rt.register(
        KindSpec::new("notifier"),
        |ctx: Context, _: Value| async move {
            ctx.notify_agent("halfway there", false).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            ctx.notify_agent("need you", true).await?;
            Ok::<_, TaskError>("done")
        },
    )
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn background_outcomes_and_messages_wait_for_the_next_turn() {
    let rt = runtime();
    with_kinds(&rt);
    with_notifier(&rt);
    let inbox = rt.inbox("chat-1");
    assert!(inbox.drain(10).await.unwrap().is_empty());

    rt.start("notifier", (), StartOptions::background().session("chat-1"))
        .await
        .unwrap();
    // Foreground outcomes go to the caller, not the inbox.
    rt.start("echo", 1, StartOptions::foreground().session("chat-1"))
        .await
        .unwrap();
    // Other sessions are not mixed in.
    rt.start("echo", 2, StartOptions::background().session("chat-2"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let drained = inbox.drain(10).await.unwrap();
    let entries: Vec<_> = drained.items().iter().map(|i| i.entry.clone()).collect();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(
        matches!(&entries[0], InboxEntry::Message { message, trigger: false } if message == "halfway there")
    );
    assert!(
        matches!(&entries[1], InboxEntry::Message { message, trigger: true } if message == "need you")
    );
    assert!(matches!(&entries[2], InboxEntry::Outcome { kind, .. } if kind == "notifier"));
    assert_eq!(drained.ack().await.unwrap(), 3);
    assert!(
        inbox.drain(10).await.unwrap().is_empty(),
        "nothing is delivered twice"
    );
    assert_eq!(rt.inbox("chat-2").drain(10).await.unwrap().items().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unacknowledged_drain_is_delivered_again() {
    let rt = runtime();
    with_kinds(&rt);
    rt.start("echo", 1, StartOptions::background().session("s"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let inbox = rt.inbox("s");
    let first = inbox.drain(10).await.unwrap();
    assert_eq!(first.items().len(), 1);
    drop(first);
    let again = inbox.drain(10).await.unwrap();
    assert_eq!(
        again.items().len(),
        1,
        "nothing is lost before acknowledgement"
    );
    again.ack().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn detached_outcomes_reach_the_inbox() {
    let rt = runtime();
    with_kinds(&rt);
    let started = rt
        .start(
            "sleep",
            2000,
            StartOptions::detach_after(Duration::from_millis(500)).session("s"),
        )
        .await
        .unwrap();
    let handle = started.handle().expect("detached");
    assert_eq!(handle.wait().await.unwrap().status(), Status::Completed);
    let drained = rt.inbox("s").drain(10).await.unwrap();
    assert_eq!(drained.items().len(), 1);
    assert_eq!(drained.items()[0].task, handle.id());
}

#[tokio::test(start_paused = true)]
async fn an_agent_is_woken_instead_of_polling() {
    let rt = runtime();
    with_kinds(&rt);
    let inbox = rt.inbox("s");
    let waiter = tokio::spawn({
        let inbox = inbox.clone();
        async move { inbox.ready().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    rt.start("sleep", 300, StartOptions::background().session("s"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Ready at once when something is already waiting.
    inbox.ready().await.unwrap();
}
