"""Avoidance through the API: each rule leaves out exactly its experts, with its reason, and the draw record counts
the exclusions by reason. Experts declare their own leave and conflicts; an admin suspends."""
from datetime import datetime, timedelta

from web.keys import SCHEDULER

from .conftest import (add_expert, employed_experts, organisation, pdf_exclusion_counts, pdf_lines, sign_in,
                       tender_with_lot)

EXPECTED = {
    "employer_is_tenderer": "Employed by the tenderer", "employer_is_bidder": "Employed by a bidder",
    "employer_is_authority": "Employed by the competent authority", "declared_conflict": "Declared a conflict of interest",
    "on_leave": "On leave at the session time", "suspended": "Suspended", "over_monthly_cap": "Over the monthly cap",
    "familiar_face": "Served the same tenderer recently",
}


async def test_each_avoidance_rule_excludes_its_experts_and_the_record_counts_them_by_reason(
        client, sessions, raw_conn, agent, supervisor, admin):
    info = await tender_with_lot(sessions, agent, bidders=2)
    authority = await organisation(sessions, "中山市住房和城乡建设局")
    eligible = await employed_experts(sessions, 6, specialty="A0101", city="440100")
    one = dict(specialty="A0101", city="440100")
    excluded = {
        "employer_is_tenderer": await add_expert(sessions, employer=info.tenderer, **one),
        "employer_is_bidder": await add_expert(sessions, employer=info.bidders[1], **one),
        "employer_is_authority": await add_expert(sessions, employer=authority, **one),
        "declared_conflict": await add_expert(sessions, employer=await organisation(sessions), account=True, **one),
        "on_leave": await add_expert(sessions, employer=await organisation(sessions), account=True, **one),
        "suspended": await add_expert(sessions, employer=await organisation(sessions), **one),
        "over_monthly_cap": await add_expert(sessions, employer=await organisation(sessions), **one),
        "familiar_face": await add_expert(sessions, employer=await organisation(sessions), **one),
    }
    # an expert of another city and one of another specialty are not considered at all
    await add_expert(sessions, specialty="A0101", city="442000", employer=await organisation(sessions))
    await add_expert(sessions, specialty="C0101", city="440100", employer=await organisation(sessions))
    session_at = datetime.fromisoformat((await raw_conn.fetchval(
        "SELECT to_char(date_trunc('day', now() + interval '3 days') + interval '9 hours', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS+00:00')")))

    # The expert declares ties to a bidder and a leave period, through their own profile.
    conflicted = await sign_in(client, excluded["declared_conflict"].username)
    resp = await client.post("/api/v1/me/expert/conflicts", headers=conflicted.headers,
                             json={"organisation_id": info.bidders[0], "note": "曾在该公司任职 former employer"})
    assert resp.status == 201, await resp.text()
    away = await sign_in(client, excluded["on_leave"].username)
    resp = await client.post("/api/v1/me/expert/leave", headers=away.headers, json={
        "starts_at": (session_at - timedelta(days=1)).isoformat(),
        "ends_at": (session_at + timedelta(days=1)).isoformat(), "reason": "出国培训"})
    assert resp.status == 201, await resp.text()
    mine = await (await client.get("/api/v1/me/expert", headers=away.headers)).json()
    assert [leave["reason"] for leave in mine["leave"]] == ["出国培训"]
    # An admin suspends, with a reason.
    resp = await client.post(f"/api/v1/experts/{excluded['suspended'].expert_id}/status", headers=admin.headers,
                             json={"status": "suspended", "reason": "评标中违规 misconduct in an evaluation"})
    assert resp.status == 200 and (await resp.json())["status"] == "suspended"
    # Eight evaluations already this month (the cap); a session for this tenderer 30 days ago.
    capped = excluded["over_monthly_cap"].expert_id
    other_tenderer = await organisation(sessions)
    for hours in range(8):
        await raw_conn.execute(
            "INSERT INTO expert_service (expert_id, tenderer_id, served_at) SELECT e.id, o.id, $3 "
            "FROM expert e, organisation o WHERE e.public_id = $1 AND o.public_id = $2",
            capped, other_tenderer, session_at - timedelta(hours=hours + 1))
    await raw_conn.execute(
        "INSERT INTO expert_service (expert_id, tenderer_id, served_at) SELECT e.id, o.id, $3 "
        "FROM expert e, organisation o WHERE e.public_id = $1 AND o.public_id = $2",
        excluded["familiar_face"].expert_id, info.tenderer, session_at - timedelta(days=30))

    resp = await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_at.isoformat(), "venue": "广州 2号评标室", "authority_organisations": [authority],
        "quotas": [{"name": "土建", "specialty": "A01", "region": "440100", "count": 5, "backups": 1}]})
    assert resp.status == 201, await resp.text()
    notice = await resp.json()
    assert notice["considered"] == 14 and notice["eligible"] == 6
    assert notice["exclusions"] == {reason: 1 for reason in EXPECTED}

    # Supervisors see who was excluded and why; nobody excluded is a candidate.
    rows = await (await client.get(f"/api/v1/draws/{notice['draw_id']}/exclusions",
                                   headers=supervisor.headers)).json()
    assert {r["expert_id"]: r["reason"] for r in rows} == {e.expert_id: reason for reason, e in excluded.items()}
    resp = await client.post(f"/api/v1/draws/{notice['draw_id']}/entropy", headers=supervisor.headers,
                             json={"entropy": "avoidance check 回避"})
    assert resp.status == 200, await resp.text()
    record = await (await client.get(f"/api/v1/draws/{notice['draw_id']}/verification",
                                     headers=supervisor.headers)).json()
    assert {c["id"] for c in record["candidates"]} == {e.expert_id for e in eligible}

    # The record counts the exclusions by reason, in its JSON and in the signed PDF.
    content = await (await client.get(f"/api/v1/draws/{notice['draw_id']}/record",
                                      headers=supervisor.headers)).json()
    assert content["exclusion_counts"] == {reason: 1 for reason in EXPECTED}
    assert content["considered"] == 14 and content["eligible"] == 6
    assert await client.server.app[SCHEDULER].run_due() == 1
    state = await (await client.get(f"/api/v1/draws/{notice['draw_id']}", headers=supervisor.headers)).json()
    [public] = [r for r in state["records"] if r["edition"] == "public"]
    pdf = await (await client.get(public["download"], headers=supervisor.headers)).read()
    assert pdf_exclusion_counts(pdf_lines(pdf)) == {label: 1 for label in EXPECTED.values()}

    # Withdrawing the conflict and the leave makes both experts drawable again in the next draw, once the
    # first is cancelled with a reason (a lot has one original draw).
    resp = await client.post(f"/api/v1/draws/{notice['draw_id']}/cancel", headers=agent.headers,
                             json={"reason": "评标时间调整 session moved"})
    assert resp.status == 200, await resp.text()
    resp = await client.delete(f"/api/v1/me/expert/conflicts/{info.bidders[0]}", headers=conflicted.headers)
    assert resp.status == 204
    resp = await client.delete(f"/api/v1/me/expert/leave/{mine['leave'][0]['leave_id']}", headers=away.headers)
    assert resp.status == 204
    resp = await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_at.isoformat(), "venue": "广州 2号评标室", "authority_organisations": [authority],
        "quotas": [{"name": "土建", "specialty": "A01", "region": "440100", "count": 5, "backups": 1}]})
    again = await resp.json()
    assert again["eligible"] == 8 and "declared_conflict" not in again["exclusions"]
    assert "on_leave" not in again["exclusions"]
