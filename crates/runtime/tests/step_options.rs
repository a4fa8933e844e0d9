//! Per-step retries ([`StepOptions`]) on paused time: tries spaced within the jitter bounds, the
//! last try's error returned, fatal errors not retried, a cancel that ends a step's backoff at
//! once, and a saved step that a later attempt replays instead of trying.

use std::{sync::Arc, time::Duration};

use longrun_core::store::EventLog;
use longrun_runtime::{
    Change, Context, KindSpec, Options, Outcome, RetryPolicy, Runtime, Seq, StartOptions, Status,
    StepError, StepOptions, TaskError, TaskId,
};
use longrun_store_memory::MemoryStore;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::time::Instant;

fn runtime(store: &Arc<MemoryStore>) -> Runtime {
    Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    })
}

async fn saved_steps(store: &MemoryStore, id: TaskId) -> Vec<(String, Value)> {
    let events = store.read(id, Seq::ZERO, 10_000).await.unwrap();
    events
        .into_iter()
        .filter_map(|event| match &event.change {
            Change::StepSaved { key, value } => Some((key.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// Registers `flaky`: one step whose tries fail until try `succeed_on` (0: never), each with
/// its own message, and whose tries' start times go to `starts`. The handler returns the
/// step's value, or, if the step failed, the error it got, so a test can read both.
fn flaky(rt: &Runtime, policy: RetryPolicy, succeed_on: usize, starts: Arc<Mutex<Vec<Instant>>>) {
    rt.register(KindSpec::new("flaky"), move |ctx: Context, _: Value| {
        let starts = starts.clone();
        async move {
            let options = StepOptions::new().retry(policy);
            let got = ctx
                .step_with("call", options, || {
                    let starts = starts.clone();
                    async move {
                        let tries = {
                            let mut starts = starts.lock();
                            starts.push(Instant::now());
                            starts.len()
                        };
                        if tries == succeed_on {
                            Ok(format!("answer from try {tries}"))
                        } else {
                            Err(TaskError::new("down", format!("try {tries} failed")))
                        }
                    }
                })
                .await;
            Ok::<_, TaskError>(match got {
                Ok(value) => json!({ "value": value }),
                Err(StepError::Failed(error)) => json!({ "error": error }),
                Err(other) => return Err(other.into()),
            })
        }
    })
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failing_step_is_tried_again_within_the_jitter_bounds_and_saved_once() {
    let store = Arc::new(MemoryStore::new());
    let rt = runtime(&store);
    let policy = RetryPolicy::attempts(5)
        .initial_backoff(Duration::from_millis(1_000))
        .multiplier(2.0)
        .max_backoff(Duration::from_millis(3_000))
        .jitter(0.5);
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    flaky(&rt, policy, 4, starts.clone());
    let task = rt
        .start("flaky", json!(null), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({ "value": "answer from try 4" })
        })
    );
    assert_eq!(task.attempt(), 1, "the step retried, not the task");

    let starts = starts.lock().clone();
    assert_eq!(starts.len(), 4);
    for (n, pair) in starts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let ceiling = policy.ceiling(n as u32 + 1);
        assert!(
            gap >= ceiling.mul_f64(0.5) && gap <= ceiling,
            "gap {n}: {gap:?} is outside {:?}..={ceiling:?}",
            ceiling.mul_f64(0.5)
        );
    }
    assert_eq!(
        saved_steps(&store, task.id).await,
        [("call".to_owned(), json!("answer from try 4"))],
        "only the successful try is saved"
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_tries_error_is_returned_and_nothing_is_saved() {
    let store = Arc::new(MemoryStore::new());
    let rt = runtime(&store);
    let policy = RetryPolicy::attempts(3).initial_backoff(Duration::from_millis(10));
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    flaky(&rt, policy, 0, starts.clone());
    let task = rt
        .start("flaky", json!(null), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    let Some(Outcome::Completed { output }) = task.outcome() else {
        panic!("{task:?}")
    };
    assert_eq!(output["error"]["code"], "down");
    assert_eq!(output["error"]["message"], "try 3 failed");
    assert_eq!(starts.lock().len(), 3);
    assert!(saved_steps(&store, task.id).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_is_not_tried_again() {
    let store = Arc::new(MemoryStore::new());
    let rt = runtime(&store);
    let tries: Arc<Mutex<u32>> = Arc::default();
    let counted = tries.clone();
    rt.register(KindSpec::new("fatal"), move |ctx: Context, _: Value| {
        let tries = counted.clone();
        async move {
            let options = StepOptions::new().retry(RetryPolicy::attempts(5));
            ctx.step_with("call", options, || {
                *tries.lock() += 1;
                async { Err::<(), _>(TaskError::fatal("bad credentials")) }
            })
            .await?;
            Ok::<_, TaskError>(())
        }
    })
    .unwrap();
    let task = rt
        .start("fatal", json!(null), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    let Some(Outcome::Failed { error }) = task.outcome() else {
        panic!("{task:?}")
    };
    assert_eq!(error.message, "bad credentials");
    assert_eq!(*tries.lock(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_during_a_steps_backoff_ends_it_at_once() {
    let store = Arc::new(MemoryStore::new());
    let rt = runtime(&store);
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let record = seen.clone();
    rt.register(KindSpec::new("patient"), move |ctx: Context, _: Value| {
        let record = record.clone();
        async move {
            let options = StepOptions::new().retry(RetryPolicy::attempts(2));
            let got = ctx
                .step_with("call", options, || async {
                    Err::<(), _>(
                        TaskError::new("busy", "come back in an hour")
                            .retry_after(Duration::from_secs(3_600)),
                    )
                })
                .await;
            *record.lock() = Some(match &got {
                Err(StepError::Cancelled) => "cancelled".to_owned(),
                other => format!("{other:?}"),
            });
            got?;
            Ok::<_, TaskError>(())
        }
    })
    .unwrap();
    let id = rt
        .start("patient", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    // The first try has failed once the handler is in its backoff: let it get there.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rt.get(id).await.unwrap().status(), Status::Working);

    let before = Instant::now();
    rt.cancel(id).await.unwrap();
    let task = rt.handle(id).wait().await.unwrap();
    assert_eq!(task.status(), Status::Cancelled);
    assert!(
        before.elapsed() < Duration::from_secs(60),
        "the cancel waited for the backoff: {:?}",
        before.elapsed()
    );
    assert_eq!(seen.lock().as_deref(), Some("cancelled"));
}

#[tokio::test(start_paused = true)]
async fn a_saved_step_is_not_tried_again_by_a_later_attempt() {
    let store = Arc::new(MemoryStore::new());
    let rt = runtime(&store);
    let tries: Arc<Mutex<u32>> = Arc::default();
    let counted = tries.clone();
    let kind = KindSpec::new("twice").retry(
        RetryPolicy::attempts(2)
            .initial_backoff(Duration::from_millis(10))
            .jitter(0.0),
    );
    rt.register(kind, move |ctx: Context, _: Value| {
        let tries = counted.clone();
        async move {
            let options = StepOptions::new().retry(RetryPolicy::attempts(3));
            let value: u32 = ctx
                .step_with("call", options, || {
                    let tries = tries.clone();
                    async move {
                        *tries.lock() += 1;
                        Ok::<_, TaskError>(7)
                    }
                })
                .await?;
            if ctx.attempt() == 1 {
                // A later failure of the attempt: the kind retries the whole handler.
                return Err(TaskError::new("later", "failed after the step"));
            }
            Ok::<_, TaskError>(json!({"value": value, "attempt": ctx.attempt()}))
        }
    })
    .unwrap();
    let task = rt
        .start("twice", json!(null), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"value": 7, "attempt": 2})
        })
    );
    assert_eq!(*tries.lock(), 1, "attempt 2 got the saved value");
}
