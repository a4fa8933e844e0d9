//! The client and the gateway against the reference server
//! `@modelcontextprotocol/server-everything` (2025-11-25 tasks), which `tests/mcp-client/run`
//! installs and starts. These tests need it: set `LONGRUN_TEST_EVERYTHING_URL` to its
//! Streamable HTTP endpoint, and `LONGRUN_TEST_EVERYTHING_STDIO` to the command that starts it
//! over stdio (words separated by spaces). Without them each test says loudly that it skipped.

use std::{
    io::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use longrun::{
    Outcome, Runtime, StartOptions,
    event::{Change, Notice, Seq},
    task::Status as TaskStatus,
};
use longrun_mcp_client::{
    Client, Error, Protocol, Status, Target, TaskSupport, Update,
    gateway::{Upstream, register_upstreams},
    model::{ElicitRequestParams, ElicitResult, ElicitationAction},
};
use serde_json::{Value, json};

const TOOL: &str = "simulate-research-query";

/// The server's URL, or `None` after saying loudly that the test is skipped.
fn url(test: &str) -> Option<String> {
    let url = std::env::var("LONGRUN_TEST_EVERYTHING_URL").ok();
    if url.is_none() {
        // Straight to stderr: the test harness would swallow `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: LONGRUN_TEST_EVERYTHING_URL is not set (tests/mcp-client/run sets it)"
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

/// Picks `choice` for the form's one field, and remembers what it was asked.
fn answering(
    choice: &'static str,
    asked: Arc<Mutex<Vec<Value>>>,
) -> impl Fn(ElicitRequestParams) -> std::future::Ready<ElicitResult> {
    move |params| {
        let params = serde_json::to_value(&params).unwrap_or_default();
        let field = params
            .pointer("/requestedSchema/properties")
            .and_then(Value::as_object)
            .and_then(|p| p.keys().next().cloned())
            .unwrap_or_default();
        asked.lock().expect("lock").push(params);
        std::future::ready(
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({ field: choice })),
        )
    }
}

#[tokio::test]
async fn a_research_query_runs_as_a_task_to_completion() {
    let Some(url) = url("a_research_query_runs_as_a_task_to_completion") else {
        return;
    };
    let client = Client::connect(Target::http(url)).await.expect("connected");
    assert_eq!(client.protocol(), Protocol::V2025_11_25);
    assert!(client.supports_tasks());
    let tools = client.list_tools().await.expect("tools/list");
    let support = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.task_support)
    };
    assert_eq!(support(TOOL), Some(TaskSupport::Required));
    assert_eq!(support("echo"), Some(TaskSupport::Forbidden));

    let updates = Arc::new(Mutex::new(Vec::new()));
    let seen = updates.clone();
    let result = client
        .task()
        .with_ttl(60_000)
        .on_update(move |u| seen.lock().expect("lock").push(u))
        .call_tool(TOOL, json!({"topic": "rust"}))
        .await
        .expect("a result");
    assert!(
        text(&result).starts_with("# Research Report: rust"),
        "{}",
        text(&result)
    );
    let updates = updates.lock().expect("lock").clone();
    assert!(
        matches!(&updates[0], Update::Created(t) if t.status == Status::Working),
        "{updates:?}"
    );
    let messages: Vec<_> = updates
        .iter()
        .filter_map(|u| match u {
            Update::Status(t) | Update::Created(t) => t.status_message.clone(),
            _ => None,
        })
        .collect();
    assert!(
        messages.len() >= 2,
        "status messages reach the caller: {messages:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn an_ambiguous_query_is_answered_by_the_elicitation_handler() {
    let Some(url) = url("an_ambiguous_query_is_answered_by_the_elicitation_handler") else {
        return;
    };
    let asked = Arc::new(Mutex::new(Vec::new()));
    let client = Client::builder(Target::http(url))
        .elicitation(answering("snake", asked.clone()))
        .connect()
        .await
        .expect("connected");
    let result = client
        .task()
        .call_tool(TOOL, json!({"topic": "python", "ambiguous": true}))
        .await
        .expect("a result");
    assert!(
        text(&result).contains("python (snake)"),
        "{}",
        text(&result)
    );
    let asked = asked.lock().expect("lock");
    assert_eq!(asked.len(), 1);
    assert!(asked[0]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"].is_string());
}

#[tokio::test]
async fn the_ttl_cancels_the_task() {
    let Some(url) = url("the_ttl_cancels_the_task") else {
        return;
    };
    let client = Client::connect(Target::http(url)).await.expect("connected");
    let error = client
        .task()
        .with_ttl(1_500)
        .call_tool(TOOL, json!({"topic": "slow"}))
        .await
        .expect_err("the query takes longer than 1.5 s");
    let Error::TtlExpired { task_id, .. } = &error else {
        panic!("expected TtlExpired, got {error:?}");
    };
    assert_eq!(
        client.get_task(task_id).await.expect("tasks/get").status,
        Status::Cancelled
    );
}

#[tokio::test]
async fn list_get_and_cancel() {
    let Some(url) = url("list_get_and_cancel") else {
        return;
    };
    let client = Client::connect(Target::http(url)).await.expect("connected");
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
        .call_tool(TOOL, json!({"topic": "cancel me"}));
    let other = async {
        let id = created.await.expect("created");
        assert_eq!(
            client.get_task(&id).await.expect("tasks/get").status,
            Status::Working
        );
        let page = client.list_tasks(None).await.expect("tasks/list");
        assert!(page.tasks.iter().any(|t| t.id == id), "{page:?}");
        client.cancel_task(&id).await.expect("tasks/cancel");
        id
    };
    let (ended, id) = tokio::join!(call, other);
    assert!(
        matches!(&ended, Err(Error::Cancelled { task_id, .. }) if *task_id == id),
        "{ended:?}"
    );
    assert_eq!(
        client.get_task(&id).await.expect("tasks/get").status,
        Status::Cancelled
    );
    // Cancelling an ended task is -32602 in 2025-11-25.
    match client.cancel_task(&id).await {
        Err(Error::Rpc { error, .. }) => assert_eq!(error.code, -32602),
        other => panic!("expected -32602, got {other:?}"),
    }
    // A tool that does not run as a task is called plainly.
    let echoed = client
        .call_tool("echo", json!({"message": "hi"}))
        .await
        .expect("echo");
    assert_eq!(text(&echoed), "Echo: hi");
}

#[tokio::test]
async fn over_stdio_too() {
    let Ok(command) = std::env::var("LONGRUN_TEST_EVERYTHING_STDIO") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED over_stdio_too: LONGRUN_TEST_EVERYTHING_STDIO is not set (tests/mcp-client/run sets it)"
        );
        return;
    };
    let mut words = command.split_whitespace();
    let mut target = Target::stdio(words.next().expect("a command"));
    for word in words {
        target = target.arg(word);
    }
    let client = Client::builder(target)
        .elicitation(answering("comedy", Arc::default()))
        .connect()
        .await
        .expect("connected");
    assert_eq!(client.protocol(), Protocol::V2025_11_25);
    let result = client
        .task()
        .with_ttl(60_000)
        .call_tool(TOOL, json!({"topic": "python", "ambiguous": true}))
        .await
        .expect("a result");
    assert!(
        text(&result).contains("python (comedy)"),
        "{}",
        text(&result)
    );
    client.close().await;
}

/// Every change of a task until `stop` says so (or the task ends).
async fn changes_until(
    runtime: &Runtime,
    id: longrun::TaskId,
    stop: impl Fn(&Change) -> bool,
) -> Vec<Change> {
    let mut subscription = runtime.subscribe(id, Seq::ZERO).await.expect("subscribed");
    let mut changes = Vec::new();
    while let Some(notice) = tokio::time::timeout(Duration::from_secs(60), subscription.next())
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

#[tokio::test]
async fn the_gateway_runs_an_upstream_tool_as_a_task() {
    let Some(url) = url("the_gateway_runs_an_upstream_tool_as_a_task") else {
        return;
    };
    let runtime = Runtime::new(Default::default());
    let kinds = register_upstreams(&runtime, &[Upstream::http("everything", url)])
        .await
        .expect("registered");
    let kind = format!("everything.{TOOL}");
    assert!(
        kinds.contains(&kind) && kinds.contains(&"everything.echo".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(
        runtime.kind(&kind).expect("kind").task_support,
        longrun::kind::TaskSupport::Required
    );

    // To completion, with the upstream's status messages as progress.
    let id = runtime
        .start(&kind, json!({"topic": "tokio"}), StartOptions::background())
        .await
        .expect("started")
        .id();
    let changes = changes_until(&runtime, id, |_| false).await;
    let progress: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Progress(p) => p.message.clone(),
            _ => None,
        })
        .collect();
    assert!(progress.len() >= 2, "{progress:?}");
    let task = runtime.get(id).await.expect("the task");
    let Some(Outcome::Completed { output }) = task.outcome() else {
        panic!("expected completed, got {:?}", task.outcome());
    };
    assert!(
        output["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("# Research Report: tokio"))
    );

    // A question upstream is the task's question; the answer goes back upstream.
    let id = runtime
        .start(
            &kind,
            json!({"topic": "python", "ambiguous": true}),
            StartOptions::background(),
        )
        .await
        .expect("started")
        .id();
    let changes = changes_until(&runtime, id, |c| matches!(c, Change::InputRequested { .. })).await;
    let Some(Change::InputRequested { key, request }) = changes.last() else {
        panic!("no question in {changes:?}");
    };
    assert!(
        request["schema"]["properties"]["interpretation"].is_object(),
        "{request}"
    );
    assert_eq!(
        runtime.get(id).await.expect("task").status(),
        TaskStatus::InputRequired
    );
    runtime
        .answer(id, key, json!({"interpretation": "programming"}))
        .await
        .expect("answered");
    let task = runtime.handle(id).wait().await.expect("ended");
    let Some(Outcome::Completed { output }) = task.outcome() else {
        panic!("expected completed, got {:?}", task.outcome());
    };
    assert!(
        output["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("python (programming)"))
    );

    // Cancelling the task cancels upstream and ends it promptly.
    let id = runtime
        .start(&kind, json!({"topic": "stop"}), StartOptions::background())
        .await
        .expect("started")
        .id();
    changes_until(&runtime, id, |c| matches!(c, Change::Progress(_))).await;
    runtime.cancel(id).await.expect("cancelled");
    let task = tokio::time::timeout(Duration::from_secs(10), runtime.handle(id).wait())
        .await
        .expect("ends promptly")
        .expect("ended");
    assert_eq!(task.status(), TaskStatus::Cancelled);
}

#[tokio::test]
async fn the_gateway_relays_progress_of_a_plain_upstream_call() {
    let Some(url) = url("the_gateway_relays_progress_of_a_plain_upstream_call") else {
        return;
    };
    let runtime = Runtime::new(Default::default());
    register_upstreams(&runtime, &[Upstream::http("everything", url)])
        .await
        .expect("registered");
    let kind = "everything.trigger-long-running-operation";
    let id = runtime
        .start(
            kind,
            json!({"duration": 2, "steps": 4}),
            StartOptions::background(),
        )
        .await
        .expect("started")
        .id();
    let changes = changes_until(&runtime, id, |_| false).await;
    let percents: Vec<f64> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Progress(p) => p.percent,
            _ => None,
        })
        .collect();
    assert!(
        !percents.is_empty(),
        "progress notifications become progress: {changes:?}"
    );
    assert!(percents.iter().all(|p| (0.0..=100.0).contains(p)));
    let task = runtime.get(id).await.expect("the task");
    assert!(
        matches!(task.outcome(), Some(Outcome::Completed { .. })),
        "{:?}",
        task.outcome()
    );

    // A plain call is cancelled with notifications/cancelled; the task ends at once.
    let id = runtime
        .start(
            kind,
            json!({"duration": 60, "steps": 60}),
            StartOptions::background(),
        )
        .await
        .expect("started")
        .id();
    changes_until(&runtime, id, |c| matches!(c, Change::Progress(_))).await;
    runtime.cancel(id).await.expect("cancelled");
    let task = tokio::time::timeout(Duration::from_secs(10), runtime.handle(id).wait())
        .await
        .expect("ends promptly")
        .expect("ended");
    assert_eq!(task.status(), TaskStatus::Cancelled);
}
