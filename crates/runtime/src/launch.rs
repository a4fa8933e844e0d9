//! Launching a task: admission under the limits, the first write (held by this node in a
//! cluster), the fast path when the store has already acknowledged it, and spawning the
//! supervisor before anything is awaited, so a dropped caller cannot strand a half-started task.

use std::{sync::Arc, time::Duration};

use longrun_core::{
    Change, NewTask, Outcome, Routing, Seq, Task, TaskError, TaskId, store::Error as StoreError,
};
use serde_json::Value;

use crate::{
    admission::{Decision, Slot},
    error::Error,
    live::{Live, TaskInfo},
    runtime::Runtime,
    runtime::{Inner, json_size},
    start::{StartOptions, StartTime, Started, TaskHandle},
    supervise::{self, Admitted, Launched, Pending},
    trace::Trace,
};

impl Inner {
    pub(crate) async fn start(
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
    pub(crate) async fn existing(
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

    pub(crate) async fn start_new(
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
            trace,
            keep_events,
            attended,
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
        let id = TaskId::random();
        let trace = Trace::start(id, &spec.name, trace);
        let (task, first) = Task::create(NewTask {
            id,
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
            trace: trace.context.clone(),
        });
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
            entry.clone(),
            info,
            routing,
            holds_slot,
            on_terminal,
            first.clone(),
            trace,
        ));
        if keep_events {
            live.state.lock().kept = Some(Vec::new());
        }
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
                    // A gated kind waits at its gate first, in its supervisor.
                    Admitted::Run if entry.gate.is_some() => (Launched::Going, Some(Admitted::Run)),
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
            Routing::Foreground if attended => Ok(Started::Running(handle)),
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
        live.trace.abandon("not_created");
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

    pub(crate) async fn wait_foreground(
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
                if live.is_lost() {
                    // Handed over to another node (a gated kind): wait for it there.
                    let _ = self.wait_stored(live.id).await;
                    return;
                }
                changed.await;
            }
        };
        match detach_after {
            None => waiting.await,
            Some(after) => {
                if tokio::time::timeout(after, waiting).await.is_err() && !live.is_lost() {
                    self.detach(live.id).await?;
                }
            }
        }
        if live.is_ended() {
            Ok(Started::Finished(Box::new(self.get(live.id).await?)))
        } else if live.is_lost() {
            let task = self.get(live.id).await?;
            if task.status().is_terminal() {
                Ok(Started::Finished(Box::new(task)))
            } else {
                Ok(Started::Detached(handle))
            }
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
}
