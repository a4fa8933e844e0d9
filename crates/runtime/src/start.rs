//! Starting tasks: [`StartOptions`], what a start returns ([`Started`]), and [`TaskHandle`].

use std::{fmt, future::Future, sync::Arc, time::Duration};

use longrun_core::{
    Event, Labels, Owner, Routing, Seq, Session, Status, Task, TaskId, Timestamp, TraceContext,
};
use serde_json::Value;

use crate::{
    error::Error,
    live::TerminalCallback,
    runtime::Runtime,
    subscribe::{Notice, Subscription},
};

/// How to start one task. Everything not set comes from the kind.
#[derive(Default)]
pub struct StartOptions {
    pub(crate) session: Option<Session>,
    pub(crate) owner: Option<Owner>,
    pub(crate) labels: Labels,
    pub(crate) ttl: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) routing: Option<Routing>,
    pub(crate) on_terminal: Option<TerminalCallback>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) start: Option<StartTime>,
    pub(crate) trace: Option<TraceContext>,
    pub(crate) keep_events: bool,
    pub(crate) attended: bool,
}

/// When a delayed task may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartTime {
    At(Timestamp),
    After(Duration),
}

impl StartOptions {
    /// Options that take everything from the kind.
    pub fn new() -> Self {
        Self::default()
    }

    /// Await the outcome.
    pub fn foreground() -> Self {
        Self::new().routing(Routing::Foreground)
    }

    /// Return at once; the outcome goes to the session's inbox.
    pub fn background() -> Self {
        Self::new().routing(Routing::Background)
    }

    /// Await the outcome for up to `after`, then detach.
    pub fn detach_after(after: Duration) -> Self {
        Self::new().routing(Routing::DetachAfter(after))
    }

    /// The caller awaits the outcome itself: [`Runtime::start`] returns at once
    /// ([`Started::Running`]), and the task is a foreground one until the caller calls
    /// [`TaskHandle::detach`], which it must when it stops waiting before the end. Until then
    /// the outcome is the caller's, and goes to no inbox. For a door that waits in its own
    /// way, say until the task ends or asks a question.
    pub fn attended() -> Self {
        Self {
            attended: true,
            ..Self::foreground()
        }
    }

    /// Sets the routing.
    pub fn routing(mut self, routing: Routing) -> Self {
        self.routing = Some(routing);
        self
    }

    /// Sets the session (the conversation; the inbox is per session).
    pub fn session(mut self, session: impl Into<Session>) -> Self {
        self.session = Some(session.into());
        self
    }

    /// Sets the owner (principal). Default: `local`.
    pub fn owner(mut self, owner: impl Into<Owner>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets how long the task stays readable after it ends.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the task's maximum lifetime, from now; it is cancelled when it passes.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Names this start for its owner. While a task started under the same key by the same
    /// owner is stored (not yet purged), a start with the key creates nothing and returns
    /// [`Started::Existing`] with that task, whatever its state; the same key with another kind
    /// or another input is refused with [`Error::KeyReused`]. The store keeps keys unique, so
    /// this holds across restarts, and across nodes sharing one PostgreSQL store.
    ///
    /// A repeated start's other options (routing, callback, …) are ignored: nothing is started.
    ///
    /// ```
    /// use std::time::Duration;
    /// use longrun_runtime::{Context, KindSpec, Runtime, StartOptions, Started, TaskError};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let runtime = Runtime::new(Default::default());
    /// runtime.register(KindSpec::new("invoice"), |_ctx: Context, n: u64| async move {
    ///     Ok::<_, TaskError>(n)
    /// })?;
    /// let options = || StartOptions::background().idempotency_key("invoice-42").delay(Duration::from_secs(60));
    /// let first = runtime.start("invoice", 42, options()).await?;
    /// let again = runtime.start("invoice", 42, options()).await?;
    /// assert!(first.is_new() && !again.is_new());
    /// assert_eq!(again.id(), first.id());
    /// let Started::Existing(task) = again else { unreachable!() };
    /// assert_eq!(task.status(), longrun_runtime::Status::Submitted); // waiting for its start time
    /// # Ok(()) }
    /// ```
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Starts the handler at `at`, not before: the task stays `submitted` until then, holding
    /// no concurrency slot, and is taken up for the time that remains after a restart. A time
    /// already past starts at once. Replaces an earlier [`delay`](Self::delay).
    pub fn start_at(mut self, at: Timestamp) -> Self {
        self.start = Some(StartTime::At(at));
        self
    }

    /// Puts the task's spans in the caller's trace: `trace` (a W3C `traceparent`, parsed with
    /// [`TraceContext::parse`]) becomes the parent of the task's `task` span, is stored with the
    /// task, and every attempt, also one after a restart, joins it. Handlers see their
    /// attempt's context through [`Context::traceparent`](crate::Context::traceparent).
    pub fn trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Starts the handler `delay` from now; see [`start_at`](Self::start_at). Replaces an
    /// earlier `start_at`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.start = Some(StartTime::After(delay));
        self
    }

    /// Keeps the task's events in memory from its creation until
    /// [`TaskHandle::settled_with_events`] first returns, so that a caller who starts a task
    /// and waits for it can answer with its history without reading its log back. A task keeps
    /// at most 64 events; past that, or when the wait ends on another node, the log is read.
    pub fn keep_events(mut self) -> Self {
        self.keep_events = true;
        self
    }

    /// Runs `callback` exactly once with the ended task, whatever ended it, after the end is
    /// written (so a read inside the callback agrees). A panic in it is logged, not spread.
    pub fn on_terminal<F, Fut>(mut self, callback: F) -> Self
    where
        F: FnOnce(Task) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_terminal = Some(Box::new(move |task| Box::pin(callback(task))));
        self
    }
}

impl fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartOptions")
            .field("session", &self.session)
            .field("owner", &self.owner)
            .field("labels", &self.labels)
            .field("ttl", &self.ttl)
            .field("deadline", &self.deadline)
            .field("routing", &self.routing)
            .field("on_terminal", &self.on_terminal.is_some())
            .field("idempotency_key", &self.idempotency_key)
            .field("start", &self.start)
            .field("keep_events", &self.keep_events)
            .field("attended", &self.attended)
            .finish()
    }
}

/// What a start returns.
#[derive(Debug)]
pub enum Started {
    /// The task ended before the caller stopped waiting (foreground, or rejected at a limit).
    Finished(Box<Task>),
    /// A background or attended ([`StartOptions::attended`]) task: `working` already if it
    /// was admitted at once, `submitted` while it waits at a concurrency limit.
    Running(TaskHandle),
    /// A foreground task that detached (after its timeout, or on request) and keeps running;
    /// its outcome goes to the session's inbox.
    Detached(TaskHandle),
    /// Nothing was started: the owner's earlier start with the same idempotency key made this
    /// task, shown as stored now (it may be running, or ended).
    Existing(Box<Task>),
}

impl Started {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        match self {
            Self::Finished(task) | Self::Existing(task) => task.id,
            Self::Running(handle) | Self::Detached(handle) => handle.id(),
        }
    }

    /// Whether this start created the task (false: an earlier start with the same
    /// idempotency key did).
    pub fn is_new(&self) -> bool {
        !matches!(self, Self::Existing(_))
    }

    /// The ended task, if it ended.
    pub fn finished(self) -> Option<Task> {
        match self {
            Self::Finished(task) => Some(*task),
            Self::Running(_) | Self::Detached(_) | Self::Existing(_) => None,
        }
    }

    /// The handle, if the task still runs.
    pub fn handle(self) -> Option<TaskHandle> {
        match self {
            Self::Finished(_) | Self::Existing(_) => None,
            Self::Running(handle) | Self::Detached(handle) => Some(handle),
        }
    }
}

/// A handle to one task. Cloning is cheap; dropping it does not affect the task.
#[derive(Clone)]
pub struct TaskHandle {
    runtime: Runtime,
    id: TaskId,
}

impl fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskHandle").field(&self.id).finish()
    }
}

impl TaskHandle {
    pub(crate) fn new(runtime: Runtime, id: TaskId) -> Self {
        Self { runtime, id }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task as stored now.
    pub async fn task(&self) -> Result<Task, Error> {
        self.runtime.get(self.id).await
    }

    /// Waits until the task ends, and returns it.
    pub async fn wait(&self) -> Result<Task, Error> {
        match self.runtime.inner.live(self.id) {
            Some(live) => self.runtime.inner.wait_end(&live).await,
            // Running on another node, or not yet taken up after a restart.
            None => self.runtime.inner.wait_stored(self.id).await,
        }
    }

    /// Waits until the task has ended or waits for an answer (`input_required`), and returns
    /// it as stored then: what a blocking door waits for before it answers. Cheaper than
    /// following the task's events when only that moment matters.
    pub async fn settled(&self) -> Result<Task, Error> {
        if let Some(live) = self.runtime.inner.live(self.id)
            && let Some(task) = self.runtime.inner.wait_settled(&live).await?
        {
            return Ok(task);
        }
        // Running on another node (or handed over to one), or not taken up yet: follow its
        // events from where it stands.
        let settled = |status: Status| status.is_terminal() || status == Status::InputRequired;
        let task = self.runtime.get(self.id).await?;
        if settled(task.status()) {
            return Ok(task);
        }
        let mut events = self.runtime.subscribe(self.id, task.last_seq()).await?;
        loop {
            match events.next().await? {
                Some(Notice::Event(event)) if settled(event.status) => break,
                Some(_) => {}
                None => break,
            }
        }
        self.runtime.get(self.id).await
    }

    /// [`settled`](Self::settled), with the task's events through the returned task's last
    /// one: those kept since its start ([`StartOptions::keep_events`]), the rest read from
    /// its log. What a blocking door needs to answer with the task's history.
    pub async fn settled_with_events(&self) -> Result<(Task, Vec<Arc<Event>>), Error> {
        // Taken before the wait: a task that ends is no longer found by its id.
        let live = self.runtime.inner.live(self.id);
        let task = self.settled().await?;
        let kept = live.and_then(|live| live.state.lock().kept.take());
        let through = task.last_seq();
        let mut events: Vec<_> = kept
            .unwrap_or_default()
            .into_iter()
            .take_while(|event| event.seq <= through)
            .collect();
        let after = events.last().map_or(Seq::ZERO, |event| event.seq);
        if after < through {
            events.extend(self.runtime.events(self.id, after, through).await?);
        }
        Ok((task, events))
    }

    /// Cancels the task; see [`Runtime::cancel`].
    pub async fn cancel(&self) -> Result<Task, Error> {
        self.runtime.cancel(self.id).await
    }

    /// Cancels the task, recording who asked; see [`Runtime::cancel_by`].
    pub async fn cancel_by(&self, by: impl Into<String>) -> Result<Task, Error> {
        self.runtime.cancel_by(self.id, by).await
    }

    /// Detaches the task from its foreground caller; see [`Runtime::detach`].
    pub async fn detach(&self) -> Result<bool, Error> {
        self.runtime.detach(self.id).await
    }

    /// Answers a question; see [`Runtime::answer`].
    pub async fn answer(&self, key: &str, value: Value) -> Result<(), Error> {
        self.runtime.answer(self.id, key, value).await
    }

    /// Subscribes to the task's events after `after`; see [`Runtime::subscribe`].
    pub async fn subscribe(&self, after: Seq) -> Result<Subscription, Error> {
        self.runtime.subscribe(self.id, after).await
    }
}
