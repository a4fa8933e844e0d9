"""One assignment: a task the server gave this worker, its handler's run, and its reports.

Invariants: the reports of one assignment go out one at a time, in the order they were sent
(`Reports` holds a lock across each request and its answer, as the protocol asks). Once an
assignment is *gone* (revoked, fenced by `409 assignment_gone`, or lost with its worker's
registration) nothing more is reported for it and its handler is cancelled at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from longrun import _api
from longrun.errors import ApiError
from longrun.process import _wire as _messages
from longrun.process._attempt import Handler, attempt
from longrun.process._context import Context, ProtocolError, Transport
from longrun.worker import _wire

log = logging.getLogger("longrun.worker")

Post = Callable[[str, bytes], Awaitable[httpx.Response]]
"""Posts a JSON body to a path of the server (the worker's HTTP client and token)."""


class AssignmentGone(asyncio.CancelledError):
    """The task is no longer this worker's: it was revoked, the server refused a report with
    `409 assignment_gone` (the fence), or the worker's registration was lost. Raised by the
    report that was refused; nothing more is reported.

    A `CancelledError`, because that is what it means for the handler: it is being stopped, and
    an `except Exception` in it must not carry on as if the report had been made.
    """

    def __init__(self, assignment: str, why: str) -> None:
        super().__init__(f"assignment {assignment} is gone: {why}")
        self.assignment = assignment
        self.why = why


class Assignment:
    """A task this worker runs: `run` calls the handler and reports its outcome."""

    def __init__(
        self,
        *,
        worker: str,
        assignment: str,
        start: _messages.Start,
        handler: Handler,
        post: Post,
        on_unknown_worker: Callable[[str], None],
        backoff: _api.Reconnect,
        grace: float,
        serial: int,
    ) -> None:
        self.worker = worker
        self.id = assignment
        self.start = start
        self.serial = serial
        """Increasing per worker: tells which assignments a heartbeat's answer can speak of."""
        self.gone: str | None = None
        """Why the assignment is gone, once it is."""
        self._handler = handler
        self.reports = Reports(self, post, on_unknown_worker, backoff)
        self.ctx = Context(start, self.reports, grace=grace)

    async def run(self) -> None:
        """Runs the handler and reports its outcome, unless the assignment is gone first."""
        try:
            if self.start.protocol not in _messages.SUPPORTED:
                outcome = _messages.line(
                    "fail",
                    code="unsupported_protocol",
                    message=f"this worker speaks protocol versions {_messages.SUPPORTED}, "
                    f"the server sent {self.start.protocol}",
                )
            else:
                outcome = await attempt(self._handler, self.ctx, self.start.input)
            if self.gone is None:
                await self.ctx._end(outcome)
        except AssignmentGone as gone:
            log.info("%s", gone)
        except (ProtocolError, ApiError) as error:
            log.error(
                "the outcome of %s (task %s) was refused: %s", self.id, self.start.task, error
            )

    def abandon(self, why: str) -> None:
        """Stops the handler at once and reports nothing more."""
        if self.gone is not None:
            return
        self.gone = why
        log.info("assignment %s (task %s) dropped: %s", self.id, self.start.task, why)
        work = self.ctx._work
        if work is not None and not work.done():
            work.cancel()


class Reports(Transport):
    """An assignment's reports, each a `POST …/reports` whose answer comes before the next is
    sent. A report without an answer (a broken connection, a 502/503/504) is sent again with
    backoff until it is answered or the assignment is gone.

    Known limit: a report carries no sequence number, so when the connection breaks after the
    server recorded a report but before its answer arrived, the report is sent twice. A second
    progress or artifact is harmless; a second `ask`, `step` or `sleep` under the same key is a
    protocol error on the server's side and fails the task.
    """

    confirms_steps = True  # `204` to a step means it is durable

    def __init__(
        self,
        assignment: Assignment,
        post: Post,
        on_unknown_worker: Callable[[str], None],
        backoff: _api.Reconnect,
    ) -> None:
        self._assignment = assignment
        self._post = post
        self._on_unknown_worker = on_unknown_worker
        self._backoff = backoff
        self._lock = asyncio.Lock()
        self._path = _wire.report_path(assignment.worker, assignment.id)

    async def send(self, message: str) -> None:
        assignment = self._assignment
        async with self._lock:
            failures = 0
            while True:
                if assignment.gone is not None:
                    raise AssignmentGone(assignment.id, assignment.gone)
                try:
                    response = await self._post(self._path, message.encode())
                except httpx.TransportError as error:
                    failures += 1
                    log.warning("report of %s not sent (%s); trying again", assignment.id, error)
                    await asyncio.sleep(self._backoff.delay(failures))
                    continue
                if response.is_success:
                    return
                await self._refused(response)
                failures += 1
                await asyncio.sleep(self._backoff.delay(failures))

    async def _refused(self, response: httpx.Response) -> None:
        """Raises for a refusal; returns for an answer worth trying again (the server is busy
        or restarting).
        """
        assignment = self._assignment
        if response.status_code in _api.RETRYABLE_STATUS:
            return
        error = _api.error(response)
        if error.code == "assignment_gone" or response.status_code == 409:
            assignment.abandon(f"the server refused a report: {error.message}")
            raise AssignmentGone(assignment.id, error.code)
        if error.code == "unknown_worker" or response.status_code == 404:
            assignment.abandon("the worker is not registered any more")
            self._on_unknown_worker(assignment.worker)
            raise AssignmentGone(assignment.id, error.code)
        if response.status_code == 422:
            # The task fails with `protocol_error` on the server's side: the assignment is over.
            assignment.gone = f"the server refused a report: {error.message}"
            raise ProtocolError(f"the server refused a report of {assignment.id}: {error}")
        raise error


def parse_start(data: str) -> _messages.Start:
    """A `start` event's data as the process protocol's start message."""
    return _messages.start(data)


def data_of(text: str) -> dict[str, Any] | None:
    """An event's data as a message object with a `type`, or `None` when it is not one."""
    try:
        return _messages.incoming(text)
    except _messages.BadLine:
        return None
