//! Who is connected, what each holds, and which tasks wait: the hub's state, under one lock.
//!
//! Invariants:
//! - An assignment is in `assignments` exactly while it counts against its worker's capacity
//!   (it is in the worker's `held`); removing one always does both.
//! - A waiting task is assigned, first come first served, as soon as a worker with room serves
//!   its kind; [`Roster::dispatch`] runs after everything that can make room (a registration,
//!   a released assignment). It hands back what it assigned, to be delivered outside the lock:
//!   delivering can drop an [`Assigned`] whose guard takes the lock again.
//! - A worker that leaves or is lost is removed with all its assignments at once: its late
//!   reports find nothing (the fence), and each relay learns of the loss through its `lost`
//!   channel.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use jsonschema::Validator;
use longrun::TaskId;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{HubError, outbox::Outbox, relay::Incoming};

/// Why an assignment was taken from its worker while the task still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// No heartbeat for the expiry: the worker is presumed dead (its restart policy applies).
    Expired,
    /// The worker left (`DELETE`): it handed the task back; nothing crashed.
    Left,
}

pub(crate) struct WorkerEntry {
    pub(crate) name: String,
    pub(crate) principal: String,
    /// The kinds it serves, each with the input schema it declared when the configuration has
    /// none for the kind.
    pub(crate) kinds: HashMap<String, Option<Arc<Validator>>>,
    pub(crate) capacity: usize,
    pub(crate) held: HashSet<Arc<str>>,
    pub(crate) draining: bool,
    pub(crate) last_heartbeat: Instant,
    pub(crate) connected: Instant,
    pub(crate) outbox: Arc<Outbox>,
}

impl WorkerEntry {
    fn room(&self, kind: &str) -> Option<usize> {
        let serves = self.kinds.contains_key(kind) && !self.draining;
        (serves && self.held.len() < self.capacity).then(|| self.capacity - self.held.len())
    }
}

struct AssignmentEntry {
    worker: Arc<str>,
    task: TaskId,
    reports: mpsc::Sender<Incoming>,
    lost: Option<oneshot::Sender<Loss>>,
}

/// A task waiting for a worker.
pub(crate) struct Waiter {
    pub(crate) task: TaskId,
    pub(crate) kind: String,
    pub(crate) input: Arc<Value>,
    pub(crate) reply: oneshot::Sender<Result<Assigned, String>>,
}

/// What a relay gets when its task is assigned.
pub(crate) struct Assigned {
    pub(crate) id: Arc<str>,
    pub(crate) worker: Arc<str>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) reports: mpsc::Receiver<Incoming>,
    pub(crate) lost: oneshot::Receiver<Loss>,
}

/// One worker as listed by `GET /v1/workers`, the dashboard and the metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkerInfo {
    /// Its id (`wkr_…`).
    pub id: String,
    /// The name it registered with.
    pub name: String,
    /// The principal it authenticated as.
    pub principal: String,
    /// The kinds it serves.
    pub kinds: Vec<String>,
    /// How many tasks it runs at once.
    pub capacity: usize,
    /// The tasks it runs now.
    pub tasks: Vec<String>,
    /// Whether it takes new tasks.
    pub draining: bool,
    /// How long ago its last heartbeat came, in milliseconds.
    pub last_heartbeat_ms_ago: u64,
    /// How long it has been connected, in milliseconds.
    pub connected_ms: u64,
}

#[derive(Default)]
pub(crate) struct Roster {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    workers: HashMap<Arc<str>, WorkerEntry>,
    waiting: VecDeque<Waiter>,
    assignments: HashMap<Arc<str>, AssignmentEntry>,
}

/// A pending delivery of [`Roster::dispatch`]'s.
pub(crate) type Delivery = (
    oneshot::Sender<Result<Assigned, String>>,
    Result<Assigned, String>,
);

impl Roster {
    pub(crate) fn add(&self, id: Arc<str>, worker: WorkerEntry) {
        self.state.lock().workers.insert(id, worker);
    }

    /// The worker `id` if `principal` registered it.
    fn check<'a>(
        state: &'a mut State,
        id: &str,
        principal: &str,
    ) -> Result<&'a mut WorkerEntry, HubError> {
        let worker = state.workers.get_mut(id).ok_or(HubError::UnknownWorker)?;
        if worker.principal != principal {
            return Err(HubError::NotYours);
        }
        Ok(worker)
    }

    pub(crate) fn outbox(&self, id: &str, principal: &str) -> Result<Arc<Outbox>, HubError> {
        let mut state = self.state.lock();
        Ok(Self::check(&mut state, id, principal)?.outbox.clone())
    }

    /// Renews the worker; returns the assignments it holds and whether it drains.
    pub(crate) fn heartbeat(
        &self,
        id: &str,
        principal: &str,
    ) -> Result<(Vec<String>, bool), HubError> {
        let mut state = self.state.lock();
        let worker = Self::check(&mut state, id, principal)?;
        worker.last_heartbeat = Instant::now();
        let mut held: Vec<String> = worker.held.iter().map(|id| id.to_string()).collect();
        held.sort();
        Ok((held, worker.draining))
    }

    pub(crate) fn drain(&self, id: &str, principal: &str) -> Result<(), HubError> {
        let mut state = self.state.lock();
        Self::check(&mut state, id, principal)?.draining = true;
        Ok(())
    }

    /// Where a report for `assignment` goes, if it is `worker`'s.
    pub(crate) fn route(
        &self,
        worker: &str,
        principal: &str,
        assignment: &str,
    ) -> Result<mpsc::Sender<Incoming>, HubError> {
        let mut state = self.state.lock();
        Self::check(&mut state, worker, principal)?;
        match state.assignments.get(assignment) {
            Some(entry) if &*entry.worker == worker => Ok(entry.reports.clone()),
            _ => Err(HubError::AssignmentGone),
        }
    }

    /// Removes a worker that left or was lost, with its assignments; their relays learn why.
    pub(crate) fn remove(&self, id: &str, loss: Loss) -> Option<WorkerEntry> {
        let mut state = self.state.lock();
        let worker = state.workers.remove(id)?;
        for assignment in &worker.held {
            if let Some(mut entry) = state.assignments.remove(assignment)
                && let Some(lost) = entry.lost.take()
            {
                // The relay may be gone already; then there is nobody to tell.
                let _ = lost.send(loss);
            }
        }
        worker.outbox.close();
        Some(worker)
    }

    /// Removes a worker if `principal` registered it.
    pub(crate) fn leave(&self, id: &str, principal: &str) -> Result<(), HubError> {
        {
            let mut state = self.state.lock();
            Self::check(&mut state, id, principal)?;
        }
        self.remove(id, Loss::Left);
        Ok(())
    }

    /// The workers silent for longer than `expiry`.
    pub(crate) fn expired(&self, expiry: Duration) -> Vec<Arc<str>> {
        let state = self.state.lock();
        state
            .workers
            .iter()
            .filter(|(_, worker)| worker.last_heartbeat.elapsed() > expiry)
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub(crate) fn wait(&self, waiter: Waiter) {
        self.state.lock().waiting.push_back(waiter);
    }

    /// Ends an assignment: the worker gets its room back. Returns the worker's outbox when the
    /// assignment was still held (so a revoke can be pushed).
    pub(crate) fn release(&self, assignment: &str) -> Option<Arc<Outbox>> {
        let mut state = self.state.lock();
        let entry = state.assignments.remove(assignment)?;
        let worker = state.workers.get_mut(&entry.worker)?;
        worker.held.remove(assignment);
        Some(worker.outbox.clone())
    }

    /// How many more tasks of `kind` the workers here could take now: their free slots, less
    /// the tasks of the kind already waiting for one.
    pub(crate) fn room(&self, kind: &str) -> usize {
        let state = self.state.lock();
        let free: usize = state
            .workers
            .values()
            .filter_map(|worker| worker.room(kind))
            .sum();
        let waiting = state
            .waiting
            .iter()
            .filter(|w| w.kind == kind && !w.reply.is_closed())
            .count();
        free.saturating_sub(waiting)
    }

    /// Assigns waiting tasks to workers with room, first come first served.
    pub(crate) fn dispatch(&self) -> Vec<Delivery> {
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut deliveries = Vec::new();
        let mut still = VecDeque::with_capacity(state.waiting.len());
        while let Some(waiter) = state.waiting.pop_front() {
            if waiter.reply.is_closed() {
                continue;
            }
            let best = state
                .workers
                .iter()
                .filter_map(|(id, worker)| worker.room(&waiter.kind).map(|room| (room, id)))
                .max_by_key(|(room, _)| *room)
                .map(|(_, id)| id.clone());
            let Some(worker_id) = best else {
                still.push_back(waiter);
                continue;
            };
            let worker = state.workers.get_mut(&worker_id).expect("just found");
            if let Some(Some(validator)) = worker.kinds.get(&waiter.kind)
                && let Err(error) = validator.validate(&waiter.input)
            {
                let why = format!(
                    "the input does not match the schema of kind `{}` that its worker declared: {error}",
                    waiter.kind
                );
                deliveries.push((waiter.reply, Err(why)));
                continue;
            }
            let id: Arc<str> = format!("asg_{}", uuid::Uuid::new_v4().simple()).into();
            let (reports_tx, reports) = mpsc::channel(1);
            let (lost_tx, lost) = oneshot::channel();
            worker.held.insert(id.clone());
            let assigned = Assigned {
                id: id.clone(),
                worker: worker_id.clone(),
                outbox: worker.outbox.clone(),
                reports,
                lost,
            };
            state.assignments.insert(
                id,
                AssignmentEntry {
                    worker: worker_id,
                    task: waiter.task,
                    reports: reports_tx,
                    lost: Some(lost_tx),
                },
            );
            deliveries.push((waiter.reply, Ok(assigned)));
        }
        state.waiting = still;
        deliveries
    }

    pub(crate) fn list(&self, principal: Option<&str>) -> Vec<WorkerInfo> {
        let state = self.state.lock();
        let mut workers: Vec<WorkerInfo> = state
            .workers
            .iter()
            .filter(|(_, worker)| principal.is_none_or(|p| worker.principal == p))
            .map(|(id, worker)| {
                let mut kinds: Vec<String> = worker.kinds.keys().cloned().collect();
                kinds.sort();
                let mut tasks: Vec<String> = worker
                    .held
                    .iter()
                    .filter_map(|a| state.assignments.get(a))
                    .map(|entry| entry.task.to_string())
                    .collect();
                tasks.sort();
                WorkerInfo {
                    id: id.to_string(),
                    name: worker.name.clone(),
                    principal: worker.principal.clone(),
                    kinds,
                    capacity: worker.capacity,
                    tasks,
                    draining: worker.draining,
                    last_heartbeat_ms_ago: millis(worker.last_heartbeat.elapsed()),
                    connected_ms: millis(worker.connected.elapsed()),
                }
            })
            .collect();
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        workers
    }

    /// The worker running `task` on this node: its id and name.
    pub(crate) fn worker_of(&self, task: TaskId) -> Option<(String, String)> {
        let state = self.state.lock();
        let entry = state
            .assignments
            .values()
            .find(|entry| entry.task == task)?;
        let worker = state.workers.get(&entry.worker)?;
        Some((entry.worker.to_string(), worker.name.clone()))
    }

    /// (workers, assignments held now, tasks waiting for a worker)
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let state = self.state.lock();
        (
            state.workers.len(),
            state.assignments.len(),
            state
                .waiting
                .iter()
                .filter(|w| !w.reply.is_closed())
                .count(),
        )
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
