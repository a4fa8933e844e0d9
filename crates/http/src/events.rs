//! The event streams (Server-Sent Events): one task's events, resumable by sequence number, and
//! every event of the caller's tasks.
//!
//! Each stream holds a [`StreamPermit`](longrun_surface::StreamPermit) in its body, so the
//! per-principal count (shared by every door) follows the connection, and ends when the doors
//! stop.

use std::convert::Infallible;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response, sse},
};
use longrun::event::{AllNotice, Seq};
use serde::Deserialize;

use crate::{
    Api,
    auth::Caller,
    error::Error,
    extract::{Path, Query, seq, task_id},
    model,
};

/// `GET /v1/tasks/{id}/events` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskEventsQuery {
    after: Option<u64>,
}

/// `GET /v1/events` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllEventsQuery {
    kind: Option<String>,
    session: Option<String>,
}

/// One task's events, from the start or after a sequence number, ending after the last.
///
/// Each SSE message's `data` is an [`model::Event`] and its `id` the event's `seq`, so a client
/// that reconnects with `Last-Event-ID` (as a browser's `EventSource` does) resumes with the
/// next event: nothing missed, nothing repeated. `?after=` does the same for clients that cannot
/// set the header; the header wins when both are given. The stream ends after the event that
/// ends the task; asking for events after that one is answered 204, which also tells an
/// `EventSource` to stop reconnecting. If the server fails mid-stream, an `error` message with
/// the error body ends it.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/events",
    operation_id = "streamTaskEvents",
    tag = "events",
    params(
        ("id" = String, Path, description = "The task's id."),
        ("after" = Option<u64>, Query, description = "Start after this sequence number (default 0: every event)."),
        ("Last-Event-ID" = Option<u64>, Header, description = "Start after this sequence number; wins over `after`."),
    ),
    responses(
        (status = 200, description = "An SSE stream: `id` is the event's `seq`, `data` an `Event`.", content_type = "text/event-stream", body = model::Event),
        (status = 204, description = "The task has ended and there is no event after the one given."),
        (status = 400, description = "Not a task id, or a malformed sequence number.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 404, description = "No such task, it expired, or it is not the caller's.", body = model::ErrorBody),
        (status = 429, description = "The caller holds too many open streams.", body = model::ErrorBody),
    )
)]
pub(crate) async fn task(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    Query(query): Query<TaskEventsQuery>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let id = task_id(&id)?;
    let task = api.surface().owned_id(&principal, id).await?;
    let after = match headers.get("last-event-id") {
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                Error::BadRequest("Last-Event-ID must be a sequence number".to_owned())
            })?;
            seq(text, "Last-Event-ID")?
        }
        None => Seq::from_u64(query.after.unwrap_or(0)),
    };
    if task.status().is_terminal() && after >= task.last_seq() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let permit = api.surface().stream_permit(&principal)?;
    let subscription = api.runtime().subscribe(id, after).await?;
    let events = api.surface().follow(subscription);
    let stream = async_stream::stream! {
        let _permit = permit;
        for await next in events {
            match next {
                Ok(event) => {
                    let message = event_message(&event).id(event.seq.to_string());
                    yield Ok::<_, Infallible>(message);
                }
                Err(error) => yield Ok(error_message(&Error::from(error))),
            }
        }
    };
    Ok(api.surface().sse(stream))
}

/// Every event of the caller's tasks, as they happen, optionally only of one kind or session.
///
/// Each SSE message's `data` is an [`model::Event`], which names its task and sequence number;
/// the messages carry no SSE `id` (there is no one order to resume from). A client that falls
/// too far behind gets a `lagged` message (`data`: [`model::Lagged`]) in place of the events it
/// missed: re-read the tasks it follows, or resume each task's own stream from its last `seq`.
/// The stream lasts until the client or the server closes it.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "streamEvents",
    tag = "events",
    params(
        ("kind" = Option<String>, Query, description = "Only events of tasks of this kind."),
        ("session" = Option<String>, Query, description = "Only events of tasks of this session."),
    ),
    responses(
        (status = 200, description = "An SSE stream: `data` is an `Event`; a message of type `lagged` (data: `Lagged`) says events were skipped.", content_type = "text/event-stream", body = model::Event),
        (status = 400, description = "An unknown parameter.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 429, description = "The caller holds too many open streams.", body = model::ErrorBody),
    )
)]
pub(crate) async fn all(
    State(api): State<Api>,
    Caller(principal): Caller,
    Query(query): Query<AllEventsQuery>,
) -> Result<Response, Error> {
    let permit = api.surface().stream_permit(&principal)?;
    // Subscribed before the response goes out, so every event after it is seen.
    let mut all = api.runtime().subscribe_all();
    let owner = principal.owner();
    let session = query.session.map(|name| principal.session(&name));
    let kind = query.kind;
    let shutdown = api.surface().stopping();
    let stream = async_stream::stream! {
        let _permit = permit;
        tokio::pin!(shutdown);
        loop {
            let next = tokio::select! {
                () = &mut shutdown => break,
                next = all.next() => next,
            };
            match next {
                Some(AllNotice::Event(published)) => {
                    let info = &published.info;
                    let wanted = info.owner == owner
                        && kind.as_deref().is_none_or(|kind| *kind == *info.kind)
                        && session.as_ref().is_none_or(|session| info.session.as_ref() == Some(session));
                    if wanted {
                        yield Ok::<_, Infallible>(event_message(&published.event));
                    }
                }
                Some(AllNotice::Lagged { missed }) => {
                    let lagged = model::Lagged {
                        missed,
                        message: "this stream fell behind and skipped events: re-read the tasks \
                                  you follow (GET /v1/tasks/{id}), or resume their event streams \
                                  from the last seq you saw"
                            .to_owned(),
                    };
                    yield Ok(json_message(&lagged).event("lagged"));
                }
                None => break,
            }
        }
    };
    Ok(api.surface().sse(stream))
}

fn event_message(event: &longrun::event::Event) -> sse::Event {
    json_message(&model::Event::from(event))
}

fn error_message(error: &Error) -> sse::Event {
    json_message(&error.body()).event("error")
}

fn json_message(data: &impl serde::Serialize) -> sse::Event {
    // The wire types always serialize (string keys, finite numbers from the runtime); the
    // fallback keeps the stream well-formed if that ever changes.
    sse::Event::default()
        .json_data(data)
        .unwrap_or_else(|error| {
            sse::Event::default().event("error").data(
                serde_json::json!({"error": {"code": "internal", "message": error.to_string()}})
                    .to_string(),
            )
        })
}
