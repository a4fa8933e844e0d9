"""The client's I/O-free parts: the SSE parser, the resume bookkeeping, requests as written."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from longrun import _api, models
from longrun.errors import ConflictError, InvalidRequestError


def event(seq: int, status: str = "working") -> models.Event:
    return models.Event.model_validate(
        {"task": "task_x", "seq": seq, "at_ms": 0, "status": status, "change": {"type": "detached"}}
    )


def test_sse_messages_with_ids_events_comments_and_multiline_data() -> None:
    parser = _api.SseParser()
    lines = [": keep-alive", "", "id: 4", 'data: {"a":', "data: 1}", "", "event: lagged"]
    lines += ["data:x", "", "", "id: 5", ""]
    messages = [m for m in map(parser.feed, lines) if m is not None]
    assert [(m.event, m.data, m.id) for m in messages] == [
        ("message", '{"a":\n1}', "4"),
        ("lagged", "x", None),
    ]


def test_resume_drops_repeats_and_stops_at_the_end() -> None:
    resume = _api.Resume(2)
    assert not resume.accept(event(1))
    assert not resume.accept(event(2))
    assert resume.accept(event(3))
    assert not resume.accept(event(3))
    assert resume.after == 3
    assert not resume.finished
    assert resume.accept(event(4, "completed"))
    assert resume.finished


def test_reconnect_backs_off_to_a_bound() -> None:
    reconnect = _api.Reconnect(initial=0.5, maximum=3)
    assert [reconnect.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_start_writes_milliseconds_and_leaves_unset_fields_out() -> None:
    request = _api.start(
        "k",
        None,
        session="s",
        labels=None,
        ttl=timedelta(minutes=1),
        deadline=None,
        wait=2.5,
        idempotency_key="key-1",
    )
    assert json.loads(request.content() or b"") == {
        "kind": "k",
        "input": None,
        "session": "s",
        "ttl_ms": 60_000,
        "wait_ms": 2500,
    }
    assert request.headers == {"idempotency-key": "key-1"}
    assert request.wait == 2.5
    with pytest.raises(ValueError, match="negative"):
        _api.millis(-1)


def test_paths_escape_keys_and_sessions() -> None:
    assert _api.answer("task_x", "a/b c", 1).path == "/v1/tasks/task_x/answers/a%2Fb%20c"
    drain = _api.drain("chat/1", ack=None, max=None, wait=None)
    assert drain.path == "/v1/sessions/chat%2F1/inbox:drain"
    assert drain.content() == b"{}"


def test_list_parameters() -> None:
    request = _api.list_page(
        status=["working", models.Status.FAILED],
        kind="k",
        session=None,
        labels={"a": "b"},
        limit=10,
        after="c",
    )
    assert request.params == (
        ("status", "working"),
        ("status", "failed"),
        ("kind", "k"),
        ("label", "a:b"),
        ("limit", "10"),
        ("after", "c"),
    )
    with pytest.raises(ValueError, match="nope"):
        _api.list_page(status="nope", kind=None, session=None, labels=None, limit=None, after=None)


def test_error_answers_become_typed_exceptions() -> None:
    body = {"error": {"code": "already_ended", "message": "it ended"}}
    conflict = _api.error(httpx.Response(409, json=body))
    assert isinstance(conflict, ConflictError)
    assert (conflict.status, conflict.code, conflict.message) == (409, "already_ended", "it ended")
    proxy = _api.error(httpx.Response(502, text="<html>bad gateway</html>"))
    assert (proxy.status, proxy.code) == (502, "http_502")
    assert "bad gateway" in proxy.message
    invalid = _api.error(
        httpx.Response(422, json={"error": {"code": "invalid_input", "message": "m"}})
    )
    assert isinstance(invalid, InvalidRequestError)
