//! Runtime options: the store, the clock, limits, bounds and retention.

use std::{sync::Arc, time::Duration};

use longrun_core::{Clock, cluster::Cluster, store::Store};

use crate::admission::Limits;

/// Size bounds, each refused with [`Error::TooLarge`](crate::Error::TooLarge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// A task's input, serialized.
    pub input_bytes: usize,
    /// One artifact chunk's parts, serialized.
    pub artifact_bytes: usize,
    /// Any other event payload: a progress or agent message, a question, an answer.
    pub event_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            input_bytes: 1 << 20,
            artifact_bytes: 4 << 20,
            event_bytes: 64 << 10,
        }
    }
}

/// How a [`Runtime`](crate::Runtime) is built. Start from [`Options::default`] and change what
/// you need.
#[derive(Clone)]
pub struct Options {
    /// Where tasks live. Default: a fresh in-memory store.
    pub store: Option<Arc<dyn Store>>,
    /// Set when `store` is shared by several nodes (PostgreSQL): usually the same object as
    /// `store`. The runtime then holds leases on the tasks it runs, claims tasks of the kinds it
    /// hosts, and reaches tasks held by other nodes through signals. See [`Cluster`].
    pub cluster: Option<Arc<dyn Cluster>>,
    /// In a cluster: how often this node renews its leases, takes missed signals and looks for
    /// claimable tasks. Keep it well under the store's lease time to live.
    pub renew_interval: Duration,
    /// In a cluster: at most this many tasks are claimed at a time.
    pub claim_batch: usize,
    /// Where time comes from. Default: [`TokioClock`](crate::TokioClock).
    pub clock: Option<Arc<dyn Clock>>,
    /// Global and per-owner concurrency limits (per-kind limits live on the kind).
    pub limits: Limits,
    /// Size bounds.
    pub bounds: Bounds,
    /// Keep at most this many finished tasks, however long their ttl.
    pub max_finished: usize,
    /// How often expired tasks are purged.
    pub sweep_interval: Duration,
    /// How many events a subscriber may fall behind before it is told it lagged and resumes
    /// from the log.
    pub subscriber_buffer: usize,
    /// The same for subscribers to every task.
    pub all_subscriber_buffer: usize,
}

impl Options {
    /// Options for a store shared by several nodes: `store` is both the store and the cluster.
    pub fn clustered<S: Store + Cluster + 'static>(store: Arc<S>) -> Self {
        Self {
            store: Some(store.clone()),
            cluster: Some(store),
            ..Self::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            store: None,
            cluster: None,
            renew_interval: Duration::from_secs(2),
            claim_batch: 128,
            clock: None,
            limits: Limits::default(),
            bounds: Bounds::default(),
            max_finished: 100_000,
            sweep_interval: Duration::from_secs(1),
            subscriber_buffer: 256,
            all_subscriber_buffer: 4096,
        }
    }
}
