//! Taking a task up again after a failed write gave it up on this node (a full disk, a failing
//! fsync, a database that went away), once the store works again: without this, such a task
//! would sit unfinished in the store until the next restart of the server.
//!
//! Without a cluster, the loop reads each given-up task back from the store and takes it up as
//! a restart would ([`Inner::take_up`]: its kind's restart policy applies). In a cluster it
//! releases the task's lease instead, which this node still holds and keeps renewing (an
//! outage shorter than a lease does not lose it): the task is then claimable at once, and the
//! claim pass of this node or another takes it up with the same restart policy.
//!
//! While the store still fails, the read, the release or the task's first write fails, the
//! task is given up again and comes back here; the wait between passes doubles up to
//! [`MAX_WAIT`], so a long outage costs a few reads, not a busy loop.

use std::{
    collections::BTreeSet,
    sync::{Arc, Weak},
    time::Duration,
};

use longrun_core::TaskId;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::{recover::Recovery, runtime::Inner};

/// The first wait after a task is given up: a fault that clears at once costs little.
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// The longest wait between two passes, so recovery follows the fault's end closely.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Takes up the tasks sent on `given_up` until shutdown, as the module docs describe.
pub(crate) async fn run(
    inner: Weak<Inner>,
    mut given_up: UnboundedReceiver<TaskId>,
    shutdown: CancellationToken,
) {
    // A set, so that a task given up again while it waits is held once.
    let mut waiting = BTreeSet::new();
    let mut wait = FIRST_WAIT;
    loop {
        if waiting.is_empty() {
            wait = FIRST_WAIT;
            tokio::select! {
                () = shutdown.cancelled() => return,
                id = given_up.recv() => match id {
                    Some(id) => { waiting.insert(id); }
                    None => return,
                },
            }
        }
        // Everything given up in the same moment is taken up in the same pass.
        let pause = tokio::time::sleep(wait);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = &mut pause => break,
                id = given_up.recv() => match id {
                    Some(id) => { waiting.insert(id); }
                    None => return,
                },
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let before = waiting.len();
        pass(&inner, &mut waiting).await;
        // Nothing went through: the store still fails. Wait longer before the next pass.
        wait = if waiting.len() >= before {
            (wait * 2).min(MAX_WAIT)
        } else {
            FIRST_WAIT
        };
    }
}

/// Tries each waiting task once; removes those that are settled.
async fn pass(inner: &Arc<Inner>, waiting: &mut BTreeSet<TaskId>) {
    let mut recovery = Recovery::default();
    for id in waiting.clone() {
        // Still winding down from the failure: its handler has not stopped yet.
        if inner.live.contains_key(&id) {
            continue;
        }
        if let Some(cluster) = &inner.cluster {
            match cluster.release(&[id]).await {
                Ok(()) => {
                    waiting.remove(&id);
                }
                Err(error) => {
                    tracing::warn!(%error, tasks = waiting.len(), "the store still fails; releasing the given-up tasks later");
                    return;
                }
            }
            continue;
        }
        match inner.store.get(id).await {
            // Purged, or ended after all (the failed write was an earlier one): nothing to do.
            Ok(None) => {
                waiting.remove(&id);
            }
            Ok(Some(task)) if task.finished_at().is_some() => {
                waiting.remove(&id);
            }
            Ok(Some(task)) => match inner.take_up(task, &mut recovery).await {
                Ok(()) => {
                    waiting.remove(&id);
                }
                Err(error) => {
                    tracing::warn!(task = %id, %error, "could not take a task up again yet");
                }
            },
            Err(error) => {
                // The store cannot even be read: the others would fail the same way.
                tracing::warn!(%error, tasks = waiting.len(), "the store still fails; taking the given-up tasks up later");
                return;
            }
        }
    }
    if inner.cluster.is_some() && waiting.is_empty() {
        // Released: claim them now rather than at the next renewal.
        if let Err(error) = inner.claim().await {
            tracing::warn!(%error, "could not claim the released tasks yet; the node loop will");
        }
    }
    if recovery.taken_up() > 0 {
        tracing::info!(?recovery, "took up tasks given up after a failed write");
    }
}
