"""The draw's venue is a reference to the lot's evaluation session: a draw names the scheduled session and tells
the experts its venues; a draw made before the session is scheduled refers to it once it is. The expert pool
never imports evaluation: the reference is resolved through the resolver evaluation registers."""
import json

from tests.integration.expert_pool.conftest import employed_experts, session_time, sign_in
from tests.integration.expert_pool.conftest import supervisor  # noqa: F401  (fixture)
from tests.integration.expert_pool.conftest import tender_with_lot as pool_tender

from .conftest import at, guangdong_centres, post

VENUES = "中山市公共资源交易中心 远程异地评标室（主场）；广东省公共资源交易中心 第1评标室（副场）"


def quota() -> dict:
    return {"name": "中山", "specialty": "A01", "region": "442000", "count": 5, "backups": 1}


async def schedule(client, agent, info, guangzhou, zhongshan, day: int) -> str:
    body = {"tender": info.code, "label": "评标"}
    main = await post(client, f"/api/v1/rooms/{zhongshan.room}/bookings", agent,
                      {**body, "starts_at": at(day, 9), "ends_at": at(day, 17), "lot": info.lot_id}, 201)
    sub = await post(client, f"/api/v1/rooms/{guangzhou.room}/bookings", agent,
                     {**body, "starts_at": at(day, 9), "ends_at": at(day, 17)}, 201)
    made = await post(client, f"/api/v1/lots/{info.lot_id}/evaluation-sessions", agent,
                      {"main_booking": main["booking_id"], "sub_bookings": [sub["booking_id"]]}, 201)
    return made["session_id"]


async def test_a_draw_refers_to_the_lot_s_evaluation_session(client, sessions, raw_conn, admin, agent,
                                                             supervisor):  # noqa: F811
    guangzhou, zhongshan = await guangdong_centres(client, admin)
    experts = await employed_experts(sessions, 7, specialty="A0101", city="442000", account=True)
    first = await pool_tender(sessions, agent)
    second = await pool_tender(sessions, agent)
    draws = f"/api/v1/lots/{first.lot_id}/draws"

    # bad references are refused before anything is stored
    session_id = await schedule(client, agent, first, guangzhou, zhongshan, 5)
    entries = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    for body, status, code in (
            ({}, 422, "venue_required"),
            ({"venue": "中山 1号评标室", "evaluation_session": session_id}, 422, "venue_twice"),
            ({"evaluation_session": "ES-NOSUCH1"}, 404, "session_not_found")):
        refused = await post(client, draws, agent, {"session_at": session_time(5), "quotas": [quota()], **body},
                             status)
        assert refused["error"]["code"] == code, body
    refused = await post(client, f"/api/v1/lots/{second.lot_id}/draws", agent,
                         {"session_at": session_time(5), "quotas": [quota()], "evaluation_session": session_id}, 409)
    assert refused["error"]["code"] == "session_of_other_lot"
    assert await raw_conn.fetchval("SELECT count(*) FROM expert_draw") == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == entries

    # the lot's session exists: the draw names it, and the experts are told its venues
    draw = await post(client, draws, agent, {"session_at": session_time(5), "quotas": [quota()],
                                             "evaluation_session": session_id}, 201)
    assert (draw["evaluation_session"], draw["venue"]) == (session_id, VENUES)
    await post(client, f"/api/v1/draws/{draw['draw_id']}/entropy", supervisor, {"entropy": "中山 2026"}, 200)
    told = set()
    for expert in experts:
        mine = await (await client.get("/api/v1/me/invitations",
                                       headers=(await sign_in(client, expert.username)).headers)).json()
        told |= {i["venue"] for i in mine}
    assert told == {VENUES}

    # the draw came first, with its venue as text: scheduling the lot's session makes the draw refer to it
    early = await post(client, f"/api/v1/lots/{second.lot_id}/draws", agent,
                       {"session_at": session_time(6), "quotas": [quota()], "venue": "中山 1号评标室"}, 201)
    assert early["evaluation_session"] is None
    later = await schedule(client, agent, second, guangzhou, zhongshan, 6)
    shown = await (await client.get(f"/api/v1/draws/{early['draw_id']}", headers=agent.headers)).json()
    assert (shown["evaluation_session"], shown["venue"]) == (later, "中山 1号评标室")
    referred = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE action = 'draw.session_referred'"))
    assert referred == {"draw_id": early["draw_id"], "evaluation_session": later, "previous": None,
                        "venue": "中山 1号评标室"}
