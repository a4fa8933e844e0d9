//! Per-step retries: [`StepOptions`] and [`Context::step_with`].
//!
//! A kind's retry policy runs the whole handler again; a step's own policy tries just that
//! step again, within the attempt, before its error reaches the handler. The two compose: a
//! step that is still failing after its last try returns its error, and if the handler passes
//! it on, the kind's policy decides whether the task gets another attempt (which replays the
//! steps already saved). Nothing is recorded for a failed try, so a crash during a step's
//! backoff re-runs the step from its first try.

use std::future::Future;

use longrun_core::{RetryPolicy, TaskError};
use serde::{Serialize, de::DeserializeOwned};

use crate::{context::Context, step::StepError};

/// How [`Context::step_with`] runs one step: how often a failing try is repeated, and how long
/// it waits in between.
///
/// The policy has the shape of a kind's [`RetryPolicy`]; here its `max_attempts` counts the
/// step's tries (the first included), and its backoff (with jitter, drawn down, never up) is
/// the wait between two tries. An error marked fatal ([`TaskError::fatal`]) is not retried, and
/// an error's `retry_after` replaces the backoff. The default is one try, like
/// [`Context::step`].
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use longrun_runtime::{
///     Context, KindSpec, Outcome, RetryPolicy, Runtime, StartOptions, StepOptions, TaskError,
/// };
///
/// static TRIES: AtomicU32 = AtomicU32::new(0);
///
/// /// A model API that is overloaded on the first try.
/// async fn call_model(prompt: &str) -> Result<String, TaskError> {
///     match TRIES.fetch_add(1, Ordering::SeqCst) {
///         0 => Err(TaskError::new("overloaded", "503 from the model API")),
///         _ => Ok(format!("echo: {prompt}")),
///     }
/// }
///
/// async fn handler(ctx: Context, prompt: String) -> Result<String, TaskError> {
///     // Up to three tries, 20 ms then 40 ms apart (less up to a fifth, at random).
///     let options = StepOptions::new()
///         .retry(RetryPolicy::attempts(3).initial_backoff(Duration::from_millis(20)));
///     let reply: String = ctx
///         .step_with("model-call-1", options, || call_model(&prompt))
///         .await?;
///     Ok(reply)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(Default::default());
/// runtime.register(KindSpec::new("chat"), handler)?;
/// let task = runtime
///     .start("chat", "hi", StartOptions::foreground())
///     .await?
///     .finished()
///     .expect("a foreground start waits for the end");
/// assert_eq!(task.outcome(), Some(&Outcome::Completed { output: "echo: hi".into() }));
/// assert_eq!(TRIES.load(Ordering::SeqCst), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepOptions {
    retry: RetryPolicy,
}

impl StepOptions {
    /// One try, no retry: what [`Context::step`] does.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries a failing try under `policy` (its `max_attempts` counts the tries).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
}

impl Context {
    /// Like [`Context::step`], with [`StepOptions`]: `step` makes a new future for each try.
    ///
    /// If an earlier run saved a value under `key`, returns it without calling `step`.
    /// Otherwise tries `step` until it succeeds, its error is fatal, or the policy allows no
    /// more tries, waiting the policy's backoff between tries on the runtime's clock; the first
    /// success is saved durably and returned, and after the last failed try its error is
    /// returned (as [`StepError::Failed`]). A cancel during a backoff ends the wait at once with
    /// [`StepError::Cancelled`]; a try already running is the handler's to stop (it sees
    /// [`Context::cancelled`] like any other code).
    pub async fn step_with<T, E, F, Fut>(
        &self,
        key: impl Into<String>,
        options: StepOptions,
        mut step: F,
    ) -> Result<T, StepError>
    where
        T: Serialize + DeserializeOwned,
        E: Into<TaskError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = key.into();
        if let Some(recorded) = self.begin_step(&key)? {
            return Ok(recorded);
        }
        let policy = options.retry;
        let mut tries = 1;
        let output = loop {
            let error: TaskError = match step().await {
                Ok(output) => break output,
                Err(error) => error.into(),
            };
            if !error.is_retryable() || !policy.allows(tries + 1) || self.is_cancelled() {
                return Err(StepError::Failed(error));
            }
            let delay = error
                .retry_after
                .unwrap_or_else(|| policy.backoff(tries, fastrand::f64()));
            tracing::debug!(task = %self.id(), step = %key, tries, ?delay, %error, "a step's try failed; trying again after a backoff");
            tokio::select! {
                biased;
                () = self.live.cancelled() => return Err(StepError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
            tries += 1;
        };
        self.save_step(key, output).await
    }
}
