"""longrun's Python SDK: `Worker` to serve kinds from any machine, `Client` and `AsyncClient`
for the /v1 HTTP API, `longrun.process.run` to write a process handler, and
`longrun.pydantic_ai` for kinds as tools of Pydantic AI. A handler is
`async def handler(ctx, input)` for both a worker and a process.

The client's names are imported on first use, so that `longrun.process`, which needs only the
standard library, runs under a bare `python3` without httpx or pydantic installed.

See `sdk/python/README.md`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from longrun._api import Reconnect
    from longrun.async_client import AsyncClient
    from longrun.client import Client
    from longrun.errors import (
        ApiError,
        ConflictError,
        DisconnectedError,
        InvalidRequestError,
        LongrunError,
        NotFoundError,
        UnauthorizedError,
    )
    from longrun.models import Event, Kind, Status, Task
    from longrun.process import Cancelled, Context, Fail, Unanswered
    from longrun.worker import AssignmentGone, Worker

_WHERE = {
    "Reconnect": "longrun._api",
    "AsyncClient": "longrun.async_client",
    "Client": "longrun.client",
    "ApiError": "longrun.errors",
    "ConflictError": "longrun.errors",
    "DisconnectedError": "longrun.errors",
    "InvalidRequestError": "longrun.errors",
    "LongrunError": "longrun.errors",
    "NotFoundError": "longrun.errors",
    "UnauthorizedError": "longrun.errors",
    "Event": "longrun.models",
    "Kind": "longrun.models",
    "Status": "longrun.models",
    "Task": "longrun.models",
    "Cancelled": "longrun.process",
    "Context": "longrun.process",
    "Fail": "longrun.process",
    "Unanswered": "longrun.process",
    "AssignmentGone": "longrun.worker",
    "Worker": "longrun.worker",
}

__all__ = [
    "ApiError",
    "AssignmentGone",
    "AsyncClient",
    "Cancelled",
    "Client",
    "ConflictError",
    "Context",
    "DisconnectedError",
    "Event",
    "Fail",
    "InvalidRequestError",
    "Kind",
    "LongrunError",
    "NotFoundError",
    "Reconnect",
    "Status",
    "Task",
    "Unanswered",
    "UnauthorizedError",
    "Worker",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'longrun' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
