"""`longrun.process`: the process-handler protocol, versions 1 and 2, against a fake runtime
(the lines a runtime would write to stdin, and what the handler writes to stdout).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from longrun.process import Cancelled, Context, Fail, Handler, ProtocolError, Unanswered, serve


class FakeRuntime:
    """The runtime's side of the pipes."""

    def __init__(self) -> None:
        self.stdin: asyncio.Queue[str | None] = asyncio.Queue()
        self.stdout: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.exit: asyncio.Task[int] | None = None

    def start(
        self,
        handler: Handler,
        input: Any = None,
        *,
        protocol: int = 1,
        steps: dict[str, Any] | None = None,
        grace: float = 60,
    ) -> None:
        start: dict[str, Any] = {"type": "start", "protocol": protocol, "task": "task_1"}
        start |= {"kind": "k", "attempt": 1}
        if steps is not None:
            start["steps"] = steps
        start["input"] = input
        self.send(start)
        self.exit = asyncio.create_task(
            serve(
                handler,
                self.stdin,
                lambda line: self.stdout.put_nowait(json.loads(line)),
                grace=grace,
            )
        )

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.put_nowait(json.dumps(message))

    async def read(self) -> dict[str, Any]:
        return await self.stdout.get()

    async def outcome(self) -> dict[str, Any]:
        """Every line up to the outcome; returns the outcome, checks the exit status."""
        while True:
            line = await self.read()
            if line["type"] in ("complete", "fail", "cancelled"):
                assert self.exit is not None
                assert await self.exit == 0
                assert self.stdout.empty(), "a line after the outcome"
                return line

    async def nothing_written(self) -> bool:
        """Whether the handler has written nothing more once everything runnable has run."""
        for _ in range(20):
            await asyncio.sleep(0)
        return self.stdout.empty()


class Order(BaseModel):
    item: str
    quantity: int = 1


class Receipt(BaseModel):
    item: str
    total: float


async def test_reports_and_a_typed_input_and_output() -> None:
    async def handler(ctx: Context, order: Order) -> Receipt:
        assert (ctx.task, ctx.kind, ctx.attempt, ctx.protocol) == ("task_1", "k", 1, 1)
        await ctx.progress(50, "half")
        await ctx.progress(message="no percent")
        await ctx.artifact("bill", ["text", {"n": 1}], name="Bill")
        await ctx.artifact("log", "chunk", append=True, last_chunk=False)
        await ctx.notify_agent("look", trigger=True)
        return Receipt(item=order.item, total=2.5 * order.quantity)

    runtime = FakeRuntime()
    runtime.start(handler, {"item": "tea", "quantity": 2})
    assert await runtime.read() == {"type": "progress", "percent": 50, "message": "half"}
    assert await runtime.read() == {"type": "progress", "message": "no percent"}
    assert await runtime.read() == {
        "type": "artifact",
        "id": "bill",
        "name": "Bill",
        "parts": ["text", {"n": 1}],
        "append": False,
        "last_chunk": True,
    }
    log = await runtime.read()
    assert (log["parts"], log["append"], log["last_chunk"]) == (["chunk"], True, False)
    assert await runtime.read() == {"type": "message", "text": "look", "trigger": True}
    assert await runtime.outcome() == {"type": "complete", "output": {"item": "tea", "total": 5.0}}


async def test_an_input_that_does_not_fit_the_annotation_fails_the_task() -> None:
    called = False

    async def handler(ctx: Context, order: Order) -> None:
        nonlocal called
        called = True

    runtime = FakeRuntime()
    runtime.start(handler, {"quantity": "many"})
    outcome = await runtime.outcome()
    assert outcome["code"] == "invalid_input"
    assert "item" in outcome["message"]
    assert "quantity" in outcome["message"]
    assert not called


async def test_questions_answered_timed_out_and_unanswerable() -> None:
    async def handler(ctx: Context, _: Any) -> list[Any]:
        got: list[Any] = [await ctx.ask("a", "Go?", timeout=5)]
        try:
            await ctx.ask("b", {"type": "boolean"})
        except Unanswered as error:
            got.append(("b", error.timed_out))
        with pytest.raises(ProtocolError):
            await ctx.ask("a", "again")
        try:
            await ctx.ask("c", "anyone?")
        except Unanswered as error:
            got.append(("c", error.timed_out))
        return got

    runtime = FakeRuntime()
    runtime.start(handler)
    assert await runtime.read() == {
        "type": "ask",
        "key": "a",
        "request": {"message": "Go?"},
        "timeout_ms": 5000,
    }
    assert await runtime.nothing_written()
    runtime.send({"type": "answer", "key": "a", "value": {"yes": True}})
    assert (await runtime.read())["key"] == "b"
    runtime.send({"type": "answer_timeout", "key": "b"})
    assert (await runtime.read())["key"] == "c"
    runtime.stdin.put_nowait(None)  # stdin closed: nobody can answer
    outcome = await runtime.outcome()
    assert outcome == {"type": "complete", "output": [{"yes": True}, ["b", True], ["c", False]]}


async def test_cancellation_is_an_event_first() -> None:
    async def handler(ctx: Context, _: Any) -> None:
        await ctx.progress(1)
        await ctx.cancelled.wait()
        raise Cancelled("cleaned up")

    runtime = FakeRuntime()
    runtime.start(handler, grace=3600)
    await runtime.read()
    runtime.send({"type": "cancel"})
    assert await runtime.outcome() == {"type": "cancelled", "message": "cleaned up"}


async def test_a_handler_that_ignores_cancellation_is_cancelled_after_the_grace() -> None:
    saw_event = False

    async def handler(ctx: Context, _: Any) -> None:
        nonlocal saw_event
        await ctx.progress(1)
        try:
            await asyncio.Event().wait()  # never set
        finally:
            saw_event = ctx.cancelled.is_set()

    runtime = FakeRuntime()
    runtime.start(handler, grace=0.01)
    await runtime.read()
    runtime.send({"type": "cancel"})
    assert await runtime.outcome() == {"type": "cancelled", "message": "cancelled"}
    assert saw_event


async def test_failures() -> None:
    async def retryable(ctx: Context, _: Any) -> None:
        raise Fail("busy", "try later", details={"n": 1}, retryable=True, retry_after=1.5)

    runtime = FakeRuntime()
    runtime.start(retryable)
    assert await runtime.outcome() == {
        "type": "fail",
        "code": "busy",
        "message": "try later",
        "details": {"n": 1},
        "retryable": True,
        "retry_after_ms": 1500,
    }

    async def broken(ctx: Context, _: Any) -> None:
        raise KeyError("missing")

    runtime = FakeRuntime()
    runtime.start(broken)
    outcome = await runtime.outcome()
    assert (outcome["code"], outcome["details"]) == ("handler_error", {"exception": "KeyError"})
    assert "missing" in outcome["message"]


async def test_unknown_protocol_versions_fail_and_unknown_lines_are_ignored() -> None:
    async def handler(ctx: Context, _: Any) -> str:
        return str(await ctx.ask("q", "?"))

    runtime = FakeRuntime()
    runtime.start(handler, protocol=3)
    assert (await runtime.outcome())["code"] == "unsupported_protocol"

    runtime = FakeRuntime()
    runtime.start(handler)
    await runtime.read()
    runtime.stdin.put_nowait("")
    runtime.stdin.put_nowait("not json")
    runtime.send({"type": "from_the_future", "key": "q"})
    runtime.send({"type": "answer", "key": "q", "value": 7})
    assert await runtime.outcome() == {"type": "complete", "output": "7"}


async def test_v2_steps_replay_the_journal_and_wait_for_each_save() -> None:
    runs: list[str] = []

    async def fetch() -> dict[str, int]:
        runs.append("fetch")
        return {"rows": 3}

    def compute() -> int:
        runs.append("compute")
        return 42

    async def handler(ctx: Context, _: Any) -> list[Any]:
        fetched = await ctx.step("fetch", fetch)
        computed = await ctx.step("compute", compute)
        await ctx.sleep("nap", 1.5)
        await ctx.sleep("earlier-nap", 60)
        with pytest.raises(ProtocolError):
            await ctx.step("compute", compute)
        return [fetched, computed, dict(ctx.steps)]

    runtime = FakeRuntime()
    journal = {"fetch": {"rows": 3}, "earlier-nap": None}
    runtime.start(handler, protocol=2, steps=journal)
    assert await runtime.read() == {"type": "step", "key": "compute", "value": 42}
    assert await runtime.nothing_written()  # waits for the save before going on
    runtime.send({"type": "step_saved", "key": "compute"})
    assert await runtime.read() == {"type": "sleep", "key": "nap", "ms": 1500}
    assert await runtime.nothing_written()
    runtime.send({"type": "step_saved", "key": "nap"})
    outcome = await runtime.outcome()
    assert outcome["output"][:2] == [{"rows": 3}, 42]
    assert set(outcome["output"][2]) == {"fetch", "compute", "nap", "earlier-nap"}
    assert runs == ["compute"]  # `fetch` was in the journal: not run again


async def test_v1_steps_just_run() -> None:
    async def handler(ctx: Context, _: Any) -> Any:
        value = await ctx.step("s", lambda: {"a": (1, 2)})
        await ctx.sleep("z", 0)
        return value

    runtime = FakeRuntime()
    runtime.start(handler, protocol=1, steps=None)
    # No step line (a v1 runtime would refuse it), and the value is returned as JSON.
    assert await runtime.outcome() == {"type": "complete", "output": {"a": [1, 2]}}


async def test_a_step_that_cannot_be_saved_fails() -> None:
    async def handler(ctx: Context, _: Any) -> None:
        await ctx.step("s", lambda: 1)

    runtime = FakeRuntime()
    runtime.start(handler, protocol=2)
    assert (await runtime.read())["type"] == "step"
    runtime.stdin.put_nowait(None)
    outcome = await runtime.outcome()
    assert outcome["code"] == "handler_error"
    assert "not saved" in outcome["message"]
