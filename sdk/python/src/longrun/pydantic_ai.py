"""longrun kinds as tools of Pydantic AI (`pip install "longrun[pydantic-ai]"`).

A tool call starts a task in the agent's session and returns its handle at once, so the agent
goes on talking while the task runs (on a worker, a process handler, anywhere). When the task
ends, its outcome, and any message it left with `ctx.notify_agent`, wait in the session's inbox;
at the agent's next turn (its next run), `LongrunTools` drains the inbox into the conversation
before the model is asked anything.

```python
from pydantic_ai import Agent
from longrun import AsyncClient
from longrun.pydantic_ai import LongrunTools

client = AsyncClient("http://127.0.0.1:7700", token="…")
tools = await LongrunTools.load(client, session="chat-42", kinds=["research"])
agent = Agent("openai:gpt-5", capabilities=[tools])
result = await agent.run("Look into tides for me")            # starts a `research` task
later = await agent.run("Anything new?", message_history=result.all_messages())
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic_ai import RunContext, Tool
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.toolsets import FunctionToolset

from longrun import models
from longrun.async_client import AsyncClient

__all__ = ["LongrunTools", "describe"]

_WRAPPED = "input"
"""The one argument of a tool whose kind's input is not a JSON object (tools take objects)."""


class LongrunTools(AbstractCapability[Any]):
    """A Pydantic AI capability: one tool per longrun kind, and the session's inbox delivered at
    each run's start. Build it with `load` (which reads the kinds from the server), or from
    `Kind`s you have.

    `session` is the conversation: every task a tool starts belongs to it, and its inbox is the
    one drained. Items are acknowledged at the next drain, once they are in a run's history.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        session: str,
        kinds: Sequence[models.Kind],
        labels: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.session = session
        self.kinds = list(kinds)
        self.labels = dict(labels or {})
        self._through: int | None = None
        self._toolset = FunctionToolset[Any]([self._tool(kind) for kind in self.kinds])

    @classmethod
    async def load(
        cls,
        client: AsyncClient,
        *,
        session: str,
        kinds: Iterable[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> LongrunTools:
        """The tools for the server's `kinds` (by name; all of them by default)."""
        known = {kind.name: kind for kind in await client.kinds()}
        if kinds is None:
            chosen = list(known.values())
        else:
            missing = [name for name in kinds if name not in known]
            if missing:
                raise ValueError(f"the server has no kind {', '.join(missing)}")
            chosen = [known[name] for name in kinds]
        return cls(client, session=session, kinds=chosen, labels=labels)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a client: not something an agent spec can describe

    def get_toolset(self) -> FunctionToolset[Any]:
        return self._toolset

    async def before_run(self, ctx: RunContext[Any]) -> None:
        """Puts what waits in the session's inbox before the run's first model request."""
        drained = await self.client.drain(self.session, ack=self._through)
        if drained.through is not None:
            self._through = drained.through
        if drained.items:
            ctx.enqueue("\n".join(describe(item) for item in drained.items), priority="asap")

    async def inbox(self) -> list[models.InboxItem]:
        """Drains the inbox by hand (what `before_run` does, without a run), acknowledging what
        the previous drain returned.
        """
        drained = await self.client.drain(self.session, ack=self._through)
        if drained.through is not None:
            self._through = drained.through
        return drained.items

    def _tool(self, kind: models.Kind) -> Tool[Any]:
        schema = kind.input_schema if isinstance(kind.input_schema, dict) else {}
        wrapped = schema.get("type") != "object"
        parameters: dict[str, Any] = (
            {"type": "object", "properties": {_WRAPPED: schema}, "required": [_WRAPPED]}
            if wrapped
            else schema
        )
        name = kind.name

        async def start(ctx: RunContext[Any], **arguments: Any) -> dict[str, Any]:
            task_input = arguments.get(_WRAPPED) if wrapped else arguments
            # Keyed by the call: a retried run (or tool call) starts the task only once.
            key = None if ctx.tool_call_id is None else f"{ctx.run_id}:{ctx.tool_call_id}"
            task = await self.client.start(
                name,
                task_input,
                session=self.session,
                labels=self.labels,
                idempotency_key=key,
            )
            return {
                "task": task.id,
                "status": task.status.value,
                "note": "started in the background; its outcome will come in a later turn",
            }

        description = (kind.description or f"Starts a `{name}` task.") + (
            " Returns the task's handle at once; the outcome arrives in a later turn."
        )
        tool: Tool[Any] = Tool.from_schema(start, name, description, parameters, takes_ctx=True)
        return tool


def describe(item: models.InboxItem) -> str:
    """One inbox item as a line for the model."""
    entry = item.entry
    if isinstance(entry, models.MessageEntry):
        return f"[longrun] task {item.task} says: {entry.message}"
    if isinstance(entry, models.OutcomeEntry):
        head = f"[longrun] task {item.task} ({entry.kind}) ended {entry.status.value}"
        if entry.status is models.Status.COMPLETED:
            return f"{head}; output: {json.dumps(entry.output)}"
        if entry.error is not None:
            return f"{head}: {entry.error.code}: {entry.error.message}"
        if entry.cancellation is not None:
            return f"{head}: {entry.cancellation.model_dump_json(exclude_none=True)}"
        return head
    return f"[longrun] task {item.task}: {entry.model_dump_json()}"
