"""The statutory timeline through the API, with BIDROOM_STATUTORY_PERIODS on (the production default).

- 招标投标法 第24条: at least 20 days from publication to the bid deadline (open and invitational tendering);
- 招标投标法 第34条: the opening at the bid deadline itself;
both at publish and at each amendment, refused with 422, a stable code and the statute named.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.trading.conftest import create_draft, prepare_keys, published_tender


@pytest.fixture
def settings(settings):
    """The conftest settings with the statutory periods back on, as every production server runs."""
    return settings.with_(statutory_periods=True)


async def _publish(client, sessions, desk, code: str):
    await prepare_keys(client, sessions, desk, code)
    resp = await client.post(f"/api/v1/tenders/{code}/publish", headers=desk.agent.headers)
    return resp.status, await resp.json()


async def test_healthz_says_nothing_about_periods_when_they_are_on(client):
    body = await (await client.get("/healthz")).json()
    assert body["status"] == "ok" and "statutory_periods" not in body
    # the suite hashes passwords at the test cost (tests/conftest.py), which the health check never hides
    assert body["password_hash"] == "test"


async def test_a_19_day_bidding_period_is_refused_at_publish_naming_the_statute(client, sessions, desk, raw_conn):
    draft = await create_draft(client, desk, days=19)
    status, body = await _publish(client, sessions, desk, draft["code"])
    assert status == 422, body
    error = body["error"]
    assert error["code"] == "bidding_period_too_short"
    assert error["details"]["statute"] == "招标投标法 第二十四条" and "第二十四条" in error["message"]
    assert error["details"]["min_days"] == 20 and error["details"]["field"] == "bid_deadline_at"
    # nothing changed: still a draft, no close job, no publication in the ledger
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", draft["code"]) == "draft"
    assert await raw_conn.fetchval("SELECT count(*) FROM scheduled_job WHERE kind = 'trading.close_bidding'") == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'tender.published'") == 0


async def test_a_21_day_bidding_period_publishes(client, sessions, desk):
    draft = await create_draft(client, desk, days=21)
    status, body = await _publish(client, sessions, desk, draft["code"])
    assert status == 200 and body["status"] == "published", body


async def test_competitive_negotiation_has_no_20_day_minimum(client, sessions, desk):
    draft = await create_draft(client, desk, days=6, method="competitive_negotiation")
    status, body = await _publish(client, sessions, desk, draft["code"])
    assert status == 200, body


async def test_an_opening_after_the_deadline_is_refused_at_publish_naming_article_34(client, sessions, desk):
    now = datetime.now(timezone.utc)
    draft = await create_draft(client, desk, days=25,
                               opening_at=(now + timedelta(days=25, hours=2)).isoformat())
    status, body = await _publish(client, sessions, desk, draft["code"])
    assert status == 422
    assert body["error"]["code"] == "opening_not_at_deadline"
    assert body["error"]["details"]["statute"] == "招标投标法 第三十四条"


async def test_an_amendment_rechecks_the_statutory_timeline(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk, days=25)
    ok = await client.post(f"/api/v1/tenders/{tender['code']}/amendments", json={"summary": "更正联系人电话"},
                           headers=desk.agent.headers)
    assert ok.status == 201, await ok.text()
    # a timeline that no longer holds (set behind the API's back) is refused at the next amendment
    await raw_conn.execute("UPDATE tender SET opening_at = bid_deadline_at + interval '1 hour' WHERE code = $1",
                           tender["code"])
    resp = await client.post(f"/api/v1/tenders/{tender['code']}/amendments", json={"summary": "补充图纸"},
                             headers=desk.agent.headers)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "opening_not_at_deadline"
    assert "第三十四条" in body["error"]["details"]["statute"]
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_amendment") == 1
