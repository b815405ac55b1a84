"""Results entered by hand, for single-source procurement (政府采购法 第39条), which has no evaluation committee:
candidates with a publicity period, objections and answers, the award with its signed notice. Under a method with
a committee the candidates come from its sealed report (tests/integration/evaluation/test_full_flow.py)."""
from __future__ import annotations

from sqlalchemy import text

from tests.integration.trading_bids.conftest import verify_record


async def test_candidates_objections_and_the_award_notice(sessions, client, opened_single_source, raw_conn):
    info, bids = opened_single_source
    url = f"/api/v1/tenders/{info.code}"
    ranked = [{"lot": info.lot_id, "bid": b["bid"], "rank": i + 1} for i, b in enumerate(bids)]

    resp = await client.post(url + "/candidates", json={"candidates": [ranked[0], {**ranked[1], "rank": 3}]},
                             headers=info.agent.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_ranks"
    resp = await client.post(url + "/candidates", json={"candidates": ranked}, headers=info.agent.headers)
    assert resp.status == 201, await resp.text()
    public = (await (await client.get(url + "/candidates")).json())["candidates"]
    assert [c["bid"] for c in public] == [b["bid"] for b in bids] and public[0]["price"] == "200.00"

    loser = info.bidders[0]  # bid 300.00, ranked third
    resp = await client.post(url + "/objections", json={"body": "第一名的工期不符合招标文件要求"}, headers=loser.headers)
    assert resp.status == 201
    objection = (await resp.json())["objection"]

    resp = await client.post(url + "/award", headers=info.agent.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "publicity_not_over"
    await raw_conn.execute("UPDATE award_candidate SET publicity_ends_at = now() - interval '1 second'")
    resp = await client.post(url + "/objections", json={"body": "too late"}, headers=loser.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "publicity_closed"
    resp = await client.post(url + "/award", headers=info.agent.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "objections_pending"

    resp = await client.post(f"/api/v1/objections/{objection}/answer", json={"answer": "经复核，工期符合要求。"},
                             headers=info.agent.headers)
    assert resp.status == 200 and (await resp.json())["answer"] == "经复核，工期符合要求。"
    resp = await client.post(url + "/award", headers=info.agent.headers)
    assert resp.status == 201, await resp.text()
    [award] = (await resp.json())["awards"]
    assert award["bid"] == bids[0]["bid"] and award["price"] == "200.00"
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE id = $1", info.tender_id) == "awarded"
    report = await verify_record(client, award["record_no"])
    assert report["valid"] and report["sealed"] and report["archived"]
    assert await raw_conn.fetchval("SELECT kind FROM record WHERE record_no = $1", award["record_no"]) == "award_notice"


async def test_candidates_must_be_opened_bids_of_the_lot_and_a_refusal_changes_nothing(
        sessions, client, opened_single_source, raw_conn):
    info, bids = opened_single_source
    url = f"/api/v1/tenders/{info.code}/candidates"
    resp = await client.post(url, json={"candidates": [{"lot": info.lot_id, "bid": "B-NOSUCH01", "rank": 1}]},
                             headers=info.agent.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_candidate"
    resp = await client.post(url, json={"candidates": [{"lot": f"{info.code}-L09", "bid": bids[0]["bid"], "rank": 1}]},
                             headers=info.agent.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "lot_not_found"
    resp = await client.post(url, json={"candidates": [{"lot": info.lot_id, "bid": bids[0]["bid"], "rank": 1}]},
                             headers=info.bidders[0].headers)
    assert resp.status == 403
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE id = $1", info.tender_id) == "opened"
    async with sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM award_candidate"))).scalar_one() == 0
