//! The task endpoints: create, get, list, cancel, answer.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use longrun::{
    task::{Filter, Status},
    time::Timestamp,
};
use longrun_surface::{Start, StartRequest};
use serde_json::Value;

use crate::{
    Api,
    auth::Caller,
    error::Error,
    extract::{Json, Path, task_id},
    model,
};

/// How many tasks a page holds when the request does not say.
const DEFAULT_PAGE: usize = 50;

/// The longest `Idempotency-Key` taken, in bytes.
const MAX_KEY: usize = 255;

/// Start a task.
///
/// Without `wait_ms` the answer comes at once, with the task `working` (or `submitted` while it
/// waits at a concurrency limit). With `wait_ms` the server waits up to that long for the task
/// to end and answers with the task as it stands then; a task still running is detached, and
/// its outcome goes to the session's inbox. A task refused at a limit is answered `rejected`.
///
/// With `delay_ms` or `start_at_ms` the handler starts then, not before; the task is
/// `submitted` until then and survives a restart.
///
/// With an `Idempotency-Key` header, a repeat of the request (same principal, same key) while
/// the first task is kept starts nothing and answers `200` with that task as it stands; the
/// same key with another kind or input answers `422`.
///
/// With a W3C `traceparent` header (and `tracestate`), the task's spans join the caller's trace,
/// and process handlers get it as `TRACEPARENT` (`docs/telemetry.md`).
///
/// With a `webhook` (or when the kind has a default one), the task's events are POSTed to it
/// as they happen, signed with the Standard Webhooks headers (`docs/webhooks.md`).
#[utoipa::path(
    post,
    path = "/v1/tasks",
    operation_id = "createTask",
    tag = "tasks",
    request_body = model::CreateTask,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Names this start for the principal (at most 255 bytes): a repeat answers the first task instead of starting another."),
        ("traceparent" = Option<String>, Header, description = "W3C Trace Context: the task's spans join this trace (`docs/telemetry.md`). An invalid value is ignored."),
        ("tracestate" = Option<String>, Header, description = "W3C Trace Context vendor state, kept with a valid `traceparent`."),
    ),
    responses(
        (status = 200, description = "A repeat of an earlier start with the same `Idempotency-Key`: nothing was started; the first task as it stands.", body = model::Task),
        (status = 201, description = "The task was created; `Location` names it.", body = model::Task),
        (status = 400, description = "The body is not JSON, or a label key holds `:`.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 413, description = "The body or the input is too large.", body = model::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = model::ErrorBody),
        (status = 422, description = "Unknown kind, unknown field, an input that fails the kind's schema, both `delay_ms` and `start_at_ms`, an `Idempotency-Key` already used with another kind or input, or a `webhook` the server refuses (a loopback, private or reserved address, a bad or missing secret).", body = model::ErrorBody),
        (status = 503, description = "The server is shutting down (`shutting_down`), or its store is failing (`unavailable`: a full disk, a failing fsync, a read-only file system, the database unreachable). Nothing was started; try again, with the same `Idempotency-Key`.", body = model::ErrorBody),
    )
)]
pub(crate) async fn create(
    State(api): State<Api>,
    Caller(principal): Caller,
    headers: HeaderMap,
    Json(body): Json<model::CreateTask>,
) -> Result<Response, Error> {
    let key = idempotency_key(&headers)?;
    if let Some(key) = body.labels.keys().find(|key| key.contains(':')) {
        return Err(Error::BadRequest(format!(
            "label key `{key}` contains `:`, which separates key and value in `label=key:value` \
             filters; pick a key without it"
        )));
    }
    if body.session.as_deref() == Some("") {
        return Err(Error::BadRequest(
            "`session` is empty: leave it out, or name the conversation".to_owned(),
        ));
    }
    if body.delay_ms.is_some() && body.start_at_ms.is_some() {
        return Err(Error::InvalidRequest(
            "`delay_ms` and `start_at_ms` both say when to start: send one of them".to_owned(),
        ));
    }
    let webhook = match (api.webhooks(), body.webhook) {
        (Some(webhooks), named) => webhooks.accept(&body.kind, named)?,
        (None, Some(_)) => {
            return Err(Error::InvalidRequest(
                "webhook: this server does not deliver webhooks".to_owned(),
            ));
        }
        (None, None) => None,
    };
    let request = StartRequest {
        kind: body.kind,
        input: body.input,
        session: body.session,
        ttl: body.ttl_ms.map(Duration::from_millis),
        deadline: body.deadline_ms.map(Duration::from_millis),
        labels: body.labels,
        wait: body.wait_ms.map(Duration::from_millis),
        idempotency_key: key,
        start_at: body.start_at_ms.map(Timestamp::from_millis),
        delay: body.delay_ms.map(Duration::from_millis),
        traceparent: header_text(&headers, "traceparent"),
        tracestate: header_text(&headers, "tracestate"),
        attended: false,
    };
    let Start { task, repeated } = api.surface().start(&principal, "http", request).await?;
    if let (Some(webhooks), Some(webhook)) = (api.webhooks(), webhook) {
        // Delivery replays the task's log from the start, so nothing it did meanwhile is lost.
        webhooks
            .start(&task.id, &principal, webhook, repeated)
            .await?;
    }
    // A repeat of an earlier start (its idempotency key) created nothing.
    let status = if repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let location = format!("/v1/tasks/{}", task.id);
    let task = model::Task::from(&task);
    Ok((status, [(header::LOCATION, location)], axum::Json(task)).into_response())
}

/// A header's value as text; `None` when absent or not visible ASCII (then it is ignored, as
/// an invalid trace context is).
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.to_owned())
}

/// The request's `Idempotency-Key`, if it sent one that can be used.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY)
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "the `Idempotency-Key` header must be 1 to {MAX_KEY} bytes of visible ASCII"
            ))
        })?;
    Ok(Some(key.to_owned()))
}

/// A task as it stands.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    operation_id = "getTask",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id.")),
    responses(
        (status = 200, description = "The task.", body = model::Task),
        (status = 400, description = "Not a task id.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 404, description = "No such task, it expired, or it is not the caller's.", body = model::ErrorBody),
    )
)]
pub(crate) async fn get(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<model::Task>, Error> {
    let task = api.surface().owned_id(&principal, task_id(&id)?).await?;
    Ok(axum::Json(model::Task::from(&task)))
}

/// The caller's tasks, newest first, one page at a time.
///
/// Filters combine: a task is listed if it matches every one given. `status` may repeat (or
/// hold a comma-separated list): any of them matches. `label` may repeat: every one must match.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    operation_id = "listTasks",
    tag = "tasks",
    params(
        ("status" = Option<Vec<model::Status>>, Query, description = "Only tasks in one of these statuses (repeat it, or separate with commas).", explode = true),
        ("kind" = Option<String>, Query, description = "Only tasks of this kind."),
        ("session" = Option<String>, Query, description = "Only tasks of this session."),
        ("label" = Option<Vec<String>>, Query, description = "Only tasks with this label, as `key:value` (repeat for more).", explode = true),
        ("after" = Option<String>, Query, description = "The `next` of the previous page."),
        ("limit" = Option<usize>, Query, description = "At most this many tasks (default 50; the server caps it)."),
    ),
    responses(
        (status = 200, description = "One page of tasks.", body = model::TaskPage),
        (status = 400, description = "A parameter is unknown or malformed.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(api): State<Api>,
    Caller(principal): Caller,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<model::TaskPage>, Error> {
    let mut filter = Filter {
        owner: Some(principal.owner()),
        ..Filter::default()
    };
    let mut after = None;
    let mut limit = DEFAULT_PAGE;
    let mut labels = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "status" => {
                for status in value.split(',').filter(|s| !s.is_empty()) {
                    filter
                        .status
                        .push(status.parse::<Status>().map_err(Error::BadRequest)?);
                }
            }
            "kind" => filter.kind = Some(value.into_owned()),
            "session" => filter.session = Some(principal.session(&value)),
            "label" => {
                let (key, value) = value.split_once(':').ok_or_else(|| {
                    Error::BadRequest(format!("`label={value}` needs the form `label=key:value`"))
                })?;
                labels.insert(key.to_owned(), value.to_owned());
            }
            "after" => {
                after = Some(value.parse().map_err(Error::BadRequest)?);
            }
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|limit| *limit > 0)
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "`limit` must be a positive integer, got `{value}`"
                        ))
                    })?;
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "unknown parameter `{other}`: the filters are status, kind, session, label, \
                     after and limit"
                )));
            }
        }
    }
    filter.labels = labels;
    let limit = limit.min(api.limits().max_page);
    let page = api.runtime().list(filter, after, limit).await?;
    Ok(axum::Json(model::TaskPage {
        tasks: page.tasks.iter().map(model::Task::from).collect(),
        next: page.next.map(|cursor| cursor.to_string()),
    }))
}

/// Cancel a task, and answer with it once it has ended.
///
/// The handler is told at once and has its kind's grace period to stop, after which it is
/// stopped anyway; the answer comes when the task has ended (usually `cancelled`).
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/cancel",
    operation_id = "cancelTask",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id.")),
    responses(
        (status = 200, description = "The ended task.", body = model::Task),
        (status = 400, description = "Not a task id.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 404, description = "No such task, it expired, or it is not the caller's.", body = model::ErrorBody),
        (status = 409, description = "The task has already ended; nothing was changed.", body = model::ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<model::Task>, Error> {
    let id = task_id(&id)?;
    api.surface().owned_id(&principal, id).await?;
    let task = api.runtime().cancel_by(id, principal.as_str()).await?;
    Ok(axum::Json(model::Task::from(&task)))
}

/// Answer a question the task asked (see its `questions`), and answer with the task.
///
/// The body is the answer: any JSON. An answer may also come before the question is asked;
/// it is kept and handed over when it is. Each question takes one answer.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/answers/{key}",
    operation_id = "answerTask",
    tag = "tasks",
    params(
        ("id" = String, Path, description = "The task's id."),
        ("key" = String, Path, description = "The question's key."),
    ),
    request_body(content = serde_json::Value, description = "The answer, any JSON.", content_type = "application/json"),
    responses(
        (status = 200, description = "The answer is recorded; the task as it stands.", body = model::Task),
        (status = 400, description = "Not a task id, or the body is not JSON.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 404, description = "No such task, it expired, or it is not the caller's.", body = model::ErrorBody),
        (status = 409, description = "The task has ended, or the question was already answered or timed out.", body = model::ErrorBody),
        (status = 413, description = "The answer is too large.", body = model::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = model::ErrorBody),
    )
)]
pub(crate) async fn answer(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path((id, key)): Path<(String, String)>,
    Json(value): Json<Value>,
) -> Result<axum::Json<model::Task>, Error> {
    let id = task_id(&id)?;
    api.surface().owned_id(&principal, id).await?;
    api.runtime().answer(id, &key, value).await?;
    let task = api.runtime().get(id).await?;
    Ok(axum::Json(model::Task::from(&task)))
}
