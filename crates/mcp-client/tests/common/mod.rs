//! An in-process MCP server speaking protocol 2026-07-28 with the tasks extension, built on
//! rmcp's server and its `TaskManager`, served over Streamable HTTP on 127.0.0.1:0.
//!
//! Tools (all but `greet` become tasks for a client that declares the extension):
//! - `greet {name}`: a plain result, `Hello, {name}!`;
//! - `slow {ms, steps}`: `steps` status messages `step i of n`, `ms` apart, then `done`; honours
//!   cancellation (ends `cancelled`);
//! - `confirm {filename}`: asks `confirm` (an elicitation with a boolean `confirm` field), then
//!   answers `confirmed = <answer>`;
//! - `fail`: ends `failed` with `-32603` `intentional failure`;
//! - `tool_error`: ends `completed` with `isError: true`;
//! - `named`: first an MRTR round asking `user_name`, then a task greeting that name.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ErrorData as McpError, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
        CreateTaskResult, GetTaskParams, GetTaskResult, InputRequest, InputRequests,
        InputRequiredResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
        ServerConfig, Tool, UpdateTaskParams,
    },
    service::{RequestContext, RoleServer},
    task_manager::{TaskExit, TaskManager, TaskOptions},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What the server saw, for assertions.
#[derive(Default)]
pub struct Seen {
    /// Task ids `tasks/cancel` was called for.
    pub cancelled: Vec<String>,
    /// Tasks whose operation stopped on cancellation.
    pub stopped: Vec<String>,
}

#[derive(Clone)]
pub struct Server {
    tasks: TaskManager,
    pub seen: Arc<Mutex<Seen>>,
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s.into())])
}

fn object(schema: Value) -> Arc<rmcp::model::JsonObject> {
    match schema {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(Default::default()),
    }
}

fn arg<'a>(request: &'a CallToolRequestParams, key: &str) -> Option<&'a Value> {
    request.arguments.as_ref().and_then(|a| a.get(key))
}

fn elicitation(message: &str, field: &str, kind: &str) -> InputRequest {
    serde_json::from_value(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {"type": "object", "properties": {field: {"type": kind}}, "required": [field]},
        }
    }))
    .expect("a valid elicitation")
}

impl Server {
    pub fn new() -> Self {
        Self {
            tasks: TaskManager::new(),
            seen: Arc::default(),
        }
    }

    fn options() -> TaskOptions {
        TaskOptions::new().with_poll_interval_ms(20)
    }
}

impl ServerHandler for Server {
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = vec![
            Tool::new(
                "greet",
                "Says hello",
                object(
                    json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
                ),
            ),
            Tool::new(
                "slow",
                "Takes its time",
                object(
                    json!({"type": "object", "properties": {"ms": {"type": "integer"}, "steps": {"type": "integer"}}}),
                ),
            ),
            Tool::new(
                "confirm",
                "Asks before it acts",
                object(json!({"type": "object", "properties": {"filename": {"type": "string"}}})),
            ),
            Tool::new("fail", "Always fails", object(json!({"type": "object"}))),
            Tool::new(
                "tool_error",
                "Reports a tool error",
                object(json!({"type": "object"})),
            ),
            Tool::new(
                "named",
                "Asks a name first",
                object(json!({"type": "object"})),
            ),
        ];
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tasks = context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks());
        let name = request.name.to_string();
        if name == "greet" {
            let who = arg(&request, "name")
                .and_then(Value::as_str)
                .unwrap_or("you");
            return Ok(CallToolResponse::Complete(text(format!("Hello, {who}!"))));
        }
        if !tasks {
            return Err(McpError::new(
                rmcp::model::ErrorCode(-32021),
                "Missing required client capability",
                Some(
                    json!({"requiredCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}),
                ),
            ));
        }
        let seen = self.seen.clone();
        let task = match name.as_str() {
            "slow" => {
                let ms = arg(&request, "ms").and_then(Value::as_u64).unwrap_or(20);
                let steps = arg(&request, "steps").and_then(Value::as_u64).unwrap_or(3);
                self.tasks.spawn(Self::options().with_status_message("starting"), move |ctx| {
                    Box::pin(async move {
                        for i in 1..=steps {
                            tokio::select! {
                                () = ctx.cancelled() => {
                                    seen.lock().expect("lock").stopped.push(ctx.task_id().to_owned());
                                    return Err(TaskExit::Cancelled);
                                }
                                () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                            }
                            ctx.set_status_message(format!("step {i} of {steps}"));
                        }
                        Ok(text("done"))
                    })
                })
            }
            "confirm" => {
                let file = arg(&request, "filename")
                    .and_then(Value::as_str)
                    .unwrap_or("a.txt")
                    .to_owned();
                self.tasks.spawn(Self::options(), move |ctx| {
                    Box::pin(async move {
                        let answer = ctx
                            .request_input(
                                "confirm",
                                elicitation(&format!("Delete {file}?"), "confirm", "boolean"),
                            )
                            .await?;
                        let confirmed = answer
                            .pointer("/content/confirm")
                            .cloned()
                            .unwrap_or(Value::Null);
                        Ok(text(format!(
                            "confirm_delete({file}): confirmed = {confirmed}"
                        )))
                    })
                })
            }
            "fail" => self.tasks.spawn(Self::options(), |_ctx| {
                Box::pin(async move {
                    Err(TaskExit::Error(McpError::internal_error(
                        "intentional failure",
                        None,
                    )))
                })
            }),
            "tool_error" => self.tasks.spawn(Self::options(), |_ctx| {
                Box::pin(async move {
                    Ok(CallToolResult::error(vec![ContentBlock::text(
                        "the disk is full",
                    )]))
                })
            }),
            "named" => {
                let Some(responses) = request.input_responses.clone() else {
                    let mut requests = InputRequests::new();
                    requests.insert(
                        "user_name".to_owned(),
                        elicitation("Your name?", "name", "string"),
                    );
                    return Ok(CallToolResponse::InputRequired(InputRequiredResult::new(
                        Some(requests),
                        Some("round-1".to_owned()),
                    )));
                };
                if request.request_state.as_deref() != Some("round-1") {
                    return Err(McpError::invalid_params(
                        "requestState was not echoed",
                        None,
                    ));
                }
                let who = responses
                    .get("user_name")
                    .and_then(|r| r.pointer("/content/name"))
                    .and_then(Value::as_str)
                    .unwrap_or("nobody")
                    .to_owned();
                self.tasks.spawn(Self::options(), move |_ctx| {
                    Box::pin(async move { Ok(text(format!("Hello, {who}!"))) })
                })
            }
            other => return Err(McpError::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        Ok(GetTaskResult::new(self.tasks.get_task(&request.task_id)?))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.tasks
            .update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.seen
            .lock()
            .expect("lock")
            .cancelled
            .push(request.task_id.clone());
        self.tasks.cancel_task(&request.task_id)
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tasks()
                .build(),
        )
    }
}

/// A running server: its URL, what it saw, and the token that stops it.
pub struct Running {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
    pub stop: CancellationToken,
}

/// Serves a fresh [`Server`] on 127.0.0.1:0.
pub async fn serve() -> Running {
    let server = Server::new();
    let seen = server.seen.clone();
    let stop = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(None)
        .with_cancellation_token(stop.clone());
    let service: StreamableHttpService<Server, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config);
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    let shutdown = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Running {
        url: format!("http://{address}/mcp"),
        seen,
        stop,
    }
}
