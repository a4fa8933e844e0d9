//! `longrun-runtime`: the tokio engine that runs longrun tasks.
//!
//! Register kinds with handlers, start tasks with a routing (foreground, background, detach
//! after a timeout), and observe them: progress, artifacts, questions answered mid-way,
//! cancellation with a grace period, deadlines, subscriptions that resume from any sequence
//! number, terminal callbacks, the per-session agent inbox, concurrency limits and retention.
//! Every change goes through the store (in memory by default) before anyone is told of it.
//!
//! Start with [`Runtime`].

mod admission;
mod clock;
mod commit;
mod context;
mod control;
mod error;
mod finish;
mod gate;
mod handler;
mod inbox;
mod journal;
mod launch;
mod live;
mod node;
mod options;
mod recover;
mod registry;
mod resume;
mod retry;
mod runtime;
mod start;
mod step;
mod step_options;
mod subscribe;
mod supervise;
mod sweep;
mod trace;

pub use admission::Limits;
pub use clock::TokioClock;
pub use context::Context;
pub use error::{AskError, Error};
pub use gate::{Entry, Gate, Ticket, Waiting};
pub use handler::Signal;
pub use inbox::{Drained, Inbox};
pub use live::TaskInfo;
pub use longrun_core::{
    Artifact, ArtifactChunk, CancelReason, Change, Event, InboxEntry, InboxItem, KindSpec, Labels,
    Outcome, OverLimit, Owner, Progress, RestartPolicy, RetryPolicy, Routing, Seq, Session, State,
    Status, Task, TaskError, TaskId, TaskSupport, Timestamp, TraceContext,
    store::{Cursor, Filter, Page},
};
pub use options::{Bounds, Options};
pub use recover::Recovery;
pub use runtime::Runtime;
pub use start::{StartOptions, Started, TaskHandle};
pub use step::StepError;
pub use step_options::StepOptions;
pub use subscribe::{AllNotice, AllSubscription, Notice, Published, Subscription};
pub use trace::TARGET as TRACE_TARGET;
