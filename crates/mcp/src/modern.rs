//! The stateless generation: protocol 2026-07-28 (SEP-2575), every request carrying its own
//! `_meta`, with the tasks extension `io.modelcontextprotocol/tasks` (SEP-2663) for requests
//! that declare it.
//!
//! | method | answer |
//! |---|---|
//! | `server/discover` | the versions, `tools`, `logging`, `resources`, the tasks extension; `prompts` and `completions` when configured |
//! | `tools/list` | every kind, with caching hints |
//! | `tools/call` | see below |
//! | `tasks/get` | the `DetailedTask`: `inputRequests`, `result` or `error` inlined |
//! | `tasks/update` | delivers `inputResponses` (partial allowed; unknown or answered keys ignored); empty ack |
//! | `tasks/cancel` | asks the task to stop; empty ack, also for an ended task |
//! | `subscriptions/listen` | a stream: the acknowledgement, then `notifications/tasks` and resource updates (`notify.rs`) |
//! | `resources/*`, `prompts/*`, `completion/complete` | `resources.rs`, `prompts.rs`, with caching hints |
//! | `tasks/result`, `tasks/list`, `initialize`, `ping`, … | `-32601` |
//!
//! `tools/call`: with the extension declared, a tool whose kind allows tasks answers with a
//! `CreateTaskResult` once the task is stored (a kind listed in `ask_before_task` first answers
//! with `InputRequiredResult` rounds until its opening questions are answered). Otherwise the
//! task runs within the call, which answers with the result, or — when the task asks something —
//! with an `InputRequiredResult` whose `requestState` the client echoes, with its answers in
//! `inputResponses`, to go on. A task-only tool called without the extension answers `-32021`.

use std::sync::Arc;

use longrun::kind::TaskSupport;
use longrun_surface::Principal;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::{
    call::{Gather, Gathered, Reporter},
    error::Error,
    jsonrpc::Request,
    notify, prompts, resources,
    server::{Reply, STREAM_BUFFER, Server, finish, modern_result, string_param},
    session::LEVELS,
    tools,
    version::{
        META_CLIENT_CAPABILITIES, META_LOG_LEVEL, META_PROTOCOL_VERSION, MODERN, TASKS_EXTENSION,
    },
    view,
};

/// How long clients may cache `tools/list` and `server/discover` (the kinds of a running
/// server do not change).
const CACHE_TTL_MS: u64 = 60_000;

/// What a 2026-07-28 request says about itself in `_meta`.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub(crate) version: String,
    /// `io.modelcontextprotocol/clientCapabilities`.
    pub(crate) capabilities: Value,
    /// Whether log notifications were asked for (`io.modelcontextprotocol/logLevel`, at
    /// `info` or below).
    pub(crate) logs: bool,
}

impl Envelope {
    /// Reads a request's `_meta`; `-32602` when it lacks what every request must carry.
    pub(crate) fn parse(request: &Request) -> Result<Self, Error> {
        let missing = |what: &str| {
            Error::InvalidParams(format!(
                "a 2026-07-28 request carries `_meta` with `{META_PROTOCOL_VERSION}` and \
                 `{META_CLIENT_CAPABILITIES}`; {what}"
            ))
        };
        let meta = request
            .meta()
            .ok_or_else(|| missing("this one has no `_meta`"))?;
        let version = meta
            .get(META_PROTOCOL_VERSION)
            .and_then(Value::as_str)
            .ok_or_else(|| missing("the protocol version is missing"))?;
        let capabilities = meta
            .get(META_CLIENT_CAPABILITIES)
            .filter(|capabilities| capabilities.is_object())
            .ok_or_else(|| missing("the client capabilities are missing"))?;
        let logs = match meta.get(META_LOG_LEVEL) {
            None => false,
            Some(level) => {
                let level = level
                    .as_str()
                    .and_then(|level| LEVELS.iter().position(|known| *known == level))
                    .ok_or_else(|| Error::InvalidParams(format!("unknown `{META_LOG_LEVEL}`")))?;
                level <= 1
            }
        };
        Ok(Self {
            version: version.to_owned(),
            capabilities: capabilities.clone(),
            logs,
        })
    }

    /// `-32022` unless the version is 2026-07-28.
    pub(crate) fn check_version(&self) -> Result<(), Error> {
        if self.version == MODERN {
            Ok(())
        } else {
            Err(Error::UnsupportedVersion(self.version.clone()))
        }
    }

    /// Whether this request declares the tasks extension.
    pub(crate) fn tasks(&self) -> bool {
        self.capabilities
            .get("extensions")
            .and_then(|extensions| extensions.get(TASKS_EXTENSION))
            .is_some_and(Value::is_object)
    }
}

/// Answers one 2026-07-28 request.
pub(crate) async fn handle(
    server: &Arc<Server>,
    principal: &Principal,
    envelope: &Envelope,
    request: Request,
) -> Result<Reply, Error> {
    let params = &request.params;
    let complete = |result: Value| {
        let result = match result {
            Value::Object(result) => result,
            _ => Map::new(),
        };
        Ok(Reply::Result(modern_result(result, "complete")))
    };
    match request.method.as_str() {
        "server/discover" => complete(json!({
            "supportedVersions": [MODERN],
            "capabilities": capabilities(server),
            "instructions": "Every tool runs as a longrun task. With the tasks extension \
                             declared, tools that allow it answer with a task handle: follow it \
                             with tasks/get, answer its inputRequests with tasks/update.",
            "ttlMs": CACHE_TTL_MS,
            "cacheScope": "public",
        })),
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
                .map(|spec| tools::tool(spec, false))
                .collect();
            complete(json!({"tools": tools, "ttlMs": CACHE_TTL_MS, "cacheScope": "public"}))
        }
        "tools/call" => call(server, principal, envelope, request).await,
        "prompts/list" if server.config.has_prompts() => complete(json!({
            "prompts": prompts::list(server),
            "ttlMs": CACHE_TTL_MS,
            "cacheScope": "public",
        })),
        "prompts/get" if server.config.has_prompts() => {
            let can_elicit = envelope.capabilities.get("elicitation").is_some();
            match prompts::get(server, params, Some(can_elicit))? {
                prompts::Got::Messages(result) => complete(Value::Object(result)),
                prompts::Got::Questions(requests) => Ok(Reply::Result(modern_result(
                    Map::from_iter([("inputRequests".to_owned(), Value::Object(requests))]),
                    "input_required",
                ))),
            }
        }
        "completion/complete" if server.config.has_completions() => {
            complete(prompts::complete(server, principal, params).await?)
        }
        "resources/list" => complete(json!({
            "resources": resources::list(server),
            "ttlMs": CACHE_TTL_MS,
            "cacheScope": "public",
        })),
        "resources/templates/list" => complete(json!({
            "resourceTemplates": resources::templates(server),
            "ttlMs": CACHE_TTL_MS,
            "cacheScope": "public",
        })),
        // SEP-2164: an unknown resource is invalid params naming its URI.
        "resources/read" => {
            let uri = string_param(params, "uri")?;
            let contents = resources::read(server, principal, uri).await?;
            // A task's artifact is its owner's and changes while the task runs.
            let (ttl, scope) = if resources::is_private(uri) {
                (0, "private")
            } else {
                (CACHE_TTL_MS, "public")
            };
            complete(json!({"contents": contents, "ttlMs": ttl, "cacheScope": scope}))
        }
        "subscriptions/listen" => notify::listen(server, principal, envelope, request).await,
        method @ ("tasks/get" | "tasks/update" | "tasks/cancel") => {
            if !envelope.tasks() {
                return Err(Error::tasks_required());
            }
            let task = server
                .owned(principal, string_param(params, "taskId")?)
                .await?;
            let poll = server.config.poll_interval_ms;
            match method {
                "tasks/get" => complete(Value::Object(view::detailed(&task, poll))),
                "tasks/update" => {
                    let responses = match params.get("inputResponses") {
                        Some(Value::Object(responses)) => responses,
                        _ => {
                            return Err(Error::InvalidParams(
                                "`inputResponses` must be an object of answers by key".into(),
                            ));
                        }
                    };
                    server.unpark(task.id);
                    server.deliver(&task, responses).await?;
                    complete(json!({}))
                }
                _ => {
                    if !task.status().is_terminal() {
                        server.cancel_soon(task.id, principal);
                    }
                    complete(json!({}))
                }
            }
        }
        method => Err(Error::MethodNotFound(format!(
            "method `{method}` is not offered over protocol 2026-07-28{}",
            match method {
                "tasks/result" => ": tasks/get inlines the result",
                "tasks/list" => ": the tasks extension has no listing",
                "initialize" | "ping" | "logging/setLevel" => ": it was removed in this version",
                _ => "",
            }
        ))),
    }
}

/// What this server offers over 2026-07-28: prompts and completions only when configured.
fn capabilities(server: &Server) -> Value {
    let mut capabilities = json!({
        "tools": {"listChanged": false},
        "logging": {},
        "resources": {"subscribe": true, "listChanged": false},
        "extensions": {TASKS_EXTENSION: {}},
    });
    if server.config.has_prompts() {
        capabilities["prompts"] = json!({"listChanged": false});
    }
    if server.config.has_completions() {
        capabilities["completions"] = json!({});
    }
    capabilities
}

/// `tools/call`.
async fn call(
    server: &Arc<Server>,
    principal: &Principal,
    envelope: &Envelope,
    request: Request,
) -> Result<Reply, Error> {
    let params = &request.params;
    let spec = server.tool(string_param(params, "name")?)?;
    let supplied = match params.get("inputResponses") {
        None => Map::new(),
        Some(Value::Object(responses)) => responses.clone(),
        Some(_) => {
            return Err(Error::InvalidParams(
                "`inputResponses` must be an object of answers by key".into(),
            ));
        }
    };
    if let Some((key, _)) = supplied.iter().find(|(_, response)| !response.is_object()) {
        return Err(Error::InvalidParams(format!(
            "the answer under `{key}` in `inputResponses` must be an object"
        )));
    }
    let as_task = envelope.tasks() && spec.task_support != TaskSupport::Forbidden;
    if !envelope.tasks() && spec.task_support == TaskSupport::Required {
        return Err(Error::tasks_required());
    }
    let resumed = match params.get("requestState") {
        None => None,
        Some(Value::String(state)) => Some(state.as_str()),
        Some(_) => {
            return Err(Error::InvalidParams(
                "`requestState` must be a string".into(),
            ));
        }
    };
    let task = match resumed {
        Some(state) => {
            let refused = || {
                Error::InvalidParams(
                    "`requestState` is not one this server gave for this tool and caller".into(),
                )
            };
            // `<task id>.<sequence number>`: the number changes with every round, as SEP-2322
            // wants; anything that does not parse back was not issued here.
            let (id, seq) = state.split_once('.').ok_or_else(refused)?;
            seq.parse::<u64>().map_err(|_| refused())?;
            let task = server.owned(principal, id).await.map_err(|_| refused())?;
            if task.kind != spec.name {
                return Err(refused());
            }
            server.unpark(task.id);
            task
        }
        None => match server.input(&spec, params)? {
            Ok(input) => server.start(principal, &spec, input, None).await?,
            Err(refused) => {
                let result = tools::error_result(&refused);
                return Ok(Reply::Result(modern_result(result, "complete")));
            }
        },
    };
    let poll = server.config.poll_interval_ms;
    if as_task && !server.config.asks_before_task(&spec.name) {
        server.deliver(&task, &supplied).await?;
        return Ok(Reply::Result(modern_result(
            view::modern(&task, poll),
            "task",
        )));
    }
    let progress = request
        .meta()
        .and_then(|meta| meta.get("progressToken"))
        .cloned();
    let (out, stream) = mpsc::channel(STREAM_BUFFER);
    let gather = Gather {
        server: server.clone(),
        task: task.id,
        capabilities: envelope.capabilities.clone(),
        supplied,
        handout: as_task,
        resumed: resumed.is_some(),
        out: out.clone(),
        reporter: Reporter::new(progress, envelope.logs, &spec.name),
    };
    let (server, principal) = (server.clone(), principal.clone());
    #[expect(
        clippy::disallowed_methods,
        reason = "the call's gatherer ends with its task, its stream or the surface's shutdown; the door owns no TaskTracker yet"
    )]
    tokio::spawn(async move {
        let answer = match gather.run().await {
            Ok(Gathered::Ended(task)) => match view::ended(&task) {
                Some(Ok(result)) => Ok(modern_result(result, "complete")),
                Some(Err(error)) => Err(error),
                None => Err(Error::Internal("the task did not end".into())),
            },
            Ok(Gathered::Running(task)) => Ok(modern_result(view::modern(&task, poll), "task")),
            Ok(Gathered::Questions { requests, seq }) => {
                server.park(task.id, &principal);
                let result = Map::from_iter([
                    ("inputRequests".to_owned(), Value::Object(requests)),
                    (
                        "requestState".to_owned(),
                        json!(format!("{}.{seq}", task.id)),
                    ),
                ]);
                Ok(modern_result(result, "input_required"))
            }
            Ok(Gathered::Gone) => {
                // Closing the response stream cancels the request (SEP-2575).
                server.cancel_soon(task.id, &principal);
                return;
            }
            Ok(Gathered::Stopping) => return,
            Err(error) => {
                server.cancel_soon(task.id, &principal);
                Err(error)
            }
        };
        finish(&out, &request.id, answer).await;
    });
    Ok(Reply::Stream(stream))
}
