//! Recovery after a crash: a node's tokio runtime is torn down mid-flight (nothing gets to write
//! an end), then a new runtime on the same store takes the unfinished tasks up.

use std::{sync::Arc, time::Duration};

use longrun_core::store::{EventLog, TaskStore};
use longrun_runtime::{
    Change, Context, KindSpec, Options, Outcome, RestartPolicy, Runtime, Seq, StartOptions, Status,
    TaskError, TaskId,
};
use longrun_store_memory::MemoryStore;
use serde_json::{Value, json};

/// Asks for a name, then for a go-ahead; returns what it learnt and its attempt. Re-runs after
/// a crash.
fn asking(rt: &Runtime) {
    rt.register(
        KindSpec::new("asking").restart(RestartPolicy::Rerun),
        |ctx: Context, _: Value| async move {
            let name = ctx
                .ask("name", json!({"q": "name?"}), Duration::MAX)
                .await?;
            let go = ctx.ask("go", json!({"q": "go?"}), Duration::MAX).await?;
            Ok::<_, TaskError>(json!({"name": name, "go": go, "attempt": ctx.attempt()}))
        },
    )
    .unwrap();
}

/// Runs until cancelled, and does not re-run after a crash.
fn fragile(rt: &Runtime) {
    rt.register(
        KindSpec::new("fragile").restart(RestartPolicy::Fail),
        |ctx: Context, _: Value| async move {
            ctx.cancelled().await;
            Ok::<_, TaskError>(())
        },
    )
    .unwrap();
}

/// One at a time; each waits for its `release` answer.
fn single(rt: &Runtime) {
    rt.register(
        KindSpec::new("single")
            .concurrency(1)
            .restart(RestartPolicy::Rerun),
        |ctx: Context, n: u64| async move {
            ctx.ask("release", json!({}), Duration::MAX).await?;
            Ok::<_, TaskError>(n)
        },
    )
    .unwrap();
}

fn kinds(rt: &Runtime) {
    asking(rt);
    fragile(rt);
    single(rt);
}

/// Runs `before` on a runtime in its own tokio runtime, then drops that tokio runtime: every
/// task is torn down where it stands, as in a kill -9, and only the store remains.
fn crash<T: Send + 'static>(
    store: Arc<MemoryStore>,
    before: impl AsyncFnOnce(Runtime) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = tokio.block_on(async move {
            let rt = Runtime::new(Options {
                store: Some(store),
                ..Options::default()
            });
            kinds(&rt);
            before(rt).await
        });
        drop(tokio);
        result
    })
    .join()
    .unwrap()
}

async fn wait_for(rt: &Runtime, id: TaskId, status: Status) {
    for _ in 0..200 {
        if rt.get(id).await.unwrap().status() == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {id} never reached {status}");
}

#[tokio::test]
async fn after_a_crash_tasks_rerun_with_answers_replayed_or_fail_or_are_resubmitted() {
    let store = Arc::new(MemoryStore::new());
    let (asking, fragile, first, second) = crash(store.clone(), async |rt: Runtime| {
        let start = |kind: &'static str, input: Value| {
            let rt = rt.clone();
            async move {
                rt.start(kind, input, StartOptions::background())
                    .await
                    .unwrap()
                    .id()
            }
        };
        let asking = start("asking", json!(null)).await;
        wait_for(&rt, asking, Status::InputRequired).await;
        rt.answer(asking, "name", json!("ada")).await.unwrap();
        // Crash while it waits for the second answer.
        wait_for(&rt, asking, Status::InputRequired).await;
        let task = rt.get(asking).await.unwrap();
        assert!(task.state().pending_input().unwrap().contains_key("go"));

        let fragile = start("fragile", json!(null)).await;
        wait_for(&rt, fragile, Status::Working).await;
        let first = start("single", json!(1)).await;
        // Recovery goes oldest first: make `first` strictly older.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let second = start("single", json!(2)).await;
        wait_for(&rt, first, Status::InputRequired).await;
        assert_eq!(rt.get(second).await.unwrap().status(), Status::Submitted);
        (asking, fragile, first, second)
    });

    let rt = Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    });
    kinds(&rt);
    let recovery = rt.recover().await.unwrap();
    assert_eq!(
        (recovery.rerun, recovery.failed, recovery.resubmitted),
        (2, 1, 1),
        "{recovery:?}"
    );

    // Fail-on-restart: ended failed, interrupted.
    let task = rt.handle(fragile).wait().await.unwrap();
    let Some(Outcome::Failed { error }) = task.outcome() else {
        panic!("{task:?}")
    };
    assert_eq!(error.code, TaskError::INTERRUPTED);

    // Re-run: the first answer is replayed, so only the second question is asked again.
    wait_for(&rt, asking, Status::InputRequired).await;
    let task = rt.get(asking).await.unwrap();
    assert_eq!(task.attempt(), 2);
    let pending = task.state().pending_input().unwrap();
    assert!(pending.contains_key("go") && !pending.contains_key("name"));
    rt.answer(asking, "go", json!(true)).await.unwrap();
    let task = rt.handle(asking).wait().await.unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"name": "ada", "go": true, "attempt": 2})
        })
    );
    let events = store.read(asking, Seq::ZERO, 100).await.unwrap();
    let asked: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.change {
            Change::InputRequested { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        ["name", "go", "go"],
        "earlier events are kept; name is not asked again"
    );

    // The queued task was resubmitted and still respects the limit of one.
    wait_for(&rt, first, Status::InputRequired).await;
    assert_eq!(rt.get(second).await.unwrap().status(), Status::Submitted);
    rt.answer(first, "release", json!(null)).await.unwrap();
    wait_for(&rt, second, Status::InputRequired).await;
    rt.answer(second, "release", json!(null)).await.unwrap();
    assert_eq!(
        rt.handle(second).wait().await.unwrap().status(),
        Status::Completed
    );
    assert!(store.unfinished().await.unwrap().is_empty());
}

#[tokio::test]
async fn tasks_of_kinds_not_registered_are_left_alone() {
    let store = Arc::new(MemoryStore::new());
    let id = crash(store.clone(), async |rt: Runtime| {
        let id = rt
            .start("fragile", json!(null), StartOptions::background())
            .await
            .unwrap()
            .id();
        wait_for(&rt, id, Status::Working).await;
        id
    });
    let rt = Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    });
    asking(&rt);
    let recovery = rt.recover().await.unwrap();
    assert_eq!(recovery.skipped, 1);
    assert_eq!(rt.get(id).await.unwrap().status(), Status::Working);
}

#[tokio::test]
async fn leaving_writes_nothing_and_the_next_runtime_takes_the_tasks_up() {
    let store = Arc::new(MemoryStore::new());
    let rt = Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    });
    kinds(&rt);
    let id = rt
        .start("asking", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    wait_for(&rt, id, Status::InputRequired).await;
    assert_eq!(rt.leave().await, 1);
    assert!(rt.is_shutting_down());
    assert_eq!(rt.running(), 0);
    let left = rt.get(id).await.unwrap();
    assert_eq!(
        left.status(),
        Status::InputRequired,
        "nothing was written: {left:?}"
    );
    assert!(
        rt.start("asking", json!(null), StartOptions::background())
            .await
            .is_err()
    );

    let next = Runtime::new(Options {
        store: Some(store),
        ..Options::default()
    });
    kinds(&next);
    assert_eq!(next.recover().await.unwrap().rerun, 1);
    next.answer(id, "name", json!("ada")).await.unwrap();
    next.answer(id, "go", json!(true)).await.unwrap();
    let done = next.handle(id).wait().await.unwrap();
    assert_eq!(done.attempt(), 2);
    assert_eq!(done.status(), Status::Completed);
}
