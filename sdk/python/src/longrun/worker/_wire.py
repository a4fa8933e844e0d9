"""The worker protocol's requests and answers (`docs/worker-protocol.md`): the only module of
`longrun.worker` that knows the routes and the JSON shapes of registration and heartbeat. The
reports and the pushed messages are the process protocol's (`longrun.process._wire`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from longrun._api import Request, segment


class Registered(BaseModel):
    """`201` to `POST /v1/workers`: the worker's id and its timings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    worker: str
    heartbeat_ms: int
    expiry_ms: int
    protocol: int


class Heartbeat(BaseModel):
    """`200` to a heartbeat: the assignments the server counts as this worker's."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    assignments: list[str]
    draining: bool = False


def register(name: str, capacity: int, kinds: Mapping[str, Mapping[str, Any] | None]) -> Request:
    """Registers a worker serving `kinds` (name → declared input schema, or `None`)."""
    declared: list[dict[str, Any]] = []
    for kind, schema in kinds.items():
        entry: dict[str, Any] = {"name": kind}
        if schema is not None:
            entry["input_schema"] = dict(schema)
        declared.append(entry)
    body = {"name": name, "capacity": capacity, "kinds": declared}
    return Request("POST", "/v1/workers", body=body)


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
