//! Webhooks: a task started over `/v1` with a `webhook` (or of a kind with a default one in
//! the server's config) has its events POSTed to the receiver as they happen, so no client has
//! to poll. `docs/webhooks.md` is the user's account.
//!
//! The delivery is `longrun-delivery`'s, shared with A2A's push notifications: each webhook is
//! a record in its durable store (how far delivery got included), each POST goes through its
//! SSRF guard and is retried with backoff, and each is signed with the Standard Webhooks
//! headers. This module decides only what is sent: which events, in which body, under which
//! `webhook-id` (`<task>_<seq>`, the same on every retry and after a restart, so a receiver
//! can de-duplicate).
//!
//! One delivery per task (`running` keeps it so), started when the task is created and ended when its last event is
//! delivered (the record is then removed). A delivery stops when the server does; a new
//! [`Webhooks`] over the same store file resumes every unfinished one from the first event not
//! yet delivered.

mod deliver;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
};

use longrun::Runtime;
use longrun_delivery::{Policy, Retry, Sender, SigningSecret, Store};
use longrun_surface::{Principal, Surface};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    error::Error,
    model::{Webhook, WebhookEvents},
};

/// The door's name in the shared delivery store.
const DOOR: &str = "http";
/// A task's one webhook's id in the store.
const DELIVERY_ID: &str = "webhook";

/// The config file's `[webhooks]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where pending deliveries are kept (a SQLite file); `longrun serve` defaults it to
    /// `webhooks.sqlite` in the data directory. Without one they live in memory.
    pub store: Option<PathBuf>,
    /// Lets webhooks go to loopback addresses (127.0.0.0/8, ::1, `localhost`), for a receiver
    /// on the same machine, as tests need. Private, link-local and reserved addresses stay
    /// refused.
    #[serde(default)]
    pub allow_loopback: bool,
    /// The Standard Webhooks secret (`whsec_…`) for webhooks that name none.
    pub secret: Option<String>,
}

/// Why webhooks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The delivery store could not be opened.
    #[error("cannot open the webhook store {}: {message}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the webhook client: {0}")]
    Client(String),
    /// A setting is wrong: the `[webhooks] secret`, or a kind's default webhook.
    #[error("{0}")]
    Config(String),
}

/// The webhook service. Cloning is cheap.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sender: Sender,
    runtime: Runtime,
    /// For webhooks that name no secret.
    secret: Option<SigningSecret>,
    /// Each kind's default webhook, for starts that name none.
    defaults: HashMap<String, Webhook>,
    shutdown: CancellationToken,
    /// The tasks whose delivery is running: resuming after a restart races with new starts,
    /// and each task gets one delivery.
    running: Mutex<HashSet<String>>,
}

/// A delivery's settings beyond its URL, as the store keeps them.
#[derive(Serialize, Deserialize)]
struct Detail {
    events: WebhookEvents,
    /// The secret as written (`whsec_…`).
    secret: String,
}

/// A webhook checked and ready to be stored with its task.
pub(crate) struct Accepted {
    url: String,
    detail: Detail,
}

impl Webhooks {
    /// The webhooks of the surface's runtime, with each kind's default (`defaults`, by kind
    /// name). Deliveries stop when the surface shuts down. Call inside a tokio runtime, after
    /// the runtime has recovered its tasks: deliveries stored by an earlier run resume here.
    pub fn new(
        surface: &Surface,
        config: &WebhookConfig,
        defaults: HashMap<String, Webhook>,
    ) -> Result<Self, WebhookError> {
        Self::with_retry(surface, config, defaults, Retry::default())
    }

    /// As [`Webhooks::new`], retrying failed POSTs as `retry` says.
    pub fn with_retry(
        surface: &Surface,
        config: &WebhookConfig,
        defaults: HashMap<String, Webhook>,
        retry: Retry,
    ) -> Result<Self, WebhookError> {
        let secret = config
            .secret
            .as_deref()
            .map(SigningSecret::parse)
            .transpose()
            .map_err(|why| WebhookError::Config(format!("[webhooks] secret: {why}")))?;
        let store = match &config.store {
            Some(path) => Store::open(path, DOOR, "").map_err(|error| WebhookError::Store {
                path: path.clone(),
                message: error.to_string(),
            })?,
            None => Store::memory(DOOR),
        };
        let policy = Policy {
            allow_loopback: config.allow_loopback,
        };
        let sender =
            Sender::new(policy, retry).map_err(|error| WebhookError::Client(error.to_string()))?;
        let webhooks = Self {
            inner: Arc::new(Inner {
                store,
                sender,
                runtime: surface.runtime().clone(),
                secret,
                defaults,
                shutdown: surface.shutdown_token(),
                running: Mutex::default(),
            }),
        };
        // A default that could never be delivered is a config error, found at start-up.
        for (kind, webhook) in &webhooks.inner.defaults {
            webhooks
                .check(webhook)
                .map_err(|why| WebhookError::Config(format!("kind `{kind}`'s webhook: {why}")))?;
        }
        webhooks.resume();
        Ok(webhooks)
    }

    /// The webhook a start of `kind` gets: the one it names, else the kind's default; checked.
    pub(crate) fn accept(
        &self,
        kind: &str,
        named: Option<Webhook>,
    ) -> Result<Option<Accepted>, Error> {
        let Some(webhook) = named.or_else(|| self.inner.defaults.get(kind).cloned()) else {
            return Ok(None);
        };
        self.check(&webhook)
            .map(Some)
            .map_err(|why| Error::InvalidRequest(format!("webhook: {why}")))
    }

    fn check(&self, webhook: &Webhook) -> Result<Accepted, String> {
        self.inner.sender.policy().check(&webhook.url)?;
        let secret = match &webhook.secret {
            Some(text) => SigningSecret::parse(text)?,
            None => self.inner.secret.clone().ok_or_else(|| {
                "no `secret`, and the server has no `[webhooks] secret`: name one (`whsec_` and \
                 the base64 of 24 to 64 random bytes)"
                    .to_owned()
            })?,
        };
        Ok(Accepted {
            url: webhook.url.clone(),
            detail: Detail {
                events: webhook.events,
                secret: secret.to_text(),
            },
        })
    }

    /// Stores the task's webhook and starts delivering its events (from the first).
    ///
    /// With `repeated` (a start repeated with its `Idempotency-Key`), a webhook already stored
    /// for the task is left as it is: the repeat adds no second one. One is stored only if the
    /// first start's never was, which is what a client retrying after the server crashed
    /// between creating the task and storing its webhook needs.
    pub(crate) async fn start(
        &self,
        task: &longrun::TaskId,
        owner: &Principal,
        accepted: Accepted,
        repeated: bool,
    ) -> Result<(), Error> {
        let stored = |error| Error::Internal(format!("cannot read the task's webhook: {error}"));
        if repeated
            && self
                .inner
                .store
                .get(&task.to_string(), DELIVERY_ID)
                .await
                .map_err(stored)?
                .is_some()
        {
            return Ok(());
        }
        let record = longrun_delivery::Record {
            task: task.to_string(),
            id: DELIVERY_ID.to_owned(),
            owner: owner.as_str().to_owned(),
            url: accepted.url,
            detail: serde_json::to_string(&accepted.detail).unwrap_or_default(),
            delivered: 0,
        };
        self.inner
            .store
            .put(record.clone())
            .await
            .map_err(|error| {
                Error::Internal(format!("cannot store the task's webhook: {error}"))
            })?;
        self.spawn(record);
        Ok(())
    }

    /// Starts the deliveries of every stored webhook (after a restart). Returns at once.
    fn resume(&self) {
        let webhooks = self.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "one read of the stored webhooks that hands each to `spawn`; it ends by itself and the door owns no TaskTracker yet"
        )]
        tokio::spawn(async move {
            match webhooks.inner.store.all().await {
                Ok(records) => {
                    let count = records.len();
                    for record in records {
                        webhooks.spawn(record);
                    }
                    if count > 0 {
                        tracing::info!(count, "resumed webhook deliveries");
                    }
                }
                Err(error) => tracing::error!(%error, "cannot resume webhook deliveries"),
            }
        });
    }

    fn spawn(&self, record: longrun_delivery::Record) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        if !self.inner.running.lock().insert(record.task.clone()) {
            return;
        }
        let inner = self.inner.clone();
        let stop = self.inner.shutdown.child_token();
        #[expect(
            clippy::disallowed_methods,
            reason = "a delivery ends on its own `stop` token (the door stopping) or with its task; the door owns no TaskTracker yet"
        )]
        tokio::spawn(async move {
            let task = record.task.clone();
            deliver::run(&inner, record, &stop).await;
            inner.running.lock().remove(&task);
        });
    }
}
