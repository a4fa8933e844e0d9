"""What `Client` and `AsyncClient` share, without I/O: how each call is written as an HTTP
request, how an answer is read back (or turned into an `ApiError`), the SSE parser, and the
bookkeeping that lets a broken event stream resume with neither gap nor repeat.

Keeping this here means the two clients differ only in `await`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from longrun import models
from longrun.errors import ApiError, api_error

DEFAULT_SERVER = "http://127.0.0.1:7700"
USER_AGENT = "longrun-python/0.1.0"

Seconds = float | int | timedelta
"""A duration: seconds, or a `timedelta`."""

TaskRef = str | models.Task
"""A task, by id or as a `Task`."""

M = TypeVar("M", bound=BaseModel)


def server_url(base_url: str | None) -> str:
    """The server's base URL: the argument, else `$LONGRUN_SERVER`, else the local default."""
    url = base_url or os.environ.get("LONGRUN_SERVER") or DEFAULT_SERVER
    return url.rstrip("/")


def bearer(token: str | None) -> str | None:
    """The bearer token: the argument, else `$LONGRUN_TOKEN`, else none (anonymous)."""
    return token if token is not None else os.environ.get("LONGRUN_TOKEN")


def millis(duration: Seconds) -> int:
    """A duration in whole milliseconds, as the API takes it."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds} s")
    return round(seconds * 1000)


def seconds(duration: Seconds) -> float:
    """A duration in seconds."""
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


def task_id(task: TaskRef) -> str:
    """The id of a task given by id or as a `Task`."""
    return task.id if isinstance(task, models.Task) else task


def segment(text: str) -> str:
    """One path segment, percent-encoded (a question key or a session may hold `/`)."""
    return quote(text, safe="")


_NO_BODY: Any = object()


@dataclass(frozen=True)
class Request:
    """One HTTP request of the API, before it is sent."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = _NO_BODY
    headers: dict[str, str] = field(default_factory=dict)
    wait: float = 0.0
    """How long the server may hold the answer on purpose (`wait_ms`), added to the timeout."""

    @property
    def has_body(self) -> bool:
        return self.body is not _NO_BODY

    def content(self) -> bytes | None:
        """The body as JSON bytes (`None` for no body). Any JSON value, `null` included."""
        return json.dumps(self.body).encode() if self.has_body else None

    def all_headers(self, token: str | None) -> dict[str, str]:
        headers = {"user-agent": USER_AGENT, "accept": "application/json", **self.headers}
        if self.has_body:
            headers["content-type"] = "application/json"
        if token:
            headers["authorization"] = f"Bearer {token}"
        return headers


def start(
    kind: str,
    input: Any,
    *,
    session: str | None,
    labels: Mapping[str, str] | None,
    ttl: Seconds | None,
    deadline: Seconds | None,
    wait: Seconds | None,
    idempotency_key: str | None,
    delay: Seconds | None = None,
) -> Request:
    body = models.CreateTask(
        kind=kind,
        input=input,
        session=session,
        labels=dict(labels or {}),
        ttl_ms=None if ttl is None else millis(ttl),
        deadline_ms=None if deadline is None else millis(deadline),
        wait_ms=None if wait is None else millis(wait),
        delay_ms=None if delay is None else millis(delay),
    )
    headers = {} if idempotency_key is None else {"idempotency-key": idempotency_key}
    return Request(
        "POST",
        "/v1/tasks",
        body=body.model_dump(mode="json", exclude_defaults=True),
        headers=headers,
        wait=0.0 if wait is None else seconds(wait),
    )


def get(task: TaskRef) -> Request:
    return Request("GET", f"/v1/tasks/{segment(task_id(task))}")


def list_page(
    *,
    status: models.Status | str | Iterable[models.Status | str] | None,
    kind: str | None,
    session: str | None,
    labels: Mapping[str, str] | None,
    limit: int | None,
    after: str | None,
) -> Request:
    params: list[tuple[str, str]] = []
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        params += [("status", models.Status(s).value) for s in statuses]
    if kind is not None:
        params.append(("kind", kind))
    if session is not None:
        params.append(("session", session))
    for key, value in (labels or {}).items():
        params.append(("label", f"{key}:{value}"))
    if limit is not None:
        params.append(("limit", str(limit)))
    if after is not None:
        params.append(("after", after))
    return Request("GET", "/v1/tasks", params=tuple(params))


def cancel(task: TaskRef) -> Request:
    return Request("POST", f"/v1/tasks/{segment(task_id(task))}/cancel")


def answer(task: TaskRef, key: str, value: Any) -> Request:
    return Request("POST", f"/v1/tasks/{segment(task_id(task))}/answers/{segment(key)}", body=value)


def drain(session: str, *, ack: int | None, max: int | None, wait: Seconds | None) -> Request:
    body = models.DrainRequest(ack=ack, max=max, wait_ms=None if wait is None else millis(wait))
    return Request(
        "POST",
        f"/v1/sessions/{segment(session)}/inbox:drain",
        body=body.model_dump(mode="json", exclude_none=True),
        wait=0.0 if wait is None else seconds(wait),
    )


def kinds() -> Request:
    return Request("GET", "/v1/kinds")


def workers() -> Request:
    return Request("GET", "/v1/workers")


def health() -> Request:
    return Request("GET", "/healthz")


def watch(task: TaskRef, after: int) -> Request:
    # `Last-Event-ID` rather than `?after=`: it is what the server's resume is specified on.
    return Request(
        "GET",
        f"/v1/tasks/{segment(task_id(task))}/events",
        headers={"accept": "text/event-stream", "last-event-id": str(after)},
    )


def events(*, kind: str | None, session: str | None) -> Request:
    params = [(name, value) for name, value in (("kind", kind), ("session", session)) if value]
    return Request(
        "GET", "/v1/events", params=tuple(params), headers={"accept": "text/event-stream"}
    )


def error(response: httpx.Response) -> ApiError:
    """The exception for an error answer whose body has been read."""
    try:
        body = models.ErrorBody.model_validate_json(response.content)
    except ValidationError:
        # Not the API's shape (a proxy's page, say): keep the start of what came.
        text = response.text.strip()[:200] or response.reason_phrase
        return api_error(response.status_code, f"http_{response.status_code}", text)
    return api_error(response.status_code, body.error.code, body.error.message)


def parse(response: httpx.Response, model: type[M]) -> M:
    """The answer's body as `model`, or the `ApiError` it carries. The body must be read."""
    if response.is_error:
        raise error(response)
    return model.model_validate_json(response.content)


@dataclass
class SseMessage:
    """One Server-Sent Events message."""

    event: str
    data: str
    id: str | None


class SseParser:
    """Server-Sent Events, fed one line at a time (without its line ending)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SseMessage | None:
        """Takes one line; returns the message a blank line completes."""
        if not line:
            if not self._data:
                self._event = ""
                return None
            message = SseMessage(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], None
            return message
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def stream_error(message: SseMessage, status: int) -> ApiError:
    """The `ApiError` an SSE `error` message carries (the stream's own status was `status`)."""
    try:
        body = models.ErrorBody.model_validate_json(message.data)
    except ValidationError:
        return api_error(status, "stream_error", message.data[:200])
    return api_error(status, body.error.code, body.error.message)


class Resume:
    """Where a task's event stream stands: the last sequence number seen, so that a reconnection
    asks for what follows it (`Last-Event-ID`), and an event seen already is dropped.
    """

    def __init__(self, after: int) -> None:
        self.after = after
        self.finished = False

    def accept(self, event: models.Event) -> bool:
        """Whether `event` is new; records it. After the task's end, nothing more comes."""
        if event.seq <= self.after:
            return False
        self.after = event.seq
        if event.status.is_terminal:
            self.finished = True
        return True


@dataclass(frozen=True)
class Reconnect:
    """How a broken event stream is resumed: up to `attempts` failed tries in a row, waiting
    `initial` seconds after the first and doubling up to `maximum`. An event that arrives resets
    the count.
    """

    attempts: int = 10
    initial: float = 0.1
    maximum: float = 5.0

    def delay(self, failures: int) -> float:
        """How long to wait after the `failures`-th failure in a row (from 1)."""
        return float(min(self.maximum, self.initial * 2 ** (failures - 1)))


RETRYABLE_STATUS = frozenset({502, 503, 504})
"""Statuses after which a stream is tried again: the server is restarting or behind a proxy."""
