//! What a store shared by several nodes adds to [`Store`](crate::store::Store): leases, claims,
//! signals between nodes and wake-up notices.
//!
//! A single-process store (in-memory, SQLite) does not implement [`Cluster`]: its runtime owns
//! every task and resumes the unfinished ones at start-up. A shared store (PostgreSQL) does, and
//! then each task that has not ended is *held* by at most one node at a time:
//!
//! - A node holds a task through a **lease**: its node name, a fencing token that grows with
//!   every claim, and an expiry. The node renews the leases of all the tasks it holds in one
//!   statement per interval ([`Cluster::renew`]).
//! - A task is **claimable** when nobody holds it: submitted without a holder, released by a
//!   node that shut down, held by a node whose lease expired (the node died: it is *rescued*), or
//!   held under this node's own name by an earlier incarnation of it (a restart).
//! - Writes for a task held by another node, or whose lease this node lost, fail with
//!   [`Error::Fenced`]: a stale node's late completion is refused.
//! - Another node cannot append to a task it does not hold (the holder owns the sequence), so a
//!   cancel request or an answer to `ask` travels as a [`Signal`] that the holder takes and
//!   applies.
//! - [`Notice`]s are pushed between nodes (LISTEN/NOTIFY on PostgreSQL) so nobody polls in the
//!   common case, but they are only hints: the database is the source of truth, and a node that
//!   missed one catches up at its next renewal.

use std::{fmt, pin::Pin, sync::Arc, time::Duration};

use futures_core::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    event::{Event, Seq},
    id::TaskId,
    store::{Ack, BoxFuture, Error},
    task::{CancelReason, Task},
};

/// A node's name in a cluster. It must be unique among the nodes running at the same time; a
/// node that restarts under the same name takes its earlier incarnation's tasks back at once
/// instead of waiting for their leases to expire.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// A node name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

/// A request for the node that holds a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// Cancel the task.
    Cancel {
        /// Why.
        reason: CancelReason,
    },
    /// The answer to the handler's question `key`.
    Answer {
        /// The question's key.
        key: String,
        /// The answer.
        value: Value,
    },
}

/// A signal taken by the node that holds its task.
#[derive(Debug, Clone, PartialEq)]
pub struct Signalled {
    /// The task.
    pub task: TaskId,
    /// The request.
    pub signal: Signal,
}

/// A wake-up pushed between nodes. Notices are hints: act on them by reading the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Claimable tasks may exist: try [`Cluster::claim`].
    Claimable,
    /// A signal waits for `task`: its holder should [`Cluster::take_signals`].
    Signalled {
        /// The task.
        task: TaskId,
    },
    /// Events of `task` through `seq` are durable: watchers on other nodes read the log.
    Appended {
        /// The task.
        task: TaskId,
        /// Its latest durable event.
        seq: Seq,
    },
    /// Events of more tasks were appended than one notice could list: watchers re-read what
    /// they watch. Claims and signals are not affected (they are always listed).
    AppendedMany,
    /// Notices may have been missed (a listener reconnected, or a batch had too many to send):
    /// take signals, claim, and re-read everything being watched.
    Missed,
}

/// What a node asks of [`Cluster::claim`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    /// The kinds whose claimable tasks it takes.
    pub kinds: Vec<String>,
    /// Kinds whose claimable tasks it takes only when a signal waits for them: kinds it hosts
    /// but cannot run now (no free worker), whose tasks must still be cancelled and answered
    /// when nobody can run them.
    pub signalled: Vec<String>,
    /// At most this many tasks.
    pub limit: usize,
}

impl Claim {
    /// Up to `limit` claimable tasks of `kinds`.
    pub fn new(kinds: Vec<String>, limit: usize) -> Self {
        Self {
            kinds,
            signalled: Vec::new(),
            limit,
        }
    }

    /// Whether the claim can take nothing.
    pub fn is_empty(&self) -> bool {
        self.limit == 0 || (self.kinds.is_empty() && self.signalled.is_empty())
    }
}

/// A stream of [`Notice`]s.
pub type NoticeStream = Pin<Box<dyn Stream<Item = Notice> + Send>>;

/// What a node holds after a renewal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Renewal {
    /// How many leases were extended.
    pub renewed: usize,
    /// Tasks this node held but holds no more (another node rescued them after this node's
    /// lease expired): their handlers must stop, and their writes are fenced off.
    pub lost: Vec<TaskId>,
}

/// A store shared by several nodes. See the module docs.
pub trait Cluster: Send + Sync {
    /// This node.
    fn node(&self) -> &NodeId;

    /// How long a lease lasts without renewal. A node that could not renew for this long must
    /// assume its tasks are being rescued elsewhere and stop their handlers (fail-stop), so
    /// that a node cut off from the database does not keep running work another node re-runs.
    fn lease_ttl(&self) -> Duration;

    /// Stores a new task held by this node, which will run it: [`TaskStore::create`] plus the
    /// lease, with the same ordering and durability rules.
    ///
    /// [`TaskStore::create`]: crate::store::TaskStore::create
    fn create_held(&self, task: &Task, first: &Arc<Event>) -> Ack;

    /// Claims up to `claim.limit` claimable tasks of `claim.kinds` (and of `claim.signalled`
    /// when a signal waits for them), oldest first, without waiting for tasks another node is
    /// claiming at the same moment (`FOR UPDATE SKIP LOCKED`). A claimed task in `working` or
    /// `input_required` was interrupted: the caller applies its kind's restart policy.
    fn claim(&self, claim: Claim) -> BoxFuture<'_, Result<Vec<Task>, Error>>;

    /// Extends the leases of every task this node holds, in one statement.
    fn renew(&self) -> BoxFuture<'_, Result<Renewal, Error>>;

    /// Gives up these tasks so that another node may claim them at once (a graceful shutdown).
    fn release(&self, tasks: &[TaskId]) -> Ack;

    /// Records `signal` for whichever node holds `task` and wakes it.
    fn signal(&self, task: TaskId, signal: Signal) -> Ack;

    /// Removes and returns the waiting signals for tasks this node holds, oldest first.
    fn take_signals(&self) -> BoxFuture<'_, Result<Vec<Signalled>, Error>>;

    /// The notices pushed by every node, from now on. Each call returns a new stream.
    fn notices(&self) -> NoticeStream;
}
