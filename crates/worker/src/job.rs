//! [`Job`]: what a handler holds while it runs one task: the task's facts, its cancellation,
//! and the reports it can make (progress, artifacts, questions, durable steps and sleeps,
//! messages to the agent).

use std::{future::Future, sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Error, Failure, assignment::Assignment, failure::millis, model::Report};

/// The context of one task run by a handler. Cheap to clone; every clone reports for the same
/// assignment, and reports are sent in the order they are made, each once the previous one is
/// recorded.
///
/// Every method that reports returns [`Error::Gone`] once the task is no longer this worker's:
/// the handler should then stop (it is stopped anyway at its next `.await`).
#[derive(Clone)]
pub struct Job {
    assignment: Arc<Assignment>,
}

impl Job {
    pub(crate) fn new(assignment: Arc<Assignment>) -> Self {
        Self { assignment }
    }

    /// The task's id (`task_…`).
    pub fn task_id(&self) -> &str {
        &self.assignment.task
    }

    /// The kind this task is of.
    pub fn kind(&self) -> &str {
        &self.assignment.kind
    }

    /// The attempt number: 1 the first time; a retry after a retryable failure is 2, and so
    /// on. A task re-assigned after its worker was lost keeps its attempt.
    pub fn attempt(&self) -> u32 {
        self.assignment.attempt
    }

    /// The assignment's id (`asg_…`), for logs.
    pub fn assignment_id(&self) -> &str {
        &self.assignment.id
    }

    /// Cancelled when the task is being cancelled (by a caller, or its deadline). The handler
    /// should stop and return [`Failure::cancelled`] (or any outcome) within the kind's
    /// `cancel_grace`; after it the task ends `cancelled` anyway and the handler is stopped.
    ///
    /// ```no_run
    /// # use longrun_worker::{Failure, Job};
    /// # async fn handler(job: Job) -> Result<serde_json::Value, Failure> {
    /// tokio::select! {
    ///     () = job.cancelled().cancelled() => Err(Failure::cancelled()),
    ///     () = tokio::time::sleep(std::time::Duration::from_secs(60)) => Ok(serde_json::json!("done")),
    /// }
    /// # }
    /// ```
    /// Clone it to move it into another future.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.assignment.cancel
    }

    /// Whether the task is being cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.assignment.cancel.is_cancelled()
    }

    /// Reports progress: `percent` (0 to 100) and a message, both optional.
    pub async fn progress(&self, percent: Option<u8>, message: Option<&str>) -> Result<(), Error> {
        self.assignment
            .report(Report::Progress {
                percent,
                message: message.map(str::to_owned),
            })
            .await
    }

    /// Publishes an artifact chunk (see [`Artifact`]).
    pub async fn artifact(&self, artifact: Artifact) -> Result<(), Error> {
        self.assignment
            .report(Report::Artifact {
                id: artifact.id,
                name: artifact.name,
                parts: artifact.parts,
                append: artifact.append,
                last_chunk: artifact.last_chunk,
            })
            .await
    }

    /// Asks a question and waits for its answer. `key` names it (once per task); `request` is
    /// a JSON object shown to whoever answers (by convention with a `message`). With a
    /// `timeout`, [`Error::AnswerTimeout`] comes when nobody answered in time. The task is
    /// `input_required` while it waits. The wait ends with [`Error::Cancelled`] when the task
    /// is cancelled, so `?` turns a cancellation during a question into a `cancelled` outcome.
    pub async fn ask(
        &self,
        key: &str,
        request: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        self.assignment
            .report(Report::Ask {
                key: key.to_owned(),
                request,
                timeout_ms: timeout.map(millis),
            })
            .await?;
        self.assignment
            .answer(key, true)
            .await?
            .ok_or_else(|| Error::AnswerTimeout {
                key: key.to_owned(),
            })
    }

    /// A durable step: when an earlier attempt (or worker) saved `key`, its value is returned
    /// and `work` does not run; otherwise `work` runs, and its value is saved under `key`
    /// before it is returned, so a re-run skips it. Use it for work that must not be done twice
    /// or is costly (a model call, a payment). Keys name one step per attempt.
    ///
    /// ```no_run
    /// # use longrun_worker::{Failure, Job};
    /// # async fn handler(job: Job) -> Result<serde_json::Value, Failure> {
    /// let sources: Vec<String> = job
    ///     .step("search", async { vec!["a".to_owned(), "b".to_owned()] })
    ///     .await?;
    /// Ok(serde_json::json!({"sources": sources}))
    /// # }
    /// ```
    pub async fn step<T, F>(&self, key: &str, work: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = T>,
    {
        if let Some(saved) = self.saved_step(key)? {
            return Ok(saved);
        }
        let value = work.await;
        self.save_step(key, &value).await?;
        Ok(value)
    }

    /// [`Job::step`] for fallible work: an `Err` is returned as a [`Failure`] and nothing is
    /// saved, so a later attempt does the work again.
    pub async fn try_step<T, E, F>(&self, key: &str, work: F) -> Result<T, Failure>
    where
        T: Serialize + DeserializeOwned,
        E: Into<Failure>,
        F: Future<Output = Result<T, E>>,
    {
        if let Some(saved) = self.saved_step(key)? {
            return Ok(saved);
        }
        let value = work.await.map_err(Into::into)?;
        self.save_step(key, &value).await?;
        Ok(value)
    }

    fn saved_step<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let Some(saved) = self.assignment.steps.get(key) else {
            return Ok(None);
        };
        serde_json::from_value(saved.clone())
            .map(Some)
            .map_err(|source| Error::StepValue {
                key: key.to_owned(),
                source,
            })
    }

    async fn save_step<T: Serialize>(&self, key: &str, value: &T) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(|source| Error::StepValue {
            key: key.to_owned(),
            source,
        })?;
        self.assignment
            .report(Report::Step {
                key: key.to_owned(),
                value,
            })
            .await?;
        // The report's answer already means durable; `step_saved` follows on the stream, and
        // is taken here so that it cannot be mistaken for the end of a sleep of the same key.
        // A cancellation does not cut this short: the value is saved either way.
        self.assignment.saved(key, false).await
    }

    /// A durable sleep: the server records when it ends, and a later attempt that sleeps under
    /// the same `key` waits only for what remains (nothing, if it is over). Ends with
    /// [`Error::Cancelled`] when the task is cancelled.
    pub async fn sleep(&self, key: &str, duration: Duration) -> Result<(), Error> {
        self.assignment
            .report(Report::Sleep {
                key: key.to_owned(),
                ms: millis(duration),
            })
            .await?;
        self.assignment.saved(key, true).await
    }

    /// Leaves a message for the agent in the task's session inbox; `trigger` asks for a new
    /// agent turn.
    pub async fn notify_agent(&self, text: &str, trigger: bool) -> Result<(), Error> {
        self.assignment
            .report(Report::Message {
                text: text.to_owned(),
                trigger,
            })
            .await
    }
}

/// An artifact chunk for [`Job::artifact`]: `parts` are JSON values, a string being text and
/// anything else data.
///
/// ```
/// use longrun_worker::Artifact;
/// let report = Artifact::new("report", vec!["# Tides".into()]).name("report.md").last_chunk(true);
/// # let _ = report;
/// ```
#[derive(Clone, Debug)]
pub struct Artifact {
    id: String,
    name: Option<String>,
    parts: Vec<Value>,
    append: bool,
    last_chunk: bool,
}

impl Artifact {
    /// A chunk that replaces the artifact `id` with `parts`.
    pub fn new(id: impl Into<String>, parts: Vec<Value>) -> Self {
        Self {
            id: id.into(),
            name: None,
            parts,
            append: false,
            last_chunk: false,
        }
    }

    /// A name for people.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Extend the artifact instead of replacing it.
    #[must_use]
    pub fn append(mut self, yes: bool) -> Self {
        self.append = yes;
        self
    }

    /// No more chunks of this artifact follow.
    #[must_use]
    pub fn last_chunk(mut self, yes: bool) -> Self {
        self.last_chunk = yes;
        self
    }
}
