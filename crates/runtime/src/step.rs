//! Durable steps and timers: [`Context::step`] and [`Context::sleep`].
//!
//! A step's value is written to the task's log (a [`Change::StepSaved`] event) and the step
//! returns only once that write is durable, so a step whose return the handler saw is never
//! run again: a re-run after a crash, or a retry, gets the recorded value from the journal
//! instead. A durable sleep records when it ends (a [`Change::TimerStarted`] event), so a later
//! attempt waits only for what remains. The journal is read once when an attempt begins
//! ([`crate::journal`]), never per step.

use std::{collections::HashSet, future::Future, time::Duration};

use longrun_core::{Change, TaskError};
use parking_lot::Mutex;
use serde::{Serialize, de::DeserializeOwned};

use crate::{context::Context, error::Error, runtime::json_size};

/// The keys one attempt has used.
#[derive(Default)]
pub(crate) struct AttemptKeys {
    steps: Mutex<HashSet<String>>,
    timers: Mutex<HashSet<String>>,
}

/// Why [`Context::step`] or [`Context::sleep`] returned without a value.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step's own future failed; nothing was recorded, and a later attempt runs it again.
    #[error(transparent)]
    Failed(TaskError),
    /// This attempt already used the key; keys name one step (or timer) each per attempt.
    #[error("this attempt already used the step key `{0}`; use a new key for each step")]
    KeyReused(String),
    /// The recorded value does not fit the type the handler asks for now (the handler changed
    /// since the step was saved).
    #[error("the recorded value of step `{key}` does not fit the requested type: {message}")]
    Decode {
        /// The step.
        key: String,
        /// What the deserializer said.
        message: String,
    },
    /// The task was cancelled during the sleep.
    #[error("the task was cancelled")]
    Cancelled,
    /// Recording failed (a value above the bounds, a store failure).
    #[error(transparent)]
    Runtime(#[from] Error),
}

impl From<StepError> for TaskError {
    fn from(error: StepError) -> Self {
        match error {
            // The step's error keeps its code and its retry flags.
            StepError::Failed(error) => error,
            StepError::KeyReused(_) | StepError::Decode { .. } => {
                TaskError::new("step_error", error.to_string()).into_fatal()
            }
            StepError::Cancelled => TaskError::new("cancelled", error.to_string()),
            StepError::Runtime(error) => error.into(),
        }
    }
}

impl Context {
    /// The values saved so far, by step key (by earlier attempts, and by this one): what a
    /// handler that keeps its own journal (a process handler, a worker) is given when it
    /// starts.
    pub fn saved_steps(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        let state = self.live.state.lock();
        state
            .journal
            .steps
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// The value saved under step `key`, by an earlier attempt or this one.
    pub fn saved_step(&self, key: &str) -> Option<serde_json::Value> {
        self.live.state.lock().journal.steps.get(key).cloned()
    }

    /// Runs `step` once for the task's whole life: if an earlier attempt saved a value under
    /// `key`, returns it without polling `step`; otherwise awaits `step`, writes its value
    /// durably, and only then returns it. A step that fails returns its error (as
    /// [`StepError::Failed`]) and records nothing. Each key names one step per attempt. To
    /// retry a failing step within the attempt, use [`Context::step_with`] and
    /// [`StepOptions`](crate::StepOptions).
    ///
    /// ```
    /// # use longrun_runtime::{Context, TaskError};
    /// async fn handler(ctx: Context, prompt: String) -> Result<String, TaskError> {
    ///     let reply: String = ctx
    ///         .step("model-call-1", async { Ok::<_, TaskError>(format!("echo: {prompt}")) })
    ///         .await?;
    ///     Ok(reply)
    /// }
    /// ```
    pub async fn step<T, E, F>(&self, key: impl Into<String>, step: F) -> Result<T, StepError>
    where
        T: Serialize + DeserializeOwned,
        E: Into<TaskError>,
        F: Future<Output = Result<T, E>>,
    {
        let key = key.into();
        if let Some(recorded) = self.begin_step(&key)? {
            return Ok(recorded);
        }
        let output = step
            .await
            .map_err(|error| StepError::Failed(error.into()))?;
        self.save_step(key, output).await
    }

    /// Claims `key` for this attempt and returns the value an earlier run saved under it, if
    /// any: the part of a step that comes before its work.
    pub(crate) fn begin_step<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StepError> {
        if !self.keys.steps.lock().insert(key.to_owned()) {
            return Err(StepError::KeyReused(key.to_owned()));
        }
        let recorded = self.live.state.lock().journal.steps.get(key).cloned();
        recorded
            .map(|value| {
                serde_json::from_value(value).map_err(|error| StepError::Decode {
                    key: key.to_owned(),
                    message: error.to_string(),
                })
            })
            .transpose()
    }

    /// Writes a step's value durably and only then hands it back: the part of a step that
    /// comes after its work.
    pub(crate) async fn save_step<T: Serialize>(
        &self,
        key: String,
        output: T,
    ) -> Result<T, StepError> {
        let value = serde_json::to_value(&output).map_err(|error| {
            StepError::Failed(TaskError::new(
                TaskError::INVALID_OUTPUT,
                format!("the value of step `{key}` could not be serialized: {error}"),
            ))
        })?;
        let limit = self.inner.options.bounds.event_bytes;
        self.inner
            .check_size("the step's value", json_size(&value), limit)?;
        let change = Change::StepSaved {
            key: key.clone(),
            value: value.clone(),
        };
        self.inner.commit(&self.live, change).await?;
        // Kept for the attempt too: a handler that hands its work on mid-attempt (a worker
        // kind whose worker was lost) passes every saved step to the next one.
        self.live.state.lock().journal.steps.insert(key, value);
        Ok(output)
    }

    /// Sleeps for `duration`, durably: the end time is recorded under `key` the first time, and
    /// a later attempt (after a crash or a retry) waits only until that time. Returns early with
    /// [`StepError::Cancelled`] if the task is cancelled.
    pub async fn sleep(&self, key: impl Into<String>, duration: Duration) -> Result<(), StepError> {
        let key = key.into();
        if !self.keys.timers.lock().insert(key.clone()) {
            return Err(StepError::KeyReused(key));
        }
        let recorded = self.live.state.lock().journal.timers.get(&key).copied();
        let until = match recorded {
            Some(until) => until,
            None => {
                let until = self.inner.clock.now().saturating_add(duration);
                let change = Change::TimerStarted {
                    key: key.clone(),
                    until,
                };
                self.inner.commit(&self.live, change).await?;
                self.live.state.lock().journal.timers.insert(key, until);
                until
            }
        };
        let remaining = until.saturating_since(self.inner.clock.now());
        tokio::select! {
            biased;
            () = self.live.cancelled() => Err(StepError::Cancelled),
            () = tokio::time::sleep(remaining) => Ok(()),
        }
    }
}
