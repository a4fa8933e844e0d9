//! `longrun-worker-hub`: the server side of the worker protocol (`docs/worker-protocol.md`).
//!
//! A worker is a program on any machine that serves kinds of a `longrun serve` over HTTP. The
//! hub is what a node knows of the workers connected to it:
//!
//! - [`Hub::serve_kind`] registers a kind behind a gate ([`gate`]) whose handler is [`relay`]:
//!   each task waits, `submitted`, for a worker with room, is assigned to it, and its reports
//!   are relayed into the task while the answers and the cancellation are pushed to the worker.
//!   The node holds the task's lease as for any handler; a worker holds nothing durable, so a
//!   lost worker costs a re-assignment, never a corrupted task.
//! - [`Hub::register`], [`Hub::events`], [`Hub::heartbeat`], [`Hub::report`], [`Hub::drain`]
//!   and [`Hub::leave`] are the protocol's operations, for the `/v1` door to expose over HTTP.
//!   The hub knows principals as names; authenticating them is the door's gate.
//! - A sweep declares workers without a heartbeat for the expiry lost: their assignments are
//!   fenced off (a late report is refused) and their tasks follow the kind's restart policy.
//!
//! With several nodes on one PostgreSQL store, a worker connected to any node gets tasks started
//! on any node: a task this node cannot assign soon is handed over (released, still
//! `submitted`), and a node claims worker kinds' tasks only while its workers have room, asked
//! to look again whenever a worker registers or frees a slot (`Runtime::claim_soon`). A lost
//! worker's task that no worker here takes within [`HubOptions::hand_over_after`] goes the same
//! way, re-run on the other node from its last step (kinds that re-run).

mod gate;
mod outbox;
mod relay;
mod roster;
mod wire;

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_core::Stream;
use longrun::{KindSpec, Runtime, TaskId};
use parking_lot::RwLock;
use serde_json::Value;
use tokio::{sync::oneshot, time::Instant};

pub use outbox::{KEPT, WorkerEvent};
pub use roster::WorkerInfo;
pub use wire::{DeclaredKind, PROTOCOL, Registration};

use roster::{Loss, Roster, WorkerEntry};

/// The failure code of a task whose worker broke the protocol (a malformed report, a question
/// key used twice, a bound exceeded): the same as a process handler's.
pub const PROTOCOL_ERROR: &str = "protocol_error";

/// The hub's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubOptions {
    /// How often a worker is told to send its heartbeat.
    pub heartbeat: Duration,
    /// A worker silent for this long is lost.
    pub expiry: Duration,
    /// Whether anyone may serve any worker kind (a server without tokens); otherwise only the
    /// principals each kind names.
    pub open: bool,
    /// In a cluster: a task no worker here has taken for this long goes to another node whose
    /// workers have room (see the crate docs).
    pub hand_over_after: Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            expiry: Duration::from_secs(6),
            open: false,
            hand_over_after: Duration::from_secs(1),
        }
    }
}

/// What the configuration says of one worker kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerKind {
    /// Principals allowed to serve the kind; `"*"` allows every authenticated principal.
    pub served_by: Vec<String>,
    /// The configured input schema, if any: workers must declare the same one or none.
    pub input_schema: Option<Value>,
}

/// Why the hub refused an operation. Each has one HTTP status (see `docs/worker-protocol.md`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// The registration is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A declared kind is not a worker kind of this server.
    #[error("`{0}` is not a kind served by workers on this server")]
    UnknownKind(String),
    /// The principal may not serve a declared kind.
    #[error("this principal may not serve kind `{0}`; the kind's `served_by` must name it")]
    NotAllowed(String),
    /// A declared schema differs from the configured one.
    #[error("the input schema declared for kind `{0}` differs from the server's configuration")]
    SchemaMismatch(String),
    /// No such worker (it expired, left, or the server restarted): register again.
    #[error("no such worker: it left or expired; register again")]
    UnknownWorker,
    /// Another principal registered the worker.
    #[error("this worker was registered by another principal")]
    NotYours,
    /// The assignment is not this worker's any more: stop its handler.
    #[error("the assignment is not this worker's any more: the task ended or was re-assigned")]
    AssignmentGone,
    /// The report breaks the protocol; the task fails with `protocol_error`.
    #[error("{0}")]
    Protocol(String),
}

/// What a registration returns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registered {
    /// The worker's id, for every later call.
    pub worker: String,
    /// How often to send a heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// A worker silent this long is lost, in milliseconds.
    pub expiry_ms: u64,
    /// The version of the messages.
    pub protocol: u32,
}

/// What a heartbeat returns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heartbeat {
    /// The assignments the server counts as the worker's.
    pub assignments: Vec<String>,
    /// Whether the worker drains.
    pub draining: bool,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubCounts {
    /// Workers connected now.
    pub workers: usize,
    /// Tasks running on workers now.
    pub assigned: usize,
    /// Tasks waiting for a worker.
    pub waiting: usize,
    /// Assignments made since the server started.
    pub assignments_total: u64,
}

/// The workers connected to this node, and the tasks of worker kinds. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    runtime: Runtime,
    options: HubOptions,
    kinds: RwLock<HashMap<String, KindEntry>>,
    roster: Roster,
    assignments_total: std::sync::atomic::AtomicU64,
}

struct KindEntry {
    served_by: Vec<String>,
    /// The configured schema, if any: declared ones must equal it.
    schema: Option<Value>,
}

impl Hub {
    /// A hub for `runtime`. Starts the sweep that expires silent workers; it ends when the last
    /// clone of the hub is dropped. Needs a Tokio runtime with timers.
    pub fn new(runtime: Runtime, options: HubOptions) -> Self {
        let inner = Arc::new(Inner {
            runtime,
            options,
            kinds: RwLock::default(),
            roster: Roster::default(),
            assignments_total: Default::default(),
        });
        let weak = Arc::downgrade(&inner);
        let every = (options.expiry / 4).max(Duration::from_millis(50));
        #[expect(
            clippy::disallowed_methods,
            reason = "the sweep holds only a weak reference and ends with the last clone of the hub"
        )]
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.sweep();
            }
        });
        Self { inner }
    }

    /// The hub's timings.
    pub fn options(&self) -> HubOptions {
        self.inner.options
    }

    /// Registers `spec` on the runtime as a kind served by workers.
    pub fn serve_kind(&self, spec: KindSpec, kind: WorkerKind) -> Result<(), longrun::Error> {
        let entry = KindEntry {
            served_by: kind.served_by,
            schema: kind.input_schema,
        };
        self.inner.kinds.write().insert(spec.name.clone(), entry);
        let inner = self.inner.clone();
        let gate = Arc::new(gate::KindGate {
            hub: self.inner.clone(),
        });
        self.inner
            .runtime
            .register_stream_gated(spec, gate, move |ctx, input: Value| {
                futures_util::stream::once(relay::run(inner.clone(), ctx, input))
            })
    }

    /// Whether `kind` is served by workers here.
    pub fn serves(&self, kind: &str) -> bool {
        self.inner.kinds.read().contains_key(kind)
    }

    /// `POST /v1/workers`.
    pub fn register(
        &self,
        principal: &str,
        registration: Registration,
    ) -> Result<Registered, HubError> {
        let Registration {
            name,
            capacity,
            kinds: declared,
        } = registration;
        if capacity == 0 {
            return Err(HubError::Invalid("`capacity` must be at least 1".into()));
        }
        if declared.is_empty() {
            return Err(HubError::Invalid(
                "`kinds` must name at least one kind".into(),
            ));
        }
        let mut kinds = HashMap::with_capacity(declared.len());
        {
            let configured = self.inner.kinds.read();
            for DeclaredKind { name, input_schema } in declared {
                let entry = configured
                    .get(&name)
                    .ok_or_else(|| HubError::UnknownKind(name.clone()))?;
                let allowed = self.inner.options.open
                    || entry.served_by.iter().any(|p| p == principal || p == "*");
                if !allowed {
                    return Err(HubError::NotAllowed(name));
                }
                let validator = match (&entry.schema, input_schema) {
                    (Some(configured), Some(declared)) if *configured != declared => {
                        return Err(HubError::SchemaMismatch(name));
                    }
                    (None, Some(declared)) => Some(Arc::new(
                        jsonschema::validator_for(&declared).map_err(|error| {
                            HubError::Invalid(format!(
                                "the input schema of kind `{name}` does not compile: {error}"
                            ))
                        })?,
                    )),
                    _ => None,
                };
                kinds.insert(name, validator);
            }
        }
        let id: Arc<str> = format!("wkr_{}", uuid::Uuid::new_v4().simple()).into();
        let now = Instant::now();
        tracing::info!(worker = %id, %name, principal, capacity, kinds = ?kinds.keys().collect::<Vec<_>>(), "worker registered");
        self.inner.roster.add(
            id.clone(),
            WorkerEntry {
                name,
                principal: principal.to_owned(),
                kinds,
                capacity,
                held: Default::default(),
                draining: false,
                last_heartbeat: now,
                connected: now,
                outbox: Default::default(),
            },
        );
        self.inner.dispatch();
        // Room for tasks waiting for a worker anywhere in the cluster.
        self.inner.runtime.claim_soon();
        Ok(Registered {
            worker: id.to_string(),
            heartbeat_ms: millis(self.inner.options.heartbeat),
            expiry_ms: millis(self.inner.options.expiry),
            protocol: PROTOCOL,
        })
    }

    /// `GET /v1/workers/{worker}/events`: the events after `last_event_id`, then the new ones.
    pub fn events(
        &self,
        worker: &str,
        principal: &str,
        last_event_id: Option<u64>,
    ) -> Result<impl Stream<Item = Arc<WorkerEvent>> + Send + 'static, HubError> {
        Ok(self
            .inner
            .roster
            .outbox(worker, principal)?
            .stream(last_event_id))
    }

    /// `POST /v1/workers/{worker}/heartbeat`.
    pub fn heartbeat(&self, worker: &str, principal: &str) -> Result<Heartbeat, HubError> {
        let (assignments, draining) = self.inner.roster.heartbeat(worker, principal)?;
        Ok(Heartbeat {
            assignments,
            draining,
        })
    }

    /// `POST /v1/workers/{worker}/assignments/{assignment}/reports`: records one report and
    /// returns once it is (a step: once it is durable).
    pub async fn report(
        &self,
        worker: &str,
        principal: &str,
        assignment: &str,
        report: Value,
    ) -> Result<(), HubError> {
        let relay = self.inner.roster.route(worker, principal, assignment)?;
        let (reply, recorded) = oneshot::channel();
        relay
            .send((report, reply))
            .await
            .map_err(|_| HubError::AssignmentGone)?;
        match recorded.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(relay::Refused::Protocol(reason))) => Err(HubError::Protocol(reason)),
            Ok(Err(relay::Refused::Ended)) | Err(_) => Err(HubError::AssignmentGone),
        }
    }

    /// `POST /v1/workers/{worker}/drain`: no new assignments.
    pub fn drain(&self, worker: &str, principal: &str) -> Result<(), HubError> {
        self.inner.roster.drain(worker, principal)
    }

    /// `DELETE /v1/workers/{worker}`: the worker leaves; its tasks are assigned again.
    pub fn leave(&self, worker: &str, principal: &str) -> Result<(), HubError> {
        self.inner.roster.leave(worker, principal)?;
        tracing::info!(%worker, "worker left");
        Ok(())
    }

    /// The connected workers: `principal`'s own, or all of them for `None`.
    pub fn workers(&self, principal: Option<&str>) -> Vec<WorkerInfo> {
        self.inner.roster.list(principal)
    }

    /// The worker running `task` here, if any: its id and name.
    pub fn worker_of(&self, task: TaskId) -> Option<(String, String)> {
        self.inner.roster.worker_of(task)
    }

    /// Counts for `/metrics`.
    pub fn counts(&self) -> HubCounts {
        let (workers, assigned, waiting) = self.inner.roster.counts();
        HubCounts {
            workers,
            assigned,
            waiting,
            assignments_total: self
                .inner
                .assignments_total
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl Inner {
    /// Assigns what can be, and delivers outside the roster's lock. An assignment whose task
    /// stopped waiting in the meantime is released, which may make room for another.
    fn dispatch(&self) {
        loop {
            let deliveries = self.roster.dispatch();
            if deliveries.is_empty() {
                return;
            }
            let mut released = false;
            for (reply, assigned) in deliveries {
                if assigned.is_ok() {
                    self.assignments_total
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if let Err(Ok(assigned)) = reply.send(assigned) {
                    self.roster.release(&assigned.id);
                    released = true;
                }
            }
            if !released {
                return;
            }
        }
    }

    /// Declares the silent workers lost.
    fn sweep(&self) {
        for id in self.roster.expired(self.options.expiry) {
            if let Some(worker) = self.roster.remove(&id, Loss::Expired) {
                tracing::warn!(worker = %id, name = %worker.name, tasks = worker.held.len(), "worker lost: no heartbeat");
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
