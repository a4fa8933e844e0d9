//! [`Runtime`]: the cheap, cloneable handle to the engine, and the engine's shared core.
//!
//! The engine's work is split by job, each an `impl Inner` of its own: `launch.rs` (starting a
//! task), `commit.rs` (the commit path and its ordering invariants), `finish.rs` (ending one),
//! `control.rs` (cancel, answer, detach, wait), `sweep.rs` (retention). This file keeps the
//! public handle, the shared state, and the size bounds every job checks.

use std::{future::Future, sync::Arc};

use dashmap::DashMap;
use futures_core::Stream;
use longrun_core::{
    CancelReason, Clock, Event, KindSpec, Seq, Session, Task, TaskError, TaskId,
    cluster::Cluster,
    store::{Ack, Filter, Page, Query, Store},
};
use longrun_store_memory::MemoryStore;
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admission::Admission,
    clock::TokioClock,
    context::Context,
    error::Error,
    gate::Gate,
    handler::{ErasedHandler, FnHandler, Signal, StreamHandler},
    inbox::{Inbox, Sessions},
    live::Live,
    options::Options,
    registry::Registry,
    start::{StartOptions, Started, TaskHandle},
    subscribe::{AllSubscription, Published, Subscription},
};

/// How many events [`Runtime::events`] reads from the store at a time.
const EVENTS_PAGE: usize = 1_000;

/// The longrun engine. Cloning is cheap; every clone drives the same tasks.
///
/// ```
/// use std::time::Duration;
/// use longrun_runtime::{Context, KindSpec, Runtime, StartOptions, Started};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(Default::default());
/// runtime.register(KindSpec::new("double"), |ctx: Context, n: u64| async move {
///     ctx.progress(50.0, "halfway").await?;
///     Ok::<_, longrun_runtime::TaskError>(n * 2)
/// })?;
///
/// let started = runtime.start("double", 21, StartOptions::foreground()).await?;
/// let Started::Finished(task) = started else { unreachable!() };
/// assert_eq!(task.outcome().unwrap(), &longrun_runtime::Outcome::Completed { output: 42.into() });
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cluster: Option<Arc<dyn Cluster>>,
    pub(crate) watchers: crate::node::Watchers,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: Options,
    pub(crate) kinds: Registry,
    pub(crate) live: DashMap<TaskId, Arc<Live>>,
    pub(crate) admission: Admission,
    pub(crate) all: broadcast::Sender<Published>,
    pub(crate) sessions: Sessions,
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: CancellationToken,
    /// Tasks given up after a failed write, for [`crate::resume`] to take up again.
    pub(crate) given_up: tokio::sync::mpsc::UnboundedSender<TaskId>,
    /// Woken by [`Runtime::claim_soon`]; the node loop claims when it is.
    pub(crate) claim_wanted: Arc<tokio::sync::Notify>,
    /// Held through each claim, so that this node claims one round at a time. It counts what
    /// was claimed until [`Runtime::recover`] returns, which reports it all: the node loop
    /// starts with the runtime and may claim first. `None` once it has returned.
    pub(crate) claiming: tokio::sync::Mutex<Option<crate::Recovery>>,
}

/// An event staged under a task's lock, waiting for the store's ack.
pub(crate) struct Staged {
    pub(crate) event: Arc<Event>,
    /// `None` when the event was durable at once and is already published.
    pub(crate) ack: Option<Ack>,
}

impl Runtime {
    /// Builds a runtime and starts its retention sweeper. Call inside a tokio runtime.
    pub fn new(options: Options) -> Self {
        let store = options
            .store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let clock = options
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(TokioClock::new()));
        let (all, _) = broadcast::channel(options.all_subscriber_buffer.max(1));
        let (given_up, given_up_rx) = tokio::sync::mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store,
            cluster: options.cluster.clone(),
            watchers: Default::default(),
            clock,
            admission: Admission::new(options.limits),
            options,
            kinds: Registry::default(),
            live: DashMap::new(),
            all,
            sessions: Sessions::default(),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            given_up,
            claim_wanted: Arc::default(),
            claiming: tokio::sync::Mutex::new(Some(Default::default())),
        });
        // In the tracker, so `shutdown` and `leave` return only once these loops have ended
        // too (each ends on `shutdown` between passes).
        inner.tracker.spawn(crate::sweep::sweep(
            Arc::downgrade(&inner),
            inner.shutdown.clone(),
        ));
        inner.tracker.spawn(crate::resume::run(
            Arc::downgrade(&inner),
            given_up_rx,
            inner.shutdown.clone(),
        ));
        if let Some(cluster) = &inner.cluster {
            inner.tracker.spawn(crate::node::run(
                Arc::downgrade(&inner),
                cluster.clone(),
                inner.shutdown.clone(),
            ));
        }
        Self { inner }
    }

    /// Registers a kind whose handler is an async function of a typed input. The kind's input
    /// schema is generated from `I` unless `spec` already has one.
    pub fn register<F, Fut, I, O, E>(&self, mut spec: KindSpec, handler: F) -> Result<(), Error>
    where
        F: Fn(Context, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + 'static,
        E: Into<TaskError> + 'static,
    {
        fill_schema::<I>(&mut spec);
        self.insert(spec, Box::new(FnHandler::new(handler)))
    }

    /// Registers a kind whose handler yields [`Signal`]s: progress, artifacts, and one of
    /// success, fail or cancel.
    pub fn register_stream<F, S, I>(&self, mut spec: KindSpec, handler: F) -> Result<(), Error>
    where
        F: Fn(Context, I) -> S + Send + Sync + 'static,
        S: Stream<Item = Signal> + Send + 'static,
        I: DeserializeOwned + JsonSchema + Send + 'static,
    {
        fill_schema::<I>(&mut spec);
        self.insert(spec, Box::new(StreamHandler::new(handler)))
    }

    /// Registers a kind as [`register_stream`](Runtime::register_stream) does, behind `gate`:
    /// each attempt starts only once the gate lets it in, and in a cluster this node claims the
    /// kind's tasks only while the gate has room (see [`Gate`]). The handler takes what the gate
    /// reserved with [`Context::take_ticket`].
    pub fn register_stream_gated<F, S, I>(
        &self,
        mut spec: KindSpec,
        gate: Arc<dyn Gate>,
        handler: F,
    ) -> Result<(), Error>
    where
        F: Fn(Context, I) -> S + Send + Sync + 'static,
        S: Stream<Item = Signal> + Send + 'static,
        I: DeserializeOwned + JsonSchema + Send + 'static,
    {
        fill_schema::<I>(&mut spec);
        let handler = Box::new(StreamHandler::new(handler));
        self.inner.kinds.insert(spec, handler, Some(gate))
    }

    fn insert(&self, spec: KindSpec, handler: Box<dyn ErasedHandler>) -> Result<(), Error> {
        self.inner.kinds.insert(spec, handler, None)
    }

    /// Asks this node to look for claimable tasks soon: a gate calls it when it has room again
    /// (a worker registered, or finished a task). Calls close together make one claim; without
    /// a cluster there is nothing to claim and this does nothing.
    pub fn claim_soon(&self) {
        self.inner.claim_wanted.notify_one();
    }

    /// The registered kinds, by name.
    pub fn kinds(&self) -> Vec<KindSpec> {
        self.inner.kinds.specs()
    }

    /// The names of the registered kinds, sorted: what a caller needs that only picks a kind,
    /// without copying every kind's schemas.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use longrun_runtime::{Context, KindSpec, Runtime, TaskError};
    ///
    /// let runtime = Runtime::new(Default::default());
    /// for name in ["b", "a"] {
    ///     runtime
    ///         .register(KindSpec::new(name), |_ctx: Context, _: ()| async { Ok::<_, TaskError>(()) })
    ///         .unwrap();
    /// }
    /// assert_eq!(runtime.kind_names(), ["a", "b"]);
    /// # }
    /// ```
    pub fn kind_names(&self) -> Vec<String> {
        let mut names = self.inner.kinds.names();
        names.sort_unstable();
        names
    }

    /// Starts a task of `kind`. How long this waits depends on the routing: see [`Started`].
    pub async fn start(
        &self,
        kind: &str,
        input: impl Serialize,
        options: StartOptions,
    ) -> Result<Started, Error> {
        let input = serde_json::to_value(input).map_err(|error| Error::InvalidInput {
            kind: kind.to_owned(),
            message: error.to_string(),
        })?;
        self.inner.start(kind, input, options).await
    }

    /// The task as stored now.
    pub async fn get(&self, id: TaskId) -> Result<Task, Error> {
        self.inner.get(id).await
    }

    /// A page of tasks, newest first. `limit` is capped at 1,000.
    pub async fn list(
        &self,
        filter: Filter,
        after: Option<longrun_core::store::Cursor>,
        limit: usize,
    ) -> Result<Page, Error> {
        let query = Query {
            filter,
            after,
            limit: limit.clamp(1, 1000),
            now: self.inner.clock.now(),
        };
        Ok(self.inner.store.list(&query).await?)
    }

    /// A handle to a task that may still be running.
    pub fn handle(&self, id: TaskId) -> TaskHandle {
        TaskHandle::new(self.clone(), id)
    }

    /// Cancels a task: the handler sees `ctx.cancelled()` and has its kind's grace period to
    /// stop, after which it is aborted. Resolves with the ended task. Cancelling a task that has
    /// already ended changes nothing and returns [`Error::Ended`].
    pub async fn cancel(&self, id: TaskId) -> Result<Task, Error> {
        self.inner
            .cancel(id, CancelReason::Requested { by: None })
            .await
    }

    /// Like [`Runtime::cancel`], recording who asked.
    pub async fn cancel_by(&self, id: TaskId, by: impl Into<String>) -> Result<Task, Error> {
        self.inner
            .cancel(
                id,
                CancelReason::Requested {
                    by: Some(by.into()),
                },
            )
            .await
    }

    /// Answers the question `key` of a task. An answer that arrives before the handler asks is
    /// kept and handed over when it does.
    pub async fn answer(&self, id: TaskId, key: &str, value: Value) -> Result<(), Error> {
        self.inner.answer(id, key, value).await
    }

    /// Detaches a running task from its foreground caller, which then returns
    /// [`Started::Detached`]. Returns false if there was nothing to detach (already detached, or
    /// a background task).
    pub async fn detach(&self, id: TaskId) -> Result<bool, Error> {
        self.inner.detach(id).await
    }

    /// Cancels every task that has not ended and waits for them; returns how many it stopped.
    pub async fn stop_all(&self) -> usize {
        self.inner.stop_all().await
    }

    /// The task's stored events after `after` through `through`, in order, read from the store
    /// at once: what a door shows as a task's history, without subscribing. Events of a task
    /// read with [`Runtime::get`] are all stored through its `last_seq`.
    pub async fn events(
        &self,
        id: TaskId,
        after: Seq,
        through: Seq,
    ) -> Result<Vec<Arc<Event>>, Error> {
        let mut events = Vec::new();
        let mut last = after;
        while last < through {
            let wanted = usize::try_from(through.as_u64() - last.as_u64()).unwrap_or(usize::MAX);
            let page = self
                .inner
                .store
                .read(id, last, wanted.min(EVENTS_PAGE))
                .await?;
            let Some(newest) = page.last() else { break };
            last = newest.seq;
            events.extend(page.into_iter().filter(|event| event.seq <= through));
        }
        Ok(events)
    }

    /// Subscribes to one task's events after sequence `after` (use [`Seq::ZERO`] for all of
    /// them). See [`Subscription`].
    pub async fn subscribe(&self, id: TaskId, after: Seq) -> Result<Subscription, Error> {
        self.inner.get(id).await?;
        Ok(Subscription::new(self.inner.clone(), id, after))
    }

    /// Subscribes to the events of every task, as they are published.
    pub fn subscribe_all(&self) -> AllSubscription {
        AllSubscription::new(self.inner.all.subscribe())
    }

    /// The agent inbox of a session.
    pub fn inbox(&self, session: impl Into<Session>) -> Inbox {
        Inbox::new(self.inner.clone(), session.into())
    }

    /// Stops accepting tasks, cancels the running ones (waiting for them as [`stop_all`] does)
    /// and stops the retention sweeper.
    ///
    /// [`stop_all`]: Runtime::stop_all
    pub async fn shutdown(&self) -> usize {
        self.inner.shutdown.cancel();
        let stopped = self.inner.stop_all().await;
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        stopped
    }

    /// Stops accepting tasks and leaves the ones still running to their restart policy,
    /// writing nothing more for them: their handlers are dropped and their tasks stay as
    /// stored (`submitted`, `working` or `input_required`). A later [`recover`] on the same
    /// store takes them up; in a cluster their leases are released, so another node claims
    /// them at once instead of after the lease expires. Returns how many tasks were left.
    ///
    /// This is the end of a graceful stop, once running tasks had their grace period; unlike
    /// [`shutdown`], it cancels nothing.
    ///
    /// [`recover`]: Runtime::recover
    /// [`shutdown`]: Runtime::shutdown
    pub async fn leave(&self) -> usize {
        self.inner.shutdown.cancel();
        let lives: Vec<Arc<Live>> = self.inner.live.iter().map(|e| e.value().clone()).collect();
        for live in &lives {
            live.mark_lost();
        }
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        if let Some(cluster) = &self.inner.cluster {
            let ids: Vec<TaskId> = lives.iter().map(|live| live.id).collect();
            if let Err(error) = cluster.release(&ids).await {
                tracing::warn!(%error, "could not release leases; other nodes take the tasks when they expire");
            }
        }
        lives.len()
    }

    /// Whether the runtime stopped accepting tasks ([`shutdown`](Runtime::shutdown) or
    /// [`leave`](Runtime::leave) was called).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Whether this runtime is a node of a cluster (its store is shared: [`Options::cluster`]).
    pub fn is_clustered(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// The registered kind named `name`.
    pub fn kind(&self, name: &str) -> Option<KindSpec> {
        self.inner.kinds.get(name).map(|entry| entry.spec.clone())
    }

    /// How many tasks have not ended yet on this runtime.
    pub fn running(&self) -> usize {
        self.inner.live.len()
    }
}

fn fill_schema<I: JsonSchema>(spec: &mut KindSpec) {
    if spec.input_schema == serde_json::json!({}) {
        spec.input_schema = serde_json::to_value(schemars::schema_for!(I)).unwrap_or_default();
    }
}

/// Bytes `value` takes as JSON, without building the text.
pub(crate) fn json_size(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

impl Inner {
    pub(crate) fn check_size(
        &self,
        what: &'static str,
        size: usize,
        limit: usize,
    ) -> Result<(), Error> {
        if size > limit {
            return Err(Error::TooLarge { what, size, limit });
        }
        Ok(())
    }

    pub(crate) async fn get(&self, id: TaskId) -> Result<Task, Error> {
        match self.store.get(id).await? {
            Some(task) if task.expires_at().is_none_or(|at| at > self.clock.now()) => Ok(task),
            _ => Err(Error::Unknown(id)),
        }
    }
}
