"""`AsyncClient`: longrun's /v1 HTTP API on asyncio, call for call the same as `Client`."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import httpx

from longrun import _api, models
from longrun._api import Reconnect, Seconds, TaskRef
from longrun.errors import DisconnectedError

Status = models.Status


class AsyncClient:
    """An asyncio client of one longrun server; see `Client` for the arguments.

    ```python
    async with AsyncClient() as client:
        task = await client.start("countdown", {"seconds": 3})
        async for event in client.watch(task):
            print(event.seq, event.change.type)
        async for page in client.pages(status="completed"):
            print(len(page.tasks))
    ```
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        reconnect: Reconnect | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = _api.server_url(base_url)
        self._token = _api.bearer(token)
        self._timeout = timeout
        self._reconnect = reconnect or Reconnect()
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()

    async def aclose(self) -> None:
        """Closes the connections (unless the `httpx.AsyncClient` was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- tasks --------------------------------------------------------------------------

    async def start(
        self,
        kind: str,
        input: Any = None,
        *,
        session: str | None = None,
        labels: Mapping[str, str] | None = None,
        ttl: Seconds | None = None,
        deadline: Seconds | None = None,
        wait: Seconds | None = None,
        idempotency_key: str | None = None,
        delay: Seconds | None = None,
    ) -> models.Task:
        """Starts a task of `kind` with `input`, and returns it as it stands (see
        `Client.start`).
        """
        request = _api.start(
            kind,
            input,
            session=session,
            labels=labels,
            ttl=ttl,
            deadline=deadline,
            wait=wait,
            idempotency_key=idempotency_key,
            delay=delay,
        )
        return await self._call(request, models.Task)

    async def get(self, task: TaskRef) -> models.Task:
        """The task as it stands."""
        return await self._call(_api.get(task), models.Task)

    async def pages(
        self,
        *,
        status: Status | str | Iterable[Status | str] | None = None,
        kind: str | None = None,
        session: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> AsyncIterator[models.TaskPage]:
        """The caller's tasks, newest first, page by page, following each page's `next`."""
        while True:
            request = _api.list_page(
                status=status, kind=kind, session=session, labels=labels, limit=limit, after=after
            )
            page = await self._call(request, models.TaskPage)
            yield page
            if page.next is None:
                return
            after = page.next

    async def list(
        self,
        *,
        status: Status | str | Iterable[Status | str] | None = None,
        kind: str | None = None,
        session: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[models.Task]:
        """The caller's tasks, newest first, fetched a page at a time (see `pages`)."""
        async for page in self.pages(
            status=status, kind=kind, session=session, labels=labels, limit=limit
        ):
            for task in page.tasks:
                yield task

    async def cancel(self, task: TaskRef) -> models.Task:
        """Cancels the task, and returns it once it has ended (`ConflictError` if it had)."""
        return await self._call(_api.cancel(task), models.Task)

    async def answer(self, task: TaskRef, key: str, value: Any) -> models.Task:
        """Answers the question `key` the task asked (or will ask) with `value`, any JSON."""
        return await self._call(_api.answer(task, key, value), models.Task)

    async def watch(self, task: TaskRef, *, after: int = 0) -> AsyncIterator[models.Event]:
        """The task's events after sequence number `after`, as they happen, to its end,
        resumed without gap or repeat after a dropped connection (see `Client.watch`).
        """
        resume = _api.Resume(after)
        failures = 0
        while not resume.finished:
            request = _api.watch(task, resume.after)
            try:
                async with self._stream(request) as response:
                    if response.status_code == 204:
                        return  # the task had ended, and nothing follows `after`
                    if not await self._retryable(response):
                        parser = _api.SseParser()
                        async for line in response.aiter_lines():
                            message = parser.feed(line)
                            if message is None:
                                continue
                            if message.event == "error":
                                raise _api.stream_error(message, response.status_code)
                            event = models.Event.model_validate_json(message.data)
                            failures = 0
                            if resume.accept(event):
                                yield event
                            if resume.finished:
                                return
                cause: Exception | None = None
            except httpx.TransportError as error:
                cause = error
            # The stream broke, or ended before the task did (the server is stopping).
            failures += 1
            if failures > self._reconnect.attempts:
                raise DisconnectedError(
                    f"the event stream of {_api.task_id(task)} broke after seq {resume.after} "
                    f"and could not be resumed in {self._reconnect.attempts} attempts"
                ) from cause
            await asyncio.sleep(self._reconnect.delay(failures))

    async def events(
        self, *, kind: str | None = None, session: str | None = None
    ) -> AsyncIterator[models.Event | models.Lagged]:
        """Every event of the caller's tasks as it happens (see `Client.events`)."""
        async with self._stream(_api.events(kind=kind, session=session)) as response:
            if response.is_error:
                await response.aread()
                raise _api.error(response)
            parser = _api.SseParser()
            async for line in response.aiter_lines():
                message = parser.feed(line)
                if message is None:
                    continue
                if message.event == "error":
                    raise _api.stream_error(message, response.status_code)
                if message.event == "lagged":
                    yield models.Lagged.model_validate_json(message.data)
                else:
                    yield models.Event.model_validate_json(message.data)

    # --- the inbox and the rest ---------------------------------------------------------

    async def drain(
        self,
        session: str,
        *,
        ack: int | None = None,
        max: int | None = None,
        wait: Seconds | None = None,
    ) -> models.Drained:
        """The oldest unacknowledged items of the session's inbox (see `Client.drain`)."""
        return await self._call(_api.drain(session, ack=ack, max=max, wait=wait), models.Drained)

    async def ack(self, session: str, through: int) -> int:
        """Acknowledges (removes) the session's items up to position `through`; how many."""
        return (await self.drain(session, ack=through, max=0)).acknowledged

    async def kinds(self) -> builtins.list[models.Kind]:
        """The kinds the server runs, with their input schemas."""
        return (await self._call(_api.kinds(), models.KindList)).kinds

    async def workers(self) -> builtins.list[models.WorkerInfo]:
        """The workers connected to this server node (see `Client.workers`)."""
        return (await self._call(_api.workers(), models.WorkerList)).workers

    async def health(self) -> models.Health:
        """`GET /healthz`: whether the server takes requests."""
        return await self._call(_api.health(), models.Health)

    # --- plumbing -----------------------------------------------------------------------

    async def _call(self, request: _api.Request, model: type[_api.M]) -> _api.M:
        response = await self._http.request(
            request.method,
            self.base_url + request.path,
            params=request.params,
            content=request.content(),
            headers=request.all_headers(self._token),
            timeout=self._timeout + request.wait,
        )
        return _api.parse(response, model)

    def _stream(self, request: _api.Request) -> AbstractAsyncContextManager[httpx.Response]:
        # As in `Client._stream`: idle reads are bounded by the server's keep-alives only.
        timeout = httpx.Timeout(self._timeout, read=max(self._timeout, 60.0))
        return self._http.stream(
            request.method,
            self.base_url + request.path,
            params=request.params,
            headers=request.all_headers(self._token),
            timeout=timeout,
        )

    @staticmethod
    async def _retryable(response: httpx.Response) -> bool:
        """As `Client._retryable`."""
        if not response.is_error:
            return False
        await response.aread()
        if response.status_code in _api.RETRYABLE_STATUS:
            return True
        raise _api.error(response)
