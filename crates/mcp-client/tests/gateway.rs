//! The gateway against an in-process 2026-07-28 upstream (`tests/common`): its tools become
//! kinds that a `Runtime` (memory store) runs as tasks, with status messages relayed as
//! progress, questions asked through `ctx.ask`, cancellation passed on, and a lost upstream
//! failing the task, not the runtime.

mod common;

use std::time::Duration;

use longrun::{
    Outcome, Runtime, StartOptions, TaskHandle,
    event::{Change, Notice, Seq},
    kind::TaskSupport,
    task::Status as TaskStatus,
};
use longrun_mcp_client::gateway::{Upstream, register_upstreams};
use serde_json::{Value, json};

async fn gateway() -> (common::Running, Runtime) {
    let server = common::serve().await;
    let runtime = Runtime::new(Default::default());
    let kinds = register_upstreams(&runtime, &[Upstream::http("up", &server.url)])
        .await
        .expect("registered");
    for kind in [
        "up.greet",
        "up.slow",
        "up.confirm",
        "up.fail",
        "up.tool_error",
    ] {
        assert!(
            kinds.contains(&kind.to_owned()),
            "{kind} missing from {kinds:?}"
        );
    }
    (server, runtime)
}

async fn start(runtime: &Runtime, kind: &str, input: Value) -> TaskHandle {
    runtime
        .start(kind, input, StartOptions::background())
        .await
        .expect("started")
        .handle()
        .expect("a background start gives a handle")
}

/// Every change of a task until `stop` says so (or the task ends).
async fn changes_until(handle: &TaskHandle, stop: impl Fn(&Change) -> bool) -> Vec<Change> {
    let mut subscription = handle.subscribe(Seq::ZERO).await.expect("subscribed");
    let mut changes = Vec::new();
    while let Some(notice) = tokio::time::timeout(Duration::from_secs(20), subscription.next())
        .await
        .expect("the task moves on")
        .expect("events")
    {
        if let Notice::Event(event) = notice {
            let done = stop(&event.change);
            changes.push(event.change.clone());
            if done {
                break;
            }
        }
    }
    changes
}

fn output_text(outcome: Option<&Outcome>) -> String {
    match outcome {
        Some(Outcome::Completed { output }) => output
            .pointer("/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        other => panic!("expected a completed task, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upstream_tool_runs_as_a_task_with_its_progress_relayed() {
    let (_server, runtime) = gateway().await;
    let spec = runtime.kind("up.slow").expect("the kind");
    assert_eq!(spec.description, "Takes its time");
    assert_eq!(spec.input_schema["properties"]["ms"]["type"], "integer");
    assert_eq!(spec.task_support, TaskSupport::Optional);

    let handle = start(&runtime, "up.slow", json!({"ms": 30, "steps": 3})).await;
    let changes = changes_until(&handle, |_| false).await;
    let progress: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Progress(p) => p.message.clone(),
            _ => None,
        })
        .collect();
    assert!(
        progress.iter().any(|m| m.starts_with("step ")),
        "{progress:?}"
    );
    let task = handle.wait().await.expect("ended");
    assert_eq!(output_text(task.outcome()), "done");
}

#[tokio::test]
async fn an_upstream_question_becomes_the_tasks_question() {
    let (_server, runtime) = gateway().await;
    let handle = start(&runtime, "up.confirm", json!({"filename": "b.txt"})).await;
    let changes = changes_until(&handle, |c| matches!(c, Change::InputRequested { .. })).await;
    let Some(Change::InputRequested { key, request }) = changes.last() else {
        panic!("no question in {changes:?}");
    };
    assert_eq!(key, "confirm");
    assert_eq!(request["message"], "Delete b.txt?");
    assert_eq!(
        request["schema"]["properties"]["confirm"]["type"],
        "boolean"
    );
    assert_eq!(request["mcp"]["method"], "elicitation/create");
    assert_eq!(
        handle.task().await.expect("the task").status(),
        TaskStatus::InputRequired
    );

    // A bare value answers a one-field form.
    handle
        .answer("confirm", json!(true))
        .await
        .expect("answered");
    let task = handle.wait().await.expect("ended");
    assert_eq!(
        output_text(task.outcome()),
        "confirm_delete(b.txt): confirmed = true"
    );
}

#[tokio::test]
async fn cancelling_the_task_cancels_the_upstream_task() {
    let (server, runtime) = gateway().await;
    let handle = start(&runtime, "up.slow", json!({"ms": 60_000, "steps": 1})).await;
    // Wait until the upstream task exists (its first status message is relayed).
    changes_until(&handle, |c| matches!(c, Change::Progress(_))).await;
    handle.cancel().await.expect("cancelled");
    let task = handle.wait().await.expect("ended");
    assert_eq!(task.status(), TaskStatus::Cancelled);
    // The handler gets to send tasks/cancel within the kind's grace period.
    for _ in 0..100 {
        if !server.seen.lock().expect("lock").stopped.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = server.seen.lock().expect("lock");
    assert_eq!(seen.cancelled.len(), 1, "tasks/cancel went upstream");
    assert_eq!(seen.stopped, seen.cancelled, "the upstream task stopped");
}

#[tokio::test]
async fn upstream_failures_fail_the_task_with_a_code() {
    let (_server, runtime) = gateway().await;
    let failed = start(&runtime, "up.fail", json!({}))
        .await
        .wait()
        .await
        .expect("ended");
    let Some(Outcome::Failed { error }) = failed.outcome() else {
        panic!("expected failed, got {:?}", failed.outcome());
    };
    assert_eq!(error.code, "upstream_failed");
    assert!(
        error.message.contains("intentional failure"),
        "{}",
        error.message
    );

    let tool_error = start(&runtime, "up.tool_error", json!({}))
        .await
        .wait()
        .await
        .expect("ended");
    let Some(Outcome::Failed { error }) = tool_error.outcome() else {
        panic!("expected failed, got {:?}", tool_error.outcome());
    };
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        ("tool_error", "the disk is full")
    );
    assert_eq!(
        error.details.as_ref().map(|d| d["isError"].clone()),
        Some(json!(true))
    );

    // A plain upstream tool works too.
    let greeted = start(&runtime, "up.greet", json!({"name": "gateway"}))
        .await
        .wait()
        .await
        .expect("ended");
    assert_eq!(output_text(greeted.outcome()), "Hello, gateway!");
}

#[tokio::test]
async fn a_lost_upstream_fails_the_task_not_the_runtime() {
    let (server, runtime) = gateway().await;
    let handle = start(&runtime, "up.slow", json!({"ms": 60_000, "steps": 1})).await;
    changes_until(&handle, |c| matches!(c, Change::Progress(_))).await;
    server.stop.cancel();
    let task = tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .expect("the task ends")
        .expect("ended");
    let Some(Outcome::Failed { error }) = task.outcome() else {
        panic!("expected failed, got {:?}", task.outcome());
    };
    assert_eq!(error.code, "upstream_lost", "{error:?}");
    assert!(
        error.message.contains("the next task connects again"),
        "{}",
        error.message
    );
    // The runtime goes on: the next task of the kind fails at once, cleanly.
    let next = start(&runtime, "up.greet", json!({"name": "x"}))
        .await
        .wait()
        .await
        .expect("ended");
    let Some(Outcome::Failed { error }) = next.outcome() else {
        panic!("expected failed, got {:?}", next.outcome());
    };
    assert_eq!(error.code, "upstream_unavailable", "{error:?}");
}
