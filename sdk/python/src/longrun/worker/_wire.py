"""The worker protocol's requests (`docs/worker-protocol.md`): the only module of
`longrun.worker` that knows its routes. The shapes of registration and heartbeat are
`longrun.models`' (checked against `docs/openapi.json`); the reports and the pushed messages are
the process protocol's (`longrun.process._wire`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from longrun import models
from longrun._api import Request, segment

Registered = models.WorkerRegistered
Heartbeat = models.WorkerHeartbeat


def register(name: str, capacity: int, kinds: Mapping[str, Mapping[str, Any] | None]) -> Request:
    """Registers a worker serving `kinds` (name → declared input schema, or `None`)."""
    body = models.WorkerRegistration(
        name=name,
        capacity=capacity,
        kinds=[
            models.WorkerKind(name=kind, input_schema=None if schema is None else dict(schema))
            for kind, schema in kinds.items()
        ],
    )
    return Request("POST", "/v1/workers", body=body.model_dump(mode="json", exclude_none=True))


def events(worker: str, last_event_id: str | None) -> Request:
    headers = {"accept": "text/event-stream"}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    return Request("GET", f"/v1/workers/{segment(worker)}/events", headers=headers)


def heartbeat(worker: str) -> Request:
    return Request("POST", f"/v1/workers/{segment(worker)}/heartbeat")


def report_path(worker: str, assignment: str) -> str:
    """Where one report of an assignment is posted; its body is a process-protocol message."""
    return f"/v1/workers/{segment(worker)}/assignments/{segment(assignment)}/reports"


def drain(worker: str) -> Request:
    return Request("POST", f"/v1/workers/{segment(worker)}/drain")


def leave(worker: str) -> Request:
    return Request("DELETE", f"/v1/workers/{segment(worker)}")
