"""Domain exceptions. The web layer maps each to one HTTP status in one place."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the user can act on, with a stable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 keep_changes: bool = False):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}
        # True when the refusal itself must be recorded (a failed sign-in counted, a stolen session revoked):
        # the transaction commits what was done before the refusal instead of rolling back.
        self.keep_changes = keep_changes


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class RequestTimeout(DomainError):
    status = 408
    code = "request_timeout"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "gone"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(DomainError):
    status = 422
    code = "validation_failed"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, details=None,
                 keep_changes: bool = False):
        super().__init__(message, code=code, details=details, keep_changes=keep_changes)
        self.retry_after = retry_after


class ServiceBusy(RateLimited):
    """503: the server cannot do this now for want of capacity, not because of the request; retry after a while."""

    status = 503
    code = "service_busy"


class InsufficientStorage(DomainError):
    """507: the server refuses to store more while its data volume is nearly full."""

    status = 507
    code = "insufficient_storage"
