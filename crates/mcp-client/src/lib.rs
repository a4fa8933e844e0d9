//! `longrun-mcp-client`: call an MCP tool as a task, on a server of either MCP Tasks generation;
//! and the gateway that makes the tools of upstream MCP servers longrun kinds.
//!
//! # The task client
//!
//! [`Client`] connects over Streamable HTTP (a URL, optionally with a bearer token) or stdio (a
//! command), speaking protocol **2026-07-28** with the tasks extension
//! `io.modelcontextprotocol/tasks` or protocol **2025-11-25** with its experimental tasks:
//! [`Protocol::Auto`] tries `server/discover` and falls back to `initialize`.
//!
//! `client.task().with_ttl(ms).call_tool(name, args)` runs a tool as a task and returns its
//! result: it polls `tasks/get` at the server's interval; answers the task's questions
//! (elicitations and sampling requests) with the handlers registered on the client, whether they
//! come as JSON-RPC requests during `tasks/result` (2025-11-25) or as `inputRequests` answered
//! with `tasks/update` (2026-07-28); reports status changes and progress to
//! [`TaskCall::on_update`]; and when the TTL runs out it cancels the task and fails with
//! [`Error::TtlExpired`]. A tool that does not run as a task is called plainly. [`Client`] also
//! has `get_task`, `cancel_task` and `list_tasks` (where the server has it).
//!
//! ```no_run
//! use longrun_mcp_client::{Client, Target, Update};
//! use longrun_mcp_client::model::{ElicitRequestParams, ElicitResult, ElicitationAction};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), longrun_mcp_client::Error> {
//! let client = Client::builder(Target::http("http://127.0.0.1:3001/mcp"))
//!     .elicitation(|params: ElicitRequestParams| async move {
//!         // Ask a person; here, always the same answer.
//!         ElicitResult::new(ElicitationAction::Accept)
//!             .with_content(json!({"interpretation": "programming"}))
//!     })
//!     .connect()
//!     .await?;
//!
//! let result = client
//!     .task()
//!     .with_ttl(60_000)
//!     .on_update(|update| {
//!         if let Update::Status(task) = update {
//!             println!("{}: {:?}", task.status, task.status_message);
//!         }
//!     })
//!     .call_tool("simulate-research-query", json!({"topic": "python", "ambiguous": true}))
//!     .await?;
//! println!("{:?}", result.content);
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! # The gateway
//!
//! [`gateway::register_upstreams`] connects to upstream MCP servers and registers each of
//! their tools as a kind `<upstream>.<tool>` of a [`longrun::Runtime`]: a slow tool of any MCP
//! server becomes a longrun task, with its progress relayed, its questions asked through
//! `ctx.ask`, and cancellation passed on.
//!
//! # Why two stacks
//!
//! 2026-07-28 runs on rmcp (transports, lifecycle, typed tasks). rmcp 3.x removed 2025-11-25
//! tasks, and its result decoding drops the fields that generation needs, so 2025-11-25 runs on
//! a small hand-written JSON-RPC layer (`legacy`); see that module's docs.

mod client;
mod error;
pub mod gateway;
mod handlers;
mod legacy;
pub mod model;
mod modern;
mod route;
mod run;
mod target;

pub use client::{Builder, Client, TaskCall};
pub use error::{Error, RpcError};
pub use model::{Protocol, Status, TaskInfo, TaskPage, TaskSupport, ToolInfo, Update};
pub use target::Target;
