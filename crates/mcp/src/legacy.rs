//! The session generation: `initialize` and the methods of a session, with the experimental
//! core tasks of 2025-11-25 (SEP-1686) when that is the negotiated version.
//!
//! | method | answer |
//! |---|---|
//! | `initialize` | the negotiated version, `tools`, `logging`, and `tasks` (`list`, `cancel`, `requests.tools.call`) on 2025-11-25 |
//! | `ping`, `logging/setLevel` | `{}` |
//! | `tools/list` | every kind, with `execution.taskSupport` |
//! | `tools/call` | with `params.task`: a `CreateTaskResult` (`{task}`) once the task is stored; without: the task runs and the call streams its progress, log messages and questions, then answers with the result |
//! | `tasks/get` | the `Task` |
//! | `tasks/result` | the result once the task ended, streaming its questions as requests meanwhile |
//! | `tasks/list` | the caller's tasks, newest first, paged by `nextCursor` |
//! | `tasks/cancel` | the `Task`, `cancelled`; `-32602` for a task that had already ended |
//! | `resources/*` (with `subscribe`), `prompts/*`, `completion/complete` | `resources.rs`, `prompts.rs` |
//!
//! On the session's GET stream the server sends `notifications/tasks/status` for every task the
//! session created, each time its status changes and for each step it saves.

use std::{sync::Arc, time::Duration};

use longrun::{
    TaskId,
    event::{Change, Notice},
    kind::TaskSupport,
    task::{Cursor, Filter},
};
use longrun_surface::Principal;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::{
    call::{Followed, Relay, Reporter},
    error::Error,
    jsonrpc::Request,
    notify::Sink,
    prompts, resources,
    server::{Reply, STREAM_BUFFER, Server, finish, string_param},
    session::{LEVELS, Session},
    tools,
    version::{LEGACY, META_RELATED_TASK, TASKS_LEGACY, server_info},
    view,
};

/// How many tasks one `tasks/list` page holds.
const PAGE: usize = 100;

/// Answers `initialize`: a new session, and its result.
pub(crate) fn initialize(
    server: &Server,
    principal: &Principal,
    request: &Request,
) -> Result<(Arc<Session>, Value), Error> {
    let requested = string_param(&request.params, "protocolVersion")?;
    let version = if LEGACY.contains(&requested) {
        requested
    } else {
        TASKS_LEGACY
    };
    let capabilities = match request.params.get("capabilities") {
        Some(Value::Object(capabilities)) => Value::Object(capabilities.clone()),
        None => json!({}),
        Some(_) => {
            return Err(Error::InvalidParams(
                "`capabilities` must be an object".into(),
            ));
        }
    };
    let session = Arc::new(Session::new(
        principal.clone(),
        version.to_owned(),
        capabilities,
    ));
    let mut offered = json!({
        "tools": {"listChanged": false},
        "logging": {},
        "resources": {"subscribe": true, "listChanged": false},
    });
    // Prompts and completions only when something is configured.
    if server.config.has_prompts() {
        offered["prompts"] = json!({"listChanged": false});
    }
    if server.config.has_completions() {
        offered["completions"] = json!({});
    }
    if session.has_tasks() {
        offered["tasks"] = json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
    }
    let result = json!({
        "protocolVersion": version,
        "capabilities": offered,
        "serverInfo": server_info(),
        "instructions": "Every tool runs as a longrun task. Tools whose execution.taskSupport \
                         allows it can be called as tasks (params.task) and followed with \
                         tasks/get, tasks/result and tasks/cancel.",
    });
    Ok((session, result))
}

/// Answers one request of an open session.
pub(crate) async fn handle(
    server: &Arc<Server>,
    session: &Arc<Session>,
    request: Request,
) -> Result<Reply, Error> {
    let principal = &session.principal;
    let params = &request.params;
    match request.method.as_str() {
        "initialize" => Err(Error::InvalidRequest(
            "this session is already initialized; start a new session to initialize again".into(),
        )),
        "ping" => Ok(Reply::Result(json!({}))),
        "logging/setLevel" => {
            let level = string_param(params, "level")?;
            let index = LEVELS
                .iter()
                .position(|known| *known == level)
                .ok_or_else(|| Error::InvalidParams(format!("unknown log level `{level}`")))?;
            session.set_log_level(index);
            Ok(Reply::Result(json!({})))
        }
        "tools/list" => {
            if params.contains_key("cursor") {
                return Err(Error::InvalidParams(
                    "unknown cursor: tools/list returns every tool on one page".into(),
                ));
            }
            let tools: Vec<Value> = server
                .runtime()
                .kinds()
                .iter()
                .map(|spec| tools::tool(spec, session.has_tasks()))
                .collect();
            Ok(Reply::Result(json!({"tools": tools})))
        }
        "tools/call" => call(server, session, request).await,
        "prompts/list" if server.config.has_prompts() => {
            Ok(Reply::Result(json!({"prompts": prompts::list(server)})))
        }
        "prompts/get" if server.config.has_prompts() => match prompts::get(server, params, None)? {
            prompts::Got::Messages(result) => Ok(Reply::Result(Value::Object(result))),
            prompts::Got::Questions(_) => Err(Error::Internal("a prompt's questions".into())),
        },
        "completion/complete" if server.config.has_completions() => Ok(Reply::Result(
            prompts::complete(server, principal, params).await?,
        )),
        "resources/list" => Ok(Reply::Result(json!({"resources": resources::list(server)}))),
        "resources/templates/list" => Ok(Reply::Result(
            json!({"resourceTemplates": resources::templates(server)}),
        )),
        "resources/read" => {
            let uri = string_param(params, "uri")?;
            let contents = resources::read(server, principal, uri).await?;
            Ok(Reply::Result(json!({"contents": contents})))
        }
        "resources/subscribe" => {
            let uri = string_param(params, "uri")?;
            subscribe(server, session, uri).await;
            Ok(Reply::Result(json!({})))
        }
        "resources/unsubscribe" => {
            let uri = string_param(params, "uri")?;
            if let Some(stop) = session.watches.lock().remove(uri) {
                stop.cancel();
            }
            Ok(Reply::Result(json!({})))
        }
        method if method.starts_with("tasks/") && session.has_tasks() => {
            let id = string_param(params, "taskId");
            match method {
                "tasks/get" => {
                    let task = server.owned(principal, id?).await?;
                    Ok(Reply::Result(view::legacy(
                        &task,
                        server.config.poll_interval_ms,
                    )))
                }
                "tasks/result" => result(server, session, &request, id?).await,
                "tasks/list" => list(server, principal, params).await,
                "tasks/cancel" => {
                    let task = server.owned(principal, id?).await?;
                    let ended = |status: &str| {
                        Error::InvalidParams(format!(
                            "Cannot cancel task in terminal status: {status}"
                        ))
                    };
                    if task.status().is_terminal() {
                        return Err(ended(view::status(&task, true)));
                    }
                    let by = format!("mcp:{principal}");
                    match server.runtime().cancel_by(task.id, by).await {
                        Ok(task) => Ok(Reply::Result(view::legacy(
                            &task,
                            server.config.poll_interval_ms,
                        ))),
                        Err(longrun::Error::Ended { status, .. }) => Err(ended(status.as_str())),
                        Err(error) => Err(error.into()),
                    }
                }
                _ => Err(Error::MethodNotFound(format!("unknown method `{method}`"))),
            }
        }
        method => Err(Error::MethodNotFound(format!(
            "method `{method}` is not offered: this server has tools{} only",
            if session.has_tasks() {
                " and tasks"
            } else {
                ""
            }
        ))),
    }
}

/// `resources/subscribe`: a task's artifact is followed, and each chunk of it sends
/// `notifications/resources/updated` on the session's GET stream; any other resource is
/// accepted (configured resources never change).
async fn subscribe(server: &Arc<Server>, session: &Arc<Session>, uri: &str) {
    let Some(watch) = resources::watch(server, &session.principal, uri).await else {
        return;
    };
    let stop = tokio_util::sync::CancellationToken::new();
    if let Some(previous) = session.watches.lock().insert(uri.to_owned(), stop.clone()) {
        previous.cancel();
    }
    let sink = Sink::Session(Arc::downgrade(session));
    #[expect(
        clippy::disallowed_methods,
        reason = "a resource watch ends on its `stop` token or when its session is gone; the door owns no TaskTracker yet"
    )]
    tokio::spawn(resources::follow(server.clone(), watch, sink, stop));
}

/// `tools/call`: a task-augmented call answers with the task; a plain one runs it to the end.
async fn call(
    server: &Arc<Server>,
    session: &Arc<Session>,
    request: Request,
) -> Result<Reply, Error> {
    let params = &request.params;
    let spec = server.tool(string_param(params, "name")?)?;
    let augmented = match params.get("task") {
        None | Some(Value::Null) => None,
        Some(Value::Object(task)) => Some(task.clone()),
        Some(_) => return Err(Error::InvalidParams("`task` must be an object".into())),
    };
    // Only a 2025-11-25 session has tasks; an older one ignores `task`, as the spec says a
    // receiver without the capability must.
    let augmented = augmented.filter(|_| session.has_tasks());
    let principal = &session.principal;
    if let Some(task) = augmented {
        if spec.task_support == TaskSupport::Forbidden {
            return Err(Error::MethodNotFound(format!(
                "tool `{}` does not support task-augmented calls (its execution.taskSupport is \
                 \"forbidden\"): call it without `task`",
                spec.name
            )));
        }
        let ttl = match task.get("ttl") {
            None | Some(Value::Null) => None,
            Some(ttl) => {
                let ms = ttl.as_u64().ok_or_else(|| {
                    Error::InvalidParams("`task.ttl` must be a whole number of milliseconds".into())
                })?;
                Some(Duration::from_millis(ms.min(server.config.max_ttl_ms)))
            }
        };
        // There is no task to carry a tool error: a task-augmented call with a bad input is
        // refused outright.
        let input = server.input(&spec, params)?.map_err(Error::InvalidParams)?;
        let task = server.start(principal, &spec, input, ttl).await?;
        watch_status(server, session, task.id);
        return Ok(Reply::Result(
            json!({"task": view::legacy(&task, server.config.poll_interval_ms)}),
        ));
    }
    if spec.task_support == TaskSupport::Required && session.has_tasks() {
        return Err(Error::MethodNotFound(format!(
            "tool `{}` requires a task-augmented call (its execution.taskSupport is \
             \"required\"): call it with `task`",
            spec.name
        )));
    }
    let input = match server.input(&spec, params)? {
        Ok(input) => input,
        Err(refused) => return Ok(Reply::Result(Value::Object(tools::error_result(&refused)))),
    };
    let task = server.start(principal, &spec, input, None).await?;
    let progress = request
        .meta()
        .and_then(|meta| meta.get("progressToken"))
        .cloned();
    let (out, stream) = mpsc::channel(STREAM_BUFFER);
    let relay = Relay {
        server: server.clone(),
        session: session.clone(),
        task: task.id,
        out: out.clone(),
        reporter: Reporter::new(progress, session.logs(1), &spec.name),
        task_call: false,
    };
    // Noted before anything runs, so a `notifications/cancelled` right after finds the call.
    session.call_started(&request.id, task.id);
    let (server, session) = (server.clone(), session.clone());
    #[expect(
        clippy::disallowed_methods,
        reason = "the call's relay ends with its task, its stream or the surface's shutdown; the door owns no TaskTracker yet"
    )]
    tokio::spawn(async move {
        let relayed = relay.run().await;
        if session.call_ended(&request.id) {
            // The client cancelled the call: no response (and its task was cancelled).
            return;
        }
        let answer = match relayed {
            Ok(Followed::Ended(task)) => match view::ended(&task) {
                Some(Ok(result)) => Ok(Value::Object(result)),
                Some(Err(error)) => Err(error),
                None => Err(Error::Internal("the task did not end".into())),
            },
            Ok(Followed::Gone) => {
                // Nobody waits for this call's answer any more: stop its task.
                server.cancel_soon(task.id, &session.principal);
                return;
            }
            Ok(Followed::Stopping) => return,
            Err(error) => {
                server.cancel_soon(task.id, &session.principal);
                Err(error)
            }
        };
        finish(&out, &request.id, answer).await;
    });
    Ok(Reply::Stream(stream))
}

/// `tasks/result`: the result now if the task ended, else a stream that carries its questions
/// until it does.
async fn result(
    server: &Arc<Server>,
    session: &Arc<Session>,
    request: &Request,
    id: &str,
) -> Result<Reply, Error> {
    let task = server.owned(&session.principal, id).await?;
    let related = json!({META_RELATED_TASK: {"taskId": task.id.to_string()}});
    let payload = move |task: &longrun::Task| -> Result<Value, Error> {
        let mut result = match view::ended(task) {
            Some(Ok(result)) => result,
            Some(Err(error)) => return Err(error),
            None => return Err(Error::Internal("the task did not end".into())),
        };
        match result.get_mut("_meta") {
            Some(Value::Object(meta)) => {
                meta.insert(
                    META_RELATED_TASK.to_owned(),
                    related[META_RELATED_TASK].clone(),
                );
            }
            _ => {
                result.insert("_meta".to_owned(), related.clone());
            }
        }
        Ok(Value::Object(result))
    };
    if task.status().is_terminal() {
        return payload(&task).map(Reply::Result);
    }
    let (out, stream) = mpsc::channel(STREAM_BUFFER);
    let relay = Relay {
        server: server.clone(),
        session: session.clone(),
        task: task.id,
        out: out.clone(),
        reporter: Reporter::new(None, false, &task.kind),
        task_call: true,
    };
    let request_id = request.id.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the call's relay ends with its task, its stream or the surface's shutdown; the door owns no TaskTracker yet"
    )]
    tokio::spawn(async move {
        let answer = match relay.run().await {
            Ok(Followed::Ended(task)) => payload(&task),
            Ok(Followed::Gone | Followed::Stopping) => return,
            Err(error) => Err(error),
        };
        finish(&out, &request_id, answer).await;
    });
    Ok(Reply::Stream(stream))
}

/// `tasks/list`: the principal's tasks, newest first.
async fn list(
    server: &Server,
    principal: &Principal,
    params: &Map<String, Value>,
) -> Result<Reply, Error> {
    let after = match params.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(cursor)) => Some(cursor.parse::<Cursor>().map_err(|_| {
            Error::InvalidParams("invalid cursor: pass a nextCursor this server returned".into())
        })?),
        Some(_) => return Err(Error::InvalidParams("`cursor` must be a string".into())),
    };
    let filter = Filter {
        owner: Some(principal.owner()),
        ..Filter::default()
    };
    let page = server.runtime().list(filter, after, PAGE).await?;
    let tasks: Vec<Value> = page
        .tasks
        .iter()
        .map(|task| view::legacy(task, server.config.poll_interval_ms))
        .collect();
    let mut result = json!({"tasks": tasks});
    if let Some(next) = page.next {
        result["nextCursor"] = json!(next.to_string());
    }
    Ok(Reply::Result(result))
}

/// A notification of an open session.
pub(crate) fn notify(
    server: &Server,
    session: &Session,
    method: &str,
    params: &Map<String, Value>,
) {
    // Cancels a plain call (its task); tasks are cancelled with tasks/cancel instead. The
    // other notifications (`initialized`, progress, roots changes) need nothing done.
    if method == "notifications/cancelled"
        && let Some(request) = params.get("requestId")
        && let Some(task) = session.cancel_call(request)
    {
        server.cancel_soon(task, &session.principal);
    }
}

/// The client's answer to a request the server sent.
pub(crate) async fn respond(
    server: &Server,
    session: &Session,
    id: &Value,
    outcome: Result<Value, Value>,
) {
    let Some(asked) = id.as_u64().and_then(|id| session.take(id)) else {
        tracing::debug!(%id, "an answer to no open request of this session; ignored");
        return;
    };
    let value = match outcome {
        Ok(result) => match asked.question.answer(&result) {
            Ok(value) => value,
            Err(error) => {
                tracing::info!(task = %asked.task, key = asked.key, %error, "a malformed answer counts as no answer");
                Value::Null
            }
        },
        Err(error) => {
            tracing::info!(task = %asked.task, key = asked.key, %error, "the client refused a question; it counts as no answer");
            Value::Null
        }
    };
    if let Err(error) = server.answer(asked.task, &asked.key, value).await {
        tracing::warn!(task = %asked.task, key = asked.key, %error, "could not record an answer");
    }
}

/// The session's GET stream, where task status notifications go.
pub(crate) fn listen(session: &Session) -> mpsc::Receiver<Value> {
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    session.set_listener(sender);
    receiver
}

/// Sends `notifications/tasks/status` on the session's GET stream each time `task`'s status
/// changes, and for each step it saves (its `statusMessage` names the step), until it ends or
/// the session is gone.
fn watch_status(server: &Arc<Server>, session: &Arc<Session>, task: TaskId) {
    let runtime = server.runtime().clone();
    let poll = server.config.poll_interval_ms;
    let session = Arc::downgrade(session);
    let shutdown = server.surface.shutdown_token();
    #[expect(
        clippy::disallowed_methods,
        reason = "ends with the task, the session (held weakly) or the surface's shutdown; the door owns no TaskTracker yet"
    )]
    tokio::spawn(async move {
        let Ok(mut events) = runtime.subscribe(task, longrun::event::Seq::ZERO).await else {
            return;
        };
        let mut last = None;
        loop {
            let notice = tokio::select! {
                notice = events.next() => notice,
                () = shutdown.cancelled() => return,
            };
            let event = match notice {
                Ok(Some(Notice::Event(event))) => event,
                Ok(Some(Notice::Lagged { .. })) => continue,
                Ok(None) | Err(_) => return,
            };
            let Some(session) = session.upgrade() else {
                return;
            };
            // A saved step changes no status, but it is news worth a status message: the
            // notification says which step, whatever the task has done since.
            let step = match &event.change {
                Change::StepSaved { key, .. } => Some(format!("step `{key}` done")),
                _ => None,
            };
            if matches!(event.change, Change::Submitted)
                || (step.is_none() && last == Some(event.status))
            {
                continue;
            }
            last = Some(event.status);
            let Ok(task) = runtime.get(task).await else {
                return;
            };
            let mut status = view::legacy(&task, poll);
            if let (Some(step), Some(fields)) = (step, status.as_object_mut()) {
                fields.insert("statusMessage".to_owned(), Value::String(step));
            }
            session.notify_listener(crate::jsonrpc::notification(
                "notifications/tasks/status",
                status,
            ));
        }
    });
}
