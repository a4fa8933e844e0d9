//! One registration of the worker with the server, from `POST /v1/workers` until it is lost
//! (`404 unknown_worker`), left, or the worker is dropped: the heartbeat loop, the event
//! stream, and the assignments the stream hands out.
//!
//! Invariants:
//! - `over` is a child of the worker's token and the parent of every assignment's `gone`:
//!   cancelling it stops the heartbeat, the stream and every handler of this session.
//! - An assignment is in `assignments` from its `start` until its runner ends; the runner, not
//!   the stream, removes it.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use serde_json::Value;
use tokio::{sync::Semaphore, time::Instant};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    Error, Handler, Job,
    api::{self, Api},
    assignment::{Assignment, Link},
    backoff::Backoff,
    model::{Event, Report, Start},
    sse::Parser,
};

/// A stream that sends nothing for this long is dead even if its connection looks open (the
/// server sends a keep-alive comment every 15 s): it is opened again.
const SILENCE: Duration = Duration::from_secs(45);

/// What every session of a worker shares.
pub(crate) struct Shared {
    pub(crate) api: Api,
    pub(crate) handlers: HashMap<String, Arc<dyn Handler>>,
    /// One permit per task run at once: the capacity, enforced here too.
    pub(crate) permits: Arc<Semaphore>,
    /// Every runner, so that a drain can wait for them.
    pub(crate) runners: TaskTracker,
    pub(crate) reconnect_max: Duration,
}

/// One registration.
pub(crate) struct Session {
    pub(crate) shared: Arc<Shared>,
    pub(crate) link: Link,
    pub(crate) heartbeat: Duration,
    /// Cancelled when the session ends, for whatever reason.
    pub(crate) over: CancellationToken,
    /// Set when the server no longer knows the worker: the run loop registers again.
    lost: CancellationToken,
    /// Once draining, `start` events are not run: the server hands them back at `DELETE`.
    draining: CancellationToken,
    assignments: Mutex<HashMap<String, Arc<Assignment>>>,
}

impl Session {
    pub(crate) fn new(
        shared: Arc<Shared>,
        worker: String,
        heartbeat: Duration,
        expiry: Duration,
        parent: &CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            link: Link {
                api: shared.api.clone(),
                worker,
                expiry,
            },
            shared,
            heartbeat,
            over: parent.child_token(),
            lost: CancellationToken::new(),
            draining: CancellationToken::new(),
            assignments: Mutex::default(),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.link.worker
    }

    fn assignments(&self) -> MutexGuard<'_, HashMap<String, Arc<Assignment>>> {
        // A plain map: a panic elsewhere cannot leave it half-changed.
        self.assignments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn assignment(&self, id: &str) -> Option<Arc<Assignment>> {
        self.assignments().get(id).cloned()
    }

    /// The server does not know this worker any more: everything of the session stops.
    fn mark_lost(&self) {
        self.lost.cancel();
        self.over.cancel();
    }

    /// Resolves when the server has forgotten this worker.
    pub(crate) async fn lost(&self) {
        self.lost.cancelled().await;
    }

    /// Takes no more `start`s.
    pub(crate) fn stop_taking(&self) {
        self.draining.cancel();
    }

    /// Takes every assignment away (their handlers stop, nothing more is reported).
    pub(crate) fn abandon_all(&self) {
        for assignment in self.assignments().values() {
            assignment.gone.cancel();
        }
    }

    /// The heartbeat loop: every `heartbeat`, renews the worker and its tasks, and drops the
    /// tasks the server no longer counts as ours.
    pub(crate) async fn beat(self: Arc<Self>) {
        let mut interval = tokio::time::interval(self.heartbeat);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = self.over.cancelled() => return,
            }
            let sent = Instant::now();
            let answer = tokio::select! {
                answer = self.shared.api.heartbeat(self.id()) => answer,
                () = self.over.cancelled() => return,
            };
            match answer {
                Ok(listed) => self.reconcile(&listed, sent),
                Err(error) if api::is_unknown_worker(&error) => {
                    tracing::warn!(worker = %self.id(), "the server forgot this worker; registering again");
                    self.mark_lost();
                    return;
                }
                Err(error) => tracing::warn!(worker = %self.id(), %error, "heartbeat failed"),
            }
        }
    }

    /// Drops every assignment known before the heartbeat was sent that it does not list: it
    /// was revoked while the stream was down. (One learnt of since may be too new to be
    /// listed, so it stays.)
    fn reconcile(&self, listed: &[String], sent: Instant) {
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        for assignment in self.assignments().values() {
            if assignment.known_at < sent && !listed.contains(assignment.id.as_str()) {
                tracing::warn!(assignment = %assignment.id, "not listed by the heartbeat; dropping it");
                assignment.gone.cancel();
            }
        }
    }

    /// The event stream: opened, read, and opened again (with `Last-Event-ID`) whenever it
    /// breaks, waiting longer after each failure.
    pub(crate) async fn listen(self: Arc<Self>) {
        let mut last_event_id: Option<String> = None;
        let mut backoff = Backoff::new(Duration::from_millis(50), self.shared.reconnect_max);
        loop {
            let opened = tokio::select! {
                opened = self.shared.api.events(self.id(), last_event_id.as_deref()) => opened,
                () = self.over.cancelled() => return,
            };
            match opened {
                Ok(mut response) => {
                    backoff.reset();
                    let mut parser = Parser::default();
                    loop {
                        let chunk = tokio::select! {
                            chunk = tokio::time::timeout(SILENCE, response.chunk()) => chunk,
                            () = self.over.cancelled() => return,
                        };
                        match chunk {
                            Err(_) => {
                                tracing::warn!(worker = %self.id(), "the event stream went silent; opening it again");
                                break;
                            }
                            Ok(Ok(Some(bytes))) => {
                                for event in parser.feed(&bytes) {
                                    if event.id.is_some() {
                                        last_event_id = event.id;
                                    }
                                    self.dispatch(&event.data);
                                }
                            }
                            Ok(Ok(None)) => break,
                            Ok(Err(error)) => {
                                tracing::warn!(worker = %self.id(), %error, "the event stream broke");
                                break;
                            }
                        }
                    }
                }
                Err(error) if api::is_unknown_worker(&error) => {
                    tracing::warn!(worker = %self.id(), "the server forgot this worker; registering again");
                    self.mark_lost();
                    return;
                }
                Err(error) => {
                    tracing::warn!(worker = %self.id(), %error, "cannot open the event stream");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = self.over.cancelled() => return,
            }
        }
    }

    /// Acts on one event's `data`.
    fn dispatch(self: &Arc<Self>, data: &str) {
        let event = match serde_json::from_str::<Event>(data) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(worker = %self.id(), %error, "an event that is not the protocol; ignored");
                return;
            }
        };
        match event {
            Event::Start(start) => self.start(start),
            Event::Answer {
                assignment,
                key,
                value,
            } => {
                if let Some(assignment) = self.assignment(&assignment) {
                    assignment.deliver_answer(key, Some(value));
                }
            }
            Event::AnswerTimeout { assignment, key } => {
                if let Some(assignment) = self.assignment(&assignment) {
                    assignment.deliver_answer(key, None);
                }
            }
            Event::StepSaved { assignment, key } => {
                if let Some(assignment) = self.assignment(&assignment) {
                    assignment.deliver_saved(key);
                }
            }
            Event::Cancel { assignment } => {
                if let Some(assignment) = self.assignment(&assignment) {
                    assignment.cancel.cancel();
                }
            }
            Event::Revoke { assignment, reason } => {
                if let Some(assignment) = self.assignment(&assignment) {
                    tracing::info!(assignment = %assignment.id, reason = reason.as_deref().unwrap_or(""), "revoked");
                    assignment.gone.cancel();
                }
            }
            Event::Unknown => {}
        }
    }

    /// An assignment: its runner waits for a free slot, runs the handler, reports the outcome.
    fn start(self: &Arc<Self>, start: Start) {
        if self.draining.is_cancelled() {
            // Assigned just before the drain took effect: handed back when the worker leaves.
            return;
        }
        let handler = self.shared.handlers.get(&start.kind).cloned();
        let (assignment, input) = Assignment::new(start, self.link.clone(), &self.over);
        let assignment = Arc::new(assignment);
        {
            let mut assignments = self.assignments();
            if assignments.contains_key(&assignment.id) {
                return; // sent again after a reconnection: already running
            }
            assignments.insert(assignment.id.clone(), assignment.clone());
        }
        let session = self.clone();
        self.shared
            .runners
            .spawn(async move { session.run(assignment, handler, input).await });
    }

    async fn run(
        self: Arc<Self>,
        assignment: Arc<Assignment>,
        handler: Option<Arc<dyn Handler>>,
        input: Value,
    ) {
        let outcome = match handler {
            Some(handler) => self.run_handler(&assignment, handler, input).await,
            // The server assigns only kinds this worker declared; this would be its bug.
            None => Some(Report::Fail {
                code: "unknown_kind".into(),
                message: Some(format!("this worker does not serve {:?}", assignment.kind)),
                details: None,
                retryable: false,
                retry_after_ms: None,
            }),
        };
        if let Some(outcome) = outcome {
            match assignment.report(outcome).await {
                Ok(()) | Err(Error::Gone) => {}
                Err(error) => {
                    tracing::warn!(assignment = %assignment.id, %error, "cannot report the outcome");
                }
            }
        }
        self.assignments().remove(&assignment.id);
    }

    /// Runs the handler in a task of its own (a panic fails this task only), once a slot is
    /// free, until it returns or the assignment is taken away. Returns the outcome to report.
    async fn run_handler(
        &self,
        assignment: &Arc<Assignment>,
        handler: Arc<dyn Handler>,
        input: Value,
    ) -> Option<Report> {
        let _permit = tokio::select! {
            permit = self.shared.permits.clone().acquire_owned() => permit.ok()?,
            () = assignment.gone.cancelled() => return None,
        };
        let job = Job::new(assignment.clone());
        // The call too runs in the task: a handler may panic before its first `.await`.
        #[expect(
            clippy::disallowed_methods,
            reason = "awaited or aborted right below: the JoinHandle is what catches a panic"
        )]
        let mut running = tokio::spawn(async move { handler.call(job, input).await });
        let joined = tokio::select! {
            joined = &mut running => joined,
            () = assignment.gone.cancelled() => {
                running.abort();
                return None;
            }
        };
        match joined {
            Ok(Ok(output)) => Some(Report::Complete { output }),
            Ok(Err(failure)) => failure.into_report(),
            Err(error) => Some(Report::Fail {
                code: "panicked".into(),
                message: Some(format!("the handler panicked: {}", panic_message(error))),
                details: None,
                retryable: false,
                retry_after_ms: None,
            }),
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(panic) => {
            if let Some(text) = panic.downcast_ref::<&str>() {
                (*text).to_owned()
            } else if let Some(text) = panic.downcast_ref::<String>() {
                text.clone()
            } else {
                "a panic without a message".to_owned()
            }
        }
        Err(error) => error.to_string(),
    }
}
