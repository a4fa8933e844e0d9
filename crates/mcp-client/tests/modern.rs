//! The task client against an in-process rmcp server speaking protocol 2026-07-28 with the
//! tasks extension (`tests/common`): tasks to completion, questions, TTL, get and cancel,
//! failures, MRTR rounds before a task, and the plain path.

mod common;

use std::sync::{Arc, Mutex};

use longrun_mcp_client::{
    Client, Error, Protocol, Status, Target, Update,
    model::{ElicitRequestParams, ElicitResult, ElicitationAction},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn text(result: &longrun_mcp_client::model::CallToolResult) -> String {
    serde_json::to_value(&result.content)
        .ok()
        .and_then(|c| {
            c.pointer("/0/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Answers every elicitation by accepting its one field with `value`.
fn accept_with(value: Value) -> impl Fn(ElicitRequestParams) -> std::future::Ready<ElicitResult> {
    move |params| {
        let field = match &params {
            ElicitRequestParams::FormElicitationParams {
                requested_schema, ..
            } => requested_schema
                .properties
                .keys()
                .next()
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        std::future::ready(
            ElicitResult::new(ElicitationAction::Accept)
                .with_content(json!({ field: value.clone() })),
        )
    }
}

async fn client(url: &str) -> Client {
    Client::builder(Target::http(url))
        .elicitation(accept_with(json!(true)))
        .connect()
        .await
        .expect("connected")
}

#[tokio::test]
async fn a_task_runs_to_its_result_and_reports_its_status() {
    let server = common::serve().await;
    let client = client(&server.url).await;
    assert_eq!(client.protocol(), Protocol::V2026_07_28);
    assert!(client.supports_tasks());

    let updates = Arc::new(Mutex::new(Vec::new()));
    let seen = updates.clone();
    let result = client
        .task()
        .with_ttl(30_000)
        .on_update(move |u| seen.lock().expect("lock").push(u))
        .call_tool("slow", json!({"ms": 30, "steps": 3}))
        .await
        .expect("a result");
    assert_eq!(text(&result), "done");
    let updates = updates.lock().expect("lock").clone();
    assert!(
        matches!(&updates[0], Update::Created(t) if t.status == Status::Working),
        "{updates:?}"
    );
    let messages: Vec<String> = updates
        .iter()
        .filter_map(|u| match u {
            Update::Status(t) => t.status_message.clone(),
            _ => None,
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("step ")),
        "{messages:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_question_is_answered_by_the_elicitation_handler() {
    let server = common::serve().await;
    let client = client(&server.url).await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let result = client
        .task()
        .on_update(move |u| {
            if let Update::InputRequested { key, method } = u {
                seen.lock().expect("lock").push((key, method));
            }
        })
        .call_tool("confirm", json!({"filename": "a.txt"}))
        .await
        .expect("a result");
    assert_eq!(text(&result), "confirm_delete(a.txt): confirmed = true");
    assert_eq!(
        *asked.lock().expect("lock"),
        vec![("confirm".to_owned(), "elicitation/create".to_owned())]
    );
}

#[tokio::test]
async fn without_a_handler_the_question_is_declined() {
    let server = common::serve().await;
    let client = Client::connect(Target::http(&server.url))
        .await
        .expect("connected");
    let result = client
        .task()
        .call_tool("confirm", json!({}))
        .await
        .expect("a result");
    // A declined elicitation has no content: the tool sees no answer.
    assert_eq!(text(&result), "confirm_delete(a.txt): confirmed = null");
}

#[tokio::test]
async fn the_ttl_cancels_the_task_and_says_so() {
    let server = common::serve().await;
    let client = client(&server.url).await;
    let error = client
        .task()
        .with_ttl(200)
        .call_tool("slow", json!({"ms": 10_000, "steps": 1}))
        .await
        .expect_err("the TTL runs out first");
    let Error::TtlExpired { task_id, ttl } = &error else {
        panic!("expected TtlExpired, got {error:?}");
    };
    assert_eq!(ttl.as_millis(), 200);
    assert!(
        error
            .to_string()
            .contains("did not finish within its TTL of 200 ms"),
        "{error}"
    );
    assert_eq!(
        server.seen.lock().expect("lock").cancelled,
        vec![task_id.clone()]
    );
    // The server settled it `cancelled`.
    let task = client.get_task(task_id).await.expect("still readable");
    assert_eq!(task.status, Status::Cancelled);
}

#[tokio::test]
async fn get_and_cancel_a_running_task() {
    let server = common::serve().await;
    let client = client(&server.url).await;
    let (created_tx, created) = tokio::sync::oneshot::channel();
    let created_tx = Mutex::new(Some(created_tx));
    let call = client
        .task()
        .on_update(move |u| {
            if let Update::Created(task) = u
                && let Some(tx) = created_tx.lock().expect("lock").take()
            {
                let _ = tx.send(task.id);
            }
        })
        .call_tool("slow", json!({"ms": 10_000, "steps": 1}));
    let other = async {
        let id = created.await.expect("a task was created");
        let task = client.get_task(&id).await.expect("tasks/get");
        assert_eq!(
            (task.id.as_str(), task.status),
            (id.as_str(), Status::Working)
        );
        assert_eq!(task.poll_interval.map(|d| d.as_millis()), Some(20));
        client.cancel_task(&id).await.expect("tasks/cancel");
        id
    };
    let (ended, id) = tokio::join!(call, other);
    match ended {
        Err(Error::Cancelled { task_id, .. }) => assert_eq!(task_id, id),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert_eq!(server.seen.lock().expect("lock").stopped, vec![id]);
    // An unknown task is -32602.
    match client.get_task("no-such-task").await {
        Err(Error::Rpc { error, .. }) => assert_eq!(error.code, -32602),
        other => panic!("expected -32602, got {other:?}"),
    }
}

#[tokio::test]
async fn the_callers_token_cancels_the_task() {
    let server = common::serve().await;
    let client = client(&server.url).await;
    let token = CancellationToken::new();
    let cancel = token.clone();
    let error = client
        .task()
        .with_cancel(token)
        .on_update(move |u| {
            if matches!(u, Update::Created(_)) {
                cancel.cancel();
            }
        })
        .call_tool("slow", json!({"ms": 10_000, "steps": 1}))
        .await
        .expect_err("cancelled");
    assert!(matches!(error, Error::Cancelled { .. }), "{error:?}");
    assert_eq!(server.seen.lock().expect("lock").cancelled.len(), 1);
}

#[tokio::test]
async fn failures_and_tool_errors() {
    let server = common::serve().await;
    let client = client(&server.url).await;
    match client.task().call_tool("fail", ()).await {
        Err(Error::TaskFailed { error, .. }) => {
            assert_eq!(
                (error.code, error.message.as_str()),
                (-32603, "intentional failure")
            );
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    // A tool error is the tool's answer, not a failure of the call.
    let result = client
        .task()
        .call_tool("tool_error", ())
        .await
        .expect("a result");
    assert_eq!(result.is_error, Some(true));
    assert_eq!(text(&result), "the disk is full");
}

#[tokio::test]
async fn an_input_round_before_the_task() {
    let server = common::serve().await;
    let client = Client::builder(Target::http(&server.url))
        .elicitation(accept_with(json!("Ada")))
        .connect()
        .await
        .expect("connected");
    let result = client
        .task()
        .call_tool("named", ())
        .await
        .expect("a result");
    assert_eq!(text(&result), "Hello, Ada!");
}

#[tokio::test]
async fn plain_tools_lists_and_what_2026_lacks() {
    let server = common::serve().await;
    let client = client(&server.url).await;
    let result = client
        .call_tool("greet", [("name", "longrun")])
        .await
        .expect("a result");
    assert_eq!(text(&result), "Hello, longrun!");
    let tools = client.list_tools().await.expect("tools/list");
    assert!(
        tools
            .iter()
            .any(|t| t.name == "slow" && t.task_support.is_none())
    );
    assert!(matches!(
        client.list_tasks(None).await,
        Err(Error::Unsupported(_))
    ));
}

#[tokio::test]
async fn pinned_to_2025_11_25_a_server_without_its_tasks_is_called_plainly() {
    let server = common::serve().await;
    // This server speaks 2025-11-25 too, but without 2025-11-25 tasks: plain calls only.
    let client = Client::builder(Target::http(&server.url))
        .protocol(Protocol::V2025_11_25)
        .connect()
        .await
        .expect("connected");
    assert_eq!(client.protocol(), Protocol::V2025_11_25);
    assert!(!client.supports_tasks());
    let result = client
        .call_tool("greet", json!({"name": "old"}))
        .await
        .expect("a result");
    assert_eq!(text(&result), "Hello, old!");
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let error = Client::connect(Target::http("http://127.0.0.1:9/mcp"))
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(error, Error::Connect { .. } | Error::Disconnected(_)),
        "{error:?}"
    );
}
