//! One task attempt as one process: start it, relay its lines, stop it, and judge how it ended.
//!
//! [`run`] is the whole handler. It runs two futures side by side: the session loop, and the
//! writer that feeds the child's stdin from a channel (so a child that does not read its stdin
//! can never stall the loop). The loop waits on one [`Input`] at a time; everything that can
//! wake it is in that enum: a stdout line, a stderr line, an answered question, the cancel
//! request, the child's exit, the stop timer.
//!
//! Invariants:
//! - The first outcome line or protocol error is the verdict; later lines can only turn an
//!   outcome into a protocol error, never into another outcome.
//! - Once a verdict is in, stdin is closed and the child is being stopped: it gets
//!   `term_grace` to exit by itself after an outcome, then SIGTERM, then `term_grace` more, then
//!   SIGKILL. After a cancel, a protocol error or a refused write, SIGTERM is sent at once.
//! - When the child exits, the rest of its group is killed, then the pipes are read to their
//!   end (bounded by `term_grace`, in case something escaped the group and holds them).

use std::{
    pin::{Pin, pin},
    sync::Arc,
    time::Duration,
};

use futures_util::{FutureExt as _, StreamExt, stream::FuturesUnordered};
use longrun::{
    Context, Error, TaskError, TaskId,
    error::{AskError, StepError},
    kind::Signal,
};
use nix::sys::signal::Signal::{SIGKILL, SIGTERM};
use serde_json::Value;
use tokio::{
    io::AsyncWriteExt,
    process::{Child, ChildStderr, ChildStdin, ChildStdout},
    sync::mpsc,
    time::Instant,
};

use crate::{
    MAX_LINE_BYTES, MAX_STDERR_LINE_BYTES, ProcessSpec,
    child::{self, Group},
    failure::{Exit, Failure, Tail},
    lines::{Line, Lines},
    wire::{self, FromChild, Reported, ToChild},
};

/// How much of an offending line a protocol error quotes.
const QUOTE_BYTES: usize = 200;

/// The most lines read after giving up on the pipes: more than a full pipe (64 KiB) holds of
/// protocol lines (tens of bytes each), few enough that an escaped writer cannot hold the task.
const DRAIN_LINES: usize = 4_096;

/// Runs one attempt of a task as a child process; the outcome is the stream's one signal.
///
/// After a cancel request the runtime ignores this signal (the task ends `cancelled`), but the
/// future still runs until the child is gone, within the kind's `cancel_grace`.
pub(crate) async fn run(ctx: Context, spec: Arc<ProcessSpec>, input: Value) -> Signal {
    let (mut child, group) = match child::spawn(&spec, ctx.traceparent().as_ref()) {
        Ok(spawned) => spawned,
        Err(source) => {
            let failure = Failure::Spawn {
                program: spec.program.clone(),
                source,
            };
            tracing::warn!(target: "longrun::process", task = %ctx.id(), error = %failure, "could not start a handler process");
            return Signal::Fail(failure.into_task_error(""));
        }
    };
    tracing::debug!(target: "longrun::process", task = %ctx.id(), pid = group.id(), program = %spec.program, "handler process started");
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        unreachable!("all three pipes were requested at spawn");
    };

    let (to_child, queued) = mpsc::unbounded_channel();
    // Protocol 2 hands the journal over, so the handler skips the steps it already did.
    let steps = (spec.protocol >= 2).then(|| ctx.saved_steps());
    let start = ToChild::Start {
        protocol: spec.protocol,
        task: ctx.id().to_string(),
        kind: ctx.kind(),
        attempt: ctx.attempt(),
        steps: steps.as_ref(),
        input: &input,
    };
    // Cannot fail: the receiver is alive until the writer below ends.
    let _ = to_child.send(start.line());
    drop(input);

    let session = Session {
        ctx: &ctx,
        term_grace: spec.term_grace,
        group: &group,
        to_child: Some(to_child),
        verdict: None,
        signalled: false,
        line_no: 0,
        asks: FuturesUnordered::new(),
        sleeps: FuturesUnordered::new(),
        cancel_seen: false,
        exit: None,
        timer: None,
        tail: Tail::default(),
    };
    let mut session = pin!(session.run(&mut child, stdout, stderr));
    let mut feed = pin!(feed(stdin, queued, ctx.id()));
    // The writer runs beside the session but never outlives it: a child that neither reads its
    // stdin nor exits could keep a write pending for ever.
    let ended = tokio::select! {
        biased;
        ended = &mut session => ended,
        () = &mut feed => session.await,
    };
    // Drop order: `child` (SIGKILL to the leader if it still runs), then `group` (SIGKILL to the
    // rest). Both are no-ops after a clean exit.
    ended
}

/// Writes queued lines to the child's stdin until the session closes the channel.
async fn feed(mut stdin: ChildStdin, mut queued: mpsc::UnboundedReceiver<Vec<u8>>, task: TaskId) {
    while let Some(line) = queued.recv().await {
        if let Err(error) = stdin.write_all(&line).await {
            // The child closed its stdin or exited: its choice. What it misses it misses.
            tracing::debug!(target: "longrun::process", %task, %error, "the handler process no longer reads its stdin");
            return;
        }
    }
    // Dropping `stdin` here closes it: the child sees end of file.
}

/// What the session loop can be woken by.
enum Input {
    Stdout(std::io::Result<Option<Line>>),
    Stderr(std::io::Result<Option<Line>>),
    Answered(String, Result<Value, AskError>),
    Slept(String, Result<(), StepError>),
    Cancelled,
    Exited(std::io::Result<std::process::ExitStatus>),
    Timer,
}

/// What the stop timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The child had its time to exit after its outcome: SIGTERM it.
    Term,
    /// It had its time after SIGTERM: SIGKILL the group.
    Kill,
    /// It exited but its pipes stay open (something escaped the group): stop reading.
    GiveUp,
}

/// How the session decided the task ends, before the exit status is weighed.
enum Verdict {
    /// The child's outcome line.
    Reported(Reported),
    /// A line that is not a protocol message.
    Protocol(String),
    /// The runtime refused what the child asked for (other than for the child's fault).
    Runtime(TaskError),
}

type Question = Pin<Box<dyn Future<Output = (String, Result<Value, AskError>)> + Send>>;
type Nap = Pin<Box<dyn Future<Output = (String, Result<(), StepError>)> + Send>>;

struct Session<'a> {
    ctx: &'a Context,
    term_grace: Duration,
    group: &'a Group,
    /// `None` once stdin is closed.
    to_child: Option<mpsc::UnboundedSender<Vec<u8>>>,
    verdict: Option<Verdict>,
    /// Whether the runtime signalled the child, which excuses an unsuccessful exit.
    signalled: bool,
    /// Stdout lines read so far, for error messages.
    line_no: u64,
    asks: FuturesUnordered<Question>,
    /// Durable sleeps under way (protocol 2).
    sleeps: FuturesUnordered<Nap>,
    cancel_seen: bool,
    exit: Option<Exit>,
    timer: Option<(Instant, Step)>,
    tail: Tail,
}

impl Session<'_> {
    async fn run(mut self, child: &mut Child, stdout: ChildStdout, stderr: ChildStderr) -> Signal {
        let mut stdout = Lines::new(stdout, MAX_LINE_BYTES);
        let mut stderr = Lines::new(stderr, MAX_STDERR_LINE_BYTES);
        let (mut stdout_open, mut stderr_open) = (true, true);
        // A time that is never reached, for the timer branch while no timer is set.
        let never = Instant::now() + Duration::from_secs(86_400 * 365);

        while stdout_open || stderr_open || self.exit.is_none() {
            let wake = self.timer.map_or(never, |(at, _)| at);
            let input = tokio::select! {
                line = stdout.next(), if stdout_open => Input::Stdout(line),
                line = stderr.next(), if stderr_open => Input::Stderr(line),
                Some((key, answer)) = self.asks.next(), if !self.asks.is_empty() => Input::Answered(key, answer),
                Some((key, slept)) = self.sleeps.next(), if !self.sleeps.is_empty() => Input::Slept(key, slept),
                () = self.ctx.cancelled(), if !self.cancel_seen => Input::Cancelled,
                status = child.wait(), if self.exit.is_none() => Input::Exited(status),
                () = tokio::time::sleep_until(wake), if self.timer.is_some() => Input::Timer,
            };
            match input {
                Input::Stdout(Ok(Some(line))) => self.stdout_line(line).await,
                Input::Stdout(Ok(None)) => stdout_open = false,
                Input::Stdout(Err(error)) => {
                    stdout_open = false;
                    self.protocol_error(format!("could not read the handler's stdout: {error}"));
                }
                Input::Stderr(Ok(Some(line))) => self.stderr_line(line),
                Input::Stderr(Ok(None) | Err(_)) => stderr_open = false,
                Input::Answered(key, answer) => self.answered(key, answer),
                Input::Slept(key, slept) => self.step_done(&key, slept),
                Input::Cancelled => self.cancel(),
                Input::Exited(status) => {
                    let status = match status {
                        Ok(status) => Some(status),
                        Err(error) => {
                            self.verdict.get_or_insert(Verdict::Runtime(
                                Failure::Wait(error).into_task_error(""),
                            ));
                            None
                        }
                    };
                    self.exited(Exit(status));
                }
                Input::Timer => {
                    let step = self.timer.take().map(|(_, step)| step);
                    match step {
                        Some(Step::Term) => self.terminate(),
                        Some(Step::Kill) => self.kill(),
                        Some(Step::GiveUp) | None => {
                            if stdout_open {
                                self.drain_ready(&mut stdout).await;
                            }
                            break;
                        }
                    }
                }
            }
        }
        let exit = self.exit.unwrap_or(Exit(None));
        self.judge(exit)
    }

    /// Reads the stdout lines that are ready now, without waiting, until the outcome is read.
    ///
    /// Called when the pipes outlived the process by `term_grace`. That happens when something
    /// that escaped the group holds them, but also when the store is slow: each progress line's
    /// durable write is awaited before the next line is read, so the timer can come due while
    /// the child's last lines, its outcome among them, still wait in the pipe, and `select!`
    /// may then pick the timer. The child has exited, so what it wrote is all in the pipe now.
    /// Bounded, so a writer that escaped the group cannot keep the session here.
    async fn drain_ready(&mut self, stdout: &mut Lines<ChildStdout>) {
        for _ in 0..DRAIN_LINES {
            if self.verdict.is_some() {
                return;
            }
            match stdout.next().now_or_never() {
                Some(Ok(Some(line))) => self.stdout_line(line).await,
                _ => return,
            }
        }
    }

    /// Handles one line of the child's stdout.
    async fn stdout_line(&mut self, line: Line) {
        self.line_no += 1;
        let text = match line {
            Line::Whole(text) => text,
            Line::TooLong(_) => {
                let reason = format!(
                    "stdout line {} is longer than the limit of {MAX_LINE_BYTES} bytes",
                    self.line_no
                );
                return self.protocol_error(reason);
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let message = match serde_json::from_slice::<FromChild>(&text) {
            Ok(message) => message,
            Err(error) => {
                let reason = format!(
                    "stdout line {} is not a protocol message ({error}): {}",
                    self.line_no,
                    quote(&text)
                );
                return self.protocol_error(reason);
            }
        };
        match &self.verdict {
            None => {}
            Some(Verdict::Reported(_)) => {
                let reason = format!(
                    "stdout line {} follows the outcome; the outcome must be the last line: {}",
                    self.line_no,
                    quote(&text)
                );
                // Replaces the outcome: a child that keeps talking after it is not trusted.
                self.verdict = Some(Verdict::Protocol(reason));
                return;
            }
            // Already failing: the rest is only drained.
            Some(_) => return,
        }
        let recorded = match message {
            FromChild::Progress { percent, message } => self.ctx.progress(percent, message).await,
            FromChild::Artifact {
                id,
                name,
                parts,
                append,
                last_chunk,
            } => {
                let chunk = wire::chunk(id, name, parts, append, last_chunk);
                self.ctx.artifact(chunk).await
            }
            FromChild::Message { text, trigger } => self.ctx.notify_agent(text, trigger).await,
            FromChild::Ask {
                key,
                request,
                timeout_ms,
            } => {
                self.ask(key, request, timeout_ms).await;
                Ok(())
            }
            FromChild::Step { key, value } => {
                let saved = self
                    .ctx
                    .step(key.clone(), async { Ok::<_, TaskError>(value) })
                    .await;
                self.step_done(&key, saved.map(drop));
                Ok(())
            }
            FromChild::Sleep { key, ms } => {
                self.sleep(key, ms);
                Ok(())
            }
            FromChild::Complete { output } => {
                self.reported(Reported::Complete(output));
                Ok(())
            }
            FromChild::Fail {
                code,
                message,
                details,
                retryable,
                retry_after_ms,
            } => {
                let error = wire::task_error(code, message, details, retryable, retry_after_ms);
                self.reported(Reported::Fail(error));
                Ok(())
            }
            FromChild::Cancelled { message } => {
                self.reported(Reported::Cancelled(message));
                Ok(())
            }
        };
        if let Err(error) = recorded {
            self.refused(error);
        }
    }

    /// Forwards one stderr line to the logs and keeps it for the tail.
    fn stderr_line(&mut self, line: Line) {
        let (text, cut) = match line {
            Line::Whole(text) => (text, false),
            Line::TooLong(head) => (head, true),
        };
        let shown = String::from_utf8_lossy(&text);
        tracing::info!(target: "longrun::process", task = %self.ctx.id(), kind = self.ctx.kind(), pid = self.group.id(), cut, "{shown}");
        self.tail.push(&text);
    }

    /// Asks the question through the runtime. The first poll happens here, so the question is
    /// recorded before any line the child wrote after it.
    async fn ask(&mut self, key: String, request: Value, timeout_ms: Option<u64>) {
        let timeout = timeout_ms.map_or(Duration::MAX, Duration::from_millis);
        let ctx = self.ctx.clone();
        let mut question: Question = Box::pin(async move {
            let answer = ctx.ask(key.clone(), request, timeout).await;
            (key, answer)
        });
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(question.as_mut().poll(cx)));
        match first.await {
            std::task::Poll::Ready((key, answer)) => self.answered(key, answer),
            std::task::Poll::Pending => self.asks.push(question),
        }
    }

    /// Starts a durable sleep beside the loop; `step_saved` tells the child when it is over.
    fn sleep(&mut self, key: String, ms: u64) {
        let ctx = self.ctx.clone();
        self.sleeps.push(Box::pin(async move {
            let slept = ctx.sleep(key.clone(), Duration::from_millis(ms)).await;
            (key, slept)
        }));
    }

    /// Tells the child a step is durable (or a sleep over), or handles why it is not.
    fn step_done(&mut self, key: &str, done: Result<(), StepError>) {
        match done {
            Ok(()) => self.send(&ToChild::StepSaved { key }),
            // The cancel branch tells the child.
            Err(StepError::Cancelled) => {}
            Err(StepError::KeyReused(key)) => self.protocol_error(format!(
                "the handler used step key `{key}` twice in one attempt; each step needs a key \
                 of its own"
            )),
            Err(StepError::Runtime(error)) => self.refused(error),
            Err(error @ (StepError::Failed(_) | StepError::Decode { .. })) => {
                self.protocol_error(format!("stdout line {}: {error}", self.line_no));
            }
        }
    }

    /// Relays an answer, or a time-out, to the child.
    fn answered(&mut self, key: String, answer: Result<Value, AskError>) {
        match answer {
            Ok(value) => self.send(&ToChild::Answer {
                key: &key,
                value: &value,
            }),
            Err(AskError::TimedOut(_)) => self.send(&ToChild::AnswerTimeout { key: &key }),
            // The cancel branch tells the child.
            Err(AskError::Cancelled) => {}
            Err(AskError::KeyReused(key)) => self.protocol_error(format!(
                "the handler asked question `{key}` twice; each question needs a key of its own"
            )),
            Err(AskError::Runtime(error)) => self.refused(error),
        }
    }

    /// The runtime refused to record something the child sent.
    fn refused(&mut self, error: Error) {
        if self.cancel_seen {
            // The task is ending anyway; what the child says now may well be refused.
            tracing::debug!(target: "longrun::process", task = %self.ctx.id(), %error, "dropped a message from a cancelled handler process");
            return;
        }
        match error {
            // The child's fault: say so in the protocol's terms.
            Error::InvalidProgress(_) | Error::TooLarge { .. } => {
                self.protocol_error(format!("stdout line {}: {error}", self.line_no));
            }
            error => {
                if self.verdict.is_none() {
                    self.verdict = Some(Verdict::Runtime(error.into()));
                }
                self.stop_now();
            }
        }
    }

    /// The child's outcome line.
    fn reported(&mut self, reported: Reported) {
        self.verdict = Some(Verdict::Reported(reported));
        // End of file on stdin tells the child that nothing more will come.
        self.to_child = None;
        self.asks.clear();
        self.sleeps.clear();
        if self.timer.is_none() && self.exit.is_none() {
            self.timer = Some((Instant::now() + self.term_grace, Step::Term));
        }
    }

    fn protocol_error(&mut self, reason: String) {
        tracing::warn!(target: "longrun::process", task = %self.ctx.id(), %reason, "protocol error from a handler process");
        if !matches!(
            self.verdict,
            Some(Verdict::Protocol(_) | Verdict::Runtime(_))
        ) {
            self.verdict = Some(Verdict::Protocol(reason));
        }
        self.stop_now();
    }

    /// Cancellation was requested: tell the child, and SIGTERM it.
    fn cancel(&mut self) {
        self.cancel_seen = true;
        self.send(&ToChild::Cancel);
        self.stop_now();
    }

    /// Starts the stop sequence at SIGTERM, unless it is already further along.
    fn stop_now(&mut self) {
        // Lines already queued (a cancel) are still written before stdin closes.
        self.to_child = None;
        self.asks.clear();
        self.sleeps.clear();
        if self.exit.is_some() || matches!(self.timer, Some((_, Step::Kill))) {
            return;
        }
        self.terminate();
    }

    fn terminate(&mut self) {
        self.signalled = true;
        self.group.signal(SIGTERM);
        self.timer = Some((Instant::now() + self.term_grace, Step::Kill));
    }

    fn kill(&mut self) {
        tracing::warn!(target: "longrun::process", task = %self.ctx.id(), pid = self.group.id(), grace = ?self.term_grace, "handler process ignored SIGTERM; killed");
        self.signalled = true;
        self.group.signal(SIGKILL);
    }

    fn exited(&mut self, exit: Exit) {
        tracing::debug!(target: "longrun::process", task = %self.ctx.id(), pid = self.group.id(), %exit, "handler process exited");
        self.exit = Some(exit);
        self.to_child = None;
        self.asks.clear();
        self.sleeps.clear();
        // Whatever the leader left behind goes with it; that also closes the pipes they held.
        self.group.signal(SIGKILL);
        self.timer = Some((Instant::now() + self.term_grace, Step::GiveUp));
    }

    fn send(&self, message: &ToChild<'_>) {
        if let Some(to_child) = &self.to_child {
            // Fails only when the writer stopped because the child closed its stdin.
            let _ = to_child.send(message.line());
        }
    }

    /// The outcome, weighing the verdict against how the process exited.
    fn judge(self, exit: Exit) -> Signal {
        let tail = self.tail.text();
        let failure = match self.verdict {
            Some(Verdict::Reported(reported)) if exit.success() || self.signalled => {
                return match reported {
                    Reported::Complete(output) => Signal::Success(output),
                    Reported::Fail(error) => Signal::Fail(error),
                    Reported::Cancelled(message) => Signal::Cancel(message),
                };
            }
            Some(Verdict::Reported(_)) => Failure::FailedAfterOutcome(exit),
            Some(Verdict::Runtime(error)) => return Signal::Fail(error),
            Some(Verdict::Protocol(reason)) => Failure::Protocol { reason, exit },
            None => Failure::NoOutcome(exit),
        };
        Signal::Fail(failure.into_task_error(&tail))
    }
}

/// The start of a line, for an error message.
fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(QUOTE_BYTES) {
        Some((cut, _)) => format!("`{}…`", &text[..cut]),
        None => format!("`{text}`"),
    }
}
