//! Unit tests of what the conformance suite cannot see: index upkeep across shards, and memory
//! given back once everything is gone.

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use longrun_core::{
    Change, Event, Labels, NewTask, Outcome, Owner, Task, TaskId, Timestamp,
    store::{Error, Purge, Retention, TaskStore},
};
use serde_json::json;

use crate::MemoryStore;

/// Every future this store returns is complete at once; waiting for it needs no runtime.
fn now<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a memory store future was not ready at once"),
    }
}

fn ms(millis: u64) -> Timestamp {
    Timestamp::from_millis(millis)
}

fn new_task(created: u64) -> NewTask {
    NewTask {
        id: TaskId::random(),
        kind: "k".into(),
        owner: Owner::default(),
        session: None,
        input: json!(null),
        labels: Labels::new(),
        ttl: Duration::from_millis(100),
        deadline: None,
        created_at: ms(created),
        idempotency_key: None,
        start_at: None,
        trace: None,
    }
}

/// The next event of `task` at `at`, folded into `task`.
fn next(task: &mut Task, at: u64, change: Change) -> Arc<Event> {
    let status = task
        .state()
        .after(&change)
        .expect("a legal change")
        .status();
    let event = Arc::new(Event {
        task: task.id,
        seq: task.last_seq().next(),
        at: ms(at),
        status,
        change,
    });
    task.apply(&event).expect("a legal change");
    event
}

fn done() -> Change {
    Change::Ended(Outcome::Completed { output: json!(1) })
}

fn create(store: &MemoryStore, created: u64) -> Task {
    let (task, first) = Task::create(new_task(created));
    now(store.create(&task, &Arc::new(first))).expect("create");
    task
}

fn check(store: &MemoryStore) {
    for shard in store.shards.iter() {
        shard.lock().check();
    }
}

fn count(store: &MemoryStore) -> usize {
    store
        .shards
        .iter()
        .map(|shard| shard.lock().tasks().count())
        .sum()
}

#[test]
fn indexes_follow_single_appends_batches_and_purges() {
    let store = MemoryStore::new();
    let mut tasks: Vec<Task> = (0..200).map(|n| create(&store, n)).collect();
    check(&store);

    // One event at a time for the first half, ending every other task.
    for (n, task) in (0..).zip(&mut tasks[..100]) {
        let started = next(task, 1_000, Change::Started { attempt: 1 });
        now(store.append(&[started])).expect("append");
        if n % 2 == 0 {
            let end = next(task, 1_000 + n, done());
            now(store.append(&[end])).expect("append");
        }
    }
    check(&store);

    // Batches over many shards for the second half, ending them all.
    for group in tasks[100..].chunks_mut(10) {
        let mut batch = Vec::new();
        for (n, task) in (0..).zip(group.iter_mut()) {
            batch.push(next(task, 2_000, Change::Started { attempt: 1 }));
            batch.push(next(task, 2_000 + n, done()));
        }
        now(store.append(&batch)).expect("append a batch");
    }
    check(&store);
    for task in &tasks {
        assert_eq!(now(store.get(task.id)).expect("get").as_ref(), Some(task));
    }

    // The first half's ended tasks expire at 1_100 + n; purge some of them, then cap the rest.
    let removed = now(store.purge(Purge {
        now: ms(1_150),
        max_finished: usize::MAX,
    }))
    .expect("purge");
    assert_eq!(
        removed, 26,
        "ends at 1_000 + 0, 2, …, 50, plus a ttl of 100"
    );
    check(&store);
    let removed = now(store.purge(Purge {
        now: ms(1_150),
        max_finished: 30,
    }))
    .expect("purge");
    assert_eq!(removed, 150 - 26 - 30);
    check(&store);
    assert_eq!(
        count(&store),
        50 + 30,
        "the unfinished and the capped survivors"
    );
}

#[test]
fn a_refused_batch_leaves_no_trace_in_the_indexes() {
    let store = MemoryStore::new();
    let mut a = create(&store, 1);
    let mut b = create(&store, 2);
    let before = (a.clone(), b.clone());
    let batch = [
        next(&mut a, 10, Change::Started { attempt: 1 }),
        next(&mut a, 11, done()),
        next(&mut b, 12, Change::Started { attempt: 1 }),
        // `b` is working now: rejecting it is not allowed.
        Arc::new(Event {
            task: b.id,
            seq: b.last_seq().next(),
            at: ms(13),
            status: longrun_core::Status::Rejected,
            change: Change::Ended(Outcome::Rejected { error: "no".into() }),
        }),
    ];
    let result = now(store.append(&batch));
    assert!(matches!(result, Err(Error::Refused { task, .. }) if task == b.id));
    check(&store);
    assert_eq!(now(store.get(a.id)).expect("get"), Some(before.0));
    assert_eq!(now(store.get(b.id)).expect("get"), Some(before.1));
    let removed = now(store.purge(Purge {
        now: ms(u64::MAX),
        max_finished: 0,
    }))
    .expect("purge");
    assert_eq!(removed, 0, "no task ended");
}

#[test]
fn a_task_stored_already_ended_is_purged_like_any_other() {
    let store = MemoryStore::new();
    let (mut task, first) = Task::create(new_task(0));
    let mut events = vec![Arc::new(first)];
    events.push(next(&mut task, 5, Change::Started { attempt: 1 }));
    events.push(next(&mut task, 10, done()));
    now(store.create(&task, events.last().expect("an event"))).expect("create");
    check(&store);
    let removed = now(store.purge(Purge {
        now: ms(110),
        max_finished: usize::MAX,
    }))
    .expect("purge");
    assert_eq!(removed, 1);
    check(&store);
}

#[test]
fn memory_is_given_back_once_everything_expired() {
    let store = MemoryStore::new();
    for n in 0..5_000 {
        let mut task = create(&store, n);
        let started = next(&mut task, 10_000, Change::Started { attempt: 1 });
        let end = next(&mut task, 10_001, done());
        now(store.append(&[started])).expect("append");
        now(store.append(&[end])).expect("append");
    }
    assert!(store.shards.iter().all(|shard| shard.lock().capacity() > 0));

    let removed = now(store.purge(Purge {
        now: ms(20_000),
        max_finished: usize::MAX,
    }))
    .expect("purge");
    assert_eq!(removed, 5_000);
    check(&store);
    for shard in store.shards.iter() {
        assert_eq!(shard.lock().capacity(), 0, "an empty shard keeps no table");
    }
}

#[test]
fn shard_count_is_a_power_of_two() {
    let store = MemoryStore::new();
    assert!(store.shards.len().is_power_of_two());
    assert!(store.shards.len() >= 8);
}
