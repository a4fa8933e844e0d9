//! [`Worker`]: registers with the server, keeps the registration alive, runs what it is
//! assigned, registers again when the server forgot it, and drains and leaves on shutdown.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    Builder, Error,
    api::{self, Api},
    backoff::Backoff,
    builder::{Kind, handlers},
    model::{KindDeclaration, Register, Registered},
    session::{Session, Shared},
};

/// A worker: serves kinds of a `longrun serve` over the worker protocol. Build it with
/// [`Worker::builder`], run it with [`Worker::run`].
pub struct Worker {
    shared: Arc<Shared>,
    name: String,
    capacity: usize,
    kinds: Vec<Kind>,
    drain_timeout: Duration,
}

impl Worker {
    /// Settings for a worker of the server at `url` (`http://host:port`, without `/v1`).
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::new(url)
    }

    pub(crate) fn new(builder: Builder) -> Result<Self, Error> {
        let api = Api::new(&builder.url, builder.token, Duration::from_secs(10))?;
        let shared = Arc::new(Shared {
            api,
            handlers: handlers(&builder.kinds),
            permits: Arc::new(Semaphore::new(builder.capacity)),
            runners: TaskTracker::new(),
            reconnect_max: builder.reconnect_max,
        });
        Ok(Self {
            shared,
            name: builder.name,
            capacity: builder.capacity,
            kinds: builder.kinds,
            drain_timeout: builder.drain_timeout,
        })
    }

    /// Serves until `shutdown` is cancelled, then drains: takes no new tasks, lets the running
    /// ones finish for up to the drain timeout, hands back the rest, and leaves.
    ///
    /// While the server cannot be reached it tries again, waiting longer each time; when the
    /// server forgot the worker (it expired, or the server restarted) it registers again. It
    /// returns an error only when the server refuses the registration (a kind it does not
    /// have, a principal not allowed to serve it, a schema that differs from the config's).
    ///
    /// Dropping the future stops everything at once, reporting nothing: the server notices
    /// the silence after its `expiry_ms` and re-runs or fails the tasks, as for a crash.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        // Everything the worker starts is under `alive`; the guard cancels it if this future
        // is dropped, so no handler outlives its worker.
        let alive = CancellationToken::new();
        let _stop_on_drop = alive.clone().drop_guard();
        let mut backoff = Backoff::new(Duration::from_millis(50), self.shared.reconnect_max);
        loop {
            let registered = tokio::select! {
                registered = self.register() => registered,
                () = shutdown.cancelled() => return Ok(()),
            };
            let session = match registered {
                Ok(registered) => Session::new(
                    self.shared.clone(),
                    registered.worker,
                    Duration::from_millis(registered.heartbeat_ms.max(1)),
                    Duration::from_millis(registered.expiry_ms.max(1)),
                    &alive,
                ),
                Err(error) if api::is_transient(&error) => {
                    tracing::warn!(%error, "cannot register; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => continue,
                        () = shutdown.cancelled() => return Ok(()),
                    }
                }
                Err(error) => return Err(error),
            };
            backoff.reset();
            tracing::info!(worker = %session.id(), "registered");
            // The two loops are plain tasks that end with the session (`over`): a client
            // library has no runtime tracker to spawn on, and the session's end stops them.
            #[expect(clippy::disallowed_methods, reason = "both loops end with the session")]
            let loops = [
                tokio::spawn(session.clone().beat()),
                tokio::spawn(session.clone().listen()),
            ];
            drop(loops);
            tokio::select! {
                () = session.lost() => continue,
                () = shutdown.cancelled() => {
                    self.drain(&session).await;
                    return Ok(());
                }
            }
        }
    }

    async fn register(&self) -> Result<Registered, Error> {
        let body = Register {
            name: &self.name,
            capacity: self.capacity,
            kinds: self
                .kinds
                .iter()
                .map(|kind| KindDeclaration {
                    name: &kind.name,
                    input_schema: kind.input_schema.as_ref(),
                })
                .collect(),
        };
        self.shared.api.register(&body).await
    }

    /// Drain, wait for the handlers (bounded), hand back the rest, leave.
    async fn drain(&self, session: &Arc<Session>) {
        session.stop_taking();
        if let Err(error) = self.shared.api.drain(session.id()).await {
            tracing::warn!(worker = %session.id(), %error, "cannot drain");
        }
        let runners = &self.shared.runners;
        runners.close();
        let finished = tokio::time::timeout(self.drain_timeout, runners.wait()).await;
        if finished.is_err() {
            tracing::warn!(worker = %session.id(), "tasks still running after the drain timeout; handing them back");
            session.abandon_all();
            runners.wait().await;
        }
        if let Err(error) = self.shared.api.leave(session.id()).await {
            tracing::warn!(worker = %session.id(), %error, "cannot leave");
        }
        session.over.cancel();
    }
}
