"""Tender lifecycle over HTTP: drafts, publication, the close job by the database clock, cancellation."""
from sqlalchemy import text

from tests.helpers import bidder
from tests.integration.trading.conftest import create_draft, draft_body, publish, published_tender
from web.keys import SCHEDULER


async def test_an_agent_drafts_a_tender_with_a_code_lots_and_an_evaluation_method(client, desk):
    draft = await create_draft(client, desk)
    assert draft["code"].startswith("ZS-2026-FJSZ-") or draft["code"].startswith("ZS-20")
    assert draft["status"] == "draft"
    assert [(lot["lot_id"], lot["budget"]) for lot in draft["lots"]] == [
        (f"{draft['code']}-L01", "8000000.00"), (f"{draft['code']}-L02", "4345678.90")]
    assert draft["budget"] == "12345678.90"
    assert draft["evaluation"]["price_weight"] == "40"
    assert draft["agent"]["organisation_id"] == desk.agency
    second = await create_draft(client, desk)
    assert int(second["code"][-5:]) == int(draft["code"][-5:]) + 1


async def test_drafts_are_invisible_to_the_public_until_published(client, sessions, desk):
    draft = await create_draft(client, desk)
    assert (await client.get(f"/api/v1/tenders/{draft['code']}")).status == 404
    assert (await client.get(f"/api/v1/tenders/{draft['code']}", headers=desk.agent.headers)).status == 200
    await publish(client, sessions, desk, draft["code"])
    public = await (await client.get(f"/api/v1/tenders/{draft['code']}")).json()
    assert public["status"] == "published" and public["published_at"] is not None


async def test_publishing_twice_is_refused_with_409_naming_the_current_state(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk)
    before = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    resp = await client.post(f"/api/v1/tenders/{tender['code']}/publish", headers=desk.agent.headers)
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert error["code"] == "illegal_transition"
    assert error["details"]["current"] == "published"
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == before


async def test_a_published_tender_can_no_longer_be_edited(client, sessions, desk):
    tender = await published_tender(client, sessions, desk)
    resp = await client.patch(f"/api/v1/tenders/{tender['code']}", json={"title": "改了"}, headers=desk.agent.headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["details"]["current"] == "published"


async def test_a_draft_edit_changes_fields_and_revalidates_the_timeline(client, desk):
    draft = await create_draft(client, desk)
    resp = await client.patch(f"/api/v1/tenders/{draft['code']}", json={"title": "中山市东区道路工程"},
                              headers=desk.agent.headers)
    assert resp.status == 200 and (await resp.json())["title"] == "中山市东区道路工程"
    bad = await client.patch(f"/api/v1/tenders/{draft['code']}",
                             json={"opening_at": "2020-01-01T00:00:00+08:00"}, headers=desk.agent.headers)
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "invalid_timeline"
    again = await (await client.get(f"/api/v1/tenders/{draft['code']}", headers=desk.agent.headers)).json()
    assert again["opening_at"] == draft["opening_at"]


async def test_another_agency_cannot_publish_or_edit_the_tender(client, sessions, desk):
    from tests.helpers import staff
    draft = await create_draft(client, desk)
    other = await staff(sessions, client, "agent")
    assert (await client.post(f"/api/v1/tenders/{draft['code']}/publish", headers=other.headers)).status == 403
    assert (await client.patch(f"/api/v1/tenders/{draft['code']}", json={"title": "x1"},
                               headers=other.headers)).status == 403


async def test_the_close_job_closes_bidding_at_the_deadline_by_the_database_clock(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk)
    job = await raw_conn.fetchrow("SELECT kind, due_at, status FROM scheduled_job WHERE dedupe_key = $1",
                                  f"tender:{await _id(raw_conn, tender['code'])}:close")
    assert job["kind"] == "trading.close_bidding" and job["status"] == "pending"
    assert job["due_at"].isoformat() == tender["bid_deadline_at"].replace("Z", "+00:00")
    # the job fires early (its due time is moved back, the deadline is not): the tender stays open
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' WHERE kind = $1",
                           "trading.close_bidding")
    await client.app[SCHEDULER].run_due()
    assert (await (await client.get(f"/api/v1/tenders/{tender['code']}")).json())["status"] == "published"
    # time passes: the deadline is now behind the database clock
    await raw_conn.execute("UPDATE tender SET bid_deadline_at = now() - interval '1 second', "
                           "opening_at = now() WHERE code = $1", tender["code"])
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' "
                           "WHERE kind = $1 AND status = 'pending'", "trading.close_bidding")
    await client.app[SCHEDULER].run_due()
    closed = await (await client.get(f"/api/v1/tenders/{tender['code']}")).json()
    assert closed["status"] == "closed"
    actions = await raw_conn.fetch("SELECT action, actor FROM audit_entry WHERE entity = $1 ORDER BY seq",
                                   f"tender:{tender['code']}")
    assert ("tender.closed", "system") in [(a["action"], a["actor"]) for a in actions]


async def _id(raw_conn, code):
    return await raw_conn.fetchval("SELECT id FROM tender WHERE code = $1", code)


async def test_cancelling_needs_a_reason_ends_the_close_job_and_is_final(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk)
    resp = await client.post(f"/api/v1/tenders/{tender['code']}/cancel", json={"reason": "项目资金未落实"},
                             headers=desk.agent.headers)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    job = await raw_conn.fetchval("SELECT status FROM scheduled_job WHERE kind = 'trading.close_bidding'")
    assert job == "cancelled"
    again = await client.post(f"/api/v1/tenders/{tender['code']}/publish", headers=desk.agent.headers)
    assert again.status == 409
    assert (await again.json())["error"]["details"] == {"current": "cancelled", "target": "published", "allowed": []}
    cancel_again = await client.post(f"/api/v1/tenders/{tender['code']}/cancel", json={"reason": "再次终止"},
                                     headers=desk.agent.headers)
    assert cancel_again.status == 409


async def test_a_draft_can_be_cancelled_and_a_closed_tender_too(client, sessions, desk, raw_conn):
    draft = await create_draft(client, desk)
    resp = await client.post(f"/api/v1/tenders/{draft['code']}/cancel", json={"reason": "立项撤回"},
                             headers=desk.agent.headers)
    assert resp.status == 200
    tender = await published_tender(client, sessions, desk)
    await raw_conn.execute("UPDATE tender SET bid_deadline_at = now() - interval '1 second', opening_at = now() "
                           "WHERE code = $1", tender["code"])
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() WHERE kind = 'trading.close_bidding'")
    await client.app[SCHEDULER].run_due()
    resp = await client.post(f"/api/v1/tenders/{tender['code']}/cancel", json={"reason": "投诉成立，终止招标"},
                             headers=desk.agent.headers)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"


async def test_bidders_cannot_draft_tenders(client, desk):
    someone = await bidder(client)
    resp = await client.post("/api/v1/tenders", json=draft_body(desk.tenderer), headers=someone.headers)
    assert resp.status == 403
