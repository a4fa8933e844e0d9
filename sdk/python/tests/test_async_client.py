"""`AsyncClient` against a real `longrun serve`: the same calls as `Client`, with `await`, pages
as an async iterator, and the all-tasks event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from longrun import AsyncClient, ConflictError, NotFoundError, Status, UnauthorizedError
from longrun.models import Event, InputRequestedChange, Lagged, OutcomeEntry
from tests.conftest import KINDS

from .conftest import Server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_every_call(aclient: AsyncClient) -> None:
    assert (await aclient.health()).status == "ok"
    assert {kind.name for kind in await aclient.kinds()} == KINDS

    session = unique("async")
    done = await aclient.start("work", {"items": 2}, session=session, labels={"a": "b"}, wait=30)
    assert done.status is Status.COMPLETED
    assert done.output == {"items": 2}
    assert (await aclient.get(done.id)).last_seq == done.last_seq
    assert [e.seq async for e in aclient.watch(done, after=2)] == list(range(3, done.last_seq + 1))

    asking = await aclient.start("work", {"mode": "ask"}, session=session)
    async for event in aclient.watch(asking):
        if isinstance(event.change, InputRequestedChange):
            answered = await aclient.answer(asking, event.change.key, False)
            assert answered.status is not Status.INPUT_REQUIRED
    assert (await aclient.get(asking)).output == {"approved": False}

    waiting = await aclient.start("work", {"mode": "wait"}, session=session)
    async for event in aclient.watch(waiting):
        if event.change.type == "progress" and event.status is Status.WORKING:
            break
    cancelled = await aclient.cancel(waiting)
    assert cancelled.status is Status.CANCELLED
    with pytest.raises(ConflictError):
        await aclient.cancel(waiting)

    outcomes: dict[str, Status] = {}
    through = None
    while not {asking.id, waiting.id} <= set(outcomes):
        drained = await aclient.drain(session, ack=through, wait=30)
        for item in drained.items:
            if isinstance(item.entry, OutcomeEntry):
                outcomes[item.task] = item.entry.status
        through = drained.through if drained.through is not None else through
    # `done` was awaited (with `wait`) and ended in time: its outcome is not the inbox's.
    assert outcomes == {asking.id: Status.COMPLETED, waiting.id: Status.CANCELLED}
    assert through is not None
    await aclient.ack(session, through)
    assert (await aclient.drain(session)).items == []


async def test_pages_are_an_async_iterator(aclient: AsyncClient) -> None:
    batch = unique("batch")
    started = []
    for _ in range(3):
        started.append((await aclient.start("work", {}, labels={"batch": batch}, wait=30)).id)
    sizes = [len(page.tasks) async for page in aclient.pages(labels={"batch": batch}, limit=2)]
    assert sizes == [2, 1]
    listed = [task.id async for task in aclient.list(labels={"batch": batch}, limit=2)]
    assert listed == started[::-1]


async def test_errors(server: Server, aclient: AsyncClient) -> None:
    with pytest.raises(NotFoundError) as missing:
        await aclient.get("task_" + "f" * 32)
    assert missing.value.code == "not_found"
    async with AsyncClient(server.url, token="nobody") as wrong:
        assert (await wrong.health()).status == "ok"  # /healthz needs no token
        with pytest.raises(UnauthorizedError) as refused:
            await wrong.kinds()
        with pytest.raises(UnauthorizedError):
            [event async for event in wrong.events()]
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")


async def test_the_all_tasks_stream_filters_by_session(aclient: AsyncClient) -> None:
    mine, other = unique("mine"), unique("other")
    seen: list[Event] = []

    async def keep_starting() -> None:
        # The stream subscribes when it connects, which the caller cannot observe: start tasks
        # until one of them shows up on it.
        while True:
            await aclient.start("work", {}, session=mine)
            await aclient.start("work", {}, session=other)
            await asyncio.sleep(0.2)

    starter = asyncio.create_task(keep_starting())
    try:
        async for item in aclient.events(session=mine):
            if isinstance(item, Lagged):
                continue
            seen.append(item)
            if item.change.type == "ended":
                break
    finally:
        starter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starter
    assert seen
    for task in {event.task for event in seen}:
        assert (await aclient.get(task)).session == mine
    ended = seen[-1]
    assert ended.status is Status.COMPLETED
