//! Idempotent starts: a start repeated under the same key finds the first task instead of
//! making another.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use longrun_core::store::{Purge, Retention};
use longrun_runtime::{Error, Options, Runtime, StartOptions, Started, Status};
use longrun_store_memory::MemoryStore;
use serde_json::json;

fn keyed(key: &str) -> StartOptions {
    StartOptions::background().idempotency_key(key)
}

#[tokio::test(start_paused = true)]
async fn racing_starts_with_one_key_make_one_task() {
    let rt = runtime();
    with_kinds(&rt);
    let starts = (0..16).map(|_| {
        let rt = rt.clone();
        tokio::spawn(async move { rt.start("sleep", 500, keyed("once")).await.unwrap() })
    });
    let mut started = Vec::new();
    for start in starts {
        started.push(start.await.unwrap());
    }
    let created: Vec<_> = started.iter().filter(|s| s.is_new()).collect();
    assert_eq!(created.len(), 1, "{started:?}");
    let id = created[0].id();
    assert!(started.iter().all(|s| s.id() == id), "{started:?}");
    let page = rt.list(Default::default(), None, 100).await.unwrap();
    assert_eq!(page.tasks.len(), 1);
    assert_eq!(page.tasks[0].idempotency_key.as_deref(), Some("once"));
}

#[tokio::test(start_paused = true)]
async fn a_repeat_returns_the_first_task_even_after_it_ended() {
    let rt = runtime();
    with_kinds(&rt);
    let first = rt
        .start(
            "echo",
            json!({"a": 1}),
            StartOptions::foreground().idempotency_key("k"),
        )
        .await
        .unwrap();
    assert!(first.is_new());
    let first = first.finished().unwrap();
    let again = rt
        .start(
            "echo",
            json!({"a": 1}),
            StartOptions::foreground().idempotency_key("k"),
        )
        .await
        .unwrap();
    let Started::Existing(task) = again else {
        panic!("expected the first task, got {again:?}")
    };
    assert_eq!((task.id, task.status()), (first.id, Status::Completed));

    // Another input, or another kind, under the same key is refused.
    let other_input = rt.start("echo", json!({"a": 2}), keyed("k")).await;
    assert!(
        matches!(&other_input, Err(Error::KeyReused { existing, .. }) if *existing == first.id),
        "{other_input:?}"
    );
    let other_kind = rt.start("sleep", 100, keyed("k")).await;
    assert!(
        matches!(other_kind, Err(Error::KeyReused { .. })),
        "{other_kind:?}"
    );

    // Keys are per owner.
    let theirs = rt
        .start("echo", json!({"a": 1}), keyed("k").owner("bob"))
        .await
        .unwrap();
    assert!(theirs.is_new());
    assert_ne!(theirs.id(), first.id);
}

#[tokio::test(start_paused = true)]
async fn a_purged_task_frees_its_key() {
    let store = Arc::new(MemoryStore::new());
    let rt = Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    });
    with_kinds(&rt);
    let options = || {
        StartOptions::foreground()
            .idempotency_key("k")
            .ttl(Duration::from_secs(1))
    };
    let first = rt.start("echo", json!(1), options()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    store
        .purge(Purge {
            now: longrun_core::Timestamp::from_millis(u64::MAX),
            max_finished: usize::MAX,
        })
        .await
        .unwrap();
    let second = rt.start("echo", json!(2), options()).await.unwrap();
    assert!(second.is_new());
    assert_ne!(second.id(), first.id());
}

#[tokio::test(start_paused = true)]
async fn an_expired_task_holds_its_key_until_it_is_purged() {
    let rt = Runtime::new(Options {
        sweep_interval: Duration::from_secs(3600),
        ..Options::default()
    });
    with_kinds(&rt);
    let options = || {
        StartOptions::foreground()
            .idempotency_key("k")
            .ttl(Duration::from_secs(1))
    };
    let first = rt.start("echo", json!(1), options()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rt.get(first.id()).await.is_err(), "expired for readers");
    let again = rt.start("echo", json!(1), options()).await.unwrap();
    assert!(!again.is_new());
    assert_eq!(again.id(), first.id());
}
