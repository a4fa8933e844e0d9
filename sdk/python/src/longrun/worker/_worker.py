"""`Worker`: serves kinds of a `longrun serve` over the worker protocol
(`docs/worker-protocol.md`), running each assigned task's handler with the same `Context` as a
process handler.

Three loops run while the worker is up: the event stream (assignments, answers, cancels and
revocations, pushed by the server; resumed with `Last-Event-ID`), the heartbeat (which keeps
the worker and its tasks alive), and one run per assignment. `run` owns them all.

Invariant: `self._registration` changes only in `_register`, under `_register_lock`; every
assignment belongs to the registration that received it, and a new registration abandons the
assignments of the old one (the server has forgotten them).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

import httpx

from longrun import _api
from longrun.errors import ApiError, LongrunError
from longrun.process._attempt import DEFAULT_GRACE, Handler
from longrun.process._context import Context, Fail
from longrun.worker import _wire
from longrun.worker._assignment import Assignment, data_of, parse_start

log = logging.getLogger("longrun.worker")

H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class _Kind:
    handler: Handler
    input_schema: Mapping[str, Any] | None


class Worker:
    """A worker serving kinds of one longrun server.

    ```python
    from pydantic import BaseModel
    from longrun import Context, Worker

    worker = Worker("http://127.0.0.1:7700", token="…", name="gpu-box-1", capacity=4)

    class Topic(BaseModel):
        topic: str

    @worker.kind("research")
    async def research(ctx: Context, input: Topic) -> dict:
        sources = await ctx.step("search", lambda: search(input.topic))
        await ctx.progress(50, f"{len(sources)} sources")
        return {"summary": summarize(sources)}

    worker.run_forever()          # or: await worker.run()
    ```

    `capacity` is how many tasks it runs at once (the server assigns no more); `grace` how
    long a cancelled handler has to end by itself before it is cancelled
    (`asyncio.CancelledError`); `drain_timeout` how long a graceful stop waits for the tasks
    held to finish before handing them back. `backoff` paces reconnections and retried reports
    (its `attempts` is not used: a worker tries for as long as it runs). `url` and `token`
    default to `$LONGRUN_SERVER` and `$LONGRUN_TOKEN`, as for `Client`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        name: str | None = None,
        capacity: int = 1,
        grace: float = DEFAULT_GRACE,
        drain_timeout: float = 30.0,
        backoff: _api.Reconnect | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"a worker's capacity is at least 1, got {capacity}")
        self.base_url = _api.server_url(url)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.capacity = capacity
        self._token = _api.bearer(token)
        self._grace = grace
        self._drain_timeout = drain_timeout
        self._backoff = backoff or _api.Reconnect()
        self._timeout = timeout
        self._http = http
        self._owns_http = http is None
        self._kinds: dict[str, _Kind] = {}
        self._registration: _wire.Registered | None = None
        self._register_lock = asyncio.Lock()
        self._last_event_id: str | None = None
        self._assignments: dict[str, Assignment] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self._serial = 0
        self._stopping = asyncio.Event()
        self._stop_now = asyncio.Event()
        self._connection: asyncio.Task[None] | None = None

    # --- declaring kinds -----------------------------------------------------------------

    def kind(
        self, name: str, *, input_schema: Mapping[str, Any] | bool = False
    ) -> Callable[[H], H]:
        """Serves the kind `name` with the decorated `async def handler(ctx, input)`.

        The input is validated against the annotation of the handler's `input` parameter (a
        pydantic model, or any type pydantic knows) and the task fails `invalid_input` if it
        does not fit. `input_schema` declares the kind's schema to the server: a JSON schema,
        or `True` for the one of the annotation. Leave it out when the server's config has one:
        a different declared schema is refused (`409 schema_mismatch`).
        """

        def register(handler: H) -> H:
            if name in self._kinds:
                raise ValueError(f"the kind `{name}` already has a handler")
            schema: Mapping[str, Any] | None
            if input_schema is True:
                schema = _annotation_schema(handler)
            elif input_schema is False:
                schema = None
            else:
                schema = input_schema
            self._kinds[name] = _Kind(handler, schema)
            return handler

        return register

    # --- running -------------------------------------------------------------------------

    @property
    def id(self) -> str | None:
        """The id the server gave this worker (`wkr_…`), once registered."""
        return None if self._registration is None else self._registration.worker

    @property
    def running(self) -> int:
        """How many tasks the worker runs now."""
        return len(self._assignments)

    def stop(self, *, drain: bool = True) -> None:
        """Asks `run` to stop: by default gracefully (take no new task, finish those held, for
        up to `drain_timeout`, then leave); with `drain=False`, or a second time, at once
        (handlers are cancelled and their tasks handed back to the server). Call it on the
        event loop's thread (from another: `loop.call_soon_threadsafe(worker.stop)`).
        """
        if self._stopping.is_set() or not drain:
            self._stop_now.set()
        self._stopping.set()

    def run_forever(self) -> None:
        """Runs the worker until SIGTERM or SIGINT (a graceful stop; a second one stops at
        once). Blocks; for an event loop of your own, `await run()`.
        """
        asyncio.run(self.run(signals=True))

    async def run(self, *, signals: bool = False) -> None:
        """Registers, serves the kinds until `stop` (or SIGTERM/SIGINT with `signals=True`,
        on the main thread), then drains and leaves. Raises `ApiError` if the server refuses
        the registration (`403 forbidden`, `404 unknown_kind`, `409 schema_mismatch`).
        """
        if not self._kinds:
            raise LongrunError("the worker serves no kind: declare one with @worker.kind(…)")
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        if signals and threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(number, self.stop)
                    handled.append(number)
        if self._http is None:
            self._http = httpx.AsyncClient()
        try:
            await self._serve()
        finally:
            for number in handled:
                loop.remove_signal_handler(number)
            if self._owns_http:
                await self._http.aclose()
                self._http = None

    async def _serve(self) -> None:
        # A stop while the server cannot be reached ends the wait for it.
        registering = asyncio.create_task(self._register(None))
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([registering, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not registering.done():
            registering.cancel()
            return
        registering.result()
        loops = [
            asyncio.create_task(self._events(), name="longrun-worker-events"),
            asyncio.create_task(self._heartbeats(), name="longrun-worker-heartbeat"),
        ]
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait([stopping, *loops], return_when=asyncio.FIRST_COMPLETED)
            for loop_task in loops:
                if loop_task in done:
                    loop_task.result()  # a loop ends only on a fatal error: raise it
            await self._drain()
        finally:
            stopping.cancel()
            for loop_task in loops:
                loop_task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            self._abandon_all("the worker is stopping")
            if self._runs:
                await asyncio.wait(self._runs)
            await self._leave()

    async def _drain(self) -> None:
        """Takes no new task; waits for those held to end (up to `drain_timeout`, or until a
        second stop).
        """
        registration = self._registration
        if registration is not None:
            with contextlib.suppress(httpx.HTTPError):
                await self._request(_wire.drain(registration.worker))
        if not self._runs:
            return
        log.info("draining: waiting for %d task(s) to end", len(self._runs))
        now = asyncio.create_task(self._stop_now.wait())
        try:
            deadline = asyncio.get_running_loop().time() + self._drain_timeout
            while self._runs and not now.done():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                await asyncio.wait(
                    [now, *self._runs], timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            now.cancel()

    async def _leave(self) -> None:
        """Leaves the server: any task still held is handed back and re-assigned."""
        registration = self._registration
        if registration is None:
            return
        try:
            response = await self._request(_wire.leave(registration.worker))
            if response.is_error and response.status_code != 404:
                log.warning("leaving was refused: %s", _api.error(response))
        except httpx.HTTPError as error:
            log.warning("could not leave the server (%s): it will expire the worker", error)

    # --- registration --------------------------------------------------------------------

    async def _register(self, stale: str | None) -> None:
        """Registers (again, if the registration is still `stale`), trying until the server
        answers. Raises `ApiError` when it refuses.
        """
        async with self._register_lock:
            if self.id != stale:
                return  # another loop registered again already
            if stale is not None:
                log.warning("worker %s is not registered any more: registering again", stale)
                self._abandon_all("the worker's registration was lost")
            kinds = {name: kind.input_schema for name, kind in self._kinds.items()}
            request = _wire.register(self.name, self.capacity, kinds)
            failures = 0
            while True:
                try:
                    response = await self._request(request)
                except httpx.TransportError as error:
                    response = None
                    log.warning("cannot reach %s to register: %s", self.base_url, error)
                if response is not None and response.status_code not in _api.RETRYABLE_STATUS:
                    self._registration = _api.parse(response, _wire.Registered)
                    self._last_event_id = None
                    log.info(
                        "registered as %s (%s, capacity %d)",
                        self.id,
                        ", ".join(self._kinds),
                        self.capacity,
                    )
                    return
                failures += 1
                await asyncio.sleep(self._backoff.delay(failures))

    def _lost_registration(self, stale: str) -> None:
        """The server answered `404 unknown_worker` to a report or a heartbeat: `_events`
        registers again (unless that happened already) and reconnects to the new id. A stream
        still open for a forgotten worker would carry nothing more.
        """
        if self._connection is not None and self.id == stale:
            self._connection.cancel()

    def _abandon_all(self, why: str) -> None:
        for assignment in list(self._assignments.values()):
            assignment.abandon(why)

    # --- the event stream ----------------------------------------------------------------

    async def _events(self) -> None:
        """Keeps the event stream open, reconnecting with backoff and `Last-Event-ID`."""
        failures = 0
        while True:
            registration = self._registration
            assert registration is not None
            connection = asyncio.create_task(self._stream(registration.worker))
            self._connection = connection
            try:
                await asyncio.wait([connection])
            finally:
                connection.cancel()
                self._connection = None
            if connection.cancelled():
                # A report found the registration lost: register again, then reconnect.
                await self._register(registration.worker)
                continue
            error = connection.exception()
            if isinstance(error, _Unknown):
                await self._register(registration.worker)
                failures = 0
                continue
            if isinstance(error, ApiError):
                raise error
            if isinstance(error, _Received):
                failures = 0
            failures += 1
            log.info("event stream broke (%s); reconnecting", error or "closed by the server")
            await asyncio.sleep(self._backoff.delay(failures))

    async def _stream(self, worker: str) -> None:
        """One connection of the stream; raises `_Received` if it carried any event before it
        ended (so the backoff starts again), `_Unknown` for `404 unknown_worker`.
        """
        request = _wire.events(worker, self._last_event_id)
        timeout = httpx.Timeout(self._timeout, read=max(self._timeout, 60.0))
        received = False
        try:
            async with self._client().stream(
                request.method,
                self.base_url + request.path,
                headers=request.all_headers(self._token),
                timeout=timeout,
            ) as response:
                if response.is_error:
                    await response.aread()
                    if response.status_code == 404:
                        raise _Unknown()
                    if response.status_code in _api.RETRYABLE_STATUS:
                        return
                    raise _api.error(response)
                parser = _api.SseParser()
                async for line in response.aiter_lines():
                    message = parser.feed(line)
                    if message is None:
                        continue
                    received = True
                    self._on_event(worker, message.data)
                    if message.id is not None:
                        self._last_event_id = message.id
        except httpx.HTTPError as error:
            if received:
                raise _Received() from error
            raise
        if received:
            raise _Received()

    def _on_event(self, worker: str, text: str) -> None:
        message = data_of(text)
        if message is None:
            log.warning("ignored an event that is not a message: %s", text[:200])
            return
        kind, assignment = message["type"], message.get("assignment")
        if not isinstance(assignment, str):
            return  # not about an assignment: a later revision's, ignored
        if kind == "start":
            self._start(worker, assignment, text)
            return
        held = self._assignments.get(assignment)
        if held is None:
            return  # an assignment that has ended here already
        if kind == "revoke":
            held.abandon(f"revoked by the server ({message.get('reason', 'no reason given')})")
        else:
            held.ctx._receive(message)

    def _start(self, worker: str, assignment: str, text: str) -> None:
        if assignment in self._assignments:
            return  # sent again after a reconnection
        try:
            start = parse_start(text)
        except ValueError as error:
            log.error("ignored a start event that is not one: %s", error)
            return
        kind = self._kinds.get(start.kind)
        handler = _not_served if kind is None else kind.handler
        self._serial += 1
        held = Assignment(
            worker=worker,
            assignment=assignment,
            start=start,
            handler=handler,
            post=self._post,
            on_unknown_worker=self._lost_registration,
            backoff=self._backoff,
            grace=self._grace,
            serial=self._serial,
        )
        self._assignments[assignment] = held
        log.info("assigned %s: task %s (%s)", assignment, start.task, start.kind)
        run = asyncio.create_task(held.run(), name=f"longrun-{assignment}")
        self._runs.add(run)

        def ended(run: asyncio.Task[None]) -> None:
            self._runs.discard(run)
            if self._assignments.get(assignment) is held:
                del self._assignments[assignment]

        run.add_done_callback(ended)

    # --- the heartbeat -------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        """Every `heartbeat_ms`: "alive", and drop the tasks the server no longer counts ours."""
        while True:
            registration = self._registration
            assert registration is not None
            await asyncio.sleep(registration.heartbeat_ms / 1000)
            # Only assignments received before the request can be missing from its answer.
            serial = self._serial
            try:
                # Bounded by the interval: a heartbeat stuck on a dead connection must not hold
                # back the next one until the worker has expired.
                response = await self._request(
                    _wire.heartbeat(registration.worker),
                    timeout=max(registration.heartbeat_ms / 1000, 1.0),
                )
            except httpx.HTTPError as error:
                log.warning("heartbeat not sent: %s", error)
                continue
            if response.status_code == 404:
                self._lost_registration(registration.worker)
                continue
            if response.is_error:
                log.warning("heartbeat refused: %s", _api.error(response))
                continue
            held = set(_wire.Heartbeat.model_validate_json(response.content).assignments)
            for assignment in list(self._assignments.values()):
                if (
                    assignment.id not in held
                    and assignment.serial <= serial
                    and assignment.worker == registration.worker
                ):
                    assignment.abandon("the server no longer counts it as this worker's")

    # --- plumbing ------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise LongrunError("the worker is not running")
        return self._http

    async def _request(
        self, request: _api.Request, *, timeout: float | None = None
    ) -> httpx.Response:
        return await self._client().request(
            request.method,
            self.base_url + request.path,
            content=request.content(),
            headers=request.all_headers(self._token),
            timeout=self._timeout if timeout is None else timeout,
        )

    async def _post(self, path: str, body: bytes) -> httpx.Response:
        headers = {"user-agent": _api.USER_AGENT, "content-type": "application/json"}
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        return await self._client().post(
            self.base_url + path, content=body, headers=headers, timeout=self._timeout
        )


async def _not_served(ctx: Context, input: Any) -> None:
    """The handler of a kind the server assigned but this worker does not serve (the server
    should not): the task fails rather than waiting forever.
    """
    raise Fail("unknown_kind", f"this worker does not serve the kind `{ctx.kind}`")


class _Unknown(Exception):
    """The stream was refused with `404 unknown_worker`."""


class _Received(Exception):
    """The stream ended after carrying events: the reconnection backoff starts again."""


def _annotation_schema(handler: Handler) -> Mapping[str, Any]:
    """The JSON schema of the handler's `input` annotation (pydantic's)."""
    from pydantic import TypeAdapter

    parameters = list(inspect.signature(handler).parameters.values())
    if len(parameters) < 2:
        raise ValueError("input_schema=True needs a handler whose `input` is annotated")
    annotation = get_type_hints(handler).get(parameters[1].name)
    if annotation is None:
        raise ValueError("input_schema=True needs a handler whose `input` is annotated")
    schema: dict[str, Any] = TypeAdapter(annotation).json_schema()
    return schema
