"""Quotas reach exactly the experts they name: a province takes every city in it, a quota with no region takes
the whole pool, and other specialties are not considered."""
import os

from .conftest import add_expert, organisation, session_time, tender_with_lot


async def test_a_province_quota_and_a_quota_without_region_consider_exactly_their_experts(
        client, sessions, agent, supervisor):
    info = await tender_with_lot(sessions, agent)
    builders = [await add_expert(sessions, specialty="A0101", city=city, employer=await organisation(sessions))
                for city in ("440100", "440100", "442000", "440300")]
    costs = [await add_expert(sessions, specialty="C0101", city=city, employer=await organisation(sessions))
             for city in ("442000", "440400", "445300")]
    # another construction specialty and another trade: neither quota may consider them
    await add_expert(sessions, specialty="A0102", city="440100", employer=await organisation(sessions))
    await add_expert(sessions, specialty="D0101", city="442000", employer=await organisation(sessions))

    resp = await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_time(), "venue": "中山市公共资源交易中心 2号评标室", "quotas": [
            {"name": "土建", "specialty": "A0101", "region": "440000", "count": 3, "backups": 1},
            {"name": "造价", "specialty": "C0101", "count": 2, "backups": 1}]})
    assert resp.status == 201, await resp.text()
    notice = await resp.json()
    assert (notice["considered"], notice["eligible"]) == (7, 7)

    resp = await client.post(f"/api/v1/draws/{notice['draw_id']}/entropy", headers=supervisor.headers,
                             json={"entropy": os.urandom(16).hex()})
    assert resp.status == 200, await resp.text()
    drawn = await (await client.get(f"/api/v1/draws/{notice['draw_id']}", headers=supervisor.headers)).json()
    picked = {r["quota"]: {e["expert_id"] for e in r["primaries"] + r["backups"]} for r in drawn["result"]}
    assert picked["土建"] == {e.expert_id for e in builders}
    assert picked["造价"] == {e.expert_id for e in costs}
