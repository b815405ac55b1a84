"""The media hub: every publication, viewer, recording and health watch of this process, owned by the app
(web key MEDIA_HUB, created in evaluation.media.routes.cleanup_ctx). No globals.

Signaling (evaluation.media.signaling) authorizes a participant (evaluation.media.grants) and then asks the hub:

    answer, pub = await hub.publish(grant, offer)        # a place's publisher: send only
    viewer = await hub.view(grant)                       # a supervisor or a conferring member: receive only
    await viewer.accept(answer)                          # viewer.offer / viewer.places were sent to the client
    hub.set_muted(session_public_id, place_public_id, True)
    hub.stats(session_public_id)
    await pub.stop(); await viewer.close(); await hub.close()

Inside: a publication's tracks are received without decoding (evaluation.media.passthrough); each packet goes to
the place's recorder (evaluation.media.recorder), its health (evaluation.media.health) and its relay channel
(evaluation.media.relay), from which each viewer's track yields the same encoded packets.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.mediastreams import MediaStreamError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from core.storage import Storage
from evaluation.media import health as health_mod
from evaluation.media import passthrough, recovery
from evaluation.media.config import MediaConfig
from evaluation.media.grants import PublishGrant, ViewGrant
from evaluation.media.recorder import PlaceRecorder, PublicationRef, next_publication
from evaluation.media.relay import PlaceChannel, RelayTrack
from evaluation.models import EvaluationSession
from evaluation.rules import TERMINAL_SESSION_STATES

log = logging.getLogger(__name__)

VIDEO_PREFERENCE = ("video/vp8", "video/h264")
AUDIO_PREFERENCE = ("audio/opus",)


def _prefer(kind: str) -> list:
    """This plane's codecs in order (VP8 then H.264; Opus), each with its retransmission format."""
    caps = RTCRtpReceiver.getCapabilities(kind).codecs
    order = VIDEO_PREFERENCE if kind == "video" else AUDIO_PREFERENCE
    chosen = [c for mime in order for c in caps if c.mimeType.lower() == mime]
    return chosen + [c for c in caps if c.mimeType.lower() == f"{kind}/rtx"]


def new_peer() -> RTCPeerConnection:
    """A peer connection for the closed network: no STUN or TURN servers, host candidates only; every track on
    one transport (a viewer receives many places' tracks)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class HubClosed(RuntimeError):
    """The hub is shutting down and takes no new participants."""


class RenegotiationRefused(ValueError):
    """A new offer this publication cannot take; the client reconnects instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _ice_ufrags(sdp: str) -> set[str]:
    return {line.split(":", 1)[1].strip() for line in sdp.splitlines() if line.startswith("a=ice-ufrag:")}


@dataclass
class _Session:
    public_id: str
    channels: dict[str, PlaceChannel] = field(default_factory=dict)
    health: dict[str, health_mod.PlaceHealth] = field(default_factory=dict)
    publications: dict[str, "Publication"] = field(default_factory=dict)
    viewers: set["Viewer"] = field(default_factory=set)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)


class Publication:
    """One publisher connection at one place: its tracks received as packets, recorded, relayed, watched."""

    def __init__(self, hub: "MediaHub", grant: PublishGrant, pc: RTCPeerConnection, number: int) -> None:
        self.hub, self.grant, self.pc, self.number = hub, grant, pc, number
        self.place = grant.place.public_id
        self.tracks: dict[str, tuple] = {}  # kind -> (track, receiver)
        self.mimes: dict[str, str] = {}
        self.recorder: PlaceRecorder | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()
        self._stopping = False
        self.packets = {"video": 0, "audio": 0}
        self.ended_by: str | None = None  # "session_not_live" when the hub ended it because the session is over

    @property
    def closed(self) -> asyncio.Event:
        return self._stopped

    async def request_keyframe(self) -> bool:
        entry = self.tracks.get("video")
        if entry is None:
            return False
        try:
            return await passthrough.request_keyframe(entry[1])
        except Exception:  # noqa: BLE001 - a closing transport refuses; nothing to ask then
            return False

    def _recorder(self, seq_from: int = 0) -> PlaceRecorder:
        ref = PublicationRef(self.grant.session_id, self.grant.session_public_id, self.grant.place.id, self.place,
                             self.grant.user_id, self.grant.user_public_id, self.number)
        recorder = PlaceRecorder(sessions=self.hub.sessions, storage=self.hub.storage, ref=ref,
                                 kinds=set(self.tracks), mimes=self.mimes, segment_s=self.hub.config.segment_s,
                                 request_keyframe=self.request_keyframe, seq_from=seq_from,
                                 recorder_id=self.hub.recorder_id)
        recorder.start()
        return recorder

    def _start(self) -> None:
        st = self.hub._session(self.grant.session_public_id)
        channel = self.hub._channel(st, self.grant.place.public_id)
        health = self.hub._health(st, self.grant.place)
        self.recorder = self._recorder()
        channel.attach(self, self.request_keyframe)
        health.publishing, health.publication, health.expected = True, self.number, True
        if health.last_video is None:
            health.last_video = time.monotonic()  # the watch on its video starts now
        for kind, (track, _receiver) in self.tracks.items():
            self._consume_track(kind, track, channel, health)

    def _consume_track(self, kind: str, track, channel: PlaceChannel, health: health_mod.PlaceHealth) -> None:
        self._tasks.append(asyncio.create_task(self._consume(kind, track, channel, health),
                                               name=f"consume {self.place} {kind}"))

    async def renegotiate(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """A new offer on the same connection: a track added (say, the camera after the microphone). The open
        segment closes and the recording goes on, with every track, in the next segment of this publication.
        aiortc restarts no ICE: a publisher whose network changed reconnects (a new publication)."""
        if self._stopping:
            raise RenegotiationRefused("publication_ended", "the publication has ended")
        current = self.pc.remoteDescription
        if current is not None and _ice_ufrags(offer.sdp) - _ice_ufrags(current.sdp):
            raise RenegotiationRefused("ice_restart_unsupported", "an ICE restart is not supported: reconnect (a new "
                                       "connection starts a new publication)")
        before = set(self.tracks)
        await self.pc.setRemoteDescription(offer)
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind in ("audio", "video") and transceiver.currentDirection is None:
                transceiver.setCodecPreferences(_prefer(transceiver.kind))
                transceiver.direction = "recvonly"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        added = set(self.tracks) - before
        if added:
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind in added and transceiver._codecs:
                    self.mimes[transceiver.kind] = transceiver._codecs[0].mimeType
            st = self.hub._session(self.grant.session_public_id)
            channel, health = self.hub._channel(st, self.place), self.hub._health(st, self.grant.place)
            old = self.recorder
            if old is not None:
                await old.stop()  # its open segment closes and plays
            self.recorder = self._recorder(seq_from=old.segments_opened if old else 0)
            for kind in sorted(added):
                self._consume_track(kind, self.tracks[kind][0], channel, health)
            self.hub._spawn(self.request_keyframe())
            log.info("place %s of %s: publication %d renegotiated, now %s", self.place,
                     self.grant.session_public_id, self.number, ", ".join(sorted(self.mimes.values())))
        return self.pc.localDescription

    async def _consume(self, kind: str, track, channel: PlaceChannel, health: health_mod.PlaceHealth) -> None:
        try:
            while True:
                packet = await track.recv()
                data = bytes(packet)
                clock = packet.time_base.denominator // max(1, packet.time_base.numerator)
                self.packets[kind] += 1
                self.recorder.push(kind, packet.pts, clock, data, packet.is_keyframe)
                if health.on_packet(kind, len(data)):
                    self.hub._spawn(self.hub._restored(health))
                channel.push(self, kind, packet)
        except MediaStreamError:
            pass  # the publisher's track ended
        finally:
            if not self._stopping:
                self.hub._spawn(self.stop())

    async def stop(self) -> None:
        """Stop receiving, close the open segment (it plays), and close the connection. Idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            st = self.hub._sessions_by_id.get(self.grant.session_public_id)
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()
            await asyncio.gather(*(t for t in self._tasks if t is not asyncio.current_task()),
                                 return_exceptions=True)
            if self.recorder is not None:
                await self.recorder.stop()
            await self.pc.close()
            if st is not None:
                channel = st.channels.get(self.place)
                if channel is not None:
                    channel.detach(self)
                if st.publications.get(self.place) is self:
                    del st.publications[self.place]
                    st.health[self.place].publishing = False
        finally:
            self._stopped.set()


class Viewer:
    """One receiving connection: relay tracks of the granted places; events pushed to `events`."""

    def __init__(self, hub: "MediaHub", grant: ViewGrant, pc: RTCPeerConnection) -> None:
        self.hub, self.grant, self.pc = hub, grant, pc
        self.tracks: list[RelayTrack] = []
        self.places: dict[str, dict] = {}  # place -> {"label", "video": mid, "audio": mid}
        self.offer: RTCSessionDescription | None = None
        self.events: asyncio.Queue = asyncio.Queue()
        self._closed = False
        self.closed = asyncio.Event()
        self.ended_by: str | None = None

    def notify(self, event: dict) -> None:
        if not self._closed:
            self.events.put_nowait(event)

    async def accept(self, answer: RTCSessionDescription) -> None:
        await self.pc.setRemoteDescription(answer)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        st = self.hub._sessions_by_id.get(self.grant.session_public_id)
        if st is not None:
            st.viewers.discard(self)
        for track in self.tracks:
            track.stop()
        try:
            await self.pc.close()
        finally:
            self.closed.set()


class MediaHub:
    """Everything live in the media plane of this process."""

    def __init__(self, *, sessions: async_sessionmaker, config: MediaConfig, storage: Storage | None = None,
                 recorder_id: str = recovery.WEB_RECORDER) -> None:
        passthrough.install()
        self.sessions, self.config = sessions, config
        self.recorder_id = recorder_id  # media_segment.recorder of the segments this hub records
        self.storage = storage or Storage(config.root)
        self._sessions_by_id: dict[str, _Session] = {}
        self._tasks: set[asyncio.Task] = set()
        self._watchdog: asyncio.Task | None = None
        self._closing = False
        self._lease = None  # the web lease's connection (recovery.py), held while this hub runs
        self.codec_calls = passthrough.CODEC_CALLS

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Close or mark lost what an earlier run of the web process left open (recovery.py), then watch. A
        media worker recovers dead workers' segments as it beats instead (worker_routes.py)."""
        if self.recorder_id == recovery.WEB_RECORDER:
            self._lease = await recovery.take_web_lease(self.sessions)
            if self._lease is None:
                log.warning("another web process holds the media recording lease: nothing recovered")
            else:
                await recovery.recover(self.sessions, self.storage, recorder=self.recorder_id)
                if not self.config.workers:  # then nothing else writes this store's temporary files
                    await asyncio.to_thread(self.storage.sweep_temp, stale_after_s=0)
        self._watchdog = asyncio.create_task(self._watch(), name="media watchdog")

    async def close(self) -> None:
        """Stop the consumers and close every segment (publications), then the viewers and the peers."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        pubs = [p for st in self._sessions_by_id.values() for p in st.publications.values()]
        await asyncio.gather(*(p.stop() for p in pubs), return_exceptions=True)
        viewers = [v for st in self._sessions_by_id.values() for v in st.viewers]
        await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
        for st in self._sessions_by_id.values():
            for channel in st.channels.values():
                channel.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._lease is not None:
            await recovery.release_web_lease(self._lease)
            self._lease = None

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _session(self, public_id: str) -> _Session:
        return self._sessions_by_id.setdefault(public_id, _Session(public_id))

    def _channel(self, st: _Session, place: str) -> PlaceChannel:
        if place not in st.channels:
            st.channels[place] = PlaceChannel(st.public_id, place, relay_queue=self.config.relay_queue)
        return st.channels[place]

    def _health(self, st: _Session, place) -> health_mod.PlaceHealth:
        if place.public_id not in st.health:
            st.health[place.public_id] = health_mod.PlaceHealth(st.public_id, place.public_id, place.label)
        return st.health[place.public_id]

    # -- publishing ---------------------------------------------------------------------------------------
    async def publish(self, grant: PublishGrant, offer: RTCSessionDescription) -> tuple[RTCSessionDescription,
                                                                                          Publication]:
        """Answer a place publisher's offer; a publication already running at the place is stopped first (its
        open segment closes), and this one starts a new publication."""
        if self._closing:
            raise HubClosed("the media hub is shutting down")
        st = self._session(grant.session_public_id)
        lock = st.locks.setdefault(grant.place.public_id, asyncio.Lock())
        async with lock:
            old = st.publications.get(grant.place.public_id)
            if old is not None:
                await old.stop()
            number = await next_publication(self.sessions, grant.session_id, grant.place.id)
            pc = new_peer()
            pub = Publication(self, grant, pc, number)

            @pc.on("track")
            def on_track(track) -> None:
                receiver = passthrough.receiver_of(pc, track)
                if receiver is None or track.kind not in ("audio", "video") or track.kind in pub.tracks:
                    return
                passthrough.mark_passthrough(receiver)
                pub.tracks[track.kind] = (track, receiver)

            @pc.on("connectionstatechange")
            async def on_state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    self._spawn(pub.stop())

            try:
                await pc.setRemoteDescription(offer)
                for transceiver in pc.getTransceivers():
                    if transceiver.kind in ("audio", "video"):
                        transceiver.setCodecPreferences(_prefer(transceiver.kind))
                        transceiver.direction = "recvonly"
                await pc.setLocalDescription(await pc.createAnswer())
                passthrough.widen_receive_buffers(pc)
            except Exception:
                await pc.close()
                raise
            for transceiver in pc.getTransceivers():
                if transceiver.kind in pub.tracks and transceiver._codecs:
                    pub.mimes[transceiver.kind] = transceiver._codecs[0].mimeType
            if not pub.tracks:
                await pc.close()
                raise ValueError("the offer sends no audio or video")
            st.publications[grant.place.public_id] = pub
            pub._start()
            log.info("place %s of %s publishing (publication %d: %s)", grant.place.public_id,
                     grant.session_public_id, number, ", ".join(sorted(pub.mimes.values())))
            return pc.localDescription, pub

    def publication(self, session_public_id: str, place_public_id: str) -> Publication | None:
        st = self._sessions_by_id.get(session_public_id)
        return st.publications.get(place_public_id) if st else None

    # -- viewing ------------------------------------------------------------------------------------------
    async def view(self, grant: ViewGrant) -> Viewer:
        """A receive-only connection with a video and an audio track for each granted place; the server makes
        the offer (viewer.offer, with viewer.places mapping each place to its mids) and the client answers."""
        if self._closing:
            raise HubClosed("the media hub is shutting down")
        st = self._session(grant.session_public_id)
        pc = new_peer()
        viewer = Viewer(self, grant, pc)
        mids: list[tuple[str, str, object]] = []
        for place in grant.places:
            channel = self._channel(st, place.public_id)
            self._health(st, place)
            for kind in ("video", "audio"):
                track = channel.subscribe(kind)
                viewer.tracks.append(track)
                transceiver = pc.addTransceiver(track, direction="sendonly")
                transceiver.setCodecPreferences(_prefer(kind))
                passthrough.forward_picture_loss(transceiver.sender, track.picture_lost)
                mids.append((place.public_id, kind, transceiver))
            viewer.places[place.public_id] = {"label": place.label, "member": place.member_public_id,
                                              "camera": place.camera}

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._spawn(viewer.close())

        await pc.setLocalDescription(await pc.createOffer())
        for place, kind, transceiver in mids:
            viewer.places[place][kind] = transceiver.mid
        viewer.offer = pc.localDescription
        st.viewers.add(viewer)
        return viewer

    # -- the chair's mute, stats and events ------------------------------------------------------------------
    def set_muted(self, session_public_id: str, place_public_id: str, muted: bool, *, by: str | None = None) -> None:
        st = self._session(session_public_id)
        self._channel(st, place_public_id).muted = muted
        self.broadcast(session_public_id, {"type": "event", "event": "muted" if muted else "unmuted",
                                           "place": place_public_id, "by": by}, roles=("supervisor", "member"))

    def stats(self, session_public_id: str) -> list[dict]:
        st = self._sessions_by_id.get(session_public_id)
        if st is None:
            return []
        out = []
        for place, h in sorted(st.health.items()):
            row = h.stats()
            channel = st.channels.get(place)
            row["muted"] = bool(channel and channel.muted)
            row["viewers"] = channel.viewers() if channel else 0
            # pictures the viewers lost and reported, and how many key frames that asked of the publisher
            row["viewer_picture_losses"] = channel.viewer_picture_losses if channel else 0
            row["viewer_keyframe_asks"] = channel.viewer_keyframe_asks if channel else 0
            out.append(row)
        return out

    def broadcast(self, session_public_id: str, event: dict, roles: tuple[str, ...] = ("supervisor",)) -> None:
        st = self._sessions_by_id.get(session_public_id)
        for viewer in tuple(st.viewers if st else ()):
            if viewer.grant.role in roles:
                viewer.notify(event)

    # -- the watch on every place's video ---------------------------------------------------------------------
    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.watchdog_s)
            try:
                await self._check()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watch goes on
                log.exception("media health check failed")

    async def _over(self) -> dict[str, str]:
        """The sessions this hub serves that are over (closed or aborted), with their status."""
        ids = list(self._sessions_by_id)
        if not ids:
            return {}
        async with self.sessions() as session:
            rows = (await session.execute(select(EvaluationSession.public_id, EvaluationSession.status).where(
                EvaluationSession.public_id.in_(ids),
                EvaluationSession.status.in_([str(s) for s in TERMINAL_SESSION_STATES])))).all()
        return {public_id: status for public_id, status in rows}

    async def end_session(self, session_public_id: str, status: str) -> None:
        """A session is over: stop watching its places (no "place video lost" after its end), end its
        publications (closing their open segments) and its viewers, and forget it."""
        st = self._sessions_by_id.pop(session_public_id, None)
        if st is None:
            return
        for h in st.health.values():
            h.expected = False
        event = {"type": "event", "event": "session_over", "session": session_public_id, "status": status}
        for viewer in tuple(st.viewers):
            viewer.notify(event)
            viewer.ended_by = "session_not_live"
        for pub in tuple(st.publications.values()):
            pub.ended_by = "session_not_live"
        await asyncio.gather(*(p.stop() for p in tuple(st.publications.values())), return_exceptions=True)
        await asyncio.gather(*(v.close() for v in tuple(st.viewers)), return_exceptions=True)
        for channel in st.channels.values():
            channel.close()
        log.info("session %s is %s: its media plane is closed", session_public_id, status)

    async def _check(self) -> None:
        for public_id, status in (await self._over()).items():
            await self.end_session(public_id, status)
        now = time.monotonic()
        for st in list(self._sessions_by_id.values()):
            for place, h in list(st.health.items()):
                pub = st.publications.get(place)
                if pub is not None and "video" in pub.tracks:
                    try:
                        report = await pub.tracks["video"][1].getStats()
                        h.packets_lost = sum(getattr(s, "packetsLost", 0) or 0 for s in report.values()
                                             if getattr(s, "type", "") == "inbound-rtp")
                    except Exception:  # noqa: BLE001 - stats of a closing connection
                        pass
                if not h.expected or h.last_video is None:
                    continue
                silent = now - h.last_video
                if not h.lost and silent > self.config.video_lost_s:
                    h.lost, h.lost_since, h.fault_reported = True, h.last_video, False
                    async with self.sessions() as session, session.begin():
                        payload = await health_mod.record_lost(session, h, silent_s=silent)
                    if payload is None:   # the session ended since this round asked; the next round ends it here
                        h.expected = False
                        continue
                    self.broadcast(st.public_id, {"type": "event", "event": "place_video_lost", **payload})
                    log.warning("place %s of %s: video lost", place, st.public_id)
                elif h.lost and not h.fault_reported and silent > self.config.fault_after_s:
                    h.fault_reported = True
                    async with self.sessions() as session, session.begin():
                        status = await health_mod.report_fault(session, h, lost_for_s=silent)
                    if status is not None:
                        self.broadcast(st.public_id, {"type": "event", "event": "place_video_fault", "place": place,
                                                      "session_status": status}, roles=("supervisor", "member"))

    async def _restored(self, h: health_mod.PlaceHealth) -> None:
        if not h.lost:
            return
        h.lost = False
        lost_for = time.monotonic() - (h.lost_since or time.monotonic())
        async with self.sessions() as session, session.begin():
            payload = await health_mod.record_restored(session, h, lost_for_s=lost_for)
        self.broadcast(h.session_public_id, {"type": "event", "event": "place_video_restored", **payload})

    def watching(self, session_public_id: str, role: str = "supervisor") -> int:
        st = self._sessions_by_id.get(session_public_id)
        return sum(1 for v in (st.viewers if st else ()) if v.grant.role == role)


EventSink = Callable[[dict], None]
