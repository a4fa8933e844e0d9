//! Ending a task: the outcome written once (with the session's inbox item in the same store
//! write, when the outcome is for the inbox), the slots freed, the inbox woken, the terminal
//! callback run, the waiters woken.

use std::sync::Arc;

use longrun_core::{
    Change, Outcome, Routing, Session, TaskId, inbox::InboxEntry, store::NewInboxItem,
};
use tracing::Instrument as _;

use crate::{
    live::{AskSlot, Live, TerminalCallback},
    runtime::Inner,
    supervise::{self},
};

impl Inner {
    /// Ends a task: writes its outcome (and its inbox item, in the same write), frees its
    /// slots, wakes the session's inbox, runs its terminal callback, then wakes its waiters.
    /// Runs exactly once per task.
    pub(crate) async fn finish(&self, live: &Arc<Live>, outcome: Outcome) {
        if live.is_lost() {
            self.drop_lost(live);
            return;
        }
        let (staged, span) = {
            let mut state = live.state.lock();
            // A cancellation requested before the end was written wins over a late result.
            let outcome = match (&state.cancel_reason, outcome) {
                (Some(reason), Outcome::Completed { .. } | Outcome::Failed { .. }) => {
                    Outcome::Cancelled {
                        reason: reason.clone(),
                    }
                }
                (_, outcome) => outcome,
            };
            let span = live.trace.end(live.id, &outcome);
            // Questions still open will never be answered by this run.
            for slot in state.asks.values_mut() {
                if matches!(slot, AskSlot::Waiting(_)) {
                    *slot = AskSlot::TimedOut;
                }
            }
            // A background or detached task's outcome goes to its session's inbox, in the same
            // store write as the end: one commit, not two in a row before the waiters wake, and
            // no inbox item without its end. Read under the lock: once the end is staged, the
            // task can no longer detach.
            let session = live
                .info
                .session
                .as_ref()
                .filter(|_| live.routing == Routing::Background || state.detached);
            let inbox = |event: &longrun_core::Event| {
                let (session, Change::Ended(outcome)) = (session?, &event.change) else {
                    return None;
                };
                Some(NewInboxItem {
                    session: session.clone(),
                    task: live.id,
                    at: event.at,
                    entry: InboxEntry::Outcome {
                        kind: live.info.kind.to_string(),
                        outcome: outcome.clone(),
                    },
                })
            };
            let staged = self.stage_with_inbox(&mut state, live, Change::Ended(outcome), inbox);
            (staged.map(|staged| (staged, session.cloned())), span)
        };
        let (ended, told) = match staged {
            Ok((staged, told)) => (self.land(live, staged).instrument(span).await, told),
            Err(error) => (Err(error), None),
        };
        if let Err(error) = &ended {
            tracing::error!(task = %live.id, %error, "could not record a task's end");
            if live.is_lost() {
                self.drop_lost(live);
                return;
            }
        }
        let holds_slot = {
            let mut state = live.state.lock();
            state.subscribers = None;
            std::mem::take(&mut state.holds_slot)
        };
        if holds_slot {
            self.admission.release(&self.slot_of(live));
        }
        if ended.is_ok()
            && let Some(session) = &told
        {
            self.sessions.wake(session);
        }
        // The callback is part of the end: waiters (`wait`, `cancel`, a foreground start) return
        // after it ran, so they can rely on what it did.
        let callback = live.on_terminal.lock().take();
        if let Some(callback) = callback {
            Box::pin(self.run_terminal_callback(live.id, callback)).await;
        }
        self.live.remove(&live.id);
        live.changed.notify_waiters();
    }

    /// The end of a task given up (see [`Inner::abandon`]): free what it held, write nothing.
    pub(crate) fn drop_lost(&self, live: &Live) {
        let holds_slot = {
            let mut state = live.state.lock();
            state.subscribers = None;
            std::mem::take(&mut state.holds_slot)
        };
        if holds_slot {
            self.admission.release(&self.slot_of(live));
        }
        // Only this record: a task handed over may be back here already, under a new one.
        self.live
            .remove_if(&live.id, |_, current| std::ptr::eq(&**current, live));
        live.trace.abandon("lost");
        live.changed.notify_waiters();
    }

    pub(crate) async fn run_terminal_callback(&self, id: TaskId, callback: TerminalCallback) {
        match self.store.get(id).await {
            Ok(Some(task)) => {
                let run = std::panic::AssertUnwindSafe(callback(task));
                if let Err(panic) = futures_util::FutureExt::catch_unwind(run).await {
                    let panic = supervise::panic_message(&panic);
                    tracing::error!(task = %id, %panic, "terminal callback panicked");
                }
            }
            Ok(None) => tracing::error!(task = %id, "task vanished before its terminal callback"),
            Err(error) => {
                tracing::error!(task = %id, %error, "could not read a task for its terminal callback")
            }
        }
    }

    pub(crate) async fn push_inbox(&self, session: &Session, task: TaskId, entry: InboxEntry) {
        let pushed = self
            .store
            .push(NewInboxItem {
                session: session.clone(),
                task,
                at: self.clock.now(),
                entry,
            })
            .await;
        match pushed {
            Ok(()) => self.sessions.wake(session),
            Err(error) => tracing::error!(%task, %error, "could not place an item in the inbox"),
        }
    }
}
