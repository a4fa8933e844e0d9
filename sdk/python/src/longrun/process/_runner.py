"""`run(handler)`: one task attempt of a process handler, from the start line to the outcome.

`serve` is the protocol, on any line source and writer (the tests feed it fakes); `run` wires it
to the process's stdin, stdout and SIGTERM and exits with the status the runtime expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import IO, Any, NoReturn, get_origin, get_type_hints

from longrun.process import _wire
from longrun.process._context import Cancelled, Context, Fail, jsonable

Handler = Callable[[Context, Any], Awaitable[Any]]
"""`async def handler(ctx, input)`: its return value is the task's output."""

DEFAULT_GRACE = 1.0
"""Seconds a cancelled handler has to end by itself before it is cancelled. Below the runtime's
`term_grace` (5 s by default), so the handler ends and reports before SIGKILL."""


def run(handler: Handler, *, grace: float = DEFAULT_GRACE) -> NoReturn:
    """Runs `handler` as a longrun process handler, and exits.

    Reads the start line from stdin; validates the input against the annotation of the
    handler's `input` parameter (a pydantic model, or any type pydantic knows), failing the task
    `invalid_input` if it does not fit; calls `handler(ctx, input)`; and reports what it
    returns as the output. `Fail` fails the task, `Cancelled` ends it cancelled, any other
    exception fails it `handler_error` (the traceback goes to stderr). A cancel line or SIGTERM
    sets `ctx.cancelled`; `grace` seconds later the handler is cancelled.

    Stdout belongs to the protocol: while the handler runs, `print` writes to stderr.
    """
    protocol_out = sys.stdout
    sys.stdout = sys.stderr
    code = asyncio.run(_main(handler, sys.stdin.fileno(), protocol_out, grace))
    sys.exit(code)


async def _main(handler: Handler, stdin: int, stdout: IO[str], grace: float) -> int:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def put(line: str | None) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    def read() -> None:
        # A thread, not `connect_read_pipe`: stdin may be a file or a terminal, not a pipe. And
        # `os.read`, not `sys.stdin`: the process may exit while this thread still waits for a
        # line, and a thread blocked inside a buffered reader holds its lock, which makes the
        # interpreter abort at exit (a non-zero status after the outcome fails the task).
        pending = b""
        while chunk := os.read(stdin, 1 << 16):
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                put(line.decode("utf-8", errors="replace"))
        if pending:
            put(pending.decode("utf-8", errors="replace"))
        put(None)

    threading.Thread(target=read, name="longrun-stdin", daemon=True).start()

    def write(line: str) -> None:
        stdout.write(line + "\n")
        stdout.flush()

    def on_sigterm() -> None:
        # The runtime sends SIGTERM with the cancel line; both mean the same.
        lines.put_nowait('{"type":"cancel"}')

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    return await serve(handler, lines, write, grace=grace)


async def serve(
    handler: Handler,
    lines: asyncio.Queue[str | None],
    write: Callable[[str], None],
    *,
    grace: float = DEFAULT_GRACE,
) -> int:
    """Speaks the protocol: `lines` is stdin (`None` at its end), `write` writes one line to
    stdout. Returns the exit status: 0 once an outcome is written, 2 without a start line.
    """
    first = await lines.get()
    if first is None:
        print("longrun.process: stdin closed before the start line", file=sys.stderr)
        return 2
    try:
        start = _wire.start(first)
    except _wire.BadLine as error:
        print(f"longrun.process: {error}", file=sys.stderr)
        return 2
    ctx = Context(start, write)
    if start.protocol not in _wire.SUPPORTED:
        ctx._end(
            _wire.line(
                "fail",
                code="unsupported_protocol",
                message=f"this handler speaks protocol versions {_wire.SUPPORTED}, "
                f"the runtime sent {start.protocol}",
            )
        )
        return 0
    try:
        task_input = _validate(handler, start.input)
    except InvalidInput as error:
        ctx._end(_wire.line("fail", code="invalid_input", message=str(error)))
        return 0

    work = asyncio.ensure_future(_call(handler, ctx, task_input))
    dispatch = asyncio.ensure_future(_dispatch(ctx, lines, work, grace))
    try:
        outcome = await _outcome(work)
    finally:
        dispatch.cancel()
    ctx._end(outcome)
    return 0


async def _dispatch(
    ctx: Context, lines: asyncio.Queue[str | None], work: asyncio.Future[Any], grace: float
) -> None:
    """Routes the runtime's lines to the context; on a cancel, cancels `work` after `grace`."""
    loop = asyncio.get_running_loop()
    while True:
        line = await lines.get()
        if line is None:
            ctx._stdin_closed()
            return
        try:
            message = _wire.incoming(line)
        except _wire.BadLine as error:
            print(f"longrun.process: ignored: {error}", file=sys.stderr)
            continue
        if message is None:
            continue
        if message["type"] == "cancel" and not ctx.cancelled.is_set():
            loop.call_later(grace, work.cancel)
        ctx._receive(message)


async def _call(handler: Handler, ctx: Context, task_input: Any) -> Any:
    """The handler's result; a plain function (not `async`) is tolerated, though it blocks
    cancellation while it runs.
    """
    result = handler(ctx, task_input)
    return await result if inspect.isawaitable(result) else result


async def _outcome(work: asyncio.Future[Any]) -> str:
    """The outcome line for how the handler ended."""
    try:
        output = await work
    except Fail as fail:
        retry_after_ms = None
        if fail.retry_after is not None:
            seconds = (
                fail.retry_after
                if isinstance(fail.retry_after, (int, float))
                else fail.retry_after.total_seconds()
            )
            retry_after_ms = round(seconds * 1000)
        return _wire.line(
            "fail",
            code=fail.code,
            message=fail.message,
            details=jsonable(fail.details),
            retryable=fail.retryable,
            retry_after_ms=retry_after_ms,
        )
    except Cancelled as cancelled:
        return _wire.line("cancelled", message=cancelled.message)
    except asyncio.CancelledError:
        # Cancelled by us after the grace period (or by the handler's own doing).
        return _wire.line("cancelled", message="cancelled")
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        return _wire.line(
            "fail",
            code="handler_error",
            message=f"{type(error).__name__}: {error}",
            details={"exception": type(error).__name__},
        )
    return _wire.line("complete", output=jsonable(output))


class InvalidInput(Exception):
    """The input does not fit the annotation of the handler's `input` parameter."""


# Annotations that ask for no validation, so that a handler that takes its input as plain JSON
# does not need pydantic.
_UNCHECKED: tuple[Any, ...] = (Any, object, dict, list, "Any")


def _validate(handler: Handler, value: Any) -> Any:
    """The input as the handler's second parameter is annotated (unchanged without one, or with
    plain `dict`, `list`, `object` or `Any`).
    """
    parameters = list(inspect.signature(handler).parameters.values())
    if len(parameters) < 2:
        return value
    try:
        hints = get_type_hints(handler)
    except Exception:  # an annotation that does not resolve: take the input as it is
        return value
    annotation = hints.get(parameters[1].name)
    if annotation is None or any(annotation is unchecked for unchecked in _UNCHECKED):
        return value
    # Imported here: only a handler with a typed input needs pydantic.
    try:
        from pydantic import TypeAdapter, ValidationError
    except ImportError:
        if get_origin(annotation) in (dict, list):
            return value  # JSON containers: nothing to convert, and nothing to check with
        raise

    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError as error:
        raise InvalidInput(str(error)) from None
