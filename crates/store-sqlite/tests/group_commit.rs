//! Group commit, seen from outside: concurrent writers share commits, and a call the state
//! machine refuses does not take the writes queued beside it down with it.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod support;

use std::sync::Arc;

use longrun_core::{
    Seq,
    state::RefusalReason,
    store::{Error, EventLog, InboxStore, TaskStore},
};
use longrun_store_sqlite::SqliteStore;

use crate::support::{message, new_task, progress, started, step};

/// Many tokio tasks, each writing one task's events and awaiting every ack before its next
/// write (as the runtime does), produce fewer commits than writes: the writes that arrive while
/// a commit is on its way to disk share the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_commits() {
    const WRITERS: u64 = 32;
    const EVENTS: u64 = 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("store.db")).expect("open"));

    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let (mut task, first) = new_task(n);
                store.create(&task, &first).await.expect("create");
                let mut log = vec![first];
                log.push(step(&mut task, 100, started()));
                store.append(&log[1..]).await.expect("start");
                for round in 1..EVENTS {
                    let event = step(&mut task, 100 + round, progress(round as f64));
                    store
                        .append(std::slice::from_ref(&event))
                        .await
                        .expect("append");
                    log.push(event);
                }
                (task, log)
            })
        })
        .collect();
    let mut written = Vec::new();
    for writer in writers {
        written.push(writer.await.expect("a writer panicked"));
    }

    for (task, log) in &written {
        assert_eq!(store.get(task.id).await.expect("get").as_ref(), Some(task));
        assert_eq!(
            &store.read(task.id, Seq::ZERO, 100).await.expect("read"),
            log
        );
    }
    let stats = store.stats();
    assert_eq!(stats.writes, WRITERS * (1 + EVENTS));
    println!(
        "{} writes in {} commits: {:.1} writes per commit",
        stats.writes,
        stats.commits,
        stats.writes as f64 / stats.commits as f64
    );
    assert!(
        stats.commits < stats.writes,
        "no two writes shared a commit: {stats:?}"
    );
}

/// Calls queued together, one of them refused: the refused call fails alone and the others are
/// stored. (Which of them share a batch depends on timing here; the writer's unit tests pin a
/// single batch down.)
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_call_does_not_sink_its_neighbours() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("store.db")).expect("open");
    let (created_as, first) = new_task(1);
    let mut task = created_as.clone();
    let start = step(&mut task, 2, started());
    let halfway = step(&mut task, 3, progress(50.0));

    // Every call is queued before any ack is awaited.
    let created = store.create(&created_as, &first);
    let started = store.append(std::slice::from_ref(&start));
    let replayed = store.append(std::slice::from_ref(&start));
    let pushed = store.push(message("chat", "hi"));
    let progressed = store.append(std::slice::from_ref(&halfway));

    created.await.expect("create");
    started.await.expect("start");
    let replayed = replayed.await;
    assert!(
        matches!(&replayed, Err(Error::Refused { refusal, .. }) if refusal.reason == RefusalReason::OutOfSequence),
        "{replayed:?}"
    );
    pushed.await.expect("push");
    progressed.await.expect("progress");

    assert_eq!(store.get(task.id).await.expect("get"), Some(task.clone()));
    assert_eq!(
        store.read(task.id, Seq::ZERO, 10).await.expect("read"),
        [first, start, halfway]
    );
    let stats = store.stats();
    assert_eq!(stats.writes, 5);
    assert!(stats.commits <= 5, "{stats:?}");
}
