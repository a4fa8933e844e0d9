//! Shared helpers for the A2A door's tests: a runtime with small kinds, the router served on
//! 127.0.0.1:0 with two principals, raw JSON-RPC and HTTP+JSON calls over reqwest, an SSE
//! reader, and a webhook receiver that can fail on purpose.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::HeaderMap, routing::post};
use futures_util::StreamExt;
use longrun::{Context, KindSpec, Runtime, TaskError, event::ArtifactChunk};
use longrun_surface::{Auth, Limits, Principal, Surface};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const ALICE: &str = "token-alice";
pub const BOB: &str = "token-bob";

/// How long any one wait in a test may take before the test fails (generous: CI is slow).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A runtime with the test kinds:
/// - `echo`: completes with its input;
/// - `double`: input `{"n": integer}` (by schema), output `2n`;
/// - `ask`: asks `approve` (`{"message": "Go?"}`) and completes with the answer;
/// - `gated`: asks `go`, then emits the artifact `out` in three appended chunks, then completes
///   with `"done"`;
/// - `sleep`: runs until cancelled;
/// - `fail`: fails with code `boom`.
pub fn runtime() -> Runtime {
    let runtime = Runtime::new(Default::default());
    runtime
        .register(
            KindSpec::new("echo").description("Echoes its input."),
            |_ctx: Context, input: Value| async move { Ok::<_, TaskError>(input) },
        )
        .unwrap();
    let mut double = KindSpec::new("double").description("Doubles n.");
    double.input_schema = json!({
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    });
    runtime
        .register(double, |_ctx: Context, input: Value| async move {
            let n = input["n"].as_i64().ok_or("n is not a number")?;
            Ok::<_, TaskError>(json!(n * 2))
        })
        .unwrap();
    runtime
        .register(KindSpec::new("ask"), |ctx: Context, _: Value| async move {
            let answer = ctx
                .ask(
                    "approve",
                    json!({"message": "Go?"}),
                    Duration::from_secs(3600),
                )
                .await?;
            Ok::<_, TaskError>(answer)
        })
        .unwrap();
    runtime
        .register(
            KindSpec::new("gated"),
            |ctx: Context, _: Value| async move {
                ctx.ask("go", json!("Start?"), Duration::from_secs(3600))
                    .await?;
                for i in 0..3 {
                    ctx.artifact(ArtifactChunk {
                        id: "out".into(),
                        name: Some("output".into()),
                        parts: vec![json!(format!("chunk-{i}"))],
                        append: i > 0,
                        last_chunk: i == 2,
                    })
                    .await?;
                }
                Ok::<_, TaskError>(json!("done"))
            },
        )
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
        .register(KindSpec::new("fail"), |_ctx: Context, _: Value| async move {
            Err::<(), _>(TaskError::new("boom", "it broke"))
        })
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

/// A server on 127.0.0.1:0 serving the A2A router.
#[derive(Clone)]
pub struct Server {
    pub base: String,
    pub runtime: Runtime,
    pub shutdown: CancellationToken,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start() -> Self {
        Self::with(longrun_a2a::Config {
            allow_loopback_webhooks: true,
            ..longrun_a2a::Config::default()
        })
        .await
    }

    pub async fn with(config: longrun_a2a::Config) -> Self {
        Self::on(runtime(), config).await
    }

    pub async fn on(runtime: Runtime, config: longrun_a2a::Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let surface = Surface::new(runtime.clone(), auth(), Limits::default());
        let shutdown = surface.shutdown_token();
        let router = longrun_a2a::router(surface, config, base.clone()).unwrap();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        Self {
            base,
            runtime,
            shutdown,
            client: reqwest::Client::new(),
        }
    }

    /// A JSON-RPC call with A2A 1.0; returns the whole response body.
    pub async fn rpc(&self, token: &str, method: &str, params: Value) -> Value {
        self.rpc_as(token, Some("1.0"), method, params).await
    }

    /// A JSON-RPC call with the given `A2A-Version` header (`None`: no header, i.e. 0.3).
    pub async fn rpc_as(
        &self,
        token: &str,
        version: Option<&str>,
        method: &str,
        params: Value,
    ) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let response = self.post_rpc(token, version, body.to_string()).await;
        assert!(
            response.status().is_success(),
            "{method}: HTTP {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// A raw POST to `/a2a`.
    pub async fn post_rpc(
        &self,
        token: &str,
        version: Option<&str>,
        body: String,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/a2a", self.base))
            .header("content-type", "application/json")
            .body(body);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(version) = version {
            request = request.header("A2A-Version", version);
        }
        tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the server answered in time")
            .unwrap()
    }

    /// A streaming JSON-RPC call; returns every SSE `data` as JSON, until the stream ends.
    pub async fn rpc_stream(
        &self,
        token: &str,
        version: Option<&str>,
        method: &str,
        params: Value,
    ) -> Vec<Value> {
        let body = json!({"jsonrpc": "2.0", "id": "s1", "method": method, "params": params});
        let response = self.post_rpc(token, version, body.to_string()).await;
        sse(response).await
    }

    /// A request to the HTTP+JSON binding (`path` after `/a2a`), with A2A 1.0.
    pub async fn rest(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}/a2a{path}", self.base))
            .header("A2A-Version", "1.0");
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/a2a+json")
                .body(body.to_string());
        }
        tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the server answered in time")
            .unwrap()
    }

    /// Sends a message (A2A 1.0, blocking unless `configuration` says otherwise) and returns
    /// the result.
    pub async fn send(&self, token: &str, message: Value, configuration: Value) -> Value {
        let reply = self
            .rpc(
                token,
                "SendMessage",
                json!({"message": message, "configuration": configuration}),
            )
            .await;
        assert!(reply.get("error").is_none(), "{reply}");
        reply["result"].clone()
    }

    /// The task `id`'s state, as alice sees it.
    pub async fn state(&self, id: &str) -> String {
        let reply = self
            .rpc(ALICE, "GetTask", json!({"id": id, "historyLength": 0}))
            .await;
        reply["result"]["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the task reaches `state`.
    pub async fn wait_for(&self, id: &str, state: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.state(id).await == state {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} never reached {state}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A user message for `skill` with a text part.
pub fn text(skill: &str, text: &str) -> Value {
    json!({
        "messageId": format!("m-{}", uuid()),
        "role": "ROLE_USER",
        "parts": [{"text": text}],
        "metadata": {"skill": skill},
    })
}

/// A user message for `skill` with a data part.
pub fn data(skill: &str, data: Value) -> Value {
    json!({
        "messageId": format!("m-{}", uuid()),
        "role": "ROLE_USER",
        "parts": [{"data": data}],
        "metadata": {"skill": skill},
    })
}

/// A follow-up message to `task` with a text part.
pub fn reply(task: &str, text: &str) -> Value {
    json!({
        "messageId": format!("m-{}", uuid()),
        "role": "ROLE_USER",
        "taskId": task,
        "parts": [{"text": text}],
    })
}

fn uuid() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every SSE `data` of `response` as JSON (`event: error` data too), until the stream ends.
pub async fn sse(response: reqwest::Response) -> Vec<Value> {
    sse_with(response, None).await
}

/// [`sse`], telling `opened` once the first event has arrived.
pub async fn sse_with(
    response: reqwest::Response,
    mut opened: Option<tokio::sync::oneshot::Sender<()>>,
) -> Vec<Value> {
    assert!(response.status().is_success(), "HTTP {}", response.status());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !content_type.starts_with("text/event-stream") {
        // An error before the stream started is a plain JSON body.
        return vec![response.json().await.unwrap()];
    }
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    loop {
        let chunk = tokio::time::timeout(PATIENCE, body.next())
            .await
            .expect("the stream went on or ended in time");
        let Some(chunk) = chunk else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(data) = line
                    .strip_prefix("data: ")
                    .or_else(|| line.strip_prefix("data:"))
                {
                    events.push(serde_json::from_str(data).unwrap());
                    if let Some(opened) = opened.take() {
                        let _ = opened.send(());
                    }
                }
            }
        }
    }
    events
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Value,
    /// The body as sent, for checking its signature.
    pub raw: String,
}

/// A webhook receiver on 127.0.0.1:0 that answers 500 to its first `fail_first` requests.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Delivery>>>,
    pub attempts: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let (r, a) = (received.clone(), attempts.clone());
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let (received, attempts) = (r.clone(), a.clone());
                async move {
                    if attempts.fetch_add(1, Ordering::SeqCst) < fail_first {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    received.lock().push(Delivery {
                        headers,
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                        raw: body,
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            received,
            attempts,
        }
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .iter()
            .map(|d| d.body.clone())
            .collect()
    }

    /// Waits until a received body satisfies `done`; returns every body so far.
    pub async fn wait_until(&self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let bodies = self.bodies();
            if bodies.iter().any(&done) {
                return bodies;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the webhook never got the awaited body; got {bodies:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
