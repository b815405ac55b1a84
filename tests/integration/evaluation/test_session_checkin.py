"""Check-in and the start over HTTP: each expert confirms identity, signs the integrity commitment and the
avoidance declaration over the 4 opened bidders; one declares a conflict, leaves, and the next backup of their
quota is called in through the pool's replacement path; once all have checked in the session starts and the
tender moves opened → evaluating."""
import json


from .conftest import post
from .session_setup import (accept_invitations, check_in_all, committee, id_card_last4, member_experts)


async def test_check_in_with_a_conflict_replaced_by_the_backup_then_the_evaluation_starts(
        client, sessions, raw_conn, ready):
    agent, url = ready.info.agent, ready.url
    await post(client, url + "/committee", agent, {}, 200)
    members = await member_experts(raw_conn, ready.session_id)
    city = {e: await raw_conn.fetchval("SELECT city_code FROM expert WHERE public_id = $1", e)
            for e in members.values()}
    first_expert = next(e for e in members.values() if city[e] == "440100")
    leaving_member, leaving_expert = next((m, e) for m, e in members.items() if city[e] == "442000")
    me = ready.experts[first_expert]

    # check-in is not open yet; the start is refused before it
    refused = await post(client, url + "/check-in", me, {"id_card_last4": "0000", "commitment": True}, 409)
    assert refused["error"]["code"] == "check_in_not_open"
    refused = await post(client, url + "/start", agent, None, 409)
    assert refused["error"]["code"] == "illegal_transition"
    opened = await post(client, url + "/check-in/open", agent, None, 200)
    assert opened["status"] == "check_in"

    # the declaration lists the 4 bidders whose bids were opened, to members only
    resp = await client.get(url + "/declaration", headers=me.headers)
    bidders = await resp.json()
    assert resp.status == 200 and len(bidders) == 4
    bidder_ids = [b["organisation_id"] for b in bidders]
    for outsider in (ready.outsider, agent, ready.experts[ready.backups["中山"]]):
        resp = await client.get(url + "/declaration", headers=outsider.headers)
        assert (resp.status, (await resp.json())["error"]["code"]) == (403, "not_a_member")

    # bad check-ins change nothing
    last4 = await id_card_last4(raw_conn, first_expert)
    wrong = "0000" if last4 != "0000" else "1111"
    for body, status, code in (({"id_card_last4": wrong, "commitment": True}, 422, "identity_mismatch"),
                               ({"id_card_last4": last4, "commitment": False}, 422, "commitment_required"),
                               ({"id_card_last4": last4, "commitment": True, "conflicts": ["ORG-NOTABIDDER"]},
                                422, "not_a_bidder")):
        refused = await post(client, url + "/check-in", me, body, status)
        assert refused["error"]["code"] == code
    stranger = ready.experts[ready.backups["广州"]]
    refused = await post(client, url + "/check-in", stranger, {"id_card_last4": "0000", "commitment": True}, 403)
    assert refused["error"]["code"] == "not_a_member"
    assert await raw_conn.fetchval("SELECT count(*) FROM evaluation_member WHERE status <> 'seated'") == 0

    # a Zhongshan expert declares a conflict with a bidder: withdrawn, the Zhongshan backup invited
    left = await post(client, url + "/check-in", ready.experts[leaving_expert],
                      {"id_card_last4": await id_card_last4(raw_conn, leaving_expert), "commitment": True,
                       "conflicts": [bidder_ids[1]], "note": "近三年曾在该投标人任职"}, 200)
    assert left["status"] == "withdrawn" and bidder_ids[1] in left["withdrawn_reason"]
    invitation = await raw_conn.fetchrow(
        "SELECT i.status, i.decline_reason FROM expert_invitation i JOIN expert e ON e.id = i.expert_id "
        "WHERE e.public_id = $1", leaving_expert)
    assert invitation["status"] == "withdrawn" and "回避" in invitation["decline_reason"]
    backup = ready.backups["中山"]
    assert await raw_conn.fetchval(
        "SELECT i.status FROM expert_invitation i JOIN expert e ON e.id = i.expert_id WHERE e.public_id = $1",
        backup) == "pending"

    # the others check in; the start waits for the missing seat
    for member, expert_id in members.items():
        if member != leaving_member:
            checked = await post(client, url + "/check-in", ready.experts[expert_id],
                                 {"id_card_last4": await id_card_last4(raw_conn, expert_id), "commitment": True}, 200)
            assert checked["status"] == "checked_in" and checked["checked_in_at"]
    again = await post(client, url + "/check-in", me, {"id_card_last4": last4, "commitment": True}, 409)
    assert again["error"]["code"] == "already_checked_in"
    refused = await post(client, url + "/start", agent, None, 409)
    assert refused["error"]["code"] == "committee_incomplete"

    # the backup accepts through the pool; the agent brings the committee up to date; the backup takes the
    # freed place in Zhongshan and checks in
    assert await accept_invitations(client, {backup: ready.experts[backup]}) == [backup]
    formed = await post(client, url + "/committee", agent, {}, 200)
    active = [m for m in formed["members"] if m["status"] != "withdrawn"]
    withdrawn = [m for m in formed["members"] if m["status"] == "withdrawn"]
    assert len(active) == 5 and [m["member_id"] for m in withdrawn] == [leaving_member]
    newcomer = next(m for m in active if m["status"] == "seated")
    assert newcomer["place"]["site_id"] == ready.zhongshan.site and newcomer["quota"] == "中山"
    refused = await post(client, url + "/start", agent, None, 409)
    assert refused["error"]["code"] == "members_not_checked_in"
    await check_in_all(client, raw_conn, ready, only=[backup])

    # only the agent starts; the tender moves to evaluating through trading's state mover
    supervisor_try = await post(client, url + "/start", ready.supervisor, None, 403)
    assert supervisor_try["error"]["code"] in ("role_forbidden", "session_forbidden")
    started = await post(client, url + "/start", agent, None, 200)
    assert started["status"] == "in_progress" and started["started_at"]
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", ready.info.code) == "evaluating"
    tender_entry = await raw_conn.fetchrow("SELECT payload FROM audit_entry WHERE action = 'tender.evaluating' "
                                           "AND entity = $1", f"tender:{ready.info.code}")
    assert json.loads(tender_entry["payload"])["evaluation_session"] == ready.session_id
    seen = await committee(client, ready, ready.supervisor)
    assert sum(1 for m in seen["members"] if m["status"] == "checked_in") == 5

    actions = [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", f"evaluation_session:{ready.session_id}")]
    assert actions == ["evaluation.session.schedule", "evaluation.committee.form", "evaluation.session.check_in",
                       "evaluation.member.withdraw", *["evaluation.member.check_in"] * 4,
                       "evaluation.committee.form", "evaluation.member.check_in", "evaluation.session.in_progress"]
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'invitation.withdraw'") == 1
