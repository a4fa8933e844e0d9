"""longrun's Python SDK: `Client` and `AsyncClient` for the /v1 HTTP API, and
`longrun.process.run` to write a process handler as `async def handler(ctx, input)`.

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
}

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ConflictError",
    "DisconnectedError",
    "Event",
    "InvalidRequestError",
    "Kind",
    "LongrunError",
    "NotFoundError",
    "Reconnect",
    "Status",
    "Task",
    "UnauthorizedError",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'longrun' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
