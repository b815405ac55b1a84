"""Registration, anonymous clarifications, amendments that extend the deadline, and bidder notifications."""
from datetime import datetime, timedelta

from tests.helpers import bidder
from tests.integration.trading.conftest import create_draft, published_tender


async def _register(client, actor, lot_id):
    return await client.post(f"/api/v1/lots/{lot_id}/registrations", headers=actor.headers)


async def _inbox(client, actor):
    return await (await client.get("/api/v1/notifications", headers=actor.headers)).json()


async def test_bidders_register_for_a_lot_once_while_the_tender_is_open(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk)
    a = await bidder(client, org_name="中山市恒信建设工程有限公司")
    resp = await _register(client, a, tender["lots"][0]["lot_id"])
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["lot_id"] == tender["lots"][0]["lot_id"]
    again = await _register(client, a, tender["lots"][0]["lot_id"])
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_registered"
    detail = await (await client.get(f"/api/v1/tenders/{tender['code']}", headers=a.headers)).json()
    assert detail["my_registrations"] == [tender["lots"][0]["lot_id"]]
    assert await raw_conn.fetchval("SELECT count(*) FROM bidder_registration") == 1


async def test_registration_is_refused_after_the_deadline_by_the_database_clock(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk)
    await raw_conn.execute("UPDATE tender SET bid_deadline_at = now() - interval '1 second', opening_at = now() "
                           "WHERE code = $1", tender["code"])
    a = await bidder(client)
    resp = await _register(client, a, tender["lots"][0]["lot_id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "bid_deadline_passed"
    assert await raw_conn.fetchval("SELECT count(*) FROM bidder_registration") == 0


async def test_registration_needs_a_published_tender_and_a_real_lot(client, sessions, desk):
    draft = await create_draft(client, desk)
    a = await bidder(client)
    assert (await _register(client, a, draft["lots"][0]["lot_id"])).status == 404
    assert (await _register(client, a, "ZS-2026-FJSZ-99999-L01")).status == 404
    staffer = desk.agent
    tender = await published_tender(client, sessions, desk)
    assert (await _register(client, staffer, tender["lots"][0]["lot_id"])).status == 403


async def test_questions_stay_anonymous_to_other_bidders_and_answers_are_public(client, sessions, desk):
    tender = await published_tender(client, sessions, desk)
    lot = tender["lots"][0]["lot_id"]
    a = await bidder(client, org_name="中山市恒信建设工程有限公司")
    b = await bidder(client, org_name="佛山市南方路桥集团有限公司")
    for actor in (a, b):
        assert (await _register(client, actor, lot)).status == 201
    path = f"/api/v1/tenders/{tender['code']}/clarifications"
    asked = await client.post(path, json={"question": "第一标段的沥青标号是否可以调整？"}, headers=a.headers)
    assert asked.status == 201
    qid = (await asked.json())["clarification_id"]
    assert await (await client.get(path, headers=b.headers)).json() == []  # unanswered: only the asker sees it
    assert [q["mine"] for q in await (await client.get(path, headers=a.headers)).json()] == [True]
    for_agent = await (await client.get(path, headers=desk.agent.headers)).json()
    assert for_agent[0]["asked_by"]["name"] == "中山市恒信建设工程有限公司"
    answered = await client.post(f"/api/v1/clarifications/{qid}/answer", json={"answer": "不可调整，按招标文件执行。"},
                                 headers=desk.agent.headers)
    assert answered.status == 200, await answered.text()
    for viewer in (b.headers, {}):
        seen = await (await client.get(path, headers=viewer)).json()
        assert [(q["question"], q["answer"], q["asked_by"], q["mine"]) for q in seen] == [
            ("第一标段的沥青标号是否可以调整？", "不可调整，按招标文件执行。", None, False)]
        text = str(seen)
        assert "恒信" not in text and a.public_id not in text
    note = (await _inbox(client, b))[0]
    assert note["kind"] == "tender.clarification" and "恒信" not in note["body"] + str(note["data"])
    again = await client.post(f"/api/v1/clarifications/{qid}/answer", json={"answer": "再答"},
                              headers=desk.agent.headers)
    assert again.status == 409


async def test_only_registered_bidders_ask_and_only_during_the_clarification_period(client, sessions, desk,
                                                                                  raw_conn):
    tender = await published_tender(client, sessions, desk)
    path = f"/api/v1/tenders/{tender['code']}/clarifications"
    stranger = await bidder(client)
    resp = await client.post(path, json={"question": "可以联合体投标吗？"}, headers=stranger.headers)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "not_registered"
    await _register(client, stranger, tender["lots"][0]["lot_id"])
    await raw_conn.execute("UPDATE tender SET clarification_end_at = now() - interval '1 second' WHERE code = $1",
                           tender["code"])
    late = await client.post(path, json={"question": "可以联合体投标吗？"}, headers=stranger.headers)
    assert late.status == 409 and (await late.json())["error"]["code"] == "clarification_period_over"
    assert await raw_conn.fetchval("SELECT count(*) FROM clarification") == 0


async def test_an_amendment_close_to_the_deadline_extends_it_moves_the_close_job_and_notifies_bidders(
        client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk, days=10)  # open tendering needs 15 days' notice
    a = await bidder(client)
    await _register(client, a, tender["lots"][1]["lot_id"])
    outsider = await bidder(client)
    resp = await client.post(f"/api/v1/tenders/{tender['code']}/amendments",
                             json={"summary": "第二标段工程量清单修正", "body": "详见附件"}, headers=desk.agent.headers)
    assert resp.status == 201, await resp.text()
    amendment = await resp.json()
    assert amendment["deadline_extended"] is True
    new_deadline = datetime.fromisoformat(amendment["bid_deadline_after"])
    published = datetime.fromisoformat(amendment["published_at"])
    assert new_deadline - published == timedelta(days=15)
    old_opening = datetime.fromisoformat(tender["opening_at"])
    old_deadline = datetime.fromisoformat(tender["bid_deadline_at"])
    assert datetime.fromisoformat(amendment["opening_after"]) - old_opening == new_deadline - old_deadline
    detail = await (await client.get(f"/api/v1/tenders/{tender['code']}")).json()
    assert datetime.fromisoformat(detail["bid_deadline_at"]) == new_deadline
    due = await raw_conn.fetchval("SELECT due_at FROM scheduled_job WHERE kind = 'trading.close_bidding' "
                                  "AND status = 'pending'")
    assert due == new_deadline
    note = (await _inbox(client, a))[0]
    assert note["kind"] == "tender.amendment" and note["data"]["extended"] is True
    assert await _inbox(client, outsider) == []


async def test_an_amendment_with_enough_notice_leaves_the_deadline_alone(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk, days=30)
    resp = await client.post(f"/api/v1/tenders/{tender['code']}/amendments", json={"summary": "更正联系人电话"},
                             headers=desk.agent.headers)
    amendment = await resp.json()
    assert amendment["deadline_extended"] is False
    assert datetime.fromisoformat(amendment["bid_deadline_after"]) == datetime.fromisoformat(tender["bid_deadline_at"])


async def test_amendments_are_refused_for_drafts_and_for_unknown_documents(client, sessions, desk, raw_conn):
    draft = await create_draft(client, desk)
    resp = await client.post(f"/api/v1/tenders/{draft['code']}/amendments", json={"summary": "修改"},
                             headers=desk.agent.headers)
    assert resp.status == 409 and (await resp.json())["error"]["details"]["current"] == "draft"
    tender = await published_tender(client, sessions, desk)
    bad = await client.post(f"/api/v1/tenders/{tender['code']}/amendments",
                            json={"summary": "修改", "document_ids": ["D-NOPE0000"]}, headers=desk.agent.headers)
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "unknown_document"
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_amendment") == 0


async def test_cancelling_notifies_registered_bidders(client, sessions, desk):
    tender = await published_tender(client, sessions, desk)
    a = await bidder(client)
    await _register(client, a, tender["lots"][0]["lot_id"])
    await client.post(f"/api/v1/tenders/{tender['code']}/cancel", json={"reason": "采购需求变更"},
                      headers=desk.agent.headers)
    note = (await _inbox(client, a))[0]
    assert note["kind"] == "tender.cancelled" and "采购需求变更" in note["body"]
