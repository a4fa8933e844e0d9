//! The commit path: every change of a running task goes through here.
//!
//! Four invariants hold in this file and nowhere else:
//! - **Ack before telling anyone.** An event is published (to subscribers, the all-events
//!   stream, waiters) only once the store has acknowledged it durable.
//! - **Per-task order.** A task's events are validated by `State::after` and handed to the
//!   store under the task's lock, so the store sees them in sequence; publication drains the
//!   unpublished queue in order under the same lock.
//! - **Spawn before await.** Staging is synchronous; the await for durability comes after, in
//!   `land`, so a caller that drops its future never leaves an event half-handed to the store.
//! - **Abandon on a failed write.** A write that fails or is fenced gives the task up on this
//!   node (`abandon`): its handler is dropped and nothing more is written for it by this run.
//!   A task given up after a failed write is taken up again once the store works
//!   (`crate::resume`), as a restart would.

use std::sync::Arc;

use longrun_core::{
    Change, Event, Seq,
    store::{Ack, NewInboxItem},
};

use crate::{
    error::Error,
    live::{Live, LiveState},
    runtime::{Inner, Staged},
    subscribe::Published,
};

impl Inner {
    /// Validates `change` against the task's state and hands the event to the store, all under
    /// the task's lock, so the store sees every task's events in sequence. When the store has
    /// already made the write durable (the in-memory store always has) and nothing is waiting
    /// before it, the event is published right here, under the same lock.
    pub(crate) fn stage(
        &self,
        state: &mut LiveState,
        live: &Live,
        change: Change,
    ) -> Result<Staged, Error> {
        self.stage_with_inbox(state, live, change, |_| None)
    }

    /// [`Inner::stage`], and the inbox item `inbox` makes of the event, if any, written with it
    /// in one store write (`TaskStore::append_with_inbox`): both durable, or neither.
    pub(crate) fn stage_with_inbox(
        &self,
        state: &mut LiveState,
        live: &Live,
        change: Change,
        inbox: impl FnOnce(&Event) -> Option<NewInboxItem>,
    ) -> Result<Staged, Error> {
        let next = state.state.after(&change)?;
        let seq = state.seq.next();
        let event = Arc::new(Event {
            task: live.id,
            seq,
            at: self.clock.now(),
            status: next.status(),
            change,
        });
        let mut ack = match inbox(&event) {
            None => self.store.append(std::slice::from_ref(&event)),
            Some(item) => self
                .store
                .append_with_inbox(std::slice::from_ref(&event), item),
        };
        state.state = next;
        state.seq = seq;
        let ack = match ack.try_now() {
            Some(Ok(())) if state.unpublished.is_empty() => {
                self.publish_one(state, live, event.clone());
                None
            }
            Some(result) => Some(Ack::ready(result)),
            None => Some(ack),
        };
        if ack.is_some() {
            state.unpublished.push_back(event.clone());
        }
        Ok(Staged { event, ack })
    }

    /// Waits for a staged event to be durable, then publishes it (and any before it).
    pub(crate) async fn land(&self, live: &Live, staged: Staged) -> Result<Arc<Event>, Error> {
        if let Some(ack) = staged.ack {
            if let Err(error) = ack.await {
                self.abandon(live, &error);
                return Err(error.into());
            }
            self.publish(live, staged.event.seq);
        }
        Ok(staged.event)
    }

    /// Stages and lands one change.
    pub(crate) async fn commit(&self, live: &Live, change: Change) -> Result<Arc<Event>, Error> {
        let staged = {
            let mut state = live.state.lock();
            self.stage(&mut state, live, change)?
        };
        self.land(live, staged).await
    }

    /// Tells subscribers of every staged event up to `through`, in order. A store's ack for a
    /// write means every earlier write is durable too, so everything up to `through` may go.
    pub(crate) fn publish(&self, live: &Live, through: Seq) {
        let mut state = live.state.lock();
        while state.unpublished.front().is_some_and(|e| e.seq <= through) {
            let event = state.unpublished.pop_front().expect("front exists");
            self.publish_one(&mut state, live, event);
        }
    }

    pub(crate) fn publish_one(&self, state: &mut LiveState, live: &Live, event: Arc<Event>) {
        state.published = event.seq;
        state.ended |= event.is_terminal();
        if let Some(kept) = &mut state.kept {
            if kept.len() < crate::live::KEPT_EVENTS {
                kept.push(event.clone());
            } else {
                state.kept = None;
            }
        }
        if let Some(subscribers) = &state.subscribers
            && subscribers.send(event.clone()).is_err()
        {
            // Nobody listens any more: free the channel until the next subscription.
            state.subscribers = None;
        }
        if self.all.receiver_count() > 0 {
            let _ = self.all.send(Published {
                event,
                info: live.info.clone(),
            });
        }
    }

    /// Gives a task up without writing anything more, because a durable write for it failed or
    /// another node took it over. Its handler is dropped and its record removed; what the store
    /// holds stands, and the task's restart policy applies when it is next taken up (by this
    /// node once the store works again, or by whichever node claims it).
    pub(crate) fn abandon(&self, live: &Live, why: &longrun_core::store::Error) {
        if live.mark_lost() {
            match why {
                longrun_core::store::Error::Fenced(_) => {
                    tracing::warn!(task = %live.id, "another node took this task over; stopping it here")
                }
                error => {
                    tracing::error!(task = %live.id, %error, "a durable write failed; giving the task up on this node until the store works again");
                    // Nobody else takes it up: this node holds it (and, in a cluster, its
                    // lease). `resume` takes it up again, or releases it, once the store works.
                    // The receiver is gone only at shutdown; the next start takes it up then.
                    let _ = self.given_up.send(live.id);
                }
            }
        }
    }
}
