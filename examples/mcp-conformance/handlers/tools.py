#!/usr/bin/env python3
"""The tools the official MCP conformance suite expects, as one longrun process handler.

Each [[kinds]] entry of ../longrun.toml runs this script; the start line names the kind, and
the function of that name below does the work. Python 3 standard library only. The protocol is
docs/process-protocol.md; how questions become elicitation and sampling requests is docs/mcp.md.

Questions are asked in the explicit form {"method": ..., "params": ...}, so the client sees
exactly these requests and the answers come back as the client sent them.
"""

import json
import queue
import signal
import sys
import threading
import time

# Lines the runtime sends after the start line, read by a thread.
inbox = queue.Queue()
answers = {}


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


def wait(seconds):
    """Waits `seconds`, filing answers as they arrive; raises Cancelled on a cancel line."""
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
        elif kind == "answer_timeout":
            answers[message["key"]] = None
        elif kind == "eof":
            # Nobody can answer or cancel any more; keep the remaining time as a plain sleep.
            time.sleep(max(0.0, deadline - time.monotonic()))
            return


def ask(key, method, params):
    send(type="ask", key=key, request={"method": method, "params": params})


def answer(key):
    """Waits for the answer to `key`."""
    while key not in answers:
        wait(0.05)
    return answers[key]


def elicit(key, message, properties, required=None):
    ask(key, "elicitation/create", {
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": properties,
            "required": list(properties) if required is None else required,
        },
    })


def sample(key, text, max_tokens=100):
    ask(key, "sampling/createMessage", {
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
        "maxTokens": max_tokens,
    })


def text(value):
    return {"content": [{"type": "text", "text": value}]}


def accepted(reply, field):
    """A field of an accepted elicitation's content, or None."""
    if isinstance(reply, dict) and reply.get("action") == "accept":
        return (reply.get("content") or {}).get(field)
    return None


def sampled(reply):
    content = reply.get("content") if isinstance(reply, dict) else None
    if isinstance(content, list):
        content = content[0] if content else {}
    return (content or {}).get("text", "")


# A 1x1 red PNG and a tiny silent WAV.
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="


# --- the tasks extension's fixtures (SEP-2663) ---------------------------------------------

def greet(args):
    return text(f"Hello, {args.get('name', 'world')}!")


def slow_compute(args):
    seconds = float(args.get("seconds", 1))
    label = args.get("label", "compute")
    steps = max(1, int(seconds * 4))
    for step in range(steps):
        send(type="progress", percent=round(100 * step / steps, 1), message=f"{label}: {seconds - step / 4:.2f} s left")
        wait(seconds / steps)
    return text(f"slow_compute({label}) done after {args.get('seconds', 1)}s")


def failing_job(args):
    send(type="progress", message="failing soon")
    wait(1.0)
    result = text("failing_job: intentional tool execution error")
    result["isError"] = True
    return result


def protocol_error_job(args):
    wait(0.5)
    send(type="fail", code="protocol_error_job", message="protocol_error_job: intentional protocol-level failure")
    return None


def confirm_delete(args):
    filename = args.get("filename", "file")
    elicit("confirm", f"Delete {filename}?", {"confirm": {"type": "boolean"}})
    confirmed = accepted(answer("confirm"), "confirm") is True
    return text(f"confirm_delete({filename}): confirmed = {str(confirmed).lower()}")


def multi_input(args):
    elicit("name", "Which name?", {"name": {"type": "string"}})
    elicit("confirm", "Go ahead?", {"confirm": {"type": "boolean"}})
    name = accepted(answer("name"), "name")
    confirmed = accepted(answer("confirm"), "confirm")
    return text(f"multi_input: name = {name}, confirm = {confirmed}")


def test_tool_with_task(args):
    elicit("user_name", "What is your name?", {"name": {"type": "string"}})
    name = accepted(answer("user_name"), "name") or "nobody"
    send(type="progress", percent=10, message=f"working for {name}")
    wait(0.5)
    return text(f"Hello, {name}! (from a task)")


# --- the core suite's fixtures ---------------------------------------------------------------

def about(args):
    return text("longrun: every tool here runs as a task; see docs/mcp.md.")


def test_custom_header(args):
    return text(f"region = {args.get('region')}")


def test_simple_text(args):
    return text("This is a simple text response for testing.")


def test_image_content(args):
    return {"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]}


def test_audio_content(args):
    return {"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]}


def test_embedded_resource(args):
    return {"content": [{"type": "resource", "resource": {
        "uri": "test://embedded-resource", "mimeType": "text/plain",
        "text": "This is an embedded resource content."}}]}


def test_multiple_content_types(args):
    return {"content": [
        {"type": "text", "text": "Multiple content types test:"},
        {"type": "image", "data": PNG, "mimeType": "image/png"},
        {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                                          "mimeType": "application/json",
                                          "text": json.dumps({"test": "data", "value": 123})}},
    ]}


def test_tool_with_logging(args):
    # A handler's messages for the agent travel as MCP log notifications during a call.
    send(type="message", text="Tool execution started")
    wait(0.05)
    send(type="message", text="Tool processing data")
    wait(0.05)
    send(type="message", text="Tool execution completed")
    return text("Tool with logging executed successfully")


test_logging_tool = test_tool_with_logging


def test_error_handling(args):
    result = text("This tool intentionally returns an error for testing")
    result["isError"] = True
    return result


def test_tool_with_progress(args):
    for percent in (0, 50, 100):
        send(type="progress", percent=percent, message=f"{percent}%")
        if percent < 100:
            wait(0.05)
    return text("Tool with progress executed successfully")


def test_sampling(args):
    sample("reply", args.get("prompt", "Hello"))
    return text(f"LLM response: {sampled(answer('reply'))}")


def test_elicitation(args):
    elicit("response", args.get("message", "Please respond"), {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    })
    reply = answer("response") or {}
    return text(f"User response: action={reply.get('action')}, content={json.dumps(reply.get('content'))}")


def test_elicitation_sep1034_defaults(args):
    elicit("defaults", "Please review and update the form fields with defaults", {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {"type": "string", "description": "User status",
                   "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    }, required=[])
    reply = answer("defaults") or {}
    return text(f"Elicitation completed: action={reply.get('action')}, content={json.dumps(reply.get('content'))}")


def test_elicitation_sep1330_enums(args):
    elicit("enums", "Please select options from the enum fields", {
        "untitledSingle": {"type": "string", "description": "Select one option",
                           "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
            {"const": "value1", "title": "First Option"},
            {"const": "value2", "title": "Second Option"},
            {"const": "value3", "title": "Third Option"}]},
        "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                       "enum": ["opt1", "opt2", "opt3"],
                       "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array", "description": "Select multiple options",
                          "minItems": 1, "maxItems": 3,
                          "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                        "minItems": 1, "maxItems": 3,
                        "items": {"anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"}]}},
    }, required=[])
    reply = answer("enums") or {}
    return text(f"Elicitation completed: action={reply.get('action')}, content={json.dumps(reply.get('content'))}")


def json_schema_2020_12_tool(args):
    return text(f"Contact {args.get('name', 'someone')} by {args.get('contactMethod', 'email')}.")


def test_streaming_elicitation(args):
    elicit("user_name", "What is your name?", {"name": {"type": "string"}})
    return text(f"Hello, {accepted(answer('user_name'), 'name')}!")


def test_missing_capability(args):
    sample("question", "This tool needs the client's model.")
    return text(f"LLM response: {sampled(answer('question'))}")


# --- multi round-trip requests (SEP-2322) ----------------------------------------------------

def test_input_required_result_elicitation(args):
    elicit("user_name", "What is your name?", {"name": {"type": "string"}})
    return text(f"Hello, {accepted(answer('user_name'), 'name')}!")


def test_input_required_result_sampling(args):
    sample("capital_question", "What is the capital of France?")
    return text(f"Sampling response: {sampled(answer('capital_question'))}")


def test_input_required_result_list_roots(args):
    ask("client_roots", "roots/list", {})
    roots = (answer("client_roots") or {}).get("roots", [])
    return text("Roots: " + ", ".join(root.get("uri", "?") for root in roots))


def test_input_required_result_request_state(args):
    elicit("confirm", "Please confirm", {"ok": {"type": "boolean"}})
    ok = accepted(answer("confirm"), "ok")
    # The request state is this task's id: the answer came back to this very task.
    return text(f"state-ok: confirmed = {ok}")


def test_input_required_result_multiple_inputs(args):
    elicit("user_name", "What is your name?", {"name": {"type": "string"}})
    sample("greeting", "Generate a greeting", max_tokens=50)
    ask("client_roots", "roots/list", {})
    name = accepted(answer("user_name"), "name")
    greeting = sampled(answer("greeting"))
    roots = (answer("client_roots") or {}).get("roots", [])
    return text(f"name = {name}, greeting = {greeting}, roots = {len(roots)}")


def test_input_required_result_multi_round(args):
    elicit("step1", "Step 1: What is your name?", {"name": {"type": "string"}})
    name = accepted(answer("step1"), "name")
    elicit("step2", "Step 2: What is your favorite color?", {"color": {"type": "string"}})
    color = accepted(answer("step2"), "color")
    return text(f"Hello {name}, your favorite color is {color}.")


def test_input_required_result_tampered_state(args):
    elicit("confirm", "Please confirm", {"ok": {"type": "boolean"}})
    return text(f"confirmed = {accepted(answer('confirm'), 'ok')}")


def test_input_required_result_capabilities(args):
    # Asks both ways; the server sends a client only what it declared a capability for.
    sample("model_opinion", "Say something.")
    elicit("user_opinion", "Say something.", {"text": {"type": "string"}})
    return text(f"model: {sampled(answer('model_opinion'))}, user: {accepted(answer('user_opinion'), 'text')}")


def test_reconnection(args):
    # Outlasts [mcp] stream_close_ms, so the server closes the call's stream before the result
    # and the client must resume it with Last-Event-ID (the server-sse-polling scenario).
    wait(2.5)
    return text("Reconnection test completed")


def main():
    start = json.loads(sys.stdin.readline())
    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=read_stdin, daemon=True).start()
    tool = globals().get(start["kind"])
    if not callable(tool):
        send(type="fail", code="unknown_tool", message=f"tools.py has no tool {start['kind']!r}")
        return
    try:
        result = tool(start.get("input") or {})
    except Cancelled:
        send(type="cancelled", message=f"{start['kind']} was cancelled")
        return
    if result is not None:
        send(type="complete", output=result)


if __name__ == "__main__":
    try:
        main()
    except Cancelled:
        send(type="cancelled", message="cancelled")
