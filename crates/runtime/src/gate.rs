//! Gates: what a kind needs from this node before its handler may start here.
//!
//! Most kinds can start on any node that hosts them. A kind served by workers can start only
//! where a worker with room is connected, and in a cluster such a worker may be connected to
//! another node. A [`Gate`] says so:
//!
//! - before each attempt the supervisor waits at the kind's gate ([`Gate::enter`]) with the task
//!   still `submitted`; it records the start (`working`, `attempt` + 1) only once the gate lets
//!   it in, so a task that waited and then moved elsewhere was never started here, and counts
//!   no attempt and no interruption;
//! - a gate may answer [`Entry::HandOver`] (only in a cluster): the node then gives the task up
//!   without writing anything and releases its lease, and a node whose gate has room claims it;
//! - a node claims tasks of a gated kind only while [`Gate::room`] says it could run them, and
//!   [`Runtime::claim_soon`](crate::Runtime::claim_soon) asks it to look again when room appears.
//!
//! What the gate reserved for the task (a worker's slot) travels to the handler as a [`Ticket`]
//! ([`Context::take_ticket`](crate::Context::take_ticket)); a ticket the handler never takes is
//! dropped when the attempt ends, which is how a gate frees what it reserved.

use std::{any::Any, sync::Arc};

use longrun_core::{TaskId, store::BoxFuture};
use serde_json::Value;

/// What a gate reserved for one attempt, for the kind's handler to take.
pub type Ticket = Box<dyn Any + Send>;

/// What a gate decided for a task waiting at it.
pub enum Entry {
    /// Start the attempt here, with what the gate reserved for it.
    Enter(Ticket),
    /// Give the task to another node: nothing here can run it soon.
    HandOver,
}

/// One task waiting at a gate.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The task.
    pub task: TaskId,
    /// Its kind.
    pub kind: Arc<str>,
    /// Its input.
    pub input: Arc<Value>,
    /// Whether the task may be handed over ([`Entry::HandOver`]): the runtime is a node of a
    /// cluster, not shutting down, and the task has no terminal callback (which lives in this
    /// process only). Otherwise the gate waits for as long as it takes.
    pub may_hand_over: bool,
    /// Whether the task was started on this node a moment ago and never waited anywhere:
    /// without room here, handing it over at once costs nobody anything.
    pub fresh: bool,
}

/// What a kind needs from a node before its handler may start there. See the module docs.
pub trait Gate: Send + Sync + 'static {
    /// How many more tasks of `kind` this node could start now.
    fn room(&self, kind: &str) -> usize;

    /// Waits until the task may start here, or until it should go to another node. The
    /// runtime drops the future if the task is cancelled or passes its deadline meanwhile.
    fn enter(&self, waiting: Waiting) -> BoxFuture<'static, Entry>;
}
