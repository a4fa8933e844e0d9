//! Every door is the same product: the real `longrun` binary, driven over `/v1`, `/mcp`, `/a2a`
//! and the dashboard, holds one gate, one set of limits and one owner rule on all of them.
//!
//! The first tests are the defects of issue 11, as a new user met them: a server anonymous on
//! loopback with `[limits] body_bytes = 65536`, `streams_per_principal = 2` and
//! `max_wait_ms = 3000`. The last one crosses doors: a task started over MCP is seen, answered
//! and cancelled over `/v1` and A2A by its owner, and by nobody else.
//!
//! No assertion here is about time; the timeouts are hang guards.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_longrun");
const ALICE: &str = "alice-secret";
const BOB: &str = "bob-secret";
/// The longest any one request may take before the test counts it as hung.
const HANG: Duration = Duration::from_secs(30);
const MCP_VERSION: &str = "2026-07-28";

/// A `longrun serve` on a free loopback port, with `config` (a TOML text) and the fixture
/// handler beside it.
struct Server {
    child: Child,
    url: String,
    _stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::copy(fixtures.join("handler.py"), dir.path().join("handler.py")).unwrap();
        let path = dir.path().join("longrun.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the longrun binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            _stdout: stdout,
            _dir: dir,
        }
    }

    fn at(&self, client: &Client, method: &str, path: &str) -> RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        client
            .request(method, format!("{}{path}", self.url))
            .timeout(HANG)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KIND: &str = r#"
[[kinds]]
name = "steps"
description = "Steps with progress; asks `go` half-way when the input says `ask`."
command = ["python3", "handler.py"]
cancel_grace_ms = 3000
term_grace_ms = 1000
"#;

/// The issue's setting: anonymous on loopback, with small limits.
fn anonymous() -> Server {
    Server::start(&format!(
        "[server]\nanonymous = true\n\n[limits]\nbody_bytes = 65536\nstreams_per_principal = 2\nmax_wait_ms = 3000\n{KIND}"
    ))
}

/// Two principals, alice and bob.
fn with_tokens() -> Server {
    Server::start(&format!(
        "[[tokens]]\ntoken = \"{ALICE}\"\nprincipal = \"alice\"\n\n[[tokens]]\ntoken = \"{BOB}\"\nprincipal = \"bob\"\n{KIND}"
    ))
}

/// Sends `request` and reads its answer: the status and the body, as JSON when it is.
async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Reads with `read` until `done` holds of the answer, and returns it; a hang guard fails the
/// test with the last answer after 300 tries.
async fn until<F, R>(mut read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> R,
    R: std::future::Future<Output = Value>,
{
    let mut last = Value::Null;
    for _ in 0..300 {
        last = read().await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never reached the awaited state; last seen: {last}");
}

fn a2a_rpc(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

fn a2a_message(data: Value) -> Value {
    json!({"message": {"messageId": format!("m-{}", fastrand()), "role": "ROLE_USER", "parts": [{"data": data}]}})
}

/// A number that differs per call, for message ids.
fn fastrand() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A 2026-07-28 MCP request with its `_meta` and routing headers.
fn mcp(
    server: &Server,
    client: &Client,
    token: Option<&str>,
    method: &str,
    mut params: Value,
) -> RequestBuilder {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
    });
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut request = server
        .at(client, "POST", "/mcp")
        .header("accept", "application/json")
        .header("mcp-protocol-version", MCP_VERSION)
        .header("mcp-method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_host_and_origin_are_refused_on_every_door() {
    let server = anonymous();
    let client = Client::new();
    let task = json!({"kind": "steps", "input": {"steps": 1, "step_ms": 1}});
    for (name, value) in [("host", "evil.example"), ("origin", "http://evil.example")] {
        let requests = [
            ("/v1", server.at(&client, "POST", "/v1/tasks").json(&task)),
            (
                "/a2a",
                server
                    .at(&client, "POST", "/a2a")
                    .json(&a2a_rpc("message/send", a2a_message(json!({"steps": 1})))),
            ),
            (
                "/a2a REST",
                server
                    .at(&client, "POST", "/a2a/message:send")
                    .header("a2a-version", "1.0")
                    .json(&a2a_message(json!({"steps": 1}))),
            ),
            ("/mcp", mcp(&server, &client, None, "tools/list", json!({}))),
            ("dashboard", server.at(&client, "GET", "/")),
            (
                "agent card",
                server.at(&client, "GET", "/.well-known/agent-card.json"),
            ),
        ];
        for (door, request) in requests {
            let response = request.header(name, value).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{door} with {name}: {value}"
            );
        }
    }
    // Nothing was started by any of them.
    let (status, page) = send(server.at(&client, "GET", "/v1/tasks")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["tasks"], json!([]), "{page}");
    // This machine's own names pass.
    let response = server
        .at(&client, "POST", "/v1/tasks")
        .json(&task)
        .header("origin", server.url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_limit_holds_on_every_door_in_its_shape() {
    let server = anonymous();
    // A fresh connection per request: a server answers 413 before reading the whole body and
    // then closes the connection, and a pooled client may send the next request on it before
    // it sees the close (`IncompleteMessage`, seen under load).
    let client = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let big = "x".repeat(200_000);
    let (status, body) = send(
        server
            .at(&client, "POST", "/v1/tasks")
            .json(&json!({"kind": "steps", "input": {"pad": big}})),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "/v1: {body}");
    assert_eq!(body["error"]["code"], "too_large", "/v1: {body}");

    let (status, body) = send(
        server
            .at(&client, "POST", "/a2a")
            .json(&a2a_rpc("message/send", a2a_message(json!({"pad": big})))),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "/a2a: {body}");
    assert_eq!(body["error"]["code"], -32600, "/a2a: {body}");

    let (status, body) = send(
        server
            .at(&client, "POST", "/a2a/message:send")
            .header("a2a-version", "1.0")
            .json(&a2a_message(json!({"pad": big}))),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "/a2a REST: {body}");
    assert_eq!(body["error"]["code"], 413, "/a2a REST: {body}");

    let (status, body) = send(mcp(
        &server,
        &client,
        None,
        "tools/call",
        json!({"name": "steps", "arguments": {"pad": big}}),
    ))
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "/mcp: {body}");
    assert_eq!(body["error"]["code"], -32600, "/mcp: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principals_streams_are_counted_across_doors() {
    let server = anonymous();
    let client = Client::new();
    let (status, task) = send(
        server
            .at(&client, "POST", "/v1/tasks")
            .json(&json!({"kind": "steps", "input": {"steps": 100000, "step_ms": 50}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap();
    let subscribe = || {
        server
            .at(&client, "POST", "/a2a")
            .header("a2a-version", "1.0")
            .json(&a2a_rpc("SubscribeToTask", json!({"id": id})))
    };
    // Two streams: one A2A subscription and one `/v1` event stream. Both stay open.
    let first = subscribe().send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(
        first.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let second = server
        .at(&client, "GET", &format!("/v1/tasks/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);

    // A third is refused on every door, each in its own shape: a JSON-RPC error (A2A's
    // JSON-RPC binding answers errors with 200), 429 on /v1 and on A2A's HTTP+JSON binding.
    let too_many = |body: &Value| {
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("too many open streams"))
    };
    let (status, body) = send(subscribe()).await;
    assert_eq!(status, StatusCode::OK, "A2A: {body}");
    assert!(too_many(&body), "A2A: {body}");
    let rest = server
        .at(&client, "GET", &format!("/a2a/tasks/{id}:subscribe"))
        .header("a2a-version", "1.0");
    let (status, body) = send(rest).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "A2A REST: {body}");
    assert!(too_many(&body), "A2A REST: {body}");
    let all = server.at(&client, "GET", "/v1/events");
    let (status, body) = send(all).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "/v1: {body}");
    assert_eq!(body["error"]["code"], "too_many_streams");
    let streaming = server
        .at(&client, "POST", "/a2a")
        .header("a2a-version", "1.0")
        .json(&a2a_rpc(
            "SendStreamingMessage",
            a2a_message(json!({"steps": 1})),
        ));
    let (status, body) = send(streaming).await;
    assert_eq!(status, StatusCode::OK, "A2A streaming: {body}");
    assert!(too_many(&body), "A2A streaming: {body}");
    // ... and it started nothing.
    let (_, page) = send(server.at(&client, "GET", "/v1/tasks")).await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 1, "{page}");

    // Closing one frees its place.
    drop(first);
    let mut third = None;
    for _ in 0..100 {
        let response = subscribe().send().await.unwrap();
        if response.status() == StatusCode::OK {
            third = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(third.is_some(), "a closed stream's place was never freed");
    drop(second);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocking_a2a_send_waits_no_longer_than_max_wait() {
    let server = anonymous();
    let client = Client::new();
    // A task of about a minute: a wait without the cap would outlast the hang guard.
    let request = server
        .at(&client, "POST", "/a2a")
        .header("a2a-version", "1.0")
        .json(&a2a_rpc(
            "SendMessage",
            a2a_message(json!({"steps": 1200, "step_ms": 50})),
        ));
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"]["task"]["status"]["state"], "TASK_STATE_WORKING",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_started_over_mcp_is_its_owners_on_every_door_and_nobody_elses() {
    let server = with_tokens();
    let client = Client::new();
    let (server, client) = (&server, &client);
    let start = move |input: Value| async move {
        let (status, body) = send(mcp(
            server,
            client,
            Some(ALICE),
            "tools/call",
            json!({"name": "steps", "arguments": input}),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["result"]["resultType"], "task", "{body}");
        body["result"]["taskId"].as_str().unwrap().to_owned()
    };
    let v1 = |token: &'static str, method: &str, path: String| {
        server.at(client, method, &path).bearer_auth(token)
    };
    let a2a = |token: &'static str, method: &str, params: Value| {
        server
            .at(client, "POST", "/a2a")
            .bearer_auth(token)
            .header("a2a-version", "1.0")
            .json(&a2a_rpc(method, params))
    };

    // A task that asks: seen over /v1 and A2A, answered over /v1, by alice only.
    let asks = start(json!({"steps": 4, "step_ms": 20, "ask": true})).await;
    let get = |id: &str| {
        let request = v1(ALICE, "GET", format!("/v1/tasks/{id}"));
        async move { send(request).await.1 }
    };
    until(|| get(&asks), |task| task["status"] == "input_required").await;
    let (status, seen) = send(a2a(ALICE, "GetTask", json!({"id": asks}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        seen["result"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{seen}"
    );
    assert_eq!(seen["result"]["id"], asks.as_str());

    // Bob sees nothing and touches nothing, on any door.
    let (status, _) = send(v1(BOB, "GET", format!("/v1/tasks/{asks}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        send(v1(BOB, "POST", format!("/v1/tasks/{asks}/answers/go")).json(&json!(true))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = send(a2a(BOB, "GetTask", json!({"id": asks}))).await;
    assert_eq!(body["error"]["code"], -32001, "A2A TaskNotFound: {body}");
    let (_, body) = send(mcp(
        server,
        client,
        Some(BOB),
        "tasks/get",
        json!({"taskId": asks}),
    ))
    .await;
    assert_eq!(body["error"]["code"], -32602, "MCP unknown task: {body}");
    let (_, page) = send(v1(BOB, "GET", "/v1/tasks".into())).await;
    assert_eq!(page["tasks"], json!([]), "{page}");

    let (status, body) =
        send(v1(ALICE, "POST", format!("/v1/tasks/{asks}/answers/go")).json(&json!(true))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let read = || async {
        let request = mcp(
            server,
            client,
            Some(ALICE),
            "tasks/get",
            json!({"taskId": asks}),
        );
        send(request).await.1
    };
    until(read, |got| got["result"]["status"] == "completed").await;

    // A long task: cancelled over A2A by alice, after bob's cancel on every door was refused.
    let long = start(json!({"steps": 100000, "step_ms": 50})).await;
    let (status, _) = send(v1(BOB, "POST", format!("/v1/tasks/{long}/cancel"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = send(a2a(BOB, "CancelTask", json!({"id": long}))).await;
    assert_eq!(body["error"]["code"], -32001, "{body}");
    let (_, body) = send(mcp(
        server,
        client,
        Some(BOB),
        "tasks/cancel",
        json!({"taskId": long}),
    ))
    .await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    let (_, task) = send(v1(ALICE, "GET", format!("/v1/tasks/{long}"))).await;
    assert_eq!(
        task["status"], "working",
        "bob's cancels changed nothing: {task}"
    );

    let (status, body) = send(a2a(ALICE, "CancelTask", json!({"id": long}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended = until(|| get(&long), |task| task["status"] == "cancelled").await;
    // Each door labelled the task it started.
    assert_eq!(ended["labels"]["door"], "mcp", "{ended}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_oauth_every_doors_401_names_the_resource_metadata() {
    // An issuer nobody answers at: a missing token needs no issuer, a token does.
    let server = Server::start(&format!(
        "[server]\npublic_url = \"http://127.0.0.1:7700\"\n\n[oauth]\nissuer = \"http://127.0.0.1:9\"\n{KIND}"
    ));
    let client = Client::new();
    let metadata_url = "http://127.0.0.1:7700/.well-known/oauth-protected-resource";
    let requests = [
        ("/v1", server.at(&client, "GET", "/v1/tasks")),
        (
            "/a2a",
            server
                .at(&client, "POST", "/a2a")
                .header("a2a-version", "1.0")
                .json(&a2a_rpc("ListTasks", json!({}))),
        ),
        (
            "/a2a REST",
            server
                .at(&client, "GET", "/a2a/tasks")
                .header("a2a-version", "1.0"),
        ),
        ("/mcp", mcp(&server, &client, None, "tools/list", json!({}))),
    ];
    for (door, request) in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{door}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer "), "{door}: {challenge}");
        assert!(
            challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{door}: {challenge}"
        );
    }
    // The metadata itself needs no token.
    let (status, metadata) =
        send(server.at(&client, "GET", "/.well-known/oauth-protected-resource")).await;
    assert_eq!(status, StatusCode::OK, "{metadata}");
    assert_eq!(metadata["resource"], "http://127.0.0.1:7700");
    assert_eq!(
        metadata["authorization_servers"],
        json!(["http://127.0.0.1:9"])
    );
    // A token that cannot be checked now is not refused as wrong: the issuer is away (503).
    let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhIn0.c2ln";
    let response = server
        .at(&client, "GET", "/v1/tasks")
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}
