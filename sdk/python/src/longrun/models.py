"""The wire types of longrun's /v1 HTTP API, as typed pydantic models.

One model per schema of `docs/openapi.json` (`tests/test_models.py` checks every schema's
properties and required fields against these). Conventions of the API, kept as they are:

- times are whole milliseconds since the Unix epoch, in fields ending `_ms`, like durations;
- an optional field the server leaves out is `None` here (an empty list or map where the server
  defaults it);
- fields the server adds in a later version are ignored, and an event change or inbox entry of a
  type this SDK does not know parses as `UnknownChange` / `UnknownEntry` instead of failing, so
  an older client keeps working against a newer server.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag


class _Wire(BaseModel):
    """A shape the server sends: unknown fields are ignored, values are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Status(str, Enum):
    """A task's status."""

    SUBMITTED = "submitted"
    """Created, not yet running (queued at a limit, say)."""
    WORKING = "working"
    """The handler is running."""
    INPUT_REQUIRED = "input_required"
    """The handler waits for an answer: see the task's `questions`."""
    COMPLETED = "completed"
    """Ended with a result: see `output`."""
    FAILED = "failed"
    """Ended with an error: see `error`."""
    CANCELLED = "cancelled"
    """Ended by cancellation: see `cancellation`."""
    REJECTED = "rejected"
    """Refused before it started (a concurrency limit): see `error`."""

    @property
    def is_terminal(self) -> bool:
        """Whether a task in this status has ended."""
        return self in _TERMINAL


_TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.REJECTED})


class CancelReason(str, Enum):
    """Why a task was cancelled."""

    REQUESTED = "requested"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    STOPPED = "stopped"
    HANDLER = "handler"


class RestartPolicy(str, Enum):
    """What a crash does to a task of a kind that was running."""

    RERUN = "rerun"
    FAIL = "fail"


class Progress(_Wire):
    """How far a task has got."""

    percent: float | None = None
    message: str | None = None


class Artifact(_Wire):
    """An artifact: every chunk the handler emitted so far, folded."""

    id: str
    name: str | None = None
    parts: list[Any]
    """JSON strings are text, anything else is data."""
    complete: bool


class TaskError(_Wire):
    """Why a task failed or was rejected."""

    code: str
    message: str
    details: Any = None


class Cancellation(_Wire):
    """How a cancellation came about."""

    reason: CancelReason
    by: str | None = None
    message: str | None = None


class Task(_Wire):
    """A task as it stands."""

    id: str
    kind: str
    status: Status
    status_message: str | None = None
    progress: Progress | None = None
    artifacts: list[Artifact] = []
    questions: dict[str, Any] = {}
    """The open questions (key → what is asked) while the task is `input_required`."""
    output: Any = None
    """The handler's output when `completed` (which may itself be `None`)."""
    error: TaskError | None = None
    cancellation: Cancellation | None = None
    attempt: int
    session: str | None = None
    labels: dict[str, str] = {}
    input: Any
    detached: bool = False
    last_seq: int
    """The sequence number of the task's latest event: its event stream resumes after it."""
    created_at_ms: int
    updated_at_ms: int
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    expires_at_ms: int | None = None
    deadline_at_ms: int | None = None
    ttl_ms: int
    start_at_ms: int | None = None
    """When the handler may start, for a delayed start: the task stays `submitted` until then."""
    idempotency_key: str | None = None
    """The `Idempotency-Key` the task was started with."""

    @property
    def is_terminal(self) -> bool:
        """Whether the task has ended."""
        return self.status.is_terminal


class WebhookEvents(str, Enum):
    """Which of a task's events a webhook receives."""

    ALL = "all"
    """Every event, in order."""
    END = "end"
    """Only the event that ends the task."""


class Webhook(BaseModel):
    """Where a task's events are POSTed, signed with the Standard Webhooks headers
    (`docs/webhooks.md`)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    events: WebhookEvents = WebhookEvents.ALL
    secret: str | None = None
    """`whsec_` and the base64 of 24 to 64 random bytes; default: the server's."""


class CreateTask(BaseModel):
    """`POST /v1/tasks`: what to start. Built by `Client.start`."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    input: Any
    session: str | None = None
    ttl_ms: int | None = None
    deadline_ms: int | None = None
    labels: dict[str, str] = {}
    wait_ms: int | None = None
    delay_ms: int | None = None
    start_at_ms: int | None = None
    webhook: Webhook | None = None


class TaskPage(_Wire):
    """One page of tasks, newest first."""

    tasks: list[Task]
    next: str | None = None
    """Pass as `after` for the next page; `None` on the last page."""


# --- events -------------------------------------------------------------------------------


class SubmittedChange(_Wire):
    """The task was created (always event 1)."""

    type: Literal["submitted"]


class StartedChange(_Wire):
    """The handler started."""

    type: Literal["started"]
    attempt: int


class ProgressChange(_Wire):
    """The handler reported progress."""

    type: Literal["progress"]
    percent: float | None = None
    message: str | None = None


class ArtifactChange(_Wire):
    """The handler emitted (part of) an artifact."""

    type: Literal["artifact"]
    id: str
    name: str | None = None
    parts: list[Any]
    append: bool
    last_chunk: bool


class InputRequestedChange(_Wire):
    """The handler asked a question and waits for the answer."""

    type: Literal["input_requested"]
    key: str
    request: Any


class InputAnsweredChange(_Wire):
    """A question was answered."""

    type: Literal["input_answered"]
    key: str
    value: Any


class InputTimedOutChange(_Wire):
    """Nobody answered the question in time."""

    type: Literal["input_timed_out"]
    key: str


class AgentMessageChange(_Wire):
    """The task left the agent a message (also placed in the session's inbox)."""

    type: Literal["agent_message"]
    message: str
    trigger: bool


class DetachedChange(_Wire):
    """The caller stopped waiting; the task runs on, detached."""

    type: Literal["detached"]


class CancelRequestedChange(_Wire):
    """Cancellation was asked for; the handler has a grace period to stop."""

    type: Literal["cancel_requested"]
    cancellation: Cancellation


class EndedChange(_Wire):
    """The task ended; the event's `status` says how, and one of these fields why."""

    type: Literal["ended"]
    output: Any = None
    error: TaskError | None = None
    cancellation: Cancellation | None = None


class StepSavedChange(_Wire):
    """A durable step's value was saved: a re-run or a retry returns it without running the step."""

    type: Literal["step_saved"]
    key: str
    value: Any


class TimerStartedChange(_Wire):
    """A durable sleep began: a re-run or a retry waits only until `until_ms`."""

    type: Literal["timer_started"]
    key: str
    until_ms: int


class RetryScheduledChange(_Wire):
    """An attempt failed with a retryable error: attempt `attempt` starts at `at_ms`."""

    type: Literal["retry_scheduled"]
    attempt: int
    error: TaskError
    at_ms: int


class UnknownChange(BaseModel):
    """A change of a type this SDK does not know yet (a newer server): its fields are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str


_CHANGES: dict[str, type[BaseModel]] = {
    "submitted": SubmittedChange,
    "started": StartedChange,
    "progress": ProgressChange,
    "artifact": ArtifactChange,
    "input_requested": InputRequestedChange,
    "input_answered": InputAnsweredChange,
    "input_timed_out": InputTimedOutChange,
    "agent_message": AgentMessageChange,
    "detached": DetachedChange,
    "cancel_requested": CancelRequestedChange,
    "step_saved": StepSavedChange,
    "timer_started": TimerStartedChange,
    "retry_scheduled": RetryScheduledChange,
    "ended": EndedChange,
}


def _tag(known: dict[str, type[BaseModel]]) -> Any:
    def tag(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return kind if isinstance(kind, str) and kind in known else "unknown"

    return tag


Change = Annotated[
    Annotated[SubmittedChange, Tag("submitted")]
    | Annotated[StartedChange, Tag("started")]
    | Annotated[ProgressChange, Tag("progress")]
    | Annotated[ArtifactChange, Tag("artifact")]
    | Annotated[InputRequestedChange, Tag("input_requested")]
    | Annotated[InputAnsweredChange, Tag("input_answered")]
    | Annotated[InputTimedOutChange, Tag("input_timed_out")]
    | Annotated[AgentMessageChange, Tag("agent_message")]
    | Annotated[DetachedChange, Tag("detached")]
    | Annotated[CancelRequestedChange, Tag("cancel_requested")]
    | Annotated[StepSavedChange, Tag("step_saved")]
    | Annotated[TimerStartedChange, Tag("timer_started")]
    | Annotated[RetryScheduledChange, Tag("retry_scheduled")]
    | Annotated[EndedChange, Tag("ended")]
    | Annotated[UnknownChange, Tag("unknown")],
    Discriminator(_tag(_CHANGES)),
]
"""What an event changed, told apart by `type`."""


class Event(_Wire):
    """An event of a task: every change is one, numbered from 1 with no gaps."""

    task: str
    seq: int
    at_ms: int
    status: Status
    """The task's status after it."""
    change: Change


class Lagged(_Wire):
    """On the all-tasks stream: the stream fell behind and skipped `missed` events."""

    missed: int
    message: str


# --- the inbox ----------------------------------------------------------------------------


class DrainRequest(BaseModel):
    """`POST /v1/sessions/{session}/inbox:drain`: what to acknowledge and what to fetch."""

    model_config = ConfigDict(extra="forbid")

    ack: int | None = None
    max: int | None = None
    wait_ms: int | None = None


class MessageEntry(_Wire):
    """A message from a running task."""

    type: Literal["message"]
    message: str
    trigger: bool


class OutcomeEntry(_Wire):
    """A background or detached task ended."""

    type: Literal["outcome"]
    kind: str
    status: Status
    output: Any = None
    error: TaskError | None = None
    cancellation: Cancellation | None = None


class UnknownEntry(BaseModel):
    """An inbox entry of a type this SDK does not know yet (a newer server)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str


_ENTRIES: dict[str, type[BaseModel]] = {"message": MessageEntry, "outcome": OutcomeEntry}

InboxEntry = Annotated[
    Annotated[MessageEntry, Tag("message")]
    | Annotated[OutcomeEntry, Tag("outcome")]
    | Annotated[UnknownEntry, Tag("unknown")],
    Discriminator(_tag(_ENTRIES)),
]
"""What an inbox item says, told apart by `type`."""


class InboxItem(_Wire):
    """One item in a session's inbox."""

    position: int
    task: str
    at_ms: int
    triggers: bool
    entry: InboxEntry


class Drained(_Wire):
    """What a drain returns: acknowledge `through` with the next drain once handled."""

    items: list[InboxItem]
    through: int | None = None
    acknowledged: int


# --- kinds and the rest -------------------------------------------------------------------


class Kind(_Wire):
    """A kind of task the server runs."""

    name: str
    description: str
    input_schema: Any
    output_schema: Any = None
    concurrency: int | None = None
    ttl_ms: int
    deadline_ms: int | None = None
    cancel_grace_ms: int
    restart: RestartPolicy


class KindList(_Wire):
    """`GET /v1/kinds`."""

    kinds: list[Kind]


class Health(_Wire):
    """`GET /healthz`."""

    status: str


# --- workers (docs/worker-protocol.md) ---------------------------------------------------


class WorkerKind(BaseModel):
    """One kind a worker serves, as it registers."""

    model_config = ConfigDict(extra="forbid")

    name: str
    input_schema: Any = None


class WorkerRegistration(BaseModel):
    """`POST /v1/workers`: a worker registers."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    capacity: int | None = None
    kinds: list[WorkerKind]


class WorkerRegistered(_Wire):
    """What a registration returns: the worker's id and its timings."""

    worker: str
    heartbeat_ms: int
    expiry_ms: int
    protocol: int


class WorkerHeartbeat(_Wire):
    """What a heartbeat returns: the assignments the server counts as the worker's."""

    assignments: list[str]
    draining: bool


class WorkerEvent(_Wire):
    """One event of a worker's stream: a process-protocol stdin message with its assignment."""

    type: str
    assignment: str
    task: str | None = None
    key: str | None = None
    input: Any = None
    steps: Any = None
    value: Any = None


class WorkerReport(BaseModel):
    """One report of a worker: a process-protocol stdout message."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str


class WorkerInfo(_Wire):
    """A connected worker (`Worker` in the OpenAPI document)."""

    id: str
    name: str
    principal: str
    kinds: list[str]
    capacity: int
    tasks: list[str]
    """The tasks it holds now."""
    draining: bool
    last_heartbeat_ms_ago: int
    connected_ms: int


class WorkerList(_Wire):
    """`GET /v1/workers`."""

    workers: list[WorkerInfo]


class ErrorDetail(_Wire):
    """What went wrong: a stable `code` and a message for people."""

    code: str
    message: str


class ErrorBody(_Wire):
    """Every error response, and the data of an SSE `error` message."""

    error: ErrorDetail
