"""`Client` against a real `longrun serve`: every call, a task's progress and artifact, a question
answered from the client, a cancel, paging, the inbox, watch resume across a server restart, and
authentication errors.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from longrun import (
    ApiError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    Status,
    UnauthorizedError,
)
from longrun.models import (
    AgentMessageChange,
    ArtifactChange,
    EndedChange,
    Event,
    InputRequestedChange,
    MessageEntry,
    OutcomeEntry,
    ProgressChange,
)
from tests.conftest import KINDS

from .conftest import ALICE, Server


def unique(prefix: str) -> str:
    """A name no other test uses, so tests share one server without seeing each other."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_for(client: Client, task_id: str, kind: str) -> tuple[list[Event], Event]:
    """The task's events up to the first whose change has type `kind`, and that event."""
    seen: list[Event] = []
    for event in client.watch(task_id):
        seen.append(event)
        if event.change.type == kind:
            return seen, event
    raise AssertionError(f"the task ended without a `{kind}` event: {seen}")


def test_health_and_kinds(client: Client) -> None:
    assert client.health().status == "ok"
    kinds = {kind.name: kind for kind in client.kinds()}
    assert set(kinds) == KINDS
    assert kinds["countdown"].restart.value == "rerun"
    assert kinds["work"].restart.value == "fail"


def test_start_with_wait_returns_the_outcome_with_progress_and_artifact(client: Client) -> None:
    session = unique("s")
    task = client.start(
        "work",
        {"items": 3},
        session=session,
        labels={"team": "sdk"},
        ttl=120,
        deadline=600,
        wait=30,
    )
    assert task.status is Status.COMPLETED
    assert task.output == {"items": 3}
    assert task.session == session
    # The server labels each task with the door that started it.
    assert task.labels == {"team": "sdk", "door": "http"}
    assert task.ttl_ms == 120_000
    assert task.deadline_at_ms is not None
    assert task.deadline_at_ms - task.created_at_ms == 600_000
    assert task.progress is not None
    assert task.progress.percent == 100
    assert task.progress.message == "done"
    [artifact] = task.artifacts
    assert (artifact.id, artifact.name, artifact.complete) == ("report", "Report", True)
    assert artifact.parts == ["item 0", "item 1", "item 2"]
    assert client.get(task.id) == task


def test_watch_shows_every_change_in_order(client: Client) -> None:
    task = client.start("work", {"items": 1})
    events = list(client.watch(task))
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    changes = [event.change for event in events]
    assert [type(change) for change in changes] == [
        type(changes[0]),
        type(changes[1]),
        ProgressChange,
        ArtifactChange,
        ProgressChange,
        EndedChange,
    ]
    assert [change.type for change in changes[:2]] == ["submitted", "started"]
    assert events[-1].status is Status.COMPLETED
    ended = changes[-1]
    assert isinstance(ended, EndedChange)
    assert ended.output == {"items": 1}


def test_watch_after_a_sequence_number_resumes_there(client: Client) -> None:
    task = client.start("work", {}, wait=30)
    assert task.is_terminal
    later = list(client.watch(task, after=3))
    assert [event.seq for event in later] == list(range(4, task.last_seq + 1))
    # After the last event of an ended task there is nothing (the server answers 204).
    assert list(client.watch(task, after=task.last_seq)) == []


def test_a_question_answered_from_the_client(client: Client) -> None:
    session = unique("ask")
    task = client.start("work", {"mode": "ask"}, session=session)
    _, asked = wait_for(client, task.id, "input_requested")
    assert asked.status is Status.INPUT_REQUIRED
    assert isinstance(asked.change, InputRequestedChange)
    assert asked.change.key == "approve"
    waiting = client.get(task)
    assert waiting.status is Status.INPUT_REQUIRED
    assert waiting.questions == {"approve": {"type": "boolean", "message": "Approve?"}}

    after_answer = client.answer(task, "approve", True)
    assert after_answer.questions == {}
    rest = list(client.watch(task, after=asked.seq))
    messages = [event.change for event in rest if isinstance(event.change, AgentMessageChange)]
    assert [(m.message, m.trigger) for m in messages] == [("approved: True", True)]
    assert client.get(task).output == {"approved": True}

    with pytest.raises(ConflictError) as refused:
        client.answer(task, "approve", False)
    assert refused.value.status == 409
    assert refused.value.code == "already_ended"


def test_cancel(client: Client) -> None:
    task = client.start("work", {"mode": "wait"})
    wait_for(client, task.id, "progress")
    ended = client.cancel(task)
    assert ended.status is Status.CANCELLED
    assert ended.cancellation is not None
    assert ended.cancellation.reason.value == "requested"
    assert ended.cancellation.by == "alice"
    with pytest.raises(ConflictError) as again:
        client.cancel(task)
    assert (again.value.status, again.value.code) == (409, "already_ended")


def test_a_handler_failure_and_invalid_input(client: Client) -> None:
    failed = client.start("work", {"mode": "fail", "items": 2}, wait=30)
    assert failed.status is Status.FAILED
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == ("boom", "it broke on purpose")
    assert failed.error.details == {"items": 2}
    # The handler's input model refuses it (the server has no schema for this kind).
    invalid = client.start("work", {"mode": "dance"}, wait=30)
    assert invalid.error is not None
    assert invalid.error.code == "invalid_input"
    assert "mode" in invalid.error.message


def test_errors_carry_the_servers_code_and_status(client: Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.get("task_" + "0" * 32)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(InvalidRequestError) as unknown:
        client.start("no-such-kind", {})
    assert (unknown.value.status, unknown.value.code) == (422, "unknown_kind")
    with pytest.raises(InvalidRequestError) as bad_id:
        client.get("not-a-task-id")
    assert (bad_id.value.status, bad_id.value.code) == (400, "bad_request")
    assert isinstance(bad_id.value, ApiError)


def test_list_follows_the_cursor_page_by_page(client: Client) -> None:
    batch = unique("batch")
    started = [client.start("work", {}, labels={"batch": batch}, wait=30).id for _ in range(5)]
    pages = list(client.pages(labels={"batch": batch}, limit=2))
    assert [len(page.tasks) for page in pages] == [2, 2, 1]
    assert pages[-1].next is None
    listed = [task.id for task in client.list(labels={"batch": batch}, limit=2)]
    assert listed == started[::-1]  # newest first
    assert [task.id for page in pages for task in page.tasks] == listed
    assert list(client.list(labels={"batch": batch}, status=["failed", Status.CANCELLED])) == []
    assert len(list(client.list(labels={"batch": batch}, status="completed", kind="work"))) == 5


def test_inbox_drain_and_ack(client: Client) -> None:
    session = unique("inbox")
    first = client.start("work", {"items": 1}, session=session)
    drained = client.drain(session, wait=30)
    while len(drained.items) < 1:
        drained = client.drain(session, wait=30)
    [item] = drained.items
    assert item.task == first.id
    assert isinstance(item.entry, OutcomeEntry)
    assert item.entry.status is Status.COMPLETED
    assert item.entry.output == {"items": 1}
    assert drained.through == item.position
    # Not acknowledged yet: the same item comes again.
    assert [again.position for again in client.drain(session).items] == [item.position]

    asking = client.start("work", {"mode": "ask"}, session=session)
    wait_for(client, asking.id, "input_requested")
    client.answer(asking, "approve", "yes")
    list(client.watch(asking))
    acked = client.drain(session, ack=drained.through, wait=30)
    assert acked.acknowledged == 1
    while not any(isinstance(i.entry, OutcomeEntry) for i in acked.items):
        acked = client.drain(session, wait=30)
    entries = [i.entry for i in acked.items]
    assert isinstance(entries[0], MessageEntry)
    assert entries[0].message == "approved: yes"
    assert acked.through is not None
    assert client.ack(session, acked.through) == len(acked.items)
    assert client.drain(session).items == []


def test_another_principal_sees_nothing(client: Client, bob: Client) -> None:
    session = unique("private")
    task = client.start("work", {}, session=session, wait=30)
    with pytest.raises(NotFoundError):
        bob.get(task)
    with pytest.raises(NotFoundError):
        bob.cancel(task)
    assert task.id not in [t.id for t in bob.list(session=session)]
    assert bob.drain(session).items == []


def test_authentication_errors(server: Server) -> None:
    for token in (None, "wrong-token"):
        with Client(server.url, token=token) as anonymous, pytest.raises(UnauthorizedError) as e:
            anonymous.kinds()
        assert (e.value.status, e.value.code) == (401, "unauthorized")
    with Client(server.url, token="wrong-token") as wrong, pytest.raises(UnauthorizedError):
        list(wrong.watch("task_" + "0" * 32))


def test_the_idempotency_key_is_sent_as_a_header(server: Server) -> None:
    sent: list[httpx.Request] = []
    with (
        httpx.Client(event_hooks={"request": [sent.append]}) as http,
        Client(server.url, token=ALICE, http=http) as client,
    ):
        client.start("work", {}, idempotency_key="order-42", wait=30)
        client.start("work", {}, wait=30)
    assert [request.headers.get("idempotency-key") for request in sent] == ["order-42", None]
    assert all(r.headers["authorization"] == f"Bearer {ALICE}" for r in sent)


def test_a_repeated_idempotency_key_answers_with_the_first_task(client: Client) -> None:
    first = client.start("work", {}, idempotency_key="order-43")
    again = client.start("work", {}, idempotency_key="order-43")
    assert again.id == first.id
    assert again.idempotency_key == "order-43"
    # The same key with another input is refused, with the server's code.
    with pytest.raises(ApiError) as e:
        client.start("work", {"other": True}, idempotency_key="order-43")
    assert (e.value.status, e.value.code) == (422, "idempotency_key_reused")


def test_a_delayed_task_waits_submitted(client: Client) -> None:
    task = client.start("work", {}, delay=3600)
    assert task.status == "submitted"
    assert task.start_at_ms is not None
    assert task.start_at_ms > task.created_at_ms
    assert client.cancel(task).status == "cancelled"


def test_watch_resumes_across_a_server_restart(server: Server, client: Client) -> None:
    task = client.start("countdown", {"seconds": 3})
    events: list[Event] = []
    restarted = False
    for event in client.watch(task):
        events.append(event)
        if isinstance(event.change, ProgressChange) and not restarted:
            # The server crashes under the watcher; the task is re-run after the restart
            # (restart = "rerun"), and the watch picks up from the last event it saw.
            restarted = True
            server.kill()
            server.start()
    assert restarted
    seqs = [event.seq for event in events]
    assert seqs == list(range(1, len(seqs) + 1)), "a gap or a repeat"
    assert events[-1].status is Status.COMPLETED
    attempts = [e.change.attempt for e in events if e.change.type == "started"]  # type: ignore[union-attr]
    assert attempts == [1, 2]


def test_unknown_event_changes_parse_as_unknown() -> None:
    data: dict[str, Any] = {
        "task": "task_x",
        "seq": 7,
        "at_ms": 1,
        "status": "working",
        "change": {"type": "checkpoint_taken", "key": "fetch", "value": 3},
    }
    event = Event.model_validate(data)
    assert event.change.type == "checkpoint_taken"
    assert event.change.model_extra == {"key": "fetch", "value": 3}
