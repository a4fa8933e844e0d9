//! Protocol 2025-11-25 and its experimental tasks (SEP-1686), written by hand.
//!
//! Why not rmcp here: rmcp 3.x removed this generation (no `task` param, no `tasks/result`,
//! `tasks/list` or `capabilities.tasks`), and its custom-request escape hatch does not help,
//! because every answer is decoded into rmcp's untagged `ServerResult` union first and typed
//! variants there silently drop what this generation adds: `capabilities.tasks` from the
//! `initialize` result, `execution.taskSupport` from `tools/list`, and `ttl` / `pollInterval`
//! from a working task (which decodes as a 2026-07-28 `GetTaskResult`). Without those the
//! client cannot follow the spec's MUSTs (augment only what the server and the tool allow) nor
//! poll at the server's interval. So this module keeps answers as plain JSON, over its own two
//! small transports ([`http`], [`stdio`]), and still uses rmcp's types for the payloads both
//! generations share (tool results, elicitation and sampling requests and results).
//!
//! The task flow (spec `basic/utilities/tasks`): `tools/call` with `params.task` answers a
//! `CreateTaskResult` (`{task}`); the client polls `tasks/get` at the task's `pollInterval`;
//! when the task is `input_required` or has ended it calls `tasks/result`, which blocks until
//! the end and carries the server's `elicitation/create` / `sampling/createMessage` requests on
//! its stream (answered by [`Router::serve`]); its answer is the tool's result, or the
//! JSON-RPC error the call failed with.

pub(crate) mod http;
mod jsonrpc;
mod sse;
pub(crate) mod stdio;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use futures_util::{FutureExt, future::BoxFuture};
use rmcp::model::CallToolResult;
use serde_json::{Map, Value, json};
use tokio_util::sync::DropGuard;

use crate::{
    error::Error,
    model::{TaskInfo, TaskPage, TaskSupport, ToolInfo},
    route::{Call, Router},
    run::{self, Outcome, Run},
    target::Target,
};

/// The protocol version this module speaks.
pub(crate) const VERSION: &str = "2025-11-25";

/// A notification from the server, routed.
pub(crate) fn notified(router: &Router, method: &str, params: &Value) {
    match method {
        "notifications/progress" => router.progress(params),
        "notifications/tasks/status" => router.task_status(params),
        "notifications/message" => {
            tracing::debug!(target: "longrun::mcp_client", %params, "server log message");
        }
        _ => {}
    }
}

enum Wire {
    Http(Arc<http::Http>),
    Stdio(Arc<stdio::Stdio>),
}

/// A 2025-11-25 session.
pub(crate) struct Legacy {
    wire: Wire,
    router: Arc<Router>,
    next_id: AtomicU64,
    /// The server's `capabilities` from `initialize`, as sent.
    capabilities: Value,
    /// The version the server agreed to.
    version: String,
    tools: Mutex<Option<HashMap<String, ToolInfo>>>,
    _stop: DropGuard,
}

impl Legacy {
    /// Connects and initializes.
    pub(crate) async fn connect(
        target: &Target,
        router: Arc<Router>,
        client: &rmcp::model::Implementation,
    ) -> Result<Self, Error> {
        let (wire, stop) = match target {
            Target::Http { url, token } => {
                let http = http::Http::new(url.clone(), token.clone(), router.clone());
                let stop = http.closed();
                (Wire::Http(http), stop)
            }
            Target::Stdio { command, args, env } => {
                let stdio = stdio::Stdio::spawn(command, args, env, router.clone())?;
                let stop = stdio.closed();
                (Wire::Stdio(stdio), stop)
            }
        };
        let mut session = Self {
            wire,
            router,
            next_id: AtomicU64::new(1),
            capabilities: Value::Null,
            version: VERSION.to_owned(),
            tools: Mutex::new(None),
            _stop: stop.drop_guard(),
        };
        let mut capabilities = Map::new();
        if session.router.answers(crate::handlers::Input::ELICIT) {
            capabilities.insert("elicitation".to_owned(), json!({"form": {}}));
        }
        if session.router.answers(crate::handlers::Input::SAMPLE) {
            capabilities.insert("sampling".to_owned(), json!({}));
        }
        let params = json!({
            "protocolVersion": VERSION,
            "capabilities": capabilities,
            "clientInfo": client,
        });
        let init = session
            .call("initialize", params)
            .await
            .map_err(|e| Error::Connect {
                target: target.to_string(),
                reason: match e {
                    Error::Connect { reason, .. } => reason,
                    other => other.to_string(),
                },
            })?;
        session.capabilities = init.get("capabilities").cloned().unwrap_or(Value::Null);
        if let Some(version) = init.get("protocolVersion").and_then(Value::as_str) {
            session.version = version.to_owned();
        }
        match &session.wire {
            Wire::Http(http) => {
                http.set_version(&session.version);
                http.send(&jsonrpc::notification(
                    "notifications/initialized",
                    &json!({}),
                ))
                .await?;
                http.listen();
            }
            Wire::Stdio(stdio) => {
                stdio.send(&jsonrpc::notification(
                    "notifications/initialized",
                    &json!({}),
                ))?;
            }
        }
        Ok(session)
    }

    /// The version the server agreed to (2025-11-25, or an older one without tasks).
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    fn next_id(&self) -> Value {
        json!(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    async fn request(&self, id: &Value, method: &str, params: &Value) -> Result<Value, Error> {
        match &self.wire {
            Wire::Http(http) => http.request(id, method, params).await,
            Wire::Stdio(stdio) => stdio.request(id, method, params).await,
        }
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        self.request(&self.next_id(), method, &params).await
    }

    async fn notify(&self, method: &str, params: Value) {
        let message = jsonrpc::notification(method, &params);
        let sent = match &self.wire {
            Wire::Http(http) => http.send(&message).await,
            Wire::Stdio(stdio) => stdio.send(&message),
        };
        if let Err(error) = sent {
            tracing::debug!(target: "longrun::mcp_client", %method, %error, "could not send a notification");
        }
    }

    fn capability(&self, pointer: &str) -> bool {
        self.capabilities
            .pointer(pointer)
            .is_some_and(|v| !v.is_null())
    }

    /// Whether the server runs tool calls as tasks at all (`capabilities.tasks.requests.tools.call`).
    pub(crate) fn runs_tool_tasks(&self) -> bool {
        self.capability("/tasks/requests/tools/call")
    }

    /// Every tool, all pages; remembered for deciding how to call them.
    pub(crate) async fn list_tools(&self) -> Result<Vec<ToolInfo>, Error> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(cursor) => json!({"cursor": cursor}),
                None => json!({}),
            };
            let page = self.call("tools/list", params).await?;
            let items = page
                .get("tools")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::protocol("tools/list", "no `tools` list"))?;
            tools.extend(items.iter().filter_map(ToolInfo::from_wire));
            cursor = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            // A server that hands back the same cursor would loop for ever.
            if cursor.is_none() || tools.len() > 100_000 {
                break;
            }
        }
        let by_name = tools.iter().map(|t| (t.name.clone(), t.clone())).collect();
        *lock(&self.tools) = Some(by_name);
        Ok(tools)
    }

    /// How `name` may be called: from the tools list (fetched when unknown).
    async fn task_support(&self, name: &str) -> Result<TaskSupport, Error> {
        let known = lock(&self.tools)
            .as_ref()
            .and_then(|t| t.get(name).cloned());
        let tool = match known {
            Some(tool) => Some(tool),
            None => self
                .list_tools()
                .await?
                .into_iter()
                .find(|t| t.name == name),
        };
        Ok(tool.and_then(|t| t.task_support).unwrap_or_default())
    }

    /// `tasks/get`.
    pub(crate) async fn get_task(&self, id: &str) -> Result<TaskInfo, Error> {
        let task = self.call("tasks/get", json!({"taskId": id})).await?;
        TaskInfo::from_wire(&task).ok_or_else(|| Error::protocol("tasks/get", "not a task"))
    }

    /// `tasks/cancel`.
    pub(crate) async fn cancel_task(&self, id: &str) -> Result<(), Error> {
        self.call("tasks/cancel", json!({"taskId": id}))
            .await
            .map(drop)
    }

    /// `tasks/list`, where the server offers it.
    pub(crate) async fn list_tasks(&self, cursor: Option<&str>) -> Result<TaskPage, Error> {
        if !self.capability("/tasks/list") {
            return Err(Error::Unsupported(
                "this server does not offer tasks/list (no `capabilities.tasks.list`)".to_owned(),
            ));
        }
        let params = match cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let page = self.call("tasks/list", params).await?;
        let tasks = page
            .get("tasks")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::protocol("tasks/list", "no `tasks` list"))?
            .iter()
            .filter_map(TaskInfo::from_wire)
            .collect();
        Ok(TaskPage {
            tasks,
            next_cursor: page
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Calls a tool: as a task when the server and the tool allow it, plainly otherwise.
    pub(crate) async fn run(
        &self,
        name: &str,
        arguments: Value,
        run: &Run,
        call: &Arc<Call>,
    ) -> Result<CallToolResult, Error> {
        let support = self.task_support(name).await?;
        let as_task = self.runs_tool_tasks() && support != TaskSupport::Forbidden;
        let id = self.next_id();
        let _origin = self.router.request(&id, call);
        let _progress = self.router.token(&id, call);
        let mut params = json!({
            "name": name,
            "arguments": arguments,
            "_meta": {"progressToken": id},
        });
        if !as_task {
            let answer = self.request(&id, "tools/call", &params);
            return match run.race(answer).await {
                Outcome::Done(answer) => tool_result("tools/call", answer?),
                Outcome::Stopped(stop) => {
                    // A plain call is cancelled with `notifications/cancelled` (a task never is).
                    self.notify(
                        "notifications/cancelled",
                        json!({"requestId": id, "reason": stop.reason()}),
                    )
                    .await;
                    Err(stop.into_error(String::new()))
                }
            };
        }
        params["task"] = match run.ttl {
            Some(ttl) => json!({"ttl": u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)}),
            None => json!({}),
        };
        let created = match run.race(self.request(&id, "tools/call", &params)).await {
            Outcome::Done(created) => created?,
            Outcome::Stopped(stop) => {
                // The task may exist by now; without its id it cannot be cancelled by
                // `tasks/cancel`, so the request itself is.
                self.notify(
                    "notifications/cancelled",
                    json!({"requestId": id, "reason": stop.reason()}),
                )
                .await;
                return Err(stop.into_error(String::new()));
            }
        };
        let Some(task) = created.get("task").and_then(TaskInfo::from_wire) else {
            // A server may still answer with the result itself; take it.
            return tool_result("tools/call", created);
        };
        self.drive(task, run, call).await
    }

    /// Polls a task to its end, fetching its result with `tasks/result` once it needs input or
    /// has ended.
    async fn drive(
        &self,
        mut task: TaskInfo,
        run: &Run,
        call: &Arc<Call>,
    ) -> Result<CallToolResult, Error> {
        let task_id = task.id.clone();
        let _routed = self.router.task(&task_id, call);
        call.observe(&task);
        let mut interval = run::poll_interval(task.poll_interval);
        let mut result: Option<BoxFuture<'_, Result<Value, Error>>> = None;
        let cancelled = |task: &TaskInfo| Error::Cancelled {
            task_id: task.id.clone(),
            reason: task.status_message.clone(),
        };
        loop {
            // A cancelled task has no result to fetch (servers answer `tasks/result` with an
            // error then), so it ends the call whatever is pending.
            if task.status == crate::Status::Cancelled {
                return Err(cancelled(&task));
            }
            if result.is_none()
                && (task.status.is_terminal() || task.status == crate::Status::InputRequired)
            {
                result = Some(self.task_result(&task_id, call).boxed());
            }
            let step = async {
                match result.as_mut() {
                    Some(result) => tokio::select! {
                        payload = result => Some(payload),
                        () = tokio::time::sleep(interval) => None,
                    },
                    None => {
                        tokio::time::sleep(interval).await;
                        None
                    }
                }
            };
            match run.race(step).await {
                Outcome::Done(Some(payload)) => {
                    return match payload {
                        Ok(payload) => tool_result("tasks/result", payload),
                        Err(Error::Rpc { error, .. }) => {
                            // The error the call failed with, unless the task was cancelled
                            // meanwhile (the error is then about the missing result).
                            match self.get_task(&task_id).await {
                                Ok(now) if now.status == crate::Status::Cancelled => {
                                    Err(cancelled(&now))
                                }
                                _ => Err(Error::TaskFailed {
                                    task_id: task_id.clone(),
                                    error,
                                }),
                            }
                        }
                        Err(other) => Err(other),
                    };
                }
                Outcome::Done(None) => {
                    task = self.get_task(&task.id).await?;
                    call.observe(&task);
                    interval = run::poll_interval(task.poll_interval.or(Some(interval)));
                }
                Outcome::Stopped(stop) => {
                    if let Err(error) = self.cancel_task(&task.id).await {
                        tracing::debug!(target: "longrun::mcp_client", task = %task.id, %error, "tasks/cancel failed");
                    }
                    return Err(stop.into_error(task.id.clone()));
                }
            }
        }
    }

    /// `tasks/result`, with the questions on its stream routed to `call`.
    async fn task_result(&self, task: &str, call: &Arc<Call>) -> Result<Value, Error> {
        let id = self.next_id();
        let _origin = self.router.request(&id, call);
        self.request(&id, "tasks/result", &json!({"taskId": task}))
            .await
    }

    /// Ends the session.
    pub(crate) async fn close(&self) {
        match &self.wire {
            Wire::Http(http) => http.close().await,
            Wire::Stdio(stdio) => stdio.close().await,
        }
    }
}

/// Reads a tool result.
fn tool_result(method: &str, value: Value) -> Result<CallToolResult, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::protocol(method, format!("not a tool result: {e}")))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
