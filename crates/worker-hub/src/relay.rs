//! One task of a worker kind: wait for a worker, relay its reports into the task, push it the
//! answers and the cancellation, and weigh a lost worker against the kind's restart policy.
//!
//! [`run`] is the kind's whole handler. It holds the task for its attempt the way a process
//! handler does (the node holds the lease; the worker holds nothing), across however many
//! assignments it takes: a worker that leaves hands the task back and the next one resumes it,
//! with every step saved so far. The first assignment is made at the kind's gate, before the
//! attempt starts ([`crate::gate`]); a later one waits here. In a cluster, a task of a kind that
//! re-runs whose worker went away, and for which no other worker here comes within
//! `hand_over_after`, is handed over to another node (`Context::hand_over`), which re-runs it
//! from its last step on one of its own workers.
//!
//! What outlives an assignment lives in [`Session`]: the questions asked and their answers, and
//! the sleeps started, because the runtime allows one question (or timer) per key per attempt,
//! and the next worker asks the same question again. It gets the answer the first one was
//! waiting for, or waits for the same one.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use futures_util::{StreamExt, stream::FuturesUnordered};
use longrun::{
    Context, Error, TaskError,
    error::{AskError, StepError},
    event::ArtifactChunk,
    gate::Waiting,
    kind::{RestartPolicy, Signal},
};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::{
    Inner, PROTOCOL_ERROR,
    gate::Reservation,
    roster::{Assigned, Loss},
    wire::{PROTOCOL, Push, Report},
};

/// A report on its way from a request to the relay, with the request's answer.
pub(crate) type Incoming = (Value, oneshot::Sender<Result<(), Refused>>);

/// Why a report was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a report, or against the protocol; the task fails with `protocol_error`.
    Protocol(String),
    /// The task has ended, or is ending; the worker should stop.
    Ended,
}

type Question = Pin<Box<dyn Future<Output = (String, Result<Value, AskError>)> + Send>>;
type Sleep = Pin<Box<dyn Future<Output = (String, Result<(), StepError>)> + Send>>;

/// Runs one attempt of a task of a worker kind; the outcome is the stream's one signal.
pub(crate) async fn run(hub: Arc<Inner>, ctx: Context, input: Value) -> Signal {
    let input = Arc::new(input);
    let mut session = Session {
        ctx: &ctx,
        asks: HashMap::new(),
        questions: FuturesUnordered::new(),
        sleeps: HashMap::new(),
        timers: FuturesUnordered::new(),
    };
    // The gate assigned the attempt's first worker.
    let mut reserved = ctx
        .take_ticket()
        .and_then(|ticket| ticket.downcast::<Reservation>().ok())
        .and_then(|reservation| reservation.take());
    loop {
        let assigned = match reserved.take() {
            Some(assigned) => assigned,
            None => {
                let waited = tokio::select! {
                    biased;
                    () = ctx.cancelled() => return Signal::Cancel("cancelled before a worker took the task".into()),
                    waited = hub.reassign(&ctx, input.clone()) => waited,
                };
                match waited {
                    Some(assigned) => assigned,
                    None => {
                        tracing::info!(task = %ctx.id(), "no worker here took the task again; handing it over to another node");
                        ctx.hand_over().await;
                        return Signal::Cancel("handed over to another node".into());
                    }
                }
            }
        };
        let assigned = match assigned {
            Ok(assigned) => assigned,
            Err(why) => {
                return Signal::Fail(TaskError::new(TaskError::INVALID_INPUT, why).into_fatal());
            }
        };
        let mut guard = Guard {
            hub: &hub,
            id: assigned.id.clone(),
            finished: false,
        };
        tracing::debug!(task = %ctx.id(), assignment = %assigned.id, worker = %assigned.worker, "task assigned");
        match session.relay(assigned, &input).await {
            Relayed::Ended(signal) => {
                guard.finished = true;
                return signal;
            }
            Relayed::Lost(Loss::Left) => {
                tracing::info!(task = %ctx.id(), "the task's worker left; assigning it again");
            }
            Relayed::Lost(Loss::Expired) => {
                let rerun = hub
                    .runtime
                    .kind(ctx.kind())
                    .is_some_and(|spec| spec.restart == RestartPolicy::Rerun);
                if !rerun {
                    tracing::warn!(task = %ctx.id(), "the task's worker was lost; its kind does not re-run");
                    let message = "the worker running the task was lost (no heartbeat), and the kind does not re-run";
                    return Signal::Fail(
                        TaskError::new(TaskError::INTERRUPTED, message).into_fatal(),
                    );
                }
                tracing::warn!(task = %ctx.id(), "the task's worker was lost; assigning it again");
            }
        }
        guard.finished = true;
    }
}

/// Ends an assignment on every way out of the relay; one the worker did not end is revoked.
struct Guard<'a> {
    hub: &'a Arc<Inner>,
    id: Arc<str>,
    finished: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let outbox = self.hub.roster.release(&self.id);
        if !self.finished
            && let Some(outbox) = outbox
        {
            let push = Push::Revoke {
                assignment: &self.id,
                reason: "the task is no longer this worker's (it ended, or the server stopped it)",
            };
            outbox.push(push.name(), push.data());
        }
        self.hub.dispatch();
        self.hub.runtime.claim_soon();
    }
}

enum Relayed {
    Ended(Signal),
    Lost(Loss),
}

/// What a question of this attempt has come to.
enum Asked {
    Waiting,
    Answered(Value),
    TimedOut,
}

struct Session<'c> {
    ctx: &'c Context,
    asks: HashMap<String, Asked>,
    questions: FuturesUnordered<Question>,
    /// Sleep keys of this attempt: `true` once over.
    sleeps: HashMap<String, bool>,
    timers: FuturesUnordered<Sleep>,
}

/// The assignment being relayed: where pushes go.
struct Current<'a> {
    id: &'a str,
    outbox: &'a crate::outbox::Outbox,
}

impl Current<'_> {
    fn push(&self, push: &Push<'_>) {
        self.outbox.push(push.name(), push.data());
    }
}

impl Session<'_> {
    async fn relay(&mut self, assigned: Assigned, input: &Value) -> Relayed {
        let Assigned {
            id,
            outbox,
            mut reports,
            mut lost,
            ..
        } = assigned;
        let current = Current {
            id: &id,
            outbox: &outbox,
        };
        let steps = self.ctx.saved_steps();
        let trace = self.ctx.traceparent();
        current.push(&Push::Start {
            assignment: &id,
            protocol: PROTOCOL,
            task: self.ctx.id().to_string(),
            kind: self.ctx.kind(),
            attempt: self.ctx.attempt(),
            steps: &steps,
            traceparent: trace
                .as_ref()
                .map(longrun::trace::TraceContext::traceparent),
            input,
        });
        // Questions this attempt asked are open for the new worker too.
        let mut cancel_sent = false;
        loop {
            tokio::select! {
                biased;
                loss = &mut lost => return Relayed::Lost(loss.unwrap_or(Loss::Expired)),
                () = self.ctx.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    current.push(&Push::Cancel { assignment: &id });
                }
                incoming = reports.recv() => {
                    // The sender lives in the roster until the assignment is removed, which
                    // only a loss does (and that resolves `lost` first).
                    let Some((body, reply)) = incoming else { return Relayed::Lost(Loss::Expired) };
                    match self.report(&current, body).await {
                        Ok(None) => { let _ = reply.send(Ok(())); }
                        Ok(Some(signal)) => {
                            let _ = reply.send(Ok(()));
                            return Relayed::Ended(signal);
                        }
                        Err(Refused::Ended) if cancel_sent => { let _ = reply.send(Err(Refused::Ended)); }
                        Err(Refused::Protocol(reason)) => {
                            tracing::warn!(task = %self.ctx.id(), %reason, "protocol error from a worker");
                            let _ = reply.send(Err(Refused::Protocol(reason.clone())));
                            return Relayed::Ended(Signal::Fail(TaskError::new(PROTOCOL_ERROR, reason)));
                        }
                        Err(Refused::Ended) => {
                            let _ = reply.send(Err(Refused::Ended));
                            return Relayed::Ended(Signal::Fail(TaskError::new(
                                TaskError::HANDLER_ERROR,
                                "a report of the worker could not be recorded",
                            )));
                        }
                    }
                }
                Some((key, answer)) = self.questions.next() => self.answered(&current, key, answer),
                Some((key, slept)) = self.timers.next() => self.slept(&current, key, slept),
            }
        }
    }

    /// Records one report. `Some` is the task's outcome.
    async fn report(
        &mut self,
        current: &Current<'_>,
        body: Value,
    ) -> Result<Option<Signal>, Refused> {
        let report = serde_json::from_value::<Report>(body)
            .map_err(|error| Refused::Protocol(format!("not a report: {error}")))?;
        let recorded = match report {
            Report::Progress { percent, message } => self.ctx.progress(percent, message).await,
            Report::Artifact {
                id,
                name,
                parts,
                append,
                last_chunk,
            } => {
                let chunk = ArtifactChunk {
                    id,
                    name,
                    parts,
                    append,
                    last_chunk,
                };
                self.ctx.artifact(chunk).await
            }
            Report::Message { text, trigger } => self.ctx.notify_agent(text, trigger).await,
            Report::Ask {
                key,
                request,
                timeout_ms,
            } => {
                self.ask(current, key, request, timeout_ms).await;
                Ok(())
            }
            Report::Step { key, value } => {
                // A report resent after a lost answer: the same value under the same key is
                // the same step, already durable.
                if self.ctx.saved_step(&key).as_ref() == Some(&value) {
                    current.push(&Push::StepSaved {
                        assignment: current.id,
                        key: &key,
                    });
                    return Ok(None);
                }
                let saved = self
                    .ctx
                    .step(key.clone(), async { Ok::<_, TaskError>(value) })
                    .await;
                match saved {
                    Ok(_) => current.push(&Push::StepSaved {
                        assignment: current.id,
                        key: &key,
                    }),
                    Err(StepError::Runtime(error)) => return Err(refused(error)),
                    Err(StepError::Cancelled) => return Err(Refused::Ended),
                    Err(error) => return Err(Refused::Protocol(error.to_string())),
                }
                Ok(())
            }
            Report::Sleep { key, ms } => {
                self.sleep(current, key, ms);
                Ok(())
            }
            Report::Complete { output } => return Ok(Some(Signal::Success(output))),
            Report::Fail {
                code,
                message,
                details,
                retryable,
                retry_after_ms,
            } => {
                let mut error = TaskError::new(code, message);
                error.details = details;
                error.fatal = !retryable;
                error.retry_after = retry_after_ms.map(Duration::from_millis);
                return Ok(Some(Signal::Fail(error)));
            }
            Report::Cancelled { message } => return Ok(Some(Signal::Cancel(message))),
        };
        recorded.map(|()| None).map_err(refused)
    }

    /// Asks through the runtime, or joins the question an earlier worker of this attempt asked.
    /// The first poll happens here, so the question is recorded before the report's answer.
    async fn ask(
        &mut self,
        current: &Current<'_>,
        key: String,
        request: Value,
        timeout_ms: Option<u64>,
    ) {
        match self.asks.get(&key) {
            Some(Asked::Waiting) => return,
            Some(Asked::Answered(value)) => {
                return current.push(&Push::Answer {
                    assignment: current.id,
                    key: &key,
                    value,
                });
            }
            Some(Asked::TimedOut) => {
                return current.push(&Push::AnswerTimeout {
                    assignment: current.id,
                    key: &key,
                });
            }
            None => {}
        }
        self.asks.insert(key.clone(), Asked::Waiting);
        let timeout = timeout_ms.map_or(Duration::MAX, Duration::from_millis);
        let ctx = self.ctx.clone();
        let mut question: Question = Box::pin(async move {
            let answer = ctx.ask(key.clone(), request, timeout).await;
            (key, answer)
        });
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(question.as_mut().poll(cx)));
        match first.await {
            std::task::Poll::Ready((key, answer)) => self.answered(current, key, answer),
            std::task::Poll::Pending => self.questions.push(question),
        }
    }

    fn answered(&mut self, current: &Current<'_>, key: String, answer: Result<Value, AskError>) {
        match answer {
            Ok(value) => {
                current.push(&Push::Answer {
                    assignment: current.id,
                    key: &key,
                    value: &value,
                });
                self.asks.insert(key, Asked::Answered(value));
            }
            Err(AskError::TimedOut(_)) => {
                current.push(&Push::AnswerTimeout {
                    assignment: current.id,
                    key: &key,
                });
                self.asks.insert(key, Asked::TimedOut);
            }
            // The cancel branch tells the worker.
            Err(AskError::Cancelled) => {}
            Err(error) => {
                // A key reused or a question refused: the next report of the worker learns of
                // it no better than this log line would; the task goes on without the answer.
                tracing::warn!(task = %self.ctx.id(), %error, "a worker's question was refused");
                self.asks.insert(key.clone(), Asked::TimedOut);
                current.push(&Push::AnswerTimeout {
                    assignment: current.id,
                    key: &key,
                });
            }
        }
    }

    /// Starts a durable sleep, or joins the one an earlier worker of this attempt started.
    fn sleep(&mut self, current: &Current<'_>, key: String, ms: u64) {
        match self.sleeps.get(&key) {
            Some(true) => current.push(&Push::StepSaved {
                assignment: current.id,
                key: &key,
            }),
            Some(false) => {}
            None => {
                self.sleeps.insert(key.clone(), false);
                let ctx = self.ctx.clone();
                self.timers.push(Box::pin(async move {
                    let slept = ctx.sleep(key.clone(), Duration::from_millis(ms)).await;
                    (key, slept)
                }));
            }
        }
    }

    fn slept(&mut self, current: &Current<'_>, key: String, slept: Result<(), StepError>) {
        match slept {
            Ok(()) => {
                current.push(&Push::StepSaved {
                    assignment: current.id,
                    key: &key,
                });
                self.sleeps.insert(key, true);
            }
            Err(StepError::Cancelled) => {}
            Err(error) => {
                tracing::warn!(task = %self.ctx.id(), %error, "a worker's durable sleep failed");
            }
        }
    }
}

/// A runtime refusal of a report: the worker's fault (a bound, a bad percent) or the task's end.
fn refused(error: Error) -> Refused {
    match error {
        Error::InvalidProgress(_) | Error::TooLarge { .. } => Refused::Protocol(error.to_string()),
        error => {
            tracing::debug!(%error, "a worker's report was not recorded");
            Refused::Ended
        }
    }
}

impl Inner {
    /// Waits for another worker here to take the task again, within the attempt; an error is an
    /// input the worker's schema refuses. `None`: none came within `hand_over_after`, and the
    /// task should go to another node (only in a cluster, for a kind that re-runs: elsewhere
    /// it starts a new attempt, which a kind that fails on restart would not survive).
    async fn reassign(&self, ctx: &Context, input: Arc<Value>) -> Option<Result<Assigned, String>> {
        let waiting = Waiting {
            task: ctx.id(),
            kind: ctx.kind().into(),
            input,
            may_hand_over: false,
            fresh: false,
        };
        let assigned = self.queue(&waiting);
        let rerun = self
            .runtime
            .kind(ctx.kind())
            .is_some_and(|spec| spec.restart == RestartPolicy::Rerun);
        if !(rerun && self.runtime.is_clustered()) {
            return Some(assigned.await);
        }
        tokio::time::timeout(self.options.hand_over_after, assigned)
            .await
            .ok()
    }
}
