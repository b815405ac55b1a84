"""Playback over HTTP: a session's places and their segments for the tender's supervisors, a segment's file with
byte ranges as a <video> element asks for them (206, Content-Range, 416), playback tickets for the <video src>,
and everybody else refused."""
from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import Actor, bidder, staff

from .recordings import decoded_frames, scheduled_session, store_segment, webm_clip


@pytest.fixture
async def admin(sessions, client) -> Actor:
    return await staff(sessions, client, "admin")


async def get(client, url, actor: Actor | None = None, headers: dict | None = None):
    resp = await client.get(url, headers={**(actor.headers if actor else {}), **(headers or {})})
    return resp, await resp.read()


async def test_supervisor_lists_places_and_plays_segments_with_ranges(client, sessions, settings, admin):
    s = await scheduled_session(sessions, client, admin)
    clip = webm_clip(seconds=2.0)
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    place = s.zhongshan.places[0]
    first = await store_segment(sessions, settings, session_id=s.session_id, place_id=place, started_at=t0,
                                clip=clip)
    second = await store_segment(sessions, settings, session_id=s.session_id, place_id=place,
                                 started_at=t0 + timedelta(seconds=2), clip=clip, seq=2)
    still_open = await store_segment(sessions, settings, session_id=s.session_id, place_id=s.guangzhou.places[0],
                                     started_at=t0, clip=clip, closed=False)

    resp, raw = await get(client, s.url + "/recordings", s.supervisor)
    assert resp.status == 200, raw
    listing = await resp.json()
    places = {p["place_id"]: p for p in listing["places"]}
    assert set(places) == set(s.zhongshan.places + s.guangzhou.places)
    assert places[s.zhongshan.places[0]]["venue_role"] == "main"
    assert places[s.guangzhou.places[0]]["venue_role"] == "sub"
    segs = places[place]["segments"]
    assert [x["segment_id"] for x in segs] == [first, second]
    assert all(x["status"] == "closed" and x["content_type"] == "video/webm" for x in segs)
    assert segs[0]["size_bytes"] == len(clip.data) and segs[0]["video_frames"] == clip.video_frames
    open_seg = places[s.guangzhou.places[0]]["segments"][0]
    assert (open_seg["segment_id"], open_seg["status"], open_seg["url"]) == (still_open, "open", None)
    assert places[s.zhongshan.places[1]]["segments"] == []

    # the whole file, with a bearer token
    url = f"/api/v1/media/segments/{first}"
    resp, body = await get(client, url, s.supervisor)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/webm"
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert int(resp.headers["Content-Length"]) == len(clip.data)
    assert body == clip.data and decoded_frames(body) == clip.video_frames
    size = len(clip.data)

    # ranges, as a <video> element asks for them while it plays and seeks
    for header, first_byte, last_byte in (("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1),
                                          ("bytes=-50", size - 50, size - 1),
                                          (f"bytes=10-{size + 5000}", 10, size - 1)):
        resp, part = await get(client, url, s.supervisor, {"Range": header})
        assert resp.status == 206, header
        assert resp.headers["Content-Range"] == f"bytes {first_byte}-{last_byte}/{size}"
        assert int(resp.headers["Content-Length"]) == last_byte - first_byte + 1
        assert part == clip.data[first_byte:last_byte + 1]
    # the file read piecewise plays like the whole
    pieces = []
    for start in range(0, size, 1000):
        resp, part = await get(client, url, s.supervisor, {"Range": f"bytes={start}-{start + 999}"})
        pieces.append(part)
    assert decoded_frames(b"".join(pieces)) == clip.video_frames

    for header, code in ((f"bytes={size}-", "range_not_satisfiable"), ("bytes=500-100", "range_invalid"),
                         ("bytes=abc", "range_invalid"), ("items=0-1", "range_invalid"),
                         ("bytes=0-1,5-9", "range_multiple_unsupported")):
        resp, _ = await get(client, url, s.supervisor, {"Range": header})
        assert resp.status == 416, header
        assert resp.headers["Content-Range"] == f"bytes */{size}"
        assert (await resp.json())["error"]["code"] == code

    # an open segment is still being written
    resp, _ = await get(client, f"/api/v1/media/segments/{still_open}", s.supervisor)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "segment_open"


async def test_playback_tickets_let_a_video_element_play_without_headers(client, sessions, settings, admin):
    s = await scheduled_session(sessions, client, admin)
    clip = webm_clip(seconds=1.0)
    t0 = datetime.now(timezone.utc)
    one = await store_segment(sessions, settings, session_id=s.session_id, place_id=s.zhongshan.places[0],
                              started_at=t0, clip=clip)
    two = await store_segment(sessions, settings, session_id=s.session_id, place_id=s.zhongshan.places[1],
                              started_at=t0, clip=clip)
    listing = await (await client.get(s.url + "/recordings", headers=s.supervisor.headers)).json()
    urls = {seg["segment_id"]: seg["url"] for p in listing["places"] for seg in p["segments"]}

    resp = await client.get(urls[one], headers={"Range": "bytes=0-"})  # no Authorization header
    assert resp.status == 206 and await resp.read() == clip.data

    # a ticket is for one segment, and cannot be altered
    ticket_one = urls[one].split("ticket=")[1]
    resp = await client.get(f"/api/v1/media/segments/{two}?ticket={ticket_one}")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "playback_ticket_invalid"
    body, mac = ticket_one.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    resp = await client.get(f"/api/v1/media/segments/{one}?ticket={forged}")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "playback_ticket_invalid"

    # a ticket speaks for its user as the account stands: a supervisor moved to another organisation loses it
    async with sessions() as session, session.begin():
        from sqlalchemy import text
        await session.execute(text("UPDATE app_user SET organisation_id = NULL WHERE public_id = :p"),
                              {"p": s.supervisor.public_id})
    resp = await client.get(urls[one])
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "recording_forbidden"


async def test_nobody_but_the_tenders_supervisors_replays(client, sessions, settings, admin):
    s = await scheduled_session(sessions, client, admin)
    seg = await store_segment(sessions, settings, session_id=s.session_id, place_id=s.zhongshan.places[0],
                              started_at=datetime.now(timezone.utc), clip=webm_clip(seconds=1.0))
    expert = await staff(sessions, client, "expert")
    outsiders = {"the tender's agent": s.agent, "another tender's supervisor": s.other_supervisor,
                 "a bidder": await bidder(client), "an expert": expert, "an admin": admin}
    for who, actor in outsiders.items():
        for url in (s.url + "/recordings", s.url + "/timeline", f"/api/v1/media/segments/{seg}"):
            resp, raw = await get(client, url, actor)
            assert resp.status == 403, (who, url, raw)
            assert (await resp.json())["error"]["code"] == "recording_forbidden"
    for url in (s.url + "/recordings", s.url + "/timeline"):
        resp, _ = await get(client, url)
        assert resp.status == 401
    resp, _ = await get(client, f"/api/v1/media/segments/{seg}")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "authentication_required"
    resp, _ = await get(client, "/api/v1/media/segments/SG-ZZZZZZ", s.supervisor)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "segment_not_found"
    resp, _ = await get(client, "/api/v1/evaluation-sessions/ES-ZZZZZZZZ/recordings", s.supervisor)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "session_not_found"
