"""A lot's draw through the tender's real states, each reached through the API (copies of the lot states of
conftest.py): once the bids are opened no new original draw is made (评标委员会和评标方法暂行规定 第8条: the
committee is fixed before the opening), and once the lot is awarded the committee is no longer secret: the agent
and the public read the draw's identities and its public record, the pool's statistics count the service, and the
draw-confidentiality matrix (tests/integration/test_draw_confidentiality_matrix.py) finds no 5xx on any route.

Before the award the same secrecy is checked per role in tests/integration/expert_pool/test_expert_confidentiality.py
and test_expert_pool_admin.py."""
from __future__ import annotations

from tests.helpers import staff
from tests.integration.test_draw_confidentiality_matrix import World, sweep
from web.keys import SCHEDULER

from .conftest import at, organisation

QUOTAS = [{"name": "中山", "specialty": "A01", "region": "442000", "count": 3, "backups": 1}]


async def _no_new_original_draw(client, raw_conn, ready, status: str) -> None:
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", ready.info.code) == status
    resp = await client.post(f"/api/v1/lots/{ready.info.lot_id}/draws", headers=ready.info.agent.headers,
                             json={"session_at": at(6, 9), "venue": "中山 1号评标室", "quotas": QUOTAS})
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (409, "tender_not_drawable"), status
    assert body["error"]["details"] == {"status": status, "statute": "评标委员会和评标方法暂行规定 第8条"}
    assert await raw_conn.fetchval("SELECT count(*) FROM expert_draw") == 1


async def test_no_new_original_draw_once_the_bids_are_opened(client, raw_conn, ready):
    await _no_new_original_draw(client, raw_conn, ready, "opened")


async def test_no_new_original_draw_while_the_lot_is_evaluated(client, raw_conn, started):
    await _no_new_original_draw(client, raw_conn, started.ready, "evaluating")


async def test_no_new_original_draw_once_the_candidates_are_published(client, raw_conn, candidates):
    await _no_new_original_draw(client, raw_conn, candidates.ready, "candidates_published")


async def test_after_the_award_the_committee_is_no_longer_secret(client, raw_conn, awarded):
    ready = awarded.ready
    agent, supervisor, admin = ready.info.agent, ready.supervisor, ready.admin
    await _no_new_original_draw(client, raw_conn, ready, "awarded")
    await client.server.app[SCHEDULER].run_due()  # the draw's record PDFs
    draw_url = f"/api/v1/draws/{ready.draw_id}"
    records = {r["edition"]: r["download"]
               for r in (await (await client.get(draw_url, headers=supervisor.headers)).json())["records"]}

    # the agent reads the identities and the public edition, not the supervisors' one
    view = await (await client.get(draw_url, headers=agent.headers)).json()
    assert view["identities_disclosed"] and view["result"]
    seated = {p["expert_id"] for r in view["result"] for p in r["primaries"]}
    members = {r["public_id"] for r in await raw_conn.fetch(
        "SELECT e.public_id FROM expert e JOIN evaluation_member m ON m.expert_id = e.id WHERE m.status <> 'withdrawn'")}
    assert seated == members and len(members) == 5
    assert {(r["edition"], r["readable"]) for r in view["records"]} == {("public", True), ("supervisor", False)}
    assert (await client.get(records["supervisor"], headers=agent.headers)).status == 403
    listed = await (await client.get(f"/api/v1/records?entity=draw:{ready.draw_id}", headers=agent.headers)).json()
    assert [r["record_no"] for r in listed] == [records["public"].rsplit("/", 1)[-1]]
    # ... and so does the public
    assert (await client.get(f"{draw_url}/verification")).status == 200
    assert (await client.get(records["public"])).status == 200
    assert (await client.get(f"{records['public']}/verification")).status == 200

    # the pool's history and familiar faces count the service once it is no longer secret
    expert = sorted(members)[0]
    history = await (await client.get(f"/api/v1/experts/{expert}/history", headers=admin.headers)).json()
    assert len(history) == 1
    faces = await (await client.get("/api/v1/expert-statistics/familiar-faces?min_count=1",
                                    headers=supervisor.headers)).json()
    assert {(f["tenderer_id"], f["expert_id"], f["served"]) for f in faces} == {
        (ready.tenderer_org, e, 1) for e in members}


async def test_the_confidentiality_matrix_after_the_award_answers_every_route_without_a_5xx(
        client, sessions, raw_conn, awarded):
    ready = awarded.ready
    await client.server.app[SCHEDULER].run_due()  # the draw's record PDFs
    draw = await (await client.get(f"/api/v1/draws/{ready.draw_id}", headers=ready.supervisor.headers)).json()
    names = {r["public_id"]: r["name"] for r in await raw_conn.fetch("SELECT public_id, name FROM expert")}
    committee = {p["expert_id"]: names[p["expert_id"]] for r in draw["result"] for p in (*r["primaries"], *r["backups"])}
    record_nos = [r["record_no"] for r in draw["records"]]
    pdfs = [await (await client.get(f"/api/v1/records/{no}", headers=ready.supervisor.headers)).read()
            for no in record_nos]
    member = next(e for e in committee if e in ready.experts)
    actors = {"anonymous": None, "bidder": ready.info.bidders[0], "tender_agent": ready.info.agent,
              "other_agent": await staff(sessions, client, "agent", organisation_public_id=await organisation(sessions)),
              "expert": ready.experts[member], "tender_supervisor": ready.supervisor,
              "other_supervisor": await staff(sessions, client, "supervisor",
                                              organisation_public_id=await organisation(sessions)),
              "admin": ready.admin}
    world = World(ready.info.code, ready.info.lot_id, ready.draw_id, record_nos, committee, actors, member, pdfs)
    found = await sweep(client, world, "after")
    assert found.failures == [], "\n".join(found.failures)
    assert found.leaks == []
    assert {"GET /api/v1/records/{record_no}", "GET /api/v1/draws/{draw_id}/verification"} <= \
        found.seen[("after", "anonymous")]
    assert "GET /api/v1/draws/{draw_id}" in found.seen[("after", "tender_agent")]
