//! [`Server`]: what both generations and both transports share — the runtime, the config, the
//! open sessions — and the operations every method is built from: find a tool, check its
//! input, start a task, find the caller's task, deliver answers.

use std::{collections::HashMap, sync::Arc, time::Duration};

use longrun::{KindSpec, Runtime, Task, TaskId};
use longrun_surface::{InputError, Principal, StartRequest, Surface};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::{config::Config, error::Error, input::Question, jsonrpc, session::Sessions, tools};

/// How many messages a running call may have waiting for its transport.
pub(crate) const STREAM_BUFFER: usize = 64;

/// A request's answer, before its transport wraps it.
pub(crate) enum Reply {
    /// The result.
    Result(Value),
    /// Messages for the client (notifications, requests), then the full response, as they
    /// come. Dropping the receiver tells the call its client went away.
    Stream(mpsc::Receiver<Value>),
}

/// The MCP door's shared state.
pub(crate) struct Server {
    /// What every door shares: the runtime, starting and finding a caller's tasks, the input
    /// schemas, and the doors' stopping (open streams end on it).
    pub(crate) surface: Surface,
    pub(crate) config: Config,
    pub(crate) sessions: Sessions,
    /// Tasks whose questions went back in an `InputRequiredResult`, by the round that parked
    /// them: a watchdog cancels the task if the round is still current when it fires.
    parked: Mutex<HashMap<TaskId, u64>>,
    rounds: std::sync::atomic::AtomicU64,
}

impl Server {
    pub(crate) fn runtime(&self) -> &Runtime {
        self.surface.runtime()
    }

    pub(crate) fn new(surface: Surface, config: Config) -> Arc<Self> {
        Arc::new(Self {
            surface,
            config,
            sessions: Sessions::default(),
            parked: Mutex::new(HashMap::new()),
            rounds: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The kind behind the tool `name`.
    pub(crate) fn tool(&self, name: &str) -> Result<KindSpec, Error> {
        self.runtime().kind(name).ok_or_else(|| {
            Error::InvalidParams(format!("unknown tool `{name}`: tools/list names the tools"))
        })
    }

    /// The task input of a `tools/call`; or, when the arguments break the tool's schema, what
    /// is wrong with them (a plain call reports it to the model as a tool error, as MCP asks).
    pub(crate) fn input(
        &self,
        spec: &KindSpec,
        params: &Map<String, Value>,
    ) -> Result<Result<Value, String>, Error> {
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(arguments)) => arguments.clone(),
            Some(_) => {
                return Err(Error::InvalidParams(
                    "`arguments` must be an object".to_owned(),
                ));
            }
        };
        let input = tools::input(spec, arguments);
        match self.surface.check_input(&spec.name, &input) {
            Ok(()) => Ok(Ok(input)),
            Err(InputError::UnknownKind(kind)) => {
                Err(Error::InvalidParams(format!("unknown tool `{kind}`")))
            }
            Err(error @ InputError::Invalid { .. }) => Ok(Err(error.to_string())),
        }
    }

    /// Starts a task of `spec` for `principal`. Returns once the store acknowledged it, so a
    /// `tasks/get` for it resolves from then on. `meta` is the call's `params._meta`: its
    /// `traceparent` and `tracestate` (SEP-414) put the task's spans in the caller's trace.
    pub(crate) async fn start(
        &self,
        principal: &Principal,
        spec: &KindSpec,
        input: Value,
        ttl: Option<Duration>,
        meta: Option<&Map<String, Value>>,
    ) -> Result<Task, Error> {
        let text = |key: &str| {
            meta.and_then(|meta| meta.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let request = StartRequest {
            kind: spec.name.clone(),
            input,
            ttl,
            traceparent: text("traceparent"),
            tracestate: text("tracestate"),
            ..StartRequest::default()
        };
        Ok(self.surface.start(principal, "mcp", request).await?.task)
    }

    /// The task `id` names, if `principal` owns it; anything else — not an id, unknown,
    /// expired, another principal's — is the same `-32602`.
    pub(crate) async fn owned(&self, principal: &Principal, id: &str) -> Result<Task, Error> {
        Ok(self.surface.owned(principal, id).await?)
    }

    /// Delivers `responses` (key → the client's result) to the questions `task` has open.
    /// Keys it has not asked, or that were answered already, are ignored; a malformed answer
    /// to an open question is an error, and nothing after it is delivered.
    pub(crate) async fn deliver(
        &self,
        task: &Task,
        responses: &Map<String, Value>,
    ) -> Result<(), Error> {
        let Some(pending) = task.state().pending_input() else {
            return Ok(());
        };
        for (key, request) in pending {
            let Some(response) = responses.get(key) else {
                continue;
            };
            let value = Question::from_request(key, request).answer(response)?;
            self.answer(task.id, key, value).await?;
        }
        Ok(())
    }

    /// Answers one question; an answer that lost a race (already answered, timed out, the task
    /// ended) changes nothing and is not an error.
    pub(crate) async fn answer(&self, task: TaskId, key: &str, value: Value) -> Result<(), Error> {
        match self.runtime().answer(task, key, value).await {
            Ok(())
            | Err(
                longrun::Error::AlreadyAnswered { .. }
                | longrun::Error::QuestionClosed { .. }
                | longrun::Error::Ended { .. },
            ) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Asks a task to stop, without waiting for it to end.
    pub(crate) fn cancel_soon(&self, task: TaskId, by: &Principal) {
        let runtime = self.runtime().clone();
        let by = format!("mcp:{by}");
        #[expect(
            clippy::disallowed_methods,
            reason = "a cancel must outlive the request that asked for it; it is one runtime call and ends by itself"
        )]
        tokio::spawn(async move {
            match runtime.cancel_by(task, by).await {
                Ok(_) | Err(longrun::Error::Ended { .. } | longrun::Error::Unknown(_)) => {}
                Err(error) => tracing::warn!(%task, %error, "could not cancel a task"),
            }
        });
    }

    /// Notes that `task`'s questions went back to its client, which should retry with the
    /// answers; if it has not within `input_wait`, the task is cancelled.
    pub(crate) fn park(self: &Arc<Self>, task: TaskId, principal: &Principal) {
        let round = self
            .rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.parked.lock().insert(task, round);
        let server = Arc::downgrade(self);
        let wait = self.config.input_wait();
        let principal = principal.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "a timer that must outlive the request; it holds the server weakly, so it does nothing once the door is gone"
        )]
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(server) = server.upgrade() else {
                return;
            };
            let expired = {
                let mut parked = server.parked.lock();
                let expired = parked.get(&task) == Some(&round);
                if expired {
                    parked.remove(&task);
                }
                expired
            };
            if expired {
                tracing::info!(%task, "nobody retried with the answers in time; cancelling the task");
                server.cancel_soon(task, &principal);
            }
        });
    }

    /// Notes that a client came back for a parked task.
    pub(crate) fn unpark(&self, task: TaskId) {
        self.parked.lock().remove(&task);
    }
}

/// A 2026-07-28 result: `resultType` and the server's identity added.
pub(crate) fn modern_result(mut result: Map<String, Value>, result_type: &str) -> Value {
    result.insert("resultType".to_owned(), json!(result_type));
    let meta = result
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(
            crate::version::META_SERVER_INFO.to_owned(),
            crate::version::server_info(),
        );
    }
    Value::Object(result)
}

/// The string parameter `name`, or `-32602`.
pub(crate) fn string_param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, Error> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidParams(format!("`{name}` must be a string")))
}

/// Sends the final response of a streamed call, whatever its outcome.
pub(crate) async fn finish(out: &mpsc::Sender<Value>, id: &Value, result: Result<Value, Error>) {
    let message = match result {
        Ok(result) => jsonrpc::response(id, result),
        Err(error) => jsonrpc::error_response(id, &error),
    };
    // The client may have gone; then nobody needs the answer.
    let _ = out.send(message).await;
}
