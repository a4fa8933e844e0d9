//! [`Client`]: one connection to an MCP server of either generation, and [`TaskCall`], the
//! builder of a tool call run as a task.

#![allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); MCP Tasks still carry it.

use std::{future::Future, sync::Arc, time::Duration};

use rmcp::model::{
    CallToolResult, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, Implementation,
};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, RpcError},
    handlers::{Handlers, Responder},
    legacy::Legacy,
    model::{Protocol, TaskInfo, TaskPage, ToolInfo, Update},
    modern::Modern,
    route::{Call, Router},
    run::Run,
    target::Target,
};

/// How long `server/discover` may take before a server is taken for a 2025-11-25 one.
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(10);

enum Session {
    Modern(Box<Modern>),
    Legacy(Box<Legacy>),
}

/// A connection to one MCP server.
///
/// ```no_run
/// use longrun_mcp_client::{Client, Target, model::ElicitResult, model::ElicitationAction};
///
/// # async fn run() -> Result<(), longrun_mcp_client::Error> {
/// let client = Client::builder(Target::http("http://127.0.0.1:3001/mcp"))
///     .elicitation(|_params| async { ElicitResult::new(ElicitationAction::Decline) })
///     .connect()
///     .await?;
/// let result = client
///     .task()
///     .with_ttl(10_000)
///     .call_tool("my_long_tool", serde_json::json!({"seconds": 3}))
///     .await?;
/// println!("{:?}", result.content);
/// client.close().await;
/// # Ok(()) }
/// ```
pub struct Client {
    session: Session,
    target: Target,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target.to_string())
            .field("protocol", &self.protocol())
            .finish()
    }
}

/// Builds a [`Client`]: where, which protocol, and the handlers that answer questions.
#[derive(Debug)]
pub struct Builder {
    target: Target,
    protocol: Protocol,
    handlers: Handlers,
    relays: bool,
    name: String,
    version: String,
}

impl Builder {
    /// Which protocol generation to speak; [`Protocol::Auto`] (the default) tries 2026-07-28
    /// first and falls back to 2025-11-25.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The handler that answers elicitations (a question for a person). Without one, the
    /// client does not declare the capability, and declines any elicitation it gets anyway.
    pub fn elicitation<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ElicitRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ElicitResult> + Send + 'static,
    {
        self.handlers.elicitation(handler);
        self
    }

    /// The handler that answers sampling requests (a message for a language model). Without
    /// one, the client does not declare the capability, and refuses them.
    pub fn sampling<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CreateMessageRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CreateMessageResult, RpcError>> + Send + 'static,
    {
        self.handlers.sampling(handler);
        self
    }

    /// The name and version this client gives the server (`clientInfo`).
    pub fn client_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.name = name.into();
        self.version = version.into();
        self
    }

    /// Calls bring their own responders (the gateway): declare both capabilities.
    pub(crate) fn relays(mut self) -> Self {
        self.relays = true;
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<Client, Error> {
        let router = Router::new(self.handlers, self.relays);
        let info = Implementation::new(self.name, self.version);
        let session = match self.protocol {
            Protocol::V2026_07_28 => Session::Modern(Box::new(
                Modern::connect(&self.target, router.clone(), info).await?,
            )),
            Protocol::V2025_11_25 => Session::Legacy(Box::new(
                Legacy::connect(&self.target, router.clone(), &info).await?,
            )),
            Protocol::Auto => {
                let modern = tokio::time::timeout(
                    DISCOVER_TIMEOUT,
                    Modern::connect(&self.target, router.clone(), info.clone()),
                )
                .await;
                match modern {
                    Ok(Ok(modern)) => Session::Modern(Box::new(modern)),
                    Ok(Err(error)) if refused_credentials(&error) => return Err(error),
                    // Not a 2026-07-28 server (or it said nothing in time): the older handshake
                    // on a fresh connection, so nothing of the probe lingers in it.
                    modern => {
                        let legacy = Legacy::connect(&self.target, router.clone(), &info).await;
                        match (legacy, modern) {
                            (Ok(legacy), _) => Session::Legacy(Box::new(legacy)),
                            (Err(legacy), Ok(Err(modern))) => {
                                return Err(Error::Connect {
                                    target: self.target.to_string(),
                                    reason: format!(
                                        "neither protocol generation worked: 2026-07-28: {}; 2025-11-25: {}",
                                        reason(&modern),
                                        reason(&legacy)
                                    ),
                                });
                            }
                            (Err(legacy), _) => return Err(legacy),
                        }
                    }
                }
            }
        };
        Ok(Client {
            session,
            target: self.target,
        })
    }
}

/// What went wrong, without repeating the target a connect error names.
fn reason(error: &Error) -> String {
    match error {
        Error::Connect { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Whether a connect failed on credentials (no point in trying the other generation).
fn refused_credentials(error: &Error) -> bool {
    matches!(error, Error::Connect { reason, .. } if reason == crate::modern::UNAUTHORIZED)
}

impl Client {
    /// Starts building a client for `target`.
    pub fn builder(target: Target) -> Builder {
        Builder {
            target,
            protocol: Protocol::Auto,
            handlers: Handlers::default(),
            relays: false,
            name: "longrun-mcp-client".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Connects to `target` with the defaults (automatic protocol, no handlers).
    pub async fn connect(target: Target) -> Result<Self, Error> {
        Self::builder(target).connect().await
    }

    /// The protocol generation the connection speaks.
    pub fn protocol(&self) -> Protocol {
        match &self.session {
            Session::Modern(_) => Protocol::V2026_07_28,
            Session::Legacy(_) => Protocol::V2025_11_25,
        }
    }

    /// The exact protocol version the server agreed to.
    pub fn protocol_version(&self) -> &str {
        match &self.session {
            Session::Modern(_) => "2026-07-28",
            Session::Legacy(legacy) => legacy.version(),
        }
    }

    /// Whether the server runs tool calls as tasks: the tasks extension (2026-07-28), or
    /// `capabilities.tasks.requests.tools.call` (2025-11-25).
    pub fn supports_tasks(&self) -> bool {
        match &self.session {
            Session::Modern(_) => true,
            Session::Legacy(legacy) => legacy.runs_tool_tasks(),
        }
    }

    /// The server's tools, every page.
    pub async fn list_tools(&self) -> Result<Vec<ToolInfo>, Error> {
        match &self.session {
            Session::Modern(modern) => modern.list_tools().await,
            Session::Legacy(legacy) => legacy.list_tools().await,
        }
    }

    /// Starts a tool call run as a task (see [`TaskCall`]).
    pub fn task(&self) -> TaskCall<'_> {
        TaskCall {
            client: self,
            ttl: None,
            cancel: None,
            updates: None,
            responder: None,
        }
    }

    /// Calls a tool without a TTL; a tool that must run as a task still does.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: impl Serialize,
    ) -> Result<CallToolResult, Error> {
        self.task().call_tool(name, arguments).await
    }

    /// `tasks/get`: the task as the server describes it now. An unknown (or another
    /// principal's, or expired) task is [`Error::Rpc`] with code `-32602`.
    pub async fn get_task(&self, id: &str) -> Result<TaskInfo, Error> {
        match &self.session {
            Session::Modern(modern) => modern.get_task(id).await,
            Session::Legacy(legacy) => legacy.get_task(id).await,
        }
    }

    /// `tasks/cancel`. On 2026-07-28 servers this is a request (the task may still end
    /// otherwise); on 2025-11-25 servers the task is `cancelled` when this returns, and a task
    /// that had already ended is an error (`-32602`).
    pub async fn cancel_task(&self, id: &str) -> Result<(), Error> {
        match &self.session {
            Session::Modern(modern) => modern.cancel_task(id).await,
            Session::Legacy(legacy) => legacy.cancel_task(id).await,
        }
    }

    /// `tasks/list`: one page of the tasks the server keeps for this client. Only 2025-11-25
    /// servers that declare `capabilities.tasks.list` have it; otherwise
    /// [`Error::Unsupported`] (2026-07-28 removed the method).
    pub async fn list_tasks(&self, cursor: Option<&str>) -> Result<TaskPage, Error> {
        match &self.session {
            Session::Modern(_) => Err(Error::Unsupported(
                "tasks/list is not part of protocol 2026-07-28 (the tasks extension removed it); \
                 keep the ids of the tasks you start"
                    .to_owned(),
            )),
            Session::Legacy(legacy) => legacy.list_tasks(cursor).await,
        }
    }

    /// Closes the connection (a stdio server's program is stopped).
    pub async fn close(mut self) {
        match &mut self.session {
            Session::Modern(modern) => modern.close().await,
            Session::Legacy(legacy) => legacy.close().await,
        }
    }

    async fn run(
        &self,
        name: &str,
        arguments: Value,
        run: &Run,
        call: &Arc<Call>,
    ) -> Result<CallToolResult, Error> {
        match &self.session {
            Session::Modern(modern) => modern.run(name, arguments, run, call).await,
            Session::Legacy(legacy) => legacy.run(name, arguments, run, call).await,
        }
    }
}

type UpdateFn = dyn Fn(Update) + Send + Sync;

/// A tool call run as a task: `client.task().with_ttl(ms).call_tool(name, args)`.
///
/// On a 2025-11-25 server the call is task-augmented when the server and the tool allow it
/// (`execution.taskSupport` optional or required) and made plainly otherwise; on a 2026-07-28
/// server the server decides. Either way the call returns the tool's result once the task
/// ends, polling at the server's interval, answering the task's questions with the client's
/// handlers, and reporting what happens to [`on_update`](Self::on_update).
pub struct TaskCall<'a> {
    client: &'a Client,
    ttl: Option<Duration>,
    cancel: Option<CancellationToken>,
    updates: Option<Arc<UpdateFn>>,
    responder: Option<Arc<dyn Responder>>,
}

impl TaskCall<'_> {
    /// The longest the call may take, in milliseconds: asked of the server as the task's
    /// `ttl` (2025-11-25), and kept by the client, which cancels the task when it runs out and
    /// fails with [`Error::TtlExpired`].
    pub fn with_ttl(mut self, ttl_ms: u64) -> Self {
        self.ttl = Some(Duration::from_millis(ttl_ms));
        self
    }

    /// Cancels the call when `token` is cancelled: `tasks/cancel` for a task,
    /// `notifications/cancelled` for a plain call; the call fails with [`Error::Cancelled`].
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Called with every [`Update`]: the task's creation, each change of its status or status
    /// message, progress notifications, and each question the server asks.
    pub fn on_update(mut self, f: impl Fn(Update) + Send + Sync + 'static) -> Self {
        self.updates = Some(Arc::new(f));
        self
    }

    /// Answers this call's questions with `responder` instead of the client's handlers.
    pub(crate) fn answer_with(mut self, responder: Arc<dyn Responder>) -> Self {
        self.responder = Some(responder);
        self
    }

    /// Calls `name` with `arguments` (anything that serializes to a JSON object; `()` for
    /// none) and returns its result. A result with `isError: true` is returned as it is: it is
    /// the tool's own answer. A task that fails with a JSON-RPC error is
    /// [`Error::TaskFailed`].
    pub async fn call_tool(
        self,
        name: &str,
        arguments: impl Serialize,
    ) -> Result<CallToolResult, Error> {
        let arguments = match serde_json::to_value(arguments) {
            Ok(Value::Null) => Value::Object(Default::default()),
            Ok(Value::Array(pairs)) => pairs_to_object(pairs)?,
            Ok(value) => value,
            Err(e) => {
                return Err(Error::Unsupported(format!(
                    "the tool arguments could not be serialized: {e}"
                )));
            }
        };
        let call = Call::new(self.updates, self.responder);
        let run = Run::new(self.ttl, self.cancel);
        self.client.run(name, arguments, &run, &call).await
    }
}

/// `[("city", "London"), ...]` (as Neva takes arguments) to `{"city": "London", ...}`.
fn pairs_to_object(pairs: Vec<Value>) -> Result<Value, Error> {
    let mut object = serde_json::Map::new();
    for pair in pairs {
        match pair {
            Value::Array(mut kv) if kv.len() == 2 => {
                let value = kv.pop().unwrap_or(Value::Null);
                let Some(Value::String(key)) = kv.pop() else {
                    return Err(Error::Unsupported(
                        "tool arguments given as pairs need string keys".to_owned(),
                    ));
                };
                object.insert(key, value);
            }
            _ => {
                return Err(Error::Unsupported(
                    "tool arguments must be a JSON object or a list of (key, value) pairs"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(Value::Object(object))
}
