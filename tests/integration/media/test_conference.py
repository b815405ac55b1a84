"""Committee conferencing (视频会议) through the relay: three members of a session in progress (the chair, an
expert and the tenderer's representative) publish, and each receives the other two members' video and audio; the
chair mutes a member and their audio stops reaching everyone live, while their place's recording keeps their
microphone. A supervisor listens in to every place."""
import asyncio
import json

from evaluation.media.routes import MEDIA_HUB

from .peers import publish, until, watch
from .test_recording import all_closed


async def settled(count, quiet_s: float = 1.0, timeout_s: float = 15.0) -> bool:
    """True once `count()` has not grown for `quiet_s`: packets sent before a mute, still in the network and the
    receivers' jitter buffers, have arrived (how long that takes depends on the machine's load, not the mute)."""
    loop = asyncio.get_running_loop()
    last, since, end = count(), loop.time(), loop.time() + timeout_s
    while loop.time() < end:
        await asyncio.sleep(0.2)
        now = count()
        if now != last:
            last, since = now, loop.time()
        elif loop.time() - since >= quiet_s:
            return True
    return False


async def test_three_members_confer_and_the_chair_mutes_one(client, raw_conn, live):
    chair, muted, other = live.members[0], live.members[1], live.representative
    confer = (chair, muted, other)
    publishers = [await publish(client, live.session_id, m.place_id, m.person.headers) for m in confer]
    viewers = [await watch(client, live.session_id, m.person.headers, tail="conference") for m in confer]
    supervisor = await watch(client, live.session_id, live.supervisor.headers)
    # each member is offered every other member's place; the supervisor every place, the room cameras too
    for member, viewer in zip(confer, viewers):
        assert set(viewer.places) == {m.place_id for m in live.members} - {member.place_id}
    assert set(supervisor.places) == {m.place_id for m in live.members} | {live.camera_place, live.sub_camera_place}

    def everyone_hears_everyone() -> bool:
        return all(v.count(m.place_id, kind) > 10 for v in viewers for m in confer
                   if m.place_id in v.places for kind in ("video", "audio"))
    assert await until(everyone_hears_everyone, 15)
    assert await until(lambda: supervisor.count(muted.place_id, "audio") > 10, 5)

    # a member who is not the chair cannot mute
    await viewers[1].send({"type": "mute", "place": other.place_id, "muted": True})
    assert await until(lambda: any(e.get("code") == "not_chair" for e in viewers[1].events), 5)

    await viewers[0].send({"type": "mute", "place": muted.place_id, "muted": True})
    assert await until(lambda: all(any(e.get("event") == "muted" and e.get("place") == muted.place_id
                                       for e in v.events) for v in (viewers[0], viewers[2], supervisor)), 5)
    for v in (viewers[0], viewers[2], supervisor):  # what was on the wire before the mute arrives, then nothing
        assert await settled(lambda v=v: v.count(muted.place_id, "audio")), "the muted audio kept arriving"
    heard = {id(v): v.count(muted.place_id, "audio") for v in (viewers[0], viewers[2], supervisor)}
    others_heard = viewers[0].count(other.place_id, "audio")
    sent_before = publishers[1].audio.sent
    await asyncio.sleep(2)
    assert publishers[1].audio.sent > sent_before + 50  # the muted member's microphone still sends
    for v in (viewers[0], viewers[2], supervisor):
        assert v.count(muted.place_id, "audio") == heard[id(v)]
    # the unmuted member is still heard: 50 more frames (1 s of audio) arrive, however loaded the machine is
    assert await until(lambda: viewers[0].count(other.place_id, "audio") > others_heard + 50, 15)
    assert viewers[0].count(muted.place_id, "video") > 0  # muting is audio only
    hub = client.server.app[MEDIA_HUB]
    assert {r["place"]: r["muted"] for r in hub.stats(live.session_id)}[muted.place_id] is True
    entry = await raw_conn.fetchrow("SELECT actor, payload FROM audit_entry WHERE action = 'evaluation.media.mute'")
    assert entry["actor"] == chair.person.public_id
    assert json.loads(entry["payload"])["place"] == muted.place_id

    publication = hub.publication(live.session_id, muted.place_id)
    got = await publishers[1].stop_sending(lambda kind: publication.packets[kind])  # nothing left in flight
    for p in publishers:
        await p.close()
    for v in (*viewers, supervisor):
        await v.close()
    rows = await all_closed(raw_conn, live.session_id)
    recorded = sum(r["audio_frames"] for r in rows if r["place"] == muted.place_id)
    # the recording kept the muted microphone
    assert recorded >= 0.9 * publishers[1].audio.sent, (recorded, publishers[1].audio.sent, got)
