"""Venue management (统一场地管理) through HTTP: admins build and change the two Guangdong centres, everyone
signed in reads them, nobody else changes them, and bad input changes nothing."""
from tests.helpers import bidder, staff

from .conftest import at, guangdong_centres, post, snapshot, tender_with_lot


async def ledger_actions(raw_conn, entity: str) -> list[str]:
    return [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", entity)]


async def test_an_admin_builds_the_guangzhou_and_zhongshan_centres_and_everyone_signed_in_reads_them(
        client, sessions, raw_conn, admin):
    guangzhou, zhongshan = await guangdong_centres(client, admin)
    camera = await post(client, f"/api/v1/rooms/{zhongshan.room}/places", admin,
                        {"label": "CAM", "camera_position": True}, 201)

    someone = await bidder(client)
    sites = await (await client.get("/api/v1/sites", headers=someone.headers)).json()
    assert {s["site_id"]: (s["name"], s["region_code"], s["region_name"]) for s in sites} == {
        zhongshan.site: ("中山市公共资源交易中心", "442000", "中山市"),
        guangzhou.site: ("广东省公共资源交易中心", "440100", "广州市")}
    zs = next(s for s in sites if s["site_id"] == zhongshan.site)
    assert [r["name"] for r in zs["rooms"]] == ["远程异地评标室"]
    assert [(p["label"], p["camera_position"]) for p in zs["rooms"][0]["places"]] == [
        ("B-01", False), ("B-02", False), ("B-03", False), ("CAM", True)]
    assert [p["place_id"] for p in zs["rooms"][0]["places"]] == [*zhongshan.places, camera["place_id"]]

    only_zs = await (await client.get("/api/v1/sites?region_code=442000", headers=someone.headers)).json()
    assert [s["site_id"] for s in only_zs] == [zhongshan.site]
    room = await (await client.get(f"/api/v1/rooms/{guangzhou.room}", headers=someone.headers)).json()
    assert (room["site_id"], [p["label"] for p in room["places"]]) == (guangzhou.site, ["A-01", "A-02"])

    # changes: a new name and address, a room's capacity, a relabelled place, the camera moved
    resp = await client.patch(f"/api/v1/sites/{guangzhou.site}", headers=admin.headers,
                              json={"name": "广东省公共资源交易中心（天河）", "address": "广州市天河区"})
    assert resp.status == 200
    assert ((await resp.json())["name"], (await resp.json())["address"]) == ("广东省公共资源交易中心（天河）", "广州市天河区")
    resp = await client.patch(f"/api/v1/rooms/{guangzhou.room}", headers=admin.headers, json={"capacity": 12})
    assert (resp.status, (await resp.json())["capacity"]) == (200, 12)
    resp = await client.patch(f"/api/v1/places/{guangzhou.places[0]}", headers=admin.headers, json={"label": "A-11"})
    assert (resp.status, (await resp.json())["label"]) == (200, "A-11")
    resp = await client.patch(f"/api/v1/places/{camera['place_id']}", headers=admin.headers,
                              json={"camera_position": False})
    assert (resp.status, (await resp.json())["camera_position"]) == (200, False)
    resp = await client.patch(f"/api/v1/places/{zhongshan.places[0]}", headers=admin.headers,
                              json={"camera_position": True})
    assert (resp.status, (await resp.json())["camera_position"]) == (200, True)
    # a change to nothing writes nothing
    resp = await client.patch(f"/api/v1/rooms/{guangzhou.room}", headers=admin.headers, json={"capacity": 12})
    assert resp.status == 200

    # retiring: a place, then a room with its places, then a site; retired things leave the default listing
    resp = await client.post(f"/api/v1/places/{guangzhou.places[1]}/retire", headers=admin.headers)
    assert (resp.status, (await resp.json())["status"]) == (200, "retired")
    resp = await client.post(f"/api/v1/sites/{zhongshan.site}/retire", headers=admin.headers)
    retired = await resp.json()
    assert (resp.status, retired["status"]) == (200, "retired")
    assert [(r["status"], {p["status"] for p in r["places"]}) for r in retired["rooms"]] == [
        ("retired", {"retired"})]
    active = await (await client.get("/api/v1/sites", headers=someone.headers)).json()
    assert [s["site_id"] for s in active] == [guangzhou.site]
    assert [p["label"] for p in active[0]["rooms"][0]["places"]] == ["A-11"]
    every = await (await client.get("/api/v1/sites?include_retired=true", headers=someone.headers)).json()
    assert {s["site_id"]: s["status"] for s in every} == {guangzhou.site: "active", zhongshan.site: "retired"}
    # a retired centre's name may be taken by a new one
    await post(client, "/api/v1/sites", admin, {"name": "中山市公共资源交易中心", "region_code": "442000"}, 201)

    # every change is on the ledger, under the admin's name
    assert await ledger_actions(raw_conn, f"site:{guangzhou.site}") == ["venue.site.create", "venue.site.update"]
    assert await ledger_actions(raw_conn, f"room:{guangzhou.room}") == ["venue.room.create", "venue.room.update"]
    assert await ledger_actions(raw_conn, f"place:{guangzhou.places[1]}") == [
        "venue.place.create", "venue.place.retire"]
    assert await ledger_actions(raw_conn, f"place:{camera['place_id']}") == [
        "venue.place.create", "venue.place.update"]
    assert await ledger_actions(raw_conn, f"site:{zhongshan.site}") == ["venue.site.create", "venue.site.retire"]
    actors = {r["actor"] for r in await raw_conn.fetch("SELECT actor FROM audit_entry WHERE action LIKE 'venue.%'")}
    assert actors == {admin.public_id}


async def test_only_admins_manage_venues_and_only_signed_in_users_read_them(client, sessions, raw_conn, admin, agent):
    guangzhou, _ = await guangdong_centres(client, admin)
    supervisor = await staff(sessions, client, "supervisor")
    someone = await bidder(client)
    before = await snapshot(raw_conn)
    for actor in (agent, supervisor, someone):
        attempts = [
            client.post("/api/v1/sites", headers=actor.headers, json={"name": "某中心", "region_code": "440300"}),
            client.patch(f"/api/v1/sites/{guangzhou.site}", headers=actor.headers, json={"name": "改名"}),
            client.post(f"/api/v1/sites/{guangzhou.site}/retire", headers=actor.headers),
            client.post(f"/api/v1/sites/{guangzhou.site}/rooms", headers=actor.headers, json={"name": "新室"}),
            client.patch(f"/api/v1/rooms/{guangzhou.room}", headers=actor.headers, json={"name": "改名"}),
            client.post(f"/api/v1/rooms/{guangzhou.room}/retire", headers=actor.headers),
            client.post(f"/api/v1/rooms/{guangzhou.room}/places", headers=actor.headers, json={"label": "X-1"}),
            client.patch(f"/api/v1/places/{guangzhou.places[0]}", headers=actor.headers, json={"label": "X-2"}),
            client.post(f"/api/v1/places/{guangzhou.places[0]}/retire", headers=actor.headers),
        ]
        for attempt in attempts:
            resp = await attempt
            assert (resp.status, (await resp.json())["error"]["code"]) == (403, "role_forbidden")
        resp = await client.get(f"/api/v1/sites/{guangzhou.site}", headers=actor.headers)
        assert (resp.status, (await resp.json())["site_id"]) == (200, guangzhou.site)
    for url in ("/api/v1/sites", f"/api/v1/sites/{guangzhou.site}", f"/api/v1/rooms/{guangzhou.room}",
                f"/api/v1/rooms/{guangzhou.room}/bookings"):
        resp = await client.get(url)
        assert (resp.status, (await resp.json())["error"]["code"]) == (401, "authentication_required")
    assert await snapshot(raw_conn) == before


async def test_bad_venue_input_is_refused_with_stable_codes_and_changes_nothing(client, sessions, raw_conn, admin,
                                                                                 agent):
    guangzhou, zhongshan = await guangdong_centres(client, admin)
    await post(client, f"/api/v1/rooms/{zhongshan.room}/places", admin, {"label": "CAM", "camera_position": True}, 201)
    retired = await post(client, "/api/v1/sites", admin, {"name": "旧中心", "region_code": "440300"}, 201)
    old_room = await post(client, f"/api/v1/sites/{retired['site_id']}/rooms", admin, {"name": "旧室"}, 201)
    await post(client, f"/api/v1/sites/{retired['site_id']}/retire", admin, None, 200)
    tender = await tender_with_lot(sessions, agent)
    await post(client, f"/api/v1/rooms/{guangzhou.room}/bookings", agent,
               {"starts_at": at(2, 9), "ends_at": at(2, 12), "tender": tender.code, "label": "评标"}, 201)

    refused = [
        ("POST", "/api/v1/sites", {"name": "某中心", "region_code": "44010"}, 422, "invalid_region"),
        ("POST", "/api/v1/sites", {"name": "某中心", "region_code": "440101"}, 422, "invalid_region"),
        ("POST", "/api/v1/sites", {"name": "", "region_code": "440100"}, 422, "validation_failed"),
        ("POST", "/api/v1/sites", {"name": "   ", "region_code": "440100"}, 422, "validation_failed"),
        ("POST", f"/api/v1/rooms/{guangzhou.room}/places", {"label": " \t"}, 422, "validation_failed"),
        ("POST", "/api/v1/sites", {"name": "某中心"}, 422, "validation_failed"),
        ("POST", "/api/v1/sites", {"name": "某中心", "region_code": "440100", "rooms": []}, 422,
         "validation_failed"),
        ("POST", "/api/v1/sites", {"name": "中山市公共资源交易中心", "region_code": "442000"}, 409, "site_name_taken"),
        ("PATCH", f"/api/v1/sites/{guangzhou.site}", {"name": "中山市公共资源交易中心"}, 409, "site_name_taken"),
        ("PATCH", f"/api/v1/sites/{guangzhou.site}", {"region_code": "4401"}, 422, "invalid_region"),
        ("PATCH", f"/api/v1/sites/{retired['site_id']}", {"name": "新名"}, 409, "site_retired"),
        ("POST", "/api/v1/sites/ST-NOSUCH/rooms", {"name": "新室"}, 404, "site_not_found"),
        ("POST", f"/api/v1/sites/{retired['site_id']}/rooms", {"name": "新室"}, 409, "site_retired"),
        ("POST", f"/api/v1/sites/{guangzhou.site}/rooms", {"name": "第1评标室"}, 409, "room_name_taken"),
        ("POST", f"/api/v1/sites/{guangzhou.site}/rooms", {"name": "新室", "capacity": 0}, 422,
         "validation_failed"),
        ("POST", f"/api/v1/rooms/{guangzhou.room}/places", {"label": "A-01"}, 409, "place_label_taken"),
        ("POST", f"/api/v1/rooms/{guangzhou.room}/places", {"label": "A" * 33}, 422, "validation_failed"),
        ("POST", f"/api/v1/rooms/{zhongshan.room}/places", {"label": "CAM2", "camera_position": True}, 409,
         "camera_position_taken"),
        ("PATCH", f"/api/v1/places/{zhongshan.places[0]}", {"camera_position": True}, 409, "camera_position_taken"),
        ("PATCH", f"/api/v1/places/{zhongshan.places[0]}", {"label": "B-02"}, 409, "place_label_taken"),
        ("POST", f"/api/v1/rooms/{old_room['room_id']}/places", {"label": "X"}, 409, "room_retired"),
        ("POST", "/api/v1/rooms/RM-NOSUCH/places", {"label": "X"}, 404, "room_not_found"),
        ("PATCH", "/api/v1/places/PL-NOSUCH", {"label": "X"}, 404, "place_not_found"),
        # a room or site with a booking still to come is not retired under it
        ("POST", f"/api/v1/rooms/{guangzhou.room}/retire", None, 409, "room_has_bookings"),
        ("POST", f"/api/v1/sites/{guangzhou.site}/retire", None, 409, "site_has_bookings"),
        ("POST", f"/api/v1/sites/{retired['site_id']}/retire", None, 409, "site_retired"),
        ("POST", f"/api/v1/rooms/{old_room['room_id']}/bookings",
         {"starts_at": at(3, 9), "ends_at": at(3, 12), "label": "评标"}, 409, "site_retired"),
    ]
    before = await snapshot(raw_conn)
    for method, url, payload, status, code in refused:
        resp = await client.request(method, url, headers=admin.headers, json=payload)
        error = (await resp.json())["error"]
        assert (resp.status, error["code"]) == (status, code), (method, url, payload)
        assert error["message"]
    resp = await client.get("/api/v1/sites?region_code=abc", headers=admin.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "invalid_region")
    resp = await client.get("/api/v1/sites/ST-NOSUCH", headers=admin.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "site_not_found")
    assert await snapshot(raw_conn) == before


async def test_a_room_is_retired_once_its_bookings_are_cancelled_and_is_then_never_booked(
        client, sessions, raw_conn, admin, agent):
    guangzhou, _ = await guangdong_centres(client, admin)
    tender = await tender_with_lot(sessions, agent)
    url = f"/api/v1/rooms/{guangzhou.room}/bookings"
    booking = await post(client, url, agent, {"starts_at": at(2, 9), "ends_at": at(2, 12), "tender": tender.code,
                                              "label": "评标"}, 201)
    refused = await post(client, f"/api/v1/rooms/{guangzhou.room}/retire", admin, None, 409)
    assert refused["error"]["code"] == "room_has_bookings"
    assert [b["booking_id"] for b in refused["error"]["details"]["bookings"]] == [booking["booking_id"]]

    await post(client, f"/api/v1/bookings/{booking['booking_id']}/cancel", agent, {"reason": "换场地"}, 200)
    room = await post(client, f"/api/v1/rooms/{guangzhou.room}/retire", admin, None, 200)
    assert (room["status"], room["places"]) == ("retired", [])
    assert await raw_conn.fetchval("SELECT count(*) FROM venue_place WHERE status = 'active'") == 3  # Zhongshan's
    assert (await post(client, url, agent, {"starts_at": at(3, 9), "ends_at": at(3, 12), "tender": tender.code,
                                            "label": "评标"}, 409))["error"]["code"] == "room_retired"
    assert await ledger_actions(raw_conn, f"room:{guangzhou.room}") == ["venue.room.create", "venue.room.retire"]
