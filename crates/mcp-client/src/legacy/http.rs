//! Streamable HTTP as protocol 2025-11-25 has it: every client message is its own POST; a
//! request's answer comes as one JSON body or on an SSE stream that may first carry the
//! server's own requests (elicitations during a `tasks/result`) and notifications; the session
//! id from the `initialize` response goes on every later message, with `MCP-Protocol-Version`.
//!
//! Requests the server sends are answered in spawned tasks (a person may take minutes to answer
//! an elicitation, and the stream must go on being read meanwhile), each answer a POST of its
//! own. A standalone GET stream is kept open for what the server sends outside any request;
//! a server that does not offer one (405) is not asked again. Everything spawned stops when the
//! connection is closed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use reqwest::{StatusCode, header};
use serde_json::Value;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    jsonrpc::{self, Message},
    sse,
};
use crate::{error::Error, route::Router};

/// How many times a response stream that ended early is resumed with `Last-Event-ID`.
const MAX_RESUMES: usize = 5;
/// How often a standalone GET stream that failed is tried again before it is given up.
const MAX_GET_FAILURES: usize = 5;

/// One 2025-11-25 Streamable HTTP connection (a session, once initialized).
pub(crate) struct Http {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    /// The `Mcp-Session-Id` the server gave, if any.
    session: Mutex<Option<String>>,
    /// The negotiated protocol version, sent as `MCP-Protocol-Version` after `initialize`.
    version: Mutex<Option<String>>,
    router: Arc<Router>,
    tasks: TaskTracker,
    closed: CancellationToken,
}

impl Http {
    pub(crate) fn new(url: String, token: Option<String>, router: Arc<Router>) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Arc::new(Self {
            client,
            url,
            token,
            session: Mutex::new(None),
            version: Mutex::new(None),
            router,
            tasks: TaskTracker::new(),
            closed: CancellationToken::new(),
        })
    }

    /// Cancelled when the connection closes; what runs in the background holds the connection,
    /// so the owner keeps a drop guard of this token to stop it when dropped without `close`.
    pub(crate) fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// Sets the protocol version sent from now on.
    pub(crate) fn set_version(&self, version: &str) {
        *lock(&self.version) = Some(version.to_owned());
    }

    fn with_headers(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(session) = lock(&self.session).as_deref() {
            request = request.header("Mcp-Session-Id", session);
        }
        if let Some(version) = lock(&self.version).as_deref() {
            request = request.header("MCP-Protocol-Version", version);
        }
        request
    }

    async fn post(&self, body: &Value) -> Result<reqwest::Response, Error> {
        let request = self
            .client
            .post(&self.url)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(body);
        let response = self
            .with_headers(request)
            .send()
            .await
            .map_err(|e| Error::Disconnected(format!("POST {}: {e}", self.url)))?;
        if let Some(session) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            *lock(&self.session) = Some(session.to_owned());
        }
        Ok(response)
    }

    /// Sends a request and waits for its answer; messages the server sends before it are
    /// dispatched as they come.
    pub(crate) async fn request(
        self: &Arc<Self>,
        id: &Value,
        method: &str,
        params: &Value,
    ) -> Result<Value, Error> {
        let response = self.post(&jsonrpc::request(id, method, params)).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.refused(method, response).await);
        }
        let event_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if event_stream {
            return self.read_stream(id, method, response).await;
        }
        if status == StatusCode::ACCEPTED {
            return Err(Error::protocol(
                method,
                "the server accepted the request without answering it",
            ));
        }
        let text = response
            .text()
            .await
            .map_err(|e| Error::Disconnected(format!("reading the answer to `{method}`: {e}")))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::protocol(method, format!("the body is not JSON: {e}")))?;
        // A JSON body holds one message, or (older servers) a batch of them.
        let messages = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        let origin = crate::route::id_key(id);
        for message in messages {
            if let Some(answer) = self.dispatch(message, Some(&origin), id) {
                return answer.map_err(|e| Error::rpc(method, e));
            }
        }
        Err(Error::protocol(
            method,
            "the body holds no answer to the request",
        ))
    }

    /// Turns an unsuccessful HTTP answer into an error that says what to do.
    async fn refused(&self, method: &str, response: reqwest::Response) -> Error {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if let Ok(value) = serde_json::from_str::<Value>(&text)
            && let Some(Message::Response {
                outcome: Err(error),
                ..
            }) = Message::parse(value)
        {
            return Error::rpc(method, error);
        }
        match status {
            StatusCode::NOT_FOUND if lock(&self.session).is_some() => {
                Error::Disconnected("the server no longer knows this session (HTTP 404)".to_owned())
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Connect {
                target: self.url.clone(),
                reason: format!("HTTP {status}: check the bearer token"),
            },
            _ => Error::protocol(
                method,
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ),
            ),
        }
    }

    /// Reads a response stream until the answer to request `id`, resuming it with
    /// `Last-Event-ID` when the server closes it early.
    async fn read_stream(
        self: &Arc<Self>,
        id: &Value,
        method: &str,
        response: reqwest::Response,
    ) -> Result<Value, Error> {
        let origin = crate::route::id_key(id);
        let mut reader = sse::Reader::new(response.bytes_stream().boxed());
        let mut last_event = None;
        let mut retry = Duration::from_secs(1);
        let mut resumes = 0;
        loop {
            let failure = loop {
                match reader.next().await {
                    Some(Ok(event)) => {
                        if event.id.is_some() {
                            last_event = event.id;
                        }
                        if let Some(ms) = event.retry {
                            retry = Duration::from_millis(ms);
                        }
                        let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
                            continue; // priming events carry no data
                        };
                        if let Some(answer) = self.dispatch(value, Some(&origin), id) {
                            return answer.map_err(|e| Error::rpc(method, e));
                        }
                    }
                    Some(Err(error)) => break error,
                    None => break "the stream ended before the answer".to_owned(),
                }
            };
            let Some(last) = last_event.clone().filter(|_| resumes < MAX_RESUMES) else {
                return Err(Error::Disconnected(format!("`{method}`: {failure}")));
            };
            resumes += 1;
            tokio::time::sleep(retry).await;
            let request = self
                .client
                .get(&self.url)
                .header(header::ACCEPT, "text/event-stream")
                .header("Last-Event-ID", last);
            let resumed = self
                .with_headers(request)
                .send()
                .await
                .map_err(|e| Error::Disconnected(format!("resuming `{method}`: {e}")))?;
            if !resumed.status().is_success() {
                return Err(Error::Disconnected(format!(
                    "`{method}`: {failure}, and resuming it failed with HTTP {}",
                    resumed.status()
                )));
            }
            reader = sse::Reader::new(resumed.bytes_stream().boxed());
        }
    }

    /// Handles one message from the server. Returns the outcome when it is the answer to
    /// request `ours`; requests are answered in the background, notifications routed.
    fn dispatch(
        self: &Arc<Self>,
        value: Value,
        origin: Option<&str>,
        ours: &Value,
    ) -> Option<Result<Value, crate::error::RpcError>> {
        match Message::parse(value)? {
            Message::Response { id, outcome } => {
                if &id == ours || id.is_null() {
                    return Some(outcome);
                }
                tracing::debug!(target: "longrun::mcp_client", %id, "an answer to no request in flight; ignored");
            }
            Message::Request { id, method, params } => {
                let answer = self.router.serve(&method, &id, params, origin);
                let this = self.clone();
                self.tasks.spawn(async move {
                    let outcome = tokio::select! {
                        outcome = answer => outcome,
                        () = this.closed.cancelled() => return,
                    };
                    if let Err(error) = this.send(&jsonrpc::response(&id, outcome)).await {
                        tracing::warn!(target: "longrun::mcp_client", %method, %error, "could not send an answer to the server");
                    }
                });
            }
            Message::Notification { method, params } => {
                super::notified(&self.router, &method, &params)
            }
        }
        None
    }

    /// POSTs a notification or a response; the server accepts it with 202.
    pub(crate) async fn send(&self, message: &Value) -> Result<(), Error> {
        let response = self.post(message).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.refused("(notification)", response).await)
        }
    }

    /// Keeps a standalone GET stream open in the background while the connection lives.
    pub(crate) fn listen(self: &Arc<Self>) {
        let this = self.clone();
        self.tasks.spawn(async move {
            let mut failures = 0;
            while failures < MAX_GET_FAILURES && !this.closed.is_cancelled() {
                let request = this
                    .client
                    .get(&this.url)
                    .header(header::ACCEPT, "text/event-stream");
                let opened = tokio::select! {
                    opened = this.with_headers(request).send() => opened,
                    () = this.closed.cancelled() => return,
                };
                match opened {
                    Ok(response) if response.status().is_success() => {
                        failures = 0;
                        let mut reader = sse::Reader::new(response.bytes_stream().boxed());
                        loop {
                            let event = tokio::select! {
                                event = reader.next() => event,
                                () = this.closed.cancelled() => return,
                            };
                            let Some(Ok(event)) = event else { break };
                            if let Ok(value) = serde_json::from_str::<Value>(&event.data) {
                                this.dispatch(value, None, &Value::Null);
                            }
                        }
                    }
                    // The server has no standalone stream: that is allowed, and final.
                    Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => return,
                    _ => failures += 1,
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = this.closed.cancelled() => return,
                }
            }
        });
    }

    /// Ends the session: stops what runs in the background and tells the server (DELETE).
    pub(crate) async fn close(&self) {
        self.closed.cancel();
        self.tasks.close();
        if lock(&self.session).is_some() {
            let request = self.with_headers(self.client.delete(&self.url));
            // A server may refuse (405) or be gone already; either way the session is over.
            let _ = tokio::time::timeout(Duration::from_secs(5), request.send()).await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
