//! The HTTP client behind `longrun tasks …` and `longrun kinds`: JSON requests to a longrun
//! server's `/v1` API, its error shape turned into readable errors, and event streams read as
//! Server-Sent Events.

use std::fmt;

use anyhow::Context as _;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::sse;

/// A client for one server, with an optional bearer token.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// An error the server answered with, in its `{"error": {"code", "message"}}` shape.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The machine-readable code, e.g. `not_found`.
    pub(crate) code: String,
    /// What the server said.
    pub(crate) message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:7700`).
    pub(crate) fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("longrun-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|token| !token.is_empty()),
        })
    }

    /// The server's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET path` with `query`, returning the JSON body.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }

    /// `POST path` with a JSON `body`, returning the JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `POST path` with a JSON `body` and an `Idempotency-Key` header when `key` is given.
    pub(crate) async fn post_keyed(
        &self,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut request = self.request(Method::POST, path).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(error))?;
        let response = check(response).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(error))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).context("the server's answer is not JSON")
    }

    /// Opens an event stream at `path`, resuming after the event numbered `after` (sent as
    /// `Last-Event-ID`) when given.
    pub(crate) async fn events(&self, path: &str, after: Option<&str>) -> anyhow::Result<Events> {
        let mut request = self
            .request(Method::GET, path)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(after) = after {
            request = request.header("Last-Event-ID", after);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(error))?;
        let response = check(response).await?;
        Ok(Events {
            // 204: the task has ended and nothing comes after `after`.
            finished: response.status() == StatusCode::NO_CONTENT,
            response,
            parser: sse::Parser::default(),
        })
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        anyhow::Error::new(error).context(format!(
            "cannot reach the longrun server at {} (is `longrun serve` running? set --server or \
             LONGRUN_SERVER)",
            self.base
        ))
    }
}

/// Turns a non-success response into an [`ApiError`].
async fn check(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let error = parsed.as_ref().and_then(|body| body.get("error"));
    let field = |name: &str| {
        error
            .and_then(|error| error.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Err(ApiError {
        status,
        code: field("code").unwrap_or_else(|| "http_error".to_owned()),
        message: field("message").unwrap_or_else(|| {
            if body.trim().is_empty() {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                body.trim().to_owned()
            }
        }),
    }
    .into())
}

/// An open event stream.
pub(crate) struct Events {
    response: reqwest::Response,
    parser: sse::Parser,
    finished: bool,
}

impl Events {
    /// Whether the server said there is nothing more to stream (204: the task has ended and
    /// every event up to `Last-Event-ID` was seen).
    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    /// The next event, or `None` when the server ended the stream.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<sse::Event>> {
        loop {
            if let Some(event) = self.parser.next() {
                return Ok(Some(event));
            }
            match self
                .response
                .chunk()
                .await
                .context("the event stream broke off")?
            {
                Some(chunk) => self.parser.push(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// Percent-encodes one path segment (a task id is safe already; a question key or a session
/// name may not be).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("task_0f"), "task_0f");
        assert_eq!(segment("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
    }
}
