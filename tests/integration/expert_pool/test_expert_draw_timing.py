"""Draw timing: one original draw per lot, cancellation with a written reason, no new committee once the
bids are being opened, and the re-screen at the bid deadline against the bidders who actually bid."""
import itertools
import json

from core import identity_service
from tests.helpers import PASSWORD, staff
from tests.integration.trading_bids.conftest import bundle
from web.keys import SCHEDULER

from .conftest import employed_experts, organisation, session_time, sign_in, tender_with_lot

_n = itertools.count(1)
QUOTAS = [{"name": "土建", "specialty": "A0101", "count": 5, "backups": 2}]


async def request_draw(client, agent, info):
    return await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_time(), "venue": "中山 1号评标室", "quotas": QUOTAS})


async def status_and_code(resp) -> tuple[int, str | None]:
    body = await resp.json()
    return resp.status, (body.get("error") or {}).get("code")


async def ledger_payloads(raw_conn, action: str) -> list[dict]:
    rows = await raw_conn.fetch("SELECT payload FROM audit_entry WHERE action = $1 ORDER BY seq", action)
    return [json.loads(r["payload"]) for r in rows]


async def test_a_lot_has_one_original_draw_until_it_is_cancelled_with_a_reason(
        client, sessions, raw_conn, agent, supervisor, other_supervisor):
    info = await tender_with_lot(sessions, agent)
    await employed_experts(sessions, 8, specialty="A0101", account=True)
    first = await request_draw(client, agent, info)
    assert first.status == 201
    draw_id = (await first.json())["draw_id"]
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers, json={"entropy": "e1"})
    assert resp.status == 200
    # a second original draw is refused while the first stands
    resp = await request_draw(client, agent, info)
    assert await status_and_code(resp) == (409, "draw_exists")
    # cancelling needs the tender's agent or supervisor, and a written reason
    other_agent = await staff(sessions, client, "agent")
    for who in (other_agent, other_supervisor):
        resp = await client.post(f"/api/v1/draws/{draw_id}/cancel", headers=who.headers, json={"reason": "无理由撤销"})
        assert await status_and_code(resp) == (403, "draw_forbidden")
    resp = await client.post(f"/api/v1/draws/{draw_id}/cancel", headers=agent.headers, json={"reason": " "})
    assert resp.status == 422
    assert await raw_conn.fetchval("SELECT status FROM expert_draw WHERE public_id = $1", draw_id) == "executed"
    resp = await client.post(f"/api/v1/draws/{draw_id}/cancel", headers=agent.headers,
                             json={"reason": "评标地点变更 venue changed"})
    assert resp.status == 200, await resp.text()
    cancelled = await resp.json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "评标地点变更 venue changed"
    # its invitations end with it, their timeouts too, and the ledger says who cancelled it and why
    statuses = await raw_conn.fetch("SELECT DISTINCT status FROM expert_invitation")
    assert {r["status"] for r in statuses} == {"cancelled"}
    assert await raw_conn.fetchval("SELECT count(*) FROM scheduled_job WHERE kind = 'expert_pool.invitation_timeout' "
                                   "AND status = 'pending'") == 0
    [entry] = await ledger_payloads(raw_conn, "draw.cancel")
    assert entry["draw_id"] == draw_id and entry["reason"] == "评标地点变更 venue changed"
    resp = await client.post(f"/api/v1/draws/{draw_id}/cancel", headers=agent.headers, json={"reason": "再次撤销"})
    assert await status_and_code(resp) == (409, "draw_cancelled")
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers, json={"entropy": "e2"})
    assert resp.status == 409
    # ... and a new original draw may be requested
    resp = await request_draw(client, agent, info)
    assert resp.status == 201, await resp.text()


# no new original draw once the bids are opened, the lot evaluated, its candidates published or it is awarded:
# tests/integration/evaluation/test_draws_through_the_states.py, on lots taken there through the API


async def bid(client, sessions, info, organisation_public_id: str) -> None:
    """A bid of an organisation that registers after the draw, through the API: a bidder account of the
    organisation registers for the lot and uploads a bid (its content does not matter here)."""
    username = f"bidder{next(_n)}"
    async with sessions() as session, session.begin():
        await identity_service.create_user(session, actor="system", username=username, password=PASSWORD,
                                           display_name="投标经办人", roles=["bidder"],
                                           organisation_public_id=organisation_public_id)
    actor = await sign_in(client, username)
    resp = await client.post(f"/api/v1/lots/{info.lot_id}/registrations", headers=actor.headers)
    assert resp.status == 201, await resp.text()
    resp = await client.put(f"/api/v1/tenders/{info.code}/lots/{info.lot_id}/bid", data=bundle(),
                            headers={**actor.headers, "Content-Type": "application/octet-stream"})
    assert resp.status in (200, 201), await resp.text()


async def test_at_the_bid_deadline_members_who_now_conflict_with_a_bidder_are_replaced_from_the_backups(
        client, sessions, raw_conn, agent, supervisor):
    info = await tender_with_lot(sessions, agent, bid_deadline_days=2)
    pool = await employed_experts(sessions, 8, specialty="A0101", account=True)
    experts = {e.expert_id: e for e in pool}
    draw_id = (await (await request_draw(client, agent, info)).json())["draw_id"]
    drawn = await (await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                                     json={"entropy": "deadline re-screen"})).json()
    [result] = drawn["result"]
    primaries = [p["expert_id"] for p in result["primaries"]]
    backups = [b["expert_id"] for b in result["backups"]]
    invitations = {i["expert_id"]: i["invitation_id"] for i in drawn["invitations"]}
    employed, declared = primaries[0], primaries[1]
    # the first has accepted already; the second declares ties to a company that then bids
    employed_actor = await sign_in(client, experts[employed].username)
    resp = await client.post(f"/api/v1/invitations/{invitations[employed]}/accept", headers=employed_actor.headers)
    assert resp.status == 200
    tied_company = await organisation(sessions)
    declared_actor = await sign_in(client, experts[declared].username)
    resp = await client.post("/api/v1/me/expert/conflicts", headers=declared_actor.headers,
                             json={"organisation_id": tied_company, "note": "曾任职"})
    assert resp.status == 201
    # after the draw, the first one's employer and the tied company register and bid
    await bid(client, sessions, info, experts[employed].employer)
    await bid(client, sessions, info, tied_company)

    # The deadline job does nothing before the deadline (it moved, say): it waits for the deadline again.
    key = f"expert_draw:{draw_id}:rescreen"
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' WHERE dedupe_key = $1", key)
    await client.server.app[SCHEDULER].run_due()
    pending = await raw_conn.fetchrow("SELECT due_at FROM scheduled_job WHERE dedupe_key = $1 AND status = 'pending'",
                                      key)
    deadline = await raw_conn.fetchval("SELECT bid_deadline_at FROM tender WHERE id = $1", info.tender_id)
    assert pending["due_at"] == deadline
    assert await ledger_payloads(raw_conn, "draw.rescreen") == []

    # At the deadline: both are withdrawn with the reason recorded, and the backups take their seats.
    await raw_conn.execute("UPDATE tender SET bid_deadline_at = now() - interval '1 second' WHERE id = $1",
                           info.tender_id)
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' WHERE dedupe_key = $1", key)
    await client.server.app[SCHEDULER].run_due()
    state = await (await client.get(f"/api/v1/draws/{draw_id}", headers=supervisor.headers)).json()
    by_expert = {i["expert_id"]: i for i in state["invitations"]}
    assert by_expert[employed]["status"] == "withdrawn" and by_expert[employed]["decline_reason"] == "employer_is_bidder"
    assert by_expert[declared]["status"] == "withdrawn" and by_expert[declared]["decline_reason"] == "declared_conflict"
    seats = {(by_expert[p]["quota"], by_expert[p]["seat"]) for p in (employed, declared)}
    assert {(by_expert[b]["quota"], by_expert[b]["seat"]) for b in backups} == seats
    assert all(by_expert[b]["status"] == "pending" and by_expert[b]["source"] == "backup" for b in backups)
    assert state["confirmation"]["土建"]["withdrawn"] == 2 and state["confirmation"]["土建"]["pending"] == 5
    withdrawals = await ledger_payloads(raw_conn, "invitation.withdraw")
    assert {(w["expert"], w["reason"], w["was"]) for w in withdrawals} == {
        (employed, "employer_is_bidder", "accepted"), (declared, "declared_conflict", "pending")}
    [rescreen] = await ledger_payloads(raw_conn, "draw.rescreen")
    assert rescreen["withdrawn"] == [employed, declared] or set(rescreen["withdrawn"]) == {employed, declared}
    # the accepted expert's service no longer counts, and the expert is told only that the invitation is gone
    assert await raw_conn.fetchval("SELECT count(*) FROM expert_service s JOIN expert e ON e.id = s.expert_id "
                                   "WHERE e.public_id = $1", employed) == 0
    notes = await (await client.get("/api/v1/notifications", headers=employed_actor.headers)).json()
    assert notes[0]["kind"] == "expert.invitation_withdrawn"
    assert info.code not in json.dumps(notes, ensure_ascii=False) and experts[employed].employer not in json.dumps(notes)
    # the withdrawn cannot accept any more
    resp = await client.post(f"/api/v1/invitations/{invitations[declared]}/accept", headers=declared_actor.headers)
    assert await status_and_code(resp) == (409, "invitation_already_answered")
    # running the job again changes nothing
    await client.server.app[SCHEDULER].run_due()
    assert len(await ledger_payloads(raw_conn, "invitation.withdraw")) == 2
