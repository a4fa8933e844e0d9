//! Following a running task on behalf of one open call: a plain `tools/call`, a 2025-11-25
//! `tasks/result`, or a 2026-07-28 call that may answer with questions (SEP-2322).
//!
//! - [`Relay`] (2025-11-25) sends the task's questions to the client as real
//!   `elicitation/create` / `sampling/createMessage` requests on the call's stream, and its
//!   progress and agent messages as notifications, until the task ends.
//! - [`Gather`] (2026-07-28, which sends the client no requests) delivers the answers the call
//!   brought, then waits until the task ends or has questions nobody answered — which go back
//!   to the client in an `InputRequiredResult` once the task has been quiet for
//!   `input_settle_ms`, so questions asked together travel together.
//!
//! Either way a question the client has no capability for is never sent; it waits for an
//! answer from elsewhere (the HTTP API, another client), and a plain call whose task waits only
//! on such questions fails with `-32021`, naming the capability.

use std::{collections::BTreeMap, sync::Arc};

use longrun::{
    Task, TaskId,
    event::{Change, Event, Notice, Progress},
};
use serde_json::{Map, Value, json};
use tokio::{sync::mpsc, time::Instant};

use crate::{
    error::Error,
    input::Question,
    jsonrpc,
    server::Server,
    session::{Asked, Session},
    version::META_RELATED_TASK,
};

/// How a call reports progress: `notifications/progress` with the request's token.
#[derive(Debug, Default)]
pub(crate) struct Reporter {
    /// The request's `_meta.progressToken`.
    pub(crate) token: Option<Value>,
    /// Whether agent messages go out as `notifications/message` (level `info`).
    pub(crate) logs: bool,
    /// The logger name of those messages: the kind.
    pub(crate) logger: String,
    last: f64,
    count: u64,
}

impl Reporter {
    pub(crate) fn new(token: Option<Value>, logs: bool, logger: &str) -> Self {
        Self {
            token,
            logs,
            logger: logger.to_owned(),
            ..Self::default()
        }
    }

    /// Whether no event can give a notification: the client asked for neither progress nor
    /// log messages, so a call may wait for its task's end without following its events.
    fn is_silent(&self) -> bool {
        self.token.is_none() && !self.logs
    }

    /// The notification for a progress report, if the client asked for them. MCP wants
    /// `progress` to grow with every notification: a percentage that did not grow is left out.
    fn progress(&mut self, progress: &Progress) -> Option<Value> {
        let token = self.token.as_ref()?;
        let mut params = json!({"progressToken": token});
        match progress.percent {
            Some(percent) => {
                if percent <= self.last && self.count > 0 {
                    return None;
                }
                self.last = percent;
                params["progress"] = json!(percent);
                params["total"] = json!(100);
            }
            None => {
                self.last += 1.0;
                params["progress"] = json!(self.last);
            }
        }
        self.count += 1;
        if let Some(message) = &progress.message {
            params["message"] = json!(message);
        }
        Some(jsonrpc::notification("notifications/progress", params))
    }

    /// The notification for an agent message, if the client wants log messages.
    fn log(&self, message: &str) -> Option<Value> {
        self.logs.then(|| {
            jsonrpc::notification(
                "notifications/message",
                json!({"level": "info", "logger": self.logger, "data": message}),
            )
        })
    }

    /// The notification an event gives, if any.
    fn report(&mut self, event: &Event) -> Option<Value> {
        match &event.change {
            Change::Progress(progress) => self.progress(progress),
            Change::AgentMessage { message, .. } => self.log(message),
            _ => None,
        }
    }
}

/// The `requiredCapabilities` for questions the client could not be sent.
fn required(held: &BTreeMap<String, Question>) -> Value {
    let mut required = Map::new();
    for question in held.values() {
        required.insert(question.method().capability().to_owned(), json!({}));
    }
    Value::Object(required)
}

/// How a [`Relay`] ended.
pub(crate) enum Followed {
    /// The task ended.
    Ended(Box<Task>),
    /// The client went away.
    Gone,
    /// The server is stopping: the task is left running, for its restart policy.
    Stopping,
}

/// Follows a task for a 2025-11-25 call, relaying its questions as requests.
pub(crate) struct Relay {
    pub(crate) server: Arc<Server>,
    pub(crate) session: Arc<Session>,
    pub(crate) task: TaskId,
    pub(crate) out: mpsc::Sender<Value>,
    pub(crate) reporter: Reporter,
    /// A `tasks/result` call: requests carry the related-task `_meta`, and questions the
    /// client cannot be sent are waited out instead of failing the call. Otherwise the call
    /// started the task, and follows it from its first event, so that no progress is missed.
    pub(crate) task_call: bool,
}

impl Relay {
    /// Relays until the task ends, the client goes away or the server stops.
    pub(crate) async fn run(mut self) -> Result<Followed, Error> {
        let stream = self.session.open_stream();
        let relayed = self.relay(stream).await;
        self.session.close_stream(stream);
        relayed
    }

    async fn relay(&mut self, stream: u64) -> Result<Followed, Error> {
        let runtime = self.server.runtime().clone();
        if !self.task_call && self.reporter.is_silent() {
            // As for a 2026-07-28 call: wait for the end or a question alone.
            let handle = runtime.handle(self.task);
            let settled = tokio::select! {
                settled = handle.settled() => settled?,
                () = self.out.closed() => return Ok(Followed::Gone),
                () = self.server.surface.stopping() => return Ok(Followed::Stopping),
            };
            if settled.status().is_terminal() {
                return Ok(Followed::Ended(Box::new(settled)));
            }
        }
        let task = runtime.get(self.task).await?;
        // Open questions (key → request), and those the client cannot be sent.
        let mut open: BTreeMap<String, Value> = BTreeMap::new();
        let mut held: BTreeMap<String, Question> = BTreeMap::new();
        let mut after = longrun::event::Seq::ZERO;
        if self.task_call {
            if let Some(pending) = task.state().pending_input() {
                for (key, request) in pending {
                    open.insert(key.clone(), request.clone());
                    if !self.ask(stream, key, request, &mut held).await {
                        return Ok(Followed::Gone);
                    }
                }
            }
            if task.status().is_terminal() {
                return Ok(Followed::Ended(Box::new(task)));
            }
            after = task.last_seq();
        }
        let mut events = runtime.subscribe(self.task, after).await?;
        loop {
            if !self.task_call && !held.is_empty() && held.len() == open.len() {
                return Err(Error::MissingCapability(required(&held)));
            }
            let session = self.session.clone();
            let released = session.released();
            let notice = tokio::select! {
                notice = events.next() => notice?,
                () = released => {
                    // Another stream closed with questions out: ask them here.
                    for (key, request) in &open {
                        if !held.contains_key(key) && !self.ask(stream, key, request, &mut held).await {
                            return Ok(Followed::Gone);
                        }
                    }
                    continue;
                }
                () = self.out.closed() => return Ok(Followed::Gone),
                () = self.server.surface.stopping() => return Ok(Followed::Stopping),
            };
            let event = match notice {
                None => break,
                Some(Notice::Lagged { .. }) => continue,
                Some(Notice::Event(event)) => event,
            };
            if let Some(note) = self.reporter.report(&event)
                && self.out.send(note).await.is_err()
            {
                return Ok(Followed::Gone);
            }
            match &event.change {
                Change::InputRequested { key, request } => {
                    open.insert(key.clone(), request.clone());
                    if !self.ask(stream, key, request, &mut held).await {
                        return Ok(Followed::Gone);
                    }
                }
                Change::InputAnswered { key, .. } | Change::InputTimedOut { key } => {
                    open.remove(key);
                    held.remove(key);
                    // Answered elsewhere: the client may stop asking its user.
                    for id in self.session.withdraw(self.task, key) {
                        let note = jsonrpc::notification(
                            "notifications/cancelled",
                            json!({"requestId": id, "reason": "the question was answered elsewhere"}),
                        );
                        let _ = self.out.send(note).await;
                    }
                }
                _ => {}
            }
        }
        Ok(Followed::Ended(Box::new(runtime.get(self.task).await?)))
    }

    /// Sends one question to the client, unless it is out on another stream or the client has
    /// no capability for it. False when the client went away.
    async fn ask(
        &self,
        stream: u64,
        key: &str,
        request: &Value,
        held: &mut BTreeMap<String, Question>,
    ) -> bool {
        let question = Question::from_request(key, request);
        if !question.allowed_by(&self.session.capabilities) {
            held.insert(key.to_owned(), question);
            return true;
        }
        let mut params = question.params().clone();
        if self.task_call {
            let meta = params
                .entry("_meta")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(meta) = meta {
                meta.insert(
                    META_RELATED_TASK.to_owned(),
                    json!({"taskId": self.task.to_string()}),
                );
            }
        }
        let method = question.method().as_str();
        let asked = Asked {
            task: self.task,
            key: key.to_owned(),
            question,
        };
        let Some(id) = self.session.ask(stream, asked) else {
            return true;
        };
        let request = jsonrpc::request(id, method, Value::Object(params));
        self.out.send(request).await.is_ok()
    }
}

/// How a [`Gather`] ended.
pub(crate) enum Gathered {
    /// The task ended.
    Ended(Box<Task>),
    /// Questions only the client can answer: key → `{method, params}`, as of the task's
    /// event `seq`.
    Questions {
        requests: Map<String, Value>,
        seq: u64,
    },
    /// The task has no open question and runs on (only when handing out tasks).
    Running(Box<Task>),
    /// The client went away.
    Gone,
    /// The server is stopping: the task is left running, for its restart policy.
    Stopping,
}

/// Follows a task for a 2026-07-28 call, delivering the call's answers as questions come.
pub(crate) struct Gather {
    pub(crate) server: Arc<Server>,
    pub(crate) task: TaskId,
    /// The request's client capabilities.
    pub(crate) capabilities: Value,
    /// The `inputResponses` the call brought, not used yet.
    pub(crate) supplied: Map<String, Value>,
    /// Return [`Gathered::Running`] once the task asked (in this call or an earlier round) or
    /// reported progress, and then was quiet with no open question.
    pub(crate) handout: bool,
    /// The call is a retry that answers an earlier round's questions.
    pub(crate) resumed: bool,
    pub(crate) out: mpsc::Sender<Value>,
    pub(crate) reporter: Reporter,
}

impl Gather {
    pub(crate) async fn run(mut self) -> Result<Gathered, Error> {
        let runtime = self.server.runtime().clone();
        if !self.resumed && !self.handout && self.reporter.is_silent() {
            // Nothing to relay until the task ends or asks: wait for that moment alone (no
            // store reads on the way), and follow the events only if it asked.
            let handle = runtime.handle(self.task);
            let settled = tokio::select! {
                settled = handle.settled() => settled?,
                () = self.out.closed() => return Ok(Gathered::Gone),
                () = self.server.surface.stopping() => return Ok(Gathered::Stopping),
            };
            if settled.status().is_terminal() {
                return Ok(Gathered::Ended(Box::new(settled)));
            }
        }
        let task = runtime.get(self.task).await?;
        let mut open: BTreeMap<String, Question> = BTreeMap::new();
        // Whether the task has done something since it started that may end the wait for it
        // to hand out: asked a question or reported progress.
        let mut engaged = self.resumed;
        // A fresh call follows its task from the first event, so that no progress is missed;
        // a retry picks up where the task stands.
        let mut after = longrun::event::Seq::ZERO;
        if self.resumed {
            if let Some(pending) = task.state().pending_input() {
                for (key, request) in pending {
                    self.asked(key, request, &mut open).await?;
                }
            }
            if task.status().is_terminal() {
                return Ok(Gathered::Ended(Box::new(task)));
            }
            after = task.last_seq();
        }
        let settle = self.server.config.settle();
        let mut quiet_from = Instant::now();
        let mut events = runtime.subscribe(self.task, after).await?;
        loop {
            let waiting = !open.is_empty() || (self.handout && engaged);
            let notice = tokio::select! {
                notice = events.next() => notice?,
                () = tokio::time::sleep_until(quiet_from + settle), if waiting => {
                    return self.settled(&open, events.last_seq().as_u64()).await;
                }
                () = self.out.closed() => return Ok(Gathered::Gone),
                () = self.server.surface.stopping() => return Ok(Gathered::Stopping),
            };
            let event = match notice {
                None => break,
                Some(Notice::Lagged { .. }) => continue,
                Some(Notice::Event(event)) => event,
            };
            quiet_from = Instant::now();
            if let Some(note) = self.reporter.report(&event)
                && self.out.send(note).await.is_err()
            {
                return Ok(Gathered::Gone);
            }
            match &event.change {
                Change::InputRequested { key, request } => {
                    engaged = true;
                    self.asked(key, request, &mut open).await?;
                }
                Change::InputAnswered { key, .. } | Change::InputTimedOut { key } => {
                    open.remove(key);
                }
                Change::Progress(_) => engaged = true,
                _ => {}
            }
        }
        Ok(Gathered::Ended(Box::new(runtime.get(self.task).await?)))
    }

    /// A question arrived: answer it from the call's answers, or note it open.
    async fn asked(
        &mut self,
        key: &str,
        request: &Value,
        open: &mut BTreeMap<String, Question>,
    ) -> Result<(), Error> {
        let question = Question::from_request(key, request);
        match self.supplied.remove(key) {
            Some(response) => {
                let value = question.answer(&response)?;
                self.server.answer(self.task, key, value).await
            }
            None => {
                open.insert(key.to_owned(), question);
                Ok(())
            }
        }
    }

    /// The task has been quiet for the settle time.
    async fn settled(
        &self,
        open: &BTreeMap<String, Question>,
        seq: u64,
    ) -> Result<Gathered, Error> {
        if open.is_empty() {
            return Ok(Gathered::Running(Box::new(
                self.server.runtime().get(self.task).await?,
            )));
        }
        let (allowed, held): (BTreeMap<_, _>, BTreeMap<_, _>) = open
            .iter()
            .map(|(key, question)| (key.clone(), question.clone()))
            .partition(|(_, question)| question.allowed_by(&self.capabilities));
        if allowed.is_empty() {
            return Err(Error::MissingCapability(required(&held)));
        }
        Ok(Gathered::Questions {
            requests: allowed
                .iter()
                .map(|(key, question)| (key.clone(), question.input_request()))
                .collect(),
            seq,
        })
    }
}
