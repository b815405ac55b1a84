"""The selective forwarding unit: every packet a place publishes goes, as the same encoded bytes, to each
viewer's track. A `RelayTrack` yields `av.Packet`s, so aiortc's sender only packetizes them (no mixing, no
transcoding, nothing decoded or encoded on the server).

A viewer subscribes to a place's channel, not to one publication: the channel outlives a publisher's reconnect,
and its packet times continue across publications so the viewer's decoder never sees time run backwards.
A viewer's video starts (and after it fell too far behind, restarts) at a key frame, which is requested of the
publisher (PLI) when the viewer joins. A viewer that reports a lost picture (its own PLI) gets the publisher asked
for a key frame too, at most once per KEYFRAME_ASK_INTERVAL_S for all the channel's viewers together.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

# the step between one publication's last packet and the next publication's first, in each clock
_STEP = {"video": 3000, "audio": 960}
# viewers' picture losses are passed on to the publisher no more often than this (a browser encoder answers
# every request with a key frame, several times the size of a delta frame)
KEYFRAME_ASK_INTERVAL_S = 0.5


class RelayTrack(MediaStreamTrack):
    """One viewer's copy of one place's audio or video: a bounded queue of the channel's packets."""

    def __init__(self, channel: "PlaceChannel", kind: str, limit: int) -> None:
        super().__init__()
        self.kind = kind
        self._id = f"{channel.place_public_id}-{kind}"
        self._channel = channel
        self._queue: asyncio.Queue = asyncio.Queue()
        self._limit = limit
        self._need_keyframe = kind == "video"
        self.forwarded = 0
        self.dropped = 0

    def offer(self, packet: av.Packet) -> None:
        if self.readyState != "live":
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                return
            self._need_keyframe = False
        if self._queue.qsize() >= self._limit:
            # the viewer cannot keep up: drop what it has, and start again at the next key frame
            self.dropped += self._queue.qsize()
            while not self._queue.empty():
                self._queue.get_nowait()
            if self.kind == "video":
                self._need_keyframe = True
                self._channel.ask_keyframe()
                if not packet.is_keyframe:
                    return
                self._need_keyframe = False
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.forwarded += 1
        return packet

    def picture_lost(self) -> None:
        """The viewer reported a lost picture (RTCP PLI or FIR): it shows nothing new until the next key frame."""
        if self.kind == "video" and self.readyState == "live":
            self._channel.viewer_lost_picture()

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()
        self._channel.unsubscribe(self)


class PlaceChannel:
    """A place's live media: the current publication's packets fanned out to every subscribed viewer."""

    def __init__(self, session_public_id: str, place_public_id: str, *, relay_queue: int) -> None:
        self.session_public_id = session_public_id
        self.place_public_id = place_public_id
        self.muted = False  # the chair muted this member's audio for everyone live (recordings keep it)
        self._relay_queue = relay_queue
        self._subscribers: dict[str, set[RelayTrack]] = {"video": set(), "audio": set()}
        self._offset: dict[str, int] = {}
        self._last_out: dict[str, int] = {}
        self._publication: object | None = None
        self._keyframe_source: Callable[[], Awaitable[object]] | None = None
        self._viewer_ask_at: float | None = None
        self.viewer_picture_losses = 0  # viewers' PLI/FIR that reached the channel
        self.viewer_keyframe_asks = 0   # of those, passed on to the publisher

    # -- publishers ---------------------------------------------------------------------------------------
    def attach(self, publication: object, keyframe_source: Callable[[], Awaitable[object]]) -> None:
        """A new publication feeds the channel; its packet times are shifted to follow the last ones sent."""
        self._publication, self._keyframe_source = publication, keyframe_source
        self._offset.clear()

    def detach(self, publication: object) -> None:
        if self._publication is publication:
            self._publication, self._keyframe_source = None, None

    def push(self, publication: object, kind: str, packet: av.Packet) -> None:
        if publication is not self._publication:
            return
        if kind not in self._offset:
            last = self._last_out.get(kind)
            self._offset[kind] = 0 if last is None else last + _STEP.get(kind, 0) - packet.pts
        packet.pts = packet.dts = packet.pts + self._offset[kind]
        self._last_out[kind] = packet.pts
        if kind == "audio" and self.muted:
            return
        for track in tuple(self._subscribers.get(kind, ())):
            track.offer(packet)

    # -- viewers ------------------------------------------------------------------------------------------
    def subscribe(self, kind: str) -> RelayTrack:
        track = RelayTrack(self, kind, self._relay_queue)
        self._subscribers.setdefault(kind, set()).add(track)
        if kind == "video":
            self.ask_keyframe()
        return track

    def unsubscribe(self, track: RelayTrack) -> None:
        self._subscribers.get(track.kind, set()).discard(track)

    def viewers(self) -> int:
        return len(self._subscribers["video"] | self._subscribers["audio"])

    def ask_keyframe(self) -> None:
        if self._keyframe_source is not None:
            asyncio.get_running_loop().create_task(self._keyframe_source())

    def viewer_lost_picture(self) -> None:
        self.viewer_picture_losses += 1
        now = asyncio.get_running_loop().time()
        if self._viewer_ask_at is not None and now - self._viewer_ask_at < KEYFRAME_ASK_INTERVAL_S:
            return
        self._viewer_ask_at = now
        self.viewer_keyframe_asks += 1
        self.ask_keyframe()

    def close(self) -> None:
        for kind in self._subscribers:
            for track in tuple(self._subscribers[kind]):
                track.stop()
