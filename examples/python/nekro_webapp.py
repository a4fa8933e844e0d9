#!/usr/bin/env python3
"""nekro-agent's web-app generation task (seed 001) as a longrun worker in Python.

In nekro-agent a plugin mounts an async generator per task type (`@plugin.mount_async_task`),
reports with `yield TaskCtl.report_progress(...)`, waits for a human with
`await handle.wait("approval", timeout)`, ends with `TaskCtl.success` or `TaskCtl.fail`, and
an `on_terminal` callback pushes a system message to the chat with `trigger_agent=True`. Here
the task is a kind, `webapp_dev`, served by a `longrun.Worker` from any machine: progress is
`ctx.progress`, the wait is `ctx.ask` (answered from any door: HTTP, MCP, A2A, the CLI), phases
already done are `ctx.step`s (a worker that dies mid-way has its task finish elsewhere without
generating twice), and the outcome lands in the chat's inbox by itself: no callback to write.
The server allows one generation at a time (nekro's MAX_CONCURRENT_TASKS check, by hand in
every tool, is the kind's `concurrency = 1`).

The script is both sides: the worker, and the "main AI" that starts three generations in one
chat as nekro's `create_webapp_task` tool would: one approved, one rejected, one stopped
mid-way (nekro's `task.stop_all()`). Then it reads the chat's inbox and checks what it holds.

Run it (after `pip install ./sdk/python`) against a server with `examples/python/longrun.toml`:

    longrun serve --config examples/python/longrun.toml & python3 examples/python/nekro_webapp.py

It exits 0 after about two seconds, or 1 with what went wrong. `$LONGRUN_SERVER` (default
http://127.0.0.1:7700) and `$LONGRUN_TOKEN` say which server.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from pydantic import BaseModel, Field

from longrun import AsyncClient, Cancelled, Context, Fail, Status, Worker
from longrun.models import MessageEntry, OutcomeEntry

PHASE = 0.15
"""Seconds each phase of a generation takes here (a real one runs an LLM developer loop)."""


class WebApp(BaseModel):
    """The input of `webapp_dev`."""

    name: str = Field(description="A short name; the app is deployed under it.")
    requirement: str = Field(description="What the user asked for.")


worker = Worker(name="nekro-webapp", capacity=2)


@worker.kind("webapp_dev")
async def webapp_development_task(ctx: Context, app: WebApp) -> dict[str, str]:
    """nekro's `webapp_development_task`, phase by phase."""
    await ctx.progress(0, "🚀 Starting development...")
    plan = await ctx.step("analysis", lambda: analyse(app))
    await ctx.progress(20, f"🔍 {len(plan['pages'])} page(s) planned")
    if ctx.cancelled.is_set():  # nekro's `handle.is_cancelled`
        raise Cancelled("Task cancelled")
    html = await ctx.step("generation", lambda: generate(app, plan))
    await ctx.progress(70, "📦 Compiling...")
    await ctx.artifact("bundle", [html], name=f"{app.name}.html")
    # nekro: `approved = await handle.wait("approval", timeout=3600)`.
    approved = await ctx.ask(
        "approval",
        {"type": "boolean", "message": f"Deploy {app.name} ({len(html)} bytes)?"},
        timeout=3600,
    )
    if approved is not True:
        raise Fail("rejected", "the deploy was not approved")
    url = await ctx.step("deploy", lambda: deploy(app))
    await ctx.notify_agent(f"✅ {app.name} is live at {url}")
    return {"url": url, "message": "Deployment successful"}


async def analyse(app: WebApp) -> dict[str, list[str]]:
    await asyncio.sleep(PHASE)
    return {"pages": ["index"] + (["about"] if "about" in app.requirement else [])}


async def generate(app: WebApp, plan: dict[str, list[str]]) -> str:
    await asyncio.sleep(PHASE)
    pages = "".join(f"<section id='{page}'></section>" for page in plan["pages"])
    return f"<html><title>{app.name}</title><body>{app.requirement}{pages}</body></html>"


async def deploy(app: WebApp) -> str:
    await asyncio.sleep(PHASE)
    return f"https://apps.example/{app.name}"


# --- the main AI's side: nekro's `create_webapp_task` tool and `task.stop_all()` ------------


async def chat(client: AsyncClient) -> None:
    session = f"chat-{uuid.uuid4().hex[:8]}"

    async def create_webapp_task(name: str, requirement: str) -> str:
        task = await client.start(
            "webapp_dev", {"name": name, "requirement": requirement}, session=session
        )
        return task.id

    async def review(task_id: str, approve: bool) -> None:
        async for event in client.watch(task_id):
            if event.change.type == "input_requested":
                await client.answer(task_id, "approval", approve)
                return

    approved = await create_webapp_task("todo", "a todo list with an about page")
    rejected = await create_webapp_task("blog", "a blog")  # waits: one generation at a time
    print(f"started {approved} and {rejected}; the second waits for the first")
    await review(approved, True)
    await review(rejected, False)

    stopped = await create_webapp_task("shop", "a shop")
    async for event in client.watch(stopped):
        if event.change.type == "progress":
            await client.cancel(stopped)  # nekro's `task.stop_all()`, for the one running
            break

    ended = {task: (await client.get(task)).status for task in (approved, rejected, stopped)}
    print("ended:", {task: status.value for task, status in ended.items()})
    expect(ended[approved] is Status.COMPLETED, f"{approved} should have completed")
    expect(ended[rejected] is Status.FAILED, f"{rejected} should have failed")
    expect(ended[stopped] is Status.CANCELLED, f"{stopped} should have been cancelled")

    # What nekro's `on_terminal` callbacks pushed to the chat is in its inbox, without them.
    outcomes: dict[str, Status] = {}
    messages: list[str] = []
    drained = await client.drain(session)
    while len(outcomes) < 3:
        for item in drained.items:
            if isinstance(item.entry, OutcomeEntry):
                outcomes[item.task] = item.entry.status
            elif isinstance(item.entry, MessageEntry):
                messages.append(item.entry.message)
        if len(outcomes) < 3:
            drained = await client.drain(session, ack=drained.through, wait=10)
    for line in messages:
        print("agent inbox:", line)
    expect(outcomes == ended, f"the inbox holds {outcomes}, not {ended}")
    expect(messages == ["✅ todo is live at https://apps.example/todo"], f"messages: {messages}")
    completed = await client.get(approved)
    expect(
        completed.output
        == {"url": "https://apps.example/todo", "message": "Deployment successful"},
        "output",
    )
    print("nekro_webapp: every check passed")


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"nekro_webapp: {what}")


async def main() -> None:
    serving = asyncio.create_task(worker.run())
    # Registration waits for the server (it may still be starting): so does the scenario.
    while worker.id is None:
        if serving.done():
            serving.result()  # raises why the worker could not register
        await asyncio.sleep(0.05)
    try:
        async with AsyncClient() as client:
            await chat(client)
    finally:
        worker.stop()
        await serving


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:
        print(f"nekro_webapp: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
