//! stdio as protocol 2025-11-25 has it: the client starts the server's program and they
//! exchange newline-delimited JSON-RPC messages on its stdin and stdout.
//!
//! One writer task owns stdin (so concurrent callers never interleave lines); one reader task
//! owns stdout and hands each answer to the request waiting for it, each server request to a
//! spawned answering task, each notification to the router. When stdout ends (the program
//! exited or crashed), every request still waiting fails with [`Error::Disconnected`]; nothing
//! waits for ever. The program is killed when the connection is dropped.

use std::{
    collections::{BTreeMap, HashMap},
    process::Stdio as Pipe,
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::{
    io::AsyncWriteExt,
    process::{Child, Command},
    sync::{mpsc, oneshot},
};
use tokio_util::{
    codec::{FramedRead, LinesCodec},
    sync::CancellationToken,
    task::TaskTracker,
};

use super::jsonrpc::{self, Message};
use crate::{
    error::{Error, RpcError},
    route::{Router, id_key},
};

/// The longest line accepted from the program (16 MiB); a longer one ends the connection.
const MAX_LINE_BYTES: usize = 16 << 20;

type Waiting = HashMap<String, oneshot::Sender<Result<Value, RpcError>>>;

/// A running server program.
pub(crate) struct Stdio {
    lines: mpsc::UnboundedSender<String>,
    /// Requests waiting for their answer, by id; `None` once stdout has ended.
    waiting: Mutex<Option<Waiting>>,
    /// Why the connection ended, once it has.
    ended: Mutex<Option<String>>,
    child: Mutex<Option<Child>>,
    tasks: TaskTracker,
    closed: CancellationToken,
}

impl Stdio {
    /// Starts `command` and the tasks that talk to it.
    pub(crate) fn spawn(
        command: &str,
        args: &[String],
        env: &BTreeMap<String, String>,
        router: Arc<Router>,
    ) -> Result<Arc<Self>, Error> {
        let mut child = Command::new(command)
            .args(args)
            .envs(env)
            .stdin(Pipe::piped())
            .stdout(Pipe::piped())
            .stderr(Pipe::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Connect {
                target: command.to_owned(),
                reason: format!("could not start it: {e}"),
            })?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were requested at spawn");
        };
        let (lines, mut queued) = mpsc::unbounded_channel::<String>();
        let this = Arc::new(Self {
            lines,
            waiting: Mutex::new(Some(HashMap::new())),
            ended: Mutex::new(None),
            child: Mutex::new(Some(child)),
            tasks: TaskTracker::new(),
            closed: CancellationToken::new(),
        });

        let closed = this.closed.clone();
        this.tasks.spawn(async move {
            loop {
                let line = tokio::select! {
                    line = queued.recv() => line,
                    () = closed.cancelled() => None,
                };
                let Some(mut line) = line else { break };
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
            // Dropping stdin closes it: the program sees end of file and should exit.
        });

        let weak = Arc::downgrade(&this);
        let closed = this.closed.clone();
        this.tasks.spawn(async move {
            let mut frames = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
            let reason = loop {
                let frame = tokio::select! {
                    frame = frames.next() => frame,
                    () = closed.cancelled() => break "the connection was closed".to_owned(),
                };
                let line = match frame {
                    Some(Ok(line)) => line,
                    Some(Err(error)) => break format!("reading its stdout failed: {error}"),
                    None => break "the server program closed its stdout (it exited?)".to_owned(),
                };
                let Some(this) = weak.upgrade() else { return };
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    tracing::debug!(target: "longrun::mcp_client", line = %line.chars().take(200).collect::<String>(), "a stdout line that is not JSON; ignored");
                    continue;
                };
                this.dispatch(value, &router);
            };
            if let Some(this) = weak.upgrade() {
                this.end(reason);
            }
        });
        Ok(this)
    }

    fn dispatch(self: &Arc<Self>, value: Value, router: &Arc<Router>) {
        match Message::parse(value) {
            Some(Message::Response { id, outcome }) => {
                let waiter = lock(&self.waiting)
                    .as_mut()
                    .and_then(|w| w.remove(&id_key(&id)));
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(outcome);
                    }
                    None => {
                        tracing::debug!(target: "longrun::mcp_client", %id, "an answer to no request in flight; ignored")
                    }
                }
            }
            Some(Message::Request { id, method, params }) => {
                // stdio has one stream: which call a request belongs to is known only from
                // its related-task `_meta`, or when just one call is in flight.
                let answer = router.serve(&method, &id, params, None);
                let this = self.clone();
                self.tasks.spawn(async move {
                    let outcome = tokio::select! {
                        outcome = answer => outcome,
                        () = this.closed.cancelled() => return,
                    };
                    let _ = this.send(&jsonrpc::response(&id, outcome));
                });
            }
            Some(Message::Notification { method, params }) => {
                super::notified(router, &method, &params);
            }
            None => {}
        }
    }

    /// Fails everything still waiting; later requests fail at once.
    fn end(&self, reason: String) {
        tracing::debug!(target: "longrun::mcp_client", %reason, "stdio connection ended");
        lock(&self.ended).get_or_insert(reason.clone());
        // Dropping the senders wakes the waiters, which then read `ended`.
        lock(&self.waiting).take();
    }

    fn gone(&self) -> Error {
        Error::Disconnected(
            lock(&self.ended)
                .clone()
                .unwrap_or_else(|| "the server program is gone".to_owned()),
        )
    }

    /// Writes one message.
    pub(crate) fn send(&self, message: &Value) -> Result<(), Error> {
        self.lines
            .send(message.to_string())
            .map_err(|_| self.gone())
    }

    /// Sends a request and waits for its answer.
    pub(crate) async fn request(
        &self,
        id: &Value,
        method: &str,
        params: &Value,
    ) -> Result<Value, Error> {
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = lock(&self.waiting);
            let Some(waiting) = waiting.as_mut() else {
                return Err(self.gone());
            };
            waiting.insert(id_key(id), tx);
        }
        // Removes the waiter if this future is dropped before the answer came.
        let _forget = Forget {
            stdio: self,
            key: id_key(id),
        };
        self.send(&jsonrpc::request(id, method, params))?;
        match rx.await {
            Ok(outcome) => outcome.map_err(|e| Error::rpc(method, e)),
            Err(_) => Err(self.gone()),
        }
    }

    pub(crate) fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// Stops the tasks and the program.
    pub(crate) async fn close(&self) {
        self.closed.cancel();
        self.tasks.close();
        let child = lock(&self.child).take();
        if let Some(mut child) = child {
            // Closing stdin (the writer stopped) asks it to exit; it gets a moment, then a kill.
            let exited =
                tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await;
            if exited.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

struct Forget<'a> {
    stdio: &'a Stdio,
    key: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(waiting) = lock(&self.stdio.waiting).as_mut() {
            waiting.remove(&self.key);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
