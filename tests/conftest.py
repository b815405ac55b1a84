"""Shared fixtures: a real embedded PostgreSQL, a migrated template, and a fresh database per test."""
from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from aiohttp.test_utils import TestClient, TestServer

# every test signs in accounts, many of them: passwords are hashed at Argon2id's minimum cost in this process and
# in the servers and CLI processes it starts (core/passwords.py); set before any project module is imported
os.environ.setdefault("BIDROOM_PASSWORD_HASH", "test")

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


# What makes a database the template's: its schema, grants, triggers (and whether they are enabled), functions,
# database settings and schema version. A reused test database must match the template's on all of it.
FINGERPRINT = """
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
  SELECT 'c ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '') || ' '
         || c.relrowsecurity || c.relforcerowsecurity || c.relpersistence::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_%temp%'
  UNION ALL
  SELECT 'a ' || a.attrelid::regclass || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
         || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'k ' || conrelid::regclass || ' ' || conname || ' ' || convalidated || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 't ' || tgname || ' ' || tgenabled::text || ' ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'p ' || p.oid::regprocedure || ' ' || md5(p.prosrc) || ' ' || coalesce(p.proacl::text, '')
    FROM pg_proc p WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL
  SELECT 'i ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'r ' || polrelid::regclass || ' ' || polname || ' ' || coalesce(pg_get_expr(polqual, polrelid), '')
    FROM pg_policy
  UNION ALL SELECT 'n ' || nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace
  UNION ALL SELECT 'e ' || extname || ' ' || extversion FROM pg_extension
  UNION ALL SELECT 'g ' || evtname || ' ' || evtenabled::text FROM pg_event_trigger
  UNION ALL SELECT 'f ' || defaclobjtype::text || ' ' || defaclacl::text FROM pg_default_acl
  UNION ALL
  SELECT 'd ' || datconnlimit || ' ' || datallowconn || ' ' || coalesce(datacl::text, '')
    FROM pg_database WHERE datname = current_database()
  UNION ALL
  SELECT 's ' || setrole || ' ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
   WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL
  SELECT 'y ' || t.typname || ' ' || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                                                FROM pg_enum WHERE enumtypid = t.oid), '')
    FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'q ' || seqrelid::regclass || ' ' || seqstart || ' ' || seqincrement || ' ' || seqmax || ' ' || seqmin
         || ' ' || seqcache || ' ' || seqcycle FROM pg_sequence
  UNION ALL
  SELECT 'w ' || c.relname || ' ' || pg_get_viewdef(c.oid) FROM pg_class c
   WHERE c.relkind IN ('v', 'm') AND c.relnamespace = 'public'::regnamespace
  UNION ALL SELECT 'l ' || count(*) FROM pg_largeobject_metadata
  UNION ALL SELECT 'v ' || version_num FROM alembic_version
) AS f(x)
"""
# a test that filled its database past this gets a new one rather than an emptied one full of dead rows
REUSE_MAX_BYTES = 48 * 1024 * 1024


class TestDatabases:
    """The test databases of one worker. Each test gets a database of its own, as if new: a copy of the migrated
    template, or one an earlier test of this worker used, emptied and checked.

    Copying the template (`CREATE DATABASE ... TEMPLATE`) costs 0.4-0.8 s a test on this machine, most of a short
    test's set-up; emptying a used database costs a few milliseconds. When a test ends, its database's connections
    are ended, every table but alembic_version is emptied with triggers off (the ledger refuses DELETE otherwise)
    and every sequence set back to where the template has it, in one transaction. The database is then reused
    only if its fingerprint (FINGERPRINT: schema, grants, triggers and whether they are on, functions, database
    settings, schema version) is the template's and it is not large; otherwise it is dropped, as every database
    was before. So a test that alters the schema, disables a trigger, grants a role or downgrades the migrations
    never hands its database on."""

    def __init__(self, server) -> None:
        self.server = server
        self.free: list[str] = []
        self.fingerprint: str | None = None
        self.reset_sql: str | None = None

    async def _admin(self, sql: str) -> None:
        admin = await asyncpg.connect(**asyncpg_dsn(self.server.libpq_uri("postgres")))
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    async def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"t_{next(_counter)}_{id(self.server) % 1000}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
        if self.fingerprint is None:  # read from the first copy: connecting to the template would block copies
            conn = await asyncpg.connect(**asyncpg_dsn(self.server.libpq_uri(name)))
            try:
                self.fingerprint = await conn.fetchval(FINGERPRINT)
                tables = [r["t"] for r in await conn.fetch(
                    "SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'alembic_version' ORDER BY 1")]
                sequences = await conn.fetch(
                    "SELECT format('%I.%I', schemaname, sequencename) AS s, start_value, last_value "
                    "FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
            finally:
                await conn.close()
            statements = [f"DELETE FROM {t}" for t in tables]
            for r in sequences:  # as the template has it: never used (start, not called) or at its last value
                used = r["last_value"] is not None
                value = r["last_value"] if used else r["start_value"]
                statements.append(f"SELECT setval('{r['s']}', {value}, {'true' if used else 'false'})")
            self.reset_sql = ";\n".join(statements)
        return name

    async def give_back(self, name: str) -> None:
        reusable = False
        try:
            conn = await asyncpg.connect(**asyncpg_dsn(self.server.libpq_uri(name)))
            try:
                await conn.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                   "AND backend_type = 'client backend'")
                async with conn.transaction():
                    await conn.execute("SET LOCAL session_replication_role = replica")
                    await conn.execute(self.reset_sql)
                reusable = (await conn.fetchval(FINGERPRINT) == self.fingerprint
                            and await conn.fetchval("SELECT pg_database_size(current_database())") < REUSE_MAX_BYTES)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            reusable = False  # a table dropped, a server stopped: the database is not reused
        if reusable:
            self.free.append(name)
        else:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def test_databases(pg_server) -> TestDatabases:
    return TestDatabases(pg_server)


@pytest.fixture
async def db_url(pg_server, test_databases):
    """A database of its own for one test: the migrated template's copy, new or emptied (TestDatabases)."""
    name = await test_databases.take()
    yield pg_server.libpq_uri(name)
    await test_databases.give_back(name)


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url, run_scheduler=False, log_json=False,
                    public_url="http://127.0.0.1:8080", max_body_bytes=64 * 1024,
                    statutory_periods=False,  # tests run on short timelines; statutory tests turn it on
                    # a 429 held 50 ms, not up to 1 s: throttling tests go through dozens of them in a row
                    rate_limited_hold_s=0.05, rate_limited_repeat_hold_s=0.05,
                    # enrolments at nice 10: the suite keeps both cores busy, where SCHED_IDLE jobs wait for minutes
                    enrolment_priority="low",
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


# `make test` runs the suite on several workers (pytest-xdist, --dist loadgroup: many tests wait on servers,
# browsers and real-time media rather than the CPU). Some tests must share one worker: the browser tests, so the
# browser fixtures' server, demo data and Chromium are made once; the media tests, which count frames in real time
# and must never run beside each other; and the end-to-end tests that start `bidroom serve` on an embedded
# database of their own. Each group below is one unit of work for the scheduler, started first (the largest units
# go first); every other test is a unit of its own.
#
# The groups are made by the scheduler from the test's path, not by `xdist_group` marks: xdist turns a mark into a
# node-id suffix on the worker, which the installed pytest no longer takes (node ids are immutable there), so a mark
# alone silently groups nothing.
# Hypothesis judges nothing by time here: its health check on slow input generation failed a property test whose
# scenarios took 2 s each to build on a worker at nice +10 beside the browser and media tests (timing is measured in
# bench/, never asserted in a test). Each test's own @settings keeps its example count.
hypothesis_settings.register_profile("bidroom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("bidroom")

SERIAL_GROUPS = {
    "browser": ("tests/browser/",),
    "media": ("tests/integration/media/",),
    "e2e": ("tests/e2e/test_opening_crash.py", "tests/e2e/test_serve_subprocess.py"),
    # the lot states (tests/integration/lot_states.py) are built once per worker: on one worker, once per run
    # (about 250 s of the suite's worker time when the state tests were spread over four)
    "evaluation-lots": ("tests/integration/evaluation/",),
    "trading-bids-states": ("tests/integration/trading_bids/",),
}


def serial_group(nodeid: str) -> str | None:
    """The serial group a test belongs to, by its path (None: it may run on any worker)."""
    path = nodeid.replace("\\", "/")
    return next((group for group, prefixes in SERIAL_GROUPS.items() if path.startswith(prefixes)), None)


def pytest_collection_modifyitems(config, items):
    for item in items:  # the mark documents the group (and groups with a pytest whose node ids take xdist's suffix)
        group = serial_group(item.nodeid)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


# The real-time groups have workers of their own: the media tests, which count frames and packets in real time, at
# the normal priority; the browser tests (their server and Chromium too) a little lower, nice +5, since a page
# waits where a packet is lost; every other worker at nice +10, inherited by the PostgreSQL, servers and process
# pools it starts. The suite is CPU-bound on two cores: without this, the media tests lost frames while the
# CPU-heavy tests (scrypt, PDF signing, the state builds) and five camera pages took their share; with it those
# still get every cycle left over.
PINNED_GROUPS = {"media": "gw0", "browser": "gw1"}
PRIORITY = {"gw0": 0, "gw1": 5}
LOWER_PRIORITY = 10


def pytest_configure(config):
    worker = getattr(config, "workerinput", {}).get("workerid")
    workers = getattr(config, "workerinput", {}).get("workercount", 0)
    if worker and workers > len(PINNED_GROUPS):
        os.nice(PRIORITY.get(worker, LOWER_PRIORITY))


# BIDROOM_TEST_TIMELINE=<file>: each worker appends a JSON line per test phase (worker, test, phase, start, stop),
# to see which worker a run waited on (docs/BENCHMARKS.md, "The suite's wall time").
TIMELINE = os.environ.get("BIDROOM_TEST_TIMELINE")


def pytest_runtest_logreport(report):
    if TIMELINE and os.environ.get("PYTEST_XDIST_WORKER"):
        line = json.dumps({"worker": os.environ["PYTEST_XDIST_WORKER"], "test": report.nodeid, "phase": report.when,
                           "start": report.start, "stop": report.stop, "outcome": report.outcome})
        with open(TIMELINE, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup with the groups of SERIAL_GROUPS (see above), the real-time ones on the workers of
    PINNED_GROUPS; other --dist modes are xdist's own."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class PathGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return serial_group(nodeid) or super()._split_scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            """The node's own pinned group first, then the first unit pinned to no other live node (pinned units
            all go out in the initial distribution, so nobody waits on them; failing that, the first unit)."""
            live = {n.gateway.id for n in self.nodes}
            me = node.gateway.id

            def owner(scope: str) -> str | None:
                pinned = PINNED_GROUPS.get(scope)
                return pinned if pinned in live else None
            pick = (next((scope for scope in self.workqueue if owner(scope) == me), None)
                    or next((scope for scope in self.workqueue if owner(scope) in (None, me)), None))
            if pick is not None:
                self.workqueue.move_to_end(pick, last=False)
            super()._assign_work_unit(node)

    return PathGroupScheduling(config, log)
