"""The SDK's exceptions: what the server refused (with its error code), and what went wrong on
the way to it.

Every error the server answers is an `ApiError` carrying the server's stable `code`
(`not_found`, `already_ended`, `invalid_input`, …, listed in `docs/openapi.json` under
`ErrorDetail`), its `message` and the HTTP `status`. The statuses a caller most often handles
on their own have a subclass, so `except NotFoundError` reads as what it means.
"""

from __future__ import annotations


class LongrunError(Exception):
    """Anything this SDK raises on purpose."""


class ApiError(LongrunError):
    """The server refused a request: `status` is the HTTP status, `code` the server's code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class UnauthorizedError(ApiError):
    """401: the bearer token is missing or names nobody."""


class NotFoundError(ApiError):
    """404: no such task, it expired, or it is not the caller's (these are not told apart)."""


class ConflictError(ApiError):
    """409: the task's state does not allow it (already ended, already answered, …)."""


class InvalidRequestError(ApiError):
    """400 or 422: a malformed request, an unknown kind, or an input that fails the schema."""


class DisconnectedError(LongrunError):
    """An event stream broke and could not be resumed within the reconnection budget.

    The cause (`__cause__`) is the last transport error.
    """


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: UnauthorizedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
}


def api_error(status: int, code: str, message: str) -> ApiError:
    """The exception for an error answer: the subclass for its status, else `ApiError`."""
    return _BY_STATUS.get(status, ApiError)(status, code, message)
