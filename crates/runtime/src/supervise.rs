//! The supervisor: one tokio task per task, from admission to the written end.
//!
//! It waits for admission (if the task is queued), starts the handler, and races it against
//! cancellation and the deadline. A cancelled handler gets its kind's grace period to stop;
//! after that its future is dropped (aborted). A panic is caught here and fails only this task.

use std::{any::Any, panic::AssertUnwindSafe, pin::pin, sync::Arc};

use futures_util::FutureExt;
use longrun_core::{CancelReason, Outcome, TaskError, Timestamp};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::{admission::Slot, context::Context, handler::Exit, live::Live, runtime::Inner};

pub(crate) async fn run(
    inner: Arc<Inner>,
    live: Arc<Live>,
    input: Value,
    // `None`: admitted at once, and the start already recorded by the caller.
    admitted: Option<oneshot::Receiver<()>>,
    deadline: Option<Timestamp>,
    slot: Slot,
) {
    let mut deadline = pin!(deadline_passes(inner.clone(), deadline));

    if let Some(admitted) = admitted {
        let admitted = tokio::select! {
            biased;
            admitted = admitted => admitted.is_ok(),
            () = live.cancel.cancelled() => false,
            () = &mut deadline => {
                let _ = inner.request_cancel(&live, CancelReason::DeadlineExceeded).await;
                false
            }
        };
        if !admitted {
            if !inner.admission.withdraw(live.id) {
                // Admitted in the same instant it was cancelled: it holds its slots now.
                inner.admission.release(&slot);
            }
            let reason = cancel_reason(&live);
            inner.finish(&live, Outcome::Cancelled { reason }).await;
            return;
        }
        live.state.lock().holds_slot = true;
        // A cancellation that lands from here on is seen by the handler at once.
        if let Err(error) = inner.record_start(&live).await {
            return fail_to_start(&inner, &live, error).await;
        }
    }

    let attempt = live.state.lock().attempt;
    let ctx = Context::new(inner.clone(), live.clone(), attempt);
    let outcome = drive(&inner, &live, ctx, input, deadline).await;
    inner.finish(&live, outcome).await;
}

/// Runs the handler to its end, or through cancellation and its grace period. The handler's
/// future lives only inside this function: returning drops it, which aborts whatever it still
/// had in flight before the end is written.
async fn drive(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    ctx: Context,
    input: Value,
    mut deadline: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Outcome {
    let mut running = pin!(AssertUnwindSafe(live.kind.handler.call(ctx, input)).catch_unwind());
    let finished = tokio::select! {
        biased;
        result = &mut running => Some(result),
        () = live.cancel.cancelled() => None,
        () = &mut deadline => {
            if let Err(error) = inner.request_cancel(live, CancelReason::DeadlineExceeded).await {
                tracing::error!(task = %live.id, %error, "could not record a deadline cancellation");
            }
            None
        }
    };
    match finished {
        Some(result) => outcome_of(result),
        None => {
            let grace = live.kind.spec.cancel_grace;
            if tokio::time::timeout(grace, &mut running).await.is_err() {
                tracing::warn!(task = %live.id, ?grace, "handler ignored cancellation; aborted after its grace period");
            }
            Outcome::Cancelled {
                reason: cancel_reason(live),
            }
        }
    }
}

pub(crate) async fn fail_to_start(inner: &Arc<Inner>, live: &Arc<Live>, error: crate::Error) {
    tracing::error!(task = %live.id, %error, "could not start a task");
    let error = TaskError::new("start_failed", error.to_string());
    inner.finish(live, Outcome::Failed { error }).await;
}

fn cancel_reason(live: &Live) -> CancelReason {
    live.state
        .lock()
        .cancel_reason
        .clone()
        .unwrap_or(CancelReason::Requested { by: None })
}

async fn deadline_passes(inner: Arc<Inner>, deadline: Option<Timestamp>) {
    match deadline {
        None => std::future::pending().await,
        Some(at) => tokio::time::sleep(at.saturating_since(inner.clock.now())).await,
    }
}

fn outcome_of(result: Result<Result<Value, Exit>, Box<dyn Any + Send>>) -> Outcome {
    match result {
        Ok(Ok(output)) => Outcome::Completed { output },
        Ok(Err(Exit::Failed(error))) => Outcome::Failed { error },
        Ok(Err(Exit::Cancelled(message))) => Outcome::Cancelled {
            reason: CancelReason::Handler { message },
        },
        Err(panic) => Outcome::Failed {
            error: TaskError::new(
                TaskError::PANICKED,
                format!("the handler panicked: {}", panic_message(&panic)),
            ),
        },
    }
}

/// The text of a panic payload, when it has one.
pub(crate) fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
