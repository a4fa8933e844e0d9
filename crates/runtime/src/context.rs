//! The handler's view of its task: progress, artifacts, questions, cancellation, the agent.

use std::{sync::Arc, time::Duration};

use longrun_core::{
    ArtifactChunk, Change, Owner, Progress, Session, TaskId, TraceContext, inbox::InboxEntry,
};
use serde_json::Value;
use tokio::sync::oneshot;
use tracing::{Instrument as _, Span};

use crate::{
    error::{AskError, Error},
    live::{AskSlot, Live},
    runtime::{Inner, json_size},
};

/// Given to every handler. Cloning is cheap.
///
/// Every method that records something returns once the change is durable in the store and has
/// been published to subscribers.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<Inner>,
    pub(crate) live: Arc<Live>,
    attempt: u32,
    /// The step and timer keys this attempt used: each names one use per attempt.
    pub(crate) keys: Arc<crate::step::AttemptKeys>,
    /// The attempt's span: the parent of its questions' spans, and the `traceparent` handed on.
    span: Span,
}

impl Context {
    pub(crate) fn new(inner: Arc<Inner>, live: Arc<Live>, attempt: u32, span: Span) -> Self {
        Self {
            inner,
            live,
            attempt,
            keys: Arc::default(),
            span,
        }
    }

    /// The W3C trace context a handler hands on to work it starts (a process handler's
    /// `TRACEPARENT`): this attempt's span when spans are exported, so the work nests under the
    /// attempt; otherwise the context the task was started under, if any.
    pub fn traceparent(&self) -> Option<TraceContext> {
        crate::trace::context_of(&self.span).or_else(|| self.live.trace.context.clone())
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.live.id
    }

    /// The task's kind.
    pub fn kind(&self) -> &str {
        &self.live.info.kind
    }

    /// The task's owner.
    pub fn owner(&self) -> &Owner {
        &self.live.info.owner
    }

    /// The conversation the task belongs to.
    pub fn session(&self) -> Option<&Session> {
        self.live.info.session.as_ref()
    }

    /// Which run this is: 1, or more after a crash re-run or a retry.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// What the kind's gate reserved for this attempt (see
    /// [`Runtime::register_stream_gated`](crate::Runtime::register_stream_gated)); `None` for a
    /// kind without a gate, or once taken.
    pub fn take_ticket(&self) -> Option<crate::gate::Ticket> {
        self.live.state.lock().ticket.take()
    }

    /// Gives the task up on this node without writing anything more, so that another node of
    /// the cluster takes it: its lease is released at once, the handler is stopped (as for a
    /// cancellation, without a grace period), and the node that claims it applies the kind's
    /// restart policy, as for a task whose node died. A gated kind's handler calls it when what
    /// it needed here went away mid-attempt (its worker was lost) and nothing here can replace
    /// it soon. Returns false, doing nothing, when the runtime is not a node of a cluster.
    pub async fn hand_over(&self) -> bool {
        self.inner.hand_over(&self.live).await
    }

    /// Whether cancellation was requested. The handler should stop soon; after the kind's grace
    /// period it is aborted.
    pub fn is_cancelled(&self) -> bool {
        self.live.is_cancelled()
    }

    /// Resolves when cancellation is requested.
    pub async fn cancelled(&self) {
        self.live.cancelled().await;
    }

    /// Reports progress: `percent` from 0 to 100 (or `None`), and what is happening.
    pub async fn progress(
        &self,
        percent: impl Into<Option<f64>>,
        message: impl Into<String>,
    ) -> Result<(), Error> {
        let percent = percent.into();
        if let Some(p) = percent
            && !(0.0..=100.0).contains(&p)
        {
            return Err(Error::InvalidProgress(p));
        }
        let message = message.into();
        let limit = self.inner.options.bounds.event_bytes;
        self.inner
            .check_size("the progress message", message.len(), limit)?;
        let progress = Progress {
            percent,
            message: (!message.is_empty()).then_some(message),
        };
        self.inner
            .commit(&self.live, Change::Progress(progress))
            .await
            .map(drop)
    }

    /// Emits an artifact chunk. Chunks with `append` extend the artifact of the same id.
    pub async fn artifact(&self, chunk: ArtifactChunk) -> Result<(), Error> {
        let limit = self.inner.options.bounds.artifact_bytes;
        self.inner
            .check_size("the artifact chunk", json_size(&chunk), limit)?;
        self.inner
            .commit(&self.live, Change::Artifact(chunk))
            .await
            .map(drop)
    }

    /// Asks a question and waits up to `timeout` for the answer. The task is `input_required`
    /// while it waits. An answer given before the question was asked is returned at once.
    ///
    /// Each key names one question for the task's whole life: asking a key twice is
    /// [`AskError::KeyReused`], never a silent replacement. A zero timeout returns an answer
    /// that is already there, and otherwise times out at once; it never means "forever" (pass
    /// [`Duration::MAX`] for that).
    pub async fn ask(
        &self,
        key: impl Into<String>,
        request: Value,
        timeout: Duration,
    ) -> Result<Value, AskError> {
        let key = key.into();
        let span = tracing::info_span!(
            target: crate::trace::TARGET,
            parent: &self.span,
            "task.ask",
            task.id = %self.live.id,
            ask.key = %key,
            ask.outcome = tracing::field::Empty,
        );
        let asked = self
            .ask_in_span(key, request, timeout)
            .instrument(span.clone())
            .await;
        let outcome = match &asked {
            Ok(_) => "answered",
            Err(AskError::TimedOut(_)) => "timed_out",
            Err(AskError::Cancelled) => "cancelled",
            Err(_) => "refused",
        };
        span.record("ask.outcome", outcome);
        asked
    }

    async fn ask_in_span(
        &self,
        key: String,
        request: Value,
        timeout: Duration,
    ) -> Result<Value, AskError> {
        let limit = self.inner.options.bounds.event_bytes;
        self.inner
            .check_size("the question", json_size(&request), limit)?;
        let (staged, mut answer) = {
            let mut state = self.live.state.lock();
            match state.asks.remove(&key) {
                None => {}
                Some(AskSlot::Early(value)) => {
                    state.asks.insert(key, AskSlot::Answered);
                    return Ok(value);
                }
                Some(slot) => {
                    state.asks.insert(key.clone(), slot);
                    return Err(AskError::KeyReused(key));
                }
            }
            let change = Change::InputRequested {
                key: key.clone(),
                request,
            };
            let staged = self.inner.stage(&mut state, &self.live, change)?;
            let (waiter, answer) = oneshot::channel();
            state.asks.insert(key.clone(), AskSlot::Waiting(waiter));
            (staged, answer)
        };
        self.inner.land(&self.live, staged).await?;
        // Whoever waits for the task to settle (a blocking door) learns of the question.
        self.live.changed.notify_waiters();

        tokio::select! {
            biased;
            answered = &mut answer => answered.map_err(|_| AskError::Cancelled),
            () = self.live.cancelled() => Err(AskError::Cancelled),
            () = tokio::time::sleep(timeout) => self.time_out(key, answer).await,
        }
    }

    async fn time_out(
        &self,
        key: String,
        mut answer: oneshot::Receiver<Value>,
    ) -> Result<Value, AskError> {
        let staged = {
            let mut state = self.live.state.lock();
            if !matches!(state.asks.get(&key), Some(AskSlot::Waiting(_))) {
                drop(state);
                // The answer won the race with the timer.
                return answer.try_recv().map_err(|_| AskError::Cancelled);
            }
            state.asks.insert(key.clone(), AskSlot::TimedOut);
            let change = Change::InputTimedOut { key: key.clone() };
            self.inner.stage(&mut state, &self.live, change)?
        };
        self.inner.land(&self.live, staged).await?;
        Err(AskError::TimedOut(key))
    }

    /// Sends the agent a message: recorded as an event, and placed in the session's inbox (if
    /// the task has a session) for the agent's next turn. `trigger` asks for a new turn.
    pub async fn notify_agent(
        &self,
        message: impl Into<String>,
        trigger: bool,
    ) -> Result<(), Error> {
        let message = message.into();
        let limit = self.inner.options.bounds.event_bytes;
        self.inner
            .check_size("the agent message", message.len(), limit)?;
        let change = Change::AgentMessage {
            message: message.clone(),
            trigger,
        };
        self.inner.commit(&self.live, change).await?;
        if let Some(session) = &self.live.info.session {
            let entry = InboxEntry::Message { message, trigger };
            self.inner.push_inbox(session, self.live.id, entry).await;
        }
        Ok(())
    }
}
