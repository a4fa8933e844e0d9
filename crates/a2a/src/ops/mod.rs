//! The A2A operations, whatever the binding and version: each takes the request in 1.0's shape
//! and answers in it (the bindings convert for 0.3).
//!
//! Every task is bound to the principal that started it: another principal's task, like an
//! unknown id or an id that is not a task id at all, is `TaskNotFoundError`, word for word.

use std::{collections::BTreeMap, sync::Arc};

use longrun::{
    Outcome, Task, TaskId,
    event::{Event, Seq},
    task::{Filter, Status},
    time::Timestamp,
};
use longrun_surface::{Principal, StartRequest};

mod push;

use crate::{
    Door,
    error::{Error, Kind},
    input,
    map::{self, MESSAGE_OUTPUT, Shape},
    stream::{self, Frames, Mode, Origin},
    version::Version,
    wire::{self, Message, Role},
};

/// `ListTasks`' page size when the request gives none, and the largest it may ask for.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;
/// `ListTasks` counts matching tasks (`totalSize`) up to this many; beyond, it reports this.
const MAX_COUNT: i64 = 10_000;

/// One authenticated request.
pub(crate) struct Call {
    pub(crate) door: Door,
    pub(crate) principal: Principal,
    pub(crate) version: Version,
}

/// What `SendMessage` answers.
pub(crate) enum Sent {
    Task(wire::Task),
    Message(Message),
}

impl Call {
    /// The task `id`, if this call's principal owns it.
    async fn owned(&self, id: &str) -> Result<Task, Error> {
        Ok(self.door.surface().owned(&self.principal, id).await?)
    }

    async fn reread(&self, id: TaskId) -> Result<Task, Error> {
        self.door.runtime().get(id).await.map_err(Error::runtime)
    }

    /// `SendMessage` / `message/send`.
    pub(crate) async fn send(&self, request: wire::SendRequest) -> Result<Sent, Error> {
        let (id, config, _) = self.accept(request, Waits::UnlessAsked).await?;
        let history = history_limit(config.history_length)?;
        let (task, events) = if config.return_immediately {
            (self.reread(id).await?, None)
        } else {
            self.settle(id).await?
        };
        if !config.return_immediately
            && let Some(Outcome::Completed { output }) = task.outcome()
            && output
                .as_object()
                .is_some_and(|o| o.len() == 1 && o.contains_key(MESSAGE_OUTPUT))
        {
            let outcome = task.outcome().map(map::outcome_parts).unwrap_or_default();
            return Ok(Sent::Message(Message {
                message_id: format!("{}-reply", task.id),
                context_id: map::context_id(&task),
                task_id: task.id.to_string(),
                role: Role::Agent,
                parts: outcome,
                ..Message::default()
            }));
        }
        let shape = Shape {
            history,
            artifacts: true,
        };
        let task = match events {
            Some(events) => map::task(&task, &events, shape),
            None => snapshot(&self.door, &task, shape).await?,
        };
        Ok(Sent::Task(task))
    }

    /// `SendStreamingMessage` / `message/stream`.
    ///
    /// A new task's stream starts from the task as it was created, so it shows every change;
    /// a follow-up's, or a repeated message's, starts from the task as it stands.
    pub(crate) async fn stream(&self, request: wire::SendRequest) -> Result<Frames, Error> {
        // Taken before the message is accepted: a stream refused at the limit starts nothing.
        let permit = self.door.surface().stream_permit(&self.principal)?;
        let (id, config, new) = self.accept(request, Waits::No).await?;
        let history = history_limit(config.history_length)?;
        let task = self.reread(id).await?;
        let origin = if new {
            Origin::created(&task, history)
        } else {
            let shape = Shape {
                history,
                artifacts: true,
            };
            Origin::now(&task, snapshot(&self.door, &task, shape).await?)
        };
        Ok(stream::frames(&self.door, origin, Mode::Send, permit))
    }

    /// A message: starts a task, or answers the question of the task it names. Returns the
    /// task, the request's configuration, and whether this message created the task.
    async fn accept(
        &self,
        request: wire::SendRequest,
        waits: Waits,
    ) -> Result<(TaskId, wire::SendConfiguration, bool), Error> {
        let message = request
            .message
            .ok_or_else(|| Error::invalid_params("the request has no `message`"))?;
        input::check(&message)?;
        let config = request.configuration.unwrap_or_default();
        if let Some(history) = config.history_length {
            history_limit(Some(history))?;
        }
        let push = match &config.task_push_notification_config {
            Some(push) => Some(self.check_push(push)?),
            None => None,
        };
        let attended = waits == Waits::UnlessAsked && !config.return_immediately;
        let (id, new) = if message.task_id.is_empty() {
            self.start(&message, request.metadata.as_ref(), attended)
                .await?
        } else {
            (self.follow_up(&message).await?, false)
        };
        if let Some(push) = push {
            let task = self.reread(id).await?;
            self.put_push(&task, push).await?;
        }
        Ok((id, config, new))
    }

    /// Starts the task a message asks for; returns it and whether it is new. An `attended`
    /// task is one this call waits for (see [`Call::settle`]). A message whose
    /// `messageId` the principal already sent in the same context (a client's retry) starts
    /// nothing and answers with the task the first one started: the pair is the start's
    /// idempotency key, so this holds across restarts and nodes.
    async fn start(
        &self,
        message: &Message,
        metadata: Option<&wire::Object>,
        attended: bool,
    ) -> Result<(TaskId, bool), Error> {
        let runtime = self.door.runtime();
        let kinds = runtime.kind_names();
        let config = self.door.config();
        let kind = input::skill(config, &kinds, message, metadata)?;
        // A context the server makes up is time-ordered (a UUIDv7), so that the stores' session
        // indexes grow at their end rather than at a random page for every new task.
        let context = if message.context_id.is_empty() {
            format!("ctx-{}", uuid::Uuid::now_v7())
        } else {
            message.context_id.clone()
        };
        let whole = config.message_input.contains(&kind);
        let (task_input, mode) = input::input(message, &context, whole)?;
        // Without a context the server made up a new one above: the message cannot be a
        // repeat of one sent in the same context.
        let idempotency_key = (!message.context_id.is_empty() && !message.message_id.is_empty())
            .then(|| message_key(&context, &message.message_id));
        let request = StartRequest {
            kind,
            input: task_input,
            session: Some(context),
            labels: input::labels(message, mode)
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
            idempotency_key,
            traceparent: input::trace_text(message, metadata, input::TRACEPARENT_KEY),
            tracestate: input::trace_text(message, metadata, input::TRACESTATE_KEY),
            attended,
            ..StartRequest::default()
        };
        let (id, repeated) = self
            .door
            .surface()
            .start_id(&self.principal, "a2a", request)
            .await?;
        Ok((id, !repeated))
    }

    async fn follow_up(&self, message: &Message) -> Result<TaskId, Error> {
        let task = self.owned(&message.task_id).await?;
        if task.status().is_terminal() {
            return Err(Error::unsupported(format!(
                "task {} has already ended ({}); a message cannot continue it: send one without \
                 a taskId to start a new task",
                task.id,
                map::state(task.status()).name()
            )));
        }
        let context = map::context_id(&task);
        if !message.context_id.is_empty() && message.context_id != context {
            return Err(Error::invalid_params(format!(
                "the message's contextId `{}` is not the context of task {}",
                crate::error::short(&message.context_id),
                task.id
            )));
        }
        let empty = BTreeMap::new();
        let pending = task.state().pending_input().unwrap_or(&empty);
        let key = input::question(message, pending)?;
        let value = input::answer(message)?;
        self.door
            .runtime()
            .answer(task.id, &key, value)
            .await
            .map_err(Error::runtime)?;
        Ok(task.id)
    }

    /// Waits until the task has ended or waits for input (or the server stops, or the
    /// configured limit passes), and returns it as stored then, with its events through then
    /// when it settled.
    ///
    /// A task started attended is the caller's until it ends: its outcome goes to no inbox,
    /// and its history comes from memory. If this returns before the end, or is dropped
    /// (the client went away), the task is detached, and its outcome goes to its context's
    /// inbox like a background task's.
    async fn settle(&self, id: TaskId) -> Result<(Task, Option<Vec<Arc<Event>>>), Error> {
        let handle = self.door.runtime().handle(id);
        let attendant = Attendant(Some(handle.clone()));
        let limit = tokio::time::sleep(self.door.max_blocking());
        let (task, events) = tokio::select! {
            settled = handle.settled_with_events() => settled
                .map(|(task, events)| (task, Some(events)))
                .map_err(Error::runtime)?,
            () = limit => (self.reread(id).await?, None),
            () = self.door.surface().stopping() => (self.reread(id).await?, None),
        };
        attendant.leave(task.status().is_terminal()).await;
        Ok((task, events))
    }

    /// `GetTask` / `tasks/get`.
    pub(crate) async fn get(&self, request: wire::GetTaskRequest) -> Result<wire::Task, Error> {
        let history = history_limit(request.history_length)?;
        let task = self.owned(&request.id).await?;
        let shape = Shape {
            history,
            artifacts: true,
        };
        snapshot(&self.door, &task, shape).await
    }

    /// `ListTasks`: the principal's tasks, newest first.
    pub(crate) async fn list(
        &self,
        request: wire::ListTasksRequest,
    ) -> Result<wire::ListTasksResponse, Error> {
        let page_size = request.page_size.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&page_size) {
            return Err(Error::invalid_params(format!(
                "pageSize must be from 1 to {MAX_PAGE}, got {page_size}"
            )));
        }
        let history = history_limit(request.history_length)?;
        let after = match request.page_token.trim() {
            "" => None,
            token => Some(token.parse().map_err(|_| {
                Error::invalid_params("pageToken is not one this server gave; start without it")
            })?),
        };
        let since = match request.status_timestamp_after.as_deref() {
            None | Some("") => None,
            Some(text) => Some(crate::time::parse(text).ok_or_else(|| {
                Error::invalid_params(format!(
                    "statusTimestampAfter must be an RFC 3339 timestamp, got `{}`",
                    crate::error::short(text)
                ))
            })?),
        };
        let mut filter = Filter {
            owner: Some(self.principal.owner()),
            ..Filter::default()
        };
        if !request.context_id.is_empty() {
            filter.session = Some(self.principal.session(&request.context_id));
        }
        match request
            .status
            .filter(|state| *state != wire::TaskState::Unspecified)
        {
            None => {}
            Some(state) => match map::status(state) {
                Some(status) => filter.status.push(status),
                // A state longrun never has (AUTH_REQUIRED): nothing matches.
                None => {
                    return Ok(wire::ListTasksResponse {
                        tasks: Vec::new(),
                        next_page_token: String::new(),
                        page_size,
                        total_size: 0,
                    });
                }
            },
        }
        let runtime = self.door.runtime();
        let page = runtime
            .list(filter.clone(), after, page_size as usize)
            .await
            .map_err(Error::runtime)?;
        let shape = Shape {
            history,
            artifacts: request.include_artifacts.unwrap_or(false),
        };
        let mut tasks = Vec::with_capacity(page.tasks.len());
        for task in &page.tasks {
            if since.is_some_and(|since| task.updated_at() <= since) {
                continue;
            }
            tasks.push(snapshot(&self.door, task, shape).await?);
        }
        let total_size = self.count(filter, since).await?;
        Ok(wire::ListTasksResponse {
            tasks,
            next_page_token: page
                .next
                .map(|cursor| cursor.to_string())
                .unwrap_or_default(),
            page_size,
            total_size,
        })
    }

    /// How many tasks match (up to [`MAX_COUNT`]): `totalSize`.
    async fn count(&self, filter: Filter, since: Option<Timestamp>) -> Result<i64, Error> {
        let mut total = 0i64;
        let mut after = None;
        loop {
            let page = self
                .door
                .runtime()
                .list(filter.clone(), after, 1000)
                .await
                .map_err(Error::runtime)?;
            total += page
                .tasks
                .iter()
                .filter(|task| since.is_none_or(|since| task.updated_at() > since))
                .count() as i64;
            match page.next {
                Some(next) if total < MAX_COUNT => after = Some(next),
                _ => return Ok(total.min(MAX_COUNT)),
            }
        }
    }

    /// `CancelTask` / `tasks/cancel`: answers once the task has ended.
    pub(crate) async fn cancel(&self, id: &str) -> Result<wire::Task, Error> {
        let task = self.owned(id).await?;
        let not_cancelable = |status: Status| {
            Error::new(
                Kind::TaskNotCancelable,
                format!(
                    "task {} has already ended ({}) and cannot be canceled",
                    task.id,
                    map::state(status).name()
                ),
            )
        };
        if task.status().is_terminal() {
            return Err(not_cancelable(task.status()));
        }
        let ended = match self
            .door
            .runtime()
            .cancel_by(task.id, self.principal.as_str())
            .await
        {
            Ok(ended) => ended,
            Err(longrun::Error::Ended { status, .. }) => return Err(not_cancelable(status)),
            Err(error) => return Err(Error::runtime(error)),
        };
        let shape = Shape {
            history: None,
            artifacts: true,
        };
        snapshot(&self.door, &ended, shape).await
    }

    /// `SubscribeToTask` / `tasks/resubscribe`.
    pub(crate) async fn subscribe(&self, id: &str) -> Result<Frames, Error> {
        let task = self.owned(id).await?;
        if task.status().is_terminal() {
            return Err(Error::unsupported(format!(
                "task {} has already ended ({}); there is nothing to subscribe to: GetTask shows it",
                task.id,
                map::state(task.status()).name()
            )));
        }
        let shape = Shape {
            history: None,
            artifacts: true,
        };
        let permit = self.door.surface().stream_permit(&self.principal)?;
        let first = snapshot(&self.door, &task, shape).await?;
        Ok(stream::frames(
            &self.door,
            Origin::now(&task, first),
            Mode::Subscribe,
            permit,
        ))
    }
}

/// Whether the caller of a message waits for its task.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waits {
    /// Until it settles, unless the request's configuration says to return at once
    /// (`SendMessage`).
    UnlessAsked,
    /// Not: it follows the task's events (`SendStreamingMessage`).
    No,
}

/// The caller waiting for a task: it detaches the task when it stops waiting before the end,
/// also when its future is dropped. Detaching a task that is not attended (a background one,
/// or one detached already) does nothing.
struct Attendant(Option<longrun::TaskHandle>);

impl Attendant {
    /// Stops waiting: detaches the task unless it `ended`.
    async fn leave(mut self, ended: bool) {
        let Some(handle) = self.0.take() else { return };
        if !ended {
            detach(&handle).await;
        }
    }
}

impl Drop for Attendant {
    fn drop(&mut self) {
        // Outside a runtime (it is being torn down) there is nobody left to detach for: the
        // next start takes the task up as a background one.
        let Some(handle) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            #[expect(
                clippy::disallowed_methods,
                reason = "a detach must outlive the dropped request that owed it; it is one runtime call and ends by itself"
            )]
            tokio::spawn(async move { detach(&handle).await });
        }
    }
}

async fn detach(handle: &longrun::TaskHandle) {
    match handle.detach().await {
        Ok(_)
        | Err(
            longrun::Error::Unknown(_)
            | longrun::Error::Ended { .. }
            | longrun::Error::NotRunning(_),
        ) => {}
        Err(error) => {
            tracing::warn!(task = %handle.id(), %error, "could not detach a task nobody waits for")
        }
    }
}

/// `historyLength`: unset is no limit, 0 is none, negative is an error.
fn history_limit(length: Option<i64>) -> Result<Option<usize>, Error> {
    match length {
        None => Ok(None),
        Some(n) if n < 0 => Err(Error::invalid_params(format!(
            "historyLength must be 0 or more, got {n}"
        ))),
        Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
    }
}

/// The task as A2A shows it, with as much history as `shape` asks (read from its log).
pub(crate) async fn snapshot(door: &Door, task: &Task, shape: Shape) -> Result<wire::Task, Error> {
    let events = if shape.history == Some(0) {
        Vec::new()
    } else {
        log(door, task).await?
    };
    Ok(map::task(task, &events, shape))
}

/// The task's events up to the snapshot's last one.
async fn log(door: &Door, task: &Task) -> Result<Vec<Arc<Event>>, Error> {
    door.runtime()
        .events(task.id, Seq::ZERO, task.last_seq())
        .await
        .map_err(Error::runtime)
}

/// The idempotency key of a message: its context and its id, each length-prefixed so that no
/// two pairs give one key.
fn message_key(context: &str, message_id: &str) -> String {
    format!(
        "a2a/{}:{context}/{}:{message_id}",
        context.len(),
        message_id.len()
    )
}
