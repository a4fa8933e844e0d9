//! Handlers: user code behind a kind, erased to one shape the supervisor drives.
//!
//! Two styles are accepted: an async function `(Context, Input) -> Result<Output, E>`, and a
//! stream of [`Signal`]s (nekro's `yield TaskCtl.report_progress(...)` style). Both become an
//! [`ErasedHandler`] whose future yields the task's output or an [`Exit`].

use std::{future::Future, marker::PhantomData};

use futures_core::Stream;
use futures_util::StreamExt;
use longrun_core::{ArtifactChunk, TaskError, store::BoxFuture};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::context::Context;

/// How a handler ended other than with an output.
#[derive(Debug)]
pub(crate) enum Exit {
    /// With an error.
    Failed(TaskError),
    /// By reporting that it cancelled itself.
    Cancelled(String),
}

/// The one shape every handler is driven through.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    /// Whether `input` deserializes into the handler's input type; checked at start, so a bad
    /// input is refused before a task exists.
    fn check(&self, input: &Value) -> Result<(), String>;

    /// Runs the handler.
    fn call(&self, ctx: Context, input: Value) -> BoxFuture<'static, Result<Value, Exit>>;
}

/// Whether `input` deserializes into `I`, without taking it apart.
fn check_input<I: DeserializeOwned>(input: &Value) -> Result<(), String> {
    I::deserialize(input).map(drop).map_err(|e| e.to_string())
}

/// A handler run that ended before it began.
fn failed(exit: Exit) -> BoxFuture<'static, Result<Value, Exit>> {
    Box::pin(std::future::ready(Err(exit)))
}

fn decode<I: DeserializeOwned>(input: Value) -> Result<I, Exit> {
    serde_json::from_value(input)
        .map_err(|error| Exit::Failed(TaskError::new(TaskError::INVALID_INPUT, error.to_string())))
}

fn encode<O: Serialize>(output: O) -> Result<Value, Exit> {
    serde_json::to_value(output).map_err(|error| {
        Exit::Failed(TaskError::new(
            TaskError::INVALID_OUTPUT,
            format!("the handler's output could not be serialized: {error}"),
        ))
    })
}

pub(crate) struct FnHandler<F, I, O, E> {
    f: F,
    _types: PhantomData<fn(I) -> (O, E)>,
}

impl<F, I, O, E> FnHandler<F, I, O, E> {
    pub(crate) fn new(f: F) -> Self {
        Self {
            f,
            _types: PhantomData,
        }
    }
}

impl<F, Fut, I, O, E> ErasedHandler for FnHandler<F, I, O, E>
where
    F: Fn(Context, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    I: DeserializeOwned + Send + 'static,
    O: Serialize + 'static,
    E: Into<TaskError> + 'static,
{
    fn check(&self, input: &Value) -> Result<(), String> {
        check_input::<I>(input)
    }

    fn call(&self, ctx: Context, input: Value) -> BoxFuture<'static, Result<Value, Exit>> {
        let input = match decode::<I>(input) {
            Ok(input) => input,
            Err(exit) => return failed(exit),
        };
        let running = (self.f)(ctx, input);
        Box::pin(async move {
            match running.await {
                Ok(output) => encode(output),
                Err(error) => Err(Exit::Failed(error.into())),
            }
        })
    }
}

/// One control signal of a stream-style handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Report progress (not terminal).
    Progress {
        /// 0 to 100, if known.
        percent: Option<f64>,
        /// What is happening.
        message: String,
    },
    /// Emit an artifact chunk (not terminal).
    Artifact(ArtifactChunk),
    /// End successfully with this output.
    Success(Value),
    /// End with this error.
    Fail(TaskError),
    /// End cancelled, with the handler's reason.
    Cancel(String),
}

impl Signal {
    /// A progress report.
    pub fn progress(message: impl Into<String>, percent: impl Into<Option<f64>>) -> Self {
        Self::Progress {
            percent: percent.into(),
            message: message.into(),
        }
    }

    /// Success, with an output that serializes to JSON.
    pub fn success(output: impl Serialize) -> Self {
        match serde_json::to_value(output) {
            Ok(output) => Self::Success(output),
            Err(error) => Self::Fail(TaskError::new(TaskError::INVALID_OUTPUT, error.to_string())),
        }
    }

    /// Failure, with a message.
    pub fn fail(error: impl Into<TaskError>) -> Self {
        Self::Fail(error.into())
    }

    /// Self-cancellation, with a reason.
    pub fn cancel(message: impl Into<String>) -> Self {
        Self::Cancel(message.into())
    }
}

pub(crate) struct StreamHandler<F, I> {
    f: F,
    _types: PhantomData<fn(I)>,
}

impl<F, I> StreamHandler<F, I> {
    pub(crate) fn new(f: F) -> Self {
        Self {
            f,
            _types: PhantomData,
        }
    }
}

/// The code of a stream handler that ended without a terminal signal.
pub(crate) const NO_OUTCOME: &str = "no_outcome";

impl<F, S, I> ErasedHandler for StreamHandler<F, I>
where
    F: Fn(Context, I) -> S + Send + Sync + 'static,
    S: Stream<Item = Signal> + Send + 'static,
    I: DeserializeOwned + Send + 'static,
{
    fn check(&self, input: &Value) -> Result<(), String> {
        check_input::<I>(input)
    }

    fn call(&self, ctx: Context, input: Value) -> BoxFuture<'static, Result<Value, Exit>> {
        let input = match decode::<I>(input) {
            Ok(input) => input,
            Err(exit) => return failed(exit),
        };
        let signals = (self.f)(ctx.clone(), input);
        Box::pin(async move {
            let mut signals = std::pin::pin!(signals);
            while let Some(signal) = signals.next().await {
                let reported = match signal {
                    Signal::Progress { percent, message } => ctx.progress(percent, message).await,
                    Signal::Artifact(chunk) => ctx.artifact(chunk).await,
                    Signal::Success(output) => return Ok(output),
                    Signal::Fail(error) => return Err(Exit::Failed(error)),
                    Signal::Cancel(message) => return Err(Exit::Cancelled(message)),
                };
                reported.map_err(|error| Exit::Failed(error.into()))?;
            }
            // nekro leaves such a task in its last progress state for ever; longrun ends it.
            Err(Exit::Failed(TaskError::new(
                NO_OUTCOME,
                "the handler's signal stream ended without a success, fail or cancel signal",
            )))
        })
    }
}
