"""The SDK tests' process handler: what it does is chosen by its input (`Job`), validated by
`longrun.process.run` against the annotation.
"""

from typing import Literal

from pydantic import BaseModel

from longrun.process import Cancelled, Context, Fail, run


class Job(BaseModel):
    mode: Literal["complete", "ask", "fail", "wait"] = "complete"
    items: int = 1


async def work(ctx: Context, job: Job) -> dict[str, object]:
    await ctx.progress(10, "starting")
    await ctx.artifact("report", [f"item {i}" for i in range(job.items)], name="Report")
    if job.mode == "ask":
        answer = await ctx.ask("approve", {"type": "boolean", "message": "Approve?"})
        await ctx.notify_agent(f"approved: {answer}", trigger=True)
        return {"approved": answer}
    if job.mode == "fail":
        raise Fail("boom", "it broke on purpose", details={"items": job.items})
    if job.mode == "wait":
        await ctx.progress(50, "waiting to be cancelled")
        await ctx.cancelled.wait()
        raise Cancelled("stopped on request")
    await ctx.progress(100, "done")
    return {"items": job.items}


if __name__ == "__main__":
    run(work)
