"""A worker for the rescue and drain tests, run as its own process so that a test can SIGKILL
or SIGTERM it: serves one kind (argv[1]) whose handler saves three steps, recording each step it
actually runs (not replays) in the file argv[2], one line each: `<worker name> <step>`.

The worker named `first` hangs after step two when the input says `hang`, waiting to be killed;
`sleep` makes any worker take that long before step three.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from longrun import Context, Worker

kind, record = sys.argv[1], Path(sys.argv[2])
name = os.environ["WORKER_NAME"]
worker = Worker(
    os.environ["LONGRUN_SERVER"], token=os.environ["LONGRUN_TOKEN"], name=name, grace=0.2
)


def ran(step: str, value: int) -> int:
    with record.open("a") as file:
        file.write(f"{name} {step}\n")
    return value


@worker.kind(kind)
async def steps(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    one = await ctx.step("one", lambda: ran("one", 1))
    two = await ctx.step("two", lambda: ran("two", 2))
    await ctx.progress(50, f"{name}: two steps saved")
    if input.get("hang") and name == "first":
        await asyncio.sleep(3600)
    await asyncio.sleep(float(input.get("sleep", 0)))
    three = await ctx.step("three", lambda: ran("three", 3))
    return {"sum": one + two + three, "finished_by": name, "attempt": ctx.attempt}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    worker.run_forever()
