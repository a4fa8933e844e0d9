//! What a door does for an admitted principal, decided once: read one of its tasks (another's
//! is "not found", word for word as a task that does not exist), and start a task for it.

use std::{collections::BTreeMap, time::Duration};

use longrun::{StartOptions, Started, Task, TaskId, time::Timestamp, trace::TraceContext};
use serde_json::Value;

use crate::{Principal, Refusal, Surface};

/// A task to start for a principal, whatever door asked.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// The kind.
    pub kind: String,
    /// The input, checked against the kind's schema before anything is created.
    pub input: Value,
    /// The session the client named (an HTTP session, an A2A `contextId`, an MCP session),
    /// scoped to the principal.
    pub session: Option<String>,
    /// How long the task is kept after it ends.
    pub ttl: Option<Duration>,
    /// The task's longest life.
    pub deadline: Option<Duration>,
    /// Labels; the door's name is added as `door`.
    pub labels: BTreeMap<String, String>,
    /// How long to wait for the task to end before answering with it as it stands (cut to
    /// [`crate::Limits::max_wait`]); `None` answers at once.
    pub wait: Option<Duration>,
    /// Names this start for the principal: a repeat while the first task is kept starts
    /// nothing and answers with that task ([`Start::repeated`]).
    pub idempotency_key: Option<String>,
    /// When the handler may start, at the earliest (the task is `submitted` until then).
    pub start_at: Option<Timestamp>,
    /// How long after now the handler may start, at the earliest.
    pub delay: Option<Duration>,
    /// The caller's W3C `traceparent` (an HTTP header, MCP `params._meta.traceparent`, A2A
    /// `message.metadata.traceparent`): the task's spans join that trace. An invalid one is
    /// ignored, as the W3C recommendation asks, and the task starts a trace of its own.
    pub traceparent: Option<String>,
    /// The caller's `tracestate`, kept with a valid `traceparent`.
    pub tracestate: Option<String>,
    /// The door waits for the task itself and answers with its history (`wait` is then
    /// ignored): the task is attended ([`StartOptions::attended`]), so its outcome goes to no
    /// inbox unless the door detaches it, and its events are kept in memory for the answer
    /// ([`StartOptions::keep_events`]).
    pub attended: bool,
}

/// A task started for a principal.
#[derive(Debug, Clone)]
pub struct Start {
    /// The task, as it stands once the store acknowledged it (or after the wait).
    pub task: Task,
    /// The idempotency key named an earlier start: nothing new was started, and `task` is that
    /// start's task.
    pub repeated: bool,
}

impl Surface {
    /// Whether `input` may start a task of `kind`: its kind's JSON schema, compiled once for
    /// every door.
    pub fn check_input(&self, kind: &str, input: &Value) -> Result<(), crate::InputError> {
        self.shared.schemas.check(self.runtime(), kind, input)
    }

    /// The task `id` names, if `principal` owns it. Anything else (not a task id, unknown,
    /// expired, another principal's) is the same [`Refusal::NotFound`], quoting `id`.
    pub async fn owned(&self, principal: &Principal, id: &str) -> Result<Task, Refusal> {
        let parsed: TaskId = id.trim().parse().map_err(|_| Refusal::not_found(id))?;
        self.owned_id(principal, parsed).await
    }

    /// [`Surface::owned`] for an id the door has parsed already.
    pub async fn owned_id(&self, principal: &Principal, id: TaskId) -> Result<Task, Refusal> {
        match self.runtime().get(id).await {
            Ok(task) if task.owner == principal.owner() => Ok(task),
            Ok(_) | Err(longrun::Error::Unknown(_)) => Err(Refusal::NotFound(id.to_string())),
            Err(error) => Err(error.into()),
        }
    }

    /// Starts a task for `principal` through `door`: checks the input against the kind's
    /// schema, makes the principal its owner, scopes its session, labels it with the door, and
    /// returns it once the store has acknowledged it (after the wait, if one was asked; a task
    /// still running then is detached, and its outcome goes to the session's inbox).
    pub async fn start(
        &self,
        principal: &Principal,
        door: &'static str,
        request: StartRequest,
    ) -> Result<Start, Refusal> {
        let started = self.begin(principal, door, request).await?;
        let repeated = !started.is_new();
        let task = match started {
            Started::Finished(task) | Started::Existing(task) => *task,
            Started::Running(handle) | Started::Detached(handle) => handle.task().await?,
        };
        Ok(Start { task, repeated })
    }

    /// [`Surface::start`] for a door that follows the task from here (it waits for it to
    /// settle, say) and needs only its id now: the task is not read back. Returns the id and
    /// whether the idempotency key named an earlier start.
    pub async fn start_id(
        &self,
        principal: &Principal,
        door: &'static str,
        request: StartRequest,
    ) -> Result<(TaskId, bool), Refusal> {
        let started = self.begin(principal, door, request).await?;
        Ok((started.id(), !started.is_new()))
    }

    async fn begin(
        &self,
        principal: &Principal,
        door: &'static str,
        request: StartRequest,
    ) -> Result<Started, Refusal> {
        let runtime = self.runtime();
        self.check_input(&request.kind, &request.input)?;
        let mut options = match request.wait {
            _ if request.attended => StartOptions::attended().keep_events(),
            Some(wait) => StartOptions::detach_after(self.limits().wait(Some(wait))),
            None => StartOptions::background(),
        }
        .owner(principal.owner())
        .label("door", door);
        if let Some(session) = &request.session {
            options = options.session(principal.session(session));
        }
        if let Some(ttl) = request.ttl {
            options = options.ttl(ttl);
        }
        if let Some(deadline) = request.deadline {
            options = options.deadline(deadline);
        }
        for (key, value) in request.labels {
            options = options.label(key, value);
        }
        if let Some(key) = request.idempotency_key {
            options = options.idempotency_key(key);
        }
        if let Some(at) = request.start_at {
            options = options.start_at(at);
        }
        if let Some(delay) = request.delay {
            options = options.delay(delay);
        }
        if let Some(trace) = request
            .traceparent
            .as_deref()
            .and_then(|parent| TraceContext::parse(parent, request.tracestate.as_deref()))
        {
            options = options.trace(trace);
        }
        Ok(runtime.start(&request.kind, request.input, options).await?)
    }
}
