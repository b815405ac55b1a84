"""Media plane benchmark: how many tracks and sessions one pinned core records and relays, against stock aiortc.

The server is `bidroom serve` in its own process pinned to one core with `taskset` (core 1); the clients (aiortc
publishers and viewers) run in client processes of their own pinned to the other core: the supervisors' viewers in
one, the members' conference viewers in another, the publishers split over `--publisher-procs` (2). Publishers send a pre-encoded VP8 640×480
15 fps + Opus file through `MediaPlayer(decode=False)` (no encoding on the client); viewers receive through the
media plane's passthrough receiver (no decoding on the client).

1. Tracks per core: N places, each recorded and relayed to one supervisor watching them all. For growing N the
   server's CPU (utime + stime of its process over a steady window, as a share of the pinned core), the video
   loss at the viewer and the completeness of every recording are measured; "tracks per core" is the largest
   2·N (audio + video) with CPU < 80 %, loss < 1 % and every recording complete (≥ 99 % of the frames sent,
   every file demuxes).
2. Sessions per core: S sessions of 5 members conferencing (each receives the other 4) plus 1 supervisor
   watching all 5, every place recorded; the largest S under the same limits.
3. Baseline: stock aiortc (its decoder and `MediaRecorder`, which re-encodes) recording one place in a process
   pinned the same way; its CPU per track against ours gives the ratio, twice: against ours recording and
   relaying (the tracks-per-core steps), and against ours doing the baseline's work alone (`--record-only` N
   places recorded, nobody watching).
4. Glass-to-glass latency on loopback: from the moment a publisher's track hands a frame to its sender to the
   moment the viewer's track yields the same frame (matched by RTP timestamp offset), p50 and p95.

5. A/B (optional): `--compare-root DIR` (another checkout, same schema) or `--compare-env BIDROOM_X=V` starts a
   second server on the same core, and the recorded-only step runs on the two in alternating order for
   `--compare-rounds` rounds; the median of the per-round ratios shows a change of a few per cent that the drift
   between separate runs (±20 % on the shared machine) would hide.

    .venv/bin/python bench/media.py [--places 2,4,8,12,16] [--sessions 1,2,3] [--seconds 12]
    .venv/bin/python bench/media.py --places 2 --sessions 1 --record-only 24 --compare-root ../before
"""
from __future__ import annotations

import argparse
import asyncio
import fractions
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import av  # noqa: E402

CLIP_SECONDS = 40
CLIP = Path(tempfile.gettempdir()) / f"bidroom-bench-vp8-640x480-15fps-{CLIP_SECONDS}s.webm"
FPS = 15
SERVER_CORE, CLIENT_CORE = 1, 0
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the pre-encoded clip -------------------------------------------------------------------------------------

def make_clip(path: Path = CLIP) -> Path:
    """VP8 640×480 15 fps (~600 kbit/s: a moving bar over a noisy patch, a key frame every 2 s) + Opus 48 kHz
    mono, encoded once and cached."""
    if path.exists():
        return path
    width, height = 640, 480
    out = path.with_suffix(".part")
    container = av.open(str(out), mode="w", format="webm")
    video = container.add_stream("libvpx", rate=FPS)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.bit_rate = 600_000
    video.gop_size = 2 * FPS
    audio = container.add_stream("libopus", rate=48000)
    audio.layout = "mono"
    audio.bit_rate = 32_000
    chroma = b"\x80" * (width * height // 4)
    for i in range(CLIP_SECONDS * FPS):
        frame = av.VideoFrame(width, height, "yuv420p")
        bar = (i * 9) % (width - 40)
        row = b"\x50" * bar + b"\xe0" * 40 + b"\x50" * (width - bar - 40)
        luma = bytearray(row * height)
        noise = os.urandom(160 * 120)
        for y in range(120):
            luma[(180 + y) * width + 240:(180 + y) * width + 400] = noise[y * 160:(y + 1) * 160]
        for plane, data in zip(frame.planes, (bytes(luma), chroma, chroma)):
            if plane.line_size != plane.width:
                padded = bytearray(plane.line_size * plane.height)
                for y in range(plane.height):
                    padded[y * plane.line_size:y * plane.line_size + plane.width] = \
                        data[y * plane.width:(y + 1) * plane.width]
                data = bytes(padded)
            plane.update(data)
        frame.pts, frame.time_base = i, fractions.Fraction(1, FPS)
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    samples = 960
    import array
    import math
    for i in range(CLIP_SECONDS * 48000 // samples):
        pcm = array.array("h", (int(6000 * math.sin(2 * math.pi * 330 * (n + i * samples) / 48000))
                                for n in range(samples)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * samples, fractions.Fraction(1, 48000)
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)
    container.close()
    out.rename(path)
    return path


# ---- database, data and tokens --------------------------------------------------------------------------------

@dataclass
class Place:
    public_id: str
    member_user: str  # public id of the member placed there
    token: str


@dataclass
class BenchSession:
    public_id: str
    places: list[Place]
    members: list[Place]  # the same members, for conferencing


@dataclass
class World:
    db_url: str
    data_dir: Path
    supervisor_token: str
    sessions: list[BenchSession] = field(default_factory=list)


async def build_world(db_url: str, data_dir: Path, *, shapes: list[int]) -> World:
    """One tender and supervisor; one in-progress session per entry of `shapes` with that many checked-in
    members, each at a place of the session's own room. Made with the ORM (the flows that lead here are tested
    elsewhere), tokens signed with the server's own key."""
    from core.db import create_engine, session_factory
    from core.identity_models import Organisation, User
    from core.ids import public_id
    from core.keys import load_or_create_ed25519
    from core.tokens import TokenIssuer
    from evaluation.models import EvaluationMember, EvaluationSession, Place as PlaceRow, Room, RoomBooking, Site
    from trading.models import Lot, Tender

    issuer = TokenIssuer(load_or_create_ed25519(data_dir / "keys" / "access_token_ed25519.pem"),
                         issuer="bidroom", audience="bidroom-api", ttl_s=24 * 3600)
    engine = create_engine(db_url, pool_size=2)
    sessions = session_factory(engine)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    n = 0

    def user(org: Organisation, role: str) -> User:
        nonlocal n
        n += 1
        return User(public_id=public_id("U"), organisation_id=org.id, username=f"bench{n}-{os.getpid()}",
                    display_name=f"bench {role} {n}", password_hash="!", roles=[role])

    async with sessions() as session, session.begin():
        tenderer = Organisation(public_id=public_id("O"), name="基准测试招标人", social_credit_code=None)
        supervising = Organisation(public_id=public_id("O"), name="基准测试监督局", social_credit_code=None,
                                   kind="government")
        session.add_all([tenderer, supervising])
        await session.flush()
        agent, supervisor = user(tenderer, "agent"), user(supervising, "supervisor")
        session.add_all([agent, supervisor])
        await session.flush()
        site = Site(public_id=public_id("ST"), name="基准测试交易中心", region_code="440100")
        session.add(site)
        await session.flush()
        world = World(db_url, data_dir, issuer.issue(sub=supervisor.public_id, roles=["supervisor"],
                                                     org=supervising.public_id))
        for k, size in enumerate(shapes):
            tender = Tender(code=f"BM-2026-FJSZ-{os.getpid() % 10000:04d}{k:03d}", title="基准测试", family="FJSZ",
                            subtype="FJSZ-SG", method="open", region_code="GZ", status="evaluating",
                            tenderer_id=tenderer.id, supervisor_organisation_id=supervising.id,
                            created_by_id=agent.id, budget=Decimal("1000000.00"))
            session.add(tender)
            await session.flush()
            lot = Lot(public_id=f"{tender.code}-L01", tender_id=tender.id, lot_no=1, title="第一标段",
                      budget=Decimal("1000000.00"))
            room = Room(public_id=public_id("RM"), site_id=site.id, name=f"评标室{k + 1}", capacity=size)
            session.add_all([lot, room])
            await session.flush()
            es = EvaluationSession(public_id=public_id("ES", 8), tender_id=tender.id, lot_id=lot.id,
                                   status="in_progress", created_by_id=agent.id, started_at=start)
            session.add(es)
            await session.flush()
            session.add(RoomBooking(public_id=public_id("BK", 8), room_id=room.id, starts_at=start,
                                    ends_at=start + timedelta(hours=12), tender_id=tender.id, lot_id=lot.id,
                                    evaluation_session_id=es.id, venue_role="main", label="基准测试",
                                    booked_by_id=agent.id))
            places = []
            for i in range(size):
                row = PlaceRow(public_id=public_id("PL"), room_id=room.id, label=f"A-{i + 1:02d}")
                member_user = user(tenderer, "agent")
                session.add_all([row, member_user])
                await session.flush()
                session.add(EvaluationMember(public_id=public_id("EM", 8), session_id=es.id, kind="representative",
                                             user_id=member_user.id, place_id=row.id, status="checked_in",
                                             checked_in_at=start))
                places.append(Place(row.public_id, member_user.public_id,
                                    issuer.issue(sub=member_user.public_id, roles=["agent"],
                                                 org=tenderer.public_id)))
            world.sessions.append(BenchSession(es.public_id, places, places))
    await engine.dispose()
    return world


# ---- processes and CPU ----------------------------------------------------------------------------------------

def cpu_split(pid: int) -> tuple[float, float]:
    """utime and stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    return sum(cpu_split(pid))


class Server:
    """`bidroom serve` pinned to one core."""

    def __init__(self, world: World, port: int, core: int, extra_env: dict[str, str] | None = None,
                 root: Path = ROOT) -> None:
        env = {**os.environ, "BIDROOM_DATABASE_URL": world.db_url, "BIDROOM_DATA_DIR": str(world.data_dir),
               "BIDROOM_PORT": str(port), "BIDROOM_LOG_FORMAT": "text", "BIDROOM_STATUTORY_PERIODS": "off",
               "PYTHONPATH": str(root), **(extra_env or {})}
        self.log = open(world.data_dir / f"server-{port}.log", "wb")
        self.proc = subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-m", "web.cli", "serve",
                                      "--port", str(port)], cwd=root, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: see {self.log.name}")
                try:
                    async with http.get(self.base + "/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("server did not get ready")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---- clients --------------------------------------------------------------------------------------------------

class Sent:
    """Send times of each video frame, by its offset from the first (ms)."""

    def __init__(self) -> None:
        self.first_pts: int | None = None
        self.times: dict[int, float] = {}
        self.frames = 0


def counting_track(inner, sent: Sent | None):
    from aiortc.mediastreams import MediaStreamTrack

    class Counting(MediaStreamTrack):
        kind = inner.kind

        async def recv(self):
            packet = await inner.recv()
            if sent is not None:
                now = time.time()
                if sent.first_pts is None:
                    sent.first_pts = packet.pts
                offset_ms = round((packet.pts - sent.first_pts) * packet.time_base * 1000)
                sent.times[offset_ms] = now
                sent.frames += 1
            return packet

        def stop(self):
            super().stop()
            inner.stop()
    return Counting()


async def signal_ws(http: aiohttp.ClientSession, url: str, token: str):
    ws = await http.ws_connect(url, max_msg_size=1 << 22)
    await ws.send_json({"type": "auth", "token": token})
    return ws


async def next_of(ws, kind: str, timeout: float = 60) -> dict:
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"socket closed while waiting for {kind}: {msg.type} {msg.data} {msg.extra}")
        data = json.loads(msg.data)
        if data["type"] == kind:
            return data
        if data["type"] == "error":
            raise RuntimeError(f"{data['code']}: {data['message']}")


class Publisher:
    def __init__(self, base_ws: str, session: str, place: Place) -> None:
        self.url = f"{base_ws}/api/v1/media/sessions/{session}/places/{place.public_id}/publish"
        self.place, self.sent = place, Sent()
        self.pc = self.ws = self.player = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
        from aiortc.contrib.media import MediaPlayer

        self.ws = await signal_ws(http, self.url, self.place.token)
        await next_of(self.ws, "ready")
        self.player = MediaPlayer(str(CLIP), decode=False)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        video = self.pc.addTransceiver(counting_track(self.player.video, self.sent), direction="sendonly")
        video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                   if c.mimeType.lower() in ("video/vp8", "video/rtx")])
        self.pc.addTransceiver(counting_track(self.player.audio, None), direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.ws.send_json({"type": "offer", "sdp": self.pc.localDescription.sdp})
        answer = await next_of(self.ws, "answer")
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def stop(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None:
            await self.ws.close()


class Viewer:
    """A receive-only participant (a supervisor watching, or a member conferring) that never decodes."""

    def __init__(self, url: str, token: str, timed: bool = False) -> None:
        self.url, self.token, self.timed = url, token, timed
        self.frames: dict[str, int] = {}
        self.received: dict[str, set[int]] = {}  # place -> offsets (ms from the first frame) received
        self.recv_times: dict[str, dict[int, float]] = {}  # place -> offset -> when it was received
        self.pc = self.ws = None
        self._tasks: list[asyncio.Task] = []

    async def start(self, http: aiohttp.ClientSession) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        from evaluation.media import passthrough

        self.ws = await signal_ws(http, self.url, self.token)
        offer = await next_of(self.ws, "offer")
        video_mids = {info["video"]: place for place, info in offer["places"].items()}
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @self.pc.on("track")
        def on_track(track) -> None:
            receiver = passthrough.receiver_of(self.pc, track)
            passthrough.mark_passthrough(receiver)
            mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver is receiver)
            place = video_mids.get(mid)
            self._tasks.append(asyncio.create_task(self._drain(track, place)))

        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.ws.send_json({"type": "answer", "sdp": self.pc.localDescription.sdp})

    async def _drain(self, track, place: str | None) -> None:
        first = None
        try:
            while True:
                packet = await track.recv()
                if place is None:
                    continue  # audio
                now = time.time()
                self.frames[place] = self.frames.get(place, 0) + 1
                if not self.timed:
                    continue
                if first is None:
                    first = packet.pts
                offset = round((packet.pts - first) * packet.time_base * 1000)
                self.received.setdefault(place, set()).add(offset)
                self.recv_times.setdefault(place, {})[offset] = now
        except Exception:  # noqa: BLE001 - the track ended
            return

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None:
            await self.ws.close()


# ---- one measured step ----------------------------------------------------------------------------------------

@dataclass
class Step:
    label: str
    tracks_in: int
    cpu: float
    client_cpu: float
    loss: float
    recorded: float
    complete: bool
    latencies_ms: list[float]
    cpu_sys: float = 0.0  # the kernel's part of `cpu` (stime)

    def ok(self) -> bool:
        return self.cpu < 0.80 and self.loss < 0.01 and self.complete


async def recordings_of(world: World, session_ids: list[str]) -> dict[str, tuple[int, int]]:
    """place -> (video frames recorded in closed segments, packets demuxed from their files)."""
    import asyncpg

    from core.db import asyncpg_dsn
    conn = await asyncpg.connect(**asyncpg_dsn(world.db_url))
    try:
        rows = await conn.fetch(
            "SELECT p.public_id AS place, g.video_frames, g.storage_key, g.ended_at FROM media_segment g "
            "JOIN venue_place p ON p.id = g.place_id JOIN evaluation_session s ON s.id = g.session_id "
            "WHERE s.public_id = ANY($1)", session_ids)
    finally:
        await conn.close()
    out: dict[str, tuple[int, int]] = {}
    for r in rows:
        frames, demuxed = out.get(r["place"], (0, 0))
        if r["ended_at"] is None:
            out[r["place"]] = (frames, demuxed - 10 ** 9)  # still open: incomplete
            continue
        with av.open(str(world.data_dir / "media" / r["storage_key"])) as container:
            packets = sum(1 for p in container.demux(container.streams.video[0]) if p.size)
        out[r["place"]] = (frames + (r["video_frames"] or 0), demuxed + packets)
    return out


def client_process(conn, role: str, base_ws: str, items: list) -> None:
    """One client process pinned to the client core: `role` "publishers" (items: (session id, Place)) or
    "viewers" (items: (url, token, timed)). It connects its peers, says ready, runs until told to stop, and sends
    back what it sent or received."""
    os.sched_setaffinity(0, {CLIENT_CORE})
    asyncio.run(_client_main(conn, role, base_ws, items))


async def _client_main(conn, role: str, base_ws: str, items: list) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        if role == "publishers":
            peers = [Publisher(base_ws, session_id, place) for session_id, place in items]
            await asyncio.gather(*(p.start(http) for p in peers))
        else:
            peers = [Viewer(url, token, timed) for url, token, timed in items]
            for v in peers:
                await v.start(http)
        conn.send(("ready", os.getpid()))
        await loop.run_in_executor(None, conn.recv)
        stopped_at = time.time()
        for p in peers:
            await p.stop()
    if role == "publishers":
        conn.send({"stopped_at": stopped_at,
                   "sent": {p.place.public_id: (p.sent.times, p.sent.frames) for p in peers}})
    else:
        conn.send([{"received": v.received, "recv_times": v.recv_times} for v in peers])
    conn.close()


class Clients:
    """Client processes started for one step (spawned: each imports aiortc afresh, nothing shared)."""

    def __init__(self) -> None:
        import multiprocessing
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[tuple[object, object]] = []

    async def start(self, role: str, base_ws: str, items: list) -> tuple[object, int]:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=client_process, args=(child, role, base_ws, items), daemon=True)
        proc.start()
        self.procs.append((proc, parent))
        ready, pid = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        assert ready == "ready"
        return parent, pid

    @staticmethod
    async def stop(conn) -> object:
        conn.send("stop")
        return await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    def join(self) -> None:
        for proc, _ in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def chunks(items: list, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    return [items[i::n] for i in range(n)]


async def run_step(server: Server, world: World, sessions: list[BenchSession], *, conference: bool,
                   seconds: float, label: str, publisher_procs: int, watched: bool = True) -> Step:
    """One step with the clients in processes of their own on the client core: the supervisors' viewers in one,
    the members' conference viewers in another, the publishers split over `publisher_procs`, so that no one
    Python event loop carries every peer. `watched` False: nobody watches, the places are only recorded (the
    stock baseline's work); loss is then not measured (0) and there is no latency."""
    base_ws = server.base.replace("http://", "ws://")
    places = [(s.public_id, p) for s in sessions for p in s.places]
    clients = Clients()
    try:
        watchers = [(f"{base_ws}/api/v1/media/sessions/{s.public_id}/watch", world.supervisor_token, True)
                    for s in sessions]
        viewer_conns = [await clients.start("viewers", base_ws, watchers)] if watched else []
        if conference:
            members = [(f"{base_ws}/api/v1/media/sessions/{s.public_id}/conference", m.token, False)
                       for s in sessions for m in s.members]
            viewer_conns.append(await clients.start("viewers", base_ws, members))
        publisher_conns = await asyncio.gather(*(clients.start("publishers", base_ws, part)
                                                 for part in chunks(places, publisher_procs)))
        client_pids = [pid for _, pid in (*viewer_conns, *publisher_conns)]
        await asyncio.sleep(3)  # connected, key frames through
        clients_cpu = lambda: sum(cpu_seconds(pid) for pid in client_pids)  # noqa: E731
        (user0, sys0), mine0, t0 = cpu_split(server.proc.pid), clients_cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        user1, sys1 = cpu_split(server.proc.pid)
        cpu, cpu_sys = (user1 + sys1 - user0 - sys0) / elapsed, (sys1 - sys0) / elapsed
        client_cpu = (clients_cpu() - mine0) / elapsed
        await asyncio.sleep(1)
        published = await asyncio.gather(*(clients.stop(conn) for conn, _ in publisher_conns))
        await asyncio.sleep(2)  # the last packets reach the viewers and the recorders
        watched_by = [await clients.stop(conn) for conn, _ in viewer_conns]
    finally:
        clients.join()
    stopped_at = min(p["stopped_at"] for p in published)
    sent_by_place = {place: Sent() for part in published for place in part["sent"]}
    for part in published:
        for place, (times, frames) in part["sent"].items():
            sent_by_place[place].times, sent_by_place[place].frames = times, frames
    supervisors = watched_by[0] if watched_by else []
    # video loss at the supervisors: the frames sent from the first one a viewer got (a viewer starts at a key
    # frame) until half a second before the publishers stopped (later ones were still in flight)
    expected = got = 0
    seen = set()
    for v in supervisors:
        for place, received in v["received"].items():
            seen.add(place)
            first = min(received)
            window = {o for o, t in sent_by_place[place].times.items() if o >= first and t <= stopped_at - 0.5}
            expected, got = expected + len(window), got + len(window & received)
    if watched:
        expected += sum(len(sent.times) for place, sent in sent_by_place.items() if place not in seen)
    loss = (1 - got / expected if expected else 1.0) if watched else 0.0
    latencies = [(at - sent_by_place[place].times[offset]) * 1000 for v in supervisors
                 for place, times in v["recv_times"].items() for offset, at in times.items()
                 if offset in sent_by_place[place].times]
    sent = sum(s.frames for s in sent_by_place.values())
    # the recorders close their segments as the publications end
    recorded = {}
    for _ in range(60):
        recorded = await recordings_of(world, [s.public_id for s in sessions])
        if len(recorded) == len(places) and all(d >= 0 for _, d in recorded.values()):
            break
        await asyncio.sleep(0.5)
    complete = len(recorded) == len(places) and all(
        recorded[place][0] >= 0.99 * s.frames and recorded[place][1] >= 0.99 * s.frames
        for place, s in sent_by_place.items())
    share = sum(recorded.get(place, (0, 0))[0] for place in sent_by_place) / max(1, sent)
    return Step(label, 2 * len(places), cpu, client_cpu, loss, share, complete, latencies, cpu_sys)


# ---- stock aiortc baseline ------------------------------------------------------------------------------------

def baseline_server(port: int, out_dir: str) -> None:
    """Stock aiortc: a peer that receives one place (its decoder) and records it with MediaRecorder (which
    re-encodes to VP8/Opus WebM)."""
    from aiohttp import web
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRecorder

    peers = []

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        recorder = MediaRecorder(os.path.join(out_dir, f"stock-{len(peers)}.webm"))
        peers.append((pc, recorder))

        @pc.on("track")
        def on_track(track) -> None:
            recorder.addTrack(track)

        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
        await recorder.start()
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp})

    async def close(app) -> None:
        for pc, recorder in peers:
            await recorder.stop()
            await pc.close()

    app = web.Application()
    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_post("/offer", offer)
    app.router.add_get("/ready", ready)
    app.on_shutdown.append(close)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def run_baseline(world: World, seconds: float) -> tuple[float, int, int]:
    """CPU share of the pinned core that stock aiortc spends recording one place, the video frames sent and the
    video frames its recording holds."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    port = free_port()
    out_dir = tempfile.mkdtemp(prefix="bench-stock-", dir=world.data_dir)
    proc = subprocess.Popen(["taskset", "-c", str(SERVER_CORE), sys.executable, str(Path(__file__).resolve()),
                             "--baseline-server", str(port), "--out", out_dir], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/ready") as resp:
                        await resp.read()
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            player = MediaPlayer(str(CLIP), decode=False)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            sent = Sent()
            video = pc.addTransceiver(counting_track(player.video, sent), direction="sendonly")
            video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                       if c.mimeType.lower() in ("video/vp8", "video/rtx")])
            pc.addTransceiver(player.audio, direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            async with http.post(f"http://127.0.0.1:{port}/offer", json={"sdp": pc.localDescription.sdp}) as resp:
                answer = await resp.json()
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await asyncio.sleep(3)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            await asyncio.sleep(1)
            await pc.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    frames = 0
    for name in os.listdir(out_dir):
        try:
            with av.open(os.path.join(out_dir, name)) as container:
                frames += sum(1 for p in container.demux(container.streams.video[0]) if p.size)
        except (av.FFmpegError, IndexError):
            pass
    return cpu, sent.frames, frames


async def compare(server: Server, world: World, record_only: BenchSession, args) -> None:
    """The recorded-only step on this server and on a second one, started with the `--compare-env` settings or
    from the `--compare-root` checkout (same schema), pinned to the same core, in alternating order for
    `--compare-rounds` rounds: the two are measured under the same conditions, so a difference of a few per cent
    is not lost in the drift between runs."""
    extra = dict(item.split("=", 1) for item in args.compare_env)
    root = Path(args.compare_root).resolve() if args.compare_root else ROOT
    other = Server(world, free_port(), SERVER_CORE, extra, root=root)
    label = " ".join([*args.compare_env, *([f"the code at {root}"] if args.compare_root else [])])
    try:
        await other.ready()
        print(f"\nA/B, {len(record_only.places)} places recorded only, {args.compare_rounds} rounds: "
              f"A = the server as configured, B = with {label}")
        print(f"{'round':>5} {'A CPU':>7} {'A sys':>6} {'B CPU':>7} {'B sys':>6} {'B / A':>6}")
        ratios, cpus = [], {"A": [], "B": []}
        for k in range(args.compare_rounds):
            order = [("A", server), ("B", other)] if k % 2 == 0 else [("B", other), ("A", server)]
            got = {}
            for name, target in order:
                step = await run_step(target, world, [record_only], conference=False, seconds=args.seconds,
                                      label=f"{name} round {k + 1}", publisher_procs=args.publisher_procs,
                                      watched=False)
                got[name] = step.cpu if step.complete else float("nan")
                got[name + " sys"] = step.cpu_sys
                cpus[name].append(got[name])
            ratios.append(got["B"] / got["A"])
            print(f"{k + 1:>5} {got['A']:>6.1%} {got['A sys']:>6.1%} {got['B']:>6.1%} {got['B sys']:>6.1%} "
                  f"{ratios[-1]:>6.2f}")
        print(f"median: A {statistics.median(cpus['A']):.1%}, B {statistics.median(cpus['B']):.1%}, "
              f"B / A {statistics.median(ratios):.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)})")
    finally:
        other.stop()


# ---- main -----------------------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] if data else float("nan")


async def main_async(args, root: Path, db_url: str) -> None:
    data_dir = root / "var"
    (data_dir / "keys").mkdir(parents=True)
    places_steps = [int(x) for x in args.places.split(",")]
    session_steps = [int(x) for x in args.sessions.split(",")]
    shapes = places_steps + [5] * sum(session_steps) + ([args.record_only] if args.record_only else [])
    world = await build_world(db_url, data_dir, shapes=shapes)
    single = world.sessions[:len(places_steps)]
    fives = world.sessions[len(places_steps):len(places_steps) + sum(session_steps)]
    record_only = world.sessions[-1] if args.record_only else None
    port = free_port()
    server = Server(world, port, SERVER_CORE)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}; server pinned to core {SERVER_CORE}, clients to core {CLIENT_CORE}; "
          f"load average {os.getloadavg()[0]:.2f}")
    try:
        await server.ready()
        print(f"\ntracks per core: N places (video + audio), each recorded and relayed to one supervisor; "
              f"{args.seconds:.0f} s steady window")
        print(f"{'tracks':>6} {'server CPU':>10} {'client CPU':>10} {'video loss':>10} {'recorded':>9} "
              f"{'complete':>8} {'g2g p50':>8} {'g2g p95':>8}")
        best_tracks, steps = 0, []
        for es in single:
            step = await run_step(server, world, [es], conference=False, seconds=args.seconds,
                                  label=f"{len(es.places)} places", publisher_procs=args.publisher_procs)
            steps.append(step)
            print(f"{step.tracks_in:>6} {step.cpu:>9.1%} {step.client_cpu:>10.1%} {step.loss:>10.2%} {step.recorded:>9.1%} "
                  f"{'yes' if step.complete else 'no':>8} {pct(step.latencies_ms, 50):>6.0f}ms "
                  f"{pct(step.latencies_ms, 95):>6.0f}ms")
            if step.ok():
                best_tracks = max(best_tracks, step.tracks_in)
            elif step.cpu >= 0.80:
                break
        print(f"\nsessions per core: 5 members conferencing (each receives the other 4) + 1 supervisor watching "
              f"all 5, all recorded")
        print(f"{'sessions':>8} {'server CPU':>10} {'client CPU':>10} {'video loss':>10} {'recorded':>9} "
              f"{'complete':>8}")
        best_sessions, used, session_steps_done = 0, 0, []
        for count in session_steps:
            group = fives[used:used + count]
            used += count
            step = await run_step(server, world, group, conference=True, seconds=args.seconds,
                                  label=f"{count} sessions", publisher_procs=args.publisher_procs)
            session_steps_done.append(step)
            print(f"{count:>8} {step.cpu:>9.1%} {step.client_cpu:>10.1%} {step.loss:>10.2%} {step.recorded:>9.1%} "
                  f"{'yes' if step.complete else 'no':>8}")
            if step.ok():
                best_sessions = max(best_sessions, count)
            elif step.cpu >= 0.80:
                break
        alone = None
        if record_only is not None:
            # the stock baseline's work: places recorded, nobody watching
            alone = await run_step(server, world, [record_only], conference=False, seconds=args.seconds,
                                   label=f"{len(record_only.places)} places, recorded only",
                                   publisher_procs=args.publisher_procs, watched=False)
            print(f"\nrecorded only (nobody watching), {len(record_only.places)} places: server {alone.cpu:.1%}, "
                  f"recorded {alone.recorded:.1%}, complete {'yes' if alone.complete else 'no'}")
        if (args.compare_env or args.compare_root) and record_only is not None:
            await compare(server, world, record_only, args)
    finally:
        server.stop()
    stock = await run_baseline(world, args.seconds)
    # the server's cost per track, from the largest step whose recordings were complete (its CPU is what the
    # server spent on what it was given, whatever the clients' own limits)
    measured = [s for s in steps if s.complete] or steps
    widest = max(measured, key=lambda s: s.tracks_in)
    ours_per_track = widest.cpu / widest.tracks_in
    stock, stock_sent, stock_frames = stock
    # a stock recorder that falls behind used less CPU than keeping up would take: scale to the frames sent
    stock_per_track = stock * max(1.0, stock_sent / max(1, stock_frames)) / 2
    # latency where the run met its limits (beyond them the starved clients' queues are what is measured)
    latencies = [x for s in steps if s.ok() for x in s.latencies_ms] or [x for s in steps for x in s.latencies_ms]
    print(f"\nstock aiortc MediaRecorder, 1 place (2 tracks): {stock:.1%} of the pinned core; recorded "
          f"{stock_frames} of {stock_sent} video frames sent "
          f"({'keeps up' if stock_frames >= 0.95 * stock_sent else 'falls behind: cost scaled to the frames sent'})")
    print(f"\ntracks per core, measured (every limit met, clients included): {best_tracks}   (target >= 50)")
    print(f"tracks per core, server CPU extrapolated from {widest.tracks_in} tracks "
          f"({widest.cpu:.1%}): {int(0.80 / ours_per_track)}")
    print(f"sessions per core, measured: {best_sessions}")
    if session_steps_done:
        one = session_steps_done[0]
        per_session = one.cpu / session_steps[0]
        print(f"sessions per core, server CPU extrapolated from {session_steps[0]} session(s) ({one.cpu:.1%}): "
              f"{int(0.80 / per_session)}")
    print(f"CPU per track: ours {ours_per_track:.2%}, stock {stock_per_track:.1%} -> {stock_per_track / ours_per_track:.0f}x"
          f"   (target >= 50x; ours records and relays, stock records only)")
    if alone is not None and alone.complete:
        alone_per_track = alone.cpu / alone.tracks_in
        print(f"CPU per track, the same work (recorded only): ours {alone_per_track:.2%}, stock "
              f"{stock_per_track:.1%} -> {stock_per_track / alone_per_track:.0f}x   (target >= 50x)")
    print(f"glass-to-glass latency on loopback: p50 {pct(latencies, 50):.0f} ms, p95 {pct(latencies, 95):.0f} ms "
          f"over {len(latencies)} frames   (target p95 <= 150 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--places", default="2,4,8,12,16,20", help="places per step of the tracks-per-core run")
    parser.add_argument("--sessions", default="1,2,3", help="sessions per step of the sessions-per-core run")
    parser.add_argument("--seconds", type=float, default=12.0, help="steady measuring window per step")
    parser.add_argument("--record-only", type=int, default=16,
                        help="places of the recorded-only step, the stock baseline's work (0: skip it)")
    parser.add_argument("--publisher-procs", type=int, default=2,
                        help="client processes the publishers are split over (the viewers have their own)")
    parser.add_argument("--compare-env", action="append", default=[], metavar="BIDROOM_X=V",
                        help="also run the recorded-only step on a second server with this setting, alternating "
                             "with the first on the same core (repeatable)")
    parser.add_argument("--compare-root", help="also run the recorded-only step on a second server run from this "
                                                 "checkout (another commit, same schema), alternating with the first")
    parser.add_argument("--compare-rounds", type=int, default=4, help="rounds of the A/B comparison")
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        baseline_server(args.baseline_server, args.out)
        return
    from core.db import EmbeddedPostgres
    from core.migrate import upgrade

    os.sched_setaffinity(0, {CLIENT_CORE})
    make_clip()
    root = Path(tempfile.mkdtemp(prefix="bidroom-bench-media-"))
    pg = EmbeddedPostgres(root / "pg", cleanup_mode="delete").start()
    try:
        pg.psql("CREATE DATABASE bench;")
        db_url = pg.libpq_uri("bench")
        upgrade(db_url)
        asyncio.run(main_async(args, root, db_url))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
