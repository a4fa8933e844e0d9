//! Protocol 2026-07-28 with the tasks extension `io.modelcontextprotocol/tasks` (SEP-2663), on
//! rmcp: its transports (Streamable HTTP, child-process stdio), its `server/discover`
//! lifecycle (which puts the protocol version, client info and capabilities, the extension
//! among them, in every request's `_meta`), and its typed `tasks/get`, `tasks/update` and
//! `tasks/cancel`.
//!
//! The server decides per call whether a call becomes a task: `tools/call` answers with the
//! result, with an MRTR `InputRequiredResult` (answered and retried here), or with a
//! `CreateTaskResult`, which is polled with `tasks/get` at `pollIntervalMs`. A task's
//! questions come as `inputRequests`, a snapshot repeated until answered: each key is answered
//! once (answers run concurrently with the polling, a person may take a while) and sent with
//! `tasks/update`.

#![allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); MCP Tasks still carry it.

use std::{collections::BTreeMap, sync::Arc};

use futures_util::{StreamExt, stream::FuturesUnordered};
use rmcp::{
    ClientHandler,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResult, CancelTaskParams,
        CancelledNotification, CancelledNotificationParam, ClientCapabilities, ClientConfig,
        ClientNotification, ClientRequest, CreateMessageRequestParams, CreateMessageResult,
        ElicitRequestParams, ElicitResult, ElicitationCapability, ErrorData, GetTaskParams,
        Implementation, InputRequest, InputRequests, JsonObject, ProgressNotificationParam,
        ProtocolVersion, RequestId, SamplingCapability, ServerResult, TaskPayload,
        TaskStatusNotificationParams, UpdateTaskParams,
    },
    service::{
        ClientLifecycleMode, InboundStreamOrigin, NotificationContext, Peer, PeerRequestOptions,
        RequestContext, RoleClient, RunningService, ServiceError, serve_client_with_lifecycle,
    },
    transport::{
        ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;

use crate::{
    error::{Error, RpcError},
    handlers::Input,
    model::{TaskInfo, ToolInfo},
    route::{Call, Router, id_key},
    run::{self, Outcome, Run},
    target::Target,
};

/// The reason of a connect refused for its credentials (so no other generation is tried).
pub(crate) const UNAUTHORIZED: &str =
    "the server refused the credentials (HTTP 401 or 403): check the bearer token";

/// How many MRTR rounds a call may take before it is given up (rmcp's default cap).
const MAX_INPUT_ROUNDS: usize = rmcp::model::DEFAULT_MRTR_MAX_ROUNDS;

/// rmcp's callbacks, routed (see [`Router`]).
pub(crate) struct Bridge {
    router: Arc<Router>,
    config: ClientConfig,
}

impl Bridge {
    fn origin<R: rmcp::service::ServiceRole>(context: &RequestContext<R>) -> Option<String> {
        match context.extensions.get::<InboundStreamOrigin>() {
            Some(InboundStreamOrigin::OutboundRequest(id)) => Some(request_key(id)),
            _ => None,
        }
    }
}

fn request_key(id: &RequestId) -> String {
    serde_json::to_value(id)
        .map(|v| id_key(&v))
        .unwrap_or_default()
}

fn mcp_error(error: RpcError) -> ErrorData {
    ErrorData::new(
        rmcp::model::ErrorCode(i32::try_from(error.code).unwrap_or(-32603)),
        error.message,
        error.data,
    )
}

impl ClientHandler for Bridge {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let key = format!("elicitation-{}", request_key(&context.id));
        let origin = Self::origin(&context);
        let answer = self
            .router
            .answer(key, Input::Elicit(request), None, origin.as_deref())
            .await
            .map_err(mcp_error)?;
        serde_json::from_value(answer).map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let key = format!("sampling-{}", request_key(&context.id));
        let origin = Self::origin(&context);
        let answer = self
            .router
            .answer(key, Input::Sample(params), None, origin.as_deref())
            .await
            .map_err(mcp_error)?;
        serde_json::from_value(answer).map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(params) = serde_json::to_value(params) {
            self.router.progress(&params);
        }
    }

    async fn on_task_status(
        &self,
        params: TaskStatusNotificationParams,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(params) = serde_json::to_value(params) {
            self.router.task_status(&params);
        }
    }

    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }
}

/// A 2026-07-28 connection.
pub(crate) struct Modern {
    service: RunningService<RoleClient, Bridge>,
}

impl Modern {
    /// Connects with `server/discover`; fails (without falling back) when the server does not
    /// speak 2026-07-28.
    pub(crate) async fn connect(
        target: &Target,
        router: Arc<Router>,
        client: Implementation,
    ) -> Result<Self, Error> {
        let mut capabilities = ClientCapabilities::default();
        let mut extensions = rmcp::model::ExtensionCapabilities::new();
        extensions.insert(
            rmcp::model::TASKS_EXTENSION_ID.to_owned(),
            JsonObject::new(),
        );
        capabilities.extensions = Some(extensions);
        if router.answers(Input::ELICIT) {
            capabilities.elicitation = Some(ElicitationCapability::default());
        }
        if router.answers(Input::SAMPLE) {
            capabilities.sampling = Some(SamplingCapability::default());
        }
        let config = ClientConfig::new(capabilities, client)
            .with_protocol_version(ProtocolVersion::V_2026_07_28);
        let bridge = Bridge { router, config };
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        let failed = |reason: String| Error::Connect {
            target: target.to_string(),
            reason,
        };
        let service = match target {
            Target::Http { url, token } => {
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                if let Some(token) = token {
                    config = config.auth_header(token.clone());
                }
                let transport = StreamableHttpClientTransport::from_config(config);
                serve_client_with_lifecycle(bridge, transport, lifecycle).await
            }
            Target::Stdio { command, args, env } => {
                let command = tokio::process::Command::new(command).configure(|c| {
                    c.args(args).envs(env);
                });
                let transport = TokioChildProcess::new(command)
                    .map_err(|e| failed(format!("could not start it: {e}")))?;
                serve_client_with_lifecycle(bridge, transport, lifecycle).await
            }
        };
        let service = service.map_err(|e| {
            if e.is_authorization_required() {
                failed(UNAUTHORIZED.to_owned())
            } else {
                failed(e.to_string())
            }
        })?;
        Ok(Self { service })
    }

    fn peer(&self) -> &Peer<RoleClient> {
        self.service.peer()
    }

    /// Every tool, all pages.
    pub(crate) async fn list_tools(&self) -> Result<Vec<ToolInfo>, Error> {
        let tools = self
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| service_error("tools/list", e))?;
        Ok(tools
            .iter()
            .filter_map(|tool| serde_json::to_value(tool).ok())
            .filter_map(|tool| ToolInfo::from_wire(&tool))
            .collect())
    }

    /// `tasks/get`, with the status-specific payload.
    async fn poll(&self, id: &str) -> Result<(TaskInfo, TaskPayload), Error> {
        let got = self
            .peer()
            .get_task(GetTaskParams::new(id))
            .await
            .map_err(|e| service_error("tasks/get", e))?;
        let info = serde_json::to_value(&got.task.task)
            .ok()
            .and_then(|v| TaskInfo::from_wire(&v))
            .ok_or_else(|| Error::protocol("tasks/get", "not a task"))?;
        Ok((info, got.task.payload))
    }

    /// `tasks/get`.
    pub(crate) async fn get_task(&self, id: &str) -> Result<TaskInfo, Error> {
        self.poll(id).await.map(|(info, _)| info)
    }

    /// `tasks/cancel` (an acknowledgement; the task may still end otherwise).
    pub(crate) async fn cancel_task(&self, id: &str) -> Result<(), Error> {
        self.peer()
            .cancel_task(CancelTaskParams::new(id))
            .await
            .map_err(|e| service_error("tasks/cancel", e))
    }

    /// Sends `notifications/cancelled` for a plain request.
    async fn cancel_request(&self, id: RequestId, reason: String) {
        let notification =
            CancelledNotification::new(CancelledNotificationParam::new(Some(id), Some(reason)));
        let sent = self
            .peer()
            .send_notification(ClientNotification::CancelledNotification(notification))
            .await;
        if let Err(error) = sent {
            tracing::debug!(target: "longrun::mcp_client", %error, "could not send notifications/cancelled");
        }
    }

    /// Calls a tool; the server decides whether it becomes a task.
    pub(crate) async fn run(
        &self,
        name: &str,
        arguments: Value,
        run: &Run,
        call: &Arc<Call>,
    ) -> Result<CallToolResult, Error> {
        let arguments = match arguments {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                return Err(Error::Unsupported(format!(
                    "tool arguments must be a JSON object, not {other}"
                )));
            }
        };
        let mut params = CallToolRequestParams::new(name.to_owned());
        params.arguments = arguments;
        for _round in 0..MAX_INPUT_ROUNDS {
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params.clone()));
            let handle = self
                .peer()
                .send_request_with_option(request, PeerRequestOptions::no_options())
                .await
                .map_err(|e| service_error("tools/call", e))?;
            let id = handle.id.clone();
            let id_value = serde_json::to_value(&id).unwrap_or(Value::Null);
            let token = serde_json::to_value(&handle.progress_token).unwrap_or(Value::Null);
            let _origin = self.router().request(&id_value, call);
            let _progress = self.router().token(&token, call);
            let answer = match run.race(handle.await_response()).await {
                Outcome::Done(answer) => answer.map_err(|e| service_error("tools/call", e))?,
                Outcome::Stopped(stop) => {
                    self.cancel_request(id, stop.reason()).await;
                    return Err(stop.into_error(String::new()));
                }
            };
            match answer {
                ServerResult::CallToolResult(result) => return Ok(result),
                ServerResult::CreateTaskResult(created) => {
                    let task = serde_json::to_value(&created.task)
                        .ok()
                        .and_then(|v| TaskInfo::from_wire(&v))
                        .ok_or_else(|| Error::protocol("tools/call", "a task without an id"))?;
                    return self.drive(task, run, call).await;
                }
                ServerResult::InputRequiredResult(asked) => {
                    let requests = asked.input_requests.unwrap_or_default();
                    let answers = match run.race(self.answer_all(requests, call)).await {
                        Outcome::Done(answers) => answers?,
                        Outcome::Stopped(stop) => return Err(stop.into_error(String::new())),
                    };
                    params.input_responses = (!answers.is_empty()).then_some(answers);
                    params.request_state = asked.request_state;
                }
                other => {
                    return Err(Error::protocol(
                        "tools/call",
                        format!("an answer that is no tool result: {other:?}"),
                    ));
                }
            }
        }
        Err(Error::protocol(
            "tools/call",
            format!("the server asked for input more than {MAX_INPUT_ROUNDS} times"),
        ))
    }

    fn router(&self) -> &Arc<Router> {
        &self.service.service().router
    }

    /// Answers every request of an MRTR round (all at once; the retry needs them all).
    async fn answer_all(
        &self,
        requests: InputRequests,
        call: &Arc<Call>,
    ) -> Result<BTreeMap<String, Value>, Error> {
        let mut pending: FuturesUnordered<_> = requests
            .into_iter()
            .map(|(key, request)| self.answer_one(key, request, call))
            .collect();
        let mut answers = BTreeMap::new();
        while let Some((key, answer)) = pending.next().await {
            let answer = answer.map_err(|error| Error::Rpc {
                method: "tools/call".to_owned(),
                error: RpcError::new(
                    error.code,
                    format!(
                        "could not answer the server's question `{key}`: {}",
                        error.message
                    ),
                ),
            })?;
            answers.insert(key, answer);
        }
        Ok(answers)
    }

    async fn answer_one(
        &self,
        key: String,
        request: InputRequest,
        call: &Arc<Call>,
    ) -> (String, Result<Value, RpcError>) {
        let input = match request {
            InputRequest::Elicitation(request) => Input::Elicit(request.params),
            InputRequest::CreateMessage(request) => Input::Sample(request.params),
            InputRequest::ListRoots(_) => return (key, Ok(serde_json::json!({"roots": []}))),
            _ => {
                let error = RpcError::new(
                    RpcError::METHOD_NOT_FOUND,
                    "an input request of a kind this client does not know",
                );
                return (key, Err(error));
            }
        };
        let answer = self.router().answer_for(call, key.clone(), input).await;
        (key, answer)
    }

    /// Polls a task to its end, answering its questions as they come.
    async fn drive(
        &self,
        task: TaskInfo,
        run: &Run,
        call: &Arc<Call>,
    ) -> Result<CallToolResult, Error> {
        let id = task.id.clone();
        let _routed = self.router().task(&id, call);
        call.observe(&task);
        let mut interval = run::poll_interval(task.poll_interval);
        // Keys answered or being answered; `inputRequests` repeats them until they are.
        let mut asked = std::collections::HashSet::new();
        let mut answering = FuturesUnordered::new();
        loop {
            let step = async {
                tokio::select! {
                    Some(answered) = answering.next(), if !answering.is_empty() => Some(answered),
                    () = tokio::time::sleep(interval) => None,
                }
            };
            let step = match run.race(step).await {
                Outcome::Done(step) => step,
                Outcome::Stopped(stop) => {
                    if let Err(error) = self.cancel_task(&id).await {
                        tracing::debug!(target: "longrun::mcp_client", task = %id, %error, "tasks/cancel failed");
                    }
                    return Err(stop.into_error(id));
                }
            };
            if let Some((key, answer)) = step {
                self.deliver(&id, key, answer).await?;
                continue;
            }
            let (info, payload) = self.poll(&id).await?;
            call.observe(&info);
            interval = run::poll_interval(info.poll_interval.or(Some(interval)));
            match payload {
                TaskPayload::Completed { result } => {
                    return serde_json::from_value(Value::Object(result)).map_err(|e| {
                        Error::protocol("tasks/get", format!("not a tool result: {e}"))
                    });
                }
                TaskPayload::Failed { error } => {
                    let error = serde_json::from_value(Value::Object(error.clone()))
                        .unwrap_or_else(|_| {
                            RpcError::new(
                                RpcError::INTERNAL_ERROR,
                                Value::Object(error).to_string(),
                            )
                        });
                    return Err(Error::TaskFailed { task_id: id, error });
                }
                TaskPayload::Cancelled => {
                    return Err(Error::Cancelled {
                        task_id: id,
                        reason: info.status_message,
                    });
                }
                TaskPayload::InputRequired { input_requests } => {
                    for (key, request) in input_requests {
                        if asked.insert(key.clone()) {
                            answering.push(self.answer_one(key, request, call));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends one answer with `tasks/update`. A question that could not be answered ends the
    /// task: there is no way to tell a 2026-07-28 server "no answer", and it would otherwise
    /// wait until its TTL.
    async fn deliver(
        &self,
        id: &str,
        key: String,
        answer: Result<Value, RpcError>,
    ) -> Result<(), Error> {
        match answer {
            Ok(answer) => {
                let responses = BTreeMap::from([(key, answer)]);
                self.peer()
                    .update_task(UpdateTaskParams::new(id, responses))
                    .await
                    .map_err(|e| service_error("tasks/update", e))
            }
            Err(error) => {
                let _ = self.cancel_task(id).await;
                Err(Error::Cancelled {
                    task_id: id.to_owned(),
                    reason: Some(format!(
                        "the question `{key}` could not be answered: {error}"
                    )),
                })
            }
        }
    }

    /// Ends the connection.
    pub(crate) async fn close(&mut self) {
        let _ = self
            .service
            .close_with_timeout(std::time::Duration::from_secs(5))
            .await;
    }
}

/// Turns an rmcp error into ours.
fn service_error(method: &str, error: ServiceError) -> Error {
    match error {
        ServiceError::McpError(error) => Error::Rpc {
            method: method.to_owned(),
            error: RpcError {
                code: i64::from(error.code.0),
                message: error.message.into_owned(),
                data: error.data,
            },
        },
        ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
            Error::Disconnected(format!("`{method}`: {error}"))
        }
        other => Error::protocol(method, other),
    }
}
