//! A runtime's life as one node of a cluster (a store implementing [`Cluster`]).
//!
//! One background loop per runtime:
//! - every `renew_interval` it renews the leases of all the tasks it holds (one statement),
//!   gives up the ones it lost, takes the signals waiting for its tasks and claims claimable
//!   tasks of the kinds it hosts, and wakes every watcher of a remote task. That pass is the
//!   safety net: it catches whatever a missed notice would have said;
//! - between passes it acts on the notices other nodes push: claim at once when tasks become
//!   claimable, take signals at once when one waits for a task held here, and wake the
//!   watchers of a task whose events were appended elsewhere.
//!
//! Operations on a task held by another node travel as signals: [`Inner::cancel_remote`] and
//! [`Inner::answer_remote`]. Subscribers and waiters of such a task read the store when woken
//! ([`Watchers`]).

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

use futures_util::StreamExt;
use longrun_core::{
    CancelReason, Task, TaskId,
    cluster::{Claim, Cluster, Notice, Signal, Signalled},
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{error::Error, live::Live, recover::Recovery, runtime::Inner};

/// Wakes whoever waits on a task held by another node when its events change there.
#[derive(Default)]
pub(crate) struct Watchers {
    tasks: Mutex<HashMap<TaskId, Weak<Notify>>>,
}

impl Watchers {
    /// The notifier of `task`, shared by all its watchers here; keep it while watching.
    pub(crate) fn watch(&self, task: TaskId) -> Arc<Notify> {
        let mut tasks = self.tasks.lock();
        if let Some(notify) = tasks.get(&task).and_then(Weak::upgrade) {
            return notify;
        }
        // Forget tasks nobody watches any more whenever the map would grow into new room:
        // amortized over the insertions, so the map never holds more dead entries than live.
        if tasks.len() == tasks.capacity() {
            tasks.retain(|_, notify| notify.strong_count() > 0);
        }
        let notify = Arc::new(Notify::new());
        tasks.insert(task, Arc::downgrade(&notify));
        notify
    }

    pub(crate) fn wake(&self, task: TaskId) {
        let notify = self.tasks.lock().get(&task).and_then(Weak::upgrade);
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Wakes every watcher, and forgets the tasks nobody watches any more.
    pub(crate) fn wake_all(&self) {
        let mut tasks = self.tasks.lock();
        tasks.retain(|_, notify| match notify.upgrade() {
            Some(notify) => {
                notify.notify_waiters();
                true
            }
            None => false,
        });
    }
}

/// Runs the node loop (see the module docs) until shutdown or the runtime is dropped.
///
/// # Fail-stop
///
/// This is the one place that decides when this node stops its handlers because it may have
/// lost its leases. A lease expires `lease_ttl` after the database's clock stamped the last
/// renewal, and other nodes may rescue the task from then on. The node counts from the moment
/// it *sent* the last renewal that succeeded (no later than the database stamped it), so its
/// deadline is never after the leases' expiry.
///
/// Every housekeeping action is bounded by the time left until that deadline: a call that
/// neither succeeds nor fails (a silent partition: packets go nowhere, the connection stays
/// open) must not hold the loop past it. Once no renewal has succeeded for a whole lease,
/// whether the calls failed or are still hanging, every task running here is stopped and
/// given up ([`Inner::fail_stop`]), so that a task another node rescues does not run here
/// too. Until a renewal succeeds again, the node only renews: a claim would take up tasks
/// only for them to be given up at once.
pub(crate) async fn run(
    inner: Weak<Inner>,
    cluster: Arc<dyn Cluster>,
    shutdown: CancellationToken,
) {
    let mut notices = cluster.notices();
    let lease = cluster.lease_ttl();
    // Only the notifier is kept between passes, not the runtime, so that dropping the runtime
    // ends the loop.
    let (interval, wanted) = match inner.upgrade() {
        Some(inner) => (inner.options.renew_interval, inner.claim_wanted.clone()),
        None => return,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = tokio::time::Instant::now();
    loop {
        let notice = tokio::select! {
            () = shutdown.cancelled() => return,
            notice = notices.next() => notice.map(Woken::Notice),
            () = wanted.notified() => Some(Woken::Room),
            _ = tick.tick() => None,
        };
        let Some(inner) = inner.upgrade() else { return };
        let left = lease.saturating_sub(renewed.elapsed());
        // Leases lapsed (see Fail-stop): only the timer's pass, which renews first, until a
        // renewal succeeds. Its bound is then a whole lease: nothing is held here any more,
        // and the loop must still come back to see shutdown.
        let (notice, bound) = if left.is_zero() {
            if notice.is_some() {
                continue;
            }
            (None, lease)
        } else {
            (notice, left)
        };
        let action = async {
            match notice {
                Some(Woken::Room | Woken::Notice(Notice::Claimable)) => {
                    inner.claim().await.map(drop)
                }
                Some(Woken::Notice(notice)) => inner.noticed(notice).await,
                None => inner.pass(&mut renewed).await,
            }
        };
        // Not raced against shutdown, which would cut claims short in the common case: tasks
        // leased here that nobody takes up until their leases expire. The bound cuts a call
        // short only when the database has not answered for the time left on the leases.
        match tokio::time::timeout(bound, action).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cluster housekeeping failed; retrying at the next renewal");
            }
            Err(_) => {
                tracing::warn!(
                    ?bound,
                    "cluster housekeeping did not answer in the time left on the leases; \
                     retrying at the next renewal"
                );
            }
        }
        if renewed.elapsed() >= lease {
            inner.fail_stop();
        }
    }
}

/// What woke the node loop, but for its timer.
enum Woken {
    /// Another node pushed a notice.
    Notice(Notice),
    /// A gate has room again ([`Runtime::claim_soon`](crate::Runtime::claim_soon)).
    Room,
}

impl Inner {
    /// Acts on a notice other than [`Notice::Claimable`].
    async fn noticed(self: &Arc<Self>, notice: Notice) -> Result<(), Error> {
        match notice {
            Notice::Claimable => self.claim().await.map(drop),
            Notice::Signalled { task } if self.live.contains_key(&task) => {
                self.take_signals().await
            }
            Notice::Signalled { .. } => Ok(()),
            Notice::Appended { task, .. } => {
                self.watchers.wake(task);
                Ok(())
            }
            Notice::AppendedMany => {
                self.watchers.wake_all();
                Ok(())
            }
            // Renewing is for the timer alone: a burst of notices must not become a burst of
            // lease writes.
            Notice::Missed => self.catch_up().await,
        }
    }
}

impl Inner {
    fn cluster(&self) -> &Arc<dyn Cluster> {
        self.cluster.as_ref().expect("only called in a cluster")
    }

    /// The periodic pass: renew, give up what was lost, take signals, claim, wake watchers.
    /// `renewed` becomes the moment a successful renewal was sent (see [`run`]'s Fail-stop).
    async fn pass(self: &Arc<Self>, renewed: &mut tokio::time::Instant) -> Result<(), Error> {
        let sent = tokio::time::Instant::now();
        let renewal = self.cluster().renew().await?;
        *renewed = sent;
        for id in &renewal.lost {
            if let Some(live) = self.live(*id) {
                self.abandon(&live, &longrun_core::store::Error::Fenced(*id));
            }
        }
        self.catch_up().await
    }

    /// Stops and gives up every task running here: no renewal succeeded for a whole lease, so
    /// other nodes may be rescuing them already (see [`run`]'s Fail-stop).
    ///
    /// Each is given up as after a failed write: once the store answers again, `resume`
    /// releases its lease if this node still holds it (the release is fenced, so it does
    /// nothing to a task another node took meanwhile), and the task is claimed again under its
    /// kind's restart policy. Otherwise this node would go on renewing leases of tasks it no
    /// longer runs.
    fn fail_stop(&self) {
        let lives: Vec<_> = self.live.iter().map(|e| e.value().clone()).collect();
        let stopped: Vec<TaskId> = lives
            .into_iter()
            .filter(|live| live.mark_lost())
            .map(|live| live.id)
            .collect();
        if stopped.is_empty() {
            return;
        }
        tracing::error!(
            tasks = stopped.len(),
            "no lease renewal succeeded for a whole lease: stopping every task here, which other \
             nodes may be rescuing (fail-stop)"
        );
        for id in stopped {
            // The receiver is gone only at shutdown; the next start takes the task up then.
            let _ = self.given_up.send(id);
        }
    }

    /// What a missed notice might have said: claim, take signals, wake every watcher.
    async fn catch_up(self: &Arc<Self>) -> Result<(), Error> {
        self.claim().await?;
        self.take_signals().await?;
        self.watchers.wake_all();
        Ok(())
    }

    /// Claims claimable tasks of the kinds hosted here, as many as there is room for, and
    /// takes them up. A gated kind's tasks are claimed only as many as its gate has room for
    /// (in a claim of their own, so that its limit is theirs); a gated kind without room only
    /// for a signal waiting for one of its tasks, so that a cancel or an answer is applied even
    /// while no node can run the task.
    pub(crate) async fn claim(self: &Arc<Self>) -> Result<Recovery, Error> {
        let mut early = self.claiming.lock().await;
        let kinds = self.kinds.claimable();
        let mut limit = self.options.claim_batch;
        if let Some(global) = self.options.limits.global {
            limit = limit.min(global.saturating_sub(self.live.len()));
        }
        let mut recovery = Recovery::default();
        if limit == 0 || self.shutdown.is_cancelled() {
            return Ok(recovery);
        }
        let room: usize = kinds.gated.iter().map(|(_, room)| room).sum();
        let gated = Claim::new(
            kinds.gated.into_iter().map(|(kind, _)| kind).collect(),
            limit.min(room),
        );
        let open = Claim {
            kinds: kinds.open,
            signalled: kinds.closed,
            limit,
        };
        let mut claimed = Vec::new();
        for claim in [open, gated] {
            if !claim.is_empty() {
                claimed.extend(self.cluster().claim(claim).await?);
            }
        }
        let any = !claimed.is_empty();
        for task in claimed {
            self.take_up(task, &mut recovery).await?;
        }
        if let Some(early) = early.as_mut() {
            early.add(recovery);
        }
        if any {
            tracing::debug!(?recovery, "claimed tasks");
            // Signals sent while the tasks had no holder wait for the new one.
            self.take_signals().await?;
        }
        Ok(recovery)
    }

    /// Gives `live` up here without writing anything more and releases its lease, so that a
    /// node with room claims it (see [`Gate`](crate::Gate)). Returns false outside a cluster.
    ///
    /// The record goes before the release is sent: the release wakes every node, this one too,
    /// and a claim here must find no stale record of the task.
    pub(crate) async fn hand_over(&self, live: &Live) -> bool {
        let Some(cluster) = &self.cluster else {
            return false;
        };
        if !live.mark_lost() {
            return true;
        }
        tracing::debug!(task = %live.id, "handing the task over to another node");
        self.drop_lost(live);
        // Sent to the store before the first await, so a caller dropped meanwhile still
        // releases it.
        let released = cluster.release(&[live.id]);
        if let Err(error) = released.await {
            tracing::warn!(task = %live.id, %error, "could not release a task handed over; other nodes take it when its lease expires");
        }
        true
    }

    /// Applies the signals waiting for tasks held here.
    async fn take_signals(self: &Arc<Self>) -> Result<(), Error> {
        for Signalled { task, signal } in self.cluster().take_signals().await? {
            let Some(live) = self.live(task) else {
                tracing::debug!(%task, "a signal for a task no longer running here");
                continue;
            };
            let this = self.clone();
            // Applying a signal writes an event; do not hold up the node loop for it.
            self.tracker.spawn(async move {
                let applied = match signal {
                    Signal::Cancel { reason } => this.request_cancel(&live, reason).await.map(drop),
                    Signal::Answer { key, value } => this.answer(task, &key, value).await,
                };
                if let Err(error) = applied {
                    tracing::debug!(%task, %error, "a signal from another node was not applied");
                }
            });
        }
        Ok(())
    }

    /// Cancels a task held by another node: the request travels as a signal, and this waits
    /// until the store shows the task ended.
    pub(crate) async fn cancel_remote(
        &self,
        task: Task,
        reason: CancelReason,
    ) -> Result<Task, Error> {
        let Some(cluster) = &self.cluster else {
            return Err(Error::NotRunning(task.id));
        };
        cluster.signal(task.id, Signal::Cancel { reason }).await?;
        self.wait_stored(task.id).await
    }

    /// Answers a question of a task held by another node. The holder applies it; what it
    /// cannot refuse here (a race with a time-out) it ignores.
    pub(crate) async fn answer_remote(
        &self,
        task: Task,
        key: &str,
        value: Value,
    ) -> Result<(), Error> {
        let Some(cluster) = &self.cluster else {
            return Err(Error::NotRunning(task.id));
        };
        let signal = Signal::Answer {
            key: key.to_owned(),
            value,
        };
        Ok(cluster.signal(task.id, signal).await?)
    }

    /// Waits until the stored task has ended, wherever it runs.
    pub(crate) async fn wait_stored(&self, id: TaskId) -> Result<Task, Error> {
        let notify = self.watchers.watch(id);
        loop {
            let woken = notify.notified();
            let mut woken = std::pin::pin!(woken);
            woken.as_mut().enable();
            if let Some(live) = self.live(id) {
                return self.wait_end(&live).await;
            }
            let task = self.get(id).await?;
            if task.status().is_terminal() {
                return Ok(task);
            }
            // Notices are hints: look again after a while even without one.
            let _ = tokio::time::timeout(crate::subscribe::POLL, woken).await;
        }
    }
}
