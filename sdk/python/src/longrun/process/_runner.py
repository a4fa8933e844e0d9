"""`run(handler)`: one task attempt of a process handler, from the start line to the outcome.

`serve` is the protocol, on any line source and writer (the tests feed it fakes); `run` wires it
to the process's stdin, stdout and SIGTERM and exits with the status the runtime expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, NoReturn

from longrun.process import _wire
from longrun.process._attempt import DEFAULT_GRACE, Handler, attempt
from longrun.process._context import Context, PipeTransport


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
    ctx = Context(start, PipeTransport(write), grace=grace)
    if start.protocol not in _wire.SUPPORTED:
        await ctx._end(
            _wire.line(
                "fail",
                code="unsupported_protocol",
                message=f"this handler speaks protocol versions {_wire.SUPPORTED}, "
                f"the runtime sent {start.protocol}",
            )
        )
        return 0
    dispatch = asyncio.ensure_future(_dispatch(ctx, lines))
    try:
        outcome = await attempt(handler, ctx, start.input)
    finally:
        dispatch.cancel()
    await ctx._end(outcome)
    return 0


async def _dispatch(ctx: Context, lines: asyncio.Queue[str | None]) -> None:
    """Routes the runtime's lines to the context (a cancel cancels the run after the grace)."""
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
        if message is not None:
            ctx._receive(message)
