//! What the MCP door's tests share: a runtime with test kinds, the door served on a real
//! socket, and a raw JSON-RPC client that reads JSON and SSE answers as they arrive.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]
#![allow(dead_code, unreachable_pub)]

use std::{collections::HashMap, time::Duration};

use longrun::{Context, KindSpec, Runtime, TaskError, kind::TaskSupport};
use longrun_surface::{Auth, Limits, Principal, Surface};
use serde_json::{Value, json};

pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
pub const MODERN: &str = "2026-07-28";

/// A runtime with the kinds the tests call.
pub fn runtime() -> Runtime {
    runtime_with(Default::default())
}

/// A runtime with `options` (a shared store, say) and the kinds the tests call.
pub fn runtime_with(options: longrun::Options) -> Runtime {
    let runtime = Runtime::new(options);
    let object = |properties: Value| json!({"type": "object", "properties": properties});
    let mut echo = KindSpec::new("echo")
        .description("Echoes `text`.")
        .task_support(TaskSupport::Forbidden);
    echo.input_schema =
        json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}});
    runtime
        .register(echo, |_ctx: Context, input: Value| async move {
            Ok::<_, TaskError>(input["text"].clone())
        })
        .unwrap();

    let mut work = KindSpec::new("work").task_support(TaskSupport::Optional);
    work.input_schema = object(json!({"ms": {"type": "integer"}}));
    runtime
        .register(work, |ctx: Context, input: Value| async move {
            let ms = input["ms"].as_u64().unwrap_or(0);
            ctx.progress(10.0, "started").await?;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                () = ctx.cancelled() => return Err(TaskError::new("cancelled", "stopped")),
            }
            ctx.progress(100.0, "done").await?;
            Ok::<_, TaskError>(json!({"slept_ms": ms}))
        })
        .unwrap();

    let mut only = KindSpec::new("only_task").task_support(TaskSupport::Required);
    only.input_schema = object(json!({}));
    runtime
        .register(only, |_ctx: Context, _input: Value| async move {
            Ok::<_, TaskError>(json!("done as a task"))
        })
        .unwrap();

    let mut ask = KindSpec::new("ask").task_support(TaskSupport::Optional);
    ask.input_schema = object(json!({}));
    runtime
        .register(ask, |ctx: Context, _input: Value| async move {
            let request = json!({"type": "boolean", "message": "Go on?"});
            let answer = ctx.ask("go", request, Duration::MAX).await?;
            Ok::<_, TaskError>(json!(format!("go = {answer}")))
        })
        .unwrap();

    let mut two = KindSpec::new("two_questions").task_support(TaskSupport::Optional);
    two.input_schema = object(json!({}));
    runtime
        .register(two, |ctx: Context, _input: Value| async move {
            let (first, second) = tokio::join!(
                ctx.ask("first", json!({"message": "First?"}), Duration::MAX),
                ctx.ask("second", json!({"message": "Second?"}), Duration::MAX),
            );
            Ok::<_, TaskError>(json!(format!("{} {}", first?, second?)))
        })
        .unwrap();

    let mut sample = KindSpec::new("sample").task_support(TaskSupport::Forbidden);
    sample.input_schema = object(json!({}));
    runtime
        .register(sample, |ctx: Context, _input: Value| async move {
            let request = json!({"method": "sampling/createMessage", "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": "Capital of France?"}}],
                "maxTokens": 10,
            }});
            let reply = ctx.ask("llm", request, Duration::MAX).await?;
            Ok::<_, TaskError>(reply["content"]["text"].clone())
        })
        .unwrap();

    let mut fail = KindSpec::new("fail").task_support(TaskSupport::Optional);
    fail.input_schema = object(json!({}));
    runtime
        .register(fail, |_ctx: Context, _input: Value| async move {
            Err::<Value, _>(TaskError::new("broken", "it broke on purpose"))
        })
        .unwrap();

    // Streams the artifact `report` in two chunks, asking `more` in between.
    let mut report = KindSpec::new("report").task_support(TaskSupport::Optional);
    report.input_schema = object(json!({}));
    runtime
        .register(report, |ctx: Context, _input: Value| async move {
            let chunk =
                |parts: Vec<Value>, append: bool, last_chunk: bool| longrun::event::ArtifactChunk {
                    id: "report".into(),
                    name: Some("The report".into()),
                    parts,
                    append,
                    last_chunk,
                };
            ctx.artifact(chunk(vec![json!("part one")], false, false))
                .await?;
            ctx.ask(
                "more",
                json!({"type": "boolean", "message": "More?"}),
                Duration::MAX,
            )
            .await?;
            ctx.artifact(chunk(vec![json!({"rows": 2})], true, true))
                .await?;
            Ok::<_, TaskError>(json!("reported"))
        })
        .unwrap();

    let mut tool_error = KindSpec::new("tool_error").task_support(TaskSupport::Optional);
    tool_error.input_schema = object(json!({}));
    runtime
        .register(tool_error, |_ctx: Context, _input: Value| async move {
            Ok::<_, TaskError>(
                json!({"content": [{"type": "text", "text": "no"}], "isError": true}),
            )
        })
        .unwrap();
    runtime
}

/// The door on 127.0.0.1:0 with two principals; returns its `/mcp` URL.
pub async fn serve(runtime: Runtime, config: longrun_mcp::Config) -> String {
    let auth = Auth::Tokens(HashMap::from([
        (ALICE.to_owned(), Principal::from("alice")),
        (BOB.to_owned(), Principal::from("bob")),
    ]));
    let router = longrun_mcp::router(Surface::new(runtime, auth, Limits::default()), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/mcp")
}

/// A short settle time, so tests that gather questions do not wait long.
pub fn config() -> longrun_mcp::Config {
    longrun_mcp::Config {
        input_settle_ms: 30,
        poll_interval_ms: 50,
        ..Default::default()
    }
}

/// One response, read as it arrives: JSON, or the messages of an SSE stream.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    response: reqwest::Response,
    sse: bool,
    buffer: String,
    done: bool,
    /// The id of the last SSE event read (the priming event's included).
    pub last_event_id: Option<String>,
}

impl Answer {
    /// The next message (for JSON: the body), or `None` at the end.
    pub async fn next(&mut self) -> Option<Value> {
        if !self.sse {
            if self.done {
                return None;
            }
            self.done = true;
            let mut body = Vec::new();
            while let Some(chunk) = self.response.chunk().await.unwrap() {
                body.extend_from_slice(&chunk);
            }
            return (!body.is_empty()).then(|| serde_json::from_slice(&body).unwrap());
        }
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(id) = event.lines().find_map(|line| line.strip_prefix("id:")) {
                    self.last_event_id = Some(id.trim().to_owned());
                }
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.iter().all(|line| line.trim().is_empty()) {
                    continue; // a keep-alive comment, or a priming event (an id, no message)
                }
                return Some(serde_json::from_str(&data.join("\n")).unwrap());
            }
            match self.response.chunk().await.unwrap() {
                Some(chunk) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                None => return None,
            }
        }
    }

    /// The response to the request (the message with an id and no method), skipping
    /// notifications.
    pub async fn response(&mut self) -> Value {
        loop {
            let message = self
                .next()
                .await
                .expect("the stream ended without a response");
            if message.get("id").is_some() && message.get("method").is_none() {
                return message;
            }
        }
    }

    /// Every message until the end.
    pub async fn all(&mut self) -> Vec<Value> {
        let mut messages = Vec::new();
        while let Some(message) = self.next().await {
            messages.push(message);
        }
        messages
    }
}

/// A raw client of one door.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(url: &str, token: Option<&str>) -> Self {
        Self {
            url: url.to_owned(),
            token: token.map(str::to_owned),
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `body` with `headers` (name, value) added.
    pub async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let sse = response
            .headers()
            .get("content-type")
            .is_some_and(|value| value.to_str().unwrap().starts_with("text/event-stream"));
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            response,
            sse,
            buffer: String::new(),
            done: false,
            last_event_id: None,
        }
    }

    /// GETs the endpoint as an SSE stream with `headers` (name, value) added.
    pub async fn get(&self, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let sse = response
            .headers()
            .get("content-type")
            .is_some_and(|value| value.to_str().unwrap().starts_with("text/event-stream"));
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            response,
            sse,
            buffer: String::new(),
            done: false,
            last_event_id: None,
        }
    }

    /// A 2026-07-28 request with its `_meta` and routing headers; `tasks` declares the
    /// extension.
    pub async fn modern(&self, id: u64, method: &str, mut params: Value, tasks: bool) -> Answer {
        let capabilities = if tasks {
            json!({"elicitation": {}, "sampling": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}})
        } else {
            json!({"elicitation": {}, "sampling": {}})
        };
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        });
        let name = params
            .get("name")
            .or_else(|| params.get("taskId"))
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
        if let Some(name) = &name {
            headers.push(("mcp-name", name.as_str()));
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.post(&body, &headers).await
    }

    /// The result of a 2026-07-28 request, which must succeed.
    pub async fn modern_ok(&self, method: &str, params: Value, tasks: bool) -> Value {
        let response = self.modern(1, method, params, tasks).await.response().await;
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }

    /// Polls `tasks/get` until the task is in one of `statuses`.
    pub async fn wait_for(&self, task: &str, statuses: &[&str]) -> Value {
        for _ in 0..400 {
            let got = self
                .modern_ok("tasks/get", json!({"taskId": task}), true)
                .await;
            if statuses.contains(&got["status"].as_str().unwrap()) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {task} never reached {statuses:?}");
    }
}

/// A 2025-11-25 session of a client.
pub struct Session {
    pub client: Client,
    pub id: String,
}

impl Session {
    /// Resumes one of the session's streams after the event `last_event_id`.
    pub async fn resume(&self, last_event_id: &str) -> Answer {
        self.client
            .get(&[
                ("mcp-session-id", self.id.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
                ("last-event-id", last_event_id),
            ])
            .await
    }

    /// Initializes a session declaring `capabilities`.
    pub async fn open(client: &Client, capabilities: Value) -> Self {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities,
            "clientInfo": {"name": "test", "version": "0"},
        }});
        let mut answer = client.post(&body, &[]).await;
        assert_eq!(answer.status, 200);
        let id = answer.headers["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let response = answer.response().await;
        assert_eq!(response["result"]["protocolVersion"], "2025-11-25");
        let session = Self {
            client: client.clone(),
            id,
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(session.send(&note).await.status, 202);
        session
    }

    /// Sends any message in this session.
    pub async fn send(&self, body: &Value) -> Answer {
        let headers = [
            ("mcp-session-id", self.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        self.client.post(body, &headers).await
    }

    /// Sends a request in this session.
    pub async fn request(&self, id: u64, method: &str, params: Value) -> Answer {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await
    }

    /// The result of a request, which must succeed.
    pub async fn ok(&self, method: &str, params: Value) -> Value {
        let response = self.request(1, method, params).await.response().await;
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }

    /// The error code of a request that must fail.
    pub async fn error(&self, method: &str, params: Value) -> i64 {
        let response = self.request(1, method, params).await.response().await;
        response["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{method} did not fail: {response}"))
    }
}
