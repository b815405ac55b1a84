"""Idempotency records never hold credentials and expire after 24 hours; connections carry timeouts; /metrics is
the operator's only."""
from __future__ import annotations

from sqlalchemy import text

from core.db import IDLE_IN_TRANSACTION_TIMEOUT_MS, STATEMENT_TIMEOUT_MS
from core.scheduler import Scheduler, schedule
from tests.helpers import PASSWORD, register_bidder, social_credit_code, staff
from web.keys import JOBS, PG_POOL, SESSIONS


async def test_sign_in_answers_are_never_stored_for_replay(client, raw_conn):
    await register_bidder(client, "idem_bidder")
    headers = {"Idempotency-Key": "login-1"}
    body = {"username": "idem_bidder", "password": PASSWORD}
    first = await client.post("/api/v1/auth/login", json=body, headers=headers)
    second = await client.post("/api/v1/auth/login", json=body, headers=headers)
    assert first.status == second.status == 200
    assert "Idempotent-Replayed" not in second.headers
    # two real sign-ins, two different token pairs, and no stored copy of either
    assert (await first.json())["access_token"] != (await second.json())["access_token"]
    assert await raw_conn.fetchval("SELECT count(*) FROM idempotent_request") == 0


async def test_an_idempotency_record_older_than_a_day_no_longer_replays(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    headers = {**admin.headers, "Idempotency-Key": "org-old"}
    body = {"name": "中山市水务局", "kind": "tenderer", "social_credit_code": social_credit_code()}
    assert (await client.post("/api/v1/admin/organisations", json=body, headers=headers)).status == 201
    # the record is a day and a minute old
    await raw_conn.execute("UPDATE idempotent_request SET created_at = now() - interval '1441 minutes'")
    other = {**body, "name": "中山市水务局二", "social_credit_code": social_credit_code()}
    again = await client.post("/api/v1/admin/organisations", json=other, headers=headers)
    assert again.status == 201 and "Idempotent-Replayed" not in again.headers
    assert (await again.json())["name"] == "中山市水务局二"
    assert await raw_conn.fetchval("SELECT count(*) FROM idempotent_request") == 1


async def test_the_hourly_sweep_deletes_expired_records_and_keeps_fresh_ones(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    for n in range(3):
        body = {"name": f"中山市机构{n}", "kind": "tenderer", "social_credit_code": social_credit_code()}
        resp = await client.post("/api/v1/admin/organisations", json=body,
                                 headers={**admin.headers, "Idempotency-Key": f"k{n}"})
        assert resp.status == 201
    await raw_conn.execute("UPDATE idempotent_request SET created_at = now() - interval '2 days' WHERE key <> 'k2'")
    app = client.server.app
    async with app[SESSIONS]() as session, session.begin():
        await schedule(session, "idempotency.sweep", dedupe_key="idempotency.sweep")
    scheduler = Scheduler(app[SESSIONS], app[JOBS], poll_s=0.05)
    assert await scheduler.run_due() >= 1
    assert [r["key"] for r in await raw_conn.fetch("SELECT key FROM idempotent_request")] == ["k2"]
    # and it comes back in an hour
    assert await raw_conn.fetchval(
        "SELECT count(*) FROM scheduled_job WHERE kind = 'idempotency.sweep' AND status = 'pending'") == 1


SETTINGS_SQL = ("SELECT (SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'), "
                "(SELECT setting::int FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout')")


async def test_every_app_connection_runs_with_statement_and_idle_transaction_timeouts(client):
    app = client.server.app
    async with app[SESSIONS]() as session:
        got = tuple((await session.execute(text(SETTINGS_SQL))).one())
    async with app[PG_POOL].acquire() as conn:
        raw = tuple(await conn.fetchrow(SETTINGS_SQL))
    # pg_settings reports both in milliseconds
    assert got == raw == (STATEMENT_TIMEOUT_MS, IDLE_IN_TRANSACTION_TIMEOUT_MS)


async def test_metrics_are_for_the_operator_only(settings):
    """Without a token only loopback peers scrape; with one, only its bearer; a proxied request never."""
    from aiohttp.test_utils import TestClient, TestServer

    from web.app import create_app

    async with TestClient(TestServer(create_app(settings))) as local:
        assert (await local.get("/metrics")).status == 200
        proxied = await local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status == 404
    async with TestClient(TestServer(create_app(settings.with_(metrics_token="s3cret-scrape")))) as guarded:
        assert (await guarded.get("/metrics")).status == 404
        assert (await guarded.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 404
        ok = await guarded.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status == 200 and "bidroom_http_requests_total" in await ok.text()
