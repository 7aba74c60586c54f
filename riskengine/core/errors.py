"""The engine's errors: one base class and a few specific ones.

The CLI maps them to exit codes (``exit_code``) and the API to problem+json responses, each in one
place. Library code raises these; it never prints or calls ``sys.exit``.
"""

from __future__ import annotations


class RiskEngineError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1
    http_status = 500
    title = "Internal error"


class FatalInputError(RiskEngineError):
    """Input that cannot be processed at all: a missing table or column, an unreadable file."""

    exit_code = 2
    http_status = 422
    title = "Invalid input"


class UsageError(RiskEngineError):
    """A command or parameter used wrongly (bad option value, malformed policy or capacity file)."""

    exit_code = 2
    http_status = 400
    title = "Bad request"


class ConfigError(UsageError):
    """A configuration or policy file that fails validation."""


class BusyError(RiskEngineError):
    """Another process holds the lock this operation needs (e.g. a second ingest into one lake)."""

    exit_code = 1
    http_status = 409
    title = "Busy"


class NotFoundError(RiskEngineError):
    """Something asked for does not exist (an enterprise, a model alias, a scored as_of)."""

    exit_code = 1
    http_status = 404
    title = "Not found"


class ConflictError(RiskEngineError):
    """The request contradicts the stored state (e.g. withdrawing an override already withdrawn)."""

    exit_code = 1
    http_status = 409
    title = "Conflict"


class ModelError(RiskEngineError):
    """Training, registry or scoring could not proceed (e.g. no champion registered)."""

    exit_code = 1
    http_status = 503
    title = "Model unavailable"


class CaseStateError(ConflictError):
    """A case step that its current status does not allow (out of order, or the case is decided)."""

    def __init__(self, message: str, current_status: str) -> None:
        super().__init__(message)
        self.current_status = current_status
