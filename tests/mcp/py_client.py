"""The official Python SDK (`mcp`, pinned in requirements.txt) drives a task with a question to
completion over protocol 2026-07-28 and the tasks extension: `confirm_delete` answers with a
task handle, goes input_required with an elicitation in `inputRequests`, the client answers it
with `tasks/update`, and the task completes. `greet` shows a plain call on the same client.

The SDK has no task API of its own; its `ClientExtension` hook (mcp.client.extension) lets a
client claim results of `resultType: "task"` and drive them, which is the supported route.

    python py_client.py http://127.0.0.1:PORT/mcp
"""

import sys
from typing import Any, Literal

import anyio
import mcp_types as t
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from pydantic import TypeAdapter

Raw = TypeAdapter(dict[str, Any])
seen: list[str] = []
questions: list[dict[str, Any]] = []


class CreateTaskResult(t.Result):
    """The flat task handle of the tasks extension."""

    result_type: Literal["task"]
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None


class TaskIdParams(t.RequestParams):
    task_id: str


class UpdateParams(TaskIdParams):
    input_responses: dict[str, Any]


class GetTask(t.Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"  # the Mcp-Name header


class UpdateTask(t.Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateParams
    name_param = "taskId"


async def drive(created: CreateTaskResult, ctx: ClaimContext) -> t.CallToolResult:
    """Polls the task, answers its questions once each, and returns its result."""
    seen.append(f"created:{created.status}")
    answered: set[str] = set()
    while True:
        task = await ctx.session.send_request(GetTask(params=TaskIdParams(task_id=created.task_id)), Raw)
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] == "completed":
            return t.CallToolResult.model_validate(task["result"])
        if task["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"the task ended {task['status']}: {task.get('error')}")
        if task["status"] == "input_required":
            fresh = {key: request for key, request in task["inputRequests"].items() if key not in answered}
            questions.extend(fresh.values())
            answers = {key: {"action": "accept", "content": {"confirm": True}} for key in fresh}
            answered |= answers.keys()
            if answers:
                await ctx.session.send_request(
                    UpdateTask(params=UpdateParams(task_id=created.task_id, input_responses=answers)), Raw
                )
        await anyio.sleep((task.get("pollIntervalMs") or 500) / 1000)


class Tasks(ClientExtension):
    identifier = "io.modelcontextprotocol/tasks"

    def claims(self):
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=drive)]


def fail(why: str) -> None:
    print(f"py-client: FAILED: {why}", file=sys.stderr)
    sys.exit(1)


async def main(url: str) -> None:
    async with Client(url, extensions=[Tasks()]) as client:
        greeting = await client.call_tool("greet", {"name": "Python"})
        if greeting.content[0].text != "Hello, Python!":
            fail(f"greet answered {greeting.content}")
        result = await client.call_tool("confirm_delete", {"filename": "py.txt"})
        text = result.content[0].text
        print(f"py-client: task went {' → '.join(seen)}")
        if "confirmed = true" not in text:
            fail(f"confirm_delete answered {text!r}")
        if len(questions) != 1 or questions[0].get("method") != "elicitation/create":
            fail(f"expected one elicitation, got {questions}")
        if "input_required" not in seen:
            fail("the task never asked")
        print(f'py-client: OK (confirm_delete completed: "{text}")')


anyio.run(main, sys.argv[1])
