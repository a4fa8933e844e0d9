//! The handlers a client registers to answer a server's questions: elicitations (a form or a
//! URL for a person) and sampling requests (a message for a language model), as Neva's
//! `#[elicitation]` and `#[sampling]` handlers do.
//!
//! Both generations reach the same handlers: a 2025-11-25 server sends a real JSON-RPC request
//! (on the stream of a pending `tasks/result`, or of a plain `tools/call`); a 2026-07-28 server
//! lists it in the task's `inputRequests`, and the client answers with `tasks/update`.

#![allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); MCP Tasks still carry it.

use std::{future::Future, sync::Arc};

use futures_util::{FutureExt, future::BoxFuture};
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
    ElicitationAction,
};
use serde_json::Value;

use crate::error::RpcError;

type ElicitFn = dyn Fn(ElicitRequestParams) -> BoxFuture<'static, ElicitResult> + Send + Sync;
type SampleFn = dyn Fn(CreateMessageRequestParams) -> BoxFuture<'static, Result<CreateMessageResult, RpcError>>
    + Send
    + Sync;

/// One question a server asked, parsed.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    /// `elicitation/create`.
    Elicit(ElicitRequestParams),
    /// `sampling/createMessage`.
    Sample(CreateMessageRequestParams),
}

impl Input {
    pub(crate) const ELICIT: &str = "elicitation/create";
    pub(crate) const SAMPLE: &str = "sampling/createMessage";

    /// Parses the params of a server request; `-32602` when they are not what the method
    /// takes (an elicitation schema outside what the spec allows, for one).
    pub(crate) fn parse(method: &str, params: Value) -> Result<Self, RpcError> {
        let invalid = |e: serde_json::Error| {
            RpcError::new(
                RpcError::INVALID_PARAMS,
                format!("invalid `{method}` params: {e}"),
            )
        };
        match method {
            Self::ELICIT => serde_json::from_value(params)
                .map(Self::Elicit)
                .map_err(invalid),
            Self::SAMPLE => serde_json::from_value(params)
                .map(Self::Sample)
                .map_err(invalid),
            _ => Err(RpcError::new(
                RpcError::METHOD_NOT_FOUND,
                format!("this client does not answer `{method}`"),
            )),
        }
    }

    /// The method name.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Self::Elicit(_) => Self::ELICIT,
            Self::Sample(_) => Self::SAMPLE,
        }
    }
}

/// Answers questions for one call, or for the whole client.
pub(crate) trait Responder: Send + Sync {
    /// Answers `input`, asked under `key`; the value is the result's JSON (`ElicitResult` or
    /// `CreateMessageResult`).
    fn answer(&self, key: String, input: Input) -> BoxFuture<'static, Result<Value, RpcError>>;
}

/// The elicitation and sampling handlers registered on a client.
#[derive(Clone, Default)]
pub(crate) struct Handlers {
    elicitation: Option<Arc<ElicitFn>>,
    sampling: Option<Arc<SampleFn>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("elicitation", &self.elicitation.is_some())
            .field("sampling", &self.sampling.is_some())
            .finish()
    }
}

impl Handlers {
    /// Sets the elicitation handler.
    pub(crate) fn elicitation<F, Fut>(&mut self, handler: F)
    where
        F: Fn(ElicitRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ElicitResult> + Send + 'static,
    {
        self.elicitation = Some(Arc::new(move |params| handler(params).boxed()));
    }

    /// Sets the sampling handler.
    pub(crate) fn sampling<F, Fut>(&mut self, handler: F)
    where
        F: Fn(CreateMessageRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CreateMessageResult, RpcError>> + Send + 'static,
    {
        self.sampling = Some(Arc::new(move |params| handler(params).boxed()));
    }

    /// Whether an elicitation handler is registered.
    pub(crate) fn has_elicitation(&self) -> bool {
        self.elicitation.is_some()
    }

    /// Whether a sampling handler is registered.
    pub(crate) fn has_sampling(&self) -> bool {
        self.sampling.is_some()
    }
}

impl Responder for Handlers {
    fn answer(&self, _key: String, input: Input) -> BoxFuture<'static, Result<Value, RpcError>> {
        match input {
            Input::Elicit(params) => match &self.elicitation {
                Some(handler) => handler(params).map(|r| to_json(&r)).boxed(),
                // Declining is the answer the spec gives a client that will not ask its user.
                None => futures_util::future::ready(to_json(&ElicitResult::new(
                    ElicitationAction::Decline,
                )))
                .boxed(),
            },
            Input::Sample(params) => match &self.sampling {
                Some(handler) => handler(params).map(|r| r.and_then(|r| to_json(&r))).boxed(),
                None => futures_util::future::ready(Err(RpcError::new(
                    RpcError::METHOD_NOT_FOUND,
                    "this client has no sampling handler",
                )))
                .boxed(),
            },
        }
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| {
        RpcError::new(
            RpcError::INTERNAL_ERROR,
            format!("the answer could not be serialized: {e}"),
        )
    })
}
