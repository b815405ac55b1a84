"""Process-level wiring shared by the CLI commands: resolving the database and running coroutines."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import EmbeddedPostgres, create_engine, ensure_serving_role_sync, session_factory
from core.migrate import upgrade
from core.settings import Settings, ensure_secret_file

log = logging.getLogger(__name__)
EMBEDDED_DATABASE = "bidroom"


@dataclass
class Database:
    url: str
    embedded: EmbeddedPostgres | None


def resolve_database(settings: Settings) -> Database:
    """Use BIDROOM_DATABASE_URL, or start the embedded server in the data directory."""
    if settings.database_url:
        return Database(settings.database_url, None)
    server = EmbeddedPostgres(settings.data_dir / "pg").start()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return Database(server.libpq_uri(EMBEDDED_DATABASE), server)


SERVING_ROLE_SECRET = "database_serving_role.secret"


def prepare(settings: Settings, *, migrate: bool) -> tuple[Settings, Database]:
    """Resolve the database, optionally migrate it, and return settings pointing at it.

    On the embedded database, migrations run as its owner and everything else as the restricted serving role
    (core.db.ensure_serving_role), whose password is generated once into the keys directory. An external
    BIDROOM_DATABASE_URL is used as given: point it at a role made the same way."""
    database = resolve_database(settings)
    if migrate:
        upgrade(database.url)
    url = database.url
    if database.embedded is not None:
        password = ensure_secret_file(settings.keys_dir / SERVING_ROLE_SECRET, 24).hex()
        url = ensure_serving_role_sync(database.url, password)
    return settings.with_(database_url=url), database


@asynccontextmanager
async def sessions_for(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url, pool_size=4)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def run(coro):
    return asyncio.run(coro)
