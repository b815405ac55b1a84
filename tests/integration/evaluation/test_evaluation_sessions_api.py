"""Scheduling a lot's evaluation session through HTTP: the seed case sits at the Zhongshan centre as the main
venue (主场) with the provincial centre in Guangzhou as a sub-venue (副场); the venues are bookings for the
lot's tender; only those who run or supervise the tender follow the session."""
import json

from tests.helpers import bidder, staff

from .conftest import at, guangdong_centres, organisation, post, snapshot, tender_with_lot


async def book(client, agent, room: str, tender, day: int, start: int, end: int, **over) -> dict:
    body = {"starts_at": at(day, start), "ends_at": at(day, end), "tender": tender.code, "label": "评标", **over}
    return await post(client, f"/api/v1/rooms/{room}/bookings", agent, body, 201)


async def test_an_agent_schedules_a_cross_site_session_and_its_venues_stay_booked(
        client, sessions, raw_conn, admin, agent, other_agent):
    guangzhou, zhongshan = await guangdong_centres(client, admin)
    tender = await tender_with_lot(sessions, agent)
    main = await book(client, agent, zhongshan.room, tender, 5, 9, 17, lot=tender.lot_id)
    sub = await book(client, agent, guangzhou.room, tender, 5, 8, 18)

    created = await post(client, f"/api/v1/lots/{tender.lot_id}/evaluation-sessions", agent,
                         {"main_booking": main["booking_id"], "sub_bookings": [sub["booking_id"]]}, 201)
    assert (created["tender"], created["lot_id"], created["status"]) == (tender.code, tender.lot_id, "scheduled")
    assert (created["main_venue"]["booking_id"], created["main_venue"]["site_id"],
            created["main_venue"]["region_code"]) == (main["booking_id"], zhongshan.site, "442000")
    assert [(v["booking_id"], v["site_id"], v["venue_role"]) for v in created["sub_venues"]] == [
        (sub["booking_id"], guangzhou.site, "sub")]

    # the tender's agent, its supervisor and admins follow it; others are refused
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=tender.supervisor_org)
    url = f"/api/v1/evaluation-sessions/{created['session_id']}"
    for actor in (agent, supervisor, admin):
        resp = await client.get(url, headers=actor.headers)
        assert (resp.status, await resp.json()) == (200, created)
    stranger = await staff(sessions, client, "supervisor", organisation_public_id=await organisation(sessions))
    for actor in (other_agent, stranger, await bidder(client)):
        for target in (url, f"/api/v1/lots/{tender.lot_id}/evaluation-sessions"):
            resp = await client.get(target, headers=actor.headers)
            assert (resp.status, (await resp.json())["error"]["code"]) == (403, "session_forbidden")
    listed = await (await client.get(f"/api/v1/lots/{tender.lot_id}/evaluation-sessions",
                                     headers=supervisor.headers)).json()
    assert [s["session_id"] for s in listed] == [created["session_id"]]

    # the booking shows what it serves; a venue of a live session cannot be cancelled from under it
    seen = await (await client.get(f"/api/v1/bookings/{sub['booking_id']}", headers=agent.headers)).json()
    assert (seen["session_id"], seen["venue_role"]) == (created["session_id"], "sub")
    refused = await post(client, f"/api/v1/bookings/{main['booking_id']}/cancel", agent, {"reason": "x"}, 409)
    assert refused["error"]["code"] == "booking_in_session"

    # one live session per lot
    again_main = await book(client, agent, zhongshan.room, tender, 6, 9, 17)
    refused = await post(client, f"/api/v1/lots/{tender.lot_id}/evaluation-sessions", agent,
                         {"main_booking": again_main["booking_id"]}, 409)
    assert refused["error"]["code"] == "session_exists"

    entry = await raw_conn.fetchrow("SELECT actor, payload FROM audit_entry WHERE action = 'evaluation.session.schedule'")
    assert entry["actor"] == agent.public_id
    payload = json.loads(entry["payload"])
    assert (payload["lot"], payload["main"]["booking"], [v["booking"] for v in payload["subs"]]) == (
        tender.lot_id, main["booking_id"], [sub["booking_id"]])


async def test_bad_session_requests_are_refused_with_stable_codes_and_change_nothing(
        client, sessions, raw_conn, admin, agent, other_agent):
    guangzhou, zhongshan = await guangdong_centres(client, admin)
    third = await post(client, "/api/v1/sites", admin, {"name": "深圳市公共资源交易中心", "region_code": "440300"}, 201)
    shenzhen_room = (await post(client, f"/api/v1/sites/{third['site_id']}/rooms", admin, {"name": "1号室"}, 201))
    tender = await tender_with_lot(sessions, agent)
    other = await tender_with_lot(sessions, agent)
    draft = await tender_with_lot(sessions, agent, status="draft")
    second_zs_room = await post(client, f"/api/v1/sites/{zhongshan.site}/rooms", admin, {"name": "第2评标室"}, 201)

    main = await book(client, agent, zhongshan.room, tender, 5, 9, 17)
    same_site = await book(client, agent, second_zs_room["room_id"], tender, 5, 9, 17)
    short = await book(client, agent, guangzhou.room, tender, 5, 10, 17)
    elsewhere = await book(client, agent, shenzhen_room["room_id"], other, 5, 9, 17)
    cancelled = await book(client, agent, guangzhou.room, tender, 7, 9, 17)
    await post(client, f"/api/v1/bookings/{cancelled['booking_id']}/cancel", agent, {"reason": "改期"}, 200)

    url = f"/api/v1/lots/{tender.lot_id}/evaluation-sessions"
    refused = [
        (agent, url, {"main_booking": main["booking_id"], "sub_bookings": [same_site["booking_id"]]}, 422,
         "venue_sites_repeated"),
        (agent, url, {"main_booking": main["booking_id"], "sub_bookings": [short["booking_id"]]}, 422,
         "sub_venue_time_mismatch"),
        (agent, url, {"main_booking": main["booking_id"], "sub_bookings": [main["booking_id"]]}, 422,
         "venue_booking_repeated"),
        (agent, url, {"main_booking": main["booking_id"], "sub_bookings": [elsewhere["booking_id"]]}, 409,
         "booking_for_other_purpose"),
        (agent, url, {"main_booking": cancelled["booking_id"]}, 409, "booking_not_active"),
        (agent, url, {"main_booking": "BK-NOSUCH00"}, 404, "booking_not_found"),
        (agent, url, {"main_booking": main["booking_id"], "extra": 1}, 422, "validation_failed"),
        (agent, url, {}, 422, "validation_failed"),
        (agent, "/api/v1/lots/ZS-NOSUCH-L01/evaluation-sessions", {"main_booking": main["booking_id"]}, 404,
         "lot_not_found"),
        (agent, f"/api/v1/lots/{draft.lot_id}/evaluation-sessions", {"main_booking": main["booking_id"]}, 409,
         "tender_not_evaluable"),
        (other_agent, url, {"main_booking": main["booking_id"]}, 403, "session_forbidden"),
    ]
    before = await snapshot(raw_conn)
    sessions_before = await raw_conn.fetchval("SELECT count(*) FROM evaluation_session")
    for actor, target, payload, status, code in refused:
        resp = await client.post(target, headers=actor.headers, json=payload)
        error = (await resp.json())["error"]
        assert (resp.status, error["code"]) == (status, code), payload
        assert error["message"]
    assert await snapshot(raw_conn) == before
    assert await raw_conn.fetchval("SELECT count(*) FROM evaluation_session") == sessions_before == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM room_booking WHERE evaluation_session_id IS NOT NULL") == 0
    resp = await client.get("/api/v1/evaluation-sessions/ES-NOSUCH00", headers=agent.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "session_not_found")
