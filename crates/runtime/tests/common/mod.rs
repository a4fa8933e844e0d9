//! Shared helpers for the runtime's integration tests.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::Duration;

use longrun_runtime::{Context, KindSpec, Notice, Options, Runtime, Seq, TaskId};
use longrun_runtime::{Error, TaskError};
use serde_json::{Value, json};

pub fn runtime() -> Runtime {
    Runtime::new(Options::default())
}

/// Registers `echo` (returns its input), `fail` (errors), `panic` (panics), `sleep` (sleeps
/// `input` ms, reporting progress every 100 ms, honouring cancellation) and `stubborn` (ignores
/// cancellation).
pub fn with_kinds(runtime: &Runtime) {
    runtime
        .register(
            KindSpec::new("echo"),
            |_ctx: Context, input: Value| async move { Ok::<_, TaskError>(input) },
        )
        .unwrap();
    runtime
        .register(
            KindSpec::new("fail"),
            |_ctx: Context, _: Value| async move {
                Err::<(), _>(TaskError::new("bad_thing", "it went wrong"))
            },
        )
        .unwrap();
    runtime
        .register(
            KindSpec::new("panic"),
            |_ctx: Context, _: Value| async move {
                if true {
                    panic!("handler exploded");
                }
                Ok::<(), TaskError>(())
            },
        )
        .unwrap();
    runtime
        .register(
            KindSpec::new("sleep").cancel_grace(Duration::from_secs(1)),
            |ctx: Context, millis: u64| async move {
                let steps = millis / 100;
                for step in 0..steps {
                    tokio::select! {
                        () = ctx.cancelled() => return Err(TaskError::new("stopped", "saw cancel")),
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    ctx.progress(
                        (step + 1) as f64 * 100.0 / steps as f64,
                        format!("step {}", step + 1),
                    )
                    .await?;
                }
                Ok::<_, TaskError>(json!({ "slept": millis }))
            },
        )
        .unwrap();
    runtime
        .register(
            KindSpec::new("stubborn").cancel_grace(Duration::from_secs(2)),
            |_ctx: Context, _: Value| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, TaskError>(json!("never"))
            },
        )
        .unwrap();
}

/// Every event of a task from the start, as (seq, change type) pairs.
pub async fn history(runtime: &Runtime, id: TaskId) -> Vec<Value> {
    let mut subscription = runtime.subscribe(id, Seq::ZERO).await.unwrap();
    let mut out = Vec::new();
    while let Some(notice) = subscription.next().await.unwrap() {
        if let Notice::Event(event) = notice {
            out.push(serde_json::to_value(&event.change).unwrap()["type"].clone());
        }
    }
    out
}

pub fn is_unknown(error: &Error) -> bool {
    matches!(error, Error::Unknown(_))
}
