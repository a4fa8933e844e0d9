#!/usr/bin/env python3
"""A longrun process handler (protocol 2): an agent loop whose model calls are durable steps.

Input: {"calls": n, "fail_at": k, "log": path}. Makes n simulated model calls, each recorded as
a step ("call-1", "call-2", ...) and acknowledged by the runtime before the next begins, with a
short durable sleep ("pause") half-way. A re-run after a crash, or a retry, receives the saved
steps in the start line and skips them: no call is made twice once its step_saved arrived.
With "fail_at", the first attempt fails (retryably, retry_after_ms 10) just before call k, as a
rate-limited API would. With "log", every call actually made appends a line to that file, so a
test can count executions outside the runtime. Python 3 standard library only.

See docs/process-protocol.md.
"""

import json
import sys


def send(**message):
    """Writes one protocol message; flushing matters, the runtime reads line by line."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def wait_for(kind, key):
    """Reads stdin until the runtime's reply of this type for this key."""
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if message.get("type") == kind and message.get("key") == key:
            return message
        if message.get("type") == "cancel":
            send(type="cancelled", message="cancelled while waiting for " + key)
            sys.exit(0)
    sys.exit(1)


def model_call(n, history, log):
    """Stands in for a model API call: the part that must not run twice."""
    if log:
        with open(log, "a") as f:
            f.write("call-%d\n" % n)
    return {"reply": "answer %d" % n, "seen": len(history)}


def main():
    start = json.loads(sys.stdin.readline())
    if start.get("protocol") != 2:
        send(type="fail", code="protocol", message="this handler speaks protocol 2", retryable=False)
        return
    steps = start.get("steps", {})
    attempt = start["attempt"]
    params = start["input"] or {}
    calls = params.get("calls", 3)
    fail_at = params.get("fail_at")
    history = []
    for n in range(1, calls + 1):
        key = "call-%d" % n
        if key in steps:
            history.append(steps[key])
            continue
        if fail_at == n and attempt == 1:
            send(type="fail", code="rate_limited", message="429 from the model API",
                 retryable=True, retry_after_ms=10)
            return
        reply = model_call(n, history, params.get("log"))
        send(type="step", key=key, value=reply)
        wait_for("step_saved", key)
        history.append(reply)
        send(type="progress", percent=100.0 * n / calls, message="call %d of %d" % (n, calls))
        if n == calls // 2:
            send(type="sleep", key="pause", ms=params.get("pause_ms", 20))
            wait_for("step_saved", "pause")
    send(type="complete", output={"replies": [h["reply"] for h in history], "attempt": attempt})


if __name__ == "__main__":
    main()
