//! longrun: a runtime for long-running work started by AI agents.
//!
//! Tool calls and agent jobs run in the background, report progress, stream partial results,
//! ask a human or the agent for input mid-way, can be cancelled, expire, and tell the agent how
//! they ended at its next turn. This crate is the one to depend on: it re-exports the runtime
//! and the task model.
//!
//! The README's example is compiled and run as this crate's doctest:
#![doc = include_str!("../../../README.md")]

pub use longrun_runtime::{
    AllNotice, AllSubscription, Artifact, ArtifactChunk, AskError, Bounds, CancelReason, Change,
    Context, Cursor, Drained, Error, Event, Filter, Inbox, InboxEntry, InboxItem, KindSpec, Labels,
    Limits, Notice, Options, Outcome, OverLimit, Owner, Page, Progress, Published, Recovery,
    RestartPolicy, RetryPolicy, Routing, Runtime, Seq, Session, Signal, StartOptions, Started,
    State, Status, StepError, Subscription, Task, TaskError, TaskHandle, TaskId, TaskInfo,
    TaskSupport, Timestamp, TokioClock,
};

/// Gates: what a kind needs from a node before its handler may start there (a worker).
pub mod gate {
    pub use longrun_runtime::{Entry, Gate, Ticket, Waiting};
}

/// The store traits and the backends that ship with longrun.
/// For stores shared by several nodes: leases, claims, signals, notices.
pub mod cluster {
    pub use longrun_core::cluster::{
        Claim, Cluster, NodeId, Notice, NoticeStream, Renewal, Signal, Signalled,
    };
}

/// The store traits, and the in-memory store (the library's default).
pub mod store {
    pub use longrun_core::NewTask;
    pub use longrun_core::store::{
        Ack, BoxFuture, Cursor, Error, EventLog, Filter, InboxStore, NewInboxItem, Page, Purge,
        Query, Retention, Store, TaskStore,
    };
    pub use longrun_store_memory::MemoryStore;
    #[cfg(feature = "postgres")]
    pub use longrun_store_postgres::{PostgresOptions, PostgresStore};
    #[cfg(feature = "sqlite")]
    pub use longrun_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
}
