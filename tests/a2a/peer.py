#!/usr/bin/env python3
"""Drives a longrun server's A2A door with the official Python SDK (a2a-sdk 1.3.0).

usage: peer.py BASE_URL

The server must serve examples/a2a-tck/longrun.toml (one kind, `tck`, keyed on messageId
prefixes). Runs every scenario over JSON-RPC and over HTTP+JSON (A2A 1.0), then the 0.3 path
over JSON-RPC, and prints one line per scenario and a closing `N passed, N failed` line.
Exits non-zero on any failure.
"""

import asyncio
import copy
import http.server
import json
import sys
import threading
import time
import traceback
import uuid

from a2a.client import ClientConfig, ClientFactory, create_client
from a2a.types import (
    AuthenticationInfo,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskNotCancelableError,
    TaskNotFoundError,
    TaskPushNotificationConfig,
    TaskState,
    UnsupportedOperationError,
)

# No single wait in a scenario may take longer than this.
PATIENCE = 30.0

S = TaskState


def msg(prefix, text="hello", task_id=None):
    """A user message whose messageId starts with `prefix` (the TCK's behaviour key)."""
    message = Message(message_id=f"{prefix}-{uuid.uuid4().hex}", role=Role.ROLE_USER, parts=[Part(text=text)])
    if task_id:
        message.task_id = task_id
    return message


def send_request(message, return_immediately=False, history_length=None, push=None):
    config = SendMessageConfiguration(return_immediately=return_immediately)
    if history_length is not None:
        config.history_length = history_length
    if push is not None:
        config.task_push_notification_config.CopyFrom(push)
    return SendMessageRequest(message=message, configuration=config)


async def one(client, request):
    """The single response of a non-streaming send."""
    responses = [r async for r in client.send_message(request)]
    assert len(responses) == 1, responses
    return responses[0]


async def collect(stream, first_seen=None):
    """Every event of a stream, as (kind, state or text, event); sets `first_seen` on the first."""
    events = []

    async def run():
        async for event in stream:
            events.append(event)
            if first_seen is not None and not first_seen.is_set():
                first_seen.set()

    await asyncio.wait_for(run(), PATIENCE)
    return events


def describe(event):
    if event.HasField("task"):
        return ("task", TaskState.Name(event.task.status.state))
    if event.HasField("status_update"):
        return ("status", TaskState.Name(event.status_update.status.state))
    if event.HasField("artifact_update"):
        update = event.artifact_update
        return ("artifact", update.artifact.parts[0].text, update.append, update.last_chunk)
    if event.HasField("message"):
        return ("message", event.message.parts[0].text)
    return ("unknown", str(event))


async def wait_state(client, task_id, states):
    deadline = time.monotonic() + PATIENCE
    while True:
        task = await client.get_task(GetTaskRequest(id=task_id, history_length=0))
        if task.status.state in states:
            return task
        assert time.monotonic() < deadline, f"task {task_id} stayed {TaskState.Name(task.status.state)}"
        await asyncio.sleep(0.05)


async def expect_error(kind, call):
    try:
        await call
    except kind as error:
        return error
    raise AssertionError(f"expected {kind.__name__}")


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 500 to its first `fail_first` POSTs."""

    def __init__(self, fail_first):
        self.fail_first = fail_first
        self.attempts = 0
        self.received = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                    if not failing:
                        receiver.received.append((dict(self.headers), json.loads(body)))
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self):
        with self.lock:
            return [body for _, body in self.received]

    async def wait_until(self, done):
        deadline = time.monotonic() + PATIENCE
        while True:
            bodies = self.bodies()
            if any(done(body) for body in bodies):
                return bodies
            assert time.monotonic() < deadline, f"the webhook never got it; got {bodies}"
            await asyncio.sleep(0.05)

    def close(self):
        self.server.shutdown()


def body_kind(body):
    if "task" in body:
        return "task:" + body["task"]["status"]["state"]
    if "statusUpdate" in body:
        return "status:" + body["statusUpdate"]["status"]["state"]
    if "artifactUpdate" in body:
        return "artifact:" + body["artifactUpdate"]["artifact"]["parts"][0]["text"]
    return "other"


class Peer:
    def __init__(self, base, binding):
        self.base = base
        self.binding = binding

    async def __aenter__(self):
        bindings = [self.binding]
        self.blocking = await create_client(self.base, client_config=ClientConfig(streaming=False, supported_protocol_bindings=bindings))
        self.streaming = await create_client(self.base, client_config=ClientConfig(streaming=True, supported_protocol_bindings=bindings))
        self.other = await create_client(self.base, client_config=ClientConfig(streaming=True, supported_protocol_bindings=bindings))
        return self

    async def __aexit__(self, *args):
        for client in (self.blocking, self.streaming, self.other):
            await client.close()

    async def send_blocking(self):
        response = await one(self.blocking, send_request(msg("tck-complete-task")))
        task = response.task
        assert task.status.state == S.TASK_STATE_COMPLETED, task
        assert task.status.message.parts[0].text == "Hello from TCK", task.status.message
        assert task.id.startswith("task_") and task.context_id, task
        self.completed = task.id

    async def send_non_blocking_and_get_with_history(self):
        request = send_request(msg("slow"), return_immediately=True)
        task = (await one(self.blocking, request)).task
        assert task.status.state in (S.TASK_STATE_SUBMITTED, S.TASK_STATE_WORKING), task
        done = await wait_state(self.blocking, task.id, [S.TASK_STATE_COMPLETED])
        assert not done.history, "historyLength 0 leaves history out"
        full = await self.blocking.get_task(GetTaskRequest(id=task.id))
        assert [m.role for m in full.history] == [Role.ROLE_USER, Role.ROLE_AGENT], full.history
        assert full.history[0].message_id == request.message.message_id
        last = await self.blocking.get_task(GetTaskRequest(id=task.id, history_length=1))
        assert len(last.history) == 1 and last.history[0].role == Role.ROLE_AGENT, last.history
        texts = [p.text for p in full.artifacts[0].parts]
        assert texts == [f"chunk-{i} " for i in range(5)], texts

    async def stream(self):
        events = await collect(self.streaming.send_message(send_request(msg("tck-stream-artifact-chunked"))))
        seen = [describe(e) for e in events]
        assert seen[0][0] == "task", seen
        assert seen[-1] == ("status", "TASK_STATE_COMPLETED"), seen
        artifacts = [s for s in seen if s[0] == "artifact"]
        assert artifacts == [("artifact", "chunk-1 ", False, False), ("artifact", "chunk-2", True, True)], seen
        task = await self.blocking.get_task(GetTaskRequest(id=events[0].task.id))
        assert [p.text for p in task.artifacts[0].parts] == ["chunk-1 ", "chunk-2"], task.artifacts

    async def list(self):
        response = await self.blocking.list_tasks(ListTasksRequest(page_size=100))
        ids = [t.id for t in response.tasks]
        assert self.completed in ids, ids
        assert response.total_size >= len(ids) >= 1, response
        first = await self.blocking.list_tasks(ListTasksRequest(page_size=1))
        assert len(first.tasks) == 1 and first.next_page_token, first
        second = await self.blocking.list_tasks(ListTasksRequest(page_size=1, page_token=first.next_page_token))
        assert second.tasks[0].id != first.tasks[0].id

    async def cancel(self):
        task = (await one(self.blocking, send_request(msg("sleep"), return_immediately=True))).task
        await wait_state(self.blocking, task.id, [S.TASK_STATE_WORKING])
        cancelled = await self.blocking.cancel_task(CancelTaskRequest(id=task.id))
        assert cancelled.status.state == S.TASK_STATE_CANCELED, cancelled
        await expect_error(TaskNotCancelableError, self.blocking.cancel_task(CancelTaskRequest(id=task.id)))
        await expect_error(TaskNotCancelableError, self.blocking.cancel_task(CancelTaskRequest(id=self.completed)))
        await expect_error(TaskNotFoundError, self.blocking.get_task(GetTaskRequest(id="task_00000000000000000000000000000000")))

    async def two_subscribers_and_a_follow_up(self):
        task = (await one(self.blocking, send_request(msg("tck-input-required")))).task
        assert task.status.state == S.TASK_STATE_INPUT_REQUIRED, task
        assert task.status.message.parts[0].text == "Please provide input", task.status.message
        opened = [asyncio.Event(), asyncio.Event()]
        subscribers = [
            asyncio.create_task(collect(client.subscribe(SubscribeToTaskRequest(id=task.id)), seen))
            for client, seen in zip((self.streaming, self.other), opened)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), PATIENCE)
        answered = (await one(self.blocking, send_request(msg("answer", "forty-two", task_id=task.id)))).task
        assert answered.status.state == S.TASK_STATE_COMPLETED, answered
        assert answered.status.message.parts[0].text == "Received: forty-two", answered.status.message
        roles = [m.role for m in answered.history]
        assert roles == [Role.ROLE_USER, Role.ROLE_AGENT, Role.ROLE_USER, Role.ROLE_AGENT], answered.history
        a, b = [[describe(e) for e in events] for events in await asyncio.gather(*subscribers)]
        assert a == b, (a, b)
        assert a[0] == ("task", "TASK_STATE_INPUT_REQUIRED") and a[-1] == ("status", "TASK_STATE_COMPLETED"), a
        # The task has ended: a message to it, and a subscription, are refused.
        await expect_error(UnsupportedOperationError, one(self.blocking, send_request(msg("again", task_id=task.id))))
        await expect_error(UnsupportedOperationError, collect(self.streaming.subscribe(SubscribeToTaskRequest(id=task.id))))

    async def push(self):
        receiver = Receiver(fail_first=1)
        try:
            push = TaskPushNotificationConfig(
                url=receiver.url,
                token="tok-123",
                authentication=AuthenticationInfo(scheme="Bearer", credentials="secret-abc"),
            )
            task = (await one(self.blocking, send_request(msg("slow"), return_immediately=True, push=push))).task
            bodies = await receiver.wait_until(lambda b: body_kind(b) == "status:TASK_STATE_COMPLETED")
            kinds = [body_kind(b) for b in bodies]
            assert kinds[0].startswith("task:"), kinds
            assert [k for k in kinds if k.startswith("artifact:")] == [f"artifact:chunk-{i} " for i in range(5)], kinds
            assert kinds[-1] == "status:TASK_STATE_COMPLETED", kinds
            assert receiver.attempts == len(bodies) + 1, "the failed first POST was retried"
            for headers, _ in receiver.received:
                lowered = {k.lower(): v for k, v in headers.items()}
                assert lowered["authorization"] == "Bearer secret-abc", lowered
                assert lowered["x-a2a-notification-token"] == "tok-123", lowered

            # The config API: create, get, list, delete on a running task.
            sleeping = (await one(self.blocking, send_request(msg("sleep"), return_immediately=True))).task
            created = await self.blocking.create_task_push_notification_config(
                TaskPushNotificationConfig(task_id=sleeping.id, id="hook-2", url=receiver.url))
            assert created.id == "hook-2" and created.task_id == sleeping.id, created
            got = await self.blocking.get_task_push_notification_config(
                GetTaskPushNotificationConfigRequest(task_id=sleeping.id, id="hook-2"))
            assert got.url == receiver.url, got
            listed = await self.blocking.list_task_push_notification_configs(
                ListTaskPushNotificationConfigsRequest(task_id=sleeping.id))
            assert [c.id for c in listed.configs] == ["hook-2"], listed
            await receiver.wait_until(lambda b: b.get("task", {}).get("id") == sleeping.id)
            await self.blocking.delete_task_push_notification_config(
                DeleteTaskPushNotificationConfigRequest(task_id=sleeping.id, id="hook-2"))
            await expect_error(TaskNotFoundError, self.blocking.get_task_push_notification_config(
                GetTaskPushNotificationConfigRequest(task_id=sleeping.id, id="hook-2")))
            await self.blocking.cancel_task(CancelTaskRequest(id=sleeping.id))
        finally:
            receiver.close()


async def legacy(base):
    """The 0.3 path: a card that lists only the 0.3 JSON-RPC interface makes a2a-sdk use its
    0.3 transport (`message/send`, `tasks/get`, … with `A2A-Version: 0.3`)."""
    probe = await create_client(base, client_config=ClientConfig(streaming=False))
    card = copy.deepcopy(probe._card)
    await probe.close()
    legacy_interfaces = [i for i in card.supported_interfaces if i.protocol_version == "0.3"]
    assert legacy_interfaces, card.supported_interfaces
    del card.supported_interfaces[:]
    card.supported_interfaces.extend(legacy_interfaces)
    blocking = ClientFactory(ClientConfig(streaming=False)).create(card)
    streaming = ClientFactory(ClientConfig(streaming=True)).create(card)
    assert type(blocking._transport).__name__ == "CompatJsonRpcTransport", type(blocking._transport)
    try:
        task = (await one(blocking, send_request(msg("tck-complete-task")))).task
        assert task.status.state == S.TASK_STATE_COMPLETED, task
        assert task.status.message.parts[0].text == "Hello from TCK", task
        events = await collect(streaming.send_message(send_request(msg("tck-stream-001"))))
        seen = [describe(e) for e in events]
        assert seen[0][0] == "task" and seen[-1] == ("status", "TASK_STATE_COMPLETED"), seen
        assert ("artifact", "Stream hello from TCK", False, True) in seen, seen
        got = await blocking.get_task(GetTaskRequest(id=task.id))
        assert got.status.state == S.TASK_STATE_COMPLETED and got.history, got
        asked = (await one(blocking, send_request(msg("tck-input-required")))).task
        assert asked.status.state == S.TASK_STATE_INPUT_REQUIRED, asked
        done = (await one(blocking, send_request(msg("reply", "yes", task_id=asked.id)))).task
        assert done.status.message.parts[0].text == "Received: yes", done
        sleeping = (await one(blocking, send_request(msg("sleep"), return_immediately=True))).task
        await wait_state(blocking, sleeping.id, [S.TASK_STATE_WORKING])
        cancelled = await blocking.cancel_task(CancelTaskRequest(id=sleeping.id))
        assert cancelled.status.state == S.TASK_STATE_CANCELED, cancelled
        await expect_error(TaskNotCancelableError, blocking.cancel_task(CancelTaskRequest(id=sleeping.id)))
    finally:
        await blocking.close()
        await streaming.close()


async def main(base):
    passed, failed = 0, 0

    async def run(name, scenario):
        nonlocal passed, failed
        started = time.monotonic()
        try:
            await scenario()
            passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()

    for binding in ("JSONRPC", "HTTP+JSON"):
        async with Peer(base, binding) as peer:
            for name in ("send_blocking", "send_non_blocking_and_get_with_history", "stream", "list",
                         "cancel", "two_subscribers_and_a_follow_up", "push"):
                await run(f"{binding} {name}", getattr(peer, name))
    await run("JSONRPC 0.3 client", lambda: legacy(base))
    print(f"a2a-sdk: {passed} passed, {failed} failed", flush=True)
    return failed == 0


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main(sys.argv[1])) else 1)
