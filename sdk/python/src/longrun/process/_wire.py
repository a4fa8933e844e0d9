"""The JSON lines of the process-handler protocol (`docs/process-protocol.md`): the only module
of `longrun.process` that knows their shapes.

Standard library only: a handler run by a bare `python3` (the demo's) has no pydantic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SUPPORTED = (1, 2)
"""The protocol versions this runner speaks. Version 2 adds steps and durable sleeps."""


@dataclass(frozen=True)
class Start:
    """The first line on stdin."""

    protocol: int
    task: str
    kind: str
    attempt: int = 1
    steps: dict[str, Any] = field(default_factory=dict)
    """Version 2: the steps (and finished sleeps) saved by earlier attempts, by key."""
    input: Any = None


class BadLine(Exception):
    """A line on stdin that is not a protocol message."""


def start(line: str) -> Start:
    """The start line, or `BadLine`."""
    message = incoming(line)
    if message is None or message["type"] != "start":
        raise BadLine("the first line on stdin is not a start message")
    protocol, task, kind = message.get("protocol"), message.get("task"), message.get("kind")
    attempt, steps = message.get("attempt", 1), message.get("steps", {})
    if not (
        isinstance(protocol, int)
        and isinstance(task, str)
        and isinstance(kind, str)
        and isinstance(attempt, int)
        and isinstance(steps, dict)
    ):
        raise BadLine(f"the start line lacks a field or has one of the wrong type: {line[:200]}")
    return Start(protocol, task, kind, attempt, steps, message.get("input"))


def incoming(line: str) -> dict[str, Any] | None:
    """A later line on stdin as a JSON object, or `None` for a blank line."""
    if not line.strip():
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError as error:
        raise BadLine(f"a line on stdin is not JSON: {error}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadLine("a line on stdin is not an object with a `type`")
    return message


def line(type: str, **fields: Any) -> str:
    """One outgoing message, without its newline; fields that are `None` are left out."""
    message = {"type": type, **{name: value for name, value in fields.items() if value is not None}}
    # ASCII only (`\u` escapes): the line is valid whatever encoding stdout was given.
    return json.dumps(message, separators=(",", ":"))
