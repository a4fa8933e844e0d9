//! `longrun-mcp`: longrun's MCP door.
//!
//! Every kind of a [`Runtime`] is an MCP tool, and every call of one runs as a longrun task:
//! durable, owned by the caller's principal, visible to the other doors (the HTTP API, the
//! dashboard) like any other task. [`router`] serves it at `/mcp` over Streamable HTTP for a
//! `longrun serve`; [`serve_stdio`] serves the same over a process's stdin and stdout
//! (`longrun mcp --config PATH`).
//!
//! Both MCP generations are spoken, each with its own flavour of tasks, chosen per request as
//! SEP-2663's compatibility table prescribes:
//!
//! - **2026-07-28** (stateless, `_meta` on every request, `server/discover`) with the tasks
//!   extension `io.modelcontextprotocol/tasks`: `tasks/get` (questions, result or error
//!   inlined), `tasks/update`, `tasks/cancel`, and `notifications/tasks` on a
//!   `subscriptions/listen` stream; questions of plain calls come back as
//!   `InputRequiredResult`s (SEP-2322).
//! - **2025-11-25** (sessions opened by `initialize`) with the experimental core tasks:
//!   `execution.taskSupport` per tool, `params.task`, `tasks/get`, blocking `tasks/result`
//!   (which sends the task's questions as `elicitation/create` and `sampling/createMessage`
//!   requests), `tasks/list`, `tasks/cancel`, `notifications/tasks/status`.
//!
//! Both serve tasks' artifacts as resources, and the prompts and resources of the config; a
//! 2025-11-25 client that lost an SSE stream resumes it with `Last-Event-ID`.
//!
//! [`client`] is the other side: a task client for MCP servers of either generation, and the
//! gateway that registers an upstream server's tools as kinds.
//!
//! `docs/mcp.md` is the user's guide: how kinds become tools, how a handler's question becomes
//! an elicitation or a sampling request, which methods each generation serves, and the errors.
//!
//! ```
//! use longrun::{Context, KindSpec, Runtime, TaskError};
//! use longrun_surface::Principal;
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(Default::default());
//! runtime.register(KindSpec::new("double"), |_ctx: Context, n: u64| async move {
//!     Ok::<_, TaskError>(n * 2)
//! })?;
//!
//! // The client's end of a stdio connection, in memory.
//! let (client, server) = tokio::io::duplex(64 * 1024);
//! let (server_in, server_out) = tokio::io::split(server);
//! let door = longrun_mcp::serve_stdio(
//!     runtime,
//!     Principal::from("me"),
//!     Default::default(),
//!     server_in,
//!     server_out,
//! );
//! let talk = async move {
//!     let (reply, mut request) = tokio::io::split(client);
//!     let meta = r#""_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
//!                  "io.modelcontextprotocol/clientCapabilities": {}}"#.replace('\n', " ");
//!     let call = format!(
//!         r#"{{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
//!              "params": {{"name": "double", "arguments": {{"input": 21}}, {meta}}}}}"#
//!     ).replace('\n', " ");
//!     request.write_all(format!("{call}\n").as_bytes()).await?;
//!     let answer = BufReader::new(reply).lines().next_line().await?.unwrap_or_default();
//!     drop(request); // end of input: the door stops
//!     Ok::<_, std::io::Error>(answer)
//! };
//! let (served, answer) = tokio::join!(door, talk);
//! served?;
//! let answer: serde_json::Value = serde_json::from_str(&answer?)?;
//! assert_eq!(answer["result"]["content"][0]["text"], "42");
//! # Ok(()) }
//! ```

mod call;
mod config;
mod error;
mod http;
mod input;
mod jsonrpc;
mod legacy;
mod modern;
mod notify;
mod prompts;
mod resources;
mod resume;
mod server;
mod session;
mod stdio;
mod time;
mod tools;
mod version;
mod view;

use axum::Router;
use longrun::Runtime;
use longrun_surface::{Auth, Limits, Principal, Surface};

pub use config::Config;
/// The other side of MCP: call a tool of any MCP server as a task, and the gateway that makes
/// upstream MCP servers' tools longrun kinds (`longrun-mcp-client`, re-exported so one crate
/// holds all of longrun's MCP).
pub use longrun_mcp_client as client;

/// The `/mcp` endpoint over the surface's runtime and its kinds, for the callers its gate
/// admits. Open streams end when the surface shuts down; the tasks they followed go on.
pub fn router(surface: Surface, config: Config) -> Router {
    let server = server::Server::new(surface.clone(), config);
    longrun_surface::with_retry_after(http::router(http::Http { server, surface }))
}

/// Serves MCP over a process's stdin and stdout (newline-delimited JSON-RPC) until `input`
/// ends. Every request is `principal`'s: stdio has no tokens, its user is whoever started it.
/// Logs never go to `output`, which carries the protocol only.
pub async fn serve_stdio<R, W>(
    runtime: Runtime,
    principal: Principal,
    config: Config,
    input: R,
    output: W,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send,
    W: tokio::io::AsyncWrite + Unpin + Send,
{
    // stdio has one caller and no HTTP: the surface only starts and finds its tasks.
    let surface = Surface::new(runtime, Auth::Anonymous, Limits::default());
    let server = server::Server::new(surface, config);
    stdio::serve(server, principal, input, output).await
}
