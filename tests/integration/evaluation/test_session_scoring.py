"""Score sheets over HTTP: drafts, submission and the lock, refused scores (out of range, a rejected bidder,
a non-member), members blind to each other's sheets, the chair returning a sheet, the flags of ALGORITHMS.md §2
corrected or justified before the close, and the close storing the ranking and the bidroom-score-v1 record,
which recomputes independently."""
import json

from evaluation.score_record import ALGORITHM, verify

from .conftest import post

TECH, RECORD = "技术方案", "项目业绩"   # max 40 subjective; max 20 objective


async def put(client, url, actor, body, status):
    resp = await client.put(url, headers=actor.headers, json=body)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def test_sheets_flags_and_the_close_of_scoring(client, sessions, raw_conn, started):
    s = started
    url, agent = s.ready.url, s.ready.info.agent
    bidders = [b["organisation_id"] for b in s.bidders]
    a, b, rejected, c = bidders
    m = sorted(s.members)
    assert s.chair == m[0]  # session_setup.start elects the first member id
    chair = s.members[s.chair]

    # no sheet before the review is closed
    refused = await put(client, url + f"/sheets/{a}", chair, {"scores": {TECH: "30"}}, 409)
    assert refused["error"]["code"] == "review_not_closed"
    await client.put(url + "/review/requirements", headers=agent.headers,
                     json={"requirements": [{"code": "C1", "title": "投标有效期", "kind": "compliance"}]})
    for actor in s.members.values():
        ballots = [{"bidder": x, "requirement": "C1", "passed": x != rejected,
                    "reason": None if x != rejected else "有效期不足"} for x in bidders]
        await post(client, url + "/review/ballots", actor, {"ballots": ballots}, 200)
    await post(client, url + "/review/close", chair, None, 200)

    # refused sheets store nothing
    for bidder_id, scores, status, code in ((rejected, {TECH: "30"}, 422, "bidder_not_compliant"),
                                            (a, {TECH: "40.01"}, 422, "score_out_of_range"),
                                            (a, {TECH: "-1"}, 422, "score_out_of_range"),
                                            (a, {"不存在的因素": "1"}, 422, "invalid_scoring_input"),
                                            (a, {TECH: "30"}, 422, None)):
        if code is None:
            refused = await put(client, url + f"/sheets/{a}", chair, {"scores": {TECH: "30"}, "submit": True}, 422)
            assert refused["error"]["code"] == "sheet_incomplete"
            continue
        refused = await put(client, url + f"/sheets/{bidder_id}", chair, {"scores": scores}, status)
        assert refused["error"]["code"] == code
    for outsider in (agent, s.ready.outsider):
        refused = await put(client, url + f"/sheets/{a}", outsider, {"scores": {TECH: "30"}}, 403)
        assert refused["error"]["code"] == "not_a_member"
    assert await raw_conn.fetchval("SELECT count(*) FROM evaluation_score_sheet") == 0

    # technical scores: for a, m[4] is far below the others (deviant and low); for b, m[3] gives a low score
    tech = {a: ["30", "31", "32", "33", "20"], b: ["30", "30", "30", "22", "30"], c: ["28", "28", "29", "29", "28"]}
    for i, member in enumerate(m):
        for x in (a, b, c):
            draft = await put(client, url + f"/sheets/{x}", s.members[member], {"scores": {TECH: tech[x][i]}}, 200)
            assert draft["status"] == "draft"
            done = await put(client, url + f"/sheets/{x}", s.members[member],
                             {"scores": {RECORD: "18"}, "submit": True}, 200)
            assert done["status"] == "submitted" and done["scores"] == {TECH: tech[x][i], RECORD: "18"}
        if i == 2:
            refused = await post(client, url + "/scoring/close", chair, None, 409)
            assert refused["error"]["code"] == "sheets_incomplete"
    locked = await put(client, url + f"/sheets/{a}", s.members[m[0]], {"scores": {TECH: "35"}}, 409)
    assert locked["error"]["code"] == "sheet_locked"
    # each member sees only their own sheets
    mine = await (await client.get(url + "/sheets", headers=s.members[m[1]].headers)).json()
    assert {x["member_id"] for x in mine} == {m[1]} and len(mine) == 3

    # the flags block the close
    refused = await post(client, url + "/scoring/close", chair, None, 409)
    assert refused["error"]["code"] == "flags_open"
    flags = await (await client.get(url + "/flags", headers=s.ready.supervisor.headers)).json()
    assert sorted((f["kind"], f["member"], f["bidder"]) for f in flags["open"]) == sorted([
        ("deviant_score", m[4], a), ("low_score", m[4], a), ("low_score", m[3], b)])

    # the chair returns m[4]'s sheet for a, who corrects it; m[3] justifies the low score in writing
    refused = await post(client, url + "/sheets/return", s.members[m[1]],
                         {"member_id": m[4], "bidder": a, "reason": "请复核"}, 403)
    assert refused["error"]["code"] == "not_the_chair"
    returned = await post(client, url + "/sheets/return", chair,
                          {"member_id": m[4], "bidder": a, "reason": "技术方案得分明显偏低，请复核"}, 200)
    assert (returned["status"], returned["return_reason"]) == ("returned", "技术方案得分明显偏低，请复核")
    await put(client, url + f"/sheets/{a}", s.members[m[4]], {"scores": {TECH: "29"}, "submit": True}, 200)
    refused = await post(client, url + "/flags/justify", s.members[m[3]],
                         {"bidder": b, "criterion": TECH, "kind": "low_score", "text": "  "}, 422)
    assert refused["error"]["code"] == "validation_failed"  # a blank justification is no justification
    justified = await post(client, url + "/flags/justify", s.members[m[3]],
                           {"bidder": b, "criterion": TECH, "kind": "low_score",
                            "text": "施工组织设计未针对雨季施工提出措施"}, 200)
    assert justified["open"] == []
    refused = await post(client, url + "/flags/justify", s.members[m[3]],
                         {"bidder": a, "criterion": TECH, "kind": "low_score", "text": "x"}, 404)
    assert refused["error"]["code"] == "flag_not_found"

    # only the chair closes; the ranking and the record are stored and recompute
    refused = await post(client, url + "/scoring/close", s.members[m[1]], None, 403)
    assert refused["error"]["code"] == "not_the_chair"
    closed = await post(client, url + "/scoring/close", chair, None, 200)
    assert closed["status"] == "scoring_closed"
    assert [line["bidder"] for line in closed["ranking"]] and {line["bidder"] for line in closed["ranking"]} == {a, b, c}
    record = closed["record"]
    assert record["algorithm"] == ALGORITHM and verify(record) == []
    assert {x["id"]: x["compliant"] for x in record["bidders"]}[rejected] is False
    # after the close every member sees every sheet; nothing can change any more
    everything = await (await client.get(url + "/sheets", headers=s.members[m[1]].headers)).json()
    assert len(everything) == 15
    refused = await put(client, url + f"/sheets/{a}", s.members[m[0]], {"scores": {TECH: "35"}}, 409)
    assert refused["error"]["code"] == "session_not_in_progress"
    session_row = await raw_conn.fetchrow("SELECT status, ranking IS NOT NULL AS ranked FROM evaluation_session "
                                          "WHERE public_id = $1", s.ready.session_id)
    assert (session_row["status"], session_row["ranked"]) == ("scoring_closed", True)


async def test_bidders_tied_after_every_rule_are_ordered_by_a_committed_draw(client, sessions, raw_conn,
                                                                            started_tied):
    # two bids at the same price, scored alike by everyone: tied on total, price and technical score
    s = started_tied
    url, agent, supervisor = s.ready.url, s.ready.info.agent, s.ready.supervisor
    chair = s.members[s.chair]
    bidders = [b["organisation_id"] for b in s.bidders]
    await client.put(url + "/review/requirements", headers=agent.headers,
                     json={"requirements": [{"code": "Q1", "title": "资质", "kind": "qualification"}]})
    for actor in s.members.values():
        await post(client, url + "/review/ballots", actor,
                   {"ballots": [{"bidder": x, "requirement": "Q1", "passed": True} for x in bidders]}, 200)
    await post(client, url + "/review/close", chair, None, 200)
    for actor in s.members.values():
        for x in bidders:
            await put(client, url + f"/sheets/{x}", actor, {"scores": {TECH: "30", RECORD: "18"}, "submit": True}, 200)
    prices = {r["organisation_id"]: str(r["price"]) for r in await raw_conn.fetch(
        "SELECT o.public_id AS organisation_id, b.price FROM bid b JOIN organisation o ON o.id = b.organisation_id "
        "WHERE b.status = 'opened' AND b.tender_id = (SELECT id FROM tender WHERE code = $1)", s.ready.info.code)}
    tied = sorted(b for b in bidders if prices[b] == "4650000.00")
    assert len(tied) == 2

    # the first close finds the tie, commits the draw's secret and waits; the commitment stays on record
    refused = await post(client, url + "/scoring/close", chair, None, 409)
    assert refused["error"]["code"] == "tie_draw_pending"
    assert refused["error"]["details"]["groups"] == [tied]
    commitment = refused["error"]["details"]["commitment"]
    again = await post(client, url + "/scoring/close", chair, None, 409)
    assert again["error"]["details"]["commitment"] == commitment
    entry = json.loads(await raw_conn.fetchval("SELECT payload FROM audit_entry WHERE action = 'evaluation.scoring.tie'"))
    assert entry == {"groups": [tied], "commitment": commitment}

    # only the tender's supervisor supplies the entropy, once
    resp = await client.post(url + "/scoring/tie-draw", headers=agent.headers, json={"entropy": "x"})
    assert resp.status == 403
    await post(client, url + "/scoring/tie-draw", supervisor, {"entropy": "a7c3e9d1"}, 200)
    refused = await post(client, url + "/scoring/tie-draw", supervisor, {"entropy": "other"}, 409)
    assert refused["error"]["code"] == "entropy_already_supplied"

    closed = await post(client, url + "/scoring/close", chair, None, 200)
    record = closed["record"]
    assert verify(record) == []
    (draw,) = record["tie_draws"]
    assert draw["commitment"] == commitment and draw["entropy"] == "a7c3e9d1"
    ranks = {line["bidder"]: line["rank"] for line in closed["ranking"]}
    assert sorted(ranks[b] for b in tied) == ["2", "3"]  # below the cheaper bid, in drawn order
