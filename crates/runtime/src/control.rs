//! Control of running tasks: cancel, answer, detach, stop all, and waiting for the end, for a
//! task held here or (through signals) on another node.

use std::sync::Arc;

use longrun_core::{CancelReason, Change, Routing, Status, Task, TaskId};
use serde_json::Value;

use crate::{
    error::Error,
    live::{AskSlot, Live},
    runtime::{Inner, json_size},
};

impl Inner {
    pub(crate) fn live(&self, id: TaskId) -> Option<Arc<Live>> {
        self.live.get(&id).map(|live| live.clone())
    }

    /// The stored task, if it has not ended and another node of the cluster may hold it.
    pub(crate) async fn elsewhere(&self, id: TaskId) -> Result<Option<Task>, Error> {
        if self.cluster.is_none() {
            return Ok(None);
        }
        let task = self.get(id).await?;
        Ok((!task.status().is_terminal()).then_some(task))
    }

    /// The error for a task this runtime does not run: ended, unknown, or elsewhere.
    pub(crate) async fn not_live(&self, id: TaskId) -> Error {
        match self.get(id).await {
            Ok(task) if task.status().is_terminal() => Error::Ended {
                id,
                status: task.status(),
            },
            Ok(_) => Error::NotRunning(id),
            Err(error) => error,
        }
    }

    /// Asks a task to stop. Returns false if it had already ended.
    pub(crate) async fn request_cancel(
        &self,
        live: &Live,
        reason: CancelReason,
    ) -> Result<bool, Error> {
        let staged = {
            let mut state = live.state.lock();
            let status = state.state.status();
            if status.is_terminal() {
                return Ok(false);
            }
            if state.cancel_reason.is_some() {
                return Ok(true);
            }
            state.cancel_reason = Some(reason.clone());
            // A queued task has no handler to warn; its supervisor ends it at once.
            if status == Status::Submitted {
                None
            } else {
                Some(self.stage(&mut state, live, Change::CancelRequested { reason })?)
            }
        };
        if let Some(staged) = staged {
            self.land(live, staged).await?;
        }
        live.request_cancel();
        Ok(true)
    }

    pub(crate) async fn cancel(&self, id: TaskId, reason: CancelReason) -> Result<Task, Error> {
        let Some(live) = self.live(id) else {
            return match self.elsewhere(id).await? {
                Some(task) => self.cancel_remote(task, reason).await,
                None => Err(self.not_live(id).await),
            };
        };
        if !self.request_cancel(&live, reason).await? {
            return Err(self.not_live(id).await);
        }
        self.wait_end(&live).await
    }

    pub(crate) async fn wait_end(&self, live: &Live) -> Result<Task, Error> {
        loop {
            let ended = live.changed.notified();
            let mut ended = std::pin::pin!(ended);
            ended.as_mut().enable();
            if live.is_ended() && !self.live.contains_key(&live.id) {
                return self.get(live.id).await;
            }
            ended.await;
        }
    }

    /// Waits until the live task has ended or waits for an answer, and returns it as stored
    /// then. A question counts once it is durable: `ask` wakes `changed` after its event landed,
    /// and the stored task is what decides. `None` when this node gave the task up without an
    /// end (handed over to another node, taken over, or abandoned after a failed write): the
    /// caller follows it through the store.
    pub(crate) async fn wait_settled(&self, live: &Live) -> Result<Option<Task>, Error> {
        loop {
            let changed = live.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if live.is_ended() && !self.live.contains_key(&live.id) {
                return self.get(live.id).await.map(Some);
            }
            // `mark_lost` wakes `changed` (it requests the cancel), so this is seen at once.
            if live.is_lost() {
                return Ok(None);
            }
            if live.status() == Status::InputRequired {
                let task = self.get(live.id).await?;
                if task.status() == Status::InputRequired || task.status().is_terminal() {
                    return Ok(Some(task));
                }
            }
            changed.await;
        }
    }

    pub(crate) async fn answer(&self, id: TaskId, key: &str, value: Value) -> Result<(), Error> {
        self.check_size(
            "the answer",
            json_size(&value),
            self.options.bounds.event_bytes,
        )?;
        let Some(live) = self.live(id) else {
            return match self.elsewhere(id).await? {
                Some(task) => self.answer_remote(task, key, value).await,
                None => Err(self.not_live(id).await),
            };
        };
        let (staged, waiter) = {
            let mut state = live.state.lock();
            let status = state.state.status();
            if status.is_terminal() {
                return Err(Error::Ended { id, status });
            }
            let waiter = match state.asks.remove(key) {
                None => None,
                Some(AskSlot::Waiting(waiter)) => Some(waiter),
                Some(slot @ (AskSlot::Early(_) | AskSlot::Answered)) => {
                    state.asks.insert(key.to_owned(), slot);
                    return Err(Error::AlreadyAnswered {
                        id,
                        key: key.to_owned(),
                    });
                }
                Some(AskSlot::TimedOut) => {
                    state.asks.insert(key.to_owned(), AskSlot::TimedOut);
                    return Err(Error::QuestionClosed {
                        id,
                        key: key.to_owned(),
                    });
                }
            };
            let change = Change::InputAnswered {
                key: key.to_owned(),
                value: value.clone(),
            };
            let staged = match self.stage(&mut state, &live, change) {
                Ok(staged) => staged,
                Err(error) => {
                    if let Some(waiter) = waiter {
                        state.asks.insert(key.to_owned(), AskSlot::Waiting(waiter));
                    }
                    return Err(error);
                }
            };
            let slot = if waiter.is_some() {
                AskSlot::Answered
            } else {
                AskSlot::Early(value.clone())
            };
            state.asks.insert(key.to_owned(), slot);
            (staged, waiter)
        };
        self.land(&live, staged).await?;
        if let Some(waiter) = waiter {
            // The handler may have been aborted meanwhile; the answer is recorded either way.
            let _ = waiter.send(value);
        }
        Ok(())
    }

    pub(crate) async fn detach(&self, id: TaskId) -> Result<bool, Error> {
        let Some(live) = self.live(id) else {
            return Err(self.not_live(id).await);
        };
        let staged = {
            let mut state = live.state.lock();
            if state.detached || live.routing == Routing::Background {
                return Ok(false);
            }
            let staged = self.stage(&mut state, &live, Change::Detached)?;
            state.detached = true;
            staged
        };
        self.land(&live, staged).await?;
        live.changed.notify_waiters();
        Ok(true)
    }

    pub(crate) async fn stop_all(&self) -> usize {
        let lives: Vec<Arc<Live>> = self.live.iter().map(|e| e.value().clone()).collect();
        let mut stopped = 0;
        for live in &lives {
            match self.request_cancel(live, CancelReason::Stopped).await {
                Ok(true) => stopped += 1,
                Ok(false) => {}
                Err(error) => tracing::error!(task = %live.id, %error, "could not stop a task"),
            }
        }
        for live in &lives {
            let _ = self.wait_end(live).await;
        }
        stopped
    }
}
