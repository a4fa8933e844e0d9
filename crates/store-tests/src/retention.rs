//! Checks of [`Retention`](longrun_core::store::Retention): what a purge removes, and what it
//! must never remove.

use std::{sync::Arc, time::Duration};

use longrun_core::{
    Status, Task,
    store::{Purge, Store},
};
use serde_json::json;

use crate::support::{Local, assert_stored, at, completed, log, new_task, started};

/// A task created at `created`, started, and ended at `finished`, kept for `ttl` after.
async fn finished(store: &dyn Store, created: u64, finished: u64, ttl: Duration) -> Local {
    let mut new = new_task(created);
    new.ttl = ttl;
    let mut local = Local::create(store, new).await;
    local.step(store, finished - 1, started()).await;
    local
        .step(store, finished, completed(json!(finished)))
        .await;
    local
}

async fn purge(store: &dyn Store, now: u64, max_finished: usize) -> usize {
    store
        .purge(Purge {
            now: at(now),
            max_finished,
        })
        .await
        .expect("purge")
}

async fn assert_gone(store: &dyn Store, local: &Local) {
    assert_eq!(
        store.get(local.id()).await.expect("get"),
        None,
        "{}",
        local.id()
    );
    assert!(
        log(store, local.id()).await.is_empty(),
        "the events of {} outlived it",
        local.id()
    );
}

/// A purge removes the finished tasks whose end plus ttl is at or before `now`, with their
/// events, and keeps every other task whole: finished ones not yet expired, and unfinished
/// ones however old.
pub async fn purge_removes_expired(store: Arc<dyn Store>) {
    let store = &*store;
    let ms = Duration::from_millis;
    let expired = finished(store, 0, 10, ms(100)).await;
    let on_the_dot = finished(store, 1, 20, ms(90)).await;
    let fresh = finished(store, 2, 50, ms(61)).await;
    let mut running = Local::create(store, new_task(0)).await;
    running.step(store, 1, started()).await;
    let waiting = Local::create(store, new_task(0)).await;

    assert_eq!(
        purge(store, 109, usize::MAX).await,
        0,
        "nothing has expired yet"
    );
    assert_eq!(purge(store, 110, usize::MAX).await, 2);
    assert_gone(store, &expired).await;
    assert_gone(store, &on_the_dot).await;
    for kept in [&fresh, &running, &waiting] {
        assert_stored(store, kept).await;
    }
    assert_eq!(
        purge(store, 110, usize::MAX).await,
        0,
        "a purge is idempotent"
    );

    assert_eq!(purge(store, 1_000_000_000, usize::MAX).await, 1);
    assert_gone(store, &fresh).await;
    assert_stored(store, &running).await;
    assert_stored(store, &waiting).await;
}

/// Beyond `max_finished`, a purge removes the earliest-finished tasks first (by end time, then
/// id), whatever their creation order, and never an unfinished task, even with a cap of zero.
pub async fn purge_caps_finished_earliest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let hour = Duration::from_secs(3_600);
    // Created in the opposite order to their ends, so a store that removes the oldest-created
    // fails; two end at the same time, so the tie is broken by id.
    let mut done = Vec::new();
    for (created, ended) in [
        (50, 100),
        (40, 200),
        (30, 300),
        (20, 300),
        (10, 400),
        (5, 500),
    ] {
        done.push(finished(store, created, ended, hour).await.task);
    }
    let running = Local::create(store, new_task(0)).await;
    done.sort_by_key(|task: &Task| (task.finished_at(), task.id));

    assert_eq!(purge(store, 1_000, 10).await, 0, "under the cap");
    assert_eq!(purge(store, 1_000, 6).await, 0, "at the cap");
    assert_eq!(purge(store, 1_000, 2).await, 4);
    for task in &done[..4] {
        assert_eq!(store.get(task.id).await.expect("get"), None, "{}", task.id);
    }
    for task in &done[4..] {
        assert_eq!(store.get(task.id).await.expect("get").as_ref(), Some(task));
    }

    assert_eq!(purge(store, 1_000, 0).await, 2);
    assert_eq!(purge(store, 1_000, 0).await, 0);
    assert_stored(store, &running).await;
    assert_eq!(
        store.unfinished().await.expect("unfinished"),
        [running.task]
    );

    // Expiry and the cap in one purge: both count.
    let old = finished(store, 0, 600, Duration::from_millis(10)).await;
    let newer = finished(store, 0, 700, hour).await;
    let newest = finished(store, 0, 800, hour).await;
    assert_eq!(purge(store, 650, 1).await, 2);
    assert_gone(store, &old).await;
    assert_gone(store, &newer).await;
    assert_stored(store, &newest).await;
    assert_eq!(newest.task.status(), Status::Completed);
}
