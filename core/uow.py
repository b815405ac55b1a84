"""The unit of work: one session and one transaction, owned by whoever runs the use case (a request, a job)."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class UnitOfWork:
    """One session and one transaction, opened the first time the caller needs the database.

    The session autobegins its transaction on first use; the owner (the web layer's transaction middleware,
    a job runner) calls `finish(commit=...)` exactly once.
    """

    def __init__(self, factory: async_sessionmaker) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._factory()
        return self._session

    async def finish(self, *, commit: bool) -> None:
        if self._session is None:
            return
        try:
            if commit:
                await self._session.commit()
            else:
                await self._session.rollback()
        finally:
            await self._session.close()
