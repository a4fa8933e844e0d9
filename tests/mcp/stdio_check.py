"""`longrun mcp` over stdio, with raw JSON-RPC lines (Python 3 standard library only).

Both generations on one connection: a 2026-07-28 plain call; then a 2025-11-25 session that
calls `confirm_delete` as a task, receives the task's elicitation as a request on stdout while
`tasks/result` is pending, answers it on stdin, and gets the result. Every stdout line must be
JSON-RPC (logs go to stderr). Closing stdin must stop the process cleanly.

    python3 stdio_check.py LONGRUN_BIN CONFIG DATA_DIR
"""

import json
import queue
import subprocess
import sys
import threading

binary, config, data = sys.argv[1:4]
process = subprocess.Popen(
    [binary, "mcp", "--config", config, "--data", data],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
)
lines = queue.Queue()


def read():
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


threading.Thread(target=read, daemon=True).start()


def fail(why):
    print(f"stdio: FAILED: {why}", file=sys.stderr)
    process.kill()
    sys.exit(1)


def send(message):
    process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()


def receive():
    line = lines.get(timeout=30)
    if line is None:
        fail("stdout closed early")
    try:
        return json.loads(line)
    except ValueError:
        fail(f"a stdout line is not JSON: {line!r}")


def answer_to(request_id):
    """The response to `request_id`, skipping notifications."""
    while True:
        message = receive()
        if message.get("id") == request_id and "method" not in message:
            return message


META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}

send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
      "params": {"name": "greet", "arguments": {"name": "stdio"}, "_meta": META}})
greeting = answer_to(1)
if greeting.get("result", {}).get("content", [{}])[0].get("text") != "Hello, stdio!":
    fail(f"greet answered {greeting}")

send({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
    "clientInfo": {"name": "stdio-check", "version": "0"}}})
initialized = answer_to(2)
if "tasks" not in initialized.get("result", {}).get("capabilities", {}):
    fail(f"initialize answered {initialized}")
send({"jsonrpc": "2.0", "method": "notifications/initialized"})

send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
    "name": "confirm_delete", "arguments": {"filename": "stdio.txt"}, "task": {"ttl": 60000}}})
created = answer_to(3)
task_id = created.get("result", {}).get("task", {}).get("taskId")
if not task_id:
    fail(f"no task: {created}")

send({"jsonrpc": "2.0", "id": 4, "method": "tasks/result", "params": {"taskId": task_id}})
while True:
    message = receive()
    if message.get("method") == "elicitation/create":
        related = message["params"].get("_meta", {}).get("io.modelcontextprotocol/related-task", {})
        if related.get("taskId") != task_id:
            fail(f"the elicitation does not name the task: {message}")
        send({"jsonrpc": "2.0", "id": message["id"],
              "result": {"action": "accept", "content": {"confirm": True}}})
    elif message.get("id") == 4:
        break
text = message.get("result", {}).get("content", [{}])[0].get("text", "")
if "confirmed = true" not in text:
    fail(f"tasks/result answered {message}")

process.stdin.close()
try:
    status = process.wait(timeout=30)
except subprocess.TimeoutExpired:
    fail("the process did not stop after stdin closed")
if status != 0:
    fail(f"the process exited with status {status}")
print(f'stdio: OK (both generations; {task_id} completed: "{text}")')
