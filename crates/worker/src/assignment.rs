//! One assignment held by this worker: the task it runs, what the stream has delivered for it
//! (answers, saved steps and sleeps), its two stop signals, and the lock that sends its reports
//! one at a time.
//!
//! Invariants:
//! - `gone` is a child of the session's token: losing the session (or dropping the worker)
//!   takes every assignment away at once. Once `gone` is cancelled, nothing more is reported.
//! - Reports go out under `reports`, a FIFO lock held across the HTTP request, so they reach
//!   the server in the order they were made, each after the previous one's answer, even when a
//!   handler reports from several futures.
//! - The inbox is filled by the event stream and emptied by the waits; a waiter registers for
//!   `changed` before it looks, so a delivery between the look and the wait is not missed.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use serde_json::{Map, Value};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    api::Api,
    backoff::Backoff,
    model::{Report, Start},
};

/// An assignment and everything the handler's [`Job`](crate::Job) reaches through it.
pub(crate) struct Assignment {
    pub(crate) id: String,
    pub(crate) task: String,
    pub(crate) kind: String,
    pub(crate) attempt: u32,
    /// The steps saved by earlier workers or attempts, by key.
    pub(crate) steps: Map<String, Value>,
    /// The task is being cancelled: the handler should wind down and report an outcome.
    pub(crate) cancel: CancellationToken,
    /// The assignment is no longer ours: the handler is stopped and nothing more is reported.
    pub(crate) gone: CancellationToken,
    /// When this worker learnt of it: a heartbeat sent before that may not list it yet.
    pub(crate) known_at: Instant,
    link: Link,
    inbox: Mutex<Inbox>,
    changed: Notify,
    /// `true` once the outcome is recorded; held while a report is in flight.
    reports: tokio::sync::Mutex<bool>,
}

/// How an assignment reaches the server: the session it belongs to.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) api: Api,
    pub(crate) worker: String,
    /// How long the server waits for a silent worker: a report that cannot be sent for this
    /// long is pointless (the assignment is gone by then).
    pub(crate) expiry: Duration,
}

/// What the stream delivered and no wait has taken yet.
#[derive(Default)]
struct Inbox {
    /// By question key: the answer, or `None` for `answer_timeout`.
    answers: HashMap<String, Option<Value>>,
    /// Keys of `step_saved` events.
    saved: HashSet<String>,
}

impl Assignment {
    /// The assignment of a `start` event; `session` is the session's token. Returns it with
    /// the task's input (which the handler takes by value).
    pub(crate) fn new(start: Start, link: Link, session: &CancellationToken) -> (Self, Value) {
        let assignment = Self {
            id: start.assignment,
            task: start.task,
            kind: start.kind,
            attempt: start.attempt,
            steps: start.steps,
            cancel: CancellationToken::new(),
            gone: session.child_token(),
            known_at: Instant::now(),
            link,
            inbox: Mutex::default(),
            changed: Notify::new(),
            reports: tokio::sync::Mutex::new(false),
        };
        (assignment, start.input)
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        // The inbox holds plain maps; a panic elsewhere cannot leave them half-changed.
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stream delivered an answer (`None`: the question timed out).
    pub(crate) fn deliver_answer(&self, key: String, value: Option<Value>) {
        self.inbox().answers.insert(key, value);
        self.changed.notify_waiters();
    }

    /// The stream said a step is durable or a sleep is over.
    pub(crate) fn deliver_saved(&self, key: String) {
        self.inbox().saved.insert(key);
        self.changed.notify_waiters();
    }

    /// Waits for the answer to `key`: `Some(value)`, or `None` when it timed out.
    pub(crate) async fn answer(
        &self,
        key: &str,
        cut_by_cancel: bool,
    ) -> Result<Option<Value>, Error> {
        self.wait_for(|inbox| inbox.answers.remove(key), cut_by_cancel)
            .await
    }

    /// Waits for `step_saved` with `key`.
    pub(crate) async fn saved(&self, key: &str, cut_by_cancel: bool) -> Result<(), Error> {
        self.wait_for(|inbox| inbox.saved.remove(key).then_some(()), cut_by_cancel)
            .await
    }

    async fn wait_for<T>(
        &self,
        mut take: impl FnMut(&mut Inbox) -> Option<T>,
        cut_by_cancel: bool,
    ) -> Result<T, Error> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = take(&mut self.inbox()) {
                return Ok(found);
            }
            tokio::select! {
                () = changed => {}
                () = self.gone.cancelled() => return Err(Error::Gone),
                () = self.cancel.cancelled(), if cut_by_cancel => return Err(Error::Cancelled),
            }
        }
    }

    /// Sends one report, after every report made before it has been answered. `Ok` once the
    /// server recorded it; [`Error::Gone`] (and the assignment is marked gone) when fenced off
    /// or already ended.
    pub(crate) async fn report(&self, report: Report) -> Result<(), Error> {
        let is_outcome = matches!(
            report,
            Report::Complete { .. } | Report::Fail { .. } | Report::Cancelled { .. }
        );
        let mut ended = self.reports.lock().await;
        if *ended || self.gone.is_cancelled() {
            return Err(Error::Gone);
        }
        let result = tokio::select! {
            result = self.send(&report) => result,
            () = self.gone.cancelled() => Err(Error::Gone),
        };
        match &result {
            Ok(()) if is_outcome => *ended = true,
            Err(Error::Gone) => self.gone.cancel(),
            _ => {}
        }
        result
    }

    /// Sends `report`, again while the server cannot be reached at all (the request never
    /// left, so sending it again cannot apply it twice), for at most the worker's expiry.
    async fn send(&self, report: &Report) -> Result<(), Error> {
        let link = &self.link;
        let give_up = Instant::now() + link.expiry;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            match link.api.report(&link.worker, &self.id, report).await {
                Err(Error::Transport { source, .. })
                    if source.is_connect() && Instant::now() < give_up =>
                {
                    tracing::warn!(assignment = %self.id, error = %source, "cannot send a report; trying again");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                other => return other,
            }
        }
    }
}
