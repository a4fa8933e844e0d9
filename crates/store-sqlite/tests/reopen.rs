//! What a store keeps across close and reopen: tasks, logs, the unfinished set, the writer's
//! view of what may be appended, and the inbox's positions.

mod support;

use std::sync::Arc;

use longrun_core::{
    Event, Seq, Session, Timestamp,
    state::RefusalReason,
    store::{Error, EventLog, InboxStore, TaskStore},
};
use longrun_store_sqlite::SqliteStore;

use crate::support::{completed, message, new_task, progress, started, step};

#[tokio::test(flavor = "multi_thread")]
async fn everything_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).expect("open");

    let (mut done, done_first) = new_task(30);
    let (mut working, working_first) = new_task(10);
    let (waiting, waiting_first) = new_task(20);
    let mut logs = [vec![done_first], vec![working_first], vec![waiting_first]];
    store.create(&done, &logs[0][0]).await.expect("create");
    store.create(&working, &logs[1][0]).await.expect("create");
    store.create(&waiting, &logs[2][0]).await.expect("create");
    logs[0].push(step(&mut done, 40, started()));
    logs[0].push(step(&mut done, 50, completed()));
    store.append(&logs[0][1..]).await.expect("append");
    logs[1].push(step(&mut working, 40, started()));
    logs[1].push(step(&mut working, 41, progress(10.0)));
    store.append(&logs[1][1..]).await.expect("append");

    let session = Session::new("chat");
    for text in ["one", "two", "three"] {
        store.push(message("chat", text)).await.expect("push");
    }
    let before = store.peek(&session, 0, 10).await.expect("peek");
    let last = before.last().expect("three items").position;
    assert_eq!(store.acknowledge(&session, last).await.expect("ack"), 3);
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    for (task, log) in [
        (&done, &logs[0]),
        (&working, &logs[1]),
        (&waiting, &logs[2]),
    ] {
        assert_eq!(store.get(task.id).await.expect("get").as_ref(), Some(task));
        assert_eq!(
            &store.read(task.id, Seq::ZERO, 100).await.expect("read"),
            log
        );
    }
    assert_eq!(
        store.unfinished().await.expect("unfinished"),
        [working.clone(), waiting.clone()],
        "oldest first, the finished one left out"
    );

    // The writer's view came back too: the next event of a running task is accepted, an old
    // one is refused, and nothing more goes into a finished task.
    let next = step(&mut working, 60, progress(20.0));
    store
        .append(&[Arc::clone(&next)])
        .await
        .expect("append after reopen");
    let replay = store.append(&[next]).await;
    assert!(
        matches!(&replay, Err(Error::Refused { refusal, .. }) if refusal.reason == RefusalReason::OutOfSequence),
        "{replay:?}"
    );
    let late = Arc::new(Event {
        task: done.id,
        seq: done.last_seq().next(),
        at: Timestamp::from_millis(70),
        status: done.status(),
        change: progress(1.0),
    });
    let late = store.append(&[late]).await;
    assert!(
        matches!(&late, Err(Error::Refused { refusal, .. }) if refusal.reason == RefusalReason::Terminal),
        "{late:?}"
    );

    // Positions go on from where they were, though the inbox was emptied before the close.
    store.push(message("chat", "four")).await.expect("push");
    let after = store.peek(&session, 0, 10).await.expect("peek");
    assert_eq!(after.len(), 1);
    assert!(
        after[0].position > last,
        "{} reused after reopen",
        after[0].position
    );
    assert_eq!(store.peek(&session, last, 10).await.expect("peek"), after);
    assert_eq!(store.get(working.id).await.expect("get"), Some(working));
}
