"""`longrun.pydantic_ai`: kinds as tools of a Pydantic AI agent, driven by Pydantic AI's own
test models (no network but the local `longrun serve`). A tool call starts a task and returns its
handle at once; the task's outcome reaches the agent at its next run, through the inbox.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

pytest.importorskip("pydantic_ai", reason="Pydantic AI 2.68 needs Python 3.11")

from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from longrun import AsyncClient, Context, Status, Worker
from longrun.pydantic_ai import LongrunTools
from tests.conftest import ALICE, Server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def texts(messages: list[ModelMessage]) -> list[str]:
    """Every user-side text the model was shown, oldest first."""
    found: list[str] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    found.append(part.content)
    return found


def tool_returns(messages: list[ModelMessage]) -> list[Any]:
    return [
        part.content
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]


async def settled_inbox(client: AsyncClient, session: str) -> None:
    """Waits until the session's inbox holds something, without acknowledging it."""
    for _ in range(60):
        if (await client.drain(session, wait=1)).items:
            return
    pytest.fail(f"nothing reached the inbox of {session}")


async def test_a_tool_call_starts_a_task_and_its_outcome_comes_at_the_next_turn(
    aclient: AsyncClient,
) -> None:
    session = unique("agent")
    tools = await LongrunTools.load(aclient, session=session, kinds=["work"])
    seen: list[list[str]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        assert [tool.name for tool in info.function_tools] == ["work"]
        seen.append(texts(messages))
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        returned = [part for part in last.parts if isinstance(part, ToolReturnPart)]
        if returned:
            handle: Any = returned[0].content
            return ModelResponse(parts=[TextPart(f"started {handle['task']}")])
        if texts([last]) == ["Count two items"]:
            return ModelResponse(parts=[ToolCallPart("work", {"input": {"items": 2}})])
        return ModelResponse(parts=[TextPart("\n".join(texts([last])))])

    agent = Agent(FunctionModel(model), capabilities=[tools])
    first = await agent.run("Count two items")
    [handle] = tool_returns(first.all_messages())
    assert first.output == f"started {handle['task']}"
    task = await aclient.get(handle["task"])
    assert task.session == session
    assert task.kind == "work"

    await settled_inbox(aclient, session)
    assert (await aclient.get(handle["task"])).status is Status.COMPLETED
    second = await agent.run("Any news?", message_history=first.all_messages())
    news = f'[longrun] task {handle["task"]} (work) ended completed; output: {{"items": 2}}'
    assert news in second.output

    # Delivered once: the next run finds the inbox acknowledged and adds nothing.
    third = await agent.run("And now?", message_history=second.all_messages())
    assert sum(news in text for text in texts(third.all_messages())) == 1
    assert third.output == "And now?"
    assert (await aclient.drain(session)).items == []


async def test_with_pydantic_ais_test_model(aclient: AsyncClient) -> None:
    session = unique("testmodel")
    tools = await LongrunTools.load(aclient, session=session, kinds=["work"])
    agent = Agent(TestModel(call_tools=["work"]), capabilities=[tools])
    result = await agent.run("go")
    [handle] = tool_returns(result.all_messages())
    assert handle["task"].startswith("task_")
    assert (await aclient.get(handle["task"])).session == session


async def test_unknown_kinds_are_refused(aclient: AsyncClient) -> None:
    with pytest.raises(ValueError, match="no kind nope"):
        await LongrunTools.load(aclient, session="s", kinds=["nope"])


async def test_a_kind_served_by_a_worker_end_to_end(server: Server, aclient: AsyncClient) -> None:
    """The agent's tool call starts a `w_agent` task; a Python worker runs it; the outcome is
    in the conversation at the next run.
    """
    worker = Worker(server.url, token=ALICE, name="agent-worker")

    @worker.kind("w_agent")
    async def research(ctx: Context, input: dict[str, str]) -> dict[str, str]:
        await ctx.progress(50, "reading")
        return {"summary": f"all about {input['topic']}"}

    serving = asyncio.create_task(worker.run())
    try:
        session = unique("agent-worker")
        tools = await LongrunTools.load(aclient, session=session, kinds=["w_agent"])
        [tool] = tools.get_toolset().tools.values()
        assert tool.tool_def.parameters_json_schema["required"] == ["topic"]

        agent = Agent(TestModel(call_tools=["w_agent"]), capabilities=[tools])
        first = await agent.run("research something")
        [handle] = tool_returns(first.all_messages())
        await settled_inbox(aclient, session)

        def echo(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            return ModelResponse(parts=[TextPart("\n".join(texts(messages[-1:])))])

        with agent.override(model=FunctionModel(echo)):
            second = await agent.run("news?", message_history=first.all_messages())
        assert f"task {handle['task']} (w_agent) ended completed" in second.output
        assert "all about" in second.output
    finally:
        worker.stop()
        await serving
