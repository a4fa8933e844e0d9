//! Task notifications: a 2026-07-28 `subscriptions/listen` stream with `taskIds` carries one
//! `notifications/tasks` per change, the task as `tasks/get` shows it, also for a task running
//! on another node of the same store; a 2025-11-25 session's GET stream carries
//! `notifications/tasks/status`, also for each step a task saves.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::sync::Arc;

use common::{ALICE, BOB, Client, config, runtime_with, serve};
use serde_json::{Value, json};

/// Starts a `report` task (it waits on its question `more`) through `client`.
async fn start_report(client: &Client) -> String {
    let created = client
        .modern_ok(
            "tools/call",
            json!({"name": "report", "arguments": {}}),
            true,
        )
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    client.wait_for(&id, &["input_required"]).await;
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listen_stream_follows_tasks_across_nodes_sharing_a_store() {
    // Two nodes over one store: the task runs on the first, the client listens on the second.
    let store = Arc::new(longrun::store::MemoryStore::new());
    let node = || {
        runtime_with(longrun::Options {
            store: Some(store.clone()),
            ..Default::default()
        })
    };
    follow_across(node(), node()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listen_stream_follows_tasks_across_postgresql_nodes() {
    let Some(url) = postgres_url() else { return };
    let schema = DropSchema {
        url: url.clone(),
        name: format!("lrt_mcp_{}", std::process::id()),
    };
    let mut nodes = Vec::new();
    for name in ["mcp-a", "mcp-b"] {
        let options = longrun::store::PostgresOptions::new(&url)
            .schema(&schema.name)
            .node(longrun::cluster::NodeId::new(name));
        let store = longrun::store::PostgresStore::connect(options)
            .await
            .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
        nodes.push(runtime_with(longrun::Options::clustered(store)));
    }
    let listening = nodes.pop().unwrap();
    let running = nodes.pop().unwrap();
    follow_across(running, listening).await;
}

/// Starts a task on `running`, follows it with a listen stream on `listening`.
async fn follow_across(running: longrun::Runtime, listening: longrun::Runtime) {
    let alice_running = Client::new(&serve(running, config()).await, Some(ALICE));
    let url = serve(listening, config()).await;
    let alice = Client::new(&url, Some(ALICE));
    let id = start_report(&alice_running).await;
    let foreign = start_report(&Client::new(&url, Some(BOB))).await;

    // Without the tasks extension, taskIds are refused.
    let refused = alice
        .modern(
            9,
            "subscriptions/listen",
            json!({"notifications": {"taskIds": [id]}}),
            false,
        )
        .await
        .response()
        .await;
    assert_eq!(refused["error"]["code"], -32021);

    let mut stream = alice
        .modern(
            9,
            "subscriptions/listen",
            json!({"notifications": {"taskIds": [id, foreign, "task_nonsense"], "toolsListChanged": true}}),
            true,
        )
        .await;
    let ack = stream.next().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
    // Only the caller's own task is acknowledged, and nothing it does not send.
    assert_eq!(ack["params"]["notifications"], json!({"taskIds": [id]}));

    // The answer goes to the node the task runs on; the listener on the other sees it go on.
    alice_running
        .modern_ok(
            "tasks/update",
            json!({"taskId": id, "inputResponses": {"more": {"action": "accept", "content": {"value": true}}}}),
            true,
        )
        .await;
    let mut seen: Vec<Value> = Vec::new();
    while seen
        .last()
        .is_none_or(|last| last["params"]["status"] != "completed")
    {
        let message = stream.next().await.expect("the stream goes on");
        assert_eq!(message["method"], "notifications/tasks", "{message}");
        assert_eq!(message["params"]["taskId"], id.as_str());
        assert_eq!(
            message["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            9
        );
        seen.push(message);
    }
    // One notification per change: no two in a row show the same task.
    for pair in seen.windows(2) {
        let strip = |message: &Value| {
            let mut params = message["params"].clone();
            params.as_object_mut().unwrap().remove("lastUpdatedAt");
            params
        };
        assert_ne!(strip(&pair[0]), strip(&pair[1]));
    }
    // The last one is the task as tasks/get shows it.
    let mut shown = alice
        .modern_ok("tasks/get", json!({"taskId": id}), true)
        .await;
    let mut last = seen.last().unwrap()["params"].clone();
    for view in [&mut shown, &mut last] {
        let view = view.as_object_mut().unwrap();
        view.remove("_meta");
        view.remove("resultType");
    }
    assert_eq!(last, shown);
    assert_eq!(last["result"]["content"][0]["text"], "reported");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_get_stream_carries_status_notifications() {
    let url = serve(common::runtime(), config()).await;
    let session = common::Session::open(&Client::new(&url, Some(ALICE)), json!({})).await;
    let mut stream = session
        .client
        .get(&[
            ("mcp-session-id", session.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ])
        .await;
    assert_eq!(stream.status, 200);
    let created = session
        .ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 30}, "task": {}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    loop {
        let message = stream.next().await.expect("status notifications");
        assert_eq!(message["method"], "notifications/tasks/status");
        assert_eq!(message["params"]["taskId"], id.as_str());
        if message["params"]["status"] == "completed" {
            break;
        }
    }
    assert!(
        stream.last_event_id.is_some(),
        "the GET stream's events carry ids"
    );
}

/// The test runtime with `stepper`: saves the steps `first` and `second`, then runs until
/// cancelled.
fn with_stepper() -> longrun::Runtime {
    let runtime = common::runtime();
    let mut stepper =
        longrun::KindSpec::new("stepper").task_support(longrun::kind::TaskSupport::Optional);
    stepper.input_schema = json!({"type": "object", "properties": {}});
    runtime
        .register(stepper, |ctx: longrun::Context, _: Value| async move {
            let _: String = ctx
                .step("first", async {
                    Ok::<_, longrun::TaskError>("one".to_owned())
                })
                .await?;
            let _: String = ctx
                .step("second", async {
                    Ok::<_, longrun::TaskError>("two".to_owned())
                })
                .await?;
            ctx.cancelled().await;
            Err::<(), _>(longrun::TaskError::new("cancelled", "stopped"))
        })
        .unwrap();
    runtime
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_step_is_a_status_notification_on_the_session_stream() {
    let url = serve(with_stepper(), config()).await;
    let session = common::Session::open(&Client::new(&url, Some(ALICE)), json!({})).await;
    let mut stream = session
        .client
        .get(&[
            ("mcp-session-id", session.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ])
        .await;
    let created = session
        .ok(
            "tools/call",
            json!({"name": "stepper", "arguments": {}, "task": {}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    // One notification per step, each naming its own, though the status stays `working`.
    // (The first notification, for `working`, reads the task, so it may already show a step:
    // what counts is the pair that follows.)
    let first = r#""working" "step `first` done""#;
    let second = r#""working" "step `second` done""#;
    let mut seen: Vec<String> = Vec::new();
    let followed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !seen.ends_with(&[first.to_owned(), second.to_owned()]) {
            let message = stream.next().await.expect("status notifications");
            assert_eq!(message["method"], "notifications/tasks/status");
            assert_eq!(message["params"]["taskId"], id.as_str());
            let params = &message["params"];
            seen.push(format!("{} {}", params["status"], params["statusMessage"]));
        }
    })
    .await;
    assert!(followed.is_ok(), "no notification per step: {seen:#?}");
    session.ok("tasks/cancel", json!({"taskId": id})).await;
    loop {
        let message = stream.next().await.expect("status notifications");
        if message["params"]["status"] == "cancelled" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_step_is_the_status_message_of_tasks_get() {
    let url = serve(with_stepper(), config()).await;
    let alice = Client::new(&url, Some(ALICE));
    let created = alice
        .modern_ok(
            "tools/call",
            json!({"name": "stepper", "arguments": {}}),
            true,
        )
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    let mut shown = Value::Null;
    for _ in 0..400 {
        shown = alice
            .modern_ok("tasks/get", json!({"taskId": id}), true)
            .await;
        if shown["statusMessage"] == "step `second` done" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(shown["statusMessage"], "step `second` done", "{shown}");
    assert_eq!(shown["status"], "working", "{shown}");
    alice
        .modern_ok("tasks/cancel", json!({"taskId": id}), true)
        .await;
}

/// The test database's URL, as the other PostgreSQL tests take it: required in CI, skipped
/// loudly elsewhere.
fn postgres_url() -> Option<String> {
    const VAR: &str = "LONGRUN_TEST_POSTGRES_URL";
    if let Ok(url) = std::env::var(VAR) {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL tests need {VAR}; .ci/run sets it"
    );
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(
        format!("\n*** SKIPPED: the MCP door's PostgreSQL test. Set {VAR} to run it. ***\n\n")
            .as_bytes(),
    );
    None
}

/// Drops the test's schema, and everything in it, at the end.
struct DropSchema {
    url: String,
    name: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on a future of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(connection);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await;
            });
        })
        .join();
    }
}
