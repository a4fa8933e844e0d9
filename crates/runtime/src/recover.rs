//! Taking stored tasks up again: after a restart, or when this node claims them from a node
//! that died.
//!
//! A task still `submitted` is queued again, as if just started. A task that was `working` or
//! `input_required` was interrupted mid-run, and its kind's [`RestartPolicy`] decides:
//! [`RestartPolicy::Rerun`] starts the handler again (`attempt` + 1) with every answer already
//! given to `ask` replayed, so it does not ask twice, and every step saved and timer started
//! replayed from the journal, so it resumes after its last step; [`RestartPolicy::Fail`] ends it
//! `failed` with [`TaskError::INTERRUPTED`]. A re-run counts as an attempt against the kind's
//! retry policy. A task waiting for its next attempt waits for the rest of its backoff. Either
//! way, the events already written are kept.

use std::sync::Arc;

use longrun_core::{RestartPolicy, Seq, Status, Task, TaskError};

use crate::{
    Runtime,
    error::Error,
    journal::Replay,
    live::{Live, TaskInfo},
    runtime::Inner,
    supervise::{self, Admitted},
};

/// How many events are read from the log at a time when collecting answers to replay.
/// What a recovery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Tasks still `submitted`, queued again.
    pub resubmitted: usize,
    /// Interrupted tasks started again (`attempt` + 1), their answers replayed.
    pub rerun: usize,
    /// Interrupted tasks whose kind fails on restart: ended `failed` (`interrupted`).
    pub failed: usize,
    /// Unfinished tasks of kinds this runtime does not host, left as they are.
    pub skipped: usize,
}

impl Recovery {
    /// How many tasks were taken up.
    pub fn taken_up(&self) -> usize {
        self.resubmitted + self.rerun + self.failed
    }

    pub(crate) fn add(&mut self, other: Self) {
        self.resubmitted += other.resubmitted;
        self.rerun += other.rerun;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

impl Runtime {
    /// Takes up the unfinished tasks this runtime should run, once its kinds are registered:
    /// call it once at start-up.
    ///
    /// With a single-process store, that is every unfinished task of a registered kind. In a
    /// cluster, it claims the tasks of its kinds that are claimable now (those of its own earlier
    /// incarnation at once, a dead node's once their leases expire); the node keeps claiming
    /// in the background after that. The node loop starts with the runtime and may claim some
    /// before this call: those count as recovered too.
    pub async fn recover(&self) -> Result<Recovery, Error> {
        let inner = &self.inner;
        if inner.cluster.is_some() {
            loop {
                let round = inner.claim().await?;
                if round.taken_up() + round.skipped == 0 {
                    break;
                }
            }
            // Every claim until now, this call's and the node loop's before it, is counted
            // there.
            return Ok(inner.claiming.lock().await.take().unwrap_or_default());
        }
        let mut recovery = Recovery::default();
        for task in inner.store.unfinished().await? {
            inner.take_up(task, &mut recovery).await?;
        }
        if recovery.taken_up() > 0 {
            tracing::info!(?recovery, "took up unfinished tasks");
        }
        Ok(recovery)
    }
}

impl Inner {
    /// Runs a stored, unfinished task here, as the module docs describe.
    pub(crate) async fn take_up(
        self: &Arc<Self>,
        task: Task,
        recovery: &mut Recovery,
    ) -> Result<(), Error> {
        if self.live.contains_key(&task.id) {
            return Ok(());
        }
        let Some(entry) = self.kinds.get(&task.kind) else {
            recovery.skipped += 1;
            return Ok(());
        };
        let status = task.status();
        let interrupted = matches!(status, Status::Working | Status::InputRequired);
        // A submitted task with only its first event has nothing to replay: skip the read.
        let replay = if interrupted || task.last_seq() > Seq::FIRST {
            Replay::read(self.store.as_ref(), task.id).await?
        } else {
            Replay::default()
        };
        let info = TaskInfo {
            kind: entry.name.clone(),
            owner: task.owner.clone(),
            session: task.session.clone(),
        };
        let live = Arc::new(Live::resume(&task, entry.clone(), info, []));
        replay.install(&live);
        self.live.insert(task.id, live.clone());

        // A re-run after a crash counts as an attempt against the kind's retry policy.
        let retry = &entry.spec.retry;
        let exhausted = retry.max_attempts > 1 && !retry.allows(task.attempt() + 1);
        if interrupted && (entry.spec.restart == RestartPolicy::Fail || exhausted) {
            recovery.failed += 1;
            let error = if exhausted {
                TaskError::new(
                    TaskError::INTERRUPTED,
                    format!(
                        "the task was interrupted by a crash or restart after its last attempt \
                         ({} of {})",
                        task.attempt(),
                        retry.max_attempts
                    ),
                )
            } else {
                TaskError::new(
                    TaskError::INTERRUPTED,
                    "the task was interrupted by a crash or restart, and its kind does not re-run",
                )
            };
            let this = self.clone();
            self.tracker.spawn(async move {
                this.finish(&live, longrun_core::Outcome::Failed { error })
                    .await;
            });
            return Ok(());
        }
        if interrupted {
            recovery.rerun += 1;
        } else {
            recovery.resubmitted += 1;
        }
        // It was waiting for its next attempt: it waits for the rest of its backoff, without a
        // slot, then is admitted like a retry.
        if let Some(at) = task.retry_at() {
            self.tracker.spawn(crate::retry::resume(
                self.clone(),
                live,
                task.input,
                task.deadline,
                at,
            ));
            return Ok(());
        }

        // A delayed start not yet due waits for what remains of its delay, holding no slot.
        let admitted = match task.start_at {
            Some(at) if !interrupted && at > self.clock.now() => Admitted::Delayed(at),
            _ => supervise::admit_again(self, &live),
        };
        self.tracker.spawn(supervise::run(
            self.clone(),
            live,
            task.input,
            task.deadline,
            admitted,
            None,
        ));
        Ok(())
    }
}
