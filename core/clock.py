"""Time: the platform's zone (Asia/Shanghai), how times are shown, and the one deadline check by the DB clock.

Times are stored and compared in UTC (`timestamptz`); people read them in Beijing time. Deadlines are judged by
the database's `now()` (the start of the current transaction), never by the app server's clock.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def db_now(session: AsyncSession) -> datetime:
    """The database clock: the time deadlines are judged by (start of the current transaction)."""
    return (await session.execute(text("SELECT now()"))).scalar_one()


def passed(deadline: datetime | None, now: datetime) -> bool:
    """Whether `deadline` has passed at `now`: at the deadline itself it has (a bid at 10:00:00 is late)."""
    return deadline is not None and now >= deadline


async def deadline_passed(session: AsyncSession, deadline: datetime | None) -> bool:
    """Whether `deadline` has passed by the database clock."""
    return passed(deadline, await db_now(session))


def local(at: datetime) -> datetime:
    """`at` in Beijing time; refuses naive datetimes."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: bidroom times are timezone-aware")
    return at.astimezone(SHANGHAI)


def format_local(at: datetime | None, *, seconds: bool = False) -> str:
    """A time as people read it on records and pages: '2026-12-01 18:30 UTC+8' (or with seconds)."""
    if at is None:
        return "—"
    return local(at).strftime("%Y-%m-%d %H:%M:%S UTC+8" if seconds else "%Y-%m-%d %H:%M UTC+8")


def local_year(at: datetime) -> int:
    """The calendar year in China at `at` (tender codes, the experts' monthly cap)."""
    return local(at).year
