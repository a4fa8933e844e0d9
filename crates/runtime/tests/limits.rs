//! Concurrency limits: queue or reject, per kind, per owner and global.

mod common;

use std::time::Duration;

use common::*;
use longrun_runtime::{
    Context, KindSpec, Limits, Options, OverLimit, Runtime, StartOptions, Started, Status,
    TaskError,
};
use serde_json::Value;

fn with_slow(rt: &Runtime, name: &str, spec: impl FnOnce(KindSpec) -> KindSpec) {
    rt.register(
        spec(KindSpec::new(name)),
        |_c: Context, _: Value| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, TaskError>(())
        },
    )
    .unwrap();
}

/// Starts a task of `kind` and returns its id.
async fn start(rt: &Runtime, kind: &str, options: StartOptions) -> longrun_runtime::TaskId {
    rt.start(kind, (), options).await.unwrap().id()
}

async fn statuses(rt: &Runtime, ids: &[longrun_runtime::TaskId]) -> Vec<Status> {
    let mut out = Vec::new();
    for id in ids {
        out.push(rt.get(*id).await.unwrap().status());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_kind_limit_queues_in_order() {
    let rt = runtime();
    with_slow(&rt, "slow", |k| k.concurrency(2));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(start(&rt, "slow", StartOptions::background()).await);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    use Status::*;
    assert_eq!(
        statuses(&rt, &ids).await,
        [Working, Working, Submitted, Submitted, Submitted]
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        statuses(&rt, &ids).await,
        [Completed, Completed, Working, Working, Submitted]
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(statuses(&rt, &ids).await, [Completed; 5]);
}

#[tokio::test(start_paused = true)]
async fn a_reject_policy_refuses_above_the_limit() {
    let rt = runtime();
    with_slow(&rt, "slow", |k| {
        k.concurrency(1).over_limit(OverLimit::Reject)
    });
    let first = rt
        .start("slow", (), StartOptions::background())
        .await
        .unwrap();
    let second = rt
        .start("slow", (), StartOptions::background())
        .await
        .unwrap();
    let Started::Finished(rejected) = second else {
        panic!("expected a rejection")
    };
    assert_eq!(rejected.status(), Status::Rejected);
    assert!(
        rejected.status_message().unwrap().contains("limit of 1"),
        "{:?}",
        rejected.status_message()
    );
    first.handle().unwrap().wait().await.unwrap();
    let third = rt
        .start("slow", (), StartOptions::foreground())
        .await
        .unwrap();
    assert_eq!(third.finished().unwrap().status(), Status::Completed);
}

#[tokio::test(start_paused = true)]
async fn global_and_per_owner_limits_apply() {
    let rt = Runtime::new(Options {
        limits: Limits {
            global: Some(3),
            per_owner: Some(2),
        },
        ..Options::default()
    });
    with_slow(&rt, "a", |k| k);
    with_slow(&rt, "b", |k| k);
    let mut ids = Vec::new();
    for (kind, owner) in [
        ("a", "ann"),
        ("b", "ann"),
        ("a", "ann"),
        ("a", "bob"),
        ("b", "cat"),
    ] {
        ids.push(start(&rt, kind, StartOptions::background().owner(owner)).await);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    use Status::*;
    // ann's third waits for ann's slots; bob fits; cat waits for the global limit.
    assert_eq!(
        statuses(&rt, &ids).await,
        [Working, Working, Submitted, Working, Submitted]
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(statuses(&rt, &ids).await, [Completed; 5]);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_queued_task_frees_its_place() {
    let rt = runtime();
    with_slow(&rt, "slow", |k| k.concurrency(1));
    let first = start(&rt, "slow", StartOptions::background()).await;
    let queued = start(&rt, "slow", StartOptions::background()).await;
    let third = start(&rt, "slow", StartOptions::background()).await;
    let cancelled = rt.cancel(queued).await.unwrap();
    assert_eq!(cancelled.status(), Status::Cancelled);
    assert!(cancelled.started_at().is_none(), "it never ran");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    use Status::*;
    assert_eq!(
        statuses(&rt, &[first, queued, third]).await,
        [Completed, Cancelled, Working]
    );
    let _ = is_unknown;
}
