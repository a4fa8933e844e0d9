//! The supervisor: one tokio task per task, from admission to the written end.
//!
//! It waits for admission (if the task is queued), starts the handler, and races it against
//! cancellation and the deadline. A cancelled handler gets its kind's grace period to stop;
//! after that its future is dropped (aborted). A panic is caught here and fails only this task.
//!
//! The supervisor's future is part of every task's allocation, so the paths most tasks never
//! take (queueing, deadlines, cancellation) are boxed and cost nothing until taken.

use std::{any::Any, panic::AssertUnwindSafe, pin::Pin, sync::Arc};

use futures_util::FutureExt;
use longrun_core::{CancelReason, Outcome, Seq, TaskError, Timestamp, store::Ack};
use serde_json::Value;
use tokio::{sync::oneshot, time::Sleep};
use tracing::Instrument as _;

use crate::{
    admission::{Decision, Slot},
    context::Context,
    error::Error,
    gate::{Entry, Gate, Waiting},
    handler::Exit,
    live::Live,
    retry,
    runtime::Inner,
};

/// A new task whose creation is not durable yet: the supervisor waits for it, then tells the
/// starter how the launch went. The starter waits for that, so a start returns only what is
/// durable, and dropping the starter's future after the spawn cannot strand the task. Boxed:
/// only stores that write asynchronously need it.
pub(crate) struct Pending {
    pub(crate) created: Ack,
    pub(crate) launched: oneshot::Sender<Result<Launched, Error>>,
}

/// How a launch went, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Launched {
    /// Running or queued.
    Going,
    /// Ended at once: rejected at a limit, or its start could not be recorded.
    Ended,
}

/// What admission decided. The rare cases are boxed so that tasks that never queue do not
/// carry their room.
pub(crate) enum Admitted {
    Run,
    /// Admitted, and the start already recorded by the starter.
    Started,
    Queued(Box<(oneshot::Receiver<()>, Slot)>),
    Rejected(Box<str>),
    /// A delayed start: admitted when it is due, so it holds no slot while it waits.
    Delayed(Timestamp),
}

pub(crate) async fn run(
    inner: Arc<Inner>,
    live: Arc<Live>,
    input: Value,
    deadline: Option<Timestamp>,
    admitted: Admitted,
    pending: Option<Box<Pending>>,
) {
    let launched = match pending {
        Some(pending) => match Box::pin(created(&inner, &live, *pending)).await {
            Some(launched) => Some(launched),
            None => return,
        },
        None => None,
    };
    let mut launched = launched;
    let mut tell = |result: Result<Launched, Error>| {
        if let Some(launched) = launched.take() {
            // The starter may have stopped waiting; the task goes on regardless.
            let _ = launched.send(result);
        }
    };

    let mut deadline = deadline_sleep(&inner, deadline);
    let admitted = match admitted {
        Admitted::Delayed(at) => {
            tell(Ok(Launched::Going));
            match Box::pin(wait_until_due(&inner, &live, at, &mut deadline)).await {
                Some(admitted) => admitted,
                None => return,
            }
        }
        admitted => admitted,
    };
    match admitted {
        Admitted::Started => {}
        // The other cases are rarer, and boxed, so that their futures (the whole end of a task
        // for a rejection) take no room in every task's allocation.
        Admitted::Run => {
            // A gated kind may wait at its gate for long: the starter does not wait with it.
            if live.kind.gate.is_some() {
                tell(Ok(Launched::Going));
            }
            if !Box::pin(start_recorded(&inner, &live, &input, &mut deadline)).await {
                tell(Ok(Launched::Ended));
                return;
            }
            tell(Ok(Launched::Going));
        }
        Admitted::Queued(queued) => {
            tell(Ok(Launched::Going));
            if !Box::pin(wait_for_admission(
                &inner,
                &live,
                *queued,
                &input,
                &mut deadline,
            ))
            .await
            {
                return;
            }
        }
        Admitted::Rejected(why) => {
            let error = TaskError::new(TaskError::LIMIT_REACHED, why.into_string());
            Box::pin(inner.finish(&live, Outcome::Rejected { error })).await;
            tell(Ok(Launched::Ended));
            return;
        }
        Admitted::Delayed(_) => unreachable!("a delayed start was waited for above"),
    }

    // Only a kind that retries needs the input again for a later attempt.
    let mut input = Some(input);
    loop {
        let attempt = live.state.lock().attempt;
        let span = live.trace.attempt(live.id, attempt);
        let ctx = Context::new(inner.clone(), live.clone(), attempt, span.clone());
        let this_input = match &input {
            Some(kept) if live.kind.spec.retry.max_attempts > 1 => kept.clone(),
            _ => input.take().unwrap_or_default(),
        };
        // The handler runs inside its attempt's span, so its own spans and logs nest there.
        let outcome = drive(&inner, &live, ctx, this_input, &mut deadline)
            .instrument(span)
            .await;
        // A ticket the handler did not take frees what the gate reserved (outside the lock).
        let untaken = live.state.lock().ticket.take();
        drop(untaken);
        let (error, delay) = match retry::after(&live, outcome) {
            // Boxed: writing the end is the largest future here, and needs its room only briefly.
            retry::After::End(outcome) => return Box::pin(inner.finish(&live, outcome)).await,
            retry::After::Retry(error, delay) => (error, delay),
        };
        let next = Box::pin(retry::back_off(&inner, &live, error, delay, &mut deadline)).await;
        let kept = input.as_ref().unwrap_or(&Value::Null);
        let started = match next {
            None => false,
            Some(Admitted::Queued(queued)) => {
                Box::pin(wait_for_admission(
                    &inner,
                    &live,
                    *queued,
                    kept,
                    &mut deadline,
                ))
                .await
            }
            Some(_) => Box::pin(start_recorded(&inner, &live, kept, &mut deadline)).await,
        };
        if !started {
            return;
        }
    }
}

/// The deadline as a timer; none without one.
pub(crate) fn deadline_sleep(
    inner: &Inner,
    deadline: Option<Timestamp>,
) -> Option<Pin<Box<Sleep>>> {
    deadline.map(|at| Box::pin(tokio::time::sleep(at.saturating_since(inner.clock.now()))))
}

/// Waits for a new task's creation to be durable. Returns the starter's channel, or `None` if
/// the creation failed (the starter has been told, and the task forgotten).
async fn created(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    pending: Pending,
) -> Option<oneshot::Sender<Result<Launched, Error>>> {
    if let Err(error) = pending.created.await {
        inner.forget(live);
        // The starter may have stopped waiting; nothing else needs telling.
        let _ = pending.launched.send(Err(error.into()));
        return None;
    }
    inner.publish(live, Seq::FIRST);
    Some(pending.launched)
}

/// Waits until a delayed task is due, then asks for admission as a taken-up task does.
/// Returns `None` if the task ended while it waited (cancelled, its deadline, or given up).
async fn wait_until_due(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    at: Timestamp,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> Option<Admitted> {
    let due = tokio::time::sleep(at.saturating_since(inner.clock.now()));
    let due = tokio::select! {
        biased;
        () = live.cancelled() => false,
        () = passes(deadline) => {
            let _ = inner.request_cancel(live, CancelReason::DeadlineExceeded).await;
            false
        }
        () = due => true,
    };
    if !due {
        let reason = cancel_reason(live);
        inner.finish(live, Outcome::Cancelled { reason }).await;
        return None;
    }
    Some(admit_again(inner, live))
}

/// Admission for a task accepted earlier (taken up after a restart, or due after a delay): it
/// waits for room rather than being rejected, whatever its kind does with new tasks over the
/// limit.
pub(crate) fn admit_again(inner: &Inner, live: &Live) -> Admitted {
    let spec = &live.kind.spec;
    if !inner.admission.applies(spec.concurrency) {
        return Admitted::Run;
    }
    let slot = Slot {
        kind: spec.name.clone(),
        kind_limit: spec.concurrency,
        owner: live.info.owner.clone(),
    };
    match inner.admission.admit(live.id, &slot, true) {
        Decision::Run => {
            live.state.lock().holds_slot = true;
            Admitted::Run
        }
        Decision::Queued(admitted) => Admitted::Queued(Box::new((admitted, slot))),
        Decision::Full(why) => Admitted::Rejected(why.into_boxed_str()),
    }
}

/// Waits at the kind's gate, if it has one, then records the start. Returns false if the task
/// ended meanwhile (cancelled, its deadline, or its start could not be recorded: it then ended
/// failed) or was handed over to another node.
async fn start_recorded(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    input: &Value,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> bool {
    if let Some(gate) = &live.kind.gate
        && !Box::pin(pass_gate(inner, live, gate.clone(), input, deadline)).await
    {
        return false;
    }
    match inner.record_start(live).await {
        Ok(()) => true,
        Err(error) => {
            let untaken = live.state.lock().ticket.take();
            drop(untaken);
            fail_to_start(inner, live, error).await;
            false
        }
    }
}

/// Waits at the kind's gate with the task still `submitted`. Returns true once the gate let it
/// in (its ticket is kept for the handler); false if it was handed over, or ended meanwhile.
async fn pass_gate(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    gate: Arc<dyn Gate>,
    input: &Value,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> bool {
    let fresh = std::mem::take(&mut live.state.lock().fresh);
    let waiting = Waiting {
        task: live.id,
        kind: live.info.kind.clone(),
        input: Arc::new(input.clone()),
        // A terminal callback lives in this process only: such a task stays here.
        may_hand_over: inner.cluster.is_some()
            && !inner.shutdown.is_cancelled()
            && live.on_terminal.lock().is_none(),
        fresh,
    };
    let entry = tokio::select! {
        biased;
        () = live.cancelled() => None,
        () = passes(deadline) => {
            let _ = inner.request_cancel(live, CancelReason::DeadlineExceeded).await;
            None
        }
        entry = gate.enter(waiting) => Some(entry),
    };
    match entry {
        Some(Entry::Enter(ticket)) => {
            live.state.lock().ticket = Some(ticket);
            true
        }
        Some(Entry::HandOver) => {
            if !inner.hand_over(live).await {
                let error = TaskError::new(
                    TaskError::HANDLER_ERROR,
                    "the kind's gate handed the task over, but this runtime is not in a cluster",
                );
                inner.finish(live, Outcome::Failed { error }).await;
            }
            false
        }
        None => {
            let reason = cancel_reason(live);
            inner.finish(live, Outcome::Cancelled { reason }).await;
            false
        }
    }
}

/// Waits in the queue. Returns false if the task ended there (cancelled, or its deadline).
async fn wait_for_admission(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    (admitted, slot): (oneshot::Receiver<()>, Slot),
    input: &Value,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> bool {
    let admitted = tokio::select! {
        biased;
        admitted = admitted => admitted.is_ok(),
        () = live.cancelled() => false,
        () = passes(deadline) => {
            let _ = inner.request_cancel(live, CancelReason::DeadlineExceeded).await;
            false
        }
    };
    if !admitted {
        if !inner.admission.withdraw(live.id) {
            // Admitted in the same instant it was cancelled: it holds its slots now.
            inner.admission.release(&slot);
        }
        let reason = cancel_reason(live);
        inner.finish(live, Outcome::Cancelled { reason }).await;
        return false;
    }
    live.state.lock().holds_slot = true;
    // A cancellation that lands from here on is seen by the handler at once.
    start_recorded(inner, live, input, deadline).await
}

/// Runs the handler to its end, or through cancellation and its grace period. The handler's
/// future lives only inside this function: returning drops it, which aborts whatever it still
/// had in flight before the end is written.
async fn drive(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    ctx: Context,
    input: Value,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> Outcome {
    let mut running = AssertUnwindSafe(live.kind.handler.call(ctx, input)).catch_unwind();
    let finished = tokio::select! {
        biased;
        result = &mut running => Some(result),
        () = live.cancelled() => None,
        () = passes(deadline) => None,
    };
    match finished {
        Some(result) => outcome_of(result),
        None => Box::pin(wind_down(inner, live, running)).await,
    }
}

/// Cancellation was requested, or the deadline passed: give the handler its grace period.
async fn wind_down(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    running: impl std::future::Future + Unpin,
) -> Outcome {
    if live.is_lost() {
        // Given up (a failed write, or another node took it over): nothing it does can be
        // recorded any more, so it gets no grace period.
        return Outcome::Cancelled {
            reason: cancel_reason(live),
        };
    }
    if !live.is_cancelled()
        && let Err(error) = inner
            .request_cancel(live, CancelReason::DeadlineExceeded)
            .await
    {
        tracing::error!(task = %live.id, %error, "could not record a deadline cancellation");
    }
    let grace = live.kind.spec.cancel_grace;
    if tokio::time::timeout(grace, running).await.is_err() {
        tracing::warn!(task = %live.id, ?grace, "handler ignored cancellation; aborted after its grace period");
    }
    Outcome::Cancelled {
        reason: cancel_reason(live),
    }
}

/// Resolves when the deadline passes; never, without one.
pub(crate) async fn passes(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn fail_to_start(inner: &Arc<Inner>, live: &Arc<Live>, error: Error) {
    tracing::error!(task = %live.id, %error, "could not start a task");
    let error = TaskError::new("start_failed", error.to_string());
    inner.finish(live, Outcome::Failed { error }).await;
}

pub(crate) fn cancel_reason(live: &Live) -> CancelReason {
    live.state
        .lock()
        .cancel_reason
        .clone()
        .unwrap_or(CancelReason::Requested { by: None })
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
