#!/usr/bin/env python3
"""A longrun process handler (protocol 1): counts down, optionally asking to go on half-way.

Input: {"seconds": n, "confirm": bool}. Reports progress every second; with "confirm" it asks a
yes/no question half-way and fails if the answer is no. Honours cancellation, whether it arrives
as a {"type": "cancel"} line or as SIGTERM. Python 3 standard library only.

See docs/process-protocol.md.
"""

import json
import queue
import signal
import sys
import threading
import time

# Lines the runtime sends after the start line, read by a thread, so that the count-down loop
# can wait for "a second or a message, whichever comes first".
inbox = queue.Queue()
# Answers by question key; None for a question that timed out.
answers = {}
stdin_open = True


class Cancelled(Exception):
    """The runtime is cancelling the task (a cancel line, or SIGTERM)."""


def send(**message):
    """Writes one protocol message; flushing matters, the runtime reads line by line."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def read_stdin():
    for line in sys.stdin:
        if line.strip():
            inbox.put(json.loads(line))
    inbox.put({"type": "eof"})


def on_sigterm(signum, frame):
    # Raising (rather than touching the queue, whose lock the interrupted code may hold) is the
    # one thing a signal handler can do safely here.
    raise Cancelled()


def wait(seconds):
    """Waits `seconds`, filing answers as they arrive; raises Cancelled on a cancel line."""
    global stdin_open
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            message = inbox.get(timeout=remaining)
        except queue.Empty:
            return
        kind = message.get("type")
        if kind == "cancel":
            raise Cancelled()
        if kind == "answer":
            answers[message["key"]] = message.get("value")
            return
        if kind == "answer_timeout":
            answers[message["key"]] = None
            return
        if kind == "eof":
            stdin_open = False


def confirmed(remaining):
    """Asks whether to go on; True for yes."""
    send(
        type="ask",
        key="confirm",
        request={"type": "boolean", "message": f"Halfway there, {remaining} s to go. Continue?"},
    )
    while "confirm" not in answers:
        if not stdin_open:
            return False  # nobody can answer any more
        wait(1.0)
    value = answers["confirm"]
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "y", "true")
    return value is True


def main():
    start = json.loads(sys.stdin.readline())
    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=read_stdin, daemon=True).start()

    task_input = start.get("input")
    try:
        seconds = int(task_input.get("seconds", 10))
        confirm = bool(task_input.get("confirm", False))
    except (AttributeError, TypeError, ValueError):
        seconds = -1
    if seconds < 0:
        send(type="fail", code="invalid_input", message='expected {"seconds": n, "confirm": bool} with n >= 0')
        return
    print(f"countdown of {seconds} s for {start['task']} (attempt {start['attempt']})", file=sys.stderr)

    asked = False
    for elapsed in range(seconds):
        remaining = seconds - elapsed
        if confirm and not asked and elapsed == seconds // 2:
            asked = True
            if not confirmed(remaining):
                send(type="fail", code="declined", message="the countdown was not confirmed")
                return
        send(type="progress", percent=round(100 * elapsed / seconds, 1), message=f"{remaining} s left")
        wait(1.0)
    send(type="progress", percent=100, message="liftoff")
    send(type="complete", output={"seconds": seconds, "confirmed": asked, "summary": f"counted down {seconds} s"})


if __name__ == "__main__":
    try:
        main()
    except Cancelled:
        send(type="cancelled", message="the countdown was cancelled")
