"""H.264 is accepted (VP8 is preferred): a publisher that offers only H.264 is answered with it, and its place is
recorded from the encoded frames as they arrive, never decoded, into Matroska that PyAV decodes with the stream's
own parameter sets and picture size."""
import av

from evaluation.media.passthrough import CODEC_CALLS
from evaluation.media.routes import MEDIA_HUB

from .peers import HEIGHT, WIDTH, decode_file, next_json, publish, until
from .test_recording import all_closed


async def test_a_publisher_offering_only_h264_is_recorded_without_decoding(client, live, raw_conn, settings):
    decodes = CODEC_CALLS.total("decode")
    member = live.members[0]
    pub = await publish(client, live.session_id, member.place_id, member.person.headers, video_codec="h264")
    assert "H264/90000" in pub.pc.remoteDescription.sdp and "VP8" not in pub.pc.remoteDescription.sdp
    publication = client.server.app[MEDIA_HUB].publication(live.session_id, member.place_id)
    assert publication.mimes["video"].lower() == "video/h264"
    assert await until(lambda: publication.packets["video"] >= 30, 10)  # 2 s at 15 fps
    # an ICE restart (new credentials after a network change) is refused with a code to act on: reconnect
    sdp = pub.pc.localDescription.sdp
    ufrag = next(line for line in sdp.splitlines() if line.startswith("a=ice-ufrag:"))
    await pub.ws.send_json({"type": "offer", "sdp": sdp.replace(ufrag, "a=ice-ufrag:restart1")})
    refusal = await next_json(pub.ws)
    assert (refusal["type"], refusal["code"]) == ("error", "ice_restart_unsupported")
    await pub.close()
    rows = await all_closed(raw_conn, live.session_id)
    assert rows and all(r["storage_key"].endswith(".mkv") for r in rows)
    media = settings.data_dir / "media"
    for row in rows:
        with av.open(str(media / row["storage_key"])) as container:
            stream = container.streams.video[0]
            # the track header carries the publisher's own SPS (constrained baseline) and picture size
            assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (WIDTH, HEIGHT)
            assert stream.codec_context.extradata[:2] == b"\x01\x42"  # avcC version 1, profile_idc 66
        decoded = decode_file(media / row["storage_key"])
        assert decoded["video"] == row["video_frames"] > 0 and decoded["audio"] > 0
    assert sum(r["video_frames"] for r in rows) >= 0.9 * publication.packets["video"]
    assert CODEC_CALLS.total("decode") == decodes  # the server decoded nothing
