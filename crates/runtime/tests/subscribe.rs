//! Subscriptions: order, broadcast, late subscribers, resume, lag, and the all-tasks stream.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::time::Duration;

use common::*;
use longrun_runtime::{
    AllNotice, Context, KindSpec, Notice, Options, Runtime, Seq, StartOptions, TaskError,
};
use serde_json::Value;

fn with_chatty(rt: &Runtime) {
    // Reports `n` progress events, one every 10 ms.
    rt.register(KindSpec::new("chatty"), |ctx: Context, n: u64| async move {
        for i in 0..n {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ctx.progress(None, format!("{i}")).await?;
        }
        Ok::<_, TaskError>(n)
    })
    .unwrap();
}

async fn seqs(mut subscription: longrun_runtime::Subscription) -> (Vec<u64>, usize) {
    let mut seqs = Vec::new();
    let mut lagged = 0;
    while let Some(notice) = subscription.next().await.unwrap() {
        match notice {
            Notice::Event(event) => seqs.push(event.seq.as_u64()),
            Notice::Lagged { .. } => lagged += 1,
        }
    }
    (seqs, lagged)
}

#[tokio::test(start_paused = true)]
async fn every_subscriber_gets_every_event_in_order() {
    let rt = runtime();
    with_chatty(&rt);
    let id = rt
        .start("chatty", 20, StartOptions::new())
        .await
        .unwrap()
        .id();
    let subscribers: Vec<_> = (0..5)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move { seqs(rt.subscribe(id, Seq::ZERO).await.unwrap()).await })
        })
        .collect();
    let expected: Vec<u64> = (1..=23).collect(); // submitted, started, 20 progress, ended
    for subscriber in subscribers {
        assert_eq!(subscriber.await.unwrap().0, expected);
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_subscriber_gets_the_history_and_the_end() {
    let rt = runtime();
    with_chatty(&rt);
    let task = rt
        .start("chatty", 3, StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    let (all, _) = seqs(rt.subscribe(task.id, Seq::ZERO).await.unwrap()).await;
    assert_eq!(all, vec![1, 2, 3, 4, 5, 6]);
    let (rest, _) = seqs(rt.subscribe(task.id, Seq::from_u64(4)).await.unwrap()).await;
    assert_eq!(rest, vec![5, 6]);
    let (nothing, _) = seqs(rt.subscribe(task.id, Seq::from_u64(6)).await.unwrap()).await;
    assert!(nothing.is_empty());
}

#[tokio::test(start_paused = true)]
async fn resuming_mid_stream_has_no_gap_and_no_repeat() {
    let rt = runtime();
    with_chatty(&rt);
    let id = rt
        .start("chatty", 30, StartOptions::new())
        .await
        .unwrap()
        .id();
    let mut first = rt.subscribe(id, Seq::ZERO).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 10 {
        if let Some(Notice::Event(event)) = first.next().await.unwrap() {
            seen.push(event.seq.as_u64());
        }
    }
    let last = first.last_seq();
    drop(first);
    tokio::time::sleep(Duration::from_millis(95)).await;
    let (rest, _) = seqs(rt.subscribe(id, last).await.unwrap()).await;
    seen.extend(rest);
    assert_eq!(seen, (1..=33).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_slow_subscriber_is_told_it_lagged_and_misses_nothing() {
    let rt = Runtime::new(Options {
        subscriber_buffer: 4,
        ..Options::default()
    });
    rt.register(KindSpec::new("burst"), |ctx: Context, n: u64| async move {
        // Give the subscriber time to attach to the live channel before the burst.
        tokio::time::sleep(Duration::from_millis(10)).await;
        for i in 0..n {
            ctx.progress(None, format!("{i}")).await?;
        }
        // Stay alive so the subscriber is still on the live channel when it wakes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, TaskError>(())
    })
    .unwrap();
    // A task that bursts 100 events while the subscriber does not read.
    let id = rt
        .start("burst", 100, StartOptions::new())
        .await
        .unwrap()
        .id();
    let mut slow = rt.subscribe(id, Seq::ZERO).await.unwrap();
    let Some(Notice::Event(first)) = slow.next().await.unwrap() else {
        panic!()
    };
    assert_eq!(first.seq, Seq::FIRST);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rest, lagged) = seqs(slow).await;
    assert!(lagged >= 1, "the subscriber was told it lagged");
    assert_eq!(rest, (2..=103).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn the_all_tasks_stream_carries_every_task() {
    let rt = runtime();
    with_kinds(&rt);
    let mut all = rt.subscribe_all();
    let a = rt
        .start("echo", 1, StartOptions::foreground().owner("alice"))
        .await
        .unwrap()
        .id();
    let b = rt
        .start("echo", 2, StartOptions::foreground().owner("bob"))
        .await
        .unwrap()
        .id();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        match all.next().await.unwrap() {
            AllNotice::Event(published) => seen.push((
                published.event.task,
                published.event.seq.as_u64(),
                published.info.owner.to_string(),
            )),
            AllNotice::Lagged { .. } => panic!("no lag expected"),
        }
    }
    let of = |id| {
        seen.iter()
            .filter(|(t, ..)| *t == id)
            .map(|(_, s, o)| (*s, o.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(a),
        vec![
            (1, "alice".into()),
            (2, "alice".into()),
            (3, "alice".into())
        ]
    );
    assert_eq!(
        of(b),
        vec![(1, "bob".into()), (2, "bob".into()), (3, "bob".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn subscribing_to_an_unknown_task_says_so() {
    let rt = runtime();
    let error = rt
        .subscribe(longrun_runtime::TaskId::random(), Seq::ZERO)
        .await
        .err()
        .unwrap();
    assert!(is_unknown(&error), "{error}");
    let _: Value = serde_json::json!(null);
}
