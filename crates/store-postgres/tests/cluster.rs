//! Two nodes on one schema: two [`PostgresStore`]s with different node names, as two processes
//! would be. Claims, rescue and fencing, restarts, signals, notices, and group commit.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::{collections::HashSet, future::Future, sync::Arc, time::Duration};

use futures_util::StreamExt;
use longrun_core::{
    CancelReason, Change, Claim, Cluster, Event, Labels, NewTask, Notice, Outcome, Owner, Seq,
    Signal, Signalled, Status, Task, TaskId, Timestamp,
    cluster::NoticeStream,
    store::{Error, Store, TaskStore},
};
use longrun_store_postgres::PostgresStore;
use serde_json::json;

use crate::common::Schema;

/// Long enough that no lease expires during a test that does not wait for it to.
const LONG: Duration = Duration::from_secs(60);
/// How long a test waits for something another node does before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn new_task(kind: &str) -> (Task, Arc<Event>) {
    let (task, first) = Task::create(NewTask {
        id: TaskId::random(),
        kind: kind.to_owned(),
        owner: Owner::default(),
        session: None,
        input: json!({"n": 1}),
        labels: Labels::new(),
        ttl: Duration::from_secs(3_600),
        deadline: None,
        created_at: Timestamp::from_millis(1_700_000_000_000),
        idempotency_key: None,
        start_at: None,
        trace: None,
    });
    (task, Arc::new(first))
}

/// The next event of `task`, folded into it.
fn next(task: &mut Task, change: Change) -> Arc<Event> {
    let status = task
        .state()
        .after(&change)
        .expect("a legal change")
        .status();
    let event = Arc::new(Event {
        task: task.id,
        seq: task.last_seq().next(),
        at: Timestamp::from_millis(1_700_000_001_000),
        status,
        change,
    });
    task.apply(&event).expect("a legal change");
    event
}

fn started() -> Change {
    Change::Started { attempt: 1 }
}

fn completed() -> Change {
    Change::Ended(Outcome::Completed { output: json!(1) })
}

fn kinds(kind: &str) -> Vec<String> {
    vec![kind.to_owned()]
}

/// Calls `attempt` until it gives something, for at most [`PATIENCE`].
async fn eventually<T, F: Future<Output = Option<T>>>(mut attempt: impl FnMut() -> F) -> T {
    let poll = async {
        loop {
            if let Some(value) = attempt().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, poll)
        .await
        .expect("the other node did not get there in time")
}

/// The first notice on `stream` that `wanted` accepts, skipping the others.
async fn notice(stream: &mut NoticeStream, wanted: impl Fn(&Notice) -> bool) -> Notice {
    let find = async {
        while let Some(notice) = stream.next().await {
            if wanted(&notice) {
                return notice;
            }
        }
        panic!("the notice stream ended");
    };
    tokio::time::timeout(PATIENCE, find)
        .await
        .expect("the notice did not arrive in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_hand_a_task_to_both_nodes() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let a = schema.connect("node-a", LONG).await;
    let b = schema.connect("node-b", LONG).await;

    let mut created = HashSet::new();
    let mut acks = Vec::new();
    for _ in 0..300 {
        let (task, first) = new_task("work");
        created.insert(task.id);
        acks.push(a.create(&task, &first));
    }
    for ack in acks {
        ack.await.expect("create");
    }

    // Several claimers per node, all at once, each claiming a few at a time until none is left.
    let claimers: Vec<_> = [&a, &a, &b, &b, &b]
        .into_iter()
        .map(|store| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                loop {
                    let batch = store
                        .claim(Claim::new(kinds("work"), 7))
                        .await
                        .expect("claim");
                    if batch.is_empty() {
                        return (store, claimed);
                    }
                    claimed.extend(batch.into_iter().map(|task| task.id));
                }
            })
        })
        .collect();
    let mut by_a = HashSet::new();
    let mut by_b = HashSet::new();
    let mut total = 0;
    for claimer in claimers {
        let (store, claimed) = claimer.await.expect("a claimer panicked");
        total += claimed.len();
        let mine = if store.node().as_str() == "node-a" {
            &mut by_a
        } else {
            &mut by_b
        };
        mine.extend(claimed);
    }
    assert_eq!(total, created.len(), "a task was claimed twice");
    assert!(by_a.is_disjoint(&by_b), "both nodes claimed a task");
    let all: HashSet<TaskId> = by_a.union(&by_b).copied().collect();
    assert_eq!(all, created, "every task was claimed");

    // Each node writes its own tasks, and is fenced off the other's.
    let (id_a, id_b) = (
        *by_a.iter().next().expect("a claimed some"),
        *by_b.iter().next().expect("b claimed some"),
    );
    let mut task_a = a.get(id_a).await.expect("get").expect("stored");
    let mut task_b = b.get(id_b).await.expect("get").expect("stored");
    a.append(&[next(&mut task_a, started())])
        .await
        .expect("a writes its task");
    let result = a.append(&[next(&mut task_b.clone(), started())]).await;
    assert!(
        matches!(result, Err(Error::Fenced(id)) if id == id_b),
        "{result:?}"
    );
    b.append(&[next(&mut task_b, started())])
        .await
        .expect("b writes its task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_rescued_and_the_stale_holder_fenced_off() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let ttl = Duration::from_millis(300);
    let a = schema.connect("node-a", ttl).await;
    let b = schema.connect("node-b", ttl).await;

    let (mut task, first) = new_task("rescue");
    a.create_held(&task, &first).await.expect("create held");
    a.append(&[next(&mut task, started())])
        .await
        .expect("a writes the task it holds");

    // Node a stops renewing, as if it had died; b claims the task once a's lease runs out.
    let rescued = eventually(|| async {
        let claimed = b
            .claim(Claim::new(kinds("rescue"), 10))
            .await
            .expect("claim");
        (!claimed.is_empty()).then_some(claimed)
    })
    .await;
    assert_eq!(rescued, [task.clone()], "b gets the task as a left it");
    assert_eq!(rescued[0].status(), Status::Working, "it was interrupted");

    // a's late completion is refused, and its renewal tells it the task is lost.
    let late = next(&mut task.clone(), completed());
    let result = a.append(&[late]).await;
    assert!(
        matches!(result, Err(Error::Fenced(id)) if id == task.id),
        "{result:?}"
    );
    let renewal = a.renew().await.expect("renew");
    assert_eq!((renewal.renewed, renewal.lost), (0, vec![task.id]));
    let renewal = a.renew().await.expect("renew");
    assert!(renewal.lost.is_empty(), "a lost task is reported once");

    // b runs it again and ends it; the ended task is nobody's any more.
    b.append(&[next(&mut task, Change::Started { attempt: 2 })])
        .await
        .expect("b writes the task it rescued");
    assert_eq!(b.renew().await.expect("renew").renewed, 1);
    b.append(&[next(&mut task, completed())])
        .await
        .expect("b ends it");
    let renewal = b.renew().await.expect("renew");
    assert_eq!((renewal.renewed, renewal.lost.len()), (0, 0));
    assert_eq!(b.get(task.id).await.expect("get"), Some(task));
    assert!(
        b.claim(Claim::new(kinds("rescue"), 10))
            .await
            .expect("claim")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_takes_its_tasks_back_at_once() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let a = schema.connect("node-a", LONG).await;
    let b = schema.connect("node-b", LONG).await;

    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (task, first) = new_task("job");
        a.create_held(&task, &first).await.expect("create held");
        tasks.push(task);
    }
    assert!(
        b.claim(Claim::new(kinds("job"), 10))
            .await
            .expect("claim")
            .is_empty(),
        "live leases are nobody else's"
    );
    assert!(
        a.claim(Claim::new(kinds("job"), 10))
            .await
            .expect("claim")
            .is_empty(),
        "a node never claims what it holds"
    );

    // The process dies and comes back under the same name: its leases have 60 s to go, yet it
    // takes its tasks back at its first claim.
    drop(a);
    let a = schema.connect("node-a", LONG).await;
    let mut reclaimed: Vec<TaskId> = a
        .claim(Claim::new(kinds("job"), 10))
        .await
        .expect("claim")
        .into_iter()
        .map(|task| task.id)
        .collect();
    let mut expected: Vec<TaskId> = tasks.iter().map(|task| task.id).collect();
    reclaimed.sort();
    expected.sort();
    assert_eq!(reclaimed, expected);
    assert!(
        b.claim(Claim::new(kinds("job"), 10))
            .await
            .expect("claim")
            .is_empty()
    );
    let mut first = tasks.remove(0);
    a.append(&[next(&mut first, started())])
        .await
        .expect("the new incarnation writes");

    // A release hands a task over at once.
    a.release(&[first.id]).await.expect("release");
    let handed = b.claim(Claim::new(kinds("job"), 10)).await.expect("claim");
    assert_eq!(handed, [first.clone()]);
    let result = a.append(&[next(&mut first.clone(), completed())]).await;
    assert!(
        matches!(result, Err(Error::Fenced(id)) if id == first.id),
        "{result:?}"
    );
    assert_eq!(a.renew().await.expect("renew").renewed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_are_taken_by_the_holder_only_in_order() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let a = schema.connect("node-a", LONG).await;
    let b = schema.connect("node-b", LONG).await;

    let (task, first) = new_task("ask");
    a.create_held(&task, &first).await.expect("create held");
    let answer = Signal::Answer {
        key: "q".into(),
        value: json!({"yes": true}),
    };
    let cancel = Signal::Cancel {
        reason: CancelReason::Requested {
            by: Some("b".into()),
        },
    };
    b.signal(task.id, answer.clone()).await.expect("signal");
    b.signal(task.id, cancel.clone()).await.expect("signal");

    assert!(
        b.take_signals().await.expect("take").is_empty(),
        "b does not hold the task"
    );
    let taken = a.take_signals().await.expect("take");
    assert_eq!(
        taken,
        [
            Signalled {
                task: task.id,
                signal: answer
            },
            Signalled {
                task: task.id,
                signal: cancel
            },
        ]
    );
    assert!(
        a.take_signals().await.expect("take").is_empty(),
        "taken once"
    );

    let ghost = TaskId::random();
    let result = b.signal(
        ghost,
        Signal::Cancel {
            reason: CancelReason::Stopped,
        },
    );
    assert!(matches!(result.await, Err(Error::NotFound(id)) if id == ghost));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_the_other_node() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let a = schema.connect("node-a", LONG).await;
    let b = schema.connect("node-b", LONG).await;
    let mut notices = b.notices();

    let (unheld, first) = new_task("n");
    a.create(&unheld, &first).await.expect("create");
    notice(&mut notices, |n| *n == Notice::Claimable).await;

    let (mut held, first) = new_task("n");
    a.create_held(&held, &first).await.expect("create held");
    a.append(&[next(&mut held, started())])
        .await
        .expect("append");
    let appended = Notice::Appended {
        task: held.id,
        seq: Seq::from_u64(2),
    };
    notice(&mut notices, |n| *n == appended).await;

    a.signal(
        held.id,
        Signal::Cancel {
            reason: CancelReason::Stopped,
        },
    )
    .await
    .expect("signal");
    let signalled = Notice::Signalled { task: held.id };
    notice(&mut notices, |n| *n == signalled).await;

    a.release(&[held.id]).await.expect("release");
    notice(&mut notices, |n| *n == Notice::Claimable).await;
}

/// Many writes called before any is awaited land in few commits, with at most one `NOTIFY`
/// each. The runtime has one thread, so the writer cannot start a batch before every write has
/// been called: what is measured is batching, not timing.
#[tokio::test(flavor = "current_thread")]
async fn a_batch_of_many_writes_is_one_commit_and_one_notify() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let store = schema.connect("node-a", LONG).await;
    let watcher = schema.connect("node-b", LONG).await;
    let mut other = watcher.notices();

    const TASKS: usize = 200;
    let mut tasks = Vec::new();
    let mut acks = Vec::new();
    for _ in 0..TASKS {
        let (task, first) = new_task("bulk");
        acks.push(store.create_held(&task, &first));
        tasks.push(task);
    }
    for ack in acks {
        ack.await.expect("create held");
    }

    let before = store.stats();
    let mut acks = Vec::new();
    for task in &mut tasks {
        acks.push(store.append(&[next(task, started())]));
        acks.push(store.append(&[next(task, completed())]));
    }
    for ack in acks {
        ack.await.expect("append");
    }
    let after = store.stats();
    let (commits, writes, notifies) = (
        after.commits - before.commits,
        after.writes - before.writes,
        after.notifies - before.notifies,
    );
    eprintln!(
        "{writes} appends, {} events: {commits} commits, {notifies} notifies",
        after.events - before.events
    );
    assert_eq!(writes, 2 * TASKS as u64);
    assert_eq!(commits, 1, "everything queued went into one commit");
    assert!(notifies <= commits);
    // The other node hears of every end, one by one or, when a payload would be too long,
    // as `Missed`.
    let last = Notice::Appended {
        task: tasks[TASKS - 1].id,
        seq: Seq::from_u64(3),
    };
    notice(&mut other, |n| *n == last || *n == Notice::Missed).await;
    assert!(store.unfinished().await.expect("unfinished").is_empty());
    let dead = store.dead_tuples().await.expect("dead tuples");
    eprintln!("dead tuples after the batch: {dead}");
}

/// The store is a [`Store`] and a [`Cluster`] at once, as the runtime takes it.
#[test]
fn the_store_is_a_clustered_store() {
    fn clustered<S: Store + Cluster>() {}
    clustered::<PostgresStore>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_task_is_not_claimed_before_its_start_time() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let a = schema.connect("node-a", LONG).await;
    let b = schema.connect("node-b", LONG).await;
    let now = longrun_core::Clock::now(&longrun_core::SystemClock);

    let (mut later, first) = new_task("delayed");
    later.start_at = Some(now.saturating_add(Duration::from_secs(3_600)));
    let (mut due, due_first) = new_task("delayed");
    due.start_at = Some(Timestamp::from_millis(1_700_000_000_500));
    // Created by a node that does not run it (unheld), as a released task would be.
    a.create(&later, &first).await.expect("create");
    a.create(&due, &due_first).await.expect("create");

    let claimed: Vec<TaskId> = b
        .claim(Claim::new(kinds("delayed"), 10))
        .await
        .expect("claim")
        .into_iter()
        .map(|task| task.id)
        .collect();
    assert_eq!(
        claimed,
        [due.id],
        "only the task whose start time has passed"
    );
    assert!(
        a.claim(Claim::new(kinds("delayed"), 10))
            .await
            .expect("claim")
            .is_empty()
    );
    let stored = a.get(later.id).await.expect("get").expect("stored");
    assert_eq!(stored.start_at, later.start_at);

    // A cancel for it does not wait for its start time: a node claims it to apply the signal.
    let cancel = Signal::Cancel {
        reason: CancelReason::Requested { by: None },
    };
    a.signal(later.id, cancel).await.expect("signal");
    let claimed: Vec<TaskId> = a
        .claim(Claim::new(kinds("delayed"), 10))
        .await
        .expect("claim")
        .into_iter()
        .map(|task| task.id)
        .collect();
    assert_eq!(claimed, [later.id]);
}

/// Two nodes creating tasks under the same keys at the same moment: each key ends with one
/// task, and the other node's create is refused naming it (a writer that loses the race on the
/// unique index runs its batch again and finds the key taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_one_key_store_one_task() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let a = schema.connect("node-a", LONG).await;
    let b = schema.connect("node-b", LONG).await;
    for round in 0..20 {
        let key = format!("key-{round}");
        let racer = |store: Arc<PostgresStore>, key: String| {
            tokio::spawn(async move {
                let (mut task, first) = new_task("job");
                task.idempotency_key = Some(key);
                let result = store.create_held(&task, &first).await;
                (task.id, result)
            })
        };
        let (one, other) = tokio::join!(racer(a.clone(), key.clone()), racer(b.clone(), key));
        let (one, other) = (one.expect("racer"), other.expect("racer"));
        let (winner, loser) = match (&one.1, &other.1) {
            (Ok(()), Err(_)) => (one, other),
            (Err(_), Ok(())) => (other, one),
            outcomes => panic!("round {round}: expected one winner, got {outcomes:?}"),
        };
        assert!(
            matches!(loser.1, Err(Error::KeyTaken { existing, .. }) if existing == winner.0),
            "round {round}: {:?}",
            loser.1
        );
        assert_eq!(a.get(loser.0).await.expect("get"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_claimed_only_for_signals_is_claimed_once_a_signal_waits() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let a = schema.connect("node-a", LONG).await;
    let (task, first) = new_task("gated");
    a.create(&task, &first).await.expect("create unheld");
    let only_signalled = || Claim {
        kinds: Vec::new(),
        signalled: kinds("gated"),
        limit: 10,
    };
    assert!(
        a.claim(only_signalled()).await.expect("claim").is_empty(),
        "no signal waits: a node that cannot run the kind leaves the task"
    );
    let cancel = Signal::Cancel {
        reason: CancelReason::Requested { by: None },
    };
    a.signal(task.id, cancel).await.expect("signal");
    let claimed = a.claim(only_signalled()).await.expect("claim");
    assert_eq!(claimed, [task]);
}
