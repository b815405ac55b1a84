"""Typed application and request keys shared by the web layer and the domain route modules."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.principal import Principal  # noqa: F401  (re-exported for route modules)
from core.ratelimit import RefusalBook
from core.settings import Settings
from core.uow import UnitOfWork
from evidence.records_service import RecordsContext

if TYPE_CHECKING:  # avoid import cycles at runtime
    from core.notifier import Notifier
    from core.scheduler import JobRegistry, Scheduler
    from core.tokens import TokenIssuer
    from evidence.ledger_service import LedgerSigner


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker)
# sessions in autocommit for safe methods: no BEGIN/COMMIT round trips on reads
READ_SESSIONS = web.AppKey("read_sessions", async_sessionmaker)
# a small asyncpg pool for the per-request principal lookup (outside the ORM's per-statement cost)
PG_POOL = web.AppKey("pg_pool", object)
TOKENS = web.AppKey("tokens", object)  # TokenIssuer
# short-lived tokens for a page's media WebSockets at a media worker (web.pages.media): another audience, so the
# API refuses them; only the media plane's sockets take them
MEDIA_TICKETS = web.AppKey("media_tickets", object)  # TokenIssuer
MEDIA_TICKET_AUDIENCE = ":media"  # appended to the API's audience
MEDIA_TICKET_TTL_S = 60  # long enough to open a socket; a reconnect asks again
LEDGER_SIGNER = web.AppKey("ledger_signer", object)  # LedgerSigner
JOBS = web.AppKey("jobs", object)  # JobRegistry
SCHEDULER = web.AppKey("scheduler", object)  # Scheduler
NOTIFIER = web.AppKey("notifier", object)  # Notifier
METRICS = web.AppKey("metrics", object)
REFUSALS = web.AppKey("refusals", RefusalBook)  # when each 429-refused client may ask again
# the records context (PKI, archive, ledger key) that every domain issuing records uses
RECORDS = web.AppKey("records", RecordsContext)
SCHEMA_HEADS = web.AppKey("schema_heads", frozenset)  # the migration heads this build expects

# request-scoped values live on the request mapping under these keys


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
