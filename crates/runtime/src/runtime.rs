//! [`Runtime`]: the cheap, cloneable handle to the engine, and the engine's shared core.

use std::{future::Future, sync::Arc, time::Duration};

use dashmap::DashMap;
use futures_core::Stream;
use longrun_core::{
    CancelReason, Change, Clock, Event, KindSpec, NewTask, Outcome, Routing, Seq, Session, Status,
    Task, TaskError, TaskId,
    cluster::Cluster,
    inbox::InboxEntry,
    store::{Ack, Error as StoreError, Filter, NewInboxItem, Page, Purge, Query, Store},
};
use longrun_store_memory::MemoryStore;
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admission::{Admission, Decision, Slot},
    clock::TokioClock,
    context::Context,
    error::Error,
    handler::{ErasedHandler, FnHandler, Signal, StreamHandler},
    inbox::{Inbox, Sessions},
    live::{AskSlot, Live, LiveState, TaskInfo, TerminalCallback},
    options::Options,
    registry::Registry,
    start::{StartOptions, StartTime, Started, TaskHandle},
    subscribe::{AllSubscription, Published, Subscription},
    supervise::{self, Admitted, Launched, Pending},
};

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
}

/// An event staged under a task's lock, waiting for the store's ack.
pub(crate) struct Staged {
    pub(crate) event: Arc<Event>,
    /// `None` when the event was durable at once and is already published.
    ack: Option<Ack>,
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
        });
        // In the tracker, so `shutdown` and `leave` return only once these loops have ended
        // too (each ends on `shutdown` between passes).
        inner
            .tracker
            .spawn(sweep(Arc::downgrade(&inner), inner.shutdown.clone()));
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

    fn insert(&self, spec: KindSpec, handler: Box<dyn ErasedHandler>) -> Result<(), Error> {
        self.inner.kinds.insert(spec, handler)
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

    async fn start(
        self: &Arc<Self>,
        kind: &str,
        input: Value,
        options: StartOptions,
    ) -> Result<Started, Error> {
        // Kept only to compare with the task a repeated key names.
        let requested = options.idempotency_key.is_some().then(|| input.clone());
        match self.start_new(kind, input, options).await {
            Err(Error::Store(StoreError::KeyTaken { key, existing, .. })) => {
                self.existing(kind, requested.unwrap_or_default(), key, existing)
                    .await
            }
            started => started,
        }
    }

    /// The answer to a start whose idempotency key names `existing`: that task, if the start
    /// asked for the same thing.
    async fn existing(
        &self,
        kind: &str,
        input: Value,
        key: String,
        existing: TaskId,
    ) -> Result<Started, Error> {
        // Read from the store as it is: a task past its ttl but not yet purged still holds its
        // key, and is what a repeat gets.
        let task = self
            .store
            .get(existing)
            .await?
            .ok_or(Error::Unknown(existing))?;
        if task.kind != kind || task.input != input {
            return Err(Error::KeyReused { key, existing });
        }
        Ok(Started::Existing(Box::new(task)))
    }

    async fn start_new(
        self: &Arc<Self>,
        kind: &str,
        input: Value,
        options: StartOptions,
    ) -> Result<Started, Error> {
        if self.shutdown.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let entry = self
            .kinds
            .get(kind)
            .ok_or_else(|| Error::UnknownKind(kind.to_owned()))?;
        entry
            .handler
            .check(&input)
            .map_err(|message| Error::InvalidInput {
                kind: kind.to_owned(),
                message,
            })?;
        self.check_size(
            "the input",
            json_size(&input),
            self.options.bounds.input_bytes,
        )?;

        let StartOptions {
            session,
            owner,
            labels,
            ttl,
            deadline,
            routing,
            on_terminal,
            idempotency_key,
            start,
        } = options;
        let now = self.clock.now();
        let start_at = match start {
            Some(StartTime::At(at)) => Some(at),
            Some(StartTime::After(delay)) => Some(now.saturating_add(delay)),
            None => None,
        }
        .filter(|at| *at > now);
        let spec = &entry.spec;
        let routing = routing.unwrap_or(spec.routing);
        let owner = owner.unwrap_or_default();
        let (task, first) = Task::create(NewTask {
            id: TaskId::random(),
            kind: spec.name.clone(),
            owner: owner.clone(),
            session: session.clone(),
            input,
            labels,
            ttl: ttl.unwrap_or(spec.ttl),
            deadline: deadline.or(spec.deadline).map(|d| now.saturating_add(d)),
            created_at: now,
            idempotency_key,
            start_at,
        });
        let id = task.id;
        let first = Arc::new(first);

        // A delayed task is admitted when it is due: it holds no slot while it waits.
        let counted = start_at.is_none() && self.admission.applies(spec.concurrency);
        let slot = counted.then(|| Slot {
            kind: spec.name.clone(),
            kind_limit: spec.concurrency,
            owner: owner.clone(),
        });
        let decision = match &slot {
            Some(slot) => {
                let queue = spec.over_limit == longrun_core::OverLimit::Queue;
                self.admission.admit(id, slot, queue)
            }
            None => Decision::Run,
        };
        let holds_slot = counted && matches!(decision, Decision::Run);
        let admitted = match (start_at, decision) {
            (Some(at), _) => Admitted::Delayed(at),
            (None, Decision::Run) => Admitted::Run,
            (None, Decision::Queued(admitted)) => Admitted::Queued(Box::new((
                admitted,
                slot.expect("queued tasks are counted"),
            ))),
            (None, Decision::Full(why)) => Admitted::Rejected(why.into_boxed_str()),
        };

        let info = TaskInfo {
            kind: entry.name.clone(),
            owner,
            session,
        };
        let live = Arc::new(Live::new(
            id,
            entry.clone(),
            info,
            routing,
            holds_slot,
            on_terminal,
            first.clone(),
        ));
        // The live record goes in before the store learns of the task, so a subscriber never
        // finds a stored, unfinished task that this runtime does not know. The write takes its
        // place now. If it is not durable yet, the supervisor is spawned before anything is
        // awaited and waits for it, so a caller that drops this future cannot strand a
        // half-started task.
        self.live.insert(id, live.clone());
        let mut created = match &self.cluster {
            Some(cluster) => cluster.create_held(&task, &first),
            None => self.store.create(&task, &first),
        };
        let launched = match created.try_now() {
            // Durable already (the in-memory store): launch right here, without a round trip
            // through the supervisor. No await below suspends, so this stays cancel-safe.
            Some(result) => {
                if let Err(error) = result {
                    self.forget(&live);
                    return Err(error.into());
                }
                self.publish(&live, Seq::FIRST);
                let (launched, admitted) = match admitted {
                    Admitted::Run => match self.record_start(&live).await {
                        Ok(()) => (Launched::Going, Some(Admitted::Started)),
                        Err(error) => {
                            supervise::fail_to_start(self, &live, error).await;
                            (Launched::Ended, None)
                        }
                    },
                    Admitted::Rejected(why) => {
                        let error = TaskError::new(TaskError::LIMIT_REACHED, why.into_string());
                        self.finish(&live, Outcome::Rejected { error }).await;
                        (Launched::Ended, None)
                    }
                    queued => (Launched::Going, Some(queued)),
                };
                if let Some(admitted) = admitted {
                    self.tracker.spawn(supervise::run(
                        self.clone(),
                        live.clone(),
                        task.input,
                        task.deadline,
                        admitted,
                        None,
                    ));
                }
                launched
            }
            // The supervisor waits for the write and tells us how the launch went.
            None => {
                let (launched, started) = tokio::sync::oneshot::channel();
                let pending = Pending { created, launched };
                self.tracker.spawn(supervise::run(
                    self.clone(),
                    live.clone(),
                    task.input,
                    task.deadline,
                    admitted,
                    Some(Box::new(pending)),
                ));
                started.await.map_err(|_| Error::ShuttingDown)??
            }
        };

        let handle = TaskHandle::new(
            Runtime {
                inner: self.clone(),
            },
            id,
        );
        if launched == Launched::Ended {
            return Ok(Started::Finished(Box::new(self.get(id).await?)));
        }
        match routing {
            Routing::Background => Ok(Started::Running(handle)),
            Routing::Foreground => self.wait_foreground(live, handle, None).await,
            Routing::DetachAfter(after) => self.wait_foreground(live, handle, Some(after)).await,
        }
    }

    /// Drops the record of a task whose creation failed: nothing of it is stored.
    pub(crate) fn forget(&self, live: &Live) {
        self.live.remove(&live.id);
        let holds_slot = std::mem::take(&mut live.state.lock().holds_slot);
        if holds_slot {
            self.admission.release(&self.slot_of(live));
        } else {
            self.admission.withdraw(live.id);
        }
        live.mark_lost();
        live.changed.notify_waiters();
    }

    /// The admission slot a task counts against.
    pub(crate) fn slot_of(&self, live: &Live) -> Slot {
        Slot {
            kind: live.info.kind.to_string(),
            kind_limit: live.kind.spec.concurrency,
            owner: live.info.owner.clone(),
        }
    }

    /// Gives a task up without writing anything more, because a durable write for it failed or
    /// another node took it over. Its handler is dropped and its record removed; what the store
    /// holds stands, and the task's restart policy applies when it is next taken up (at the next
    /// start of this node, or by whichever node claims it).
    pub(crate) fn abandon(&self, live: &Live, why: &longrun_core::store::Error) {
        if live.mark_lost() {
            match why {
                longrun_core::store::Error::Fenced(_) => {
                    tracing::warn!(task = %live.id, "another node took this task over; stopping it here")
                }
                error => {
                    tracing::error!(task = %live.id, %error, "a durable write failed; giving the task up on this node")
                }
            }
        }
    }

    async fn wait_foreground(
        self: &Arc<Self>,
        live: Arc<Live>,
        handle: TaskHandle,
        detach_after: Option<Duration>,
    ) -> Result<Started, Error> {
        let waiting = async {
            loop {
                let changed = live.changed.notified();
                let mut changed = std::pin::pin!(changed);
                changed.as_mut().enable();
                if live.ended_or_detached() {
                    return;
                }
                changed.await;
            }
        };
        match detach_after {
            None => waiting.await,
            Some(after) => {
                if tokio::time::timeout(after, waiting).await.is_err() {
                    self.detach(live.id).await?;
                }
            }
        }
        if live.is_ended() {
            Ok(Started::Finished(Box::new(self.get(live.id).await?)))
        } else {
            Ok(Started::Detached(handle))
        }
    }

    /// Records that the handler starts (`attempt` + 1).
    pub(crate) async fn record_start(&self, live: &Live) -> Result<(), Error> {
        let staged = {
            let mut state = live.state.lock();
            state.attempt += 1;
            let attempt = state.attempt;
            self.stage(&mut state, live, Change::Started { attempt })?
        };
        self.land(live, staged).await.map(drop)
    }

    pub(crate) async fn get(&self, id: TaskId) -> Result<Task, Error> {
        match self.store.get(id).await? {
            Some(task) if task.expires_at().is_none_or(|at| at > self.clock.now()) => Ok(task),
            _ => Err(Error::Unknown(id)),
        }
    }

    /// Validates `change` against the task's state and hands the event to the store, all under
    /// the task's lock, so the store sees every task's events in sequence. When the store has
    /// already made the write durable (the in-memory store always has) and nothing is waiting
    /// before it, the event is published right here, under the same lock.
    pub(crate) fn stage(
        &self,
        state: &mut LiveState,
        live: &Live,
        change: Change,
    ) -> Result<Staged, Error> {
        let next = state.state.after(&change)?;
        let seq = state.seq.next();
        let event = Arc::new(Event {
            task: live.id,
            seq,
            at: self.clock.now(),
            status: next.status(),
            change,
        });
        let mut ack = self.store.append(std::slice::from_ref(&event));
        state.state = next;
        state.seq = seq;
        let ack = match ack.try_now() {
            Some(Ok(())) if state.unpublished.is_empty() => {
                self.publish_one(state, live, event.clone());
                None
            }
            Some(result) => Some(Ack::ready(result)),
            None => Some(ack),
        };
        if ack.is_some() {
            state.unpublished.push_back(event.clone());
        }
        Ok(Staged { event, ack })
    }

    /// Waits for a staged event to be durable, then publishes it (and any before it).
    pub(crate) async fn land(&self, live: &Live, staged: Staged) -> Result<Arc<Event>, Error> {
        if let Some(ack) = staged.ack {
            if let Err(error) = ack.await {
                self.abandon(live, &error);
                return Err(error.into());
            }
            self.publish(live, staged.event.seq);
        }
        Ok(staged.event)
    }

    /// Stages and lands one change.
    pub(crate) async fn commit(&self, live: &Live, change: Change) -> Result<Arc<Event>, Error> {
        let staged = {
            let mut state = live.state.lock();
            self.stage(&mut state, live, change)?
        };
        self.land(live, staged).await
    }

    /// Tells subscribers of every staged event up to `through`, in order. A store's ack for a
    /// write means every earlier write is durable too, so everything up to `through` may go.
    pub(crate) fn publish(&self, live: &Live, through: Seq) {
        let mut state = live.state.lock();
        while state.unpublished.front().is_some_and(|e| e.seq <= through) {
            let event = state.unpublished.pop_front().expect("front exists");
            self.publish_one(&mut state, live, event);
        }
    }

    fn publish_one(&self, state: &mut LiveState, live: &Live, event: Arc<Event>) {
        state.published = event.seq;
        state.ended |= event.is_terminal();
        if let Some(subscribers) = &state.subscribers
            && subscribers.send(event.clone()).is_err()
        {
            // Nobody listens any more: free the channel until the next subscription.
            state.subscribers = None;
        }
        if self.all.receiver_count() > 0 {
            let _ = self.all.send(Published {
                event,
                info: live.info.clone(),
            });
        }
    }

    /// Ends a task: writes its outcome, frees its slots, tells the inbox, runs its terminal
    /// callback, then wakes its waiters. Runs exactly once per task.
    pub(crate) async fn finish(&self, live: &Arc<Live>, outcome: Outcome) {
        if live.is_lost() {
            self.drop_lost(live);
            return;
        }
        let staged = {
            let mut state = live.state.lock();
            // A cancellation requested before the end was written wins over a late result.
            let outcome = match (&state.cancel_reason, outcome) {
                (Some(reason), Outcome::Completed { .. } | Outcome::Failed { .. }) => {
                    Outcome::Cancelled {
                        reason: reason.clone(),
                    }
                }
                (_, outcome) => outcome,
            };
            // Questions still open will never be answered by this run.
            for slot in state.asks.values_mut() {
                if matches!(slot, AskSlot::Waiting(_)) {
                    *slot = AskSlot::TimedOut;
                }
            }
            self.stage(&mut state, live, Change::Ended(outcome))
        };
        let ended = match staged {
            Ok(staged) => self.land(live, staged).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &ended {
            tracing::error!(task = %live.id, %error, "could not record a task's end");
            if live.is_lost() {
                self.drop_lost(live);
                return;
            }
        }
        let (detached, holds_slot) = {
            let mut state = live.state.lock();
            state.subscribers = None;
            (state.detached, std::mem::take(&mut state.holds_slot))
        };
        if holds_slot {
            self.admission.release(&self.slot_of(live));
        }
        if let (Ok(event), Some(session)) = (&ended, &live.info.session)
            && (live.routing == Routing::Background || detached)
            && let Change::Ended(outcome) = &event.change
        {
            let entry = InboxEntry::Outcome {
                kind: live.info.kind.to_string(),
                outcome: outcome.clone(),
            };
            // Boxed: a rarer, larger future than the rest, kept out of every task's allocation.
            Box::pin(self.push_inbox(session, live.id, entry)).await;
        }
        // The callback is part of the end: waiters (`wait`, `cancel`, a foreground start) return
        // after it ran, so they can rely on what it did.
        let callback = live.on_terminal.lock().take();
        if let Some(callback) = callback {
            Box::pin(self.run_terminal_callback(live.id, callback)).await;
        }
        self.live.remove(&live.id);
        live.changed.notify_waiters();
    }

    /// The end of a task given up (see [`Inner::abandon`]): free what it held, write nothing.
    fn drop_lost(&self, live: &Live) {
        let holds_slot = {
            let mut state = live.state.lock();
            state.subscribers = None;
            std::mem::take(&mut state.holds_slot)
        };
        if holds_slot {
            self.admission.release(&self.slot_of(live));
        }
        self.live.remove(&live.id);
        live.changed.notify_waiters();
    }

    async fn run_terminal_callback(&self, id: TaskId, callback: TerminalCallback) {
        match self.store.get(id).await {
            Ok(Some(task)) => {
                let run = std::panic::AssertUnwindSafe(callback(task));
                if let Err(panic) = futures_util::FutureExt::catch_unwind(run).await {
                    let panic = supervise::panic_message(&panic);
                    tracing::error!(task = %id, %panic, "terminal callback panicked");
                }
            }
            Ok(None) => tracing::error!(task = %id, "task vanished before its terminal callback"),
            Err(error) => {
                tracing::error!(task = %id, %error, "could not read a task for its terminal callback")
            }
        }
    }

    pub(crate) async fn push_inbox(&self, session: &Session, task: TaskId, entry: InboxEntry) {
        let pushed = self
            .store
            .push(NewInboxItem {
                session: session.clone(),
                task,
                at: self.clock.now(),
                entry,
            })
            .await;
        match pushed {
            Ok(()) => self.sessions.wake(session),
            Err(error) => tracing::error!(%task, %error, "could not place an item in the inbox"),
        }
    }

    pub(crate) fn live(&self, id: TaskId) -> Option<Arc<Live>> {
        self.live.get(&id).map(|live| live.clone())
    }

    /// The stored task, if it has not ended and another node of the cluster may hold it.
    async fn elsewhere(&self, id: TaskId) -> Result<Option<Task>, Error> {
        if self.cluster.is_none() {
            return Ok(None);
        }
        let task = self.get(id).await?;
        Ok((!task.status().is_terminal()).then_some(task))
    }

    /// The error for a task this runtime does not run: ended, unknown, or elsewhere.
    async fn not_live(&self, id: TaskId) -> Error {
        match self.get(id).await {
            Ok(task) if task.status().is_terminal() => Error::Ended {
                id,
                status: task.status(),
            },
            Ok(_) => Error::NotRunning(id),
            Err(error) => error,
        }
    }

    /// Asks a task to stop. Returns false if it had already ended.
    pub(crate) async fn request_cancel(
        &self,
        live: &Live,
        reason: CancelReason,
    ) -> Result<bool, Error> {
        let staged = {
            let mut state = live.state.lock();
            let status = state.state.status();
            if status.is_terminal() {
                return Ok(false);
            }
            if state.cancel_reason.is_some() {
                return Ok(true);
            }
            state.cancel_reason = Some(reason.clone());
            // A queued task has no handler to warn; its supervisor ends it at once.
            if status == Status::Submitted {
                None
            } else {
                Some(self.stage(&mut state, live, Change::CancelRequested { reason })?)
            }
        };
        if let Some(staged) = staged {
            self.land(live, staged).await?;
        }
        live.request_cancel();
        Ok(true)
    }

    async fn cancel(&self, id: TaskId, reason: CancelReason) -> Result<Task, Error> {
        let Some(live) = self.live(id) else {
            return match self.elsewhere(id).await? {
                Some(task) => self.cancel_remote(task, reason).await,
                None => Err(self.not_live(id).await),
            };
        };
        if !self.request_cancel(&live, reason).await? {
            return Err(self.not_live(id).await);
        }
        self.wait_end(&live).await
    }

    pub(crate) async fn wait_end(&self, live: &Live) -> Result<Task, Error> {
        loop {
            let ended = live.changed.notified();
            let mut ended = std::pin::pin!(ended);
            ended.as_mut().enable();
            if live.is_ended() && !self.live.contains_key(&live.id) {
                return self.get(live.id).await;
            }
            ended.await;
        }
    }

    pub(crate) async fn answer(&self, id: TaskId, key: &str, value: Value) -> Result<(), Error> {
        self.check_size(
            "the answer",
            json_size(&value),
            self.options.bounds.event_bytes,
        )?;
        let Some(live) = self.live(id) else {
            return match self.elsewhere(id).await? {
                Some(task) => self.answer_remote(task, key, value).await,
                None => Err(self.not_live(id).await),
            };
        };
        let (staged, waiter) = {
            let mut state = live.state.lock();
            let status = state.state.status();
            if status.is_terminal() {
                return Err(Error::Ended { id, status });
            }
            let waiter = match state.asks.remove(key) {
                None => None,
                Some(AskSlot::Waiting(waiter)) => Some(waiter),
                Some(slot @ (AskSlot::Early(_) | AskSlot::Answered)) => {
                    state.asks.insert(key.to_owned(), slot);
                    return Err(Error::AlreadyAnswered {
                        id,
                        key: key.to_owned(),
                    });
                }
                Some(AskSlot::TimedOut) => {
                    state.asks.insert(key.to_owned(), AskSlot::TimedOut);
                    return Err(Error::QuestionClosed {
                        id,
                        key: key.to_owned(),
                    });
                }
            };
            let change = Change::InputAnswered {
                key: key.to_owned(),
                value: value.clone(),
            };
            let staged = match self.stage(&mut state, &live, change) {
                Ok(staged) => staged,
                Err(error) => {
                    if let Some(waiter) = waiter {
                        state.asks.insert(key.to_owned(), AskSlot::Waiting(waiter));
                    }
                    return Err(error);
                }
            };
            let slot = if waiter.is_some() {
                AskSlot::Answered
            } else {
                AskSlot::Early(value.clone())
            };
            state.asks.insert(key.to_owned(), slot);
            (staged, waiter)
        };
        self.land(&live, staged).await?;
        if let Some(waiter) = waiter {
            // The handler may have been aborted meanwhile; the answer is recorded either way.
            let _ = waiter.send(value);
        }
        Ok(())
    }

    async fn detach(&self, id: TaskId) -> Result<bool, Error> {
        let Some(live) = self.live(id) else {
            return Err(self.not_live(id).await);
        };
        let staged = {
            let mut state = live.state.lock();
            if state.detached || live.routing == Routing::Background {
                return Ok(false);
            }
            let staged = self.stage(&mut state, &live, Change::Detached)?;
            state.detached = true;
            staged
        };
        self.land(&live, staged).await?;
        live.changed.notify_waiters();
        Ok(true)
    }

    async fn stop_all(&self) -> usize {
        let lives: Vec<Arc<Live>> = self.live.iter().map(|e| e.value().clone()).collect();
        let mut stopped = 0;
        for live in &lives {
            match self.request_cancel(live, CancelReason::Stopped).await {
                Ok(true) => stopped += 1,
                Ok(false) => {}
                Err(error) => tracing::error!(task = %live.id, %error, "could not stop a task"),
            }
        }
        for live in &lives {
            let _ = self.wait_end(live).await;
        }
        stopped
    }
}

/// Purges expired tasks every `sweep_interval` until shutdown, and gives memory back.
async fn sweep(inner: std::sync::Weak<Inner>, shutdown: CancellationToken) {
    loop {
        let interval = match inner.upgrade() {
            Some(inner) => inner.options.sweep_interval,
            None => return,
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        let purge = Purge {
            now: inner.clock.now(),
            max_finished: inner.options.max_finished,
        };
        if let Err(error) = inner.store.purge(purge).await {
            tracing::warn!(%error, "retention sweep failed; retrying at the next interval");
        }
        if inner.live.capacity() > 4 * inner.live.len() + 64 {
            inner.live.shrink_to_fit();
        }
        inner.sessions.forget_idle();
    }
}
