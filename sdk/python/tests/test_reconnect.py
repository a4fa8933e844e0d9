"""`watch` over a connection that breaks, against a scripted server (httpx's mock transport):
it resumes from the last event seen, drops what it has seen already, and gives up with
`DisconnectedError` when the server stays away.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from longrun import AsyncClient, Client, DisconnectedError, NotFoundError, Reconnect


def sse(seq: int, status: str = "working") -> bytes:
    event = {"task": "task_r", "seq": seq, "at_ms": seq, "status": status}
    event["change"] = {"type": "ended"} if status == "completed" else {"type": "detached"}
    return f"id: {seq}\ndata: {json.dumps(event)}\n\n".encode()


class Breaking(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that sends `chunks`, then breaks the connection if `breaks`."""

    def __init__(self, chunks: list[bytes], breaks: bool) -> None:
        self.chunks = chunks
        self.breaks = breaks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.breaks:
            raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.breaks:
            raise httpx.ReadError("connection reset")


def flaky_server(asked_after: list[str]) -> Callable[[httpx.Request], httpx.Response]:
    """Sends 1 and 2 then breaks; then refuses one connection; then sends 2 (again), 3 and the
    end. Records each request's `Last-Event-ID`.
    """

    def handle(request: httpx.Request) -> httpx.Response:
        asked_after.append(request.headers["last-event-id"])
        headers = {"content-type": "text/event-stream"}
        if len(asked_after) == 1:
            return httpx.Response(200, headers=headers, stream=Breaking([sse(1), sse(2)], True))
        if len(asked_after) == 2:
            raise httpx.ConnectError("connection refused")
        body = [b": keep-alive\n\n", sse(2), sse(3), sse(4, "completed")]
        return httpx.Response(200, headers=headers, stream=Breaking(body, False))

    return handle


FAST = Reconnect(attempts=3, initial=0, maximum=0)


def test_watch_resumes_without_gap_or_repeat() -> None:
    asked_after: list[str] = []
    http = httpx.Client(transport=httpx.MockTransport(flaky_server(asked_after)))
    with Client("http://longrun.test", http=http, reconnect=FAST) as client:
        seqs = [event.seq for event in client.watch("task_r")]
    assert seqs == [1, 2, 3, 4]
    assert asked_after == ["0", "2", "2"]


async def test_async_watch_resumes_without_gap_or_repeat() -> None:
    asked_after: list[str] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(flaky_server(asked_after)))
    async with AsyncClient("http://longrun.test", http=http, reconnect=FAST) as client:
        seqs = [event.seq async for event in client.watch("task_r")]
    assert seqs == [1, 2, 3, 4]
    assert asked_after == ["0", "2", "2"]


def test_watch_gives_up_when_the_server_stays_away() -> None:
    tries = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal tries
        tries += 1
        if tries == 1:
            stream = Breaking([sse(1)], True)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
        raise httpx.ConnectError("connection refused")

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    seen: list[int] = []

    def watch_all() -> None:
        for event in client.watch("task_r"):
            seen.append(event.seq)

    client = Client("http://longrun.test", http=http, reconnect=FAST)
    with pytest.raises(DisconnectedError, match="after seq 1") as error:
        watch_all()
    assert seen == [1]
    assert tries == 1 + FAST.attempts  # the first stream, then every reconnection
    assert isinstance(error.value.__cause__, httpx.ConnectError)


def test_watch_retries_a_restarting_server_but_not_a_refusal() -> None:
    answers = iter(
        [
            httpx.Response(503, json={"error": {"code": "shutting_down", "message": "bye"}}),
            httpx.Response(404, json={"error": {"code": "not_found", "message": "gone"}}),
        ]
    )
    http = httpx.Client(transport=httpx.MockTransport(lambda request: next(answers)))
    with (
        Client("http://longrun.test", http=http, reconnect=FAST) as client,
        pytest.raises(NotFoundError, match="gone") as error,
    ):
        list(client.watch("task_r"))
    assert error.value.code == "not_found"
