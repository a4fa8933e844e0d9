"""One attempt of a handler, whatever carries its messages: the input validated against the
handler's annotation, the handler called, and how it ended turned into the outcome message.
Shared by the process runner (`run`) and the worker (`longrun.Worker`).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, get_origin, get_type_hints

from longrun.process import _wire
from longrun.process._context import Cancelled, Context, Fail, jsonable

Handler = Callable[[Context, Any], Awaitable[Any]]
"""`async def handler(ctx, input)`: its return value is the task's output."""

DEFAULT_GRACE = 1.0
"""Seconds a cancelled handler has to end by itself before it is cancelled. Below the runtime's
`term_grace` (5 s by default), so the handler ends and reports before SIGKILL."""


async def attempt(handler: Handler, ctx: Context, raw_input: Any) -> str:
    """Runs `handler` on `raw_input` (validated first) and returns the outcome message, which
    the caller sends. The run is attached to `ctx`, so a cancel cancels it after the grace.
    """
    try:
        task_input = validate(handler, raw_input)
    except InvalidInput as error:
        return _wire.line("fail", code="invalid_input", message=str(error))
    work = asyncio.ensure_future(_call(handler, ctx, task_input))
    ctx._attach(work)
    return await _outcome(work)


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


def validate(handler: Handler, value: Any) -> Any:
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
