//! The OpenAPI document, generated from the wire types and the handlers' annotations, served at
//! `/openapi.json` and committed as `docs/openapi.json` (a test fails when they differ).

use std::sync::LazyLock;

use axum::extract::State;
use serde_json::Value;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

use crate::{Api, events, inbox, kinds, metrics, model, tasks, workers};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "longrun",
        description = "Long-running work started by AI agents: start tasks, follow their \
                       progress and events, answer their questions, cancel them, and drain the \
                       agent inbox.\n\nEvery `/v1` request needs `Authorization: Bearer <token>` \
                       (unless the server runs anonymous, on a loopback address). A principal \
                       sees and touches only its own tasks and sessions. Errors are always \
                       `{\"error\": {\"code\", \"message\"}}`. Times are milliseconds since the \
                       Unix epoch, in fields ending `_ms`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        tasks::create,
        tasks::get,
        tasks::list,
        tasks::cancel,
        tasks::answer,
        events::task,
        events::all,
        inbox::drain,
        kinds::list,
        workers::register,
        workers::list,
        workers::events,
        workers::heartbeat,
        workers::report,
        workers::drain,
        workers::leave,
        crate::health,
        metrics::render,
        serve,
    ),
    components(schemas(model::Lagged)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tasks", description = "Start, read, list, cancel and answer tasks."),
        (name = "events", description = "Server-Sent Events: one task's, or all of the caller's."),
        (name = "inbox", description = "The agent inbox of a session."),
        (name = "kinds", description = "What this server runs."),
        (name = "workers", description = "The worker protocol: programs on any machine that serve kinds (docs/worker-protocol.md)."),
        (name = "operations", description = "Health, metrics and this document; no token needed."),
    )
)]
struct Doc;

/// Declares the bearer scheme the document's `security` names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's OpenAPI document, as served at `/openapi.json` and committed as
/// `docs/openapi.json`.
///
/// ```
/// let document = longrun_http::openapi();
/// assert!(document["paths"]["/v1/tasks"]["post"].is_object());
/// ```
pub fn openapi() -> Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        serde_json::to_value(Doc::openapi()).expect("an OpenAPI document always serializes")
    });
    DOCUMENT.clone()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", body = Object))
)]
pub(crate) async fn serve(State(_): State<Api>) -> axum::Json<Value> {
    axum::Json(openapi())
}
