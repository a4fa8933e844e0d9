//! An agent loop whose model calls are durable steps, on the SQLite store.
//!
//! The agent makes six simulated model calls, each one a `ctx.step`: its reply is saved before
//! the loop goes on. The first "process" is killed while the fourth call is in flight (its tokio
//! runtime is dropped on the spot, as a kill -9 would). The second process opens the same file
//! and calls `recover()`: the task runs again (attempt 2), gets the first three replies from its
//! journal without calling the model, and makes only the calls it had not finished. Each call
//! is a step with its own retry policy ([`StepOptions`]): two tries. The fifth call answers 429
//! twice, so the step gives up and the kind's retry policy runs attempt 3 after the
//! `retry_after` the error asks for, again without repeating a saved call; the sixth answers
//! 503 once, and the step's second try, after a short backoff, gets the reply within the
//! attempt. Every completed model call is counted outside the store: each happens exactly once.
//!
//! Run it with `cargo run -p longrun --features sqlite --example agent_loop`. It ends with
//! assertions, so CI runs it as a test.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use longrun::{
    Context, KindSpec, Options, Outcome, Runtime, StartOptions, TaskError, TaskId,
    kind::{RestartPolicy, RetryPolicy, StepOptions},
    store::SqliteStore,
    task::Status,
};
use serde_json::{Value, json};

const CALLS: usize = 6;

/// Completed model calls, by call: what a bill from the model provider would count.
static COMPLETED: [AtomicU32; CALLS] = [const { AtomicU32::new(0) }; CALLS];
/// While set, the fourth call hangs, so the first process dies with it in flight.
static HANG_ON_FOURTH: AtomicBool = AtomicBool::new(true);
/// Tries of each call, failed ones included.
static TRIES: [AtomicU32; CALLS] = [const { AtomicU32::new(0) }; CALLS];

/// A stand-in for a model API call.
async fn call_model(n: usize, transcript: &[String]) -> Result<String, TaskError> {
    let tries = TRIES[n - 1].fetch_add(1, Ordering::SeqCst) + 1;
    if n == 4 && HANG_ON_FOURTH.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if n == 5 && tries <= 2 {
        return Err(TaskError::new("rate_limited", "429 Too Many Requests")
            .retry_after(Duration::from_millis(50)));
    }
    if n == 6 && tries == 1 {
        return Err(TaskError::new("overloaded", "503 Service Unavailable"));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    COMPLETED[n - 1].fetch_add(1, Ordering::SeqCst);
    Ok(format!("reply {n} (after {} turns)", transcript.len()))
}

async fn agent(ctx: Context, goal: String) -> Result<Value, TaskError> {
    let mut transcript = Vec::new();
    // A failed call is tried once more within the attempt before the attempt fails.
    let options = StepOptions::new()
        .retry(RetryPolicy::attempts(2).initial_backoff(Duration::from_millis(20)));
    for n in 1..=CALLS {
        let reply: String = ctx
            .step_with(format!("model-call-{n}"), options, || {
                call_model(n, &transcript)
            })
            .await?;
        println!("  attempt {}: call {n} -> {reply}", ctx.attempt());
        transcript.push(reply);
    }
    Ok(json!({"goal": goal, "transcript": transcript, "attempt": ctx.attempt()}))
}

fn agent_kind() -> KindSpec {
    KindSpec::new("agent")
        .restart(RestartPolicy::Rerun)
        .retry(RetryPolicy::attempts(4))
}

fn runtime(path: &Path) -> Runtime {
    let store = Arc::new(SqliteStore::open(path).expect("the store opens"));
    let runtime = Runtime::new(Options {
        store: Some(store),
        ..Options::default()
    });
    runtime.register(agent_kind(), agent).expect("registered");
    runtime
}

/// Waits until the step `key` is saved (the task's status message says so once it is durable).
async fn wait_for_step(runtime: &Runtime, id: TaskId, key: &str) {
    let saved = format!("step `{key}` done");
    while runtime
        .get(id)
        .await
        .ok()
        .and_then(|t| t.status_message().map(str::to_owned))
        != Some(saved.clone())
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("longrun-agent-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("tasks.db");

    println!("first process:");
    let id: TaskId = {
        let tokio = tokio::runtime::Runtime::new()?;
        let id = tokio.block_on(async {
            let runtime = runtime(&path);
            let id = runtime
                .start("agent", "plan a trip", StartOptions::background())
                .await?
                .id();
            wait_for_step(&runtime, id, "model-call-3").await;
            println!("  killed while call 4 is in flight");
            Ok::<_, longrun::Error>(id)
        })?;
        drop(tokio);
        id
    };
    HANG_ON_FOURTH.store(false, Ordering::SeqCst);

    println!("second process:");
    let tokio = tokio::runtime::Runtime::new()?;
    tokio.block_on(async {
        let runtime = runtime(&path);
        assert_eq!(runtime.get(id).await?.status(), Status::Working);
        let recovery = runtime.recover().await?;
        assert_eq!(recovery.rerun, 1);
        let done = runtime.handle(id).wait().await?;
        println!("  {}: attempt {}", done.status(), done.attempt());
        let Some(Outcome::Completed { output }) = done.outcome() else {
            panic!("the agent did not complete: {done:?}");
        };
        assert_eq!(output["attempt"], json!(3), "crash re-run, then one retry");
        assert_eq!(output["transcript"].as_array().map(Vec::len), Some(CALLS));
        Ok::<_, longrun::Error>(())
    })?;
    let counts: Vec<u32> = COMPLETED.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    println!("completed model calls per call: {counts:?}");
    assert_eq!(counts, [1; CALLS], "no model call was repeated");
    let tries: Vec<u32> = TRIES.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    println!("tries per call (failed ones included): {tries:?}");
    // Call 4 was in flight at the kill; call 5 failed twice (the step gave up, the kind
    // retried); call 6 failed once (the step tried again).
    assert_eq!(tries, [1, 1, 1, 2, 3, 2]);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
