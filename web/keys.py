"""Typed application and request keys shared by the web layer and the domain route modules."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.settings import Settings

if TYPE_CHECKING:  # avoid import cycles at runtime
    from core.notifier import Notifier
    from core.scheduler import JobRegistry, Scheduler
    from core.tokens import TokenIssuer
    from evidence.ledger_service import LedgerSigner


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: int
    public_id: str
    organisation_id: int | None
    roles: frozenset[str]
    # the user and organisation columns read when authenticating (see web.middleware.PRINCIPAL_SQL)
    profile: Any = field(default=None, compare=False, repr=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker)
# sessions in autocommit for safe methods: no BEGIN/COMMIT round trips on reads
READ_SESSIONS = web.AppKey("read_sessions", async_sessionmaker)
# a small asyncpg pool for the per-request principal lookup (outside the ORM's per-statement cost)
PG_POOL = web.AppKey("pg_pool", object)
TOKENS = web.AppKey("tokens", object)  # TokenIssuer
LEDGER_SIGNER = web.AppKey("ledger_signer", object)  # LedgerSigner
JOBS = web.AppKey("jobs", object)  # JobRegistry
SCHEDULER = web.AppKey("scheduler", object)  # Scheduler
NOTIFIER = web.AppKey("notifier", object)  # Notifier
METRICS = web.AppKey("metrics", object)
SERVICES = web.AppKey("services", dict)  # optional per-domain resources (PKI, storage, ...)
SCHEMA_HEADS = web.AppKey("schema_heads", frozenset)  # the migration heads this build expects

# request-scoped values live on the request mapping under these keys


class UnitOfWork:
    """The request's one session and one transaction, opened the first time a handler needs the database.

    The session autobegins its transaction on first use; the transaction middleware commits it when the
    handler succeeds (or refuses with keep_changes) and rolls it back otherwise.
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


REQ_UOW = web.RequestKey("unit_of_work", UnitOfWork)
REQ_PRINCIPAL = web.RequestKey("principal", Principal)
REQ_ID = web.RequestKey("request_id", str)


def db(request: web.Request) -> AsyncSession:
    """The request's session, inside the one transaction the web layer owns."""
    return request[REQ_UOW].session


def principal(request: web.Request) -> Principal | None:
    return request.get(REQ_PRINCIPAL)


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def service(request: web.Request, name: str) -> Any:
    return request.app[SERVICES][name]
