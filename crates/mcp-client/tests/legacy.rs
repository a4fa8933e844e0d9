//! The client against an in-process fake of a 2025-11-25 tasks server (sessions, SSE
//! responses with priming events, an elicitation sent on the stream of a blocking
//! `tasks/result`, progress notifications, `tasks/list` and `tasks/cancel`), so that the
//! hand-written 2025-11-25 layer is tested without Node. `tests/everything.rs` runs the same
//! flows against the reference server.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use longrun_mcp_client::{
    Client, Error, Protocol, Status, Target, Update,
    model::{ElicitRequestParams, ElicitResult, ElicitationAction},
};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

const SESSION: &str = "session-1";
const RELATED: &str = "io.modelcontextprotocol/related-task";

#[derive(Default)]
struct Fake {
    tasks: Mutex<HashMap<String, Value>>,
    /// The client's responses to the server's requests, by request id.
    answers: Mutex<HashMap<u64, Value>>,
    answered: Notify,
    next: AtomicU64,
    /// Problems the fake saw in what the client sent.
    complaints: Mutex<Vec<String>>,
}

fn now() -> &'static str {
    "2026-11-21T00:00:00Z"
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// An SSE response whose events come from a channel (so a handler can wait mid-stream).
fn sse(events: mpsc::Receiver<String>) -> Response {
    let stream = futures_util::stream::unfold(events, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), rx))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

fn event(n: u64, message: &Value) -> String {
    format!("event: message\nid: {n}\ndata: {message}\n\n")
}

impl Fake {
    fn complain(&self, what: String) {
        self.complaints.lock().expect("lock").push(what);
    }

    fn task(&self, id: &str) -> Option<Value> {
        self.tasks.lock().expect("lock").get(id).cloned()
    }

    fn set_status(&self, id: &str, status: &str, message: &str) {
        if let Some(task) = self.tasks.lock().expect("lock").get_mut(id) {
            task["status"] = json!(status);
            task["statusMessage"] = json!(message);
        }
    }
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = body
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        // The client's response to one of our requests.
        if let Some(n) = id.as_u64() {
            fake.answers.lock().expect("lock").insert(n, body);
            fake.answered.notify_waiters();
        }
        return StatusCode::ACCEPTED.into_response();
    };
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    if method == "initialize" {
        let result = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}, "tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}},
            "serverInfo": {"name": "fake", "version": "0"},
        });
        if params.pointer("/capabilities/elicitation").is_none() {
            fake.complain("no elicitation capability declared".into());
        }
        return ([("mcp-session-id", SESSION)], Json(rpc_result(&id, result))).into_response();
    }
    // Like the reference server: no session, no service.
    if headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) != Some(SESSION) {
        return (
            StatusCode::BAD_REQUEST,
            Json(rpc_error(
                &Value::Null,
                -32000,
                "Bad Request: Server not initialized",
            )),
        )
            .into_response();
    }
    if headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        != Some("2025-11-25")
    {
        fake.complain(format!("{method} without MCP-Protocol-Version"));
    }
    if id.is_null() {
        return StatusCode::ACCEPTED.into_response();
    }
    let reply = |result: Value| Json(rpc_result(&id, result)).into_response();
    match method.as_str() {
        "tools/list" => reply(json!({"tools": [
            {"name": "ask", "inputSchema": {"type": "object"}, "execution": {"taskSupport": "required"}},
            {"name": "slow", "inputSchema": {"type": "object"}, "execution": {"taskSupport": "optional"}},
            {"name": "echo", "inputSchema": {"type": "object"}},
        ]})),
        "tools/call" => {
            let name = params["name"].as_str().unwrap_or_default().to_owned();
            if name == "echo" {
                if params.get("task").is_some() {
                    fake.complain("echo (no taskSupport) was task-augmented".into());
                }
                let token = params
                    .pointer("/_meta/progressToken")
                    .cloned()
                    .unwrap_or(Value::Null);
                let (tx, rx) = mpsc::channel(4);
                let result = rpc_result(
                    &id,
                    json!({"content": [{"type": "text", "text": params["arguments"]["text"]}]}),
                );
                tokio::spawn(async move {
                    let _ = tx.send("id: 0\ndata: \n\n".to_owned()).await; // a priming event
                    let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": 1, "total": 2, "message": "half"}});
                    let _ = tx.send(event(1, &progress)).await;
                    let _ = tx.send(event(2, &result)).await;
                });
                return sse(rx);
            }
            let Some(task) = params.get("task") else {
                return Json(rpc_error(&id, -32601, "this tool requires a task")).into_response();
            };
            let task_id = format!("t{}", fake.next.fetch_add(1, Ordering::Relaxed));
            let created = json!({"taskId": task_id, "status": "working", "statusMessage": "started",
                "ttl": task.get("ttl").cloned().unwrap_or(json!(60_000)), "pollInterval": 20,
                "createdAt": now(), "lastUpdatedAt": now()});
            fake.tasks
                .lock()
                .expect("lock")
                .insert(task_id.clone(), created.clone());
            if name == "ask" {
                let fake = fake.clone();
                let task_id = task_id.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    fake.set_status(&task_id, "input_required", "which one?");
                });
            }
            reply(json!({"task": created}))
        }
        "tasks/get" => match fake.task(params["taskId"].as_str().unwrap_or_default()) {
            Some(task) => reply(task),
            None => Json(rpc_error(&id, -32602, "Task not found")).into_response(),
        },
        "tasks/list" => reply(
            json!({"tasks": fake.tasks.lock().expect("lock").values().cloned().collect::<Vec<_>>()}),
        ),
        "tasks/cancel" => {
            let task_id = params["taskId"].as_str().unwrap_or_default();
            match fake.task(task_id) {
                Some(task)
                    if ["completed", "failed", "cancelled"]
                        .contains(&task["status"].as_str().unwrap_or_default()) =>
                {
                    Json(rpc_error(
                        &id,
                        -32602,
                        "Cannot cancel task in terminal status",
                    ))
                    .into_response()
                }
                Some(_) => {
                    fake.set_status(task_id, "cancelled", "cancelled by request");
                    reply(fake.task(task_id).unwrap_or_default())
                }
                None => Json(rpc_error(&id, -32602, "Task not found")).into_response(),
            }
        }
        "tasks/result" => {
            let task_id = params["taskId"].as_str().unwrap_or_default().to_owned();
            let (tx, rx) = mpsc::channel(4);
            let fake = fake.clone();
            tokio::spawn(async move {
                let _ = tx.send(": keepalive\n\n".to_owned()).await;
                let ask = json!({"jsonrpc": "2.0", "id": 900, "method": "elicitation/create", "params": {
                    "message": "Which one?",
                    "requestedSchema": {"type": "object", "properties": {"choice": {"type": "string", "enum": ["a", "b"]}}, "required": ["choice"]},
                    "_meta": {RELATED: {"taskId": task_id}},
                }});
                let _ = tx.send(event(1, &ask)).await;
                let answer = loop {
                    let answered = fake.answered.notified();
                    if let Some(answer) = fake.answers.lock().expect("lock").remove(&900) {
                        break answer;
                    }
                    if tokio::time::timeout(Duration::from_secs(10), answered)
                        .await
                        .is_err()
                    {
                        fake.complain("the elicitation was never answered".into());
                        return;
                    }
                };
                if answer.pointer(&format!(
                    "/result/_meta/{}/taskId",
                    RELATED.replace('/', "~1")
                )) != Some(&json!(task_id))
                {
                    fake.complain(format!("the answer lacks the related-task _meta: {answer}"));
                }
                let choice = answer
                    .pointer("/result/content/choice")
                    .cloned()
                    .unwrap_or(Value::Null);
                fake.set_status(&task_id, "completed", "done");
                let result = json!({"content": [{"type": "text", "text": format!("you chose {choice}")}],
                    "_meta": {RELATED: {"taskId": task_id}}});
                let _ = tx.send(event(2, &rpc_result(&id, result))).await;
            });
            sse(rx)
        }
        other => Json(rpc_error(&id, -32601, &format!("no method {other}"))).into_response(),
    }
}

async fn serve() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let router = Router::new()
        .route(
            "/mcp",
            post(handle)
                .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{address}/mcp"), fake)
}

fn choose_b(_params: ElicitRequestParams) -> std::future::Ready<ElicitResult> {
    std::future::ready(
        ElicitResult::new(ElicitationAction::Accept).with_content(json!({"choice": "b"})),
    )
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

#[tokio::test]
async fn a_task_asks_during_tasks_result_and_the_handler_answers() {
    let (url, fake) = serve().await;
    let client = Client::builder(Target::http(url))
        .elicitation(choose_b)
        .connect()
        .await
        .expect("connected (after the 2026-07-28 probe is refused)");
    assert_eq!(client.protocol(), Protocol::V2025_11_25);
    let updates = Arc::new(Mutex::new(Vec::new()));
    let seen = updates.clone();
    let result = client
        .task()
        .with_ttl(10_000)
        .on_update(move |u| seen.lock().expect("lock").push(u))
        .call_tool("ask", json!({}))
        .await
        .expect("a result");
    assert_eq!(text(&result), "you chose \"b\"");
    let updates = updates.lock().expect("lock").clone();
    assert!(
        matches!(&updates[0], Update::Created(t) if t.ttl == Some(Duration::from_secs(10))),
        "{updates:?}"
    );
    assert!(
        updates
            .iter()
            .any(|u| matches!(u, Update::Status(t) if t.status == Status::InputRequired)),
        "{updates:?}"
    );
    assert!(
        updates
            .iter()
            .any(|u| matches!(u, Update::InputRequested { key, .. } if key == "elicitation-900")),
        "{updates:?}"
    );
    assert_eq!(*fake.complaints.lock().expect("lock"), Vec::<String>::new());
    client.close().await;
}

#[tokio::test]
async fn a_plain_call_reports_progress_from_its_stream() {
    let (url, fake) = serve().await;
    let client = Client::builder(Target::http(url))
        .protocol(Protocol::V2025_11_25)
        .elicitation(choose_b)
        .connect()
        .await
        .expect("connected");
    let progress = Arc::new(Mutex::new(Vec::new()));
    let seen = progress.clone();
    let result = client
        .task()
        .on_update(move |u| seen.lock().expect("lock").push(u))
        .call_tool("echo", json!({"text": "hi"}))
        .await
        .expect("a result");
    assert_eq!(text(&result), "hi");
    assert_eq!(
        *progress.lock().expect("lock"),
        vec![Update::Progress {
            progress: 1.0,
            total: Some(2.0),
            message: Some("half".into())
        }]
    );
    assert_eq!(*fake.complaints.lock().expect("lock"), Vec::<String>::new());
}

#[tokio::test]
async fn ttl_get_list_and_cancel() {
    let (url, fake) = serve().await;
    let client = Client::builder(Target::http(url))
        .elicitation(choose_b)
        .connect()
        .await
        .expect("connected");
    let error = client
        .task()
        .with_ttl(200)
        .call_tool("slow", json!({}))
        .await
        .expect_err("the TTL runs out");
    let Error::TtlExpired { task_id, .. } = error else {
        panic!("expected TtlExpired, got {error:?}");
    };
    let task = client.get_task(&task_id).await.expect("tasks/get");
    assert_eq!(task.status, Status::Cancelled);
    assert_eq!(task.poll_interval, Some(Duration::from_millis(20)));
    let page = client.list_tasks(None).await.expect("tasks/list");
    assert!(page.tasks.iter().any(|t| t.id == task_id));
    match client.cancel_task(&task_id).await {
        Err(Error::Rpc { error, .. }) => assert_eq!(error.code, -32602),
        other => panic!("expected -32602, got {other:?}"),
    }
    match client.get_task("nope").await {
        Err(Error::Rpc { error, .. }) => assert_eq!(error.code, -32602),
        other => panic!("expected -32602, got {other:?}"),
    }
    assert_eq!(*fake.complaints.lock().expect("lock"), Vec::<String>::new());
}
