#!/usr/bin/env python3
"""A longrun process handler: counts down, optionally asking to go on half-way.

Input: {"seconds": n, "confirm": bool}. Reports progress every second; with "confirm" it asks a
yes/no question half-way and fails if the answer is no. The protocol (docs/process-protocol.md)
and cancellation are the SDK's: `longrun.process.run` (sdk/python), which needs only the standard
library here, so the demo runs it with a bare `python3`.
"""

import asyncio
import sys
from pathlib import Path
from typing import Any

try:
    from longrun.process import Cancelled, Context, Fail, Unanswered, run
except ImportError:
    # Run from a checkout (the demo, the tests) without `pip install ./sdk/python`: use the
    # SDK's source next to this file.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk" / "python" / "src"))
    from longrun.process import Cancelled, Context, Fail, Unanswered, run


def is_yes(answer: object) -> bool:
    if isinstance(answer, str):
        return answer.strip().lower() in ("yes", "y", "true")
    return answer is True


async def countdown(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    try:
        seconds, confirm = int(input.get("seconds", 10)), bool(input.get("confirm", False))
    except (AttributeError, TypeError, ValueError):
        seconds = -1
    if seconds < 0:
        raise Fail("invalid_input", 'expected {"seconds": n, "confirm": bool} with n >= 0')
    print(f"countdown of {seconds} s for {ctx.task} (attempt {ctx.attempt})", file=sys.stderr)
    asked = False
    try:
        for elapsed in range(seconds):
            remaining = seconds - elapsed
            if confirm and not asked and elapsed == seconds // 2:
                asked = True
                question = {
                    "type": "boolean",
                    "message": f"Halfway there, {remaining} s to go. Continue?",
                }
                try:
                    answer = await ctx.ask("confirm", question)
                except Unanswered:
                    answer = False
                if not is_yes(answer):
                    raise Fail("declined", "the countdown was not confirmed")
            await ctx.progress(round(100 * elapsed / seconds, 1), f"{remaining} s left")
            await asyncio.sleep(1)
    except asyncio.CancelledError:
        raise Cancelled("the countdown was cancelled") from None
    await ctx.progress(100, "liftoff")
    return {"seconds": seconds, "confirmed": asked, "summary": f"counted down {seconds} s"}


if __name__ == "__main__":
    run(countdown, grace=0)
