"""A viewer that lost a picture asks for a key frame (RTCP PLI, RFC 4585 §6.3.1), and the relay passes the request on
to the place's publisher, so a frozen tile on the video wall recovers at once rather than at the publisher's next
key frame (a browser sends one only when asked). Many viewers' requests reach the publisher as one per interval."""
import asyncio

from evaluation.media import passthrough
from evaluation.media.relay import KEYFRAME_ASK_INTERVAL_S
from evaluation.media.routes import MEDIA_HUB

from .peers import publish, until, watch


def video_transceiver(pc, mid: str):
    return next(t for t in pc.getTransceivers() if t.mid == mid)


async def test_a_viewers_lost_picture_asks_the_publisher_for_a_key_frame(client, live):
    place = live.members[0].place_id
    publisher = await publish(client, live.session_id, place, live.members[0].person.headers)
    asked = []  # picture loss indications the publisher's video sender received from the server
    passthrough.forward_picture_loss(publisher.pc.getTransceivers()[0].sender, lambda: asked.append(1))
    watchers = [await watch(client, live.session_id, live.supervisor.headers) for _ in range(2)]
    try:
        assert await until(lambda: all(w.count(place, "video") > 10 for w in watchers), 20)
        hub = client.server.app[MEDIA_HUB]

        def row() -> dict:
            return next(r for r in hub.stats(live.session_id) if r["place"] == place)
        assert row()["viewer_picture_losses"] == 0

        before = len(asked)
        # both viewers lose a picture, three times each, within one interval
        for _ in range(3):
            for w in watchers:
                receiver = video_transceiver(w.pc, w.places[place]["video"]).receiver
                assert await passthrough.request_keyframe(receiver)
        assert await until(lambda: row()["viewer_picture_losses"] == 6, 10), row()
        assert row()["viewer_keyframe_asks"] == 1  # one request for all six, within KEYFRAME_ASK_INTERVAL_S
        assert await until(lambda: len(asked) > before, 10)  # and the publisher was asked

        # later losses are passed on again
        await asyncio.sleep(KEYFRAME_ASK_INTERVAL_S)
        assert await passthrough.request_keyframe(
            video_transceiver(watchers[0].pc, watchers[0].places[place]["video"]).receiver)
        assert await until(lambda: row()["viewer_keyframe_asks"] == 2, 10), row()

        # audio has no pictures: an indication on an audio stream asks nothing of the publisher
        audio = video_transceiver(watchers[0].pc, watchers[0].places[place]["audio"]).receiver
        assert await until(lambda: watchers[0].count(place, "audio") > 10, 10)
        assert await passthrough.request_keyframe(audio)
        await asyncio.sleep(KEYFRAME_ASK_INTERVAL_S * 2)
        assert row()["viewer_picture_losses"] == 7
    finally:
        await publisher.close()
        for w in watchers:
            await w.close()
