//! `longrun-core`: the nouns of longrun and the rules that bind them.
//!
//! This crate holds the task model ([`Task`]), typed ids ([`TaskId`]), the status state machine
//! ([`State`], [`Action`], [`Refusal`]), events with per-task sequence numbers ([`Event`]), kind
//! specifications ([`KindSpec`]) and the object-safe store traits ([`store`]).
//!
//! It performs no I/O and knows nothing of tokio, SQL, HTTP or any wire protocol: every other
//! longrun crate depends on it, and it depends on none of them. Only the state machine here
//! decides whether a change is legal; stores persist, runtimes drive, adapters translate.

pub mod cluster;
pub mod event;
pub mod id;
pub mod inbox;
pub mod kind;
mod millis;
pub mod retry;
pub mod state;
pub mod store;
pub mod stored;
pub mod task;
pub mod time;
pub mod trace;

pub use cluster::{Claim, Cluster, NodeId, Notice, Renewal, Signal, Signalled};
pub use event::{Change, Event, Seq};
pub use id::{ParseIdError, TaskId};
pub use inbox::{InboxEntry, InboxItem};
pub use kind::{KindSpec, OverLimit, RestartPolicy, Routing, TaskSupport};
pub use retry::RetryPolicy;
pub use state::{Action, Refusal, RefusalReason, State, Status};
pub use task::{
    Artifact, ArtifactChunk, CancelReason, Labels, NewTask, Outcome, Owner, Progress, Session,
    Task, TaskError,
};
pub use time::{Clock, SystemClock, Timestamp};
pub use trace::TraceContext;
