"""The session timeline over HTTP: a started session (5 experts checked in at their places, the chair elected),
each place recorded, and every audit event of the session carrying its member's place and, for every place,
the segment and the offset into it at that moment; a place that stopped recording has no mark."""
import math
from datetime import timedelta

import pytest

from tests.helpers import Actor, staff
from tests.integration.evaluation.session_setup import started_session
from tests.integration.trading_bids.conftest import wrapped_holder_keys  # noqa: F401  (fixture)

from .recordings import store_segment, webm_clip


@pytest.fixture
async def admin(sessions, client) -> Actor:
    return await staff(sessions, client, "admin")


async def test_events_carry_offsets_into_every_places_recording(client, sessions, settings, raw_conn, admin,
                                                                wrapped_holder_keys):  # noqa: F811
    s = await started_session(sessions, client, raw_conn, wrapped_holder_keys, admin)
    ready, supervisor = s.ready, s.ready.supervisor
    committee = await (await client.get(ready.url + "/committee", headers=supervisor.headers)).json()
    place_of = {m["member_id"]: m["place"]["place_id"] for m in committee["members"] if m["status"] != "withdrawn"}
    member_of_user = {actor.public_id: member for member, actor in s.members.items()}

    entity = f"evaluation_session:{ready.session_id}"
    ledger = await raw_conn.fetch("SELECT seq, at, actor, action FROM audit_entry WHERE entity = $1 ORDER BY seq",
                                  entity)
    check_ins = [e for e in ledger if e["action"] == "evaluation.member.check_in"]
    assert len(check_ins) == 5
    t0 = check_ins[0]["at"] - timedelta(seconds=1)
    span = (ledger[-1]["at"] - t0).total_seconds()
    long_clip = webm_clip(seconds=math.ceil(span) + 2, fps=5, width=64, height=48)
    short_clip = webm_clip(seconds=1.0, fps=5, width=64, height=48)
    members = sorted(place_of)
    cut_short = members[-1]  # this place's publisher dropped a second after t0
    segment_of = {}
    for member in members:
        clip = short_clip if member == cut_short else long_clip
        segment_of[place_of[member]] = await store_segment(sessions, settings, session_id=ready.session_id,
                                                           place_id=place_of[member], started_at=t0, clip=clip)

    resp = await client.get(ready.url + "/timeline", headers=supervisor.headers)
    assert resp.status == 200, await resp.text()
    line = await resp.json()
    assert {p["place_id"] for p in line["places"] if p["segments"]} == set(segment_of)
    assert {p["member_id"] for p in line["places"] if p["member_id"]} == set(place_of)
    events = {e["seq"]: e for e in line["events"]}
    assert [e["seq"] for e in line["events"]] == sorted(events)
    # every session event is on the timeline (those before the segments were stored)
    assert {e["seq"] for e in ledger} <= set(events)

    for entry in ledger:
        event = events[entry["seq"]]
        assert event["action"] == entry["action"] and event["actor"] == entry["actor"]
        offset = round((entry["at"] - t0).total_seconds(), 3)
        expected = {place: (seg, offset) for place, seg in segment_of.items()
                    if offset >= 0 and (place != place_of[cut_short] or offset < 1.0)}
        assert {m["place_id"]: (m["segment_id"], m["offset_s"]) for m in event["marks"]} == expected, entry["action"]

    # "expert 3 checked in" and "expert 1 voted": the event names the member and their place
    for entry in check_ins + [e for e in ledger if e["action"] == "evaluation.chair.vote"]:
        member = member_of_user[entry["actor"]]
        event = events[entry["seq"]]
        assert (event["member_id"], event["place_id"]) == (member, place_of[member])
    started = next(e for e in ledger if e["action"] == "evaluation.session.in_progress")
    assert events[started["seq"]]["member_id"] is None  # the agent is no member

    # the segments' own ledger entries are on the timeline too, at their place
    closed = [e for e in line["events"] if e["action"] == "evaluation.media.segment_closed"]
    assert {e["place_id"] for e in closed} == set(segment_of)
