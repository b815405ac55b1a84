"""Database: the embedded PostgreSQL, the async engine, the declarative Base and its naming convention."""
from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "%(column_0_label)s_idx",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    """Declarative base for every ORM class; constraint names follow NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EmbeddedPostgres:
    """A PostgreSQL server run from the pgserver wheel inside the data directory."""

    def __init__(self, pgdata: Path, *, cleanup_mode: str | None = "stop"):
        self.pgdata = pgdata.resolve()
        self.cleanup_mode = cleanup_mode
        self._server: Any = None

    def start(self) -> "EmbeddedPostgres":
        self.pgdata.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL", extra={"pgdata": str(self.pgdata)})
        with warnings.catch_warnings():
            # pgserver's lock directory falls back to /tmp without XDG_RUNTIME_DIR, and says so on import
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pgserver  # imported lazily: external deployments never need it

            self._server = pgserver.get_server(self.pgdata, cleanup_mode=self.cleanup_mode)
        return self

    def libpq_uri(self, database: str = "postgres") -> str:
        return self._server.get_uri(database)

    def async_url(self, database: str = "postgres") -> str:
        return to_async_url(self.libpq_uri(database))

    def psql(self, sql: str) -> str:
        return self._server.psql(sql)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def to_async_url(url: str) -> str:
    """Turn a libpq URI (postgresql://...) into an SQLAlchemy asyncpg URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def asyncpg_dsn(url: str) -> dict[str, Any]:
    """Connection keywords for a bare asyncpg connection from any of our URL forms."""
    parts = urlsplit(to_async_url(url).replace("postgresql+asyncpg://", "postgresql://"))
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return {
        "host": query.get("host") or parts.hostname or "localhost",
        "port": parts.port or int(query.get("port", 5432)),
        "user": parts.username or query.get("user") or "postgres",
        "password": parts.password,
        "database": (parts.path or "/postgres").lstrip("/") or "postgres",
    }


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return parts._replace(path="/" + database).geturl()


# Every connection the app opens runs with these: a runaway statement is cancelled, and a transaction left idle
# (a request waiting on something it should not wait for inside a transaction) is ended by the server, so a
# burst of slow requests can never leave the pool idle in transactions.
STATEMENT_TIMEOUT_MS = 60_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 120_000


def server_settings() -> dict[str, str]:
    """The session settings of every app connection (the ORM engine and the raw asyncpg pools alike)."""
    return {"timezone": "UTC", "application_name": "bidroom",
            "statement_timeout": str(STATEMENT_TIMEOUT_MS),
            "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_TIMEOUT_MS)}


# ---- the serving role ----------------------------------------------------------------------------------------
# Migrations run as the database owner; the server runs as this restricted login role. It may read and write
# rows, but it owns nothing, so it can never ALTER, DROP or disable the triggers of a table (PostgreSQL allows
# those to the owner only), and it gets no TRUNCATE, UPDATE or DELETE on the ledger tables: whoever takes over
# the server process still cannot rewrite or erase the audit ledger and its signed checkpoints.
SERVING_ROLE = "bidroom_app"
LEDGER_TABLES = ("audit_entry", "audit_checkpoint")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PASSWORD = re.compile(r"^[0-9a-f]{32,128}$")


def with_user(url: str, user: str, password: str | None) -> str:
    """The same server and database URL, signed in as another user."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    credentials = user if password is None else f"{user}:{password}"
    return parts._replace(netloc=f"{credentials}@{host}").geturl()


async def ensure_serving_role(owner_url: str, password: str, *, role: str = SERVING_ROLE) -> str:
    """Create (or refresh) the restricted serving role and its privileges in the owner's database; returns the
    URL to serve with. Run it as the owner after every migration: tables added since get their grants.

    The role: LOGIN with `password` (hex), no superuser, database or role creation, no row-level-security
    bypass. Privileges: connect; SELECT, INSERT, UPDATE, DELETE on every table and the sequences, then no
    UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER on the ledger tables."""
    import asyncpg

    if not _ROLE_NAME.match(role) or not _PASSWORD.match(password):
        raise ValueError("the serving role name or password has an unexpected form")
    conn = await asyncpg.connect(**asyncpg_dsn(owner_url))
    try:
        database = await conn.fetchval("SELECT current_database()")
        async with conn.transaction():
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f"CREATE ROLE {role} LOGIN")
            ledger = ", ".join(LEDGER_TABLES)
            await conn.execute(
                f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                f"PASSWORD '{password}';"
                f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO {role};'
                f"GRANT USAGE ON SCHEMA public TO {role};"
                f"REVOKE CREATE ON SCHEMA public FROM {role};"
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};"
                f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {role};"
                f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role};"
                f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {ledger} FROM {role};")
    finally:
        await conn.close()
    return with_user(owner_url, role, password)


def ensure_serving_role_sync(owner_url: str, password: str, *, role: str = SERVING_ROLE) -> str:
    """`ensure_serving_role` for synchronous start-up code, callable with or without a running event loop."""
    import asyncio
    import threading

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["url"] = asyncio.run(ensure_serving_role(owner_url, password, role=role))
        except BaseException as err:  # re-raised in the caller's thread
            result["error"] = err

    worker = threading.Thread(target=run, name="serving-role")
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["url"]


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An asyncpg engine whose sessions run in UTC with a statement and an idle-in-transaction timeout.

    Bound parameters are hidden from error messages and logs: they can carry personal data and tokens.
    """
    return create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        echo=echo,
        hide_parameters=True,
        connect_args={"server_settings": server_settings()},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


from core.clock import db_now  # noqa: E402,F401  (the one definition lives in core.clock)


async def advisory_xact_lock(session: AsyncSession, key: int) -> None:
    """Take a transaction-scoped advisory lock, released at commit or rollback."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


async def _driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


async def fetch_rows(session: AsyncSession, sql: str, *args: Any) -> list[Any]:
    """Run a hand-written SELECT ($1, $2… parameters) on the session's own connection, in its transaction.

    For hot reads where building the statement and SQLAlchemy's per-row result processing cost more than the
    query itself: asyncpg keeps the prepared statement, and rows come back as asyncpg records (lists for arrays,
    aware datetimes), addressed by column name."""
    return await (await _driver_connection(session)).fetch(sql, *args)


async def execute_sql(session: AsyncSession, sql: str, *args: Any) -> str:
    """Run one hand-written statement ($1, $2… parameters) on the session's connection; returns its status."""
    return await (await _driver_connection(session)).execute(sql, *args)
