"""Renegotiation: a publisher that starts with its microphone and adds its camera on the same connection is
answered again; the segment recorded so far closes and the recording goes on, with both tracks, in the next
segment of the same publication."""
from aiortc import RTCSessionDescription

from evaluation.media.routes import MEDIA_HUB

from .peers import PacketTrack, decode_file, next_json, peer, until, ws_url
from .test_recording import all_closed


async def test_a_publisher_adding_its_camera_goes_on_in_the_same_publication(client, live, raw_conn, settings):
    member = live.members[0]
    hub = client.server.app[MEDIA_HUB]
    ws = await client.ws_connect(ws_url(live.session_id, f"places/{member.place_id}/publish"),
                                 headers=member.person.headers)
    assert (await next_json(ws))["type"] == "ready"
    pc = peer()
    audio, video = PacketTrack("audio"), PacketTrack("video")
    pc.addTransceiver(audio, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
    answer = await next_json(ws)
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    publication = hub.publication(live.session_id, member.place_id)
    assert await until(lambda: publication.packets["audio"] >= 50, 20), publication.packets  # 1 s of sound

    pc.addTransceiver(video, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
    again = await next_json(ws)
    assert (again["type"], again["publication"]) == ("answer", answer["publication"])
    await pc.setRemoteDescription(RTCSessionDescription(again["sdp"], "answer"))
    assert hub.publication(live.session_id, member.place_id) is publication
    assert await until(lambda: publication.packets["video"] >= 30, 20), publication.packets  # 2 s of video
    video.stop()
    audio.stop()
    await pc.close()
    await ws.close()

    rows = await all_closed(raw_conn, live.session_id)
    assert {r["publication"] for r in rows} == {answer["publication"]}
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 2
    first, later = rows[0], rows[1:]
    assert first["video_frames"] == 0 and first["audio_frames"] > 0  # before the camera
    assert sum(r["video_frames"] for r in later) > 0
    for row in rows:
        decoded = decode_file(settings.data_dir / "media" / row["storage_key"])
        assert decoded["video"] == row["video_frames"] and decoded["audio"] > 0
