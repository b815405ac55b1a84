"""Shared fixtures: a real embedded PostgreSQL, a migrated template, and a fresh database per test."""
from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.db import EmbeddedPostgres, asyncpg_dsn, create_engine, session_factory, with_database
from core.migrate import upgrade
from core.settings import Settings

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
TEMPLATE = "bidroom_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the whole run, deleted afterwards.

    Its data lives outside pytest's basetemp, which a concurrent pytest run may prune while we use it.
    """
    root = Path(tempfile.mkdtemp(prefix="bidroom-test-pg-"))
    server = EmbeddedPostgres(root / "data", cleanup_mode="delete").start()
    server.psql(f"CREATE DATABASE {TEMPLATE};")
    upgrade(server.libpq_uri(TEMPLATE))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def db_url(pg_server):
    """A database of its own for one test, copied from the migrated template."""
    name = f"t_{next(_counter)}_{id(pg_server) % 1000}"
    admin = await asyncpg.connect(**asyncpg_dsn(pg_server.libpq_uri("postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
    finally:
        await admin.close()
    yield pg_server.libpq_uri(name)
    admin = await asyncpg.connect(**asyncpg_dsn(pg_server.libpq_uri("postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url, run_scheduler=False, log_json=False,
                    public_url="http://127.0.0.1:8080", max_body_bytes=64 * 1024,
                    statutory_periods=False,  # tests run on short timelines; statutory tests turn it on
                    min_free_disk_mb=16)  # a small CI disk must not refuse every upload; the reserve has its own test


@pytest.fixture
async def sessions(db_url):
    engine = create_engine(db_url, pool_size=4)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def client(settings):
    from web.app import create_app
    test_client = TestClient(TestServer(create_app(settings)))
    await test_client.start_server()
    yield test_client
    await test_client.close()


@pytest.fixture
async def raw_conn(db_url):
    """A plain asyncpg connection as the database superuser, for looking behind the app's back."""
    conn = await asyncpg.connect(**asyncpg_dsn(db_url))
    yield conn
    await conn.close()


# `make test` runs the suite on four workers (pytest-xdist, --dist loadgroup: many tests wait on servers, browsers
# and real-time media rather than the CPU). Tests that start their own server
# process and browser share one worker, so the browser fixture's server starts once, and the media tests, which
# count frames in real time, never run beside each other.
_SERIAL_GROUPS = {"browser": "tests/browser/", "media": "tests/integration/media/", "e2e": "tests/e2e/"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.replace("\\", "/")
        for group, prefix in _SERIAL_GROUPS.items():
            if path.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
