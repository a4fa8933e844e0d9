//! The HTTP+JSON binding of A2A 1.0 under `/a2a`: the proto's HTTP paths, bodies and answers
//! in ProtoJSON (`application/a2a+json`), streams as SSE of bare `StreamResponse`s, errors as
//! `google.rpc.Status` with an `ErrorInfo` detail.
//!
//! | method and path | operation |
//! |---|---|
//! | `POST /a2a/message:send` | SendMessage |
//! | `POST /a2a/message:stream` | SendStreamingMessage |
//! | `GET /a2a/tasks/{id}` | GetTask (`?historyLength=`) |
//! | `GET /a2a/tasks` | ListTasks (query parameters as the request's fields) |
//! | `POST /a2a/tasks/{id}:cancel` | CancelTask |
//! | `GET` or `POST /a2a/tasks/{id}:subscribe` | SubscribeToTask |
//! | `POST /a2a/tasks/{id}/pushNotificationConfigs` | CreateTaskPushNotificationConfig |
//! | `GET /a2a/tasks/{id}/pushNotificationConfigs` | ListTaskPushNotificationConfigs |
//! | `GET` / `DELETE /a2a/tasks/{id}/pushNotificationConfigs/{configId}` | Get / DeleteTaskPushNotificationConfig |
//! | `GET /a2a/extendedAgentCard` | GetExtendedAgentCard (not configured) |
//!
//! These paths are 1.0's (0.3's had a `/v1` prefix), so a request without an `A2A-Version`
//! header is taken as 1.0 here; an explicit `0.3` is refused (0.3 is served over JSON-RPC).
//!
//! Answers are `application/a2a+json` when the request's `Accept` names it (A2A 1.0.1 prefers
//! it), else `application/json` (1.0.0's, which every client takes).

use std::convert::Infallible;

use axum::{
    body::Bytes,
    extract::rejection::{BytesRejection, PathRejection},
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, Method, header},
    response::{
        IntoResponse, Response,
        sse::{self, KeepAlive, Sse},
    },
};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::{
    Door,
    error::{Error, Kind, Rest},
    ops::{Call, Sent},
    stream::Frames,
    version::Version,
    wire,
};

/// How often an idle stream sends an SSE comment, so proxies keep it open.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
const A2A_MEDIA_TYPE: &str = "application/a2a+json";

/// Everything under `/a2a/`.
pub(crate) async fn handle(
    State(door): State<Door>,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A path that does not decode (`%ff`: not UTF-8) is answered in this binding's error
    // shape too, not with the extractor's plain-text rejection.
    let path = match path {
        Ok(Path(path)) => path,
        Err(rejection) => {
            let message = format!("the request path is not valid: {}", rejection.body_text());
            return Rest(Error::new(Kind::InvalidRequest, message)).into_response();
        }
    };
    // A body over the limit (or one that could not be read) is answered in this binding's
    // error shape, not with the extractor's plain-text rejection.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            // The status (413 over the limit) goes into the body's `code` too, which must
            // equal it.
            let error = Error::new(
                Kind::InvalidRequest,
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            );
            return Rest(error.with_http(rejection.status())).into_response();
        }
    };
    match route(door, method, &path, &headers, query.as_deref(), &body).await {
        Ok(response) => response,
        Err(error) => Rest(error).into_response(),
    }
}

async fn route(
    door: Door,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response, Error> {
    let version = Version::of(headers, query)?.unwrap_or(Version::V10);
    if version == Version::V03 {
        return Err(Error::new(
            Kind::VersionNotSupported,
            "A2A 0.3 is served over JSON-RPC (POST /a2a without an A2A-Version header); the \
             HTTP+JSON binding speaks 1.0",
        )
        .with("supported", "1.0"));
    }
    let principal = door.surface().admit(headers).await?;
    let call = Call {
        door,
        principal,
        version,
    };
    if !body.iter().all(u8::is_ascii_whitespace) {
        crate::jsonrpc::json_content(headers)?;
    }
    let segments: Vec<&str> = path.split('/').collect();
    let query = parse_query(query.unwrap_or(""));
    let media = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .filter(|accept| accept.contains(A2A_MEDIA_TYPE))
        .map_or("application/json", |_| A2A_MEDIA_TYPE);
    match (&method, segments.as_slice()) {
        (&Method::POST, ["message:send"]) => match call.send(json_body(body)?).await? {
            Sent::Task(task) => ok(media, &json!({"task": task})),
            Sent::Message(message) => ok(media, &json!({"message": message})),
        },
        (&Method::POST, ["message:stream"]) => Ok(stream(call.stream(json_body(body)?).await?)),
        (&Method::GET, ["tasks"]) => ok(media, &call.list(query_request(&query)?).await?),
        (&Method::GET | &Method::POST, ["tasks", last]) if last.ends_with(":subscribe") => {
            let id = last.trim_end_matches(":subscribe");
            Ok(stream(call.subscribe(id).await?))
        }
        (&Method::POST, ["tasks", last]) if last.ends_with(":cancel") => {
            ok(media, &call.cancel(last.trim_end_matches(":cancel")).await?)
        }
        (&Method::GET, ["tasks", id]) => {
            let mut request: wire::GetTaskRequest = query_request(&query)?;
            request.id = (*id).to_owned();
            ok(media, &call.get(request).await?)
        }
        (&Method::POST, ["tasks", id, "pushNotificationConfigs"]) => {
            let mut config: wire::PushConfig = json_body(body)?;
            config.task_id = (*id).to_owned();
            ok(media, &call.create_push(config).await?)
        }
        (&Method::GET, ["tasks", id, "pushNotificationConfigs"]) => ok(
            media,
            &wire::ListPushConfigsResponse {
                configs: call.list_push(id).await?,
                next_page_token: String::new(),
            },
        ),
        (&Method::GET, ["tasks", id, "pushNotificationConfigs", config]) => ok(
            media,
            &call
                .get_push(wire::PushConfigRequest {
                    task_id: (*id).to_owned(),
                    id: (*config).to_owned(),
                })
                .await?,
        ),
        (&Method::DELETE, ["tasks", id, "pushNotificationConfigs", config]) => {
            call.delete_push(wire::PushConfigRequest {
                task_id: (*id).to_owned(),
                id: (*config).to_owned(),
            })
            .await?;
            ok(media, &json!({}))
        }
        (&Method::GET, ["extendedAgentCard"]) => Err(Error::new(
            Kind::ExtendedAgentCardNotConfigured,
            "this agent has no extended card: the public card says everything",
        )),
        _ => Err(Error::new(
            Kind::MethodNotFound,
            format!(
                "no A2A operation at {method} /a2a/{}; see the HTTP+JSON binding's paths",
                crate::error::short(path)
            ),
        )),
    }
}

fn ok(media: &'static str, body: &impl serde::Serialize) -> Result<Response, Error> {
    let body = serde_json::to_vec(body).map_err(|error| Error::internal(error.to_string()))?;
    Ok(([(header::CONTENT_TYPE, media)], body).into_response())
}

/// A request body; an empty one is `{}` (a cancel has nothing to say).
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|error| {
            Error::new(Kind::JsonParse, format!("the body is not JSON: {error}"))
        })?
    };
    serde_json::from_value(value)
        .map_err(|error| Error::invalid_params(format!("invalid request body: {error}")))
}

/// Query parameters as a request's fields (`?historyLength=2&includeArtifacts=true`).
fn query_request<T: DeserializeOwned>(query: &[(String, String)]) -> Result<T, Error> {
    let mut object = Map::new();
    for (name, value) in query {
        let value = match value.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(value.clone()),
        };
        object.insert(name.clone(), value);
    }
    serde_json::from_value(Value::Object(object))
        .map_err(|error| Error::invalid_params(format!("invalid query parameter: {error}")))
}

/// `a=1&b=x%20y` as pairs, percent-decoded (`+` is a space).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn stream(frames: Frames) -> Response {
    let events = frames.map(|frame| {
        let event = match frame {
            Ok(frame) => sse::Event::default()
                .data(serde_json::to_string(&frame.response).unwrap_or_default()),
            Err(error) => sse::Event::default()
                .event("error")
                .data(error.status_body().to_string()),
        };
        Ok::<_, Infallible>(event)
    });
    sse_response(events)
}

/// An SSE response with keep-alive comments and the headers that stop proxies buffering it.
pub(crate) fn sse_response<S>(events: S) -> Response
where
    S: Stream<Item = Result<sse::Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        assert_eq!(
            parse_query("a=1&b=x%20y+z&c&d=%zz&e=%4"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x y z".to_owned()),
                ("c".to_owned(), String::new()),
                ("d".to_owned(), "%zz".to_owned()),
                ("e".to_owned(), "%4".to_owned()),
            ]
        );
        let request: wire::ListTasksRequest = query_request(&parse_query(
            "pageSize=5&status=TASK_STATE_WORKING&includeArtifacts=true&contextId=c",
        ))
        .unwrap();
        assert_eq!(request.page_size, Some(5));
        assert_eq!(request.status, Some(wire::TaskState::Working));
        assert_eq!(request.include_artifacts, Some(true));
        assert!(query_request::<wire::ListTasksRequest>(&parse_query("pageSize=x")).is_err());
    }
}
