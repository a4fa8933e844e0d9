//! Cancellation: cooperative, aborted after grace, of finished tasks, stop_all, deadlines.

mod common;

use std::time::Duration;

use common::*;
use longrun_runtime::{CancelReason, Error, Outcome, StartOptions, Status};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_cooperative_handler_stops_when_asked() {
    let rt = runtime();
    with_kinds(&rt);
    let handle = rt
        .start("sleep", 10_000, StartOptions::background())
        .await
        .unwrap()
        .handle()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let began = Instant::now();
    let task = rt.cancel_by(handle.id(), "tester").await.unwrap();
    assert!(
        began.elapsed() < Duration::from_millis(200),
        "no grace period was needed"
    );
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Requested {
                by: Some("tester".into())
            }
        })
    );
    let types = history(&rt, handle.id()).await;
    assert_eq!(types[types.len() - 2], "cancel_requested");
    assert_eq!(types[types.len() - 1], "ended");
}

#[tokio::test(start_paused = true)]
async fn a_stubborn_handler_is_aborted_after_its_grace_period() {
    let rt = runtime();
    with_kinds(&rt);
    let id = rt
        .start("stubborn", (), StartOptions::background())
        .await
        .unwrap()
        .id();
    let began = Instant::now();
    let task = rt.cancel(id).await.unwrap();
    assert_eq!(
        began.elapsed(),
        Duration::from_secs(2),
        "the kind's grace period"
    );
    assert_eq!(task.status(), Status::Cancelled);
    assert_eq!(rt.running(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_finished_task_changes_nothing_and_says_so() {
    let rt = runtime();
    with_kinds(&rt);
    let done = rt
        .start("echo", 7, StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    let error = rt.cancel(done.id).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Ended {
                status: Status::Completed,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        rt.get(done.id).await.unwrap(),
        done,
        "the stored task is untouched"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_all_counts_what_it_stopped() {
    let rt = runtime();
    with_kinds(&rt);
    for _ in 0..3 {
        rt.start("sleep", 10_000, StartOptions::background())
            .await
            .unwrap();
    }
    rt.start("echo", 1, StartOptions::foreground())
        .await
        .unwrap();
    assert_eq!(rt.stop_all().await, 3);
    assert_eq!(rt.running(), 0);
    let cancelled = rt
        .list(
            longrun_core::store::Filter {
                status: vec![Status::Cancelled],
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(cancelled.tasks.len(), 3);
    for task in cancelled.tasks {
        assert_eq!(
            task.outcome(),
            Some(&Outcome::Cancelled {
                reason: CancelReason::Stopped
            })
        );
    }
    assert_eq!(rt.stop_all().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_cancels_with_a_reason() {
    let rt = runtime();
    with_kinds(&rt);
    let began = Instant::now();
    let task = rt
        .start(
            "sleep",
            60_000,
            StartOptions::foreground().deadline(Duration::from_millis(1500)),
        )
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::DeadlineExceeded
        })
    );
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_stops_a_stubborn_handler_too() {
    let rt = runtime();
    with_kinds(&rt);
    let task = rt
        .start(
            "stubborn",
            (),
            StartOptions::foreground().deadline(Duration::from_secs(10)),
        )
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(task.status(), Status::Cancelled);
    assert_eq!(
        task.finished_at()
            .unwrap()
            .saturating_since(task.created_at),
        Duration::from_secs(12),
        "deadline plus the grace period"
    );
}
