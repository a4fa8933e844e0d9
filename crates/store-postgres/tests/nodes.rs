//! Two runtimes (two nodes) on one PostgreSQL schema: claims, cross-node cancel and answer,
//! cross-node subscription and waiting, and the rescue of a dead node's tasks.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use longrun_core::{NewTask, Task, TaskId, Timestamp, store::TaskStore as _};
use longrun_runtime::{
    CancelReason, Context, KindSpec, Notice, Options, Outcome, RestartPolicy, Runtime, Seq,
    StartOptions, Status, TaskError,
};
use longrun_store_postgres::PostgresStore;
use serde_json::{Value, json};

/// Short leases, so a dead node's tasks are claimable within a second.
const LEASE: Duration = Duration::from_millis(600);

fn node(store: Arc<PostgresStore>) -> Runtime {
    Runtime::new(Options {
        renew_interval: LEASE / 3,
        ..Options::clustered(store)
    })
}

/// `park` waits to be cancelled (and says so); `ask` asks once and returns the answer;
/// `fragile` runs until cancelled and fails after a crash; `steady` asks, then re-runs after a
/// crash.
fn kinds(runtime: &Runtime, cancelled: Arc<AtomicBool>) {
    runtime
        .register(KindSpec::new("park"), move |ctx: Context, _: Value| {
            let cancelled = cancelled.clone();
            async move {
                ctx.cancelled().await;
                cancelled.store(true, Ordering::SeqCst);
                Ok::<_, TaskError>(())
            }
        })
        .unwrap();
    runtime
        .register(KindSpec::new("ask"), |ctx: Context, _: Value| async move {
            let answer = ctx
                .ask("q", json!({"type": "string"}), Duration::MAX)
                .await?;
            Ok::<_, TaskError>(answer)
        })
        .unwrap();
    runtime
        .register(
            KindSpec::new("fragile").restart(RestartPolicy::Fail),
            |ctx: Context, _: Value| async move {
                ctx.cancelled().await;
                Ok::<_, TaskError>(())
            },
        )
        .unwrap();
    runtime
        .register(
            KindSpec::new("steady").restart(RestartPolicy::Rerun),
            |ctx: Context, _: Value| async move {
                let first = ctx.ask("first", json!({}), Duration::MAX).await?;
                let second = ctx.ask("second", json!({}), Duration::MAX).await?;
                Ok::<_, TaskError>(
                    json!({"first": first, "second": second, "attempt": ctx.attempt()}),
                )
            },
        )
        .unwrap();
}

async fn wait_for(runtime: &Runtime, id: TaskId, status: Status) -> Task {
    for _ in 0..500 {
        let task = runtime.get(id).await.unwrap();
        if task.status() == status {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} never reached {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_one_node_is_cancelled_answered_and_watched_from_the_other() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);
    let a = node(schema.connect("node-a", LEASE).await);
    let b = node(schema.connect("node-b", LEASE).await);
    let cancelled = Arc::new(AtomicBool::new(false));
    kinds(&a, cancelled.clone());

    // Cancel from B: A's handler sees it, and B's call returns the ended task.
    let parked = a
        .start("park", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    let ended = tokio::time::timeout(Duration::from_secs(5), b.cancel_by(parked, "node-b"))
        .await
        .expect("a cross-node cancel is pushed, not left to a renewal")
        .unwrap();
    assert_eq!(ended.status(), Status::Cancelled);
    assert_eq!(
        ended.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Requested {
                by: Some("node-b".into())
            }
        })
    );
    assert!(cancelled.load(Ordering::SeqCst));

    // Answer from B, subscribe from B, wait from B.
    let asking = a
        .start("ask", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    let mut events = b.subscribe(asking, Seq::ZERO).await.unwrap();
    wait_for(&b, asking, Status::InputRequired).await;
    b.answer(asking, "q", json!("from b")).await.unwrap();
    let task = tokio::time::timeout(Duration::from_secs(5), b.handle(asking).wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!("from b")
        })
    );
    let mut seen = Vec::new();
    while let Some(notice) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
    {
        if let Notice::Event(event) = notice {
            seen.push((event.seq.as_u64(), event.status));
        }
    }
    let statuses: Vec<Status> = seen.iter().map(|(_, status)| *status).collect();
    assert_eq!(
        statuses,
        [
            Status::Submitted,
            Status::Working,
            Status::InputRequired,
            Status::Working,
            Status::Completed
        ],
        "every event, in order, on the other node"
    );
    assert!(seen.windows(2).all(|w| w[1].0 == w[0].0 + 1));

    // A finished task answers as ended from either node.
    assert!(b.answer(asking, "q", json!("late")).await.is_err());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_tasks_are_rescued_and_a_submitted_task_is_claimed() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);

    // Node A runs in a tokio runtime of its own, which is dropped: A dies without a word.
    let a_store = schema.connect("node-a", LEASE).await;
    let (fragile, steady) = {
        let store = a_store.clone();
        common::die_after(move || async move {
            let a = node(store);
            kinds(&a, Arc::default());
            let fragile = a
                .start("fragile", json!(null), StartOptions::background())
                .await
                .unwrap()
                .id();
            let steady = a
                .start("steady", json!(null), StartOptions::background())
                .await
                .unwrap()
                .id();
            wait_for(&a, steady, Status::InputRequired).await;
            a.answer(steady, "first", json!(1)).await.unwrap();
            for _ in 0..500 {
                let task = a.get(steady).await.unwrap();
                if task
                    .state()
                    .pending_input()
                    .is_some_and(|pending| pending.contains_key("second"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (fragile, steady)
        })
    };
    drop(a_store);

    let b = node(schema.connect("node-b", LEASE).await);
    kinds(&b, Arc::default());
    // A task submitted straight into the store (by a producer that runs no handlers): B
    // claims it.
    let b_store = schema.connect("producer", LEASE).await;
    let (task, first) = Task::create(NewTask {
        id: TaskId::random(),
        kind: "ask".into(),
        owner: Default::default(),
        session: None,
        input: json!(null),
        labels: Default::default(),
        ttl: Duration::from_secs(60),
        deadline: None,
        created_at: Timestamp::from_millis(1),
        idempotency_key: None,
        start_at: None,
        trace: None,
    });
    b_store.create(&task, &Arc::new(first)).await.unwrap();
    let claimed = wait_for(&b, task.id, Status::InputRequired).await;
    assert_eq!(claimed.attempt(), 1);
    b.answer(task.id, "q", json!("claimed")).await.unwrap();

    // Rescue: within a few lease lifetimes of A's death, B took A's tasks.
    let failed = tokio::time::timeout(Duration::from_secs(10), b.handle(fragile).wait())
        .await
        .expect("rescued in time")
        .unwrap();
    let Some(Outcome::Failed { error }) = failed.outcome() else {
        panic!("{failed:?}")
    };
    assert_eq!(error.code, TaskError::INTERRUPTED);
    // The store says `input_required` from A's attempt until B's re-run has started: wait for
    // the re-run's own question.
    let mut rerun = wait_for(&b, steady, Status::InputRequired).await;
    for _ in 0..500 {
        if rerun.attempt() == 2 && rerun.status() == Status::InputRequired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        rerun = b.get(steady).await.unwrap();
    }
    assert_eq!(rerun.attempt(), 2);
    assert!(
        !rerun.state().pending_input().unwrap().contains_key("first"),
        "the first answer is replayed, not asked again"
    );
    b.answer(steady, "second", json!(2)).await.unwrap();
    let done = b.handle(steady).wait().await.unwrap();
    assert_eq!(
        done.outcome(),
        Some(&Outcome::Completed {
            output: json!({"first": 1, "second": 2, "attempt": 2})
        })
    );
    assert_eq!(
        b.handle(task.id).wait().await.unwrap().status(),
        Status::Completed
    );
    b.shutdown().await;
}

/// A node restarted under its name takes its earlier incarnation's tasks back, and `recover`
/// reports them even when the node loop, which starts with the runtime, claimed them first
/// (`longrun serve` prints that count at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_counts_the_tasks_the_node_loop_claimed_before_it() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);
    // A lease far longer than the test: only the node's own name explains the quick claim.
    let long = Duration::from_secs(600);
    let store = schema.connect("node-a", long).await;
    let ids = {
        let store = store.clone();
        common::die_after(move || async move {
            let a = node(store);
            kinds(&a, Arc::default());
            let mut ids = Vec::new();
            for kind in ["fragile", "steady"] {
                let id = a
                    .start(kind, json!(null), StartOptions::background())
                    .await
                    .unwrap()
                    .id();
                ids.push(id);
            }
            wait_for(&a, ids[0], Status::Working).await;
            wait_for(&a, ids[1], Status::InputRequired).await;
            ids
        })
    };
    drop(store);

    let again = node(schema.connect("node-a", long).await);
    kinds(&again, Arc::default());
    // Not recovered yet: the node loop's first pass claims both, failing the fragile one and
    // re-running the steady one.
    let [fragile, steady] = ids[..] else {
        unreachable!()
    };
    tokio::time::timeout(Duration::from_secs(10), again.handle(fragile).wait())
        .await
        .expect("claimed by the node loop")
        .unwrap();
    // The store says `input_required` from the first attempt until the re-run has started.
    tokio::time::timeout(Duration::from_secs(10), async {
        while again.get(steady).await.unwrap().attempt() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("re-run by the node loop");
    let recovery = again.recover().await.unwrap();
    assert_eq!((recovery.failed, recovery.rerun), (1, 1), "{recovery:?}");
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_hands_its_tasks_over_at_once() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);
    // A lease far longer than the test: only the release can explain a quick hand-over.
    let long = Duration::from_secs(600);
    let node = |store| {
        Runtime::new(Options {
            renew_interval: Duration::from_millis(200),
            ..Options::clustered(store)
        })
    };
    let a = node(schema.connect("node-a", long).await);
    let b = node(schema.connect("node-b", long).await);
    kinds(&a, Arc::default());
    kinds(&b, Arc::default());
    let steady = a
        .start("steady", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    wait_for(&a, steady, Status::InputRequired).await;
    a.answer(steady, "first", json!(1)).await.unwrap();
    assert_eq!(a.leave().await, 1);

    // B claims it at its next pass and re-runs it, the first answer replayed.
    let rerun = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let task = b.get(steady).await.unwrap();
            if task.attempt() == 2 && task.status() == Status::InputRequired {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("taken over long before the lease would expire");
    assert!(!rerun.state().pending_input().unwrap().contains_key("first"));
    b.answer(steady, "second", json!(2)).await.unwrap();
    assert_eq!(
        b.handle(steady).wait().await.unwrap().status(),
        Status::Completed
    );
    b.shutdown().await;
}

/// A delayed task whose node leaves before it is due starts once, on the other node, at its
/// start time and not before; a repeated start on the other node finds it by its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_task_starts_once_on_the_node_that_claims_it_when_due() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);
    let a = node(schema.connect("node-a", LEASE).await);
    let b = node(schema.connect("node-b", LEASE).await);
    kinds(&a, Arc::default());
    kinds(&b, Arc::default());
    let options = || {
        StartOptions::background()
            .delay(Duration::from_millis(800))
            .idempotency_key("nightly")
    };
    let started = a.start("ask", json!(null), options()).await.unwrap();
    assert!(started.is_new());
    let id = started.id();
    let due = a.get(id).await.unwrap().start_at.expect("a start time");
    assert_eq!(a.leave().await, 1, "A leaves before the task is due");

    let again = b.start("ask", json!(null), options()).await.unwrap();
    assert!(!again.is_new(), "the key holds across nodes");
    assert_eq!(again.id(), id);

    let task = wait_for(&b, id, Status::InputRequired).await;
    assert_eq!(task.attempt(), 1, "started once");
    let started_at = task.started_at().expect("started");
    assert!(started_at >= due, "started at {started_at:?}, due {due:?}");
    b.answer(id, "q", json!("done")).await.unwrap();
    assert_eq!(
        b.handle(id).wait().await.unwrap().status(),
        Status::Completed
    );
    let mut subscription = b.subscribe(id, Seq::ZERO).await.unwrap();
    let mut starts = 0;
    while let Some(notice) = subscription.next().await.unwrap() {
        if let Notice::Event(event) = notice
            && matches!(event.change, longrun_core::Change::Started { .. })
        {
            starts += 1;
        }
    }
    assert_eq!(starts, 1);
    b.shutdown().await;
}

/// A cancel of a delayed task that no node holds (its node left) does not wait for its start
/// time: a node claims it to apply the cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_task_nobody_holds_is_cancelled_before_its_time() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);
    let a = node(schema.connect("node-a", LEASE).await);
    let b = node(schema.connect("node-b", LEASE).await);
    kinds(&a, Arc::default());
    kinds(&b, Arc::default());
    let id = a
        .start(
            "ask",
            json!(null),
            StartOptions::background().delay(Duration::from_secs(3_600)),
        )
        .await
        .unwrap()
        .id();
    assert_eq!(a.leave().await, 1);
    let ended = tokio::time::timeout(Duration::from_secs(10), b.cancel(id))
        .await
        .expect("cancelled long before its start time")
        .unwrap();
    assert_eq!(ended.status(), Status::Cancelled);
    assert_eq!(ended.attempt(), 0, "the handler never ran");
    b.shutdown().await;
}
