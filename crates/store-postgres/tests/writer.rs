//! The writer's behaviour beyond the store contract: a failing call fails alone, and lost
//! connections are opened again.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use longrun_core::{
    Cluster, Event, Labels, NewTask, Notice, Owner, Task, TaskId, Timestamp,
    store::{Error, TaskStore},
};
use serde_json::json;

use crate::common::Schema;

fn new_task(kind: &str) -> (Task, Arc<Event>) {
    let (task, first) = Task::create(NewTask {
        id: TaskId::random(),
        kind: kind.to_owned(),
        owner: Owner::default(),
        session: None,
        input: json!(null),
        labels: Labels::new(),
        ttl: Duration::from_secs(60),
        deadline: None,
        created_at: Timestamp::from_millis(1_700_000_000_000),
        idempotency_key: None,
        start_at: None,
        trace: None,
    });
    (task, Arc::new(first))
}

/// A call the database refuses (here, text PostgreSQL cannot store) fails its batch's
/// transaction; the writer then applies the batch's calls one by one, so only that call fails.
/// One thread: every create is queued before the writer starts the batch.
#[tokio::test(flavor = "current_thread")]
async fn a_call_the_database_refuses_fails_alone() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let store = schema.connect("writer-test", Duration::from_secs(60)).await;

    let good: Vec<_> = (0..3).map(|_| new_task("fine")).collect();
    let bad = new_task("nul\0byte");
    let mut acks = Vec::new();
    for (task, first) in &good[..2] {
        acks.push(store.create(task, first));
    }
    let refused = store.create(&bad.0, &bad.1);
    acks.push(store.create(&good[2].0, &good[2].1));

    for ack in acks {
        ack.await.expect("the other creates commit");
    }
    assert!(matches!(refused.await, Err(Error::Backend(_))));
    for (task, _) in &good {
        assert_eq!(store.get(task.id).await.expect("get").as_ref(), Some(task));
    }
    assert_eq!(store.get(bad.0.id).await.expect("get"), None);
}

/// The writer's and the listener's connections are killed; the next writes are applied on a
/// new connection, and watchers are told they may have missed notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_are_opened_again() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let node = format!("kill-{}", uuid::Uuid::new_v4().simple());
    let store = schema.connect(&node, Duration::from_secs(60)).await;
    let mut notices = store.notices();
    let (task, first) = new_task("k");
    store.create(&task, &first).await.expect("create");

    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name IN ($1, $2)",
            &[
                &format!("longrun-writer:{node}"),
                &format!("longrun-listener:{node}"),
            ],
        )
        .await
        .expect("terminate");
    assert_eq!(
        killed.len(),
        2,
        "the writer's and the listener's connections"
    );

    // A write racing the news of the kill may fail (its outcome unknown); the writer opens a
    // new connection for the next one.
    let written = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (task, first) = new_task("k");
            if store.create(&task, &first).await.is_ok() {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the writer never reconnected");
    assert_eq!(store.get(written.id).await.expect("get"), Some(written));

    let missed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(notice) = notices.next().await {
            if notice == Notice::Missed {
                return true;
            }
        }
        false
    })
    .await
    .expect("the listener never reconnected");
    assert!(missed);
    // And it listens again: a new claimable task is announced.
    let (task, first) = new_task("k");
    store.create(&task, &first).await.expect("create");
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(notice) = notices.next().await {
            if notice == Notice::Claimable {
                return true;
            }
        }
        false
    })
    .await
    .expect("no notice after reconnecting");
    assert!(heard);
}
