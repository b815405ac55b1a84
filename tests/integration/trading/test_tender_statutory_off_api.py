"""BIDROOM_STATUTORY_PERIODS=off, as the test settings and the demo run: short periods pass, and it is said."""
from __future__ import annotations

import logging

from tests.integration.trading.conftest import create_draft, prepare_keys


async def test_with_periods_off_healthz_says_so_and_a_short_bidding_period_publishes(client, sessions, desk):
    body = await (await client.get("/healthz")).json()
    assert (body["status"], body["statutory_periods"]) == ("ok", "off")
    draft = await create_draft(client, desk, days=8)
    await prepare_keys(client, sessions, desk, draft["code"])
    resp = await client.post(f"/api/v1/tenders/{draft['code']}/publish", headers=desk.agent.headers)
    assert resp.status == 200, await resp.text()


async def test_with_periods_off_the_opening_is_still_at_the_deadline(client, sessions, desk):
    """第34条 is not a period: switching the periods off leaves it in force."""
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone.utc)
    draft = await create_draft(client, desk, days=8, opening_at=(now + timedelta(days=8, hours=1)).isoformat())
    await prepare_keys(client, sessions, desk, draft["code"])
    resp = await client.post(f"/api/v1/tenders/{draft['code']}/publish", headers=desk.agent.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "opening_not_at_deadline"


async def test_the_server_warns_at_start_when_the_periods_are_off(settings, caplog):
    from aiohttp.test_utils import TestClient, TestServer

    from web.app import create_app
    with caplog.at_level(logging.WARNING, logger="web.app"):
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        await client.close()
    assert any("BIDROOM_STATUTORY_PERIODS=off" in r.getMessage() for r in caplog.records)
