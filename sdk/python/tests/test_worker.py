"""`longrun.Worker` against a real `longrun serve` (the worker kinds `w_*` of
`server/longrun.toml`): a task with progress, an artifact, steps, a question answered from the
client and a cancel; a worker killed with SIGKILL mid-task whose task is re-run on a second
worker from its last step; a silent worker's late report refused (the fence); capacity; and a
SIGTERM that drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from longrun import AsyncClient, Cancelled, Context, Reconnect, Status, Worker
from longrun.models import ArtifactChange, StepSavedChange
from tests.conftest import ALICE, HERE, Server

STEPS_WORKER = HERE / "workers" / "steps.py"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_worker(server: Server, **options: Any) -> Worker:
    fast = Reconnect(initial=0.05, maximum=0.5)
    return Worker(server.url, token=ALICE, backoff=fast, **options)


@pytest.fixture
async def serving() -> AsyncIterator[list[tuple[Worker, asyncio.Task[None]]]]:
    """Workers a test runs in this process: stopped at once (tasks handed back) at its end."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []
    yield running
    for worker, _ in running:
        worker.stop(drain=False)
    for _, task in running:
        await asyncio.wait_for(task, 30)


async def run(worker: Worker, serving: list[tuple[Worker, asyncio.Task[None]]]) -> Worker:
    """Starts `worker` in this event loop; returns once it is registered."""
    task = asyncio.create_task(worker.run())
    serving.append((worker, task))
    for _ in range(300):
        if worker.id is not None:
            return worker
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    raise AssertionError("the worker did not register")


async def until(predicate: Any, what: str, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --- a task's whole life on a worker ----------------------------------------------------------


class Flow(BaseModel):
    mode: str
    topic: str = "tides"


async def test_progress_artifact_steps_question_and_cancel(
    server: Server, aclient: AsyncClient, serving: list[tuple[Worker, asyncio.Task[None]]]
) -> None:
    worker = make_worker(server, name="flow", capacity=4, grace=0.3)
    saw_cancel: list[str] = []
    fetched: list[str] = []

    def search(topic: str) -> list[str]:
        fetched.append(topic)
        return ["a", "b"]

    @worker.kind("w_flow")
    async def flow(ctx: Context, job: Flow) -> dict[str, Any]:
        if job.mode == "polite":
            await ctx.progress(None, "waiting to be cancelled")
            await ctx.cancelled.wait()
            saw_cancel.append(ctx.task)
            raise Cancelled("stopped on request")
        if job.mode == "deaf":
            await ctx.progress(None, "ignoring cancellation")
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                saw_cancel.append(ctx.task)
                raise
        await ctx.progress(10, "searching")
        sources = await ctx.step("search", lambda: search(job.topic))
        await ctx.artifact("sources", sources, name="Sources")
        approved = await ctx.ask("go_on", {"type": "boolean", "message": "Go on?"})
        await ctx.sleep("pause", 0.05)
        await ctx.progress(100, "done")
        return {"topic": job.topic, "sources": sources, "approved": approved}

    await run(worker, serving)
    session = unique("flow")
    task = await aclient.start("w_flow", {"mode": "full"}, session=session)
    async for event in aclient.watch(task):
        if event.change.type == "input_requested":
            await aclient.answer(task, "go_on", True)
            break
    ended = await wait_for_end(aclient, task.id)
    events = [event async for event in aclient.watch(task)]
    assert ended.status is Status.COMPLETED, ended
    assert ended.output == {"topic": "tides", "sources": ["a", "b"], "approved": True}
    assert ended.progress is not None
    assert ended.progress.percent == 100
    assert [artifact.id for artifact in ended.artifacts] == ["sources"]
    assert any(isinstance(event.change, ArtifactChange) for event in events)
    assert fetched == ["tides"]

    # Every event, from the start: the step and the sleep were saved.
    history = [event.change async for event in aclient.watch(task, after=0)]
    saved = {change.key for change in history if isinstance(change, StepSavedChange)}
    assert "search" in saved

    polite = await aclient.start("w_flow", {"mode": "polite"})
    deaf = await aclient.start("w_flow", {"mode": "deaf"})
    for started in (polite, deaf):
        async for event in aclient.watch(started):
            if event.change.type == "progress":
                break
    assert (await aclient.cancel(polite)).status is Status.CANCELLED
    assert (await aclient.cancel(deaf)).status is Status.CANCELLED
    await until(lambda: {polite.id, deaf.id} <= set(saw_cancel), "both handlers to stop")
    await until(lambda: worker.running == 0, "the worker to be idle")


# --- a worker killed mid-task --------------------------------------------------------------


class Process:
    """A worker running `tests/workers/steps.py` in its own process."""

    def __init__(self, server: Server, name: str, kind: str, record: Path) -> None:
        env = dict(os.environ, LONGRUN_SERVER=server.url, LONGRUN_TOKEN=ALICE, WORKER_NAME=name)
        self.log = record.with_suffix(f".{name}.log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(STEPS_WORKER), kind, str(record)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text()

    async def says(self, text: str, timeout: float = 20) -> None:
        await until(lambda: text in self.output(), f"the worker to log {text!r}", timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


async def test_a_killed_workers_task_is_rerun_on_another_from_its_last_step(
    server: Server, aclient: AsyncClient, processes: list[Process], tmp_path: Path
) -> None:
    record = tmp_path / "steps"
    first = Process(server, "first", "w_rescue", record)
    processes.append(first)
    await first.says("registered as")
    task = await aclient.start("w_rescue", {"hang": True})
    async for event in aclient.watch(task):
        if event.change.type == "progress":
            break
    assert record.read_text().splitlines() == ["first one", "first two"]

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    second = Process(server, "second", "w_rescue", record)
    processes.append(second)

    ended = await wait_for_end(aclient, task.id)
    assert ended.status is Status.COMPLETED, ended.error
    assert ended.output is not None
    assert ended.output["finished_by"] == "second"
    assert ended.output["sum"] == 6
    # The steps saved by the first worker were not run again.
    assert record.read_text().splitlines() == ["first one", "first two", "second three"]


async def wait_for_end(client: AsyncClient, task: str) -> Any:
    async for _ in client.watch(task):
        pass
    return await client.get(task)


# --- the fence ------------------------------------------------------------------------------


async def test_a_report_after_the_assignment_was_taken_away_is_refused(
    server: Server, aclient: AsyncClient
) -> None:
    """A worker that is alive but late: the task was cancelled, the kind's cancel grace ran out
    without an outcome, the task ended and the assignment was revoked. Its report is fenced.
    """
    async with raw_worker(server, "w_grace") as (http, worker):
        task = await aclient.start("w_grace", {})
        start = await first_start(http, worker)
        report = f"/v1/workers/{worker}/assignments/{start['assignment']}/reports"
        accepted = await http.post(report, json={"type": "progress", "percent": 5})
        assert accepted.status_code == 204, accepted.text
        ended = await aclient.cancel(task)  # returns once the grace ran out
        assert ended.status is Status.CANCELLED
        late = await http.post(report, json={"type": "complete", "output": "too late"})
        assert late.status_code == 409, late.text
        assert late.json()["error"]["code"] == "assignment_gone"
        assert (await aclient.get(task)).status is Status.CANCELLED


async def test_a_revocation_stops_a_handler_that_outlives_the_cancel_grace(
    server: Server, aclient: AsyncClient, serving: list[tuple[Worker, asyncio.Task[None]]]
) -> None:
    # The worker's own grace is longer than the kind's (300 ms): the server gives up first,
    # ends the task and revokes the assignment, which stops the handler.
    worker = make_worker(server, name="stubborn", grace=60)
    stopped: list[str] = []

    @worker.kind("w_grace")
    async def stubborn(ctx: Context, input: Any) -> None:
        await ctx.progress(None, "not listening")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.append(ctx.task)
            raise

    await run(worker, serving)
    task = await aclient.start("w_grace", {})
    async for event in aclient.watch(task):
        if event.change.type == "progress":
            break
    assert (await aclient.cancel(task)).status is Status.CANCELLED
    await until(lambda: stopped == [task.id], "the handler to be stopped")
    await until(lambda: worker.running == 0, "the worker to be idle")


async def test_a_lost_workers_task_goes_to_another_and_its_late_report_is_refused(
    server: Server, aclient: AsyncClient, serving: list[tuple[Worker, asyncio.Task[None]]]
) -> None:
    async with raw_worker(server, "w_fence", heartbeat=False) as (http, silent):
        task = await aclient.start("w_fence", {"n": 1})
        start = await first_start(http, silent)
        assert start["task"] == task.id
        report = f"/v1/workers/{silent}/assignments/{start['assignment']}/reports"
        accepted = await http.post(report, json={"type": "progress", "percent": 5})
        assert accepted.status_code == 204, accepted.text

        # No heartbeat: after expiry_ms the worker is lost, and its task goes to another.
        worker = make_worker(server, name="rescuer")

        @worker.kind("w_fence")
        async def fence(ctx: Context, input: Any) -> str:
            return "rescued"

        await run(worker, serving)
        ended = await wait_for_end(aclient, task.id)
        assert ended.status is Status.COMPLETED
        assert ended.output == "rescued"

        late = await http.post(report, json={"type": "complete", "output": "too late"})
        # Refused either way; the spec says `409 assignment_gone` for a lost worker's late
        # report in one place and `404 unknown_worker` for an expired worker in another.
        assert (late.status_code, late.json()["error"]["code"]) in (
            (409, "assignment_gone"),
            (404, "unknown_worker"),
        ), late.text
        assert (await aclient.get(task)).output == "rescued"


@contextlib.asynccontextmanager
async def raw_worker(
    server: Server, kind: str, *, heartbeat: bool = True
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A worker spoken by hand (the fence is what the SDK's worker never lets happen)."""
    headers = {"authorization": f"Bearer {ALICE}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        body = {"name": f"raw-{kind}", "capacity": 1, "kinds": [{"name": kind}]}
        registered = await http.post("/v1/workers", json=body)
        assert registered.status_code == 201, registered.text
        worker: str = registered.json()["worker"]
        interval = registered.json()["heartbeat_ms"] / 1000

        async def beat() -> None:
            while True:
                await http.post(f"/v1/workers/{worker}/heartbeat")
                await asyncio.sleep(interval)

        beating = asyncio.create_task(beat()) if heartbeat else None
        try:
            yield http, worker
        finally:
            if beating is not None:
                beating.cancel()
            await http.delete(f"/v1/workers/{worker}")


async def first_start(http: httpx.AsyncClient, worker: str) -> dict[str, Any]:
    """The first `start` event on the worker's stream."""
    async with http.stream("GET", f"/v1/workers/{worker}/events") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data: dict[str, Any] = json.loads(line.removeprefix("data:"))
                if data["type"] == "start":
                    return data
    raise AssertionError("the stream ended without an assignment")


# --- capacity -------------------------------------------------------------------------------


async def test_a_worker_at_capacity_gets_no_more_tasks(
    server: Server, aclient: AsyncClient, serving: list[tuple[Worker, asyncio.Task[None]]]
) -> None:
    worker = make_worker(server, name="busy", capacity=2)
    release = asyncio.Event()
    started: list[str] = []

    @worker.kind("w_capacity")
    async def hold(ctx: Context, input: Any) -> str:
        started.append(ctx.task)
        await release.wait()
        return ctx.task

    await run(worker, serving)
    tasks = [await aclient.start("w_capacity", {"i": i}) for i in range(3)]
    await until(lambda: len(started) == 2, "two tasks to start")
    # The third waits for room. Whatever the server's timing, a third assignment would have
    # come with the first two; a heartbeat's round trip later it still has not.
    await asyncio.sleep(1.0)
    assert len(started) == 2
    assert worker.running == 2
    waiting = [task for task in tasks if task.id not in started]
    assert len(waiting) == 1
    # It waits for a worker unstarted: no attempt has begun.
    assert (await aclient.get(waiting[0])).status is Status.SUBMITTED
    [listed] = [info for info in await aclient.workers() if info.id == worker.id]
    assert (listed.name, listed.capacity, listed.kinds) == ("busy", 2, ["w_capacity"])
    assert sorted(listed.tasks) == sorted(started)

    release.set()
    for task in tasks:
        ended = await wait_for_end(aclient, task.id)
        assert ended.status is Status.COMPLETED
    assert sorted(started) == sorted(task.id for task in tasks)


# --- SIGTERM --------------------------------------------------------------------------------


async def test_sigterm_drains_finishes_the_task_then_leaves(
    server: Server, aclient: AsyncClient, processes: list[Process], tmp_path: Path
) -> None:
    record = tmp_path / "steps"
    worker = Process(server, "drainer", "w_drain", record)
    processes.append(worker)
    await worker.says("registered as")
    task = await aclient.start("w_drain", {"sleep": 1.0})
    async for event in aclient.watch(task):
        if event.change.type == "progress":
            break
    worker.process.send_signal(signal.SIGTERM)
    await worker.says("draining")
    late = await aclient.start("w_drain", {})

    ended = await wait_for_end(aclient, task.id)
    assert ended.status is Status.COMPLETED, ended
    assert ended.output is not None
    assert ended.output["finished_by"] == "drainer"
    assert await asyncio.to_thread(worker.process.wait, 30) == 0
    # The task started after the drain was never the draining worker's.
    assert (await aclient.get(late)).status is Status.SUBMITTED
    assert record.read_text().splitlines() == ["drainer one", "drainer two", "drainer three"]
    await aclient.cancel(late)


# --- a server restart -----------------------------------------------------------------------


async def test_a_worker_reconnects_and_registers_again_after_a_server_restart(
    server: Server, aclient: AsyncClient, serving: list[tuple[Worker, asyncio.Task[None]]]
) -> None:
    worker = make_worker(server, name="survivor")

    @worker.kind("w_agent")
    async def echo(ctx: Context, input: dict[str, str]) -> str:
        return input["topic"]

    await run(worker, serving)
    before = worker.id
    assert (await aclient.start("w_agent", {"topic": "before"}, wait=30)).output == "before"

    # The new server knows no worker: the stream breaks, reconnections back off until the
    # server is up, and a `404 unknown_worker` makes the worker register again.
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    await until(lambda: worker.id != before, "the worker to register again", timeout=30)
    done = await aclient.start("w_agent", {"topic": "after"}, wait=30)
    assert done.status is Status.COMPLETED
    assert done.output == "after"
