"""Room bookings through HTTP on real PostgreSQL: the database's exclusion constraint refuses any overlap, even
between two requests racing each other; touching bookings are fine; a cancelled booking frees its time."""
import asyncio
from datetime import datetime

import asyncpg
import pytest

from tests.helpers import bidder, staff

from .conftest import at, guangdong_centres, organisation, post, same_instant, snapshot, tender_with_lot


async def test_two_bookings_racing_for_one_room_and_time_the_database_refuses_one(
        client, sessions, raw_conn, admin, agent, other_agent):
    zhongshan = (await guangdong_centres(client, admin))[1]
    mine = await tender_with_lot(sessions, agent)
    theirs = await tender_with_lot(sessions, other_agent)
    url = f"/api/v1/rooms/{zhongshan.room}/bookings"

    # two agents want the Zhongshan room on the same morning, overlapping by an hour, at the same moment
    first = client.post(url, headers=agent.headers, json={
        "starts_at": at(5, 9), "ends_at": at(5, 12), "tender": mine.code, "lot": mine.lot_id, "label": "第一标段评标"})
    second = client.post(url, headers=other_agent.headers, json={
        "starts_at": at(5, 11), "ends_at": at(5, 17), "tender": theirs.code, "label": "评标"})
    responses = await asyncio.gather(first, second)
    bodies = [await r.json() for r in responses]

    assert sorted(r.status for r in responses) == [201, 409]
    won = bodies[[r.status for r in responses].index(201)]
    lost = bodies[[r.status for r in responses].index(409)]["error"]
    assert lost["code"] == "room_booked"
    # the refusal names the booking in the way, with its times
    assert [c["booking_id"] for c in lost["details"]["conflicts"]] == [won["booking_id"]]
    assert same_instant(lost["details"]["conflicts"][0]["starts_at"], won["starts_at"])
    assert same_instant(lost["details"]["conflicts"][0]["ends_at"], won["ends_at"])
    assert await raw_conn.fetchval("SELECT count(*) FROM room_booking") == 1
    assert await raw_conn.fetchval(
        "SELECT count(*) FROM audit_entry WHERE action = 'venue.room.book' AND entity = $1",
        f"booking:{won['booking_id']}") == 1


async def test_the_database_itself_refuses_an_overlapping_booking_written_behind_the_apps_back(
        client, sessions, raw_conn, admin, agent):
    guangzhou, _ = await guangdong_centres(client, admin)
    tender = await tender_with_lot(sessions, agent)
    await post(client, f"/api/v1/rooms/{guangzhou.room}/bookings", agent,
               {"starts_at": at(3, 9), "ends_at": at(3, 12), "tender": tender.code, "label": "评标"}, 201)
    row = await raw_conn.fetchrow("SELECT room_id, booked_by_id FROM room_booking")
    with pytest.raises(asyncpg.ExclusionViolationError) as refused:
        await raw_conn.execute(
            "INSERT INTO room_booking (public_id, room_id, starts_at, ends_at, label, booked_by_id) "
            "VALUES ('BK-BEHIND01', $1, $2, $3, 'sql', $4)",
            row["room_id"], datetime.fromisoformat(at(3, 11)), datetime.fromisoformat(at(3, 13)), row["booked_by_id"])
    assert refused.value.constraint_name == "room_booking_no_overlap"


async def test_touching_bookings_are_allowed_and_a_minute_of_overlap_is_not(client, sessions, admin, agent):
    guangzhou, _ = await guangdong_centres(client, admin)
    tender = await tender_with_lot(sessions, agent)
    url = f"/api/v1/rooms/{guangzhou.room}/bookings"
    morning = await post(client, url, agent, {"starts_at": at(4, 9), "ends_at": at(4, 12), "tender": tender.code,
                                              "label": "资格审查"}, 201)
    # ends at 12:00, the next starts at 12:00: the ranges are half-open, so they touch without overlapping
    afternoon = await post(client, url, agent, {"starts_at": at(4, 12), "ends_at": at(4, 18),
                                                "tender": tender.code, "label": "详细评审"}, 201)
    # the same instant written with another offset is the same instant
    refused = await post(client, url, admin, {"starts_at": at(4, 11, 59), "ends_at": at(4, 12, 1),
                                              "label": "设备检修"}, 409)
    assert refused["error"]["code"] == "room_booked"
    assert [c["booking_id"] for c in refused["error"]["details"]["conflicts"]] == [
        morning["booking_id"], afternoon["booking_id"]]

    # another room of another site is free at the same time
    other_room = (await post(client, f"/api/v1/sites/{guangzhou.site}/rooms", admin, {"name": "第2评标室"}, 201))
    await post(client, f"/api/v1/rooms/{other_room['room_id']}/bookings", agent,
               {"starts_at": at(4, 9), "ends_at": at(4, 12), "tender": tender.code, "label": "副场"}, 201)

    listed = await (await client.get(url, headers=agent.headers)).json()
    assert [b["booking_id"] for b in listed] == [morning["booking_id"], afternoon["booking_id"]]


async def test_a_cancelled_booking_frees_its_time_and_stays_on_record(client, sessions, raw_conn, admin, agent):
    _, zhongshan = await guangdong_centres(client, admin)
    tender = await tender_with_lot(sessions, agent)
    url = f"/api/v1/rooms/{zhongshan.room}/bookings"
    body = {"starts_at": at(6, 9), "ends_at": at(6, 17), "tender": tender.code, "lot": tender.lot_id,
            "label": "第一标段评标"}
    first = await post(client, url, agent, body, 201)
    assert (first["status"], first["tender"], first["lot"]) == ("confirmed", tender.code, tender.lot_id)
    assert (await post(client, url, agent, body, 409))["error"]["code"] == "room_booked"

    cancelled = await post(client, f"/api/v1/bookings/{first['booking_id']}/cancel", agent,
                           {"reason": "开标延期"}, 200)
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "开标延期")
    assert cancelled["cancelled_at"] is not None
    again = await post(client, url, agent, body, 201)

    # cancelling twice is refused; the rebooked slot stays booked
    assert (await post(client, f"/api/v1/bookings/{first['booking_id']}/cancel", agent,
                       {"reason": "再次取消"}, 409))["error"]["code"] == "booking_not_active"
    live = await (await client.get(url, headers=agent.headers)).json()
    assert [b["booking_id"] for b in live] == [again["booking_id"]]
    every = await (await client.get(url + "?include_cancelled=true", headers=agent.headers)).json()
    assert [(b["booking_id"], b["status"]) for b in every] == [
        (first["booking_id"], "cancelled"), (again["booking_id"], "confirmed")]
    assert [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", f"booking:{first['booking_id']}")] == [
        "venue.room.book", "venue.booking.cancel"]


async def test_only_the_tenders_agents_and_admins_book_and_cancel_and_others_see_only_busy_times(
        client, sessions, admin, agent, other_agent):
    guangzhou, _ = await guangdong_centres(client, admin)
    tender = await tender_with_lot(sessions, agent)
    url = f"/api/v1/rooms/{guangzhou.room}/bookings"
    body = {"starts_at": at(7, 9), "ends_at": at(7, 12), "tender": tender.code, "label": "评标"}

    # an agent of another agency may not book for this tender, nor book without one; a bidder may not book at all
    refused = await post(client, url, other_agent, body, 403)
    assert refused["error"]["code"] == "booking_forbidden"
    assert (await post(client, url, agent, {**body, "tender": None}, 403))["error"]["code"] == "booking_forbidden"
    someone = await bidder(client)
    assert (await post(client, url, someone, body, 403))["error"]["code"] == "role_forbidden"

    booking = await post(client, url, agent, body, 201)
    # an admin books for a purpose of the centre's own, without a tender
    maintenance = await post(client, url, admin, {"starts_at": at(7, 13), "ends_at": at(7, 15),
                                                  "label": "设备检修"}, 201)
    assert maintenance["tender"] is None and maintenance["label"] == "设备检修"

    # who sees the purpose: the tender's agent, its supervisors and admins; others see the room is taken, and when
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=tender.supervisor_org)
    stranger_supervisor = await staff(sessions, client, "supervisor",
                                      organisation_public_id=await organisation(sessions))
    for actor, visible in ((agent, True), (supervisor, True), (admin, True), (other_agent, False),
                           (stranger_supervisor, False), (someone, False)):
        seen = await (await client.get(f"/api/v1/bookings/{booking['booking_id']}", headers=actor.headers)).json()
        assert seen["purpose_visible"] is visible
        assert (seen["tender"], seen["label"]) == ((tender.code, "评标") if visible else (None, None))
        assert same_instant(seen["starts_at"], at(7, 9))

    # cancelling: not by another agency's agent, yes by an admin
    assert (await post(client, f"/api/v1/bookings/{booking['booking_id']}/cancel", other_agent,
                       {"reason": "不需要"}, 403))["error"]["code"] == "booking_forbidden"
    await post(client, f"/api/v1/bookings/{booking['booking_id']}/cancel", admin, {"reason": "场地调整"}, 200)
    # the admin's own booking without a tender cannot be cancelled by an agent
    assert (await post(client, f"/api/v1/bookings/{maintenance['booking_id']}/cancel", agent,
                       {"reason": "x"}, 403))["error"]["code"] == "booking_forbidden"


async def test_bad_booking_input_is_refused_with_stable_codes_and_changes_nothing(
        client, sessions, raw_conn, admin, agent):
    guangzhou, _ = await guangdong_centres(client, admin)
    tender = await tender_with_lot(sessions, agent)
    other = await tender_with_lot(sessions, agent)
    cancelled = await tender_with_lot(sessions, agent, status="cancelled")
    url = f"/api/v1/rooms/{guangzhou.room}/bookings"
    booked = await post(client, url, agent, {"starts_at": at(8, 9), "ends_at": at(8, 12), "tender": tender.code,
                                             "label": "评标"}, 201)

    def body(**over):
        return {"starts_at": at(9, 9), "ends_at": at(9, 12), "tender": tender.code, "label": "评标", **over}

    refused = [
        (url, body(ends_at=at(9, 8)), 422, "invalid_time_range"),
        (url, body(ends_at=at(9, 9)), 422, "invalid_time_range"),
        (url, body(starts_at=at(-2, 9), ends_at=at(-2, 12)), 422, "booking_in_past"),
        (url, body(ends_at=at(45, 9)), 422, "booking_too_long"),
        (url, body(starts_at="2026-12-20T09:00:00"), 422, "validation_failed"),  # no offset
        (url, body(label=""), 422, "validation_failed"),
        (url, body(colour="red"), 422, "validation_failed"),
        (url, body(tender="ZS-2026-FJSZ-99999"), 404, "tender_not_found"),
        (url, body(lot=other.lot_id), 404, "lot_not_found"),
        (url, body(tender=None, lot=tender.lot_id), 422, "lot_without_tender"),
        (url, body(tender=cancelled.code), 409, "tender_finished"),
        (url, body(starts_at=at(8, 10), ends_at=at(8, 11)), 409, "room_booked"),
        ("/api/v1/rooms/RM-NOSUCH/bookings", body(), 404, "room_not_found"),
        ("/api/v1/bookings/BK-NOSUCH00/cancel", {"reason": "x"}, 404, "booking_not_found"),
        (f"/api/v1/bookings/{booked['booking_id']}/cancel", {}, 422, "validation_failed"),
    ]
    before = await snapshot(raw_conn)
    for target, payload, status, code in refused:
        resp = await client.post(target, headers=agent.headers, json=payload)
        error = (await resp.json())["error"]
        assert (resp.status, error["code"]) == (status, code), payload
        assert error["message"]
    query = await client.get(url + "?from=tomorrow", headers=agent.headers)
    assert (query.status, (await query.json())["error"]["code"]) == (422, "validation_failed")
    window = await client.get(f"{url}?from={at(9, 9).replace('+', '%2B')}&to={at(9, 8).replace('+', '%2B')}",
                              headers=agent.headers)
    assert (window.status, (await window.json())["error"]["code"]) == (422, "invalid_time_range")
    assert await snapshot(raw_conn) == before
