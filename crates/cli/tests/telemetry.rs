//! Traces end to end: the real `longrun serve` with `[telemetry] otlp_endpoint` pointing at an
//! OTLP/HTTP receiver this test runs (protobuf spans on `POST /v1/traces`), tasks started with
//! a W3C `traceparent` on `/v1` (header), MCP (`params._meta`, SEP-414) and A2A (message
//! metadata), and process handlers that print the `TRACEPARENT` they were given.
//!
//! No assertion here is about time; the timeouts are hang guards.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, ChildStdout, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::any_value,
    trace::v1::Span,
};
use prost::Message as _;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_longrun");
/// The longest any one request may take before the test counts it as hung.
const HANG: Duration = Duration::from_secs(30);

/// Kinds whose handlers are shell scripts: `asks` reports its `TRACEPARENT` as progress, asks
/// `go`, and then completes with it; `quick` completes with it at once.
const KINDS: &str = r#"
[[kinds]]
name = "asks"
command = ["sh", "-c", '''
read start
printf '{"type":"progress","message":"%s"}\n' "$TRACEPARENT"
echo '{"type":"ask","key":"go","request":{"type":"boolean"}}'
read answer
printf '{"type":"complete","output":{"traceparent":"%s"}}\n' "$TRACEPARENT"
''']

[[kinds]]
name = "quick"
command = ["sh", "-c", '''
read start
printf '{"type":"complete","output":{"traceparent":"%s"}}\n' "$TRACEPARENT"
''']
"#;

/// The spans the receiver got, in arrival order.
type Received = Arc<Mutex<Vec<Span>>>;

/// Runs an OTLP/HTTP traces receiver on a free loopback port; returns its base URL.
async fn receiver(received: Received) -> String {
    async fn traces(State(received): State<Received>, body: Bytes) -> Vec<u8> {
        let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
        let spans = request
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        received.lock().unwrap().extend(spans);
        ExportTraceServiceResponse::default().encode_to_vec()
    }
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A `longrun serve` on a free loopback port with `config` (a TOML text).
struct Server {
    child: Child,
    url: String,
    _stdout: BufReader<ChildStdout>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self::start_in(dir.path(), config);
        server._dir = Some(dir);
        server
    }

    /// A server on the data in `dir`, which outlives it (for a restart).
    fn start_in(dir: &std::path::Path, config: &str) -> Self {
        let path = dir.join("longrun.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .arg("--data")
            .arg(dir.join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            // Send each batch after 50 ms rather than the default 5 s.
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env_remove("TRACEPARENT")
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
            _dir: None,
        }
    }

    fn post(&self, client: &Client, path: &str) -> reqwest::RequestBuilder {
        client.post(format!("{}{path}", self.url)).timeout(HANG)
    }

    async fn task(&self, client: &Client, id: &str) -> Value {
        let response = client
            .get(format!("{}/v1/tasks/{id}", self.url))
            .timeout(HANG)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    async fn until_status(&self, client: &Client, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            last = self.task(client, id).await;
            if last["status"] == status {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("task {id} never became {status}; last seen: {last}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A string (or integer, as text) attribute of `span`.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(text.clone()),
        any_value::Value::IntValue(number) => Some(number.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Waits until the spans received include what `done` looks for; returns them all.
async fn spans_until(received: &Received, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    for _ in 0..600 {
        {
            let spans = received.lock().unwrap();
            if done(&spans) {
                return spans.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = received.lock().unwrap();
    let names: Vec<_> = spans
        .iter()
        .map(|span| {
            format!(
                "{} {} {:?}",
                span.name,
                hex(&span.trace_id),
                attribute(span, "task.id")
            )
        })
        .collect();
    panic!("never received {what}; spans received: {names:#?}");
}

/// A random trace id and parent span id, as the caller of a traced request would have.
fn caller_trace() -> (String, String) {
    let random = |digits: usize| {
        let mut text = String::new();
        while text.len() < digits {
            text.push_str(&format!("{:016x}", fastrand_u64()));
        }
        text.truncate(digits);
        text
    };
    (random(32), random(16))
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish() | 1
}

fn named<'a>(spans: &'a [Span], name: &str, task: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|span| span.name == name && attribute(span, "task.id").as_deref() == Some(task))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tasks_life_is_exported_in_the_callers_trace_from_every_door() {
    let received = Received::default();
    let collector = receiver(received.clone()).await;
    let server = Server::start(&format!(
        "[server]\nanonymous = true\n\n[telemetry]\notlp_endpoint = \"{collector}\"\nservice_name = \"longrun-test\"\n{KINDS}"
    ));
    let client = Client::new();

    // /v1: the `traceparent` header; the task asks, is answered, and completes.
    let (trace_id, parent_id) = caller_trace();
    let response = server
        .post(&client, "/v1/tasks")
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .header("tracestate", "vendor=test")
        .json(&json!({"kind": "asks", "input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    server.until_status(&client, &id, "input_required").await;
    let answered = server
        .post(&client, &format!("/v1/tasks/{id}/answers/go"))
        .json(&json!(true))
        .send()
        .await
        .unwrap();
    assert!(answered.status().is_success(), "{}", answered.status());
    let done = server.until_status(&client, &id, "completed").await;

    let spans = spans_until(&received, "the task's end", |spans| {
        !named(spans, "task", &id).is_empty()
    })
    .await;
    let [task_span] = named(&spans, "task", &id)[..] else {
        panic!("one task span for {id}: {spans:#?}");
    };
    assert_eq!(hex(&task_span.trace_id), trace_id, "the caller's trace");
    assert_eq!(
        hex(&task_span.parent_span_id),
        parent_id,
        "the caller's span is the parent"
    );
    assert_eq!(attribute(task_span, "task.kind").as_deref(), Some("asks"));
    assert_eq!(
        attribute(task_span, "task.status").as_deref(),
        Some("completed")
    );
    let [attempt] = named(&spans, "task.attempt", &id)[..] else {
        panic!("one attempt span for {id}: {spans:#?}");
    };
    assert_eq!(attempt.parent_span_id, task_span.span_id);
    assert_eq!(attribute(attempt, "task.attempt").as_deref(), Some("1"));
    let [ask] = named(&spans, "task.ask", &id)[..] else {
        panic!("one ask span for {id}: {spans:#?}");
    };
    assert_eq!(ask.parent_span_id, attempt.span_id);
    assert_eq!(attribute(ask, "ask.key").as_deref(), Some("go"));
    assert_eq!(attribute(ask, "ask.outcome").as_deref(), Some("answered"));
    let [end] = named(&spans, "task.end", &id)[..] else {
        panic!("one end span for {id}: {spans:#?}");
    };
    assert_eq!(end.parent_span_id, task_span.span_id);
    assert_eq!(attribute(end, "task.status").as_deref(), Some("completed"));
    for span in [task_span, attempt, ask, end] {
        assert_eq!(hex(&span.trace_id), trace_id, "{}", span.name);
    }

    // The process handler was handed its attempt's span: its own spans would nest there.
    let handed = done["output"]["traceparent"].as_str().unwrap();
    assert_eq!(
        handed,
        format!("00-{trace_id}-{}-01", hex(&attempt.span_id)),
        "TRACEPARENT is the attempt's context"
    );

    // MCP: `params._meta.traceparent` (SEP-414).
    let (mcp_trace, mcp_parent) = caller_trace();
    let response = server
        .post(&client, "/mcp")
        .header("accept", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "quick")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "quick",
                "arguments": {},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "traceparent": format!("00-{mcp_trace}-{mcp_parent}-01"),
                },
            }}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // A2A: `message.metadata.traceparent`.
    let (a2a_trace, a2a_parent) = caller_trace();
    let response = server
        .post(&client, "/a2a")
        .header("a2a-version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
            "message": {
                "messageId": "m-trace",
                "role": "ROLE_USER",
                "parts": [{"data": {}}],
                "metadata": {"skill": "quick", "traceparent": format!("00-{a2a_trace}-{a2a_parent}-01")},
            },
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for (door, trace, parent) in [
        ("mcp", &mcp_trace, &mcp_parent),
        ("a2a", &a2a_trace, &a2a_parent),
    ] {
        let spans = spans_until(&received, &format!("the {door} task's span"), |spans| {
            spans
                .iter()
                .any(|span| span.name == "task" && hex(&span.trace_id) == *trace)
        })
        .await;
        let task = spans
            .iter()
            .find(|span| span.name == "task" && hex(&span.trace_id) == *trace)
            .unwrap();
        assert_eq!(
            hex(&task.parent_span_id),
            *parent,
            "{door}: the caller's span is the parent"
        );
        assert_eq!(
            attribute(task, "task.kind").as_deref(),
            Some("quick"),
            "{door}"
        );
        // Its handler got the same trace.
        let id = attribute(task, "task.id").unwrap();
        let done = server.until_status(&client, &id, "completed").await;
        let handed = done["output"]["traceparent"].as_str().unwrap();
        assert!(
            handed.starts_with(&format!("00-{trace}-")),
            "{door}: {handed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_exporter_the_handler_still_gets_the_callers_traceparent() {
    let server = Server::start(&format!("[server]\nanonymous = true\n{KINDS}"));
    let client = Client::new();
    let (trace_id, parent_id) = caller_trace();
    let traceparent = format!("00-{trace_id}-{parent_id}-01");
    let response = server
        .post(&client, "/v1/tasks")
        .header("traceparent", &traceparent)
        .json(&json!({"kind": "quick", "input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    let done = server
        .until_status(&client, task["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(done["output"]["traceparent"], traceparent.as_str());

    // An invalid traceparent is ignored: the task starts, and its handler gets none.
    let response = server
        .post(&client, "/v1/tasks")
        .header("traceparent", "00-not-a-trace-01")
        .json(&json!({"kind": "quick", "input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    let done = server
        .until_status(&client, task["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(done["output"]["traceparent"], "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_a_crash_stays_in_the_callers_trace() {
    let received = Received::default();
    let collector = receiver(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    // `asks`, re-run after a crash.
    let config = format!(
        "[server]\nanonymous = true\n\n[telemetry]\notlp_endpoint = \"{collector}\"\n{}",
        KINDS.replacen("name = \"asks\"", "name = \"asks\"\nrestart = \"rerun\"", 1)
    );
    let client = Client::new();
    let (trace_id, parent_id) = caller_trace();

    let first = Server::start_in(dir.path(), &config);
    let response = first
        .post(&client, "/v1/tasks")
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .json(&json!({"kind": "asks", "input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    first.until_status(&client, &id, "input_required").await;
    // A task started without a trace begins its own, and keeps it across the restart too.
    let response = first
        .post(&client, "/v1/tasks")
        .json(&json!({"kind": "asks", "input": {}}))
        .send()
        .await
        .unwrap();
    let untraced: Value = response.json().await.unwrap();
    let untraced = untraced["id"].as_str().unwrap().to_owned();
    let asking = first
        .until_status(&client, &untraced, "input_required")
        .await;
    let own_trace = asking["progress"]["message"].as_str().unwrap()[3..35].to_owned();
    // The crash: SIGKILL, nothing flushed, the task left `input_required` in the store.
    drop(first);

    let second = Server::start_in(dir.path(), &config);
    second.until_status(&client, &id, "input_required").await;
    let answered = second
        .post(&client, &format!("/v1/tasks/{id}/answers/go"))
        .json(&json!(true))
        .send()
        .await
        .unwrap();
    assert!(answered.status().is_success(), "{}", answered.status());
    let done = second.until_status(&client, &id, "completed").await;
    assert_eq!(done["attempt"], 2, "{done}");
    second
        .until_status(&client, &untraced, "input_required")
        .await;
    let answered = second
        .post(&client, &format!("/v1/tasks/{untraced}/answers/go"))
        .json(&json!(true))
        .send()
        .await
        .unwrap();
    assert!(answered.status().is_success(), "{}", answered.status());
    let rerun = second.until_status(&client, &untraced, "completed").await;
    let handed = rerun["output"]["traceparent"].as_str().unwrap();
    assert_eq!(
        &handed[3..35],
        own_trace,
        "the re-run joins the trace its first attempt began"
    );

    let spans = spans_until(&received, "the re-run's end", |spans| {
        named(spans, "task", &id)
            .iter()
            .any(|span| attribute(span, "task.status").is_some())
    })
    .await;
    let task_span = named(&spans, "task", &id)
        .into_iter()
        .find(|span| attribute(span, "task.status").as_deref() == Some("completed"))
        .unwrap();
    assert_eq!(
        hex(&task_span.trace_id),
        trace_id,
        "the stored trace, after a restart"
    );
    assert_eq!(hex(&task_span.parent_span_id), parent_id);
    let attempt = named(&spans, "task.attempt", &id)
        .into_iter()
        .find(|span| attribute(span, "task.attempt").as_deref() == Some("2"))
        .expect("the re-run's attempt span");
    assert_eq!(attempt.parent_span_id, task_span.span_id);
    assert_eq!(
        done["output"]["traceparent"],
        format!("00-{trace_id}-{}-01", hex(&attempt.span_id)).as_str()
    );
}

/// `longrun serve > file 2>&1` with spans exported and a task run: the file (its stdout line,
/// and log lines that now name the task's spans) has no escape codes.
#[tokio::test(flavor = "multi_thread")]
async fn serve_into_a_file_writes_no_colour_codes() {
    let received = Received::default();
    let collector = receiver(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("longrun.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nanonymous = true\n\n[telemetry]\notlp_endpoint = \"{collector}\"\n{KINDS}"
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        // Debug: the process handler's own log lines, inside the task's spans.
        .env("RUST_LOG", "debug")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("the longrun binary starts");
    let mut url = None;
    for _ in 0..600 {
        let text = std::fs::read_to_string(&log).unwrap();
        url = text
            .lines()
            .find(|line| line.starts_with("longrun serving on"))
            .and_then(|line| {
                line.split_whitespace()
                    .find(|word| word.starts_with("http://"))
            })
            .map(str::to_owned);
        if url.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = url.expect("the serving line in the file");
    let client = Client::new();
    let task: Value = client
        .post(format!("{url}/v1/tasks"))
        .timeout(HANG)
        .json(&json!({"kind": "quick", "input": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    spans_until(&received, "the task's span", |spans| {
        !named(spans, "task", &id).is_empty()
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&id),
        "the task's spans name it in the log lines: {text}"
    );
    assert!(
        !text.contains("\u{1b}["),
        "escape codes in the file: {text:?}"
    );
}
