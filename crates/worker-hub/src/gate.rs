//! The gate of a worker kind: a task starts on this node only once a worker here takes it.
//!
//! The runtime waits at the gate before each attempt, with the task still `submitted`
//! (`longrun::gate`). [`KindGate::enter`] queues the task for the local workers; the worker it
//! is assigned to travels to the relay as a [`Reservation`] (the runtime's ticket). In a
//! cluster the gate also decides when the task is better off on another node:
//!
//! - a task just started here, with no room for its kind here, is handed over at once (nobody
//!   else knows of it yet, so it costs nothing but the release);
//! - any other task is handed over once it has waited [`HubOptions::hand_over_after`] here
//!   without a worker (its only worker left, or every one is busy): a node whose workers have
//!   room claims it, and the task counts no attempt for having moved.
//!
//! [`HubOptions::hand_over_after`]: crate::HubOptions::hand_over_after

use std::sync::Arc;

use longrun::{
    gate::{Entry, Gate, Waiting},
    store::BoxFuture,
};
use tokio::sync::oneshot;

use crate::{
    Inner,
    roster::{Assigned, Waiter},
};

/// The gate of every worker kind of one hub.
pub(crate) struct KindGate {
    pub(crate) hub: Arc<Inner>,
}

impl Gate for KindGate {
    fn room(&self, kind: &str) -> usize {
        self.hub.roster.room(kind)
    }

    fn enter(&self, waiting: Waiting) -> BoxFuture<'static, Entry> {
        let hub = self.hub.clone();
        Box::pin(async move {
            if waiting.may_hand_over && waiting.fresh && hub.roster.room(&waiting.kind) == 0 {
                return Entry::HandOver;
            }
            let assigned = hub.queue(&waiting);
            let assigned = if waiting.may_hand_over {
                match tokio::time::timeout(hub.options.hand_over_after, assigned).await {
                    Ok(assigned) => assigned,
                    // The receiver is dropped with the timeout: the roster skips the waiter, and
                    // an assignment made in the same instant is released by `dispatch`.
                    Err(_) => return Entry::HandOver,
                }
            } else {
                assigned.await
            };
            Entry::Enter(Box::new(Reservation {
                hub,
                assigned: Some(assigned),
            }))
        })
    }
}

/// A worker's slot held for a task between the gate and its relay. Dropped untaken (the start
/// could not be recorded, or the task was cancelled in between), it gives the slot back.
pub(crate) struct Reservation {
    hub: Arc<Inner>,
    assigned: Option<Result<Assigned, String>>,
}

impl Reservation {
    /// The assignment, or why the worker's schema refused the input.
    pub(crate) fn take(mut self) -> Option<Result<Assigned, String>> {
        self.assigned.take()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(Ok(assigned)) = self.assigned.take() {
            self.hub.roster.release(&assigned.id);
            self.hub.dispatch();
            self.hub.runtime.claim_soon();
        }
    }
}

impl Inner {
    /// Queues a task for the workers here; resolves with its assignment (or why the worker's
    /// schema refused its input).
    pub(crate) fn queue(
        &self,
        waiting: &Waiting,
    ) -> impl Future<Output = Result<Assigned, String>> + Send + 'static {
        let (reply, assigned) = oneshot::channel();
        self.roster.wait(Waiter {
            task: waiting.task,
            kind: waiting.kind.to_string(),
            input: waiting.input.clone(),
            reply,
        });
        self.dispatch();
        async move {
            // The roster keeps the sender until it assigns the task; it never drops it otherwise.
            match assigned.await {
                Ok(assigned) => assigned,
                Err(_) => std::future::pending().await,
            }
        }
    }
}
