//! The JSON-RPC binding: `POST /a2a`, JSON-RPC 2.0, streams as SSE whose every `data:` line is
//! a whole JSON-RPC response with the request's `id`.
//!
//! The version decides the method names: A2A 1.0 (`A2A-Version: 1.0`) has `SendMessage`,
//! `GetTask`, …; a request without the header is A2A 0.3 (`message/send`, `tasks/get`, …), as
//! the spec says. Errors are JSON-RPC error objects (HTTP 200), except a missing or wrong token
//! (401) and a method other than POST (405); an error before a stream starts is a plain JSON
//! body, one after it the stream's last event.

use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    extract::{RawQuery, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::{
    Door,
    error::{Error, Kind},
    ops::{Call, Sent},
    stream::Frames,
    v03,
    version::Version,
    wire,
};

/// `POST /a2a`.
pub(crate) async fn handle(
    State(door): State<Door>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let version = match Version::of(&headers, query.as_deref()) {
        Ok(version) => version.unwrap_or(Version::V03),
        Err(error) => return reply_error(&Value::Null, &error, Version::V10),
    };
    // A body over the limit (or one that could not be read) is answered as JSON-RPC, not with
    // the extractor's plain-text rejection.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let error = Error::new(
                Kind::InvalidRequest,
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            );
            let mut response = reply_error(&Value::Null, &error, version);
            *response.status_mut() = rejection.status();
            return response;
        }
    };
    if method != Method::POST {
        let error = Error::new(
            Kind::InvalidRequest,
            format!("the JSON-RPC binding takes POST requests, not {method}"),
        );
        let mut response = reply_error(&Value::Null, &error, version);
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return response;
    }
    let principal = match door.surface().admit(&headers).await {
        Ok(principal) => principal,
        Err(refusal) => {
            let error = Error::from(refusal);
            let mut response = reply_error(&Value::Null, &error, version);
            *response.status_mut() = error.status();
            if let Some(challenge) = error.challenge() {
                response
                    .headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, challenge);
            }
            return response;
        }
    };
    if let Err(error) = json_content(&headers) {
        return reply_error(&Value::Null, &error, version);
    }
    let (id, method, params) = match envelope(&body) {
        Ok(parts) => parts,
        Err((id, error)) => return reply_error(&id, &error, version),
    };
    let call = Call {
        door,
        principal,
        version,
    };
    match dispatch(&call, &method, params).await {
        Ok(Reply::Value(result)) => {
            axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
        }
        Ok(Reply::Stream(frames)) => sse(frames, id, version),
        Err(error) => {
            let mut response = reply_error(&id, &error, version);
            // A call's error travels in a 200, as JSON-RPC's do, except one the client should
            // retry (a failing store, a server stopping): a 503 here as on every other door,
            // so that a client or proxy retries it as it would any other.
            if error.status() == StatusCode::SERVICE_UNAVAILABLE {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            response
        }
    }
}

/// Refuses a body declared as something other than JSON (`application/json`, or any
/// `…+json` such as `application/a2a+json`); a body with no `Content-Type` is read as JSON.
pub(crate) fn json_content(headers: &HeaderMap) -> Result<(), Error> {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let media = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        return Ok(());
    }
    // 415 over HTTP+JSON: the request's own media type (A2A 1.0.1 answers 400 for content
    // types inside messages, and 1.0.0 answered 415 for both).
    Err(Error::new(
        Kind::ContentTypeNotSupported,
        format!(
            "the request body must be JSON (Content-Type: application/json), not `{}`",
            crate::error::short(text)
        ),
    )
    .with_http(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE))
}

/// The request's id, method and params, or the error to answer (with the id, when known).
fn envelope(body: &[u8]) -> Result<(Value, String, Value), (Value, Error)> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        (
            Value::Null,
            Error::new(Kind::JsonParse, format!("the body is not JSON: {error}")),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err((
            Value::Null,
            Error::new(
                Kind::InvalidRequest,
                "a JSON-RPC request is an object (batches are not supported)",
            ),
        ));
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
        return Err((
            Value::Null,
            Error::new(
                Kind::InvalidRequest,
                "the request `id` must be a string or a number",
            ),
        ));
    }
    let invalid = |message: &str| Err((id.clone(), Error::new(Kind::InvalidRequest, message)));
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return invalid("the request must have \"jsonrpc\": \"2.0\"");
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return invalid("the request has no `method` string"),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(params @ Value::Object(_)) => params,
        Some(_) => {
            return Err((id, Error::invalid_params("`params` must be an object")));
        }
    };
    Ok((id, method, params))
}

enum Reply {
    Value(Value),
    Stream(Frames),
}

fn params<T: DeserializeOwned>(params: Value) -> Result<T, Error> {
    serde_json::from_value(params)
        .map_err(|error| Error::invalid_params(format!("invalid params: {error}")))
}

fn params_v03<T>(parsed: Result<T, String>) -> Result<T, Error> {
    parsed.map_err(|error| Error::invalid_params(format!("invalid params: {error}")))
}

fn value(value: impl serde::Serialize) -> Result<Reply, Error> {
    serde_json::to_value(value)
        .map(Reply::Value)
        .map_err(|error| Error::internal(error.to_string()))
}

async fn dispatch(call: &Call, method: &str, raw: Value) -> Result<Reply, Error> {
    match (call.version, method) {
        (Version::V10, "SendMessage") => match call.send(params(raw)?).await? {
            Sent::Task(task) => value(json!({"task": task})),
            Sent::Message(message) => value(json!({"message": message})),
        },
        (Version::V10, "SendStreamingMessage") => {
            Ok(Reply::Stream(call.stream(params(raw)?).await?))
        }
        (Version::V10, "GetTask") => value(call.get(params(raw)?).await?),
        (Version::V10, "ListTasks") => value(call.list(params(raw)?).await?),
        (Version::V10, "CancelTask") => {
            let request: wire::TaskIdRequest = params(raw)?;
            value(call.cancel(&request.id).await?)
        }
        (Version::V10, "SubscribeToTask") => {
            let request: wire::TaskIdRequest = params(raw)?;
            Ok(Reply::Stream(call.subscribe(&request.id).await?))
        }
        (Version::V10, "CreateTaskPushNotificationConfig") => {
            value(call.create_push(params(raw)?).await?)
        }
        (Version::V10, "GetTaskPushNotificationConfig") => {
            value(call.get_push(params(raw)?).await?)
        }
        (Version::V10, "ListTaskPushNotificationConfigs") => {
            let request: wire::ListPushConfigsRequest = params(raw)?;
            value(wire::ListPushConfigsResponse {
                configs: call.list_push(&request.task_id).await?,
                next_page_token: String::new(),
            })
        }
        (Version::V10, "DeleteTaskPushNotificationConfig") => {
            call.delete_push(params(raw)?).await?;
            value(json!({}))
        }
        (Version::V10, "GetExtendedAgentCard")
        | (Version::V03, "agent/getAuthenticatedExtendedCard") => Err(Error::new(
            Kind::ExtendedAgentCardNotConfigured,
            "this agent has no extended card: the public card says everything",
        )),
        (Version::V03, "message/send") => {
            match call.send(params_v03(v03::send_request(raw))?).await? {
                Sent::Task(task) => value(v03::task(&task)),
                Sent::Message(message) => value(v03::message(&message)),
            }
        }
        (Version::V03, "message/stream") => Ok(Reply::Stream(
            call.stream(params_v03(v03::send_request(raw))?).await?,
        )),
        (Version::V03, "tasks/get") => value(v03::task(
            &call.get(params_v03(v03::get_request(raw))?).await?,
        )),
        (Version::V03, "tasks/cancel") => {
            let request = params_v03(v03::id_request(raw))?;
            value(v03::task(&call.cancel(&request.id).await?))
        }
        (Version::V03, "tasks/resubscribe") => {
            let request = params_v03(v03::id_request(raw))?;
            Ok(Reply::Stream(call.subscribe(&request.id).await?))
        }
        (Version::V03, "tasks/pushNotificationConfig/set") => {
            let config = params_v03(v03::set_push_request(raw))?;
            value(v03::push_config(&call.create_push(config).await?))
        }
        (Version::V03, "tasks/pushNotificationConfig/get") => {
            let request = params_v03(v03::push_request(raw))?;
            value(v03::push_config(&call.get_push(request).await?))
        }
        (Version::V03, "tasks/pushNotificationConfig/list") => {
            let request = params_v03(v03::id_request(raw))?;
            let configs = call.list_push(&request.id).await?;
            value(configs.iter().map(v03::push_config).collect::<Vec<_>>())
        }
        (Version::V03, "tasks/pushNotificationConfig/delete") => {
            call.delete_push(params_v03(v03::push_request(raw))?)
                .await?;
            value(Value::Null)
        }
        (version, other) => Err(unknown_method(version, other)),
    }
}

const METHODS_V10: [&str; 11] = [
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
];

fn unknown_method(version: Version, method: &str) -> Error {
    let shown = crate::error::short(method);
    let message = match version {
        Version::V03 if METHODS_V10.contains(&method) => format!(
            "`{shown}` is an A2A 1.0 method, and a request without an A2A-Version header speaks \
             0.3: send the header `A2A-Version: 1.0`"
        ),
        Version::V10 if method.contains('/') => format!(
            "`{shown}` is an A2A 0.3 method, but the request says A2A-Version 1.0: leave the \
             header out for 0.3, or use the 1.0 method (e.g. SendMessage)"
        ),
        _ => format!(
            "no method `{shown}` in A2A {}",
            match version {
                Version::V03 => "0.3",
                Version::V10 => "1.0",
            }
        ),
    };
    Error::new(Kind::MethodNotFound, message)
}

fn reply_error(id: &Value, error: &Error, version: Version) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": error.jsonrpc(version)})).into_response()
}

fn sse(frames: Frames, id: Value, version: Version) -> Response {
    let events = frames.map(move |frame| {
        let body = match frame {
            Ok(frame) => {
                let result = match version {
                    Version::V10 => serde_json::to_value(&frame.response).unwrap_or(Value::Null),
                    Version::V03 => v03::frame(&frame.response, frame.last),
                };
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            }
            Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error.jsonrpc(version)}),
        };
        Ok::<_, std::convert::Infallible>(
            axum::response::sse::Event::default().data(body.to_string()),
        )
    });
    crate::rest::sse_response(events)
}
