"""`longrun.Worker` against a fake server (`fake_hub.py`): the parts of the worker protocol a
real server does not do on demand: a broken stream resumed with `Last-Event-ID`, a fenced
report, a revocation, a lost registration, a heartbeat that no longer lists a task, and the
order of reports. The real server's tests are in `test_worker.py`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from longrun import AssignmentGone, Cancelled, Context, Reconnect, Worker
from tests.fake_hub import FakeHub


class Job(BaseModel):
    n: int


@pytest.fixture
async def hub() -> FakeHub:
    return FakeHub()


def make_worker(hub: FakeHub, **options: Any) -> Worker:
    fast = Reconnect(initial=0.01, maximum=0.05)
    return Worker("http://hub.test", http=hub.client(), name="w", backoff=fast, **options)


async def running(worker: Worker) -> asyncio.Task[None]:
    task = asyncio.create_task(worker.run())
    for _ in range(200):
        if worker.id is not None:
            return task
        await asyncio.sleep(0.01)
    raise AssertionError("the worker did not register")


async def stopped(worker: Worker, task: asyncio.Task[None]) -> None:
    worker.stop(drain=False)
    await asyncio.wait_for(task, 10)


async def test_registration_reports_in_order_and_the_context(hub: FakeHub) -> None:
    worker = make_worker(hub, capacity=3)
    calls: list[str] = []

    def counted(name: str, value: int) -> int:
        calls.append(name)
        return value

    @worker.kind("job", input_schema=True)
    async def job(ctx: Context, job: Job) -> dict[str, int]:
        await ctx.progress(10, "starting")
        first = await ctx.step("first", lambda: counted("first", job.n))
        second = await ctx.step("second", lambda: counted("second", first + 1))
        answer = await ctx.ask("ok", "Go on?")
        await ctx.artifact("out", [f"{second}"], name="Out")
        await ctx.notify_agent("nearly there")
        return {"sum": second, "answer": answer}

    task = await running(worker)
    [registration] = hub.registrations
    assert registration["name"] == "w"
    assert registration["capacity"] == 3
    assert registration["kinds"][0]["name"] == "job"
    assert registration["kinds"][0]["input_schema"]["required"] == ["n"]

    await hub.wait_for(lambda: len(hub.paths("GET")) == 1)
    # A re-run: the step `first` was saved by an earlier worker and is not run again.
    await hub.start("asg_1", {"n": 4}, steps={"first": 40})
    await hub.wait_for(lambda: "ask" in hub.types("asg_1"))
    await hub.push({"type": "answer", "assignment": "asg_1", "key": "ok", "value": True})
    await hub.wait_for(lambda: "complete" in hub.types("asg_1"))
    assert hub.types("asg_1") == ["progress", "step", "ask", "artifact", "message", "complete"]
    assert calls == ["second"]
    assert hub.reports["asg_1"][-1]["output"] == {"sum": 41, "answer": True}
    await hub.wait_for(lambda: worker.running == 0)
    await stopped(worker, task)


async def test_an_input_that_does_not_fit_fails_invalid_input(hub: FakeHub) -> None:
    worker = make_worker(hub)

    @worker.kind("job")
    async def job(ctx: Context, job: Job) -> int:
        return job.n

    task = await running(worker)
    await hub.start("asg_1", {"n": "many"})
    await hub.wait_for(lambda: "fail" in hub.types("asg_1"))
    assert hub.reports["asg_1"][0]["code"] == "invalid_input"
    await stopped(worker, task)


async def test_the_stream_resumes_after_the_last_event_seen(hub: FakeHub) -> None:
    worker = make_worker(hub)

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> Any:
        return await ctx.ask("q", "?")

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: "ask" in hub.types("asg_1"))
    hub.break_streams()
    await hub.wait_for(lambda: len(hub.paths("GET")) == 2)
    resumed = [headers for method, _, headers in hub.requests if method == "GET"][-1]
    assert resumed["last-event-id"] == "1"
    await hub.push({"type": "answer", "assignment": "asg_1", "key": "q", "value": 7})
    await hub.wait_for(lambda: "complete" in hub.types("asg_1"))
    assert hub.reports["asg_1"][-1]["output"] == 7
    await stopped(worker, task)


async def test_a_fenced_report_stops_the_handler_and_nothing_more_is_sent(hub: FakeHub) -> None:
    worker = make_worker(hub)
    seen: list[BaseException] = []

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> None:
        try:
            await ctx.progress(1)
        except AssignmentGone as gone:
            seen.append(gone)
            await asyncio.sleep(60)  # cancelled at once: the handler is stopped

    task = await running(worker)
    hub.refusals["asg_1"] = (409, "assignment_gone")
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: bool(seen) and worker.running == 0)
    assert hub.types("asg_1") == []
    posted = [path for path in hub.paths("POST") if "asg_1" in path]
    assert len(posted) == 1, "only the fenced report was sent"
    await stopped(worker, task)


async def test_a_revocation_cancels_the_handler_without_a_report(hub: FakeHub) -> None:
    worker = make_worker(hub)
    cancelled = asyncio.Event()

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: worker.running == 1)
    await hub.push({"type": "revoke", "assignment": "asg_1", "reason": "lost"})
    await asyncio.wait_for(cancelled.wait(), 10)
    await hub.wait_for(lambda: worker.running == 0)
    assert hub.types("asg_1") == []
    await stopped(worker, task)


async def test_a_cancel_sets_the_event_then_cancels_after_the_grace(hub: FakeHub) -> None:
    worker = make_worker(hub, capacity=2, grace=0.1)

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> None:
        if input == "polite":
            await ctx.cancelled.wait()
            raise Cancelled("stopped on request")
        await asyncio.sleep(60)  # ignores the event: cancelled after the grace

    task = await running(worker)
    await hub.start("asg_1", "polite")
    await hub.start("asg_2", "deaf")
    await hub.wait_for(lambda: worker.running == 2)
    await hub.push({"type": "cancel", "assignment": "asg_1"})
    await hub.push({"type": "cancel", "assignment": "asg_2"})
    await hub.wait_for(lambda: "cancelled" in hub.types("asg_1") + hub.types("asg_2"))
    await hub.wait_for(lambda: hub.types("asg_2") == ["cancelled"])
    assert hub.reports["asg_1"] == [{"type": "cancelled", "message": "stopped on request"}]
    await stopped(worker, task)


async def test_a_lost_registration_registers_again(hub: FakeHub) -> None:
    worker = make_worker(hub)

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> None:
        await asyncio.sleep(60)

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: worker.running == 1)
    hub.unknown.add("wkr_1")  # the server forgot the worker, and so its assignments
    await hub.wait_for(lambda: len(hub.registrations) == 2 and worker.running == 0)
    await hub.wait_for(lambda: "/v1/workers/wkr_2/events" in hub.paths("GET"))
    assert worker.id == "wkr_2"
    await stopped(worker, task)


async def test_a_task_missing_from_the_heartbeat_is_dropped(hub: FakeHub) -> None:
    worker = make_worker(hub)

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> None:
        await asyncio.sleep(60)

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: worker.running == 1)
    hub.held.discard("asg_1")  # revoked while the stream was down: only the heartbeat tells
    await hub.wait_for(lambda: worker.running == 0)
    assert hub.types("asg_1") == []
    await stopped(worker, task)


async def test_a_graceful_stop_drains_finishes_then_leaves(hub: FakeHub) -> None:
    worker = make_worker(hub)
    go_on = asyncio.Event()

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> str:
        await go_on.wait()
        return "done"

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: worker.running == 1)
    worker.stop()
    await hub.wait_for(lambda: "/v1/workers/wkr_1/drain" in hub.paths("POST"))
    assert not task.done()
    go_on.set()
    await asyncio.wait_for(task, 10)
    assert hub.types("asg_1") == ["complete"]
    assert hub.paths("DELETE") == ["/v1/workers/wkr_1"]


async def test_a_second_stop_hands_the_tasks_back(hub: FakeHub) -> None:
    worker = make_worker(hub, drain_timeout=60)

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> None:
        await asyncio.sleep(60)

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: worker.running == 1)
    worker.stop()
    await hub.wait_for(lambda: "/v1/workers/wkr_1/drain" in hub.paths("POST"))
    worker.stop()
    await asyncio.wait_for(task, 10)
    assert hub.types("asg_1") == []
    assert hub.paths("DELETE") == ["/v1/workers/wkr_1"]


async def test_a_worker_without_kinds_is_refused() -> None:
    with pytest.raises(Exception, match="serves no kind"):
        await Worker("http://hub.test").run()


async def test_a_stop_ends_the_wait_for_an_unreachable_server() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(unreachable))
    worker = Worker("http://nowhere.test", http=http, backoff=Reconnect(initial=0.01))

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> None:
        return None

    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.1)
    assert not task.done()
    worker.stop()
    await asyncio.wait_for(task, 10)
    assert worker.id is None


async def test_reports_of_one_assignment_go_one_at_a_time_in_order(hub: FakeHub) -> None:
    worker = make_worker(hub)
    hub.report_delay = 0.01

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> str:
        # Sent concurrently by the handler, received one at a time in the order sent.
        await asyncio.gather(*(ctx.progress(i, f"p{i}") for i in range(10)))
        return "done"

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: "complete" in hub.types("asg_1"))
    assert [report.get("percent") for report in hub.reports["asg_1"][:10]] == list(range(10))
    assert hub.most_in_flight == 1
    await stopped(worker, task)


async def test_a_report_answered_503_is_sent_again(hub: FakeHub) -> None:
    worker = make_worker(hub)
    hub.busy["asg_1"] = 3

    @worker.kind("job")
    async def job(ctx: Context, input: Any) -> str:
        await ctx.progress(50)
        return "done"

    task = await running(worker)
    await hub.start("asg_1", None)
    await hub.wait_for(lambda: "complete" in hub.types("asg_1"))
    assert hub.types("asg_1") == ["progress", "complete"]
    await stopped(worker, task)


async def test_an_assignment_of_a_kind_not_served_here_fails(hub: FakeHub) -> None:
    worker = make_worker(hub)

    @worker.kind("other")
    async def other(ctx: Context, input: Any) -> None:
        return None

    task = await running(worker)
    await hub.start("asg_1", None)  # of kind `job`
    await hub.wait_for(lambda: "fail" in hub.types("asg_1"))
    assert hub.reports["asg_1"][0]["code"] == "unknown_kind"
    await stopped(worker, task)
