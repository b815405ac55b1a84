"""Typed application and request keys shared by the web layer and the domain route modules."""
from __future__ import annotations

from dataclasses import dataclass
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

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker)
TOKENS = web.AppKey("tokens", object)  # TokenIssuer
LEDGER_SIGNER = web.AppKey("ledger_signer", object)  # LedgerSigner
JOBS = web.AppKey("jobs", object)  # JobRegistry
SCHEDULER = web.AppKey("scheduler", object)  # Scheduler
NOTIFIER = web.AppKey("notifier", object)  # Notifier
METRICS = web.AppKey("metrics", object)
SERVICES = web.AppKey("services", dict)  # optional per-domain resources (PKI, storage, ...)

# request-scoped values live on the request mapping under these keys
REQ_SESSION = web.RequestKey("session", AsyncSession)
REQ_PRINCIPAL = web.RequestKey("principal", Principal)
REQ_ID = web.RequestKey("request_id", str)


def db(request: web.Request) -> AsyncSession:
    """The request's session, inside the one transaction the web layer opened."""
    return request[REQ_SESSION]


def principal(request: web.Request) -> Principal | None:
    return request.get(REQ_PRINCIPAL)


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def service(request: web.Request, name: str) -> Any:
    return request.app[SERVICES][name]
