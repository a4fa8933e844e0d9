//! The runtime's record of a task that has not ended yet.
//!
//! # Invariants
//!
//! - `LiveState::state` and `LiveState::seq` are the task's state and last sequence number as
//!   staged; the store has received every staged event, in sequence, because events are handed
//!   to the store while this lock is held.
//! - `unpublished` holds the staged events whose ack has not resolved, in sequence; `published`
//!   is the last event told to anyone. Nobody learns of an event before the store acked it.
//! - Lock order: a `Live`'s lock may be taken while holding nothing, or while holding the
//!   admission lock is *not* allowed (admission never calls back into a task).
//! - The trace's span lock is a leaf: it may be taken while holding the state lock, and nothing
//!   is locked while it is held.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use longrun_core::{
    CancelReason, Event, Owner, Routing, Seq, Session, State, Status, TaskId, store::BoxFuture,
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, broadcast, oneshot};

use crate::{registry::KindEntry, trace::Trace};

/// Runs once, after a task's end is written.
pub(crate) type TerminalCallback =
    Box<dyn FnOnce(longrun_core::Task) -> BoxFuture<'static, ()> + Send>;

/// What every published event is paired with on the all-tasks stream, so subscribers can filter
/// without a lookup. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// The task's kind.
    pub kind: Arc<str>,
    /// Its owner.
    pub owner: Owner,
    /// Its session.
    pub session: Option<Session>,
}

pub(crate) struct Live {
    pub(crate) id: TaskId,
    pub(crate) kind: Arc<KindEntry>,
    pub(crate) info: TaskInfo,
    pub(crate) routing: Routing,
    /// Set once when cancellation is requested; waiters are woken through `changed`.
    cancel_requested: AtomicBool,
    /// Set once when this runtime gives the task up without writing its end: a durable write
    /// failed, or another node took the task over. Implies `cancel_requested`.
    lost: AtomicBool,
    /// Woken when the task ends, detaches or is asked to cancel; each waiter re-checks its own
    /// condition, so one notifier serves them all.
    pub(crate) changed: Notify,
    pub(crate) on_terminal: Mutex<Option<TerminalCallback>>,
    pub(crate) state: Mutex<LiveState>,
    /// The task's trace and its open `task` span.
    pub(crate) trace: Trace,
}

pub(crate) struct LiveState {
    pub(crate) state: State,
    pub(crate) seq: Seq,
    pub(crate) published: Seq,
    /// Whether the terminal event has been published (the end is durable).
    pub(crate) ended: bool,
    pub(crate) unpublished: std::collections::VecDeque<Arc<Event>>,
    /// Created on the first subscription, dropped when nobody listens.
    pub(crate) subscribers: Option<broadcast::Sender<Arc<Event>>>,
    pub(crate) asks: HashMap<String, AskSlot>,
    pub(crate) cancel_reason: Option<CancelReason>,
    pub(crate) detached: bool,
    pub(crate) attempt: u32,
    /// Whether the task holds admission slots that must be released at its end.
    pub(crate) holds_slot: bool,
    /// What earlier attempts saved (steps, timers), as read when this attempt began.
    pub(crate) journal: crate::journal::Journal,
    /// What the kind's gate reserved for this attempt, until the handler takes it.
    pub(crate) ticket: Option<crate::gate::Ticket>,
    /// Whether this runtime created the task and has not handed it anywhere since: only such
    /// a task may be handed over at once when its gate has no room (nobody else knows it yet).
    pub(crate) fresh: bool,
    /// Every event published since the task was created, for a starter that asked for them
    /// ([`StartOptions::keep_events`](crate::StartOptions::keep_events)); `None` when nobody
    /// asked, once they were taken, or once there were more than [`KEPT_EVENTS`].
    pub(crate) kept: Option<Vec<Arc<Event>>>,
}

/// The most events a task keeps for its starter; past that, the starter reads the log.
pub(crate) const KEPT_EVENTS: usize = 64;

/// Where one question key stands. Keys name one question for the task's whole life.
pub(crate) enum AskSlot {
    /// Answered before the handler asked; the handler gets it at once.
    Early(Value),
    /// The handler waits on this.
    Waiting(oneshot::Sender<Value>),
    /// Asked and answered.
    Answered,
    /// Asked; nobody answered in time.
    TimedOut,
}

impl Live {
    /// The record of a task just created: `first` is its `submitted` event (it names the
    /// task), not yet durable.
    pub(crate) fn new(
        kind: Arc<KindEntry>,
        info: TaskInfo,
        routing: Routing,
        holds_slot: bool,
        on_terminal: Option<TerminalCallback>,
        first: Arc<Event>,
        trace: Trace,
    ) -> Self {
        let id = first.task;
        let state = LiveState {
            state: State::Submitted,
            seq: first.seq,
            published: Seq::ZERO,
            ended: false,
            unpublished: std::collections::VecDeque::from([first]),
            subscribers: None,
            asks: HashMap::new(),
            cancel_reason: None,
            detached: false,
            attempt: 0,
            holds_slot,
            journal: Default::default(),
            ticket: None,
            fresh: true,
            kept: None,
        };
        Self::build(id, kind, info, routing, on_terminal, state, trace)
    }

    /// The record of a stored task this runtime takes up again: after a restart, or claimed
    /// from another node. Everything stored is durable, so everything counts as published;
    /// answers already given are kept for the handler's questions (the replay).
    pub(crate) fn resume(
        task: &longrun_core::Task,
        kind: Arc<KindEntry>,
        info: TaskInfo,
        answers: impl IntoIterator<Item = (String, Value)>,
    ) -> Self {
        let state = LiveState {
            state: task.state().clone(),
            seq: task.last_seq(),
            published: task.last_seq(),
            ended: false,
            unpublished: std::collections::VecDeque::new(),
            subscribers: None,
            asks: answers
                .into_iter()
                .map(|(key, value)| (key, AskSlot::Early(value)))
                .collect(),
            cancel_reason: None,
            detached: task.is_detached(),
            attempt: task.attempt(),
            holds_slot: false,
            journal: Default::default(),
            ticket: None,
            fresh: false,
            kept: None,
        };
        let trace = Trace::resume(task.id, &task.kind, task.trace.clone());
        // Whoever waited in the foreground is gone: the outcome goes to the inbox.
        Self::build(task.id, kind, info, Routing::Background, None, state, trace)
    }

    fn build(
        id: TaskId,
        kind: Arc<KindEntry>,
        info: TaskInfo,
        routing: Routing,
        on_terminal: Option<TerminalCallback>,
        state: LiveState,
        trace: Trace,
    ) -> Self {
        Self {
            id,
            kind,
            info,
            routing,
            cancel_requested: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            changed: Notify::new(),
            on_terminal: Mutex::new(on_terminal),
            state: Mutex::new(state),
            trace,
        }
    }

    /// Whether the foreground caller should stop waiting: the task ended or detached.
    pub(crate) fn ended_or_detached(&self) -> bool {
        let state = self.state.lock();
        state.detached || state.ended
    }

    /// Asks the handler to stop: `is_cancelled` turns true and `cancelled` resolves.
    pub(crate) fn request_cancel(&self) {
        self.cancel_requested.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Gives the task up (see `lost`); returns false if it was already given up.
    pub(crate) fn mark_lost(&self) -> bool {
        let first = !self.lost.swap(true, Ordering::AcqRel);
        self.request_cancel();
        first
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel_requested.load(Ordering::Acquire)
    }

    /// Resolves once cancellation has been requested.
    pub(crate) async fn cancelled(&self) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            changed.await;
        }
    }

    /// Whether the task's end is durable and published.
    pub(crate) fn is_ended(&self) -> bool {
        self.state.lock().ended
    }

    /// The task's status as staged (its last change may not be durable yet).
    pub(crate) fn status(&self) -> Status {
        self.state.lock().state.status()
    }
}
