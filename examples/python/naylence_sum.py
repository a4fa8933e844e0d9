#!/usr/bin/env python3
"""Naylence's `BackgroundTaskAgent` example, `SumAgent` (seed 003), as a longrun worker in Python.

In Naylence an agent subclasses `BackgroundTaskAgent` and overrides `run_background_task`; the
base class schedules it, streams status and artifact events to subscribers
(`subscribe_to_task_updates`), pushes intermediate results with `update_task_artifact`, caches
finished tasks for late readers (`completed_cache_ttl_sec`), auto-cancels after
`max_task_lifetime_ms`, and cancels on `cancel_task`; all of it in one process's memory. Here
the same logic is a kind, `sum`, served by a `longrun.Worker`: the server keeps the tasks (a
restart loses nothing; a finished task stays readable for its `ttl`), streams their events to any
client with resume, enforces the lifetime (the kind's `deadline_ms`), and pushes cancellation.

The script is both sides: the worker, and a client that adds up 1..10 while watching its events
(Naylence's `start_task` then `subscribe_to_task_updates`), reads the finished task again
(`get_task_status`), and cancels a long sum half-way (`cancel_task`).

Run it (after `pip install ./sdk/python`) against a server with `examples/python/longrun.toml`:

    longrun serve --config examples/python/longrun.toml & python3 examples/python/naylence_sum.py

It exits 0 after about two seconds, or 1 with what went wrong. `$LONGRUN_SERVER` (default
http://127.0.0.1:7700) and `$LONGRUN_TOKEN` say which server.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from pydantic import BaseModel

from longrun import AsyncClient, Cancelled, Context, Status, Worker
from longrun.models import ProgressChange

WORK = 0.05
"""Seconds per number: Naylence's example sleeps a second to simulate work."""


class Numbers(BaseModel):
    """The input of `sum` (Naylence's `params.message.parts[0].data`)."""

    numbers: list[float]


worker = Worker(name="naylence-sum", capacity=4)


@worker.kind("sum")
async def run_background_task(ctx: Context, params: Numbers) -> float:
    """Naylence's `SumAgent.run_background_task`, with the running total streamed as an
    artifact (`update_task_artifact`) and kept as steps, so a re-run resumes where it was.
    """
    total = 0.0
    for index, number in enumerate(params.numbers):
        if ctx.cancelled.is_set():
            break  # the grace would cancel us anyway; ending now reports `cancelled` sooner
        await asyncio.sleep(WORK)  # simulate work
        total = await ctx.step(f"add-{index}", add(total, number))
        await ctx.artifact("total", [{"after": index + 1, "total": total}], name="Running total")
        await ctx.progress(100 * (index + 1) / len(params.numbers))
    if ctx.cancelled.is_set():
        raise Cancelled(f"stopped at {total}")
    return total


def add(total: float, number: float) -> Callable[[], float]:
    """The step's function: a closure over this number, not the loop's variable."""
    return lambda: total + number


async def client_side(client: AsyncClient) -> None:
    # start_task + subscribe_to_task_updates
    task = await client.start("sum", {"numbers": list(range(1, 11))})
    artifacts = 0
    async for event in client.watch(task):
        change = event.change
        if change.type == "artifact":
            artifacts += 1
        elif change.type == "ended":
            print(f"{task.id}: {event.status.value}")
    expect(artifacts == 10, f"expected 10 artifact updates, saw {artifacts}")

    # get_task_status, after the end: the server keeps it for the kind's ttl.
    done = await client.get(task)
    expect(done.status is Status.COMPLETED, f"the sum ended {done.status.value}")
    expect(done.output == 55, f"1 + … + 10 is 55, not {done.output}")
    print(f"sum of 1..10 = {done.output}")

    # cancel_task, mid-way through a long sum.
    long = await client.start("sum", {"numbers": [1] * 1000})
    async for event in client.watch(long):
        if isinstance(event.change, ProgressChange) and (event.change.percent or 0) >= 1:
            break
    cancelled = await client.cancel(long)
    expect(cancelled.status is Status.CANCELLED, f"the long sum ended {cancelled.status.value}")
    print(f"{long.id}: cancelled mid-way")
    print("naylence_sum: every check passed")


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"naylence_sum: {what}")


async def main() -> None:
    serving = asyncio.create_task(worker.run())
    # Registration waits for the server (it may still be starting): so does the scenario.
    while worker.id is None:
        if serving.done():
            serving.result()  # raises why the worker could not register
        await asyncio.sleep(0.05)
    try:
        async with AsyncClient() as client:
            await client_side(client)
    finally:
        worker.stop()
        await serving


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:
        print(f"naylence_sum: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
