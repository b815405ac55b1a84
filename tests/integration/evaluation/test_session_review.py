"""Qualification and compliance review (资格/符合性审查) over HTTP: each member votes pass or fail per bidder per
requirement with reasons, the majority decides when the chair closes it, a rejected bidder is out with the
reasons, and fewer than 3 compliant bids fail the lot (评标委员会和评标方法暂行规定 第二十七条) with a failure record
(流标记录) signed by the chair and sealed, checked with pyHanko."""
import io
import json

from pypdf import PdfReader

from evidence.signing import verify_pdf
from web.keys import RECORDS

from .conftest import post

REQUIREMENTS = [{"code": "Q1", "title": "营业执照及资质证书有效", "kind": "qualification"},
                {"code": "C1", "title": "投标有效期满足招标文件要求", "kind": "compliance"}]


def all_pass(bidders, except_for=()) -> list[dict]:
    return [{"bidder": b, "requirement": r["code"], "passed": True} for b in bidders for r in REQUIREMENTS
            if (b, r["code"]) not in except_for]


async def test_the_review_rejects_a_bidder_by_majority_with_reasons(client, sessions, raw_conn, started):
    s = started
    url, agent = s.ready.url + "/review", s.ready.info.agent
    bidders = [b["organisation_id"] for b in s.bidders]
    chair = s.members[s.chair]
    others = [m for m in sorted(s.members) if m != s.chair]

    refused = await post(client, url + "/ballots", chair, {"ballots": all_pass(bidders)}, 409)
    assert refused["error"]["code"] == "requirements_not_set"
    resp = await client.put(url + "/requirements", headers=chair.headers, json={"requirements": REQUIREMENTS})
    assert resp.status == 403
    resp = await client.put(url + "/requirements", headers=agent.headers,
                            json={"requirements": [REQUIREMENTS[0], REQUIREMENTS[0]]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "requirement_repeated")
    resp = await client.put(url + "/requirements", headers=agent.headers, json={"requirements": REQUIREMENTS})
    assert resp.status == 200

    # bad ballots change nothing
    x = bidders[2]
    for body, status, code in (
            ({"ballots": [{"bidder": x, "requirement": "C1", "passed": False}]}, 422, "reason_required"),
            ({"ballots": [{"bidder": x, "requirement": "C1", "passed": False, "reason": "  "}]}, 422,
             "reason_required"),
            ({"ballots": [{"bidder": "ORG-NOTBIDDR", "requirement": "C1", "passed": True}]}, 422, "not_a_bidder"),
            ({"ballots": [{"bidder": x, "requirement": "Z9", "passed": True}]}, 422, "unknown_requirement")):
        refused = await post(client, url + "/ballots", chair, body, status)
        assert refused["error"]["code"] == code
    for outsider in (agent, s.ready.outsider, s.ready.supervisor):
        refused = await post(client, url + "/ballots", outsider, {"ballots": all_pass(bidders)}, 403)
        assert refused["error"]["code"] == "not_a_member"
    assert await raw_conn.fetchval("SELECT count(*) FROM evaluation_review_vote") == 0

    # three members fail x on C1 with reasons, two pass it; everyone passes everything else
    failing = [s.chair, *others[:2]]
    for member in s.members:
        ballots = all_pass(bidders, except_for={(x, "C1")})
        if member in failing:
            ballots.append({"bidder": x, "requirement": "C1", "passed": False, "reason": f"投标有效期不足90天（{member}）"})
        else:
            ballots.append({"bidder": x, "requirement": "C1", "passed": True})
        if member == others[3]:
            # the last member is not done yet: the close waits for them
            refused = await post(client, url + "/close", chair, None, 409)
            assert refused["error"]["code"] == "review_incomplete"
        mine = await post(client, url + "/ballots", s.members[member], {"ballots": ballots}, 200)
        assert len(mine["mine"]) == 8
    # a member revises their own ballot before the close; they never see the others'
    revised = await post(client, url + "/ballots", s.members[others[2]],
                         {"ballots": [{"bidder": x, "requirement": "Q1", "passed": True}]}, 200)
    assert revised["ballots_cast"] == revised["ballots_expected"] == 40 and len(revised["mine"]) == 8
    assert revised["result"] is None
    resp = await client.put(url + "/requirements", headers=agent.headers, json={"requirements": REQUIREMENTS[:1]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "review_started")

    # only the chair closes
    refused = await post(client, url + "/close", s.members[others[0]], None, 403)
    assert refused["error"]["code"] == "not_the_chair"
    closed = await post(client, url + "/close", chair, None, 200)
    result = closed["result"]
    assert result["compliant"] == [b for b in bidders if b != x] and result["lot_failed"] is False
    rejected = next(b for b in result["bidders"] if b["bidder"] == x)
    assert rejected["passed"] is False and rejected["failed"][0]["requirement"] == "C1"
    assert (rejected["failed"][0]["passes"], rejected["failed"][0]["fails"]) == (2, 3)
    assert len(rejected["failed"][0]["reasons"]) == 3
    refused = await post(client, url + "/close", chair, None, 409)
    assert refused["error"]["code"] == "review_closed"
    refused = await post(client, url + "/ballots", chair, {"ballots": all_pass(bidders)}, 409)
    assert refused["error"]["code"] == "review_closed"
    entry = json.loads(await raw_conn.fetchval("SELECT payload FROM audit_entry WHERE action = 'evaluation.review.closed'"))
    assert entry["compliant"] == result["compliant"]
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'evaluation.review.lot_failed'") == 0


async def test_fewer_than_three_compliant_bids_fail_the_lot(client, sessions, raw_conn, started):
    s = started
    url = s.ready.url + "/review"
    bidders = [b["organisation_id"] for b in s.bidders]
    await client.put(url + "/requirements", headers=s.ready.info.agent.headers, json={"requirements": REQUIREMENTS})
    out = {(bidders[0], "Q1"), (bidders[1], "Q1")}
    for member, actor in s.members.items():
        ballots = all_pass(bidders, except_for=out) + [
            {"bidder": b, "requirement": r, "passed": False, "reason": "资质证书过期"} for b, r in out]
        await post(client, url + "/ballots", actor, {"ballots": ballots}, 200)
    closed = await post(client, url + "/close", s.members[s.chair], None, 200)
    assert closed["lot_failed"] is True and closed["result"]["compliant"] == bidders[2:]
    entry = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE action = 'evaluation.review.lot_failed'"))
    assert entry["compliant"] == bidders[2:] and "第二十七条" in entry["statute"]

    # the lot fails on trading's side with its record, and the tender — whose one lot it is — fails (流标)
    tender = await (await client.get(f"/api/v1/tenders/{s.ready.info.code}", headers=s.ready.info.agent.headers)).json()
    assert tender["status"] == "failed"
    opening = await (await client.get(f"/api/v1/tenders/{s.ready.info.code}/opening")).json()
    assert opening["failed_lots"] == [s.ready.info.lot_id]
    lot = await raw_conn.fetchrow("SELECT failure_reason, failure_bid_count FROM lot WHERE public_id = $1",
                                  s.ready.info.lot_id)
    assert (lot["failure_reason"], lot["failure_bid_count"]) == ("fewer_than_three_compliant_bids", 2)
    failed_lot = json.loads(await raw_conn.fetchval("SELECT payload FROM audit_entry WHERE action = 'lot.failed'"))
    assert sorted(b["bidder"] for b in failed_lot["rejected"]) == sorted(bidders[:2])
    moved = json.loads(await raw_conn.fetchval("SELECT payload FROM audit_entry WHERE action = 'tender.failed'"))
    assert (moved["from"], moved["to"], moved["failed_lots"]) == ("evaluating", "failed", [s.ready.info.lot_id])
    assert "第二十七条" in moved["statute"]

    # the failure record (流标记录): signed by the chair with their own certificate, sealed by the platform, named
    # by the review, the session's and the lot's ledger entries and the tender's failure
    record_no = closed["failure_record"]
    assert record_no and closed["result"]["failure_record"] == record_no
    assert entry["record_no"] == failed_lot["record_no"] == moved["record_no"] == record_no
    again = await (await client.get(url, headers=s.ready.supervisor.headers)).json()
    assert again["failure_record"] == record_no
    resp = await client.get(f"/api/v1/records/{record_no}", headers=s.ready.supervisor.headers)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    pdf = await resp.read()
    checked = await verify_pdf(pdf, client.app[RECORDS].pki)   # pyHanko
    assert checked.valid and checked.sealed and len(checked.signatures) == 2
    assert all(sig.intact and sig.valid and sig.trusted for sig in checked.signatures)
    chair_name = await raw_conn.fetchval("SELECT e.name FROM expert e JOIN evaluation_member m ON m.expert_id = e.id "
                                         "WHERE m.public_id = $1", s.chair)
    assert checked.signatures[0].signer_name == chair_name
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for words in ("流标记录", "Failed lot record", s.ready.info.lot_id, "资质证书过期", "否决", "Rejected", "第二十七条"):
        assert words in text, words
    # the platform's verifier answers its audience (the public may not learn what a staff record holds)
    verified = await client.post("/api/v1/records/verify", data=pdf,
                                 headers={**s.ready.supervisor.headers, "Content-Type": "application/pdf"})
    assert verified.status == 200 and (await verified.json())["valid"]
    anonymous = await client.post("/api/v1/records/verify", data=pdf, headers={"Content-Type": "application/pdf"})
    assert anonymous.status == 403
    assert await raw_conn.fetchval("SELECT kind FROM record WHERE record_no = $1", record_no) == "lot_failed_review"
    # the report's audience reads it (the committee, the tender's agents and supervisors); bidders and the public
    # do not
    for reader in (s.members[s.chair], s.ready.info.agent):
        assert (await client.get(f"/api/v1/records/{record_no}", headers=reader.headers)).status == 200
    for outsider in (s.ready.info.bidders[0], None):
        resp = await client.get(f"/api/v1/records/{record_no}", headers=outsider.headers if outsider else {})
        assert resp.status == 403
