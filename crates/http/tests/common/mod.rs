//! Shared helpers for the HTTP API's tests: a runtime with small kinds, an API with two
//! principals, a request helper for `oneshot`, and an SSE reader for real sockets.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{collections::HashMap, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use futures_util::StreamExt;
use longrun::{Context, KindSpec, Options, Runtime, TaskError};
use longrun_http::{Api, Auth, Limits, Principal, Surface};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ALICE: &str = "token-alice";
pub const BOB: &str = "token-bob";

/// A runtime with the test kinds:
/// - `complete`: input `{"n": integer}` (by schema only: the handler takes any JSON), output `2n`;
/// - `ask`: asks `approve` and returns the answer;
/// - `fail`: fails with code `boom`;
/// - `sleep`: runs until cancelled;
/// - `steps`: input `{"before", "after", "size"}`: `before` progress events, asks `go`, then
///   `after` progress events with messages of `size` characters, then completes;
/// - `notify`: leaves the agent a message, then completes.
pub fn runtime(options: Options) -> Runtime {
    let runtime = Runtime::new(options);
    let mut complete = KindSpec::new("complete").description("Doubles n.");
    complete.input_schema = json!({
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
        "required": ["n"],
        "additionalProperties": false,
    });
    runtime
        .register(complete, |_ctx: Context, input: Value| async move {
            let n = input["n"].as_u64().ok_or("n is not a number")?;
            Ok::<_, TaskError>(json!(n * 2))
        })
        .unwrap();
    runtime
        .register(KindSpec::new("ask"), |ctx: Context, _: Value| async move {
            let answer = ctx
                .ask(
                    "approve",
                    json!({"question": "go ahead?"}),
                    Duration::from_secs(3600),
                )
                .await?;
            Ok::<_, TaskError>(answer)
        })
        .unwrap();
    runtime
        .register(KindSpec::new("fail"), |_ctx: Context, _: Value| async move {
            Err::<(), _>(TaskError::new("boom", "it broke"))
        })
        .unwrap();
    runtime
        .register(
            KindSpec::new("sleep").cancel_grace(Duration::from_secs(5)),
            |ctx: Context, _: Value| async move {
                ctx.cancelled().await;
                Err::<(), _>(TaskError::new("stopped", "saw the cancellation"))
            },
        )
        .unwrap();
    runtime
        .register(
            KindSpec::new("steps"),
            |ctx: Context, input: Value| async move {
                let before = input["before"].as_u64().unwrap_or(0);
                let after = input["after"].as_u64().unwrap_or(0);
                let size = input["size"].as_u64().unwrap_or(0) as usize;
                for step in 0..before {
                    ctx.progress(None, format!("before {step}")).await?;
                }
                ctx.ask("go", json!("continue?"), Duration::from_secs(3600))
                    .await?;
                let padding = "x".repeat(size);
                for step in 0..after {
                    ctx.progress(None, format!("after {step} {padding}"))
                        .await?;
                }
                Ok::<_, TaskError>(json!("done"))
            },
        )
        .unwrap();
    runtime
        .register(
            KindSpec::new("notify"),
            |ctx: Context, _: Value| async move {
                ctx.notify_agent("hello, agent", true).await?;
                Ok::<_, TaskError>(json!("notified"))
            },
        )
        .unwrap();
    runtime
}

/// Two principals: `alice` and `bob`.
pub fn auth() -> Auth {
    Auth::Tokens(HashMap::from([
        (ALICE.to_owned(), Principal::from("alice")),
        (BOB.to_owned(), Principal::from("bob")),
    ]))
}

pub struct App {
    pub runtime: Runtime,
    pub api: Api,
    pub router: Router,
}

impl App {
    pub fn new() -> Self {
        Self::with(Options::default(), Limits::default())
    }

    pub fn with(options: Options, limits: Limits) -> Self {
        let runtime = runtime(options);
        let api = Api::new(Surface::new(runtime.clone(), auth(), limits));
        let router = longrun_http::router(api.clone());
        Self {
            runtime,
            api,
            router,
        }
    }

    /// Sends a request; a JSON body gets `Content-Type: application/json`.
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.raw(request.body(body).unwrap()).await
    }

    pub async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// Starts a task as `token` and returns its id.
    pub async fn start(&self, token: &str, body: Value) -> String {
        let reply = self
            .send("POST", "/v1/tasks", Some(token), Some(body))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json["id"].as_str().unwrap().to_owned()
    }

    /// Waits for a task to end, through the runtime.
    pub async fn wait(&self, id: &str) -> longrun::Task {
        let handle = self.runtime.handle(id.parse().unwrap());
        tokio::time::timeout(Duration::from_secs(30), handle.wait())
            .await
            .expect("the task did not end")
            .unwrap()
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// Asserts the API's error shape with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        if status == 503 {
            // Every 503 says when to come back (the surface's `with_retry_after`).
            assert_eq!(self.headers["retry-after"], "1", "{}", self.text);
        }
        assert_eq!(self.json["error"]["code"], json!(code), "{}", self.text);
        assert!(
            self.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert_eq!(
            self.json.as_object().map(|o| o.len()),
            Some(1),
            "{}",
            self.text
        );
    }
}

/// One SSE message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl Message {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Parses SSE messages out of any byte stream (a body read in chunks).
pub struct SseReader<S> {
    stream: S,
    buffer: Vec<u8>,
}

impl<S, B, E> SseReader<S>
where
    S: futures_util::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Debug,
{
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    /// The next message, or `None` when the body ends. Comments (keep-alives) are skipped.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = find_blank_line(&self.buffer) {
                let block: Vec<u8> = self.buffer.drain(..end.1).collect();
                let text = String::from_utf8(block[..end.0].to_vec()).unwrap();
                if let Some(message) = parse_block(&text) {
                    return Some(message);
                }
                continue;
            }
            match self.stream.next().await {
                Some(chunk) => self.buffer.extend_from_slice(chunk.unwrap().as_ref()),
                None => return None,
            }
        }
    }

    /// Every remaining message, until the body ends.
    pub async fn rest(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        while let Some(message) = self.next().await {
            messages.push(message);
        }
        messages
    }
}

/// Where the first message block ends: (end of its text, end including the blank line).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    buffer
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|at| (at, at + 2))
}

fn parse_block(block: &str) -> Option<Message> {
    let mut message = Message {
        event: None,
        id: None,
        data: String::new(),
    };
    let mut has_data = false;
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => message.event = Some(value.to_owned()),
            "id" => message.id = Some(value.to_owned()),
            "data" => {
                if has_data {
                    message.data.push('\n');
                }
                message.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    has_data.then_some(message)
}

/// The sequence numbers of a list of event messages.
pub fn seqs(messages: &[Message]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m.json()["seq"].as_u64().unwrap())
        .collect()
}
