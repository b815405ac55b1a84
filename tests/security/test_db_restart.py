"""The database restarted in the middle of a request: that request fails cleanly (503 with a stable code, never a
500), the next request succeeds on fresh connections, and nothing of the interrupted request was written.

The test runs its own embedded PostgreSQL, so restarting it disturbs no other test."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.db import EmbeddedPostgres, asyncpg_dsn
from core.migrate import upgrade
from core.settings import Settings
from tests.helpers import PASSWORD, bidder, social_credit_code

COUNTED = ("app_user", "organisation", "audit_entry")


@pytest.fixture
def own_server():
    root = Path(tempfile.mkdtemp(prefix="bidroom-restart-pg-"))
    server = EmbeddedPostgres(root / "data", cleanup_mode="stop").start()
    server.psql("CREATE DATABASE restart;")
    upgrade(server.libpq_uri("restart"))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(**asyncpg_dsn(url))
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in COUNTED}
    finally:
        await conn.close()


async def test_a_request_cut_by_a_database_restart_is_a_clean_503_and_the_next_succeeds(own_server, tmp_path):
    url = own_server.libpq_uri("restart")
    settings = Settings(data_dir=tmp_path / "var", database_url=url, run_scheduler=False, log_json=False,
                        public_url="http://127.0.0.1:8080", statutory_periods=False)
    from web.app import create_app
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        first = await bidder(client)
        before = await counts(url)
        registration = {"username": "restart-bidder", "password": PASSWORD, "display_name": "中山市重启测试有限公司",
                        "role": "bidder", "organisation": {"name": "中山市重启测试有限公司",
                                                           "social_credit_code": social_credit_code()}}
        # hold the request inside its transaction: it waits on a lock this connection keeps
        blocker = await asyncpg.connect(**asyncpg_dsn(url))
        await blocker.execute("BEGIN; LOCK TABLE organisation IN ACCESS EXCLUSIVE MODE")
        request = asyncio.ensure_future(client.post("/api/v1/auth/register", json=registration))
        for _ in range(200):
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'restart'")
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the request never reached the database"
        # restart the server under it (the blocker's connection goes with it)
        await asyncio.to_thread(own_server.stop)
        # while it is down, a signed-in request (the sign-in lookup connects on its own pool) is a clean 503 too
        resp = await client.get("/api/v1/me", headers=first.headers)
        assert (resp.status, (await resp.json())["error"]["code"]) == (503, "database_unavailable")
        await asyncio.to_thread(own_server.start)
        assert own_server.libpq_uri("restart") == url
        resp = await asyncio.wait_for(request, 60)
        body = await resp.json()
        assert resp.status == 503, body
        assert body["error"]["code"] == "database_unavailable"
        assert resp.headers.get("Retry-After")
        blocker.terminate()
        # nothing of it was written
        assert await counts(url) == before
        # the next requests succeed, on both of the app's connection pools (the ORM's and the auth lookup's)
        resp = await client.get("/api/v1/me", headers=first.headers)
        assert resp.status == 200, await resp.text()
        resp = await client.post("/api/v1/auth/register", json=registration)
        assert resp.status == 201, await resp.text()
        after = await counts(url)
        assert after["app_user"] == before["app_user"] + 1
        assert after["organisation"] == before["organisation"] + 1
        assert after["audit_entry"] > before["audit_entry"]
    finally:
        await client.close()
