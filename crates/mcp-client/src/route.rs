//! Where what the server sends on its own goes: questions, progress and task status
//! notifications, each to the call it belongs to.
//!
//! A call in flight registers itself under every handle the server may name it by: its task id
//! (2025-11-25 questions carry it in `_meta["io.modelcontextprotocol/related-task"]`, status
//! notifications carry it as `taskId`), its progress token, and the id of the request whose
//! response stream a message arrives on. A message that names no registered call goes to the
//! client's own handlers (questions) or nowhere (notifications). Registrations end when their
//! [`Registration`] is dropped, so a call that ends, fails or is dropped leaves nothing behind.
//!
//! Lock order: only `Router::routes`, never held across an await.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::{
    error::RpcError,
    handlers::{Handlers, Input, Responder},
    model::{Status, TaskInfo, Update},
};

/// The `_meta` key that ties a message to a task (2025-11-25).
pub(crate) const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

type UpdateFn = dyn Fn(Update) + Send + Sync;

/// One call in flight, as the router sees it.
pub(crate) struct Call {
    updates: Option<Arc<UpdateFn>>,
    responder: Option<Arc<dyn Responder>>,
    /// The status and message last reported, so that a poll that changes nothing is silent.
    last: Mutex<Option<(Status, Option<String>)>>,
}

impl Call {
    pub(crate) fn new(
        updates: Option<Arc<UpdateFn>>,
        responder: Option<Arc<dyn Responder>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            updates,
            responder,
            last: Mutex::new(None),
        })
    }

    pub(crate) fn emit(&self, update: Update) {
        if let Some(updates) = &self.updates {
            updates(update);
        }
    }

    /// Reports `task` as [`Update::Created`] the first time, then as [`Update::Status`] each
    /// time its status or status message differs from the last report.
    pub(crate) fn observe(&self, task: &TaskInfo) {
        let now = (task.status, task.status_message.clone());
        let first = {
            let mut last = lock(&self.last);
            if last.as_ref() == Some(&now) {
                return;
            }
            last.replace(now).is_none()
        };
        self.emit(if first {
            Update::Created(task.clone())
        } else {
            Update::Status(task.clone())
        });
    }
}

#[derive(Default)]
struct Routes {
    by_task: HashMap<String, Arc<Call>>,
    by_token: HashMap<String, Arc<Call>>,
    by_request: HashMap<String, Arc<Call>>,
}

/// Which table a registration is in.
#[derive(Clone, Copy)]
enum Table {
    Task,
    Token,
    Request,
}

/// Routes server-sent messages to calls; see the module docs.
pub(crate) struct Router {
    handlers: Handlers,
    /// Whether calls bring their own responders (the gateway), so questions are answered even
    /// without handlers on the client.
    relays: bool,
    routes: Mutex<Routes>,
}

/// Keeps one registration alive; dropping it removes the entry.
pub(crate) struct Registration {
    router: Arc<Router>,
    table: Table,
    key: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut routes = lock(&self.router.routes);
        let map = routes.table(self.table);
        map.remove(&self.key);
    }
}

impl Routes {
    fn table(&mut self, table: Table) -> &mut HashMap<String, Arc<Call>> {
        match table {
            Table::Task => &mut self.by_task,
            Table::Token => &mut self.by_token,
            Table::Request => &mut self.by_request,
        }
    }
}

/// A JSON-RPC id or progress token as a map key: its JSON text, so `1` and `"1"` stay apart.
pub(crate) fn id_key(id: &Value) -> String {
    id.to_string()
}

impl Router {
    pub(crate) fn new(handlers: Handlers, relays: bool) -> Arc<Self> {
        Arc::new(Self {
            handlers,
            relays,
            routes: Mutex::new(Routes::default()),
        })
    }

    /// Whether questions of `method` can be answered (so the capability is declared).
    pub(crate) fn answers(&self, method: &str) -> bool {
        self.relays
            || match method {
                Input::ELICIT => self.handlers.has_elicitation(),
                Input::SAMPLE => self.handlers.has_sampling(),
                _ => false,
            }
    }

    /// Answers `input` for `call`: with its responder, else with the client's handlers.
    pub(crate) fn answer_for(
        &self,
        call: &Call,
        key: String,
        input: Input,
    ) -> BoxFuture<'static, Result<Value, RpcError>> {
        call.emit(Update::InputRequested {
            key: key.clone(),
            method: input.method().to_owned(),
        });
        match &call.responder {
            Some(responder) => responder.answer(key, input),
            None => self.handlers.answer(key, input),
        }
    }

    fn register(self: &Arc<Self>, table: Table, key: String, call: &Arc<Call>) -> Registration {
        lock(&self.routes)
            .table(table)
            .insert(key.clone(), call.clone());
        Registration {
            router: self.clone(),
            table,
            key,
        }
    }

    /// Routes messages about task `id` to `call`.
    pub(crate) fn task(self: &Arc<Self>, id: &str, call: &Arc<Call>) -> Registration {
        self.register(Table::Task, id.to_owned(), call)
    }

    /// Routes progress notifications with `token` to `call`.
    pub(crate) fn token(self: &Arc<Self>, token: &Value, call: &Arc<Call>) -> Registration {
        self.register(Table::Token, id_key(token), call)
    }

    /// Routes requests arriving on the response stream of request `id` to `call`.
    pub(crate) fn request(self: &Arc<Self>, id: &Value, call: &Arc<Call>) -> Registration {
        self.register(Table::Request, id_key(id), call)
    }

    fn find(&self, task: Option<&str>, origin: Option<&str>) -> Option<Arc<Call>> {
        let routes = lock(&self.routes);
        let found = task
            .and_then(|t| routes.by_task.get(t))
            .or_else(|| origin.and_then(|o| routes.by_request.get(o)));
        // On a transport with one stream (stdio), a question that names nothing belongs to
        // the call in flight when there is exactly one.
        let only = || {
            if task.is_some() || origin.is_some() {
                return None;
            }
            let mut calls = routes.by_request.values();
            let first = calls.next()?;
            calls.all(|c| Arc::ptr_eq(c, first)).then_some(first)
        };
        found.or_else(only).cloned()
    }

    /// Answers a question: with the responder of the call it belongs to, else with the client's
    /// handlers. `task` is the task it names, `origin` the request whose stream it came on.
    pub(crate) fn answer(
        &self,
        key: String,
        input: Input,
        task: Option<&str>,
        origin: Option<&str>,
    ) -> BoxFuture<'static, Result<Value, RpcError>> {
        match self.find(task, origin) {
            Some(call) => self.answer_for(&call, key, input),
            None => self.handlers.answer(key, input),
        }
    }

    /// A `notifications/progress` (params as sent).
    pub(crate) fn progress(&self, params: &Value) {
        let Some(token) = params.get("progressToken") else {
            return;
        };
        let call = lock(&self.routes).by_token.get(&id_key(token)).cloned();
        let (Some(call), Some(progress)) = (call, params.get("progress").and_then(Value::as_f64))
        else {
            return;
        };
        call.emit(Update::Progress {
            progress,
            total: params.get("total").and_then(Value::as_f64),
            message: params
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }

    /// A task status notification (`notifications/tasks/status` or `notifications/tasks`).
    pub(crate) fn task_status(&self, params: &Value) {
        let Some(task) = TaskInfo::from_wire(params) else {
            return;
        };
        let call = lock(&self.routes).by_task.get(&task.id).cloned();
        if let Some(call) = call {
            call.observe(&task);
        }
    }

    /// Serves a request the server sent (2025-11-25, or an rmcp callback): `id` is the
    /// server's request id, `origin` the key of the request whose stream carried it.
    pub(crate) fn serve(
        &self,
        method: &str,
        id: &Value,
        params: Value,
        origin: Option<&str>,
    ) -> BoxFuture<'static, Result<Value, RpcError>> {
        use futures_util::FutureExt;
        match method {
            "ping" => futures_util::future::ready(Ok(serde_json::json!({}))).boxed(),
            "roots/list" => {
                futures_util::future::ready(Ok(serde_json::json!({"roots": []}))).boxed()
            }
            Input::ELICIT | Input::SAMPLE => {
                let task = related_task(&params);
                let short = method.split('/').next().unwrap_or(method);
                let key = format!("{short}-{}", id_key(id).trim_matches('"'));
                let input = match Input::parse(method, params) {
                    Ok(input) => input,
                    Err(error) => return futures_util::future::ready(Err(error)).boxed(),
                };
                let answer = self.answer(key, input, task.as_deref(), origin);
                // A response to a request about a task carries the task's id too (MUST).
                async move {
                    let mut result = answer.await?;
                    if let (Some(task), Some(object)) = (task, result.as_object_mut()) {
                        object.insert(
                            "_meta".to_owned(),
                            serde_json::json!({ RELATED_TASK: { "taskId": task } }),
                        );
                    }
                    Ok(result)
                }
                .boxed()
            }
            _ => futures_util::future::ready(Err(RpcError::new(
                RpcError::METHOD_NOT_FOUND,
                format!("this client does not serve `{method}`"),
            )))
            .boxed(),
        }
    }
}

/// The task id in a message's related-task `_meta`, if any.
pub(crate) fn related_task(params: &Value) -> Option<String> {
    params
        .get("_meta")?
        .get(RELATED_TASK)?
        .get("taskId")?
        .as_str()
        .map(str::to_owned)
}

/// Locks a mutex that nobody can poison for long: no code holding these locks panics, and the
/// maps stay consistent whatever happened, so a poisoned lock is taken as is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
