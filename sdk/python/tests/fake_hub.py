"""A fake of the server's side of the worker protocol, as an `httpx.MockTransport`: enough to
test what `longrun.Worker` does when the stream breaks, a report is fenced, an assignment is
revoked or the registration is lost, none of which a real server does on demand.

Events are pushed with `push`; every request is recorded; `refuse` makes the next reports of an
assignment answer an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx


class FakeHub:
    def __init__(self) -> None:
        self.registrations: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.reports: dict[str, list[dict[str, Any]]] = {}
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.refusals: dict[str, tuple[int, str]] = {}
        self.unknown: set[str] = set()
        """Worker ids answered `404 unknown_worker` (forgotten, as after a server restart)."""
        self.held: set[str] = set()
        self.in_flight: dict[str, int] = {}
        self.most_in_flight = 0
        """The most reports of one assignment the server was handling at once."""
        self.report_delay = 0.0
        self.busy: dict[str, int] = {}
        """Per assignment, how many more reports to answer `503` before accepting them."""
        self.changed = asyncio.Condition()
        self._streams: list[asyncio.Queue[bytes | None]] = []
        self._next_id = 0

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    # --- what a test does ------------------------------------------------------------------

    async def push(self, data: dict[str, Any]) -> None:
        """Sends an event on the open stream (and keeps it for a resume)."""
        self._next_id += 1
        self.events.append((self._next_id, data))
        if data["type"] == "start":
            self.held.add(data["assignment"])
        if data["type"] == "revoke":
            self.held.discard(data["assignment"])
        frame = f"id: {self._next_id}\nevent: {data['type']}\ndata: {json.dumps(data)}\n\n"
        for stream in self._streams:
            stream.put_nowait(frame.encode())

    async def start(self, assignment: str, input: Any, steps: dict[str, Any] | None = None) -> None:
        await self.push(
            {
                "type": "start",
                "assignment": assignment,
                "protocol": 2,
                "task": f"task_{assignment}",
                "kind": "job",
                "attempt": 1,
                "steps": steps or {},
                "input": input,
            }
        )

    def break_streams(self) -> None:
        for stream in self._streams:
            stream.put_nowait(None)
        self._streams.clear()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Waits until `predicate` holds (it is checked after every request)."""

        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    def types(self, assignment: str) -> list[str]:
        return [report["type"] for report in self.reports.get(assignment, [])]

    def paths(self, method: str) -> list[str]:
        return [path for m, path, _ in self.requests if m == method]

    # --- the server's side -----------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append((request.method, path, dict(request.headers)))
        async with self.changed:
            self.changed.notify_all()
        parts = path.strip("/").split("/")
        if request.method == "POST" and path == "/v1/workers":
            body = json.loads(request.content)
            self.registrations.append(body)
            worker = f"wkr_{len(self.registrations)}"
            answer = {"worker": worker, "heartbeat_ms": 50, "expiry_ms": 300, "protocol": 2}
            return httpx.Response(201, json=answer)
        worker = parts[2]
        if worker in self.unknown:
            return _error(404, "unknown_worker")
        if parts[3:] == ["events"]:
            return self._stream(request)
        if parts[3:] == ["heartbeat"]:
            return httpx.Response(200, json={"assignments": sorted(self.held), "draining": False})
        if len(parts) == 6 and parts[5] == "reports":
            return await self._report(parts[4], json.loads(request.content))
        if parts[3:] == ["drain"] or (request.method == "DELETE" and len(parts) == 3):
            return httpx.Response(204)
        return _error(404, "not_found")

    def _stream(self, request: httpx.Request) -> httpx.Response:
        after = int(request.headers.get("last-event-id", "0"))
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        for seq, data in self.events:
            if seq > after:
                frame = f"id: {seq}\nevent: {data['type']}\ndata: {json.dumps(data)}\n\n"
                queue.put_nowait(frame.encode())
        self._streams.append(queue)

        async def body() -> AsyncIterator[bytes]:
            yield b": hello\n\n"
            while (chunk := await queue.get()) is not None:
                yield chunk

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    async def _report(self, assignment: str, report: dict[str, Any]) -> httpx.Response:
        if self.busy.get(assignment, 0) > 0:
            self.busy[assignment] -= 1
            return _error(503, "unavailable")
        self.in_flight[assignment] = self.in_flight.get(assignment, 0) + 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight[assignment])
        try:
            await asyncio.sleep(self.report_delay)
            return await self._record(assignment, report)
        finally:
            self.in_flight[assignment] -= 1

    async def _record(self, assignment: str, report: dict[str, Any]) -> httpx.Response:
        refusal = self.refusals.get(assignment)
        if refusal is not None or assignment not in self.held:
            status, code = refusal or (409, "assignment_gone")
            return _error(status, code)
        self.reports.setdefault(assignment, []).append(report)
        if report["type"] in ("complete", "fail", "cancelled"):
            self.held.discard(assignment)
        async with self.changed:
            self.changed.notify_all()
        return httpx.Response(204)


def _error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": f"fake: {code}"}})
