//! Concurrency limits: global, per kind and per owner.
//!
//! A start that fits takes one slot of each limit that applies; a start that does not either
//! queues or is rejected, by the kind's [`OverLimit`](longrun_core::OverLimit) policy. The
//! queue is served first come, first served whenever a slot frees; a queued task is passed only
//! by tasks that share none of the limits it waits for. Tasks under no limit never touch the
//! lock.

use std::collections::{HashMap, VecDeque};

use longrun_core::{Owner, TaskId};
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The runtime-wide limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most this many tasks run at once, all kinds together.
    pub global: Option<usize>,
    /// At most this many tasks of one owner run at once.
    pub per_owner: Option<usize>,
}

pub(crate) struct Admission {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: usize,
    by_kind: HashMap<String, usize>,
    by_owner: HashMap<Owner, usize>,
    queue: VecDeque<Waiting>,
}

struct Waiting {
    id: TaskId,
    slot: Slot,
    admit: oneshot::Sender<()>,
}

/// The limits one task is counted against.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) kind: String,
    pub(crate) kind_limit: Option<usize>,
    pub(crate) owner: Owner,
}

/// What a start may do now.
pub(crate) enum Decision {
    /// Run now.
    Run,
    /// Wait until this resolves.
    Queued(oneshot::Receiver<()>),
    /// Over a limit and the policy says reject; the message says which limit.
    Full(String),
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether a task of a kind with `kind_limit` is counted at all.
    pub(crate) fn applies(&self, kind_limit: Option<usize>) -> bool {
        self.limits.global.is_some() || self.limits.per_owner.is_some() || kind_limit.is_some()
    }

    pub(crate) fn admit(&self, id: TaskId, slot: &Slot, queue: bool) -> Decision {
        let mut state = self.state.lock();
        // A newcomer that fits shares no full limit with any queued task (a shared limit that
        // is full would stop it too), and `release` hands freed slots to the queue first under
        // this same lock, so running it now never takes a slot a queued task could use.
        match self.full(&state, slot) {
            None => {
                take(&mut state, slot);
                Decision::Run
            }
            Some(_) if queue => {
                let (admit, admitted) = oneshot::channel();
                state.queue.push_back(Waiting {
                    id,
                    slot: slot.clone(),
                    admit,
                });
                Decision::Queued(admitted)
            }
            Some(why) => Decision::Full(why),
        }
    }

    /// Gives back a finished task's slots and admits whatever now fits.
    pub(crate) fn release(&self, slot: &Slot) {
        let mut state = self.state.lock();
        give_back(&mut state, slot);
        self.admit_queued(&mut state);
    }

    /// Takes a queued task out of the queue (it was cancelled). Returns false if it had already
    /// been admitted, in which case its slots are held and must be released.
    pub(crate) fn withdraw(&self, id: TaskId) -> bool {
        let mut state = self.state.lock();
        let Some(at) = state.queue.iter().position(|w| w.id == id) else {
            return false;
        };
        state.queue.remove(at);
        self.admit_queued(&mut state);
        true
    }

    fn admit_queued(&self, state: &mut State) {
        let mut i = 0;
        while i < state.queue.len() {
            if self.full(state, &state.queue[i].slot).is_none() {
                let waiting = state.queue.remove(i).expect("index is in bounds");
                take(state, &waiting.slot);
                if waiting.admit.send(()).is_err() {
                    // Its supervisor is gone (the runtime shut down): nobody will release.
                    give_back(state, &waiting.slot);
                }
            } else {
                i += 1;
            }
        }
    }

    fn full(&self, state: &State, slot: &Slot) -> Option<String> {
        if let Some(limit) = self.limits.global
            && state.running >= limit
        {
            return Some(format!(
                "the global limit of {limit} running tasks is reached"
            ));
        }
        if let Some(limit) = slot.kind_limit
            && state.by_kind.get(&slot.kind).copied().unwrap_or(0) >= limit
        {
            return Some(format!(
                "the limit of {limit} running tasks of kind `{}` is reached",
                slot.kind
            ));
        }
        if let Some(limit) = self.limits.per_owner
            && state.by_owner.get(&slot.owner).copied().unwrap_or(0) >= limit
        {
            return Some(format!(
                "the limit of {limit} running tasks for owner `{}` is reached",
                slot.owner
            ));
        }
        None
    }
}

fn take(state: &mut State, slot: &Slot) {
    state.running += 1;
    *state.by_kind.entry(slot.kind.clone()).or_default() += 1;
    *state.by_owner.entry(slot.owner.clone()).or_default() += 1;
}

fn give_back(state: &mut State, slot: &Slot) {
    state.running = state.running.saturating_sub(1);
    decrement(&mut state.by_kind, &slot.kind);
    decrement(&mut state.by_owner, &slot.owner);
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}
