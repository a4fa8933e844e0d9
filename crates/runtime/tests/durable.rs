//! Durable execution on paused time: steps that run once across crash re-runs and retries,
//! retries with backoff inside their jitter bounds, cancellation during a backoff, and durable
//! timers that wait only for what remains after a restart.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use longrun_core::store::EventLog;
use longrun_runtime::{
    Change, Context, KindSpec, Options, Outcome, RestartPolicy, RetryPolicy, Runtime, Seq,
    StartOptions, Status, StepError, Task, TaskError, TaskId, TokioClock,
};
use longrun_store_memory::MemoryStore;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::time::Instant;

/// One store and one clock, shared by every runtime of a test, as a restarted process on the
/// same database and the same wall clock would see them.
struct Node {
    store: Arc<MemoryStore>,
    clock: Arc<TokioClock>,
}

impl Node {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            clock: Arc::new(TokioClock::new()),
        }
    }

    fn runtime(&self) -> Runtime {
        Runtime::new(Options {
            store: Some(self.store.clone()),
            clock: Some(self.clock.clone()),
            ..Options::default()
        })
    }
}

async fn wait_until(rt: &Runtime, id: TaskId, done: impl Fn(&Task) -> bool) -> Task {
    for _ in 0..10_000 {
        let task = rt.get(id).await.unwrap();
        if done(&task) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} never reached the expected state");
}

async fn changes(store: &MemoryStore, id: TaskId) -> Vec<Change> {
    let events = store.read(id, Seq::ZERO, 10_000).await.unwrap();
    events.iter().map(|event| event.change.clone()).collect()
}

type Counters = Arc<[AtomicU32; 3]>;

/// Three steps, then a question between the second and the third: a crash while it waits
/// leaves two saved steps behind.
fn three_steps(rt: &Runtime, runs: Counters) {
    rt.register(
        KindSpec::new("three").restart(RestartPolicy::Rerun),
        move |ctx: Context, _: Value| {
            let runs = runs.clone();
            async move {
                let mut got = Vec::new();
                for n in 0..3usize {
                    if n == 2 {
                        ctx.ask("go", json!({}), Duration::MAX).await?;
                    }
                    let runs = runs.clone();
                    let value: String = ctx
                        .step(format!("s{n}"), async move {
                            let count = runs[n].fetch_add(1, Ordering::SeqCst) + 1;
                            Ok::<_, TaskError>(format!("step {n}, run {count}"))
                        })
                        .await?;
                    got.push(value);
                }
                Ok::<_, TaskError>(json!({"steps": got, "attempt": ctx.attempt()}))
            }
        },
    )
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_saved_step_runs_once_across_a_crash_rerun() {
    let node = Node::new();
    let runs: Counters = Arc::default();
    let first = node.runtime();
    three_steps(&first, runs.clone());
    let id = first
        .start("three", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    wait_until(&first, id, |t| t.status() == Status::InputRequired).await;
    first.leave().await;

    let second = node.runtime();
    three_steps(&second, runs.clone());
    assert_eq!(second.recover().await.unwrap().rerun, 1);
    second.answer(id, "go", json!(true)).await.unwrap();
    let done = second.handle(id).wait().await.unwrap();
    assert_eq!(
        done.outcome(),
        Some(&Outcome::Completed {
            output: json!({
                "steps": ["step 0, run 1", "step 1, run 1", "step 2, run 1"],
                "attempt": 2,
            })
        })
    );
    let counts: Vec<u32> = runs.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [1, 1, 1], "no step ran twice");
    let saved = changes(&node.store, id)
        .await
        .into_iter()
        .filter(|c| matches!(c, Change::StepSaved { .. }))
        .count();
    assert_eq!(saved, 3, "each step saved once");
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_is_retried_and_saved_steps_are_not() {
    let node = Node::new();
    let rt = node.runtime();
    let runs: Counters = Arc::default();
    let kind = KindSpec::new("flaky").retry(
        RetryPolicy::attempts(3)
            .initial_backoff(Duration::from_secs(1))
            .jitter(0.0),
    );
    let counters = runs.clone();
    rt.register(kind, move |ctx: Context, _: Value| {
        let runs = counters.clone();
        async move {
            let first = runs.clone();
            let a: u32 = ctx
                .step("a", async move {
                    Ok::<_, TaskError>(first[0].fetch_add(1, Ordering::SeqCst) + 1)
                })
                .await?;
            let second = runs.clone();
            let b: u32 = ctx
                .step("b", async move {
                    let count = second[1].fetch_add(1, Ordering::SeqCst) + 1;
                    if count < 2 {
                        return Err(TaskError::new("rate_limited", "429, try later"));
                    }
                    Ok(count)
                })
                .await?;
            Ok::<_, TaskError>(json!([a, b, ctx.attempt()]))
        }
    })
    .unwrap();
    let done = rt
        .start("flaky", json!(null), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(
        done.outcome(),
        Some(&Outcome::Completed {
            output: json!([1, 2, 2])
        })
    );
    let counts: Vec<u32> = runs.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert_eq!(counts[..2], [1, 2], "step a ran once, step b twice");
    let log = changes(&node.store, done.id).await;
    assert!(
        log.iter().any(|c| matches!(
            c,
            Change::RetryScheduled { attempt: 1, error, .. } if error.code == "rate_limited"
        )),
        "{log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_within_the_jitter_bounds_and_gives_up_after_the_last_attempt() {
    let node = Node::new();
    let rt = node.runtime();
    let policy = RetryPolicy::attempts(4)
        .initial_backoff(Duration::from_millis(1_000))
        .multiplier(2.0)
        .max_backoff(Duration::from_millis(3_000))
        .jitter(0.5);
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = starts.clone();
    rt.register(
        KindSpec::new("always-fails").retry(policy),
        move |_ctx: Context, _: Value| {
            seen.lock().push(Instant::now());
            async { Err::<(), _>(TaskError::new("down", "the service is down")) }
        },
    )
    .unwrap();
    let task = rt
        .start("always-fails", json!(null), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    let Some(Outcome::Failed { error }) = task.outcome() else {
        panic!("{task:?}")
    };
    assert_eq!(error.code, "down");
    assert_eq!(error.message, "the service is down (attempt 4 of 4)");
    assert_eq!(task.attempt(), 4);

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
    let log = changes(&node.store, task.id).await;
    let retries: Vec<u32> = log
        .iter()
        .filter_map(|c| match c {
            Change::RetryScheduled { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_ends_the_task_at_once() {
    let rt = Runtime::new(Options::default());
    rt.register(
        KindSpec::new("fatal").retry(RetryPolicy::attempts(5)),
        |_ctx: Context, _: Value| async { Err::<(), _>(TaskError::fatal("bad credentials")) },
    )
    .unwrap();
    let task = rt
        .start("fatal", json!(null), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(task.status(), Status::Failed);
    assert_eq!(task.attempt(), 1);
}

/// Fails its first attempt with a long `retry_after`; succeeds after.
fn slow_retry(rt: &Runtime, retry_after: Duration) {
    rt.register(
        KindSpec::new("slow-retry")
            .concurrency(1)
            .retry(RetryPolicy::attempts(2)),
        move |ctx: Context, _: Value| async move {
            if ctx.attempt() == 1 {
                return Err(TaskError::new("busy", "come back later").retry_after(retry_after));
            }
            Ok::<_, TaskError>(ctx.attempt())
        },
    )
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_task_in_backoff_holds_no_slot_and_a_cancel_ends_it_at_once() {
    let rt = Runtime::new(Options::default());
    slow_retry(&rt, Duration::from_secs(3_600));
    let waiting = rt
        .start("slow-retry", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    let backing_off = wait_until(&rt, waiting, |t| t.retry_at().is_some()).await;
    assert_eq!(backing_off.status(), Status::Submitted);
    assert!(
        backing_off
            .status_message()
            .unwrap()
            .contains("attempt 1 failed")
    );

    // The kind runs one task at a time, and the one in backoff does not count.
    let other = rt
        .start("slow-retry", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    wait_until(&rt, other, |t| t.attempt() == 1 && t.retry_at().is_some()).await;

    let before = Instant::now();
    let cancelled = rt.cancel(waiting).await.unwrap();
    assert_eq!(cancelled.status(), Status::Cancelled);
    assert!(
        before.elapsed() < Duration::from_secs(3_600),
        "the cancel did not wait for the backoff"
    );
    assert_eq!(cancelled.attempt(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_backoff_interrupted_by_a_restart_waits_only_for_the_rest() {
    let node = Node::new();
    let first = node.runtime();
    slow_retry(&first, Duration::from_secs(30));
    let id = first
        .start("slow-retry", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    wait_until(&first, id, |t| t.retry_at().is_some()).await;
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    first.leave().await;

    let second = node.runtime();
    slow_retry(&second, Duration::from_secs(30));
    assert_eq!(second.recover().await.unwrap().resubmitted, 1);
    let done = second.handle(id).wait().await.unwrap();
    let waited = began.elapsed();
    assert_eq!(
        done.outcome(),
        Some(&Outcome::Completed { output: json!(2) })
    );
    assert!(
        waited >= Duration::from_secs(29) && waited <= Duration::from_secs(31),
        "the backoff of 30 s took {waited:?} in all"
    );
}

fn napper(rt: &Runtime) {
    rt.register(
        KindSpec::new("nap").restart(RestartPolicy::Rerun),
        |ctx: Context, _: Value| async move {
            ctx.sleep("nap", Duration::from_secs(60)).await?;
            Ok::<_, TaskError>(ctx.attempt())
        },
    )
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_timer_resumed_after_a_restart_waits_only_the_remainder() {
    let node = Node::new();
    let first = node.runtime();
    napper(&first);
    let id = first
        .start("nap", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    first.leave().await;

    let second = node.runtime();
    napper(&second);
    assert_eq!(second.recover().await.unwrap().rerun, 1);
    let done = second.handle(id).wait().await.unwrap();
    assert_eq!(
        done.outcome(),
        Some(&Outcome::Completed { output: json!(2) })
    );
    let slept = began.elapsed();
    assert!(
        slept >= Duration::from_secs(59) && slept <= Duration::from_secs(61),
        "a 60 s sleep took {slept:?} across the restart"
    );
    let timers = changes(&node.store, id)
        .await
        .into_iter()
        .filter(|c| matches!(c, Change::TimerStarted { .. }))
        .count();
    assert_eq!(
        timers, 1,
        "the re-run resumed the timer instead of starting another"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_names_one_step_per_attempt() {
    let rt = Runtime::new(Options::default());
    rt.register(
        KindSpec::new("twice"),
        |ctx: Context, _: Value| async move {
            ctx.step("k", async { Ok::<_, TaskError>(1) }).await?;
            let again = ctx.step("k", async { Ok::<_, TaskError>(2) }).await;
            Ok::<_, TaskError>(matches!(again, Err(StepError::KeyReused(key)) if key == "k"))
        },
    )
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
            output: json!(true)
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_re_run_counts_as_an_attempt() {
    let node = Node::new();
    let kinds = |rt: &Runtime| {
        rt.register(
            KindSpec::new("two-tries")
                .restart(RestartPolicy::Rerun)
                .retry(RetryPolicy::attempts(2)),
            |ctx: Context, _: Value| async move {
                if ctx.attempt() == 1 {
                    return Err(TaskError::new("flaky", "first try fails")
                        .retry_after(Duration::from_millis(10)));
                }
                ctx.ask("go", json!({}), Duration::MAX).await?;
                Ok::<_, TaskError>(())
            },
        )
        .unwrap();
    };
    let first = node.runtime();
    kinds(&first);
    let id = first
        .start("two-tries", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    wait_until(&first, id, |t| {
        t.attempt() == 2 && t.status() == Status::InputRequired
    })
    .await;
    first.leave().await;

    let second = node.runtime();
    kinds(&second);
    let recovery = second.recover().await.unwrap();
    assert_eq!((recovery.rerun, recovery.failed), (0, 1));
    let ended = second.handle(id).wait().await.unwrap();
    let Some(Outcome::Failed { error }) = ended.outcome() else {
        panic!("{ended:?}")
    };
    assert_eq!(error.code, TaskError::INTERRUPTED);
    assert!(error.message.contains("(2 of 2)"), "{}", error.message);
}
