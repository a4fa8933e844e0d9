//! The MCP door at `/mcp`: 2025-11-25 requests in an initialized session and 2026-07-28
//! requests with their `_meta` and routing headers, single and in batches, beside live tasks
//! of both generations.

use std::{sync::Arc, time::Duration};

use axum::Router;
use futures_util::{FutureExt, future::BoxFuture};
use longrun::{Context, KindSpec, Runtime, TaskError, kind::TaskSupport};
use longrun_surface::{Limits, Surface};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ALICE, BOB, auth, fill, task_id};
use crate::{
    case::{HttpCase, Input},
    engine::Door,
    exchange,
    mutate::Mutator,
    request::{self, Seed},
    shape,
};

const LEGACY: &str = "2025-11-25";
const MODERN: &str = "2026-07-28";

pub(crate) struct Mcp {
    runtime: Runtime,
    shutdown: CancellationToken,
    router: Router,
    seeds: Vec<Seed>,
    ids: Vec<(&'static str, String)>,
}

pub(crate) async fn open() -> Arc<dyn Door> {
    let runtime = kinds();
    let surface = Surface::new(runtime.clone(), auth(), Limits::default());
    let shutdown = surface.shutdown_token();
    let config = longrun_mcp::Config {
        poll_interval_ms: 50,
        input_settle_ms: 10,
        input_wait_ms: 2_000,
        max_sessions: 1_000,
        ask_before_task: vec!["two_questions".into()],
        ..longrun_mcp::Config::default()
    };
    let router = longrun_mcp::router(surface, config);
    let mut door = Mcp {
        runtime,
        shutdown,
        router,
        seeds: seeds(),
        ids: Vec::new(),
    };
    let (session, _) = door.post(&[], initialize()).await;
    let session = session.unwrap_or_default();
    let in_session = [("mcp-session-id", session.as_str())];
    door.post(&in_session, notification("notifications/initialized"))
        .await;
    let (_, legacy) = door
        .post(
            &in_session,
            call(1, "tools/call", json!({"name": "ask", "task": {}})),
        )
        .await;
    let params = modern_params(json!({"name": "ask"}), true);
    let (_, modern) = door
        .post(
            &modern_headers("tools/call", "ask"),
            call(2, "tools/call", params),
        )
        .await;
    let unknown = || "task_00000000000000000000000000000002".to_owned();
    door.ids = vec![
        ("{session}", session),
        (
            "{legacy_task}",
            legacy.as_ref().and_then(task_id).unwrap_or_else(unknown),
        ),
        (
            "{task}",
            modern.as_ref().and_then(task_id).unwrap_or_else(unknown),
        ),
    ];
    Arc::new(door)
}

impl Mcp {
    /// Posts `body` as `alice` with `headers`; the session header and the body of the answer.
    async fn post(&self, headers: &[(&str, &str)], body: Value) -> (Option<String>, Option<Value>) {
        let mut case = HttpCase {
            method: "POST".into(),
            uri: "/mcp".into(),
            headers: base_headers(),
            body: body.to_string().into_bytes(),
        };
        case.headers.extend(
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let Ok(Some(reply)) = exchange::send(&self.router, &case, str::to_owned).await else {
            return (None, None);
        };
        let session = reply
            .headers
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = match &reply.events {
            Some(events) => events.iter().find_map(|e| serde_json::from_str(e).ok()),
            None => serde_json::from_slice(&reply.body).ok(),
        };
        (session, body)
    }
}

impl Door for Mcp {
    fn dictionary(&self) -> Vec<Value> {
        request::dictionary(&self.seeds)
    }

    fn generate(&self, mutator: &mut Mutator) -> Input {
        Input::http(request::generate(&self.seeds, mutator, routing_headers))
    }

    fn run(self: Arc<Self>, input: Input) -> BoxFuture<'static, Result<(), String>> {
        async move {
            let Input::Http(case) = input else {
                return Ok(());
            };
            let reply = exchange::send(&self.router, &case, |text| fill(text, &self.ids)).await?;
            let Some(reply) = reply else {
                return Ok(());
            };
            let uri = fill(&case.uri, &self.ids);
            if uri.split(['?', '#']).next() != Some("/mcp") {
                // Outside the door (an unknown path): the server's own fallback answers.
                return Ok(());
            }
            if reply.status == 405 && case.method != "POST" {
                // Streamable HTTP answers a GET or DELETE it does not serve (any of them in
                // 2026-07-28, which has no sessions) with a bare 405, as the transport
                // prescribes; there is no JSON-RPC message to answer.
                return Ok(());
            }
            shape::jsonrpc(
                &reply,
                fill(&String::from_utf8_lossy(&case.body), &self.ids).as_bytes(),
                true,
            )
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let (runtime, shutdown) = (self.runtime.clone(), self.shutdown.clone());
        async move {
            shutdown.cancel();
            runtime.shutdown().await;
        }
        .boxed()
    }
}

/// Keeps a 2026-07-28 request's `Mcp-Method` and `Mcp-Name` equal to its (mutated) body, so
/// that mutations reach the method behind the header check.
fn routing_headers(_: &mut Mutator, case: &mut HttpCase, body: Option<&Value>) {
    let Some(body) = body else { return };
    let modern = case
        .headers
        .iter()
        .any(|(name, value)| name == "mcp-protocol-version" && value == MODERN);
    if !modern {
        return;
    }
    case.headers
        .retain(|(name, _)| name != "mcp-method" && name != "mcp-name");
    if let Some(method) = body["method"].as_str() {
        case.headers.push(("mcp-method".into(), method.to_owned()));
    }
    let params = &body["params"];
    if let Some(name) = params["name"].as_str().or(params["taskId"].as_str()) {
        case.headers.push(("mcp-name".into(), name.to_owned()));
    }
}

fn base_headers() -> Vec<(String, String)> {
    vec![
        ("authorization".into(), format!("Bearer {ALICE}")),
        ("content-type".into(), "application/json".into()),
        (
            "accept".into(),
            "application/json, text/event-stream".into(),
        ),
    ]
}

fn call(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn notification(method: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": method})
}

fn initialize() -> Value {
    call(
        0,
        "initialize",
        json!({
            "protocolVersion": LEGACY,
            "capabilities": {"elicitation": {}, "sampling": {}},
            "clientInfo": {"name": "fuzz", "version": "0"},
        }),
    )
}

/// `params` with a 2026-07-28 `_meta`; `tasks` declares the tasks extension.
fn modern_params(mut params: Value, tasks: bool) -> Value {
    let mut capabilities = json!({"elicitation": {}, "sampling": {}});
    if tasks {
        capabilities["extensions"] = json!({"io.modelcontextprotocol/tasks": {}});
    }
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "progressToken": 7,
    });
    params
}

fn modern_headers<'a>(method: &'a str, name: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if !name.is_empty() {
        headers.push(("mcp-name", name));
    }
    headers
}

/// The door's requests, as its tests and the MCP documents send them.
fn seeds() -> Vec<Seed> {
    let with = |headers: &[(&str, &str)], body: Value| {
        let mut seed = Seed::new("POST", "/mcp");
        for (name, value) in base_headers() {
            seed = seed.header(&name, value);
        }
        for (name, value) in headers {
            seed = seed.header(name, *value);
        }
        seed.body = Some(body);
        seed
    };
    let session = [
        ("mcp-session-id", "{session}"),
        ("mcp-protocol-version", LEGACY),
    ];
    let legacy = |id: u64, method: &str, params: Value| with(&session, call(id, method, params));
    let modern = |id: u64, method: &str, params: Value, tasks: bool| {
        let name = params["name"]
            .as_str()
            .or(params["taskId"].as_str())
            .unwrap_or("")
            .to_owned();
        with(
            &modern_headers(method, &name),
            call(id, method, modern_params(params, tasks)),
        )
    };
    let answer = json!({"action": "accept", "content": {"value": true}});
    vec![
        with(&[], initialize()),
        with(&session, notification("notifications/initialized")),
        legacy(1, "ping", json!({})),
        legacy(2, "tools/list", json!({})),
        legacy(3, "tools/list", json!({"cursor": "x"})),
        legacy(4, "logging/setLevel", json!({"level": "warning"})),
        legacy(
            5,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        ),
        legacy(
            6,
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 50}, "task": {"ttl": 60000}}),
        ),
        legacy(7, "tools/call", json!({"name": "only_task", "task": {}})),
        legacy(
            8,
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 20}, "_meta": {"progressToken": 7}}),
        ),
        legacy(9, "tasks/get", json!({"taskId": "{legacy_task}"})),
        legacy(10, "tasks/list", json!({"cursor": "garbage"})),
        legacy(11, "tasks/result", json!({"taskId": "{legacy_task}"})),
        legacy(12, "tasks/cancel", json!({"taskId": "{legacy_task}"})),
        legacy(13, "resources/list", json!({})),
        with(
            &session,
            json!({"jsonrpc": "2.0", "id": 0, "result": {"action": "decline"}}),
        ),
        with(
            &session,
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                              "params": {"requestId": 8, "reason": "enough"}}),
        ),
        with(
            &session,
            json!([
                call(20, "ping", json!({})),
                call(21, "tools/list", json!({})),
                notification("notifications/initialized")
            ]),
        ),
        Seed::new("GET", "/mcp")
            .header("authorization", format!("Bearer {ALICE}"))
            .header("accept", "text/event-stream")
            .header("mcp-session-id", "{session}"),
        with(&[], call(1, "ping", json!({}))).header("authorization", format!("Bearer {BOB}")),
        modern(1, "server/discover", json!({}), true),
        modern(2, "tools/list", json!({}), false),
        modern(
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
            false,
        ),
        modern(
            4,
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 30}}),
            true,
        ),
        modern(5, "tools/call", json!({"name": "ask"}), false),
        modern(6, "tools/call", json!({"name": "two_questions"}), true),
        modern(7, "tasks/get", json!({"taskId": "{task}"}), true),
        modern(
            8,
            "tasks/update",
            json!({"taskId": "{task}", "inputResponses": {"go": answer}}),
            true,
        ),
        modern(9, "tasks/cancel", json!({"taskId": "{task}"}), true),
        modern(
            10,
            "tools/call",
            json!({"name": "ask", "requestState": "eyJ4IjoxfQ",
                                        "inputResponses": {"go": {"action": "decline"}}}),
            false,
        ),
        modern(11, "tools/call", json!({"name": "sample"}), false),
        with(
            &[("mcp-protocol-version", MODERN)],
            json!([
                call(1, "tools/list", modern_params(json!({}), false)),
                call(
                    2,
                    "tasks/get",
                    modern_params(json!({"taskId": "{task}"}), true)
                )
            ]),
        ),
    ]
}

/// The kinds of the door's tests, each ending by itself: questions time out after seconds.
fn kinds() -> Runtime {
    let runtime = Runtime::new(Default::default());
    let object = |properties: Value| json!({"type": "object", "properties": properties});
    let question = Duration::from_secs(5);
    let spec = |name: &str, support: TaskSupport, schema: Value| {
        let mut spec = KindSpec::new(name).task_support(support);
        spec.input_schema = schema;
        spec
    };
    let echo = spec(
        "echo",
        TaskSupport::Forbidden,
        json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}),
    );
    let registered = [
        runtime.register(echo, |_ctx: Context, input: Value| async move {
            Ok::<_, TaskError>(input["text"].clone())
        }),
        runtime.register(
            spec("work", TaskSupport::Optional, object(json!({"ms": {"type": "integer"}}))),
            |ctx: Context, input: Value| async move {
                let ms = input["ms"].as_u64().unwrap_or(0).min(300);
                ctx.progress(10.0, "started").await?;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    () = ctx.cancelled() => return Err(TaskError::new("cancelled", "stopped")),
                }
                ctx.progress(100.0, "done").await?;
                Ok::<_, TaskError>(json!({"slept_ms": ms}))
            },
        ),
        runtime.register(
            spec("only_task", TaskSupport::Required, object(json!({}))),
            |_ctx: Context, _input: Value| async move { Ok::<_, TaskError>(json!("done as a task")) },
        ),
        runtime.register(
            spec("ask", TaskSupport::Optional, object(json!({}))),
            move |ctx: Context, _input: Value| async move {
                let request = json!({"type": "boolean", "message": "Go on?"});
                let answer = ctx.ask("go", request, question).await?;
                Ok::<_, TaskError>(json!(format!("go = {answer}")))
            },
        ),
        runtime.register(
            spec("two_questions", TaskSupport::Optional, object(json!({}))),
            move |ctx: Context, _input: Value| async move {
                let (first, second) = tokio::join!(
                    ctx.ask("first", json!({"message": "First?"}), question),
                    ctx.ask("second", json!({"message": "Second?"}), question),
                );
                Ok::<_, TaskError>(json!(format!("{} {}", first?, second?)))
            },
        ),
        runtime.register(
            spec("sample", TaskSupport::Forbidden, object(json!({}))),
            move |ctx: Context, _input: Value| async move {
                let request = json!({"method": "sampling/createMessage", "params": {
                    "messages": [{"role": "user", "content": {"type": "text", "text": "Capital of France?"}}],
                    "maxTokens": 10,
                }});
                let reply = ctx.ask("llm", request, question).await?;
                Ok::<_, TaskError>(reply["content"]["text"].clone())
            },
        ),
        runtime.register(
            spec("fail", TaskSupport::Optional, object(json!({}))),
            |_ctx: Context, _input: Value| async move {
                Err::<Value, _>(TaskError::new("broken", "it broke on purpose"))
            },
        ),
    ];
    for result in registered {
        result.expect("the fuzz kinds have distinct names");
    }
    runtime
}
