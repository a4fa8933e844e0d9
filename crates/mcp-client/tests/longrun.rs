//! The client against longrun's own MCP door (`longrun serve` with
//! `examples/mcp-conformance/longrun.toml`), in both protocol generations. `tests/mcp-client/run`
//! starts the server and sets `LONGRUN_TEST_SERVER_URL`; without it each test says loudly that
//! it skipped.

use std::{
    io::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use longrun_mcp_client::{
    Client, Error, Protocol, Status, Target, Update,
    model::{ElicitRequestParams, ElicitResult, ElicitationAction},
};
use serde_json::{Value, json};

fn url(test: &str) -> Option<String> {
    let url = std::env::var("LONGRUN_TEST_SERVER_URL").ok();
    if url.is_none() {
        // Straight to stderr: the test harness would swallow `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: LONGRUN_TEST_SERVER_URL is not set (tests/mcp-client/run sets it)"
        );
    }
    url
}

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

/// Accepts every form with `true` for boolean fields and `"Ada"` for the others.
fn accept(params: ElicitRequestParams) -> std::future::Ready<ElicitResult> {
    let params = serde_json::to_value(&params).unwrap_or_default();
    let mut content = serde_json::Map::new();
    if let Some(fields) = params
        .pointer("/requestedSchema/properties")
        .and_then(Value::as_object)
    {
        for (name, field) in fields {
            let value = match field.get("type").and_then(Value::as_str) {
                Some("boolean") => json!(true),
                _ => json!("Ada"),
            };
            content.insert(name.clone(), value);
        }
    }
    std::future::ready(
        ElicitResult::new(ElicitationAction::Accept).with_content(Value::Object(content)),
    )
}

async fn connect(url: &str, protocol: Protocol) -> Client {
    let client = Client::builder(Target::http(url))
        .protocol(protocol)
        .elicitation(accept)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connected with {protocol}: {e}"));
    assert_eq!(client.protocol(), protocol);
    assert!(
        client.supports_tasks(),
        "{protocol}: the server runs tool calls as tasks"
    );
    client
}

#[tokio::test]
async fn auto_picks_2026_07_28() {
    let Some(url) = url("auto_picks_2026_07_28") else {
        return;
    };
    let client = Client::connect(Target::http(url)).await.expect("connected");
    assert_eq!(client.protocol(), Protocol::V2026_07_28);
}

#[tokio::test]
async fn tasks_run_to_completion_in_both_generations() {
    let Some(url) = url("tasks_run_to_completion_in_both_generations") else {
        return;
    };
    for protocol in [Protocol::V2026_07_28, Protocol::V2025_11_25] {
        let client = connect(&url, protocol).await;
        let updates = Arc::new(Mutex::new(Vec::new()));
        let seen = updates.clone();
        let result = client
            .task()
            .with_ttl(60_000)
            .on_update(move |u| seen.lock().expect("lock").push(u))
            .call_tool("slow_compute", json!({"seconds": 1}))
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e}"));
        assert_eq!(
            text(&result),
            "slow_compute(compute) done after 1s",
            "{protocol}"
        );
        assert!(
            updates
                .lock()
                .expect("lock")
                .iter()
                .any(|u| matches!(u, Update::Created(_))),
            "{protocol}: it ran as a task"
        );
        let greeted = client
            .call_tool("greet", json!({"name": "Ada"}))
            .await
            .expect("greet");
        assert_eq!(text(&greeted), "Hello, Ada!", "{protocol}");
        client.close().await;
    }
}

#[tokio::test]
async fn questions_are_answered_in_both_generations() {
    let Some(url) = url("questions_are_answered_in_both_generations") else {
        return;
    };
    for protocol in [Protocol::V2026_07_28, Protocol::V2025_11_25] {
        let client = connect(&url, protocol).await;
        let result = client
            .task()
            .with_ttl(60_000)
            .call_tool("confirm_delete", json!({"filename": "a.txt"}))
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e}"));
        assert_eq!(
            text(&result),
            "confirm_delete(a.txt): confirmed = true",
            "{protocol}"
        );
        let both = client
            .task()
            .with_ttl(60_000)
            .call_tool("multi_input", json!({}))
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e}"));
        assert!(
            text(&both).starts_with("multi_input: name = Ada"),
            "{protocol}: {}",
            text(&both)
        );
    }
}

#[tokio::test]
async fn ttl_errors_and_cancel_in_both_generations() {
    let Some(url) = url("ttl_errors_and_cancel_in_both_generations") else {
        return;
    };
    for protocol in [Protocol::V2026_07_28, Protocol::V2025_11_25] {
        let client = connect(&url, protocol).await;
        let error = client
            .task()
            .with_ttl(1_000)
            .call_tool("slow_compute", json!({"seconds": 30}))
            .await
            .expect_err("the TTL runs out first");
        let Error::TtlExpired { task_id, .. } = &error else {
            panic!("{protocol}: expected TtlExpired, got {error:?}");
        };
        // 2026-07-28 cancellation is cooperative: the task settles shortly after.
        let mut status = Status::Working;
        for _ in 0..50 {
            status = client.get_task(task_id).await.expect("tasks/get").status;
            if status.is_terminal() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, Status::Cancelled, "{protocol}");

        // A tool error is the tool's answer; a protocol error fails the task.
        let failing = client
            .task()
            .call_tool("failing_job", json!({}))
            .await
            .expect("a result");
        assert_eq!(failing.is_error, Some(true), "{protocol}");
        match client
            .task()
            .call_tool("protocol_error_job", json!({}))
            .await
        {
            Err(Error::TaskFailed { .. }) => {}
            other => panic!("{protocol}: expected TaskFailed, got {other:?}"),
        }
        match client
            .get_task("task_00000000000000000000000000000000")
            .await
        {
            Err(Error::Rpc { error, .. }) => assert_eq!(error.code, -32602, "{protocol}"),
            other => panic!("{protocol}: expected -32602, got {other:?}"),
        }
    }
    // Only 2025-11-25 lists tasks.
    let client = connect(&url, Protocol::V2025_11_25).await;
    let page = client.list_tasks(None).await.expect("tasks/list");
    assert!(!page.tasks.is_empty());
}
