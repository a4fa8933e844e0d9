//! Pushed notifications: the 2026-07-28 `subscriptions/listen` stream (SEP-2575) with the tasks
//! extension's `taskIds` (one `notifications/tasks` per change of a task, carrying it as
//! `tasks/get` shows it) and `resourceSubscriptions` (see [`crate::resources`]).
//!
//! Tasks are followed with the runtime's subscriptions, which read the store: a task running on
//! another node sharing the database is followed like a local one.

use std::sync::{Arc, Weak};

use longrun::{Task, event::Notice};
use longrun_surface::Principal;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::{
    error::Error,
    jsonrpc::{self, Request},
    modern::Envelope,
    resources,
    server::{Reply, STREAM_BUFFER, Server, modern_result},
    session::Session,
    view,
};

/// The `_meta` key tagging every notification of a listen stream with the request's id.
pub(crate) const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// Where a follower's notifications go.
#[derive(Clone)]
pub(crate) enum Sink {
    /// A `subscriptions/listen` stream, tagged with its request id.
    Listen {
        out: mpsc::Sender<Value>,
        subscription: Value,
    },
    /// A 2025-11-25 session's GET stream.
    Session(Weak<Session>),
}

impl Sink {
    /// Sends one notification; false once nobody listens any more.
    pub(crate) async fn send(&self, method: &str, mut params: Map<String, Value>) -> bool {
        match self {
            Self::Listen { out, subscription } => {
                params.insert("_meta".to_owned(), json!({META_SUBSCRIPTION: subscription}));
                out.send(jsonrpc::notification(method, Value::Object(params)))
                    .await
                    .is_ok()
            }
            Self::Session(session) => match session.upgrade() {
                Some(session) => {
                    session.notify_listener(jsonrpc::notification(method, Value::Object(params)));
                    true
                }
                None => false,
            },
        }
    }

    /// Resolves when nobody listens any more.
    pub(crate) async fn closed(&self) {
        match self {
            Self::Listen { out, .. } => out.closed().await,
            // A session's listener comes and goes; the session's end is seen when sending.
            Self::Session(_) => std::future::pending().await,
        }
    }
}

/// `subscriptions/listen` (2026-07-28): acknowledges what it will send, then sends it until the
/// client goes away; when the server stops, the stream ends with the (empty) result.
pub(crate) async fn listen(
    server: &Arc<Server>,
    principal: &Principal,
    envelope: &Envelope,
    request: Request,
) -> Result<Reply, Error> {
    let filter = match request.params.get("notifications") {
        Some(Value::Object(filter)) => filter,
        _ => {
            return Err(Error::InvalidParams(
                "`notifications` must be an object saying which notifications to send".into(),
            ));
        }
    };
    let strings = |key: &str| -> Result<Option<Vec<String>>, Error> {
        match filter.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        Error::InvalidParams(format!("`notifications.{key}` must be strings"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(Error::InvalidParams(format!(
                "`notifications.{key}` must be a list of strings"
            ))),
        }
    };
    let task_ids = strings("taskIds")?;
    if task_ids.is_some() && !envelope.tasks() {
        return Err(Error::tasks_required());
    }
    // Only the caller's tasks are followed; another's, or none, is left out of the
    // acknowledgement exactly like an unknown one.
    let mut tasks = Vec::new();
    for id in task_ids.iter().flatten() {
        if let Ok(task) = server.owned(principal, id).await {
            tasks.push(task);
        }
    }
    let mut watched = Vec::new();
    for uri in strings("resourceSubscriptions")?.iter().flatten() {
        if let Some(watch) = resources::watch(server, principal, uri).await {
            watched.push(watch);
        }
    }
    let mut accepted = Map::new();
    if task_ids.is_some() {
        let ids: Vec<String> = tasks.iter().map(|task| task.id.to_string()).collect();
        accepted.insert("taskIds".to_owned(), json!(ids));
    }
    if filter.contains_key("resourceSubscriptions") {
        let uris: Vec<&str> = watched.iter().map(|watch| watch.uri.as_str()).collect();
        accepted.insert("resourceSubscriptions".to_owned(), json!(uris));
    }
    let (out, stream) = mpsc::channel(STREAM_BUFFER);
    let sink = Sink::Listen {
        out: out.clone(),
        subscription: request.id.clone(),
    };
    let mut ack = Map::new();
    ack.insert("notifications".to_owned(), Value::Object(accepted));
    // The channel is empty: the acknowledgement is the stream's first message, as it must be.
    if !sink
        .send("notifications/subscriptions/acknowledged", ack)
        .await
    {
        return Ok(Reply::Stream(stream));
    }
    for task in tasks {
        #[expect(
            clippy::disallowed_methods,
            reason = "a follower ends with its task or its listening stream; the door owns no TaskTracker yet"
        )]
        tokio::spawn(follow_task(server.clone(), task, sink.clone()));
    }
    for watch in watched {
        let stop = tokio_util::sync::CancellationToken::new();
        #[expect(
            clippy::disallowed_methods,
            reason = "a resource watch ends with its listening stream; the door owns no TaskTracker yet"
        )]
        tokio::spawn(resources::follow(server.clone(), watch, sink.clone(), stop));
    }
    let shutdown = server.surface.shutdown_token();
    let id = request.id;
    #[expect(
        clippy::disallowed_methods,
        reason = "ends when the stream closes or the surface shuts down; the door owns no TaskTracker yet"
    )]
    tokio::spawn(async move {
        tokio::select! {
            () = out.closed() => {}
            () = shutdown.cancelled() => {
                let ended = modern_result(Map::new(), "complete");
                let _ = out.send(jsonrpc::response(&id, ended)).await;
            }
        }
    });
    Ok(Reply::Stream(stream))
}

/// Sends `notifications/tasks` with the task's `DetailedTask` each time what `tasks/get` shows
/// of it changes after it was `start`, until it ended or nobody listens.
pub(crate) async fn follow_task(server: Arc<Server>, start: Task, sink: Sink) {
    let runtime = server.runtime().clone();
    let poll = server.config.poll_interval_ms;
    let task = start.id;
    let Ok(mut events) = runtime.subscribe(task, start.last_seq()).await else {
        return;
    };
    let mut last = Some(without_time(view::detailed(&start, poll)));
    loop {
        let notice = tokio::select! {
            notice = events.next() => notice,
            () = sink.closed() => return,
            () = server.surface.stopping() => return,
        };
        match notice {
            Ok(Some(Notice::Event(_))) => {}
            Ok(Some(Notice::Lagged { .. })) => continue,
            Ok(None) | Err(_) => return,
        }
        let Ok(current) = runtime.get(task).await else {
            return;
        };
        let shown = view::detailed(&current, poll);
        let compared = without_time(shown.clone());
        if last.as_ref() == Some(&compared) {
            continue;
        }
        last = Some(compared);
        if !sink.send("notifications/tasks", shown).await {
            return;
        }
        if current.status().is_terminal() {
            return;
        }
    }
}

/// A view without its `lastUpdatedAt`: the time of a change alone is no change.
fn without_time(mut view: Map<String, Value>) -> Map<String, Value> {
    view.remove("lastUpdatedAt");
    view
}
