//! Trace context: a start's `traceparent` is stored with the task, survives a take-up, and is
//! what a handler hands on (`Context::traceparent`) when no span is exported (no OpenTelemetry
//! layer is installed in these tests).

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::sync::Arc;

use longrun_runtime::{
    Context, KindSpec, Options, Outcome, RestartPolicy, Runtime, StartOptions, Status, Task,
    TaskError, TraceContext,
};
use longrun_store_memory::MemoryStore;

/// The output of a completed task.
fn output(task: &Task) -> serde_json::Value {
    match task.outcome() {
        Some(Outcome::Completed { output }) => output.clone(),
        other => panic!("not completed: {other:?}"),
    }
}

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A kind whose handler completes with the traceparent it would hand on.
fn register(rt: &Runtime) {
    let spec = KindSpec::new("traced").restart(RestartPolicy::Rerun);
    rt.register(spec, |ctx: Context, _: ()| async move {
        Ok::<_, TaskError>(
            ctx.traceparent()
                .map(|trace| trace.traceparent().to_owned()),
        )
    })
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_callers_trace_is_stored_and_handed_to_the_handler() {
    let rt = Runtime::new(Options::default());
    register(&rt);
    let trace = TraceContext::parse(CALLER, Some("vendor=x")).unwrap();
    let started = rt
        .start(
            "traced",
            (),
            StartOptions::background().trace(trace.clone()),
        )
        .await
        .unwrap();
    let task = rt.handle(started.id()).wait().await.unwrap();
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(task.trace.as_ref(), Some(&trace));
    assert_eq!(output(&task), serde_json::json!(CALLER));

    // Without a caller's trace and without an exporter there is nothing to hand on.
    let started = rt
        .start("traced", (), StartOptions::background())
        .await
        .unwrap();
    let task = rt.handle(started.id()).wait().await.unwrap();
    assert_eq!(task.trace, None);
    assert_eq!(output(&task), serde_json::Value::Null);
}

#[tokio::test(start_paused = true)]
async fn a_task_taken_up_after_a_restart_keeps_its_trace() {
    let store = Arc::new(MemoryStore::new());
    let first = Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    });
    // A handler that never ends on the first runtime: the restart cuts it.
    first
        .register(
            KindSpec::new("traced").restart(RestartPolicy::Rerun),
            |ctx: Context, _: ()| async move {
                ctx.cancelled().await;
                Ok::<_, TaskError>(None::<String>)
            },
        )
        .unwrap();
    let trace = TraceContext::parse(CALLER, None).unwrap();
    let id = first
        .start("traced", (), StartOptions::background().trace(trace))
        .await
        .unwrap()
        .id();
    first.leave().await;

    let second = Runtime::new(Options {
        store: Some(store),
        ..Options::default()
    });
    register(&second);
    second.recover().await.unwrap();
    let task = second.handle(id).wait().await.unwrap();
    assert_eq!(task.status(), Status::Completed, "{task:?}");
    assert_eq!(task.attempt(), 2);
    assert_eq!(output(&task), serde_json::json!(CALLER));
}
