//! The protocol's HTTP requests, one method each, on one `reqwest::Client` (one connection
//! pool for the heartbeat, the reports and the event stream). Status codes become
//! [`Error`]s here, and only here.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::{
    Error,
    model::{ErrorBody, Heartbeat, Register, Registered, Report},
};

/// The `code` of `404` to a worker the server does not know (expired, or the server restarted).
pub(crate) const UNKNOWN_WORKER: &str = "unknown_worker";
/// The `code` of `409` to a report on an assignment that is no longer the worker's: the fence.
const ASSIGNMENT_GONE: &str = "assignment_gone";

/// The server's `/v1/workers` routes, for one worker's principal.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    /// `…/v1/workers`, without a trailing slash.
    workers: String,
    token: Option<String>,
}

impl Api {
    /// `url` is the server's base URL (`http://127.0.0.1:8080`).
    pub(crate) fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self, Error> {
        let base = url.trim_end_matches('/');
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Error::Config(format!(
                "the server URL {url:?} does not start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            // A connection that stops answering must not hold a report forever; the event
            // stream has no overall timeout (it lives for hours), only this one on connecting.
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|source| Error::Transport {
                what: "build the HTTP client".into(),
                source,
            })?;
        Ok(Self {
            http,
            workers: format!("{base}/v1/workers"),
            token,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.workers));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST /v1/workers`.
    pub(crate) async fn register(&self, body: &Register<'_>) -> Result<Registered, Error> {
        let response = send("register", self.request(Method::POST, "").json(body)).await?;
        json("register", response).await
    }

    /// `POST /v1/workers/{worker}/heartbeat`: the assignments the server counts as ours.
    pub(crate) async fn heartbeat(&self, worker: &str) -> Result<Vec<String>, Error> {
        let request = self.request(Method::POST, &format!("/{worker}/heartbeat"));
        let response = send("heartbeat", request).await?;
        Ok(json::<Heartbeat>("heartbeat", response).await?.assignments)
    }

    /// `POST /v1/workers/{worker}/assignments/{assignment}/reports`: `Ok` once recorded (for a
    /// step, once durable), [`Error::Gone`] when fenced off.
    pub(crate) async fn report(
        &self,
        worker: &str,
        assignment: &str,
        report: &Report,
    ) -> Result<(), Error> {
        let what = format!("report {}", report.name());
        let request = self
            .request(
                Method::POST,
                &format!("/{worker}/assignments/{assignment}/reports"),
            )
            .json(report);
        match send(&what, request).await {
            Ok(_) => Ok(()),
            Err(Error::Refused {
                status: 409, code, ..
            }) if code == ASSIGNMENT_GONE => Err(Error::Gone),
            Err(error) => Err(error),
        }
    }

    /// `POST /v1/workers/{worker}/drain`.
    pub(crate) async fn drain(&self, worker: &str) -> Result<(), Error> {
        send(
            "drain",
            self.request(Method::POST, &format!("/{worker}/drain")),
        )
        .await
        .map(drop)
    }

    /// `DELETE /v1/workers/{worker}`.
    pub(crate) async fn leave(&self, worker: &str) -> Result<(), Error> {
        send("leave", self.request(Method::DELETE, &format!("/{worker}")))
            .await
            .map(drop)
    }

    /// `GET /v1/workers/{worker}/events`, resuming after `last_event_id` when there is one:
    /// the open stream, its body still to read.
    pub(crate) async fn events(
        &self,
        worker: &str,
        last_event_id: Option<&str>,
    ) -> Result<Response, Error> {
        let mut request = self
            .request(Method::GET, &format!("/{worker}/events"))
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        send("open the event stream", request).await
    }
}

/// Sends `request`; a status that is not a success becomes [`Error::Refused`].
async fn send(what: &str, request: RequestBuilder) -> Result<Response, Error> {
    let response = request.send().await.map_err(|source| Error::Transport {
        what: what.to_owned(),
        source,
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(refusal(what, status, response).await)
}

async fn refusal(what: &str, status: StatusCode, response: Response) -> Error {
    let text = response.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error.code, body.error.message),
        // Not `/v1`'s shape (a proxy's page, say): keep what there is for the message.
        Err(_) => (status.as_str().to_owned(), text.chars().take(200).collect()),
    };
    Error::Refused {
        what: what.to_owned(),
        status: status.as_u16(),
        code,
        message,
    }
}

async fn json<T: DeserializeOwned>(what: &str, response: Response) -> Result<T, Error> {
    response.json().await.map_err(|source| Error::Transport {
        what: what.to_owned(),
        source,
    })
}

/// Whether `error` says the server does not know the worker: register again.
pub(crate) fn is_unknown_worker(error: &Error) -> bool {
    matches!(error, Error::Refused { status: 404, code, .. } if code == UNKNOWN_WORKER)
}

/// Whether `error` may go away by itself (the network, the server restarting, a `5xx`), as
/// opposed to a refusal that will be the same next time.
pub(crate) fn is_transient(error: &Error) -> bool {
    match error {
        Error::Transport { .. } => true,
        Error::Refused { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}
