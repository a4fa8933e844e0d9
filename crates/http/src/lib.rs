//! `longrun-http`: longrun's HTTP + SSE API.
//!
//! [`router`] serves one [`longrun::Runtime`] over HTTP:
//!
//! | endpoint | what it does |
//! |---|---|
//! | `POST /v1/tasks` | start a task (`wait_ms` waits up to that long for the outcome) |
//! | `GET /v1/tasks/{id}` | the task as it stands |
//! | `GET /v1/tasks` | the caller's tasks, newest first, filtered, one page at a time |
//! | `POST /v1/tasks/{id}/cancel` | cancel; answers with the ended task |
//! | `POST /v1/tasks/{id}/answers/{key}` | answer a question the task asked |
//! | `GET /v1/tasks/{id}/events` | the task's events (SSE), resumable with `Last-Event-ID` |
//! | `GET /v1/events` | every event of the caller's tasks (SSE) |
//! | `POST /v1/sessions/{session}/inbox:drain` | the agent inbox, acknowledged by the next drain |
//! | `GET /v1/kinds` | the kinds, with their input schemas |
//! | `/v1/workers…` | the worker protocol (`docs/worker-protocol.md`), with [`Api::with_workers`] |
//! | `GET /healthz`, `GET /metrics`, `GET /openapi.json` | health, Prometheus metrics, this API |
//!
//! A start may name a `webhook` that receives the task's events as they happen, signed with
//! the Standard Webhooks headers ([`Api::with_webhooks`], `docs/webhooks.md`).
//!
//! The wire shapes are in [`model`]; the OpenAPI document ([`openapi`]) is generated from them
//! and from the handlers, and is committed as `docs/openapi.json`.
//!
//! # Principals
//!
//! Every request passes the gate all doors share ([`longrun_surface::Surface`]): the server is
//! not stopping, a server without tokens is reached only under a name of this machine, and
//! [`Auth`] maps bearer tokens to [`Principal`]s. A principal is the owner of the tasks it
//! starts, and sees and touches only those: another principal's task is answered exactly like a
//! task that does not exist (404), in lists too. Sessions are per principal as well: the
//! runtime's session is the principal's name, `/`, then the session the client named, so two
//! principals that pick the same session name have two inboxes. [`Auth::Anonymous`] makes every
//! caller the principal `anonymous`; only serve it on a loopback address.
//!
//! # Example
//!
//! ```
//! use axum::{body::Body, http::Request};
//! use longrun::{Context, KindSpec, Runtime, TaskError};
//! use longrun_http::{Api, Auth, Limits, Surface};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(Default::default());
//! runtime.register(KindSpec::new("double"), |_ctx: Context, n: u64| async move {
//!     Ok::<_, TaskError>(n * 2)
//! })?;
//! let surface = Surface::new(runtime, Auth::Anonymous, Limits::default());
//! let app = longrun_http::router(Api::new(surface));
//!
//! let request = Request::post("/v1/tasks")
//!     .header("host", "127.0.0.1:7700")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"kind": "double", "input": 21, "wait_ms": 5000}"#))?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 201);
//! let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
//! let task: longrun_http::model::Task = serde_json::from_slice(&body)?;
//! assert_eq!(task.output, Some(serde_json::json!(42)));
//! # Ok(()) }
//! ```

mod auth;
mod doc;
mod error;
mod events;
mod extract;
mod inbox;
mod kinds;
mod metrics;
pub mod model;
mod tasks;
mod webhooks;
mod workers;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{Method, Uri},
    routing::{delete, get, post},
};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use doc::openapi;
pub use longrun_delivery::Retry as WebhookRetry;
pub use longrun_surface::{Auth, Limits, Principal, Surface};
pub use webhooks::{WebhookConfig, WebhookError, Webhooks};

use crate::{error::Error, metrics::Metrics};

/// The HTTP API's state: the doors' shared [`Surface`] and the metrics. Cloning is cheap.
///
/// Build it inside a tokio runtime (as [`longrun::Runtime::new`] is): it starts a small task
/// that keeps the metrics from the runtime's event stream, which ends when the last clone is
/// dropped. The API stops with the surface ([`Surface::shutdown`]): open streams end, and new
/// requests get 503.
#[derive(Clone)]
pub struct Api {
    shared: Arc<Shared>,
}

struct Shared {
    surface: Surface,
    metrics: Arc<Metrics>,
    /// The workers connected to this node, when the server has worker kinds.
    workers: Option<longrun_worker_hub::Hub>,
    /// Delivers tasks' events to their webhooks, when the server has webhooks set up.
    webhooks: Option<Webhooks>,
    /// Cancelled when the last clone goes, to stop the metrics collector.
    dropped: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.dropped.cancel();
    }
}

impl Api {
    /// The API over the doors' surface.
    pub fn new(surface: Surface) -> Self {
        let metrics = Arc::new(Metrics::default());
        let dropped = CancellationToken::new();
        let runtime = surface.runtime().clone();
        // Subscribed here rather than in the task, so no event between now and its first poll
        // is missed.
        #[expect(
            clippy::disallowed_methods,
            reason = "the metrics collector ends on its `stop` token or when the runtime's stream closes; the door owns no TaskTracker yet"
        )]
        tokio::spawn(metrics::collect(
            runtime.clone(),
            runtime.subscribe_all(),
            metrics.clone(),
            dropped.clone(),
        ));
        Self {
            shared: Arc::new(Shared {
                surface,
                metrics,
                workers: None,
                webhooks: None,
                dropped,
            }),
        }
    }

    /// Serves the worker protocol (`/v1/workers`) with `hub`. Call before cloning the API.
    pub fn with_workers(mut self, hub: longrun_worker_hub::Hub) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.workers = Some(hub),
            None => panic!("Api::with_workers must be called before the API is cloned"),
        }
        self
    }

    /// Delivers the events of tasks started with a `webhook` (or of a kind with a default one)
    /// with `webhooks`; without it, a start that names a webhook is refused. Call before
    /// cloning the API.
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.webhooks = Some(webhooks),
            None => panic!("Api::with_webhooks must be called before the API is cloned"),
        }
        self
    }

    pub(crate) fn webhooks(&self) -> Option<&Webhooks> {
        self.shared.webhooks.as_ref()
    }

    /// The worker hub, if the API serves the worker protocol.
    pub fn workers(&self) -> Option<&longrun_worker_hub::Hub> {
        self.shared.workers.as_ref()
    }

    /// The surface this API shares with the other doors (its gate, limits and stopping).
    pub fn surface(&self) -> &Surface {
        &self.shared.surface
    }

    pub(crate) fn runtime(&self) -> &longrun::Runtime {
        self.shared.surface.runtime()
    }

    pub(crate) fn limits(&self) -> &Limits {
        self.shared.surface.limits()
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shared.surface.is_shut_down()
    }
}

/// Every route: `/v1/...`, `/healthz`, `/metrics` and `/openapi.json`, with request tracing and
/// the body limit. Unknown paths and methods get the API's error shape too.
pub fn router(api: Api) -> Router {
    let body_limit = api.limits().body_bytes;
    let routes = Router::new()
        .route("/v1/tasks", post(tasks::create).get(tasks::list))
        .route("/v1/tasks/{id}", get(tasks::get))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/v1/tasks/{id}/answers/{key}", post(tasks::answer))
        .route("/v1/tasks/{id}/events", get(events::task))
        .route("/v1/events", get(events::all))
        .route("/v1/sessions/{session}/inbox:drain", post(inbox::drain))
        .route("/v1/kinds", get(kinds::list))
        .route("/v1/workers", post(workers::register).get(workers::list))
        .route("/v1/workers/{worker}", delete(workers::leave))
        .route("/v1/workers/{worker}/events", get(workers::events))
        .route("/v1/workers/{worker}/heartbeat", post(workers::heartbeat))
        .route("/v1/workers/{worker}/drain", post(workers::drain))
        .route(
            "/v1/workers/{worker}/assignments/{assignment}/reports",
            post(workers::report),
        )
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(doc::serve))
        .route(
            longrun_surface::oauth::RESOURCE_METADATA_PATH,
            get(resource_metadata),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(api);
    longrun_surface::with_retry_after(routes)
}

/// Whether the server is up and taking requests.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The server takes requests.", body = model::Health),
        (status = 503, description = "The server is shutting down.", body = model::ErrorBody),
    )
)]
async fn health(State(api): State<Api>) -> Result<axum::Json<model::Health>, Error> {
    if api.is_shut_down() {
        return Err(Error::ShuttingDown);
    }
    Ok(axum::Json(model::Health {
        status: "ok".to_owned(),
    }))
}

/// The RFC 9728 protected-resource metadata: where clients get a token for this server. Served
/// without a token (clients read it after a 401 names it); 404 when OAuth is not configured.
async fn resource_metadata(
    State(api): State<Api>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<serde_json::Value>, Error> {
    api.surface().check_host(&headers)?;
    match api.surface().resource_metadata() {
        Some(metadata) => Ok(axum::Json(metadata)),
        None => Err(Error::NoRoute {
            method: "GET".to_owned(),
            path: longrun_surface::oauth::RESOURCE_METADATA_PATH.to_owned(),
        }),
    }
}

/// One span per request; `principal` is filled in once the caller is known. The query string
/// is left out: it is the client's, and may hold more than the API needs to log.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        principal = tracing::field::Empty,
    )
}

async fn no_route(method: Method, uri: Uri) -> Error {
    Error::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn wrong_method(method: Method, uri: Uri) -> Error {
    Error::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
