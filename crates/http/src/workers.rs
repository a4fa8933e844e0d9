//! `/v1/workers`: the worker protocol over HTTP (`docs/worker-protocol.md`).
//!
//! Only the wire lives here; what a registration, a report or a heartbeat does is the
//! [`longrun_worker_hub::Hub`]'s. Every route passes the doors' gate first ([`Caller`]), and a
//! worker answers only to the principal that registered it.

use std::convert::Infallible;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response, sse},
};
use futures_util::StreamExt;
use longrun_worker_hub::{DeclaredKind, Hub, Registration, WorkerInfo};
use serde_json::Value;

use crate::{
    Api,
    auth::{Caller, Principal},
    error::Error,
    extract::{Json, Path},
    model,
};

/// The hub, or 404 on a server built without one (a library user's [`Api`]).
fn hub(api: &Api) -> Result<&Hub, Error> {
    api.workers()
        .ok_or(Error::Worker(longrun_worker_hub::HubError::UnknownWorker))
}

/// Register a worker: the kinds it serves and how many tasks it runs at once.
///
/// Every declared kind must be served by workers on this server (a `[[kinds]]` entry without
/// `command`, or with `worker = true`), and the caller must be allowed to serve it (`served_by`;
/// anyone on a server without tokens). The worker then opens its event stream and sends a
/// heartbeat every `heartbeat_ms`.
#[utoipa::path(
    post,
    path = "/v1/workers",
    operation_id = "registerWorker",
    tag = "workers",
    request_body(content = model::WorkerRegistration, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered.", body = model::WorkerRegistered),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 403, description = "The caller may not serve a declared kind.", body = model::ErrorBody),
        (status = 404, description = "A declared kind is not served by workers here (`unknown_kind`).", body = model::ErrorBody),
        (status = 409, description = "A declared input schema differs from the configured one (`schema_mismatch`).", body = model::ErrorBody),
        (status = 422, description = "A malformed registration.", body = model::ErrorBody),
    )
)]
pub(crate) async fn register(
    State(api): State<Api>,
    Caller(principal): Caller,
    Json(body): Json<model::WorkerRegistration>,
) -> Result<Response, Error> {
    let registration = Registration {
        name: body.name,
        capacity: body.capacity.unwrap_or(1),
        kinds: body
            .kinds
            .into_iter()
            .map(|kind| DeclaredKind {
                name: kind.name,
                input_schema: kind.input_schema,
            })
            .collect(),
    };
    let registered = hub(&api)?.register(principal.as_str(), registration)?;
    let body = model::WorkerRegistered {
        worker: registered.worker,
        heartbeat_ms: registered.heartbeat_ms,
        expiry_ms: registered.expiry_ms,
        protocol: registered.protocol,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// The workers connected to this node: the caller's own (every worker on a server without
/// tokens).
#[utoipa::path(
    get,
    path = "/v1/workers",
    operation_id = "listWorkers",
    tag = "workers",
    responses(
        (status = 200, description = "The workers.", body = model::WorkerList),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(api): State<Api>,
    Caller(principal): Caller,
) -> Result<axum::Json<model::WorkerList>, Error> {
    let Some(hub) = api.workers() else {
        return Ok(axum::Json(model::WorkerList {
            workers: Vec::new(),
        }));
    };
    let only = (principal.as_str() != Principal::ANONYMOUS).then_some(principal.as_str());
    let workers = hub.workers(only).into_iter().map(worker).collect();
    Ok(axum::Json(model::WorkerList { workers }))
}

fn worker(info: WorkerInfo) -> model::Worker {
    model::Worker {
        id: info.id,
        name: info.name,
        principal: info.principal,
        kinds: info.kinds,
        capacity: info.capacity,
        tasks: info.tasks,
        draining: info.draining,
        last_heartbeat_ms_ago: info.last_heartbeat_ms_ago,
        connected_ms: info.connected_ms,
    }
}

/// The worker's push stream: assignments (`start`), answers, time-outs, saved steps,
/// cancellation and revocations, as they happen.
///
/// Each SSE message's `event` is the message's `type` and its `id` increases per worker:
/// reconnect with `Last-Event-ID` to get what came after it (among the last 1,024 events). One
/// stream per worker: a new one ends the old.
#[utoipa::path(
    get,
    path = "/v1/workers/{worker}/events",
    operation_id = "streamWorkerEvents",
    tag = "workers",
    params(
        ("worker" = String, Path, description = "The worker's id."),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event."),
    ),
    responses(
        (status = 200, description = "An SSE stream of `WorkerEvent`s.", content_type = "text/event-stream", body = model::WorkerEvent),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 403, description = "Another principal registered the worker.", body = model::ErrorBody),
        (status = 404, description = "No such worker (`unknown_worker`): register again.", body = model::ErrorBody),
    )
)]
pub(crate) async fn events(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let after = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::BadRequest("Last-Event-ID must be an event id".into()))?,
        ),
        None => None,
    };
    let events = hub(&api)?.events(&id, principal.as_str(), after)?;
    let events = events
        .map(|event| {
            let message = sse::Event::default()
                .id(event.id.to_string())
                .event(event.name)
                .data(event.data.as_str());
            Ok::<_, Infallible>(message)
        })
        .take_until(api.surface().stopping());
    Ok(api.surface().sse(events))
}

/// The worker is alive: renews it and every task it holds.
#[utoipa::path(
    post,
    path = "/v1/workers/{worker}/heartbeat",
    operation_id = "workerHeartbeat",
    tag = "workers",
    params(("worker" = String, Path, description = "The worker's id.")),
    responses(
        (status = 200, description = "The assignments the server counts as the worker's.", body = model::WorkerHeartbeat),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 403, description = "Another principal registered the worker.", body = model::ErrorBody),
        (status = 404, description = "No such worker (`unknown_worker`): register again.", body = model::ErrorBody),
    )
)]
pub(crate) async fn heartbeat(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<model::WorkerHeartbeat>, Error> {
    let beat = hub(&api)?.heartbeat(&id, principal.as_str())?;
    Ok(axum::Json(model::WorkerHeartbeat {
        assignments: beat.assignments,
        draining: beat.draining,
    }))
}

/// One report for one assigned task, applied in the order reports arrive: send the next after
/// this one's answer. A `step` is answered once its value is durable.
#[utoipa::path(
    post,
    path = "/v1/workers/{worker}/assignments/{assignment}/reports",
    operation_id = "reportAssignment",
    tag = "workers",
    params(
        ("worker" = String, Path, description = "The worker's id."),
        ("assignment" = String, Path, description = "The assignment's id (`asg_…`)."),
    ),
    request_body(content = model::WorkerReport, content_type = "application/json"),
    responses(
        (status = 204, description = "Recorded."),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 403, description = "Another principal registered the worker.", body = model::ErrorBody),
        (status = 404, description = "No such worker (`unknown_worker`).", body = model::ErrorBody),
        (status = 409, description = "The assignment is not this worker's any more (`assignment_gone`): stop the task's handler.", body = model::ErrorBody),
        (status = 422, description = "Not a report, or against the protocol (`protocol_error`): the task fails.", body = model::ErrorBody),
    )
)]
pub(crate) async fn report(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path((id, assignment)): Path<(String, String)>,
    Json(report): Json<Value>,
) -> Result<StatusCode, Error> {
    hub(&api)?
        .report(&id, principal.as_str(), &assignment, report)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The worker takes no new tasks; it finishes the ones it holds.
#[utoipa::path(
    post,
    path = "/v1/workers/{worker}/drain",
    operation_id = "drainWorker",
    tag = "workers",
    params(("worker" = String, Path, description = "The worker's id.")),
    responses(
        (status = 204, description = "Draining."),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 403, description = "Another principal registered the worker.", body = model::ErrorBody),
        (status = 404, description = "No such worker (`unknown_worker`).", body = model::ErrorBody),
    )
)]
pub(crate) async fn drain(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    hub(&api)?.drain(&id, principal.as_str())?;
    Ok(StatusCode::NO_CONTENT)
}

/// The worker leaves: the tasks it still holds are handed back and assigned to another worker,
/// with every step saved so far.
#[utoipa::path(
    delete,
    path = "/v1/workers/{worker}",
    operation_id = "deregisterWorker",
    tag = "workers",
    params(("worker" = String, Path, description = "The worker's id.")),
    responses(
        (status = 204, description = "Gone."),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 403, description = "Another principal registered the worker.", body = model::ErrorBody),
        (status = 404, description = "No such worker (`unknown_worker`).", body = model::ErrorBody),
    )
)]
pub(crate) async fn leave(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    hub(&api)?.leave(&id, principal.as_str())?;
    Ok(StatusCode::NO_CONTENT)
}
