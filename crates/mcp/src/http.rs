//! Streamable HTTP at `/mcp`: one POST per client message, answered with JSON or with an SSE
//! stream; GET opens a 2025-11-25 session's notification stream; DELETE ends a session.
//!
//! Before anything else a request is checked, in this order: the server is not stopping (503);
//! on a server without tokens, `Host` and `Origin` name the machine itself (403: DNS rebinding);
//! the bearer token names a principal (401). Then the generation is chosen (see
//! [`crate::version`]); a 2026-07-28 request has its `_meta` read (`-32602`), its
//! `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers compared with its body
//! (`-32020`) and its version checked (`-32022`), all as HTTP 400; a 2025-11-25 request other
//! than `initialize` needs its `Mcp-Session-Id` (400 without, 404 for an unknown or ended one).

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    extract::rejection::BytesRejection,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;
use futures_util::StreamExt as _;
use longrun_surface::{Principal, Refusal, StreamPermit, Surface};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{
    error::{Error, status_of},
    jsonrpc::{self, Incoming, Request},
    legacy,
    modern::{self, Envelope},
    server::{Reply, Server},
    session::Session,
    version::{LEGACY, META_PROTOCOL_VERSION, MODERN},
};

/// How long a call may take to say something before its response becomes an SSE stream.
const FIRST_WAIT: Duration = Duration::from_millis(1000);

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const LAST_EVENT_HEADER: &str = "last-event-id";

/// The endpoint's state.
#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) server: Arc<Server>,
    pub(crate) surface: Surface,
}

/// `/mcp`, for POST, GET and DELETE.
pub(crate) fn router(http: Http) -> Router {
    let body_limit = http.surface.limits().body_bytes;
    Router::new()
        .route(
            "/mcp",
            post(post_message).get(get_stream).delete(end_session),
        )
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(http)
}

/// A response carrying one JSON-RPC error.
fn error_response(status: StatusCode, id: &Value, error: &Error) -> Response {
    (status, axum::Json(jsonrpc::error_response(id, error))).into_response()
}

/// A response that ends a request before it is dispatched (boxed: responses are large).
type Refused = Box<Response>;

/// The doors' gate ([`Surface::admit`]), with its refusals in this door's shape.
async fn admit(http: &Http, headers: &HeaderMap) -> Result<Principal, Refused> {
    http.surface
        .admit(headers)
        .await
        .map_err(|refusal| Box::new(refusal_response(refusal)))
}

/// A refusal of the gate as a JSON-RPC error response, with the HTTP status it calls for.
fn refusal_response(refusal: Refusal) -> Response {
    let status = match &refusal {
        Refusal::ShuttingDown | Refusal::AuthUnavailable | Refusal::StorageUnavailable { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Refusal::ForeignHost => StatusCode::FORBIDDEN,
        Refusal::TooManyStreams { .. } => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Unauthenticated { error, challenge } => {
            let error = Error::Unauthenticated(error.to_string());
            let mut response = error_response(StatusCode::UNAUTHORIZED, &Value::Null, &error);
            if let Ok(challenge) = HeaderValue::from_str(challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
            }
            return response;
        }
        _ => StatusCode::BAD_REQUEST,
    };
    error_response(status, &Value::Null, &Error::from(refusal))
}

/// A header's value, trimmed; `None` when absent or not text.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// Whether the client takes an SSE stream.
fn takes_streams(headers: &HeaderMap) -> bool {
    header_text(headers, header::ACCEPT.as_str())
        .is_none_or(|accept| accept.contains("text/event-stream") || accept.contains("*/*"))
}

async fn post_message(
    State(http): State<Http>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let principal = match admit(&http, &headers).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    // A body over the limit (or one that could not be read) is answered as JSON-RPC, not with
    // the extractor's plain-text rejection.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let error = Error::InvalidRequest(format!(
                "the request body could not be read: {}",
                rejection.body_text()
            ));
            return error_response(rejection.status(), &Value::Null, &error);
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            let error = Error::Parse(format!("the body is not JSON: {error}"));
            return error_response(StatusCode::BAD_REQUEST, &Value::Null, &error);
        }
    };
    let incoming = match Incoming::parse(value) {
        Ok(incoming) => incoming,
        Err((id, error)) => return error_response(StatusCode::BAD_REQUEST, &id, &error),
    };
    let protocol = header_text(&headers, VERSION_HEADER);
    match incoming {
        Incoming::Request(request) => {
            let in_meta = request
                .meta()
                .is_some_and(|meta| meta.contains_key(META_PROTOCOL_VERSION));
            if protocol == Some(MODERN) || in_meta {
                modern_request(&http, &headers, &principal, request).await
            } else {
                legacy_request(&http, &headers, &principal, request).await
            }
        }
        // The 2026-07-28 generation has no notifications a server acts on, and sends no
        // requests a client could answer.
        Incoming::Notification { .. } | Incoming::Response { .. } if protocol == Some(MODERN) => {
            StatusCode::ACCEPTED.into_response()
        }
        Incoming::Notification { method, params } => {
            match session(&http, &headers, &principal, &Value::Null) {
                Ok(session) => {
                    legacy::notify(&http.server, &session, &method, &params);
                    StatusCode::ACCEPTED.into_response()
                }
                Err(response) => *response,
            }
        }
        Incoming::Response { id, outcome } => {
            match session(&http, &headers, &principal, &Value::Null) {
                Ok(session) => {
                    legacy::respond(&http.server, &session, &id, outcome).await;
                    StatusCode::ACCEPTED.into_response()
                }
                Err(response) => *response,
            }
        }
    }
}

/// A 2026-07-28 request: envelope and routing headers checked, then answered.
async fn modern_request(
    http: &Http,
    headers: &HeaderMap,
    principal: &Principal,
    request: Request,
) -> Response {
    let version = Some(MODERN);
    let checked = Envelope::parse(&request).and_then(|envelope| {
        match header_text(headers, VERSION_HEADER) {
            Some(header) if header == envelope.version => {}
            Some(header) => {
                return Err(Error::HeaderMismatch(format!(
                    "the MCP-Protocol-Version header `{header}` does not match the body's `{}`",
                    envelope.version
                )));
            }
            None => {
                return Err(Error::HeaderMismatch(
                    "the MCP-Protocol-Version header is missing".into(),
                ));
            }
        }
        envelope.check_version()?;
        check_routing(headers, &request)?;
        check_parameter_headers(&http.server, headers, &request)?;
        Ok(envelope)
    });
    let envelope = match checked {
        Ok(envelope) => envelope,
        Err(error) => return error_response(error.status(version), &request.id, &error),
    };
    let id = request.id.clone();
    let reply = modern::handle(&http.server, principal, &envelope, request).await;
    answer(
        &http.server,
        reply,
        &id,
        version,
        takes_streams(headers),
        None,
    )
    .await
}

/// Compares `Mcp-Method` and `Mcp-Name` with the body (SEP-2243, SEP-2663).
fn check_routing(headers: &HeaderMap, request: &Request) -> Result<(), Error> {
    let method = header_value(headers, METHOD_HEADER)?
        .ok_or_else(|| Error::HeaderMismatch("the Mcp-Method header is missing".into()))?;
    if method != request.method {
        return Err(Error::HeaderMismatch(format!(
            "the Mcp-Method header `{method}` does not match the body's method `{}`",
            request.method
        )));
    }
    let field = match request.method.as_str() {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        "tasks/get" | "tasks/update" | "tasks/cancel" => "taskId",
        _ => return Ok(()),
    };
    let Some(body) = request.params.get(field).and_then(Value::as_str) else {
        // A body without the field is refused by the method itself, as invalid params.
        return Ok(());
    };
    match header_value(headers, NAME_HEADER)? {
        Some(name) if name == body => Ok(()),
        Some(name) => Err(Error::HeaderMismatch(format!(
            "the Mcp-Name header `{name}` does not match the body's `{field}` `{body}`"
        ))),
        None => Err(Error::HeaderMismatch(format!(
            "the Mcp-Name header is missing; it must repeat the body's `{field}`"
        ))),
    }
}

/// Compares the `Mcp-Param-{Name}` headers of a `tools/call` with the arguments whose schema
/// says `"x-mcp-header": "{Name}"` (SEP-2243): an argument given needs its header, equal to
/// it; a header without its argument is a mismatch too.
fn check_parameter_headers(
    server: &Server,
    headers: &HeaderMap,
    request: &Request,
) -> Result<(), Error> {
    if request.method != "tools/call" {
        return Ok(());
    }
    let Some(spec) = request
        .params
        .get("name")
        .and_then(Value::as_str)
        .and_then(|name| server.runtime().kind(name))
    else {
        return Ok(());
    };
    let tool = crate::tools::tool(&spec, false);
    let Some(properties) = tool["inputSchema"]["properties"].as_object() else {
        return Ok(());
    };
    let arguments = request.params.get("arguments").and_then(Value::as_object);
    for (name, schema) in properties {
        let Some(suffix) = schema.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let header_name = format!("mcp-param-{}", suffix.to_ascii_lowercase());
        let header = header_value(headers, &header_name)?;
        let argument =
            arguments
                .and_then(|arguments| arguments.get(name))
                .map(|value| match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                });
        match (header, argument) {
            (None, None) => {}
            (Some(header), Some(argument)) if header == argument => {}
            (Some(header), Some(argument)) => {
                return Err(Error::HeaderMismatch(format!(
                    "the Mcp-Param-{suffix} header `{header}` does not match the argument `{name}` `{argument}`"
                )));
            }
            (None, Some(_)) => {
                return Err(Error::HeaderMismatch(format!(
                    "the Mcp-Param-{suffix} header is missing; it must repeat the argument `{name}`"
                )));
            }
            (Some(_), None) => {
                return Err(Error::HeaderMismatch(format!(
                    "the Mcp-Param-{suffix} header is given without the argument `{name}`"
                )));
            }
        }
    }
    Ok(())
}

/// A routing header's value: trimmed, and decoded when written `=?base64?…?=`.
fn header_value(headers: &HeaderMap, name: &str) -> Result<Option<String>, Error> {
    let Some(raw) = headers.get(name) else {
        return Ok(None);
    };
    let text = raw
        .to_str()
        .map_err(|_| Error::HeaderMismatch(format!("the {name} header is not visible ASCII")))?
        .trim();
    let Some(encoded) = text
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Ok(Some(text.to_owned()));
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            Error::HeaderMismatch(format!("the {name} header is not valid base64 UTF-8"))
        })
}

/// A 2025-11-25 (or older) request: `initialize`, or a request of an open session.
async fn legacy_request(
    http: &Http,
    headers: &HeaderMap,
    principal: &Principal,
    request: Request,
) -> Response {
    if let Some(header) = header_text(headers, VERSION_HEADER)
        && !LEGACY.contains(&header)
    {
        let error = Error::InvalidRequest(format!(
            "unsupported MCP-Protocol-Version `{header}`: this server speaks {MODERN} and {}",
            LEGACY.join(", ")
        ));
        return error_response(StatusCode::BAD_REQUEST, &request.id, &error);
    }
    if request.method == "initialize" {
        return match legacy::initialize(&http.server, principal, &request) {
            Ok((session, result)) => {
                let config = &http.server.config;
                http.server.sessions.insert(
                    session.clone(),
                    config.session_idle(),
                    config.max_sessions,
                );
                let mut response =
                    axum::Json(jsonrpc::response(&request.id, result)).into_response();
                if let Ok(value) = HeaderValue::from_str(&session.id) {
                    response.headers_mut().insert(SESSION_HEADER, value);
                }
                response
            }
            Err(error) => error_response(StatusCode::OK, &request.id, &error),
        };
    }
    let session = match session(http, headers, principal, &request.id) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let id = request.id.clone();
    let version = session.version.clone();
    let reply = legacy::handle(&http.server, &session, request).await;
    answer(
        &http.server,
        reply,
        &id,
        Some(&version),
        takes_streams(headers),
        Some(&session),
    )
    .await
}

/// The open session the request names.
fn session(
    http: &Http,
    headers: &HeaderMap,
    principal: &Principal,
    id: &Value,
) -> Result<Arc<Session>, Refused> {
    let Some(name) = header_text(headers, SESSION_HEADER) else {
        let error = Error::InvalidRequest(
            "the Mcp-Session-Id header is missing: send `initialize` first, then the session id \
             it returned with every request (or use protocol 2026-07-28, which has no sessions)"
                .into(),
        );
        return Err(Box::new(error_response(
            StatusCode::BAD_REQUEST,
            id,
            &error,
        )));
    };
    http.server
        .sessions
        .get(name, principal, http.server.config.session_idle())
        .ok_or_else(|| {
            let error = Error::InvalidRequest(
                "no such session (it ended or expired): initialize a new one".into(),
            );
            Box::new(error_response(StatusCode::NOT_FOUND, id, &error))
        })
}

/// The HTTP response for a request's answer.
async fn answer(
    server: &Server,
    reply: Result<Reply, Error>,
    id: &Value,
    version: Option<&str>,
    streams: bool,
    session: Option<&Arc<Session>>,
) -> Response {
    let mut response = match reply {
        Err(error) => error_response(error.status(version), id, &error),
        Ok(Reply::Result(result)) => axum::Json(jsonrpc::response(id, result)).into_response(),
        Ok(Reply::Stream(mut messages)) if streams => {
            // A call that answers at once gets a plain JSON response, with the status its error
            // calls for (an SSE stream must start with 200); one that has something to say
            // first, or takes a while, gets a stream.
            match tokio::time::timeout(FIRST_WAIT, messages.recv()).await {
                Ok(Some(first)) if first.get("id").is_some() && first.get("method").is_none() => {
                    let code = first["error"]["code"].as_i64();
                    let status = code.map_or(StatusCode::OK, |code| status_of(code, version));
                    (status, axum::Json(first)).into_response()
                }
                Ok(Some(first)) => sse(server, session, Some(first), messages),
                // Nothing to say (a cancelled call, a stopping server): an empty stream.
                Ok(None) => sse(server, session, None, messages),
                Err(_) => sse(server, session, None, messages),
            }
        }
        // A client that takes only JSON gets the final response alone: not a notification
        // (progress) or a request sent before or after it.
        Ok(Reply::Stream(mut messages)) => {
            let mut last = None;
            while let Some(message) = messages.recv().await {
                if message.get("id").is_some() && message.get("method").is_none() {
                    last = Some(message);
                }
            }
            match last {
                Some(message) => axum::Json(message).into_response(),
                // Nothing to say (a cancelled call, a stopping server): no body.
                None => StatusCode::ACCEPTED.into_response(),
            }
        }
    };
    if let Some(session) = session
        && let Ok(value) = HeaderValue::from_str(&session.id)
    {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// Messages as an SSE body, `first` first, each event with an id (see [`crate::resume`]).
/// A session's stream can be resumed with `Last-Event-ID`; a 2026-07-28 stream cannot (that
/// generation has no resumption: its client asks again), so it ends with its connection.
fn sse(
    server: &Server,
    session: Option<&Arc<Session>>,
    first: Option<Value>,
    messages: mpsc::Receiver<Value>,
) -> Response {
    let shutdown = server.surface.shutdown_token();
    // Only a session's streams can be resumed, so only they are primed with an id to resume
    // from.
    let prime = session.is_some();
    let (replay, close_after) = match session {
        Some(session) => (
            session.replays.start(
                first,
                messages,
                server.config.resume_window(),
                shutdown.clone(),
            ),
            server.config.stream_close(),
        ),
        None => (
            Arc::new(crate::resume::Replays::default()).start(
                first,
                messages,
                Duration::ZERO,
                shutdown.clone(),
            ),
            None,
        ),
    };
    crate::resume::response(
        replay.events(0, close_after, prime),
        server.surface.limits().keep_alive,
    )
}

/// GET with `Last-Event-ID`: the rest of a session's stream, from after that event.
fn resume(
    session: &Session,
    last_event_id: &str,
    keep_alive: Duration,
    permit: StreamPermit,
) -> Response {
    match session.replays.find(last_event_id) {
        Some((replay, after)) => crate::resume::response(
            // The resumed stream stays open to the end: a client resumes once, and gets the
            // rest.
            with_permit(replay.events(after, None, true), permit),
            keep_alive,
        ),
        None => {
            let error = Error::InvalidRequest(format!(
                "no stream of this session has the event `{}`: it ended too long ago, or was \
                 never sent",
                last_event_id.chars().take(80).collect::<String>()
            ));
            error_response(StatusCode::NOT_FOUND, &Value::Null, &error)
        }
    }
}

/// `events`, holding `permit` for as long as the stream lives.
fn with_permit<S: futures_util::Stream + Send + 'static>(
    events: S,
    permit: StreamPermit,
) -> impl futures_util::Stream<Item = S::Item> + Send + 'static {
    events.map(move |event| {
        let _held = &permit;
        event
    })
}

/// GET: a 2025-11-25 session's stream of notifications, or with `Last-Event-ID` the rest of
/// one of its streams.
async fn get_stream(State(http): State<Http>, headers: HeaderMap) -> Response {
    let principal = match admit(&http, &headers).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    if header_text(&headers, VERSION_HEADER) == Some(MODERN) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let session = match session(&http, &headers, &principal, &Value::Null) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    // A listening stream counts against the principal's streams on every door, resumed or
    // not; the permit lives as long as the stream's body.
    let permit = match http.surface.stream_permit(&principal) {
        Ok(permit) => permit,
        Err(refusal) => return refusal_response(refusal),
    };
    let keep_alive = http.surface.limits().keep_alive;
    if let Some(last) = header_text(&headers, LAST_EVENT_HEADER) {
        return resume(&session, last, keep_alive, permit);
    }
    let messages = legacy::listen(&session);
    let replay = session.replays.start(
        None,
        messages,
        http.server.config.resume_window(),
        http.server.surface.shutdown_token(),
    );
    crate::resume::response(
        with_permit(replay.events(0, None, true), permit),
        keep_alive,
    )
}

/// DELETE: ends a 2025-11-25 session.
async fn end_session(State(http): State<Http>, headers: HeaderMap) -> Response {
    let principal = match admit(&http, &headers).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    if header_text(&headers, VERSION_HEADER) == Some(MODERN) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    match header_text(&headers, SESSION_HEADER) {
        Some(id) if http.server.sessions.remove(id, &principal) => StatusCode::OK.into_response(),
        Some(_) => {
            let error = Error::InvalidRequest("no such session".into());
            error_response(StatusCode::NOT_FOUND, &Value::Null, &error)
        }
        None => {
            let error = Error::InvalidRequest("the Mcp-Session-Id header is missing".into());
            error_response(StatusCode::BAD_REQUEST, &Value::Null, &error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_headers_may_be_base64() {
        let mut headers = HeaderMap::new();
        headers.insert(
            NAME_HEADER,
            HeaderValue::from_static(" =?base64?w6lsw6h2ZQ==?= "),
        );
        assert_eq!(
            header_value(&headers, NAME_HEADER).unwrap().as_deref(),
            Some("élève")
        );
        headers.insert(NAME_HEADER, HeaderValue::from_static("=?base64?***?="));
        assert_eq!(
            header_value(&headers, NAME_HEADER).unwrap_err().code(),
            -32020
        );
        headers.insert(NAME_HEADER, HeaderValue::from_static("  plain "));
        assert_eq!(
            header_value(&headers, NAME_HEADER).unwrap().as_deref(),
            Some("plain")
        );
    }
}
