//! [`Handler`]: the code that runs the tasks of one kind; any
//! `async fn(Job, Value) -> Result<Value, Failure>` is one.

use std::{future::Future, pin::Pin};

use serde_json::Value;

use crate::{Failure, Job};

/// The future a [`Handler`] returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send>>;

/// Runs one task of a kind: takes its [`Job`] and input, returns the output (the task
/// completes) or a [`Failure`]. Implemented for every `Fn(Job, Value) -> impl Future`, so an
/// `async fn` or a closure returning an `async` block is a handler.
pub trait Handler: Send + Sync + 'static {
    /// Starts running one task.
    fn call(&self, job: Job, input: Value) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Job, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, Failure>> + Send + 'static,
{
    fn call(&self, job: Job, input: Value) -> HandlerFuture {
        Box::pin(self(job, input))
    }
}
