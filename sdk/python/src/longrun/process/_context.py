"""`Context`: what a handler sees of its task, and the exceptions a handler raises to end its
task in a chosen way. One context serves both a process handler (`longrun.process.run`) and a
worker (`longrun.Worker`): the messages are the same, only their framing differs, and that is
the `Transport`'s business (a line on stdout, or one HTTP request per report).

Invariant: every outgoing message goes through `Context._send`, which refuses once the outcome
is sent (the protocols make any message after the outcome an error). Everything runs on one
event loop thread, so no lock is needed around the pending maps; a transport that does I/O
keeps its own messages in order.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from longrun.process import _wire


class Fail(Exception):
    """Raise it to end the task `failed` with this error.

    `code` is stable and machine-readable; `details` any JSON. With protocol version 2,
    `retryable=True` asks for another attempt (after `retry_after` seconds, if given) under the
    kind's retry policy; `retryable=False` marks the error as fatal.
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        details: Any = None,
        retryable: bool | None = None,
        retry_after: float | timedelta | None = None,
    ) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after = retry_after


class Cancelled(Exception):
    """Raise it to end the task `cancelled`, with `message` saying why (after a cancel, or on
    the handler's own account).
    """

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "cancelled")
        self.message = message


class Unanswered(Exception):
    """`ctx.ask` got no answer: the question timed out, or nobody can answer any more (the
    runtime closed stdin).
    """

    def __init__(self, key: str, *, timed_out: bool) -> None:
        why = "timed out" if timed_out else "cannot be answered any more (stdin closed)"
        super().__init__(f"question `{key}` {why}")
        self.key = key
        self.timed_out = timed_out


class ProtocolError(Exception):
    """The handler used the protocol wrongly (a key asked twice, a line after the outcome…),
    or the runtime broke it.
    """


class Transport(ABC):
    """How a context's messages reach the runtime: `send` returns once the message is handed
    over (written to stdout, or accepted by the server), and raises if it cannot be.
    """

    confirms_steps: bool = False
    """Whether `send` of a `step` returns only once the step is durable, so that the context
    need not wait for `step_saved` (true of the worker protocol's reports)."""

    @abstractmethod
    async def send(self, message: str) -> None:
        """Sends one message, a JSON object as `_wire.line` writes it."""


class PipeTransport(Transport):
    """The process protocol's: one line on stdout per message, through `write`."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    async def send(self, message: str) -> None:
        self._write(message)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data: pydantic models, dataclasses and the like converted (by
    pydantic when it is installed; JSON data needs nothing).
    """
    try:
        from pydantic_core import to_jsonable_python
    except ImportError:
        return value
    return to_jsonable_python(value)


class Context:
    """What a handler sees: its task, and the calls that report to the runtime.

    `cancelled` is set as soon as the runtime cancels the task (a `cancel` message, or SIGTERM
    for a process handler); if the handler has not ended a grace period later, it is cancelled
    (`asyncio.CancelledError`).
    """

    def __init__(self, start: _wire.Start, transport: Transport, *, grace: float = 1.0) -> None:
        self.task: str = start.task
        """The task's id."""
        self.kind: str = start.kind
        """The kind's name."""
        self.attempt: int = start.attempt
        """1, or more when the task is run again (after a crash or a retry)."""
        self.protocol: int = start.protocol
        """The protocol version the runtime speaks."""
        self.cancelled = asyncio.Event()
        """Set when the task is being cancelled."""
        self._journal: dict[str, Any] = dict(start.steps)
        self._transport = transport
        self._grace = grace
        self._work: asyncio.Future[Any] | None = None
        self._ended = False
        self._closed = False
        self._asked: dict[str, asyncio.Future[Any]] = {}
        self._early_answers: dict[str, tuple[bool, Any]] = {}
        self._saving: dict[str, asyncio.Future[None]] = {}
        self._used_keys: set[str] = set()

    @property
    def steps(self) -> Mapping[str, Any]:
        """The steps saved by earlier attempts (protocol version 2), by key."""
        return dict(self._journal)

    # --- reports ------------------------------------------------------------------------

    async def progress(self, percent: float | None = None, message: str | None = None) -> None:
        """Reports progress: `percent` from 0 to 100 when known, `message` for people."""
        if percent is not None and not 0 <= percent <= 100:
            raise ValueError(f"progress percent must be within 0 and 100, got {percent}")
        await self._send(_wire.line("progress", percent=percent, message=message))

    async def artifact(
        self,
        id: str,
        parts: Any,
        *,
        name: str | None = None,
        append: bool = False,
        last_chunk: bool = True,
    ) -> None:
        """Emits an artifact, or one chunk of it.

        `parts` is a list (or one value): a string is text, anything else is data. By default
        the call replaces the artifact `id` and says it is complete; to stream one, send chunks
        with `append=True, last_chunk=False` and end with `last_chunk=True`.
        """
        listed = parts if isinstance(parts, list) else [parts]
        await self._send(
            _wire.line(
                "artifact",
                id=id,
                name=name,
                parts=jsonable(listed),
                append=append,
                last_chunk=last_chunk,
            )
        )

    async def notify_agent(self, text: str, *, trigger: bool = False) -> None:
        """Leaves the agent a message in its session's inbox; `trigger` asks for a new turn."""
        await self._send(_wire.line("message", text=text, trigger=trigger))

    async def ask(
        self,
        key: str,
        request: Mapping[str, Any] | str,
        *,
        timeout: float | timedelta | None = None,
    ) -> Any:
        """Asks a question and waits for its answer (the task is `input_required` meanwhile).

        `key` names the question, once per task; `request` is shown to whoever answers (a
        string becomes `{"message": …}`; `{"type": "boolean", …}` is a yes/no question). Raises
        `Unanswered` when `timeout` passes or nobody can answer any more.
        """
        if key in self._asked:
            raise ProtocolError(f"question `{key}` was already asked: keys are once per task")
        body = {"message": request} if isinstance(request, str) else dict(request)
        timeout_ms = None if timeout is None else _millis(timeout)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._asked[key] = answer
        await self._send(_wire.line("ask", key=key, request=jsonable(body), timeout_ms=timeout_ms))
        if key in self._early_answers:
            self._settle_answer(key, *self._early_answers.pop(key))
        elif self._closed:
            answer.set_exception(Unanswered(key, timed_out=False))
        return await answer

    # --- durable execution (protocol version 2) -----------------------------------------

    async def step(self, key: str, fn: Callable[[], Any]) -> Any:
        """Runs `fn` (a function of no arguments, sync or async) once for the task, however
        often the task is run: its result is saved under `key` and, when an attempt after a
        crash or retry comes to the same step, returned without running `fn` again.

        The value must be JSON (or a pydantic model, converted); what is returned is that JSON,
        the same on the first run and on a replay. Keys are explicit and used once per attempt.
        Under protocol version 1 (a runtime without steps), `fn` simply runs.
        """
        self._use(key)
        if key in self._journal:
            return self._journal[key]
        result = fn()
        value = await result if inspect.isawaitable(result) else result
        saved = json.loads(json.dumps(jsonable(value)))
        if self.protocol >= 2:
            await self._saved(key, _wire.line("step", key=key, value=saved), confirmed=True)
        self._journal[key] = saved
        return saved

    async def sleep(self, key: str, seconds: float | timedelta) -> None:
        """Sleeps durably: the timer is kept by the runtime, so an attempt after a crash waits
        only what remained, and one after the timer fired does not wait again. Under protocol
        version 1 it is a plain `asyncio.sleep`.
        """
        self._use(key)
        if key in self._journal:
            return
        if self.protocol < 2:
            await asyncio.sleep(_millis(seconds) / 1000)
            return
        await self._saved(key, _wire.line("sleep", key=key, ms=_millis(seconds)))
        self._journal[key] = None

    def _use(self, key: str) -> None:
        if key in self._used_keys:
            raise ProtocolError(f"step key `{key}` was already used in this attempt")
        self._used_keys.add(key)

    async def _saved(self, key: str, message: str, *, confirmed: bool = False) -> None:
        """Sends a step or a sleep and returns once the runtime says it is saved (for a sleep:
        once its time is up). A `confirmed` message needs no `step_saved` on a transport that
        confirms steps by answering.
        """
        if self._closed:
            raise ProtocolError(f"cannot save `{key}`: the runtime closed stdin")
        saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._saving[key] = saved
        await self._send(message)
        if confirmed and self._transport.confirms_steps:
            self._saving.pop(key, None)
            return
        await saved

    # --- the runner's side --------------------------------------------------------------

    async def _send(self, message: str) -> None:
        if self._ended:
            raise ProtocolError("the task's outcome is sent: nothing may follow it")
        await self._transport.send(message)

    async def _end(self, outcome: str) -> None:
        """Sends the outcome; nothing may be sent after it."""
        # Marked before the send: a message the handler sends meanwhile (from a task it left
        # running) must not overtake or follow the outcome.
        if self._ended:
            raise ProtocolError("the task's outcome is sent: nothing may follow it")
        self._ended = True
        await self._transport.send(outcome)

    def _attach(self, work: asyncio.Future[Any]) -> None:
        """The handler's run: cancelled `grace` seconds after the task is cancelled."""
        self._work = work
        if self.cancelled.is_set():
            asyncio.get_running_loop().call_later(self._grace, work.cancel)

    def _receive(self, message: Mapping[str, Any]) -> None:
        """Routes one line from the runtime (after the start line)."""
        kind = message["type"]
        key = message.get("key")
        if kind == "cancel":
            if not self.cancelled.is_set() and self._work is not None:
                asyncio.get_running_loop().call_later(self._grace, self._work.cancel)
            self.cancelled.set()
        elif kind == "answer" and isinstance(key, str):
            self._settle_answer(key, True, message.get("value"))
        elif kind == "answer_timeout" and isinstance(key, str):
            self._settle_answer(key, False, None)
        elif kind == "step_saved" and isinstance(key, str):
            saving = self._saving.pop(key, None)
            if saving is not None and not saving.done():
                saving.set_result(None)
        # Anything else is a later revision's: the protocol says to ignore it.

    def _settle_answer(self, key: str, answered: bool, value: Any) -> None:
        future = self._asked.get(key)
        if future is None:
            self._early_answers[key] = (answered, value)
        elif not future.done():
            if answered:
                future.set_result(value)
            else:
                future.set_exception(Unanswered(key, timed_out=True))

    def _stdin_closed(self) -> None:
        """No more lines will come: open questions and saves can never be settled."""
        self._closed = True
        for key, future in self._asked.items():
            if not future.done():
                future.set_exception(Unanswered(key, timed_out=False))
        for key, saving in self._saving.items():
            if not saving.done():
                saving.set_exception(ProtocolError(f"`{key}` was not saved: stdin closed"))
        self._saving.clear()


def _millis(duration: float | timedelta) -> int:
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds} s")
    return round(seconds * 1000)
