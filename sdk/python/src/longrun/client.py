"""`Client`: longrun's /v1 HTTP API, blocking (`AsyncClient` is the same with `await`)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import httpx

from longrun import _api, models
from longrun._api import Reconnect, Seconds, TaskRef
from longrun.errors import DisconnectedError

Status = models.Status


class Client:
    """A blocking client of one longrun server.

    `base_url` defaults to `$LONGRUN_SERVER`, then `http://127.0.0.1:7700`; `token` (a bearer
    token) to `$LONGRUN_TOKEN`. `timeout` bounds each request, in seconds, plus whatever `wait`
    the call asks the server to take. Pass `http` to bring your own `httpx.Client` (it is not
    closed by `close()`).

    ```python
    with Client() as client:
        task = client.start("countdown", {"seconds": 3}, session="chat")
        for event in client.watch(task):
            print(event.seq, event.change.type)
    ```
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        reconnect: Reconnect | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = _api.server_url(base_url)
        self._token = _api.bearer(token)
        self._timeout = timeout
        self._reconnect = reconnect or Reconnect()
        self._owns_http = http is None
        self._http = http or httpx.Client()

    def close(self) -> None:
        """Closes the connections (unless the `httpx.Client` was passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- tasks --------------------------------------------------------------------------

    def start(
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
        """Starts a task of `kind` with `input`, and returns it as it stands.

        `session` names the conversation whose inbox gets the outcome of a background task;
        `labels` are for filtering; `ttl` is how long it stays readable after it ends;
        `deadline` its longest life. With `wait`, the server holds the answer up to that long
        for the task to end (it runs on, detached, if it has not). `idempotency_key` is sent as
        the `Idempotency-Key` header, so a retried start does not start a second task (a
        repeat answers with the first task). With `delay`, the handler starts that long from
        now, not before (the task is `submitted` until then, and survives a restart).
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
        return self._call(request, models.Task)

    def get(self, task: TaskRef) -> models.Task:
        """The task as it stands."""
        return self._call(_api.get(task), models.Task)

    def pages(
        self,
        *,
        status: Status | str | Iterable[Status | str] | None = None,
        kind: str | None = None,
        session: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> Iterator[models.TaskPage]:
        """The caller's tasks, newest first, page by page, following each page's `next`.

        Filters combine; `status` may name several statuses (any matches), every label must
        match. `limit` is the page size (the server caps it).
        """
        while True:
            request = _api.list_page(
                status=status, kind=kind, session=session, labels=labels, limit=limit, after=after
            )
            page = self._call(request, models.TaskPage)
            yield page
            if page.next is None:
                return
            after = page.next

    def list(
        self,
        *,
        status: Status | str | Iterable[Status | str] | None = None,
        kind: str | None = None,
        session: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> Iterator[models.Task]:
        """The caller's tasks, newest first, fetched a page at a time (see `pages`)."""
        for page in self.pages(
            status=status, kind=kind, session=session, labels=labels, limit=limit
        ):
            yield from page.tasks

    def cancel(self, task: TaskRef) -> models.Task:
        """Cancels the task, and returns it once it has ended (`ConflictError` if it had)."""
        return self._call(_api.cancel(task), models.Task)

    def answer(self, task: TaskRef, key: str, value: Any) -> models.Task:
        """Answers the question `key` the task asked (or will ask) with `value`, any JSON."""
        return self._call(_api.answer(task, key, value), models.Task)

    def watch(self, task: TaskRef, *, after: int = 0) -> Iterator[models.Event]:
        """The task's events after sequence number `after`, as they happen, to its end.

        A dropped connection is resumed from the last event seen (`Last-Event-ID`), so no event
        is missed or repeated; `DisconnectedError` when the server stays unreachable through
        the client's `Reconnect` budget.
        """
        resume = _api.Resume(after)
        failures = 0
        while not resume.finished:
            request = _api.watch(task, resume.after)
            try:
                with self._stream(request) as response:
                    if response.status_code == 204:
                        return  # the task had ended, and nothing follows `after`
                    if not self._retryable(response):
                        parser = _api.SseParser()
                        for line in response.iter_lines():
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
            time.sleep(self._reconnect.delay(failures))

    def events(
        self, *, kind: str | None = None, session: str | None = None
    ) -> Iterator[models.Event | models.Lagged]:
        """Every event of the caller's tasks as it happens (optionally one kind or session),
        until the server closes the stream. A `Lagged` item stands for events skipped because
        this reader fell behind: re-read the tasks you follow. This stream has no resume.
        """
        with self._stream(_api.events(kind=kind, session=session)) as response:
            if response.is_error:
                response.read()
                raise _api.error(response)
            parser = _api.SseParser()
            for line in response.iter_lines():
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

    def drain(
        self,
        session: str,
        *,
        ack: int | None = None,
        max: int | None = None,
        wait: Seconds | None = None,
    ) -> models.Drained:
        """The oldest unacknowledged items of the session's inbox (outcomes of its background
        tasks, messages its tasks left). They stay until acknowledged: pass the `through` of
        one drain as `ack` to the next (or to `ack`). With `wait`, an empty inbox is waited on
        up to that long.
        """
        return self._call(_api.drain(session, ack=ack, max=max, wait=wait), models.Drained)

    def ack(self, session: str, through: int) -> int:
        """Acknowledges (removes) the session's items up to position `through`; how many."""
        return self.drain(session, ack=through, max=0).acknowledged

    def kinds(self) -> builtins.list[models.Kind]:
        """The kinds the server runs, with their input schemas."""
        return self._call(_api.kinds(), models.KindList).kinds

    def workers(self) -> builtins.list[models.WorkerInfo]:
        """The workers connected to this server node: the caller's own (every one on a
        server without tokens), with the kinds they serve and the tasks they hold.
        """
        return self._call(_api.workers(), models.WorkerList).workers

    def health(self) -> models.Health:
        """`GET /healthz`: whether the server takes requests."""
        return self._call(_api.health(), models.Health)

    # --- plumbing -----------------------------------------------------------------------

    def _call(self, request: _api.Request, model: type[_api.M]) -> _api.M:
        response = self._http.request(
            request.method,
            self.base_url + request.path,
            params=request.params,
            content=request.content(),
            headers=request.all_headers(self._token),
            timeout=self._timeout + request.wait,
        )
        return _api.parse(response, model)

    def _stream(self, request: _api.Request) -> AbstractContextManager[httpx.Response]:
        # Reads wait for the next event, which may be long: only the server's keep-alive
        # comments (every 15 s by default) bound them, so idle reads get four times that.
        timeout = httpx.Timeout(self._timeout, read=max(self._timeout, 60.0))
        return self._http.stream(
            request.method,
            self.base_url + request.path,
            params=request.params,
            headers=request.all_headers(self._token),
            timeout=timeout,
        )

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        """Raises the `ApiError` of an error answer that retrying cannot help; says whether the
        answer is an error worth retrying.
        """
        if not response.is_error:
            return False
        response.read()
        if response.status_code in _api.RETRYABLE_STATUS:
            return True
        raise _api.error(response)
