#!/usr/bin/env python3
"""A smoke run of a2acli (crates.io a2a-cli, the a2a-rs project's CLI) against a longrun server.

usage: a2acli.py A2ACLI HOST:PORT

The server must serve examples/a2a-tck/longrun.toml. a2acli cannot choose a messageId, so the
TCK handler also keys on the text: `slow …` streams five chunks, `sleep …` waits to be
cancelled, `tck-input-required` asks. Runs over JSON-RPC and over HTTP+JSON (`--transport
rest`), prints one line per scenario and a closing `N passed, N failed` line; exits non-zero
on any failure.
"""

import http.server
import json
import subprocess
import sys
import threading
import time
import traceback

A2ACLI, HOST = sys.argv[1], sys.argv[2]
PATIENCE = 60


def a2acli(*args, transport=None, ok=True, lines=False, background=False):
    command = [A2ACLI, "-a", HOST, "-o", "json", "--compact"]
    if transport:
        command += ["--transport", transport]
    command += list(args)
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE)
    if ok and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}: {done.stdout} {done.stderr}")
    if not ok:
        assert done.returncode != 0, f"{' '.join(args)} should have failed: {done.stdout}"
        return json.loads(done.stdout or done.stderr)
    if lines:
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return json.loads(done.stdout)


def state(event):
    body = event.get("task") or event.get("statusUpdate") or event
    return body["status"]["state"]


class Receiver:
    """A webhook receiver on 127.0.0.1 that takes every POST."""

    def __init__(self):
        self.bodies = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def card():
    # The card is valid against A2A 1.0's JSON schema (a2acli checks it).
    got = a2acli("card", "get", "--validate")
    assert got["name"] and [s["id"] for s in got["skills"]] == ["tck"], got
    assert got["capabilities"]["streaming"] and got["capabilities"]["pushNotifications"], got


def send(transport):
    task = a2acli("send", "hello from a2acli", transport=transport)["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
    assert task["status"]["message"]["parts"][0]["text"] == "echo: hello from a2acli", task


def stream(transport):
    events = a2acli("send", "slow job", "--stream", transport=transport, lines=True)
    assert "task" in events[0], events[0]
    chunks = [e["artifactUpdate"]["artifact"]["parts"][0]["text"] for e in events if "artifactUpdate" in e]
    assert chunks == [f"chunk-{i} " for i in range(5)], chunks
    assert state(events[-1]) == "TASK_STATE_COMPLETED", events[-1]


def get_list_subscribe_cancel(transport):
    task = a2acli("send", "sleep now", "--return-immediately", "--async", transport=transport)["task"]
    task_id = task["id"]
    got = a2acli("task", "get", task_id, "--history-length", "1", transport=transport)
    assert got["id"] == task_id and len(got["history"]) == 1, got
    listed = a2acli("task", "list", transport=transport)
    assert task_id in [t["id"] for t in listed["tasks"]], listed
    subscriber = a2acli("task", "subscribe", task_id, transport=transport, background=True)
    time.sleep(1.0)
    cancelled = a2acli("task", "cancel", task_id, transport=transport)
    assert cancelled["status"]["state"] == "TASK_STATE_CANCELED", cancelled
    out, err = subscriber.communicate(timeout=PATIENCE)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events and "task" in events[0], (out, err)
    assert state(events[-1]) == "TASK_STATE_CANCELED", events
    again = a2acli("task", "cancel", task_id, transport=transport, ok=False)
    assert again["error"]["code"] == "TASK_NOT_CANCELABLE", again
    missing = a2acli("task", "get", "task_00000000000000000000000000000000", transport=transport, ok=False)
    assert missing["error"]["code"] == "TASK_NOT_FOUND", missing


def follow_up(transport):
    asked = a2acli("send", "tck-input-required", transport=transport)["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", asked
    done = a2acli("send", "42", "--task-id", asked["id"], transport=transport)["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED", done
    assert done["status"]["message"]["parts"][0]["text"] == "Received: 42", done


def push_configs(transport):
    receiver = Receiver()
    try:
        task_id = a2acli("send", "sleep for push", "--return-immediately", "--async", transport=transport)["task"]["id"]
        created = a2acli("task", "push-config", "create", task_id, receiver.url, "--config-id", "cli",
                         "--token", "t", "--auth-scheme", "Bearer", "--auth-credentials", "c", transport=transport)
        assert created["id"] == "cli" and created["url"] == receiver.url, created
        got = a2acli("task", "push-config", "get", task_id, "cli", transport=transport)
        assert got["authentication"]["scheme"] == "Bearer", got
        listed = a2acli("task", "push-config", "list", task_id, transport=transport)
        assert [c["id"] for c in listed["configs"]] == ["cli"], listed
        deadline = time.monotonic() + PATIENCE
        while not any(b.get("task", {}).get("id") == task_id for b in receiver.bodies):
            assert time.monotonic() < deadline, receiver.bodies
            time.sleep(0.05)
        a2acli("task", "push-config", "delete", task_id, "cli", transport=transport)
        gone = a2acli("task", "push-config", "get", task_id, "cli", transport=transport, ok=False)
        assert gone["error"]["code"] == "TASK_NOT_FOUND", gone
        a2acli("task", "cancel", task_id, transport=transport)
    finally:
        receiver.server.shutdown()


def main():
    passed = failed = 0
    scenarios = [("card", card)]
    for transport in ("jsonrpc", "rest"):
        for scenario in (send, stream, get_list_subscribe_cancel, follow_up, push_configs):
            scenarios.append((f"{transport} {scenario.__name__}", lambda s=scenario, t=transport: s(t)))
    for name, scenario in scenarios:
        started = time.monotonic()
        try:
            scenario()
            passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
    print(f"a2acli: {passed} passed, {failed} failed", flush=True)
    return failed == 0


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
