//! Races, checked on purpose: many iterations on the multi-thread runtime, each asserting the
//! invariants that must hold whichever side wins.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use longrun_runtime::{
    AskError, Context, Error, KindSpec, Notice, Options, Runtime, Seq, StartOptions, Status,
    TaskError,
};
use serde_json::{Value, json};

const ROUNDS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_completion_ends_once() {
    let rt = Runtime::new(Options::default());
    rt.register(KindSpec::new("quick"), |_c: Context, _: Value| async move {
        tokio::task::yield_now().await;
        Ok::<_, TaskError>(1)
    })
    .unwrap();
    for _ in 0..ROUNDS {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let options = StartOptions::background().on_terminal(move |_| async move {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let handle = rt
            .start("quick", json!(null), options)
            .await
            .unwrap()
            .handle()
            .unwrap();
        let cancelled = rt.cancel(handle.id()).await;
        let task = handle.wait().await.unwrap();
        match cancelled {
            Ok(returned) => assert_eq!(returned.status(), task.status()),
            Err(Error::Ended { status, .. }) => assert_eq!(status, Status::Completed),
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(matches!(
            task.status(),
            Status::Completed | Status::Cancelled
        ));
        let mut events = rt.subscribe(task.id, Seq::ZERO).await.unwrap();
        let mut ends = 0;
        while let Some(notice) = events.next().await.unwrap() {
            if let Notice::Event(event) = notice {
                ends += usize::from(event.is_terminal());
            }
        }
        assert_eq!(ends, 1);
        // The callback runs after waiters are woken; give it its moment, then check it ran
        // exactly once.
        for _ in 0..1000 {
            if calls.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the callback runs exactly once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_racing_the_timeout_is_either_delivered_or_refused() {
    let rt = Runtime::new(Options::default());
    rt.register(KindSpec::new("ask"), |ctx: Context, _: Value| async move {
        match ctx.ask("q", json!({}), Duration::from_micros(200)).await {
            Ok(answer) => Ok(answer),
            Err(AskError::TimedOut(_)) => Ok(json!("timed out")),
            Err(other) => Err(TaskError::from(other)),
        }
    })
    .unwrap();
    let (mut delivered, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let handle = rt
            .start("ask", json!(null), StartOptions::background())
            .await
            .unwrap()
            .handle()
            .unwrap();
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        let answered = rt.answer(handle.id(), "q", json!(round)).await;
        let task = handle.wait().await.unwrap();
        let output = match task.outcome() {
            Some(longrun_runtime::Outcome::Completed { output }) => output.clone(),
            other => panic!("unexpected outcome {other:?}"),
        };
        match answered {
            Ok(()) => {
                assert_eq!(
                    output,
                    json!(round),
                    "an accepted answer reaches the handler"
                );
                delivered += 1;
            }
            Err(Error::QuestionClosed { .. } | Error::Ended { .. }) => {
                assert_eq!(output, json!("timed out"));
                refused += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(delivered + refused, ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_attaching_mid_burst_see_every_event_once() {
    let rt = Runtime::new(Options {
        subscriber_buffer: 8,
        ..Options::default()
    });
    rt.register(KindSpec::new("burst"), |ctx: Context, n: u64| async move {
        for i in 0..n {
            ctx.progress(None, i.to_string()).await?;
            if i % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok::<_, TaskError>(())
    })
    .unwrap();
    for _ in 0..20 {
        let id = rt
            .start("burst", 300, StartOptions::background())
            .await
            .unwrap()
            .id();
        let subscribers: Vec<_> = (0..8)
            .map(|i| {
                let rt = rt.clone();
                tokio::spawn(async move {
                    for _ in 0..i {
                        tokio::task::yield_now().await;
                    }
                    let mut events = rt.subscribe(id, Seq::ZERO).await.unwrap();
                    let mut seqs = Vec::new();
                    while let Some(notice) = events.next().await.unwrap() {
                        if let Notice::Event(event) = notice {
                            seqs.push(event.seq.as_u64());
                        }
                    }
                    seqs
                })
            })
            .collect();
        for subscriber in subscribers {
            assert_eq!(subscriber.await.unwrap(), (1..=303).collect::<Vec<_>>());
        }
    }
}
