"""The HTTP API's errors: one JSON shape, ``{"error": {"type", "message"}}``, and the status for each cause.

The library's user-error types (``fluxmusic.errors``) say what went wrong; this module only decides the
HTTP status: a bad value is 422, an upload that does not decode is 415, a full queue is 503. Anything
else is a bug: the client gets a 500 with a generic message (never a stack trace) and the server logs
the traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fluxmusic.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["ApiError", "BusyError", "as_api_error", "error_body"]

REASONS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "busy",
}
"""The ``error.type`` of each status."""


class ApiError(Exception):
    """An answer other than success: ``status``, a one-line ``message``, optional extra ``headers``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})

    @property
    def type(self) -> str:
        """The machine-readable kind (``invalid_request``, ``busy``, ...)."""
        return REASONS.get(self.status, "error")


class BusyError(ApiError):
    """The generation queue is full: 503 with ``Retry-After`` (seconds)."""

    def __init__(self, queue_size: int, retry_after: int) -> None:
        super().__init__(
            503,
            f"the generation queue is full ({queue_size} waiting); retry in about {retry_after} s",
            {"Retry-After": str(retry_after)},
        )


def error_body(status: int, message: str) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": {"type": REASONS.get(status, "error"), "message": message}}


def _undecodable(err: BaseException) -> bool:
    from fluxmusic.audio.io import AudioFileError

    return isinstance(err, AudioFileError)


def as_api_error(err: BaseException, hide: tuple[str, ...] = ()) -> ApiError:
    """The answer for ``err``: a user's mistake keeps its message (with the server's temporary paths in
    ``hide`` replaced by ``upload``); anything else becomes a logged 500 with a generic message."""
    if isinstance(err, ApiError):
        return err
    if isinstance(err, InputError):
        message = str(err)
        for path in hide:
            message = message.replace(path, "upload")
        return ApiError(415 if _undecodable(err) else 422, message)
    logger.error("request failed", exc_info=(type(err), err, err.__traceback__))
    return ApiError(500, "internal error while generating; the server log has the details")
