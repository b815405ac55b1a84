"""Media workers on one database: a web app with BIDROOM_MEDIA_WORKERS=on and two media worker apps. Sessions go
to the least-loaded live worker (one decision however many ask at once), the web tier and the other worker
redirect a session's media URLs to its owner, a dead worker's sessions move to a live one, a clean stop frees
them; without workers the web process serves media itself. And `bidroom media-worker` as a real process."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from evaluation.media.worker_routes import REGISTRATION, worker_app
from tests.helpers import Actor, staff
from tests.integration.evaluation.conftest import at, post, tender_with_lot
from web.app import create_app

from .recordings import Scheduled, scheduled_session

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def admin(sessions, client) -> Actor:
    return await staff(sessions, client, "admin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def more_sessions(sessions, client, s: Scheduled, n: int) -> list[str]:
    """Further sessions, each of its own tender's lot, scheduled over HTTP in the Zhongshan room of `s` on days of
    their own (the scheduling itself is tested in tests/integration/evaluation/)."""
    out = []
    for day in range(6, 6 + n):
        ref = await tender_with_lot(sessions, s.agent)
        booking = await post(client, f"/api/v1/rooms/{s.zhongshan.room}/bookings", s.agent,
                             {"tender": ref.code, "lot": ref.lot_id, "label": "第一标段评标",
                              "starts_at": at(day, 9), "ends_at": at(day, 17)}, 201)
        created = await post(client, f"/api/v1/lots/{ref.lot_id}/evaluation-sessions", s.agent,
                             {"main_booking": booking["booking_id"]}, 201)
        out.append(created["session_id"])
    return out


async def start(app, port: int) -> TestClient:
    client = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await client.start_server()
    return client


async def connect(client, session_id: str, actor: Actor):
    resp = await client.get(f"/api/v1/media/sessions/{session_id}/connect", headers=actor.headers)
    return resp.status, await resp.json()


async def test_sessions_go_to_the_least_loaded_live_worker_and_follow_it(client, sessions, settings, raw_conn,
                                                                         admin):
    s = await scheduled_session(sessions, client, admin)
    s2, s3, s4 = await more_sessions(sessions, client, s, 3)
    s1 = s.session_id
    # heartbeats are driven by hand below, and a worker dies only when the test ages its heartbeat
    tuned = settings.with_(media_workers=True, media_worker_heartbeat_s=3600, media_worker_dead_after_s=60)
    web = await start(create_app(tuned), free_port())
    workers: dict[str, TestClient] = {}
    try:
        status, body = await connect(web, s1, s.supervisor)
        assert (status, body["error"]["code"]) == (503, "media_worker_unavailable")

        for name in ("w1", "w2"):
            port = free_port()
            workers[name] = await start(worker_app(tuned, worker_id=name, base_url=f"http://127.0.0.1:{port}"),
                                        port)
        base = {name: f"http://127.0.0.1:{w.server.port}" for name, w in workers.items()}
        assert {r["id"] for r in await raw_conn.fetch("SELECT id FROM media_worker")} == {"w1", "w2"}

        # least loaded first (a tie goes to the longest running)
        owners = {}
        for sid in (s1, s2, s3):
            status, body = await connect(web, sid, s.supervisor)
            assert status == 200, body
            owners[sid] = body["worker_id"]
            assert body["base_url"] == base[body["worker_id"]]
            assert body["ws_url"] == base[body["worker_id"]].replace("http://", "ws://") + \
                f"/api/v1/media/sessions/{sid}"
        assert owners == {s1: "w1", s2: "w2", s3: "w1"}
        # asked again, from a worker this time: the same answer, nothing reassigned
        assert (await connect(workers["w2"], s1, s.supervisor))[1]["worker_id"] == "w1"

        # many processes asking at once for a new session agree on one worker
        answers = await asyncio.gather(*(connect(c, s4, s.supervisor) for c in [web, *workers.values()] * 3))
        assert {body["worker_id"] for _, body in answers} == {"w2"}
        assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'media.session.assign' "
                                       "AND payload->>'session' = $1", s4) == 1

        # the session's media URLs are served by its owner; the web tier and the other worker send them there
        path = f"/api/v1/media/sessions/{s1}/watch?x=1"
        for other in (web, workers["w2"]):
            resp = await other.get(path, headers=s.supervisor.headers, allow_redirects=False)
            assert resp.status == 307
            assert resp.headers["Location"] == base["w1"] + path
        resp = await workers["w1"].get(path, headers=s.supervisor.headers, allow_redirects=False)
        assert resp.status != 307

        # w1 dies (no goodbye): once its heartbeat is older than dead_after_s, w2's next beat takes its sessions
        await workers["w1"].app[REGISTRATION].halt()
        await raw_conn.execute("UPDATE media_worker SET heartbeat_at = now() - interval '61 seconds' WHERE id = 'w1'")
        await workers["w2"].app[REGISTRATION].beat()
        rows = await raw_conn.fetch("SELECT s.public_id, a.worker_id FROM media_assignment a "
                                    "JOIN evaluation_session s ON s.id = a.session_id")
        assert {r["public_id"]: r["worker_id"] for r in rows} == {s1: "w2", s2: "w2", s3: "w2", s4: "w2"}
        moved = await raw_conn.fetch("SELECT payload->>'session' AS s, payload->>'previous' AS p FROM audit_entry "
                                     "WHERE action = 'media.session.reassign'")
        assert {(r["s"], r["p"]) for r in moved} == {(s1, "w1"), (s3, "w1")}
        resp = await web.get(path, headers=s.supervisor.headers, allow_redirects=False)
        assert resp.headers["Location"] == base["w2"] + path

        # w2 stops cleanly: it leaves, its sessions are free, and nobody is left to serve them
        await workers.pop("w2").close()
        assert await raw_conn.fetchval("SELECT count(*) FROM media_assignment") == 0
        assert await raw_conn.fetchval("SELECT count(*) FROM media_worker WHERE id = 'w2'") == 0
        status, body = await connect(web, s2, s.supervisor)
        assert (status, body["error"]["code"]) == (503, "media_worker_unavailable")
    finally:
        for w in workers.values():
            await w.close()
        await web.close()

    # without workers (the default) the web process serves media itself, and nothing is assigned
    status, body = await connect(client, s1, s.supervisor)
    assert status == 200 and body["worker_id"] is None and body["base_url"] == settings.public_url
    status, body = await connect(client, "ES-ZZZZZZZZ", s.supervisor)
    assert (status, body["error"]["code"]) == (404, "session_not_found")
    resp = await client.get(f"/api/v1/media/sessions/{s1}/connect")
    assert resp.status == 401


async def test_media_worker_command_registers_serves_and_leaves(client, sessions, settings, raw_conn, admin):
    s = await scheduled_session(sessions, client, admin)
    port = free_port()
    env = {**os.environ, "BIDROOM_DATABASE_URL": settings.database_url, "BIDROOM_DATA_DIR": str(settings.data_dir),
           "BIDROOM_LOG_FORMAT": "text", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "media-worker", "--host", "127.0.0.1",
                             "--port", str(port), "--id", "cli-worker"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    web = None
    try:
        for _ in range(600):
            if await raw_conn.fetchval("SELECT count(*) FROM media_worker WHERE id = 'cli-worker'"):
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            await asyncio.sleep(0.1)
        assert await raw_conn.fetchval("SELECT base_url FROM media_worker WHERE id = 'cli-worker'") == \
            f"http://127.0.0.1:{port}"
        web = await start(create_app(settings.with_(media_workers=True)), free_port())
        status, body = await connect(web, s.session_id, s.supervisor)
        assert (status, body["worker_id"]) == (200, "cli-worker")
        # the worker answers for its session itself (the signed-in supervisor's token verifies there too)
        async with web.session.get(f"http://127.0.0.1:{port}/api/v1/media/sessions/{s.session_id}/connect",
                                   headers=s.supervisor.headers) as resp:
            assert resp.status == 200 and (await resp.json())["worker_id"] == "cli-worker"
    finally:
        if web is not None:
            await web.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stdout.read().decode()
    assert await raw_conn.fetchval("SELECT count(*) FROM media_worker") == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'media.worker.deregister' "
                                   "AND payload->>'sessions_freed' = $1", f'["{s.session_id}"]') == 1
