"""Evaluation rules that need no database: venue standing and booking time ranges. Pure, no I/O."""
from __future__ import annotations

from datetime import datetime, timedelta

from core.errors import Conflict, Unprocessable

VENUE_STATUSES = ("active", "retired")
BOOKING_STATUSES = ("confirmed", "cancelled")

# An evaluation of a large lot may run over several days (评标时间 set by the tenderer, 实施条例 第48条 allows
# it to be extended), never for more than a month in one room.
MAX_BOOKING = timedelta(days=31)


def check_booking_range(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """A booking covers [starts_at, ends_at): a non-empty range, not starting before `now` (the database clock),
    at most MAX_BOOKING long. Refuses with 422."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Unprocessable("booking times must carry a timezone", code="invalid_time_range")
    if ends_at <= starts_at:
        raise Unprocessable("a booking must end after it starts", code="invalid_time_range",
                            details={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    if starts_at < now:
        raise Unprocessable("a booking cannot start in the past", code="booking_in_past",
                            details={"starts_at": starts_at.isoformat(), "now": now.isoformat()})
    if ends_at - starts_at > MAX_BOOKING:
        raise Unprocessable(f"a booking lasts at most {MAX_BOOKING.days} days", code="booking_too_long",
                            details={"max_days": MAX_BOOKING.days})


def check_cancellable(status: str, ends_at: datetime, now: datetime) -> None:
    """Only a confirmed booking that has not ended yet can be cancelled; refuses with 409."""
    if status != "confirmed":
        raise Conflict("the booking is already cancelled", code="booking_not_active", details={"status": status})
    if ends_at <= now:
        raise Conflict("the booking is over; it stays on record", code="booking_over",
                       details={"ends_at": ends_at.isoformat()})


def check_active(kind: str, public_id: str, status: str) -> None:
    """Refuse with 409 `<kind>_retired` to change or use a retired site, room or place."""
    if status != "active":
        raise Conflict(f"the {kind} {public_id} is retired", code=f"{kind}_retired", details={f"{kind}_id": public_id})
