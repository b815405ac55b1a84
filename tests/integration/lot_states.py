"""States of a tender reached through the API once per run, then cloned for each test.

Reaching an opened lot with its committee costs about forty password hashes (every account signs in), two age
scrypt unwraps at the opening and two at the holders' enrolment, and a signed draw record: half a minute on the
test machine. Each state below is built once per test process, through HTTP exactly as a user would, in a
database and a data directory of its own; then every test that asks for it gets a copy: PostgreSQL's
`CREATE DATABASE ... TEMPLATE` of that database and a copy of its data directory (keys and stored files), so the
signed-in actors' tokens, the platform's keys and the sealed bids all carry over.

A conftest declares its states ({fixture name: (the state it starts from or None, builder)}) and installs the
fixtures of `fixtures()`; a test asks for a state by naming its fixture, and its `client`, `sessions` and
`raw_conn` are then on its own copy (tests/integration/evaluation/conftest.py, tests/integration/trading_bids).
"""
from __future__ import annotations

import copy
import itertools
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.db import asyncpg_dsn, create_engine, session_factory
from core.settings import Settings

# the template every test database starts from (tests/conftest.py)
BASE_TEMPLATE = "bidroom_template"
# long enough for the whole run: a token issued while a state is built is used by copies made minutes later
TOKEN_TTL_S = 6 * 3600


def test_settings(data_dir: Path, database_url: str) -> Settings:
    """The settings of tests/conftest.py's `settings` fixture, with tokens that outlive the run."""
    return Settings(data_dir=data_dir, database_url=database_url, run_scheduler=False, log_json=False,
                    public_url="http://127.0.0.1:8080", max_body_bytes=64 * 1024, statutory_periods=False,
                    min_free_disk_mb=16, access_token_ttl_s=TOKEN_TTL_S)


@dataclass
class Built:
    database: str        # a database nobody is connected to: the template of each copy
    data_dir: Path
    value: Any           # what the builder returned (a Ready or a Started); copied for each test


Builder = Callable[..., Awaitable[Any]]


class LotTemplates:
    """The states built so far in this process, by name; each built on first use."""

    def __init__(self, pg_server, root: Path, builders: dict[str, tuple[str | None, Builder]]):
        self.pg_server = pg_server
        self.root = root
        self.builders = builders        # name -> (the state it starts from or None, builder)
        self.built: dict[str, Built] = {}

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(**asyncpg_dsn(self.pg_server.libpq_uri("postgres")))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def get(self, name: str) -> Built:
        if name in self.built:
            return self.built[name]
        base_name, builder = self.builders[name]
        base = await self.get(base_name) if base_name else None
        database = f"state_{name}_{os.getpid()}"
        data_dir = self.root / name / "var"
        await self._admin(f'CREATE DATABASE "{database}" TEMPLATE "{base.database if base else BASE_TEMPLATE}"')
        if base:
            shutil.copytree(base.data_dir, data_dir)
        url = self.pg_server.libpq_uri(database)
        from web.app import create_app
        engine = create_engine(url, pool_size=4)
        client = TestClient(TestServer(create_app(test_settings(data_dir, url))))
        await client.start_server()
        raw_conn = await asyncpg.connect(**asyncpg_dsn(url))
        try:
            value = await builder(session_factory(engine), client, raw_conn,
                                  copy.deepcopy(base.value) if base else None)
        finally:
            await raw_conn.close()
            await client.close()
            await engine.dispose()
        self.built[name] = Built(database, data_dir, value)
        return self.built[name]

    async def copy_into(self, name: str, database: str) -> Built:
        """A new database `database` copied from state `name` (built if need be)."""
        built = await self.get(name)
        await self._admin(f'CREATE DATABASE "{database}" TEMPLATE "{built.database}"')
        return built


def fixtures(states: dict[str, tuple[str | None, Builder]], group: str, **overrides):
    """The fixtures that put a test on a copy of a state: `lot_templates` (per run), `db_url` and `settings`
    (overriding tests/conftest.py's: a fresh database copied from the state's, the state's data directory copied
    in, and `overrides` applied to the settings), one fixture per state name returning a copy of what its builder
    returned, and a collection hook putting every test on a state in one xdist group, so each state is built once
    per run rather than once per worker (`make test` runs with --dist loadgroup). Assign the result to module
    globals of a conftest."""
    counter = itertools.count()

    @pytest.fixture(scope="session", name="lot_templates")
    def lot_templates(pg_server, tmp_path_factory):
        return LotTemplates(pg_server, tmp_path_factory.mktemp("states"), states)

    @pytest.fixture(name="db_url")
    async def db_url(request, pg_server, lot_templates):
        named = [name for name in states if name in request.fixturenames]
        assert len(named) <= 1, f"a test runs on one state, not {named}"
        name = f"t_{group.replace('-', '_')}_{next(counter)}_{id(pg_server) % 1000}"
        if named:
            request.node.lot_state = await lot_templates.copy_into(named[0], name)
        else:
            await lot_templates._admin(f'CREATE DATABASE "{name}" TEMPLATE {BASE_TEMPLATE}')
        yield lot_templates.pg_server.libpq_uri(name)
        await lot_templates._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @pytest.fixture(name="settings")
    def settings(request, settings):
        built = getattr(request.node, "lot_state", None)
        if built is not None:
            shutil.copytree(built.data_dir, settings.data_dir, dirs_exist_ok=True)
        return settings.with_(**overrides) if overrides else settings

    def state_fixture(state: str):
        @pytest.fixture(name=state)
        def value(request, db_url, settings):
            return copy.deepcopy(request.node.lot_state.value)
        value.__doc__ = f"A copy of the `{state}` state (see the conftest's states), on this test's own database."
        return value

    def pytest_collection_modifyitems(config, items):
        for item in items:
            if any(name in getattr(item, "fixturenames", ()) for name in states):
                item.add_marker(pytest.mark.xdist_group(group))

    return (lot_templates, db_url, settings, pytest_collection_modifyitems,
            {state: state_fixture(state) for state in states})
