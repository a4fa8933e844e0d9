//! Push notifications: configs kept in [`store::Store`], one delivery task per config.
//!
//! A delivery task follows its task's events (`Runtime::subscribe`, which replays the log and
//! then goes live, so it never slows the task: a deliverer that falls behind reads the log) and
//! POSTs each one to the webhook, in order, retrying a failed POST with exponential backoff
//! before it goes on to the next. After each delivered event it records the event's sequence
//! number, so after a restart [`Push::resume`] goes on from the first event not yet delivered.
//!
//! Invariant: `running` holds at most one delivery per (task, config id); replacing a config
//! stops the old delivery before the new one starts, and a delivery removes its own entry (and
//! only its own, by generation) when it ends.

mod deliver;
#[cfg(test)]
mod golden;
pub(crate) mod sign;
pub(crate) mod store;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use longrun::Runtime;
use longrun_delivery::{Policy, Retry, Sender};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
pub(crate) use store::Record;

/// The push-notification service. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct Push {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    runtime: Runtime,
    /// POSTs with retries, through the SSRF guard.
    sender: Sender,
    /// Signs every POST when the server has a webhook secret.
    signer: Option<sign::Signer>,
    shutdown: CancellationToken,
    running: Mutex<HashMap<(String, String), (u64, CancellationToken)>>,
    generation: AtomicU64,
}

impl Push {
    pub(crate) fn new(
        store: store::Store,
        runtime: Runtime,
        policy: Policy,
        retry: Retry,
        secret: Option<&sign::WebhookSecret>,
        shutdown: CancellationToken,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                sender: Sender::new(policy, retry)?,
                signer: secret.map(sign::Signer::new),
                shutdown,
                running: Mutex::default(),
                generation: AtomicU64::new(0),
            }),
        })
    }

    /// The SSRF policy webhook URLs are checked against.
    pub(crate) fn policy(&self) -> Policy {
        self.inner.sender.policy()
    }

    /// Starts the deliveries of every stored config (after a restart). Returns at once.
    pub(crate) fn resume(&self) {
        let push = self.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "one read of the stored configs that hands each to `start`; it ends by itself and the door owns no TaskTracker yet"
        )]
        tokio::spawn(async move {
            match push.inner.store.all().await {
                Ok(records) => {
                    let count = records.len();
                    for record in records {
                        push.start(record);
                    }
                    if count > 0 {
                        tracing::info!(count, "resumed A2A push-notification deliveries");
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot resume A2A push-notification deliveries")
                }
            }
        });
    }

    /// Stores a config (replacing one with the same task and id) and starts its delivery.
    pub(crate) async fn put(&self, record: Record) -> Result<(), Error> {
        self.stop(&record.task, &record.id);
        self.inner.store.put(record.clone()).await?;
        self.start(record);
        Ok(())
    }

    pub(crate) async fn get(&self, task: &str, id: &str) -> Result<Option<Record>, Error> {
        self.inner.store.get(task, id).await
    }

    pub(crate) async fn list(&self, task: &str) -> Result<Vec<Record>, Error> {
        self.inner.store.list(task).await
    }

    /// Stops a config's delivery and removes it; whether there was one.
    pub(crate) async fn delete(&self, task: &str, id: &str) -> Result<bool, Error> {
        self.stop(task, id);
        self.inner.store.delete(task, id).await
    }

    fn start(&self, record: Record) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let stop = self.inner.shutdown.child_token();
        let key = (record.task.clone(), record.id.clone());
        if let Some((_, old)) = self
            .inner
            .running
            .lock()
            .insert(key.clone(), (generation, stop.clone()))
        {
            old.cancel();
        }
        let inner = self.inner.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "a delivery ends on its own `stop` token (config deleted or replaced, door stopping); the door owns no TaskTracker yet"
        )]
        tokio::spawn(async move {
            deliver::run(&inner, record, &stop).await;
            let mut running = inner.running.lock();
            if running.get(&key).is_some_and(|(g, _)| *g == generation) {
                running.remove(&key);
            }
        });
    }

    fn stop(&self, task: &str, id: &str) {
        if let Some((_, stop)) = self
            .inner
            .running
            .lock()
            .remove(&(task.to_owned(), id.to_owned()))
        {
            stop.cancel();
        }
    }
}
