#!/usr/bin/env python3
"""The A2A TCK's system under test, as a longrun process handler (protocol 1).

The A2A TCK (github.com/a2aproject/a2a-tck) drives an agent by the prefix of each message's
`messageId`; this handler does what each prefix asks. The kind is configured with
`message_input`, so its input is the whole A2A message: {"messageId", "contextId", "text",
"parts", "metadata"}. Clients that cannot choose a messageId (a2acli) get the same behaviours
from the text: a message whose text starts with a prefix below behaves as that prefix.

  tck-complete-task            complete, with the message "Hello from TCK"
  tck-delayed-complete         working for 2 s, then complete with "Done after delay"
  tck-artifact-text            a text artifact, then complete
  tck-artifact-file            a file artifact (bytes), then complete
  tck-artifact-file-url        a file artifact (url), then complete
  tck-artifact-data            a data artifact, then complete
  tck-message-response         answer with a message instead of a task
  tck-input-required           ask for input; complete with what was answered
  tck-reject-task              fail with code "rejected"
  tck-stream-001, tck-stream-003, tck-stream-ordering-001, tck-stream-artifact-text
                               working, a text artifact, complete
  tck-stream-002               complete at once
  tck-stream-artifact-file     working, a file artifact, complete
  tck-stream-artifact-chunked  working, an artifact in two appended chunks, complete
  test-resubscribe-message-id  working for 4 s, then complete
  slow                         an artifact "out" in 5 chunks, 1 s apart, then complete
  sleep                        wait until cancelled (at most 10 minutes)
  anything else                complete with "echo: <text>"

See docs/process-protocol.md for the protocol and docs/a2a.md for the A2A mapping (file parts
are written {"file": {...}}; an output {"a2a_message": ...} answers with a message).
"""

import json
import queue
import signal
import sys
import threading
import time

inbox = queue.Queue()


class Cancelled(Exception):
    """The runtime is cancelling the task (a cancel line, or SIGTERM)."""


def send(**message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def read_stdin():
    for line in sys.stdin:
        if line.strip():
            inbox.put(json.loads(line))
    inbox.put({"type": "eof"})


def on_sigterm(signum, frame):
    raise Cancelled()


def wait(seconds, key=None):
    """Waits `seconds` (None: until an answer to `key`); returns the answer to `key` if it came."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return None
        try:
            message = inbox.get(timeout=remaining)
        except queue.Empty:
            return None
        kind = message.get("type")
        if kind == "cancel":
            raise Cancelled()
        if kind == "answer" and message.get("key") == key:
            return message.get("value")
        if kind == "answer_timeout" and message.get("key") == key:
            return None
        if kind == "eof" and deadline is None:
            return None


def artifact(id, parts, append=False, last_chunk=True, name=None):
    line = {"type": "artifact", "id": id, "parts": parts, "append": append, "last_chunk": last_chunk}
    if name:
        line["name"] = name
    send(**line)


def working(message="working"):
    send(type="progress", message=message)


def complete(output=None):
    send(type="complete", output=output)


FILE_BYTES = {"file": {"raw": "dGNr", "mediaType": "text/plain", "filename": "output.txt"}}  # "tck"
FILE_URL = {"file": {"url": "https://example.com/output.txt", "mediaType": "text/plain", "filename": "output.txt"}}


def run(prefix_of, text):
    if prefix_of("tck-complete-task"):
        complete("Hello from TCK")
    elif prefix_of("tck-delayed-complete"):
        working()
        wait(2)
        complete("Done after delay")
    elif prefix_of("tck-artifact-file-url"):
        artifact("file-url", [FILE_URL])
        complete()
    elif prefix_of("tck-artifact-text"):
        artifact("text", ["Generated text content"])
        complete()
    elif prefix_of("tck-artifact-file"):
        artifact("file", [FILE_BYTES])
        complete()
    elif prefix_of("tck-artifact-data"):
        artifact("data", [{"key": "value", "count": 42}])
        complete()
    elif prefix_of("tck-message-response"):
        complete({"a2a_message": "Direct message response"})
    elif prefix_of("tck-input-required"):
        send(type="ask", key="input", request={"message": "Please provide input"})
        answer = wait(None, key="input")
        if answer is None:
            send(type="fail", code="no_answer", message="nobody answered")
        else:
            complete("Received: " + (answer if isinstance(answer, str) else json.dumps(answer)))
    elif prefix_of("tck-reject-task"):
        send(type="fail", code="rejected", message="rejected")
    elif prefix_of("tck-stream-artifact-chunked"):
        working()
        artifact("chunked", ["chunk-1 "], append=False, last_chunk=False)
        artifact("chunked", ["chunk-2"], append=True, last_chunk=True)
        complete()
    elif prefix_of("tck-stream-artifact-file"):
        working()
        artifact("file", [FILE_BYTES])
        complete()
    elif prefix_of("tck-stream-002"):
        complete()
    elif prefix_of("tck-stream-001"):
        working()
        artifact("text", ["Stream hello from TCK"])
        complete()
    elif prefix_of("tck-stream-003"):
        working()
        artifact("text", ["Stream task lifecycle"])
        complete()
    elif prefix_of("tck-stream-ordering-001"):
        working()
        artifact("text", ["Ordered output"])
        complete()
    elif prefix_of("tck-stream-artifact-text"):
        working()
        artifact("text", ["Streamed text content"])
        complete()
    elif prefix_of("test-resubscribe-message-id"):
        working()
        wait(4)
        complete()
    elif prefix_of("slow"):
        working()
        for i in range(5):
            wait(1)
            artifact("out", [f"chunk-{i} "], append=i > 0, last_chunk=i == 4)
        complete("slow done")
    elif prefix_of("sleep"):
        working("sleeping until cancelled")
        wait(600)
        complete("woke up")
    else:
        complete("echo: " + text)


def main():
    start = json.loads(sys.stdin.readline())
    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=read_stdin, daemon=True).start()
    message = start.get("input") or {}
    if not isinstance(message, dict):
        message = {"text": str(message)}
    message_id = str(message.get("messageId", ""))
    text = str(message.get("text", ""))
    run(lambda prefix: message_id.startswith(prefix) or text.startswith(prefix), text)


if __name__ == "__main__":
    try:
        main()
    except Cancelled:
        send(type="cancelled", message="the task was cancelled")
