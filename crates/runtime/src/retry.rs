//! Retries: a failed attempt whose error is retryable runs again after a backoff.
//!
//! While it waits the task is `submitted` (a [`Change::RetryScheduled`] event says when the
//! next attempt starts), holds no concurrency slot, and ends at once if cancelled or if its
//! deadline passes. When the wait is over the task is admitted again like a new one (queueing
//! at a full limit), its journal is read, and the next attempt starts (`attempt` + 1). A task
//! that was waiting when its process died waits for the rest of its backoff once taken up
//! ([`resume`]).

use std::{pin::Pin, sync::Arc, time::Duration};

use longrun_core::{CancelReason, Change, Outcome, TaskError, Timestamp};
use serde_json::Value;
use tokio::time::Sleep;

use crate::{
    journal::Replay,
    live::Live,
    runtime::Inner,
    supervise::{self, Admitted},
};

/// What follows an attempt's outcome.
pub(crate) enum After {
    /// The task ends with this outcome.
    End(Outcome),
    /// The attempt failed; the next one starts after this delay.
    Retry(TaskError, Duration),
}

/// Decides whether `outcome` ends the task or another attempt follows.
pub(crate) fn after(live: &Live, outcome: Outcome) -> After {
    let Outcome::Failed { mut error } = outcome else {
        return After::End(outcome);
    };
    let policy = &live.kind.spec.retry;
    if policy.max_attempts <= 1 || live.is_cancelled() {
        return After::End(Outcome::Failed { error });
    }
    let attempt = live.state.lock().attempt;
    if !error.is_retryable() || !policy.allows(attempt + 1) {
        if error.is_retryable() {
            error.message = format!("{} (attempt {attempt} of {attempt})", error.message);
        }
        return After::End(Outcome::Failed { error });
    }
    let delay = error
        .retry_after
        .unwrap_or_else(|| policy.backoff(attempt, fastrand::f64()));
    After::Retry(error, delay)
}

/// Records the retry, frees the task's slots and waits out the backoff. Returns the admission
/// of the next attempt, or `None` if the task ended meanwhile (it has been finished).
pub(crate) async fn back_off(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    error: TaskError,
    delay: Duration,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> Option<Admitted> {
    let holds_slot = std::mem::take(&mut live.state.lock().holds_slot);
    if holds_slot {
        inner.admission.release(&inner.slot_of(live));
    }
    let at = inner.clock.now().saturating_add(delay);
    let attempt = live.state.lock().attempt;
    let scheduled = Change::RetryScheduled {
        attempt,
        error: error.clone(),
        at,
    };
    if inner.commit(live, scheduled).await.is_err() {
        // Given up (the write failed): `finish` only frees what the task held.
        inner.finish(live, Outcome::Failed { error }).await;
        return None;
    }
    wait_until(inner, live, at, deadline).await
}

/// Waits for the next attempt's time, then admits it and reads its journal. `None` if the task
/// ended meanwhile (cancelled, its deadline, or a failed read); it has been finished.
async fn wait_until(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    at: Timestamp,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> Option<Admitted> {
    let wait = at.saturating_since(inner.clock.now());
    let waited = tokio::select! {
        biased;
        () = live.cancelled() => false,
        () = supervise::passes(deadline) => {
            let _ = inner.request_cancel(live, CancelReason::DeadlineExceeded).await;
            false
        }
        () = tokio::time::sleep(wait) => true,
    };
    if !waited {
        let reason = supervise::cancel_reason(live);
        inner.finish(live, Outcome::Cancelled { reason }).await;
        return None;
    }
    match Replay::read(inner.store.as_ref(), live.id).await {
        Ok(replay) => replay.install(live),
        Err(error) => {
            tracing::error!(task = %live.id, %error, "could not read a task's journal for its next attempt");
            let error = TaskError::new("journal_unreadable", error.to_string());
            inner.finish(live, Outcome::Failed { error }).await;
            return None;
        }
    }
    // The next attempt waits for room rather than being rejected: the task was accepted once.
    Some(supervise::admit_again(inner, live))
}

/// Takes up a task that was waiting for its next attempt when its process stopped: waits for
/// the rest of the backoff, then runs it under its supervisor.
pub(crate) async fn resume(
    inner: Arc<Inner>,
    live: Arc<Live>,
    input: Value,
    deadline: Option<Timestamp>,
    at: Timestamp,
) {
    let mut sleep = supervise::deadline_sleep(&inner, deadline);
    if let Some(admitted) = wait_until(&inner, &live, at, &mut sleep).await {
        supervise::run(inner, live, input, deadline, admitted, None).await;
    }
}
