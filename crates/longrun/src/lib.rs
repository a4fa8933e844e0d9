//! longrun: a runtime for long-running work started by AI agents.
//!
//! Tool calls and agent jobs run in the background, report progress, stream partial results,
//! ask a human or the agent for input mid-way, can be cancelled, expire, and tell the agent how
//! they ended at its next turn. This crate is the one to depend on: it re-exports the runtime
//! and the task model.
//!
//! The README's example is compiled and run as this crate's doctest:
#![doc = include_str!("../../../README.md")]

// What a first program needs: a runtime, a kind, a handler's context, and the task it starts.
pub use longrun_runtime::{
    Context, Error, KindSpec, Options, Outcome, Runtime, StartOptions, Started, Task, TaskError,
    TaskHandle, TaskId,
};

/// A task's identity and lifecycle: status, ownership, sessions, and listing tasks.
pub mod task {
    pub use longrun_runtime::{
        CancelReason, Cursor, Filter, Labels, Owner, Page, Routing, Session, State, Status,
        TaskInfo,
    };
}

/// What happens to a task, as events, and the subscriptions that follow them.
pub mod event {
    pub use longrun_runtime::{
        AllNotice, AllSubscription, Artifact, ArtifactChunk, Change, Event, Notice, Progress,
        Published, Seq, Subscription,
    };
}

/// The per-session agent inbox: how an agent learns, at its next turn, how its tasks ended.
pub mod inbox {
    pub use longrun_runtime::{Drained, Inbox, InboxEntry, InboxItem};
}

/// A kind's policies (restarts, retries, task support), a step's retries, and stream-style
/// handlers' signals.
pub mod kind {
    pub use longrun_runtime::{RestartPolicy, RetryPolicy, Signal, StepOptions, TaskSupport};
}

/// The bounds a runtime enforces: concurrency, payload sizes.
pub mod limits {
    pub use longrun_runtime::{Bounds, Limits, OverLimit};
}

/// Time as the runtime sees it: a clock to inject (tests use paused time) and timestamps.
pub mod time {
    pub use longrun_core::Clock;
    pub use longrun_runtime::{Timestamp, TokioClock};
}

/// Distributed tracing: a task's W3C trace context, and the `tracing` target of its spans.
pub mod trace {
    pub use longrun_runtime::{TRACE_TARGET, TraceContext};
}

/// Why an operation failed, beyond [`Error`]: refused changes, questions and steps.
pub mod error {
    pub use longrun_core::{Refusal, RefusalReason};
    pub use longrun_runtime::{AskError, StepError};
}

/// Gates: what a kind needs from a node before its handler may start there (a worker).
pub mod gate {
    pub use longrun_runtime::{Entry, Gate, Ticket, Waiting};
}

/// For stores shared by several nodes: leases, claims, signals, notices.
pub mod cluster {
    pub use longrun_core::cluster::{
        Claim, Cluster, NodeId, Notice, NoticeStream, Renewal, Signal, Signalled,
    };
}

/// The store traits, the in-memory store (the library's default), the durable stores behind
/// their features, and what a recovery from a store did.
pub mod store {
    pub use longrun_core::NewTask;
    pub use longrun_core::store::{
        Ack, BoxFuture, Error, EventLog, InboxStore, NewInboxItem, Purge, Query, Retention, Store,
        TaskStore,
    };
    pub use longrun_runtime::Recovery;
    pub use longrun_store_memory::MemoryStore;
    #[cfg(feature = "postgres")]
    pub use longrun_store_postgres::{PostgresOptions, PostgresStore};
    #[cfg(feature = "sqlite")]
    pub use longrun_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
}
