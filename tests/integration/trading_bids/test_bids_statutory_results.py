"""The candidates' publicity period and the objection deadline (招标投标法实施条例 第54条), through the API.

Run with BIDROOM_STATUTORY_PERIODS on, as production runs.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import staff
from tests.integration.trading.conftest import organisation
from web.keys import SCHEDULER


@pytest.fixture
def settings(settings):
    return settings.with_(statutory_periods=True)


async def inbox(client, actor) -> list[dict]:
    resp = await client.get("/api/v1/notifications", headers=actor.headers)
    assert resp.status == 200
    return await resp.json()


async def test_a_two_day_publicity_is_refused_naming_article_54(sessions, client, opened_single_source, raw_conn):
    info, bids = opened_single_source
    ranked = [{"lot": info.lot_id, "bid": b["bid"], "rank": i + 1} for i, b in enumerate(bids)]
    url = f"/api/v1/tenders/{info.code}/candidates"
    resp = await client.post(url, json={"candidates": ranked, "publicity_days": 2}, headers=info.agent.headers)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "publicity_period_too_short"
    assert body["error"]["details"]["statute"] == "招标投标法实施条例 第五十四条"
    assert body["error"]["details"]["min_days"] == 3
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE id = $1", info.tender_id) == "opened"
    resp = await client.post(url, json={"candidates": ranked, "publicity_days": 3}, headers=info.agent.headers)
    assert resp.status == 201, await resp.text()


async def test_an_unanswered_objection_reminds_the_agent_then_alerts_the_tenders_supervisors(
        sessions, client, opened_single_source, raw_conn):
    info, bids = opened_single_source
    # a supervisor of the tender's supervising organisation (行政监督部门), and one of another organisation
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=info.supervision)
    stranger = await staff(sessions, client, "supervisor", organisation_public_id=await organisation(sessions))
    ranked = [{"lot": info.lot_id, "bid": b["bid"], "rank": i + 1} for i, b in enumerate(bids)]
    url = f"/api/v1/tenders/{info.code}"
    assert (await client.post(url + "/candidates", json={"candidates": ranked},
                              headers=info.agent.headers)).status == 201
    objector = info.bidders[0]
    first = (await (await client.post(url + "/objections", json={"body": "第一名业绩不实"},
                                      headers=objector.headers)).json())["objection"]
    second = (await (await client.post(url + "/objections", json={"body": "第二名资质过期"},
                                       headers=objector.headers)).json())["objection"]
    filed_at = await raw_conn.fetchval("SELECT filed_at FROM objection WHERE public_id = $1", first)
    jobs = {r["kind"]: r for r in await raw_conn.fetch(
        "SELECT kind, due_at, status FROM scheduled_job WHERE dedupe_key LIKE $1", f"%:{first}")}
    assert jobs["trading.objection_reminder"]["due_at"] - filed_at == timedelta(days=2)
    assert jobs["trading.objection_overdue"]["due_at"] - filed_at == timedelta(days=3)

    # the second is answered in time: its reminder and alert are called off
    assert (await client.post(f"/api/v1/objections/{second}/answer", json={"answer": "资质有效，详见附件。"},
                              headers=info.agent.headers)).status == 200
    assert {r["status"] for r in await raw_conn.fetch(
        "SELECT status FROM scheduled_job WHERE dedupe_key LIKE $1", f"%:{second}")} == {"cancelled"}

    # a day before the answer is due (the job's time moved up): the agent is reminded
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' WHERE dedupe_key = $1",
                           f"trading.objection_reminder:{first}")
    await client.app[SCHEDULER].run_due()
    [note] = [n for n in await inbox(client, info.agent) if n["kind"] == "tender.objection_reminder"]
    assert note["data"]["objection"] == first and "第五十四条" in note["body"]
    assert await inbox(client, supervisor) == []

    # the alert job firing before the deadline only comes back at the deadline
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' WHERE dedupe_key = $1",
                           f"trading.objection_overdue:{first}")
    await client.app[SCHEDULER].run_due()
    assert await inbox(client, supervisor) == []
    # three days pass unanswered: the tender's supervisors are alerted, another organisation's are not
    await raw_conn.execute("UPDATE objection SET filed_at = now() - interval '3 days 1 minute' WHERE public_id = $1",
                           first)
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' "
                           "WHERE dedupe_key = $1 AND status = 'pending'", f"trading.objection_overdue:{first}")
    await client.app[SCHEDULER].run_due()
    [alert] = await inbox(client, supervisor)
    assert alert["kind"] == "tender.objection_overdue" and alert["data"]["objection"] == first
    assert await inbox(client, stranger) == []
    actions = [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", f"tender:{info.code}")]
    assert actions.count("tender.objection_reminder") == 1 and actions.count("tender.objection_overdue") == 1
