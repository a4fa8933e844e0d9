//! `longrun-a2a`: longrun's A2A door.
//!
//! Every kind of a [`Runtime`] is an A2A skill. [`router`] serves, for a `longrun serve`:
//!
//! | path | what |
//! |---|---|
//! | `POST /a2a` | the JSON-RPC binding: A2A 1.0 (`A2A-Version: 1.0`: `SendMessage`, …) and 0.3 (no header: `message/send`, …) |
//! | `/a2a/…` | the HTTP+JSON binding of A2A 1.0 (`POST /a2a/message:send`, `GET /a2a/tasks/{id}`, …) |
//! | `GET /.well-known/agent-card.json` | the agent card: the kinds as skills, both bindings, the auth |
//!
//! A message starts a task of the skill's kind (or answers the question of the task it names);
//! the task is the runtime's, so the HTTP API, the dashboard and the MCP door see it too. How a
//! message selects its kind and becomes the input, how states, artifacts and questions map,
//! and the push-notification policy are in `docs/a2a.md`.
//!
//! Module map: `jsonrpc` and `rest` are the two bindings, both over `ops` (the operations),
//! which uses `input` (message → task), `map` (task → A2A, the one place states are mapped),
//! `stream` (event streams) and `push` (webhooks). Only `wire` (1.0) and `v03` know JSON
//! shapes; `error` holds every A2A error; `card` the agent card.

mod card;
mod error;
mod input;
mod jsonrpc;
mod map;
mod ops;
mod push;
mod rest;
mod stream;
mod time;
mod v03;
mod version;
mod wire;

use std::{path::PathBuf, sync::Arc, time::Duration};

pub use push::sign::WebhookSecret;

use axum::{
    Router,
    routing::{any, get},
};
use longrun::Runtime;
use longrun_surface::Surface;
use serde::Deserialize;

/// The config file's `[a2a]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where push-notification configs are kept (a SQLite file); `longrun serve` defaults it
    /// to `a2a-push.sqlite` in the data directory. Without one they live in memory.
    pub push_store: Option<PathBuf>,
    /// The agent's name on its card. Default `longrun`.
    pub name: Option<String>,
    /// The agent's description on its card.
    pub description: Option<String>,
    /// The skill (kind) a message starts when it names none in its metadata `skill`. Without
    /// it, a message must name one unless there is only one kind.
    pub default_skill: Option<String>,
    /// Kinds whose handler gets the whole A2A message as its input (`messageId`, `contextId`,
    /// `text`, `parts`, `metadata`) instead of the message's data or text.
    #[serde(default)]
    pub message_input: Vec<String>,
    /// Lets push notifications go to loopback addresses (127.0.0.0/8, ::1, `localhost`), for
    /// a receiver on the same machine, as tests need. Private, link-local and reserved
    /// addresses stay refused.
    #[serde(default)]
    pub allow_loopback_webhooks: bool,
    /// Signs every push notification with this secret: a `Longrun-Signature: t=<unix
    /// seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` header (`docs/a2a.md`). Unset, nothing
    /// is signed.
    pub webhook_secret: Option<WebhookSecret>,
    /// The longest a blocking `SendMessage` waits for its task to end or ask, in milliseconds;
    /// then it answers with the task as it stands. Never longer than `[limits] max_wait_ms`,
    /// which is also the default.
    pub max_blocking_ms: Option<u64>,
    /// Serve the agent card with A2A 0.3's fields (`url`, `protocolVersion`, …) to requests
    /// that name no version, for 0.3-only clients. By default only a request that says
    /// `A2A-Version: 0.3` gets them: A2A 1.0's card schema allows no other fields.
    #[serde(default)]
    pub legacy_card: bool,
}

/// Why the A2A door could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The push-notification store could not be opened.
    #[error("cannot open the A2A push-notification store {}: {source}", path.display())]
    PushStore {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The webhook HTTP client could not be built.
    #[error("cannot build the A2A webhook client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The A2A routes over the surface's runtime and its kinds, for the callers its gate admits;
/// `public_url` is where clients reach this server (`http://host:port`), for the agent card.
/// Open streams and push deliveries end when the surface shuts down. Call inside a tokio
/// runtime, after the runtime has recovered its tasks: push deliveries stored by an earlier run
/// resume here.
///
/// ```
/// use axum::{body::Body, http::Request};
/// use longrun::{Context, KindSpec, Runtime, TaskError};
/// use longrun_surface::{Auth, Limits, Surface};
/// use serde_json::{Value, json};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(Default::default());
/// runtime.register(KindSpec::new("shout"), |_ctx: Context, text: String| async move {
///     Ok::<_, TaskError>(text.to_uppercase())
/// })?;
/// let surface = Surface::new(runtime, Auth::Anonymous, Limits::default());
/// let app = longrun_a2a::router(
///     surface,
///     longrun_a2a::Config::default(),
///     "http://127.0.0.1:7700".into(),
/// )?;
///
/// // A2A 1.0 over JSON-RPC: a message starts a task of the only kind and waits for it.
/// let request = Request::post("/a2a")
///     .header("host", "127.0.0.1:7700")
///     .header("content-type", "application/json")
///     .header("A2A-Version", "1.0")
///     .body(Body::from(json!({
///         "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
///         "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
///     }).to_string()))?;
/// let response = app.oneshot(request).await?;
/// let body: Value = serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await?)?;
/// let task = &body["result"]["task"];
/// assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
/// assert_eq!(task["status"]["message"]["parts"][0]["text"], "HI");
/// # Ok(()) }
/// ```
pub fn router(surface: Surface, config: Config, public_url: String) -> Result<Router, Error> {
    let runtime = surface.runtime().clone();
    let store = match &config.push_store {
        Some(path) => push::store::Store::open(path).map_err(|source| Error::PushStore {
            path: path.clone(),
            source,
        })?,
        None => push::store::Store::memory(),
    };
    let policy = longrun_delivery::Policy {
        allow_loopback: config.allow_loopback_webhooks,
    };
    let push = push::Push::new(
        store,
        runtime.clone(),
        policy,
        longrun_delivery::Retry::default(),
        config.webhook_secret.as_ref(),
        surface.shutdown_token(),
    )?;
    push.resume();
    let body_limit = surface.limits().body_bytes;
    let max_blocking = surface
        .limits()
        .wait(config.max_blocking_ms.map(Duration::from_millis));
    let door = Door {
        shared: Arc::new(Shared {
            surface,
            public_url: public_url.trim_end_matches('/').to_owned(),
            push,
            max_blocking,
            #[expect(
                clippy::disallowed_methods,
                reason = "the agent card's Last-Modified is the process's real start, an HTTP header, not task time"
            )]
            started: std::time::SystemTime::now(),
            config,
        }),
    };
    let routes = Router::new()
        .route(card::PATH, get(card::serve))
        .route("/a2a", any(jsonrpc::handle))
        // Some clients (the A2A TCK's) normalise the interface URL with a trailing slash.
        .route("/a2a/", any(jsonrpc::handle))
        .route("/a2a/{*path}", any(rest::handle))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(door);
    Ok(longrun_surface::with_retry_after(routes))
}

/// The door's shared state. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct Door {
    shared: Arc<Shared>,
}

struct Shared {
    /// What every door shares: the runtime, the gate, the limits, starting and finding a
    /// caller's tasks, and the doors' stopping.
    surface: Surface,
    config: Config,
    public_url: String,
    push: push::Push,
    /// The longest a blocking `SendMessage` waits: the config's, within the surface's cap.
    max_blocking: Duration,
    /// When the router was built: the card's `Last-Modified` (kinds are registered before).
    started: std::time::SystemTime,
}

impl Door {
    pub(crate) fn runtime(&self) -> &Runtime {
        self.shared.surface.runtime()
    }

    pub(crate) fn surface(&self) -> &Surface {
        &self.shared.surface
    }

    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    pub(crate) fn public_url(&self) -> &str {
        &self.shared.public_url
    }

    pub(crate) fn push(&self) -> &push::Push {
        &self.shared.push
    }

    pub(crate) fn max_blocking(&self) -> Duration {
        self.shared.max_blocking
    }

    pub(crate) fn started(&self) -> std::time::SystemTime {
        self.shared.started
    }
}
