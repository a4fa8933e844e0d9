//! Checks of what a start asks of a store: idempotency keys unique per owner among the stored
//! tasks (so a repeated start finds the first task, on one node or many), and start times kept.

use std::{sync::Arc, time::Duration};

use longrun_core::{
    NewTask, Owner, Status, Task,
    store::{Error, Filter, Purge, Query, Store},
};
use serde_json::json;

use crate::support::{ALL, Local, assert_stored, at, completed, new_task, started};

/// A task created at `created` under `key`, owned by `owner`.
fn keyed(created: u64, owner: &str, key: &str) -> NewTask {
    NewTask {
        owner: Owner::new(owner),
        idempotency_key: Some(key.to_owned()),
        ..new_task(created)
    }
}

/// Creates `new` and returns the store's answer, without panicking on a refusal.
async fn try_create(store: &dyn Store, new: NewTask) -> (Task, Result<(), Error>) {
    let local = Local::new(new);
    let result = store.create(&local.task, &local.events[0]).await;
    (local.task, result)
}

/// Asserts that `result` is the refusal of a key that names `existing`.
fn assert_taken(result: Result<(), Error>, existing: &Task) {
    match result {
        Err(Error::KeyTaken {
            owner,
            key,
            existing: named,
        }) => {
            assert_eq!(
                named, existing.id,
                "the refusal names the task holding the key"
            );
            assert_eq!(&owner, &existing.owner);
            assert_eq!(Some(&key), existing.idempotency_key.as_ref());
        }
        other => panic!(
            "expected the key to be taken by {}, got {other:?}",
            existing.id
        ),
    }
}

/// A second task under the same owner and key is refused, naming the first, and nothing of it
/// is stored, whether the first is running or has ended. Another owner, or another key, is
/// free.
pub async fn idempotency_keys_are_unique_per_owner(store: Arc<dyn Store>) {
    let store = &*store;
    let mut first = Local::create(store, keyed(1, "alice", "k")).await;
    assert_eq!(first.task.idempotency_key.as_deref(), Some("k"));

    let (second, refused) = try_create(store, keyed(2, "alice", "k")).await;
    assert_taken(refused, &first.task);
    assert_eq!(store.get(second.id).await.expect("get"), None);

    first.step(store, 10, started()).await;
    first.step(store, 11, completed(json!(1))).await;
    let (_, refused) = try_create(store, keyed(12, "alice", "k")).await;
    assert_taken(refused, &first.task);

    let (_, theirs) = try_create(store, keyed(13, "bob", "k")).await;
    theirs.expect("another owner's key is its own");
    let (_, other) = try_create(store, keyed(14, "alice", "k2")).await;
    other.expect("another key is free");
    let (_, unkeyed) = try_create(store, new_task(15)).await;
    unkeyed.expect("tasks without a key never conflict");
    assert_stored(store, &first).await;
}

/// Many creates racing with one key store exactly one task; every other is refused naming it.
pub async fn racing_creates_with_one_key_store_one_task(store: Arc<dyn Store>) {
    const RACERS: u64 = 16;
    let racers: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = Arc::clone(&store);
            #[expect(
                clippy::disallowed_methods,
                reason = "the check races calls from separate tasks on purpose and awaits every one"
            )]
            tokio::spawn(async move { try_create(&*store, keyed(n, "alice", "once")).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.expect("a racer panicked"));
    }
    let winners: Vec<&Task> = outcomes
        .iter()
        .filter(|(_, result)| result.is_ok())
        .map(|(task, _)| task)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one create wins: {outcomes:?}");
    let winner = winners[0].clone();
    for (_, result) in outcomes {
        if let Err(error) = result {
            assert_taken(Err(error), &winner);
        }
    }
    let listed = store
        .list(&Query {
            filter: Filter::default(),
            after: None,
            limit: ALL,
            now: at(0),
        })
        .await
        .expect("list");
    let ids: Vec<_> = listed.tasks.iter().map(|task| task.id).collect();
    assert_eq!(ids, [winner.id]);
}

/// Purging a task frees its key: a later create under it stores a new task.
pub async fn purge_frees_idempotency_keys(store: Arc<dyn Store>) {
    let store = &*store;
    let mut new = keyed(1, "alice", "k");
    new.ttl = Duration::from_millis(10);
    let mut first = Local::create(store, new).await;
    first.step(store, 2, started()).await;
    first.step(store, 3, completed(json!(1))).await;
    let removed = store
        .purge(Purge {
            now: at(100),
            max_finished: ALL,
        })
        .await
        .expect("purge");
    assert_eq!(removed, 1);
    let second = Local::create(store, keyed(200, "alice", "k")).await;
    assert_ne!(second.id(), first.id());
    let (_, refused) = try_create(store, keyed(201, "alice", "k")).await;
    assert_taken(refused, &second.task);
}

/// A task's start time is kept, and read back by `get`, `list` and `unfinished`.
pub async fn start_times_are_kept(store: Arc<dyn Store>) {
    let store = &*store;
    let delayed = Local::create(
        store,
        NewTask {
            start_at: Some(at(60_000)),
            trace: None,
            ..new_task(1)
        },
    )
    .await;
    assert_stored(store, &delayed).await;
    let unfinished = store.unfinished().await.expect("unfinished");
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].start_at, Some(at(60_000)));
    assert_eq!(unfinished[0].status(), Status::Submitted);
}
