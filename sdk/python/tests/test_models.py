"""The SDK's models against `docs/openapi.json`: every schema has a model, with the same
properties and the same required ones, and every enum the same values. When the API changes,
this fails until the models follow.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from longrun import models

OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
SCHEMAS: dict[str, Any] = json.loads(OPENAPI.read_text())["components"]["schemas"]

OBJECTS: dict[str, type[BaseModel]] = {
    "Artifact": models.Artifact,
    "Cancellation": models.Cancellation,
    "CreateTask": models.CreateTask,
    "DrainRequest": models.DrainRequest,
    "Drained": models.Drained,
    "ErrorBody": models.ErrorBody,
    "ErrorDetail": models.ErrorDetail,
    "Event": models.Event,
    "Health": models.Health,
    "InboxItem": models.InboxItem,
    "Kind": models.Kind,
    "KindList": models.KindList,
    "Lagged": models.Lagged,
    "Progress": models.Progress,
    "Task": models.Task,
    "TaskError": models.TaskError,
    "TaskPage": models.TaskPage,
    "Webhook": models.Webhook,
    "Worker": models.WorkerInfo,
    "WorkerEvent": models.WorkerEvent,
    "WorkerHeartbeat": models.WorkerHeartbeat,
    "WorkerKind": models.WorkerKind,
    "WorkerList": models.WorkerList,
    "WorkerRegistered": models.WorkerRegistered,
    "WorkerRegistration": models.WorkerRegistration,
    "WorkerReport": models.WorkerReport,
}
UNIONS: dict[str, dict[str, type[BaseModel]]] = {
    "Change": models._CHANGES,
    "InboxEntry": models._ENTRIES,
}
ENUMS: dict[str, type[Enum]] = {
    "CancelReason": models.CancelReason,
    "RestartPolicy": models.RestartPolicy,
    "Status": models.Status,
    "WebhookEvents": models.WebhookEvents,
}


def shape(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    fields = model.model_fields
    return set(fields), {name for name, field in fields.items() if field.is_required()}


def documented(schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    return set(schema.get("properties", {})), set(schema.get("required", []))


def test_every_schema_has_a_model() -> None:
    assert set(SCHEMAS) == set(OBJECTS) | set(UNIONS) | set(ENUMS)


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_object_models_match(name: str) -> None:
    assert shape(OBJECTS[name]) == documented(SCHEMAS[name])


@pytest.mark.parametrize("name", sorted(UNIONS))
def test_tagged_unions_match(name: str) -> None:
    variants = {v["properties"]["type"]["enum"][0]: v for v in SCHEMAS[name]["oneOf"]}
    assert set(variants) == set(UNIONS[name])
    for tag, variant in variants.items():
        assert shape(UNIONS[name][tag]) == documented(variant), tag


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_enums_match(name: str) -> None:
    assert {member.value for member in ENUMS[name]} == set(SCHEMAS[name]["enum"])


def test_unknown_fields_from_a_newer_server_are_ignored() -> None:
    error = models.ErrorBody.model_validate(
        {"error": {"code": "x", "message": "y", "hint": "new"}, "trace": 1}
    )
    assert error.error.code == "x"
