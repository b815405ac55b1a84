"""A real browser on camera: headless Chromium (Debian's, driven by Playwright) publishes, as the site's device
account, the room camera place of a session from a minimal page with its fake camera and microphone; the
recording decodes with PyAV, matches its row and the ledger, and plays back in a <video> element from the
playback URL the supervisor is given."""
import asyncio
import hashlib
import io
from dataclasses import dataclass

import av
import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from evaluation.media.playback import media_storage
from tests.helpers import Actor, staff
from tests.integration.evaluation.conftest import post

from .recordings import scheduled_session

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--headless", "--no-sandbox",
         "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run"]

# the smallest publisher: camera and microphone, one send-only peer, the signaling of evaluation.media.signaling
PUBLISH_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>publish</title></head><body>
<video id="self" autoplay muted playsinline></video>
<script>
async function publish(wsUrl, token) {
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {width: 640, height: 480, frameRate: 15}, audio: true});
  document.getElementById('self').srcObject = stream;
  const pc = new RTCPeerConnection({iceServers: []});
  for (const track of stream.getTracks()) pc.addTransceiver(track, {direction: 'sendonly', streams: [stream]});
  const ws = new WebSocket(wsUrl);
  window.pc = pc; window.ws = ws;
  const answered = new Promise((resolve, reject) => {
    ws.onmessage = async (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === 'ready') {
        await pc.setLocalDescription(await pc.createOffer());
        if (pc.iceGatheringState !== 'complete') {
          await new Promise(done => pc.addEventListener('icegatheringstatechange',
            () => { if (pc.iceGatheringState === 'complete') done(); }));
        }
        ws.send(JSON.stringify({type: 'offer', sdp: pc.localDescription.sdp}));
      } else if (msg.type === 'answer') {
        await pc.setRemoteDescription({type: 'answer', sdp: msg.sdp});
        resolve(msg.publication);
      } else if (msg.type === 'error') {
        reject(new Error(msg.code + ': ' + msg.message));
      }
    };
    ws.onclose = (event) => reject(new Error('closed ' + event.code + ' ' + event.reason));
  });
  ws.onopen = () => ws.send(JSON.stringify({type: 'auth', token: token}));
  return await answered;
}
async function framesSent() {
  let frames = 0;
  (await window.pc.getStats()).forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') frames = s.framesSent || 0;
  });
  return frames;
}
function stop() { window.pc.close(); window.ws.close(1000); }
</script></body></html>"""

PLAY_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>play</title></head><body>
<video id="replay" muted playsinline preload="auto"></video>
<script>
async function play(src) {
  const video = document.getElementById('replay');
  video.src = src;
  await new Promise((resolve, reject) => {
    video.onloadedmetadata = resolve;
    video.onerror = () => reject(new Error('media error ' + (video.error && video.error.code)));
  });
  await video.play();
  await new Promise(resolve => {
    const tick = () => video.currentTime > 1.0 || video.ended ? resolve() : setTimeout(tick, 50);
    tick();
  });
  return {width: video.videoWidth, height: video.videoHeight, duration: video.duration,
          time: video.currentTime};
}
</script></body></html>"""


@dataclass
class Pages:
    runner: web.AppRunner
    url: str


async def page_server() -> Pages:
    """The two pages, served over HTTP on loopback (a secure context for the camera; Playwright's request
    routing would get in the way of the page's WebSocket)."""
    app = web.Application()
    for name, html in (("publish", PUBLISH_PAGE), ("play", PLAY_PAGE)):
        async def serve(request, html=html):
            return web.Response(text=html, content_type="text/html")
        app.router.add_get(f"/{name}.html", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return Pages(runner, f"http://127.0.0.1:{port}")


@pytest.fixture
async def admin(sessions, client) -> Actor:
    return await staff(sessions, client, "admin")


async def test_chromium_publishes_a_place_and_its_recording_plays(client, sessions, settings, raw_conn, admin):
    s = await scheduled_session(sessions, client, admin)
    camera = (await post(client, f"/api/v1/rooms/{s.zhongshan.room}/places", admin,
                         {"label": "全景", "camera_position": True}, 201))["place_id"]
    # the room camera is published by the site's device account, with the access token its credential buys
    device = await post(client, f"/api/v1/sites/{s.zhongshan.site}/devices", admin, {"name": "全景摄像机"}, 201)
    resp = await client.post("/api/v1/media/devices/token",
                             json={"device_id": device["device"]["device_id"], "secret": device["secret"]})
    device_token = (await resp.json())["access_token"]
    base = str(client.make_url("")).rstrip("/")
    ws_url = base.replace("http://", "ws://") + f"/api/v1/media/sessions/{s.session_id}/places/{camera}/publish"

    pages = await page_server()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = await browser.new_page()
            await page.goto(pages.url + "/publish.html")
            publication = await page.evaluate("([url, token]) => publish(url, token)",
                                              [ws_url, device_token])
            assert publication == 1
            for _ in range(600):  # about 4 s of video sent
                if await page.evaluate("framesSent()") >= 60:
                    break
                await asyncio.sleep(0.1)
            sent = await page.evaluate("framesSent()")
            await asyncio.sleep(0.5)
            await page.evaluate("stop()")

            row = None
            for _ in range(600):
                row = await raw_conn.fetchrow(
                    "SELECT g.* FROM media_segment g JOIN venue_place p ON p.id = g.place_id "
                    "WHERE p.public_id = $1 AND g.ended_at IS NOT NULL", camera)
                if row is not None:
                    break
                await asyncio.sleep(0.1)
            assert row is not None, "the segment was not closed"
            assert row["storage_key"].endswith(".webm")
            data = await media_storage(settings).read_bytes(row["storage_key"])
            assert hashlib.sha256(data).hexdigest() == row["sha256"]
            assert await raw_conn.fetchval(
                "SELECT count(*) FROM audit_entry WHERE action = 'evaluation.media.segment_closed' "
                "AND payload->>'segment' = $1 AND payload->>'sha256' = $2", row["public_id"], row["sha256"]) == 1
            with av.open(io.BytesIO(data)) as container:
                assert container.streams.video[0].codec_context.name == "vp8"
                assert container.streams.audio[0].codec_context.name == "opus"
                frames = [f for f in container.decode(video=0)]
            assert (frames[0].width, frames[0].height) == (640, 480)
            assert len(frames) == row["video_frames"] >= 30  # every recorded frame decodes; seconds of video
            assert row["duration_ms"] >= 2000

            # the supervisor replays it in a <video> element, from the ticketed URL of the recordings list
            listing = await (await client.get(s.url + "/recordings", headers=s.supervisor.headers)).json()
            url = next(seg["url"] for p in listing["places"] if p["place_id"] == camera for seg in p["segments"])
            viewer = await browser.new_page()
            await viewer.goto(pages.url + "/play.html")
            played = await viewer.evaluate("(src) => play(src)", base + url)
            assert (played["width"], played["height"]) == (640, 480)
            assert played["time"] > 1.0  # it plays on from the start
        finally:
            await browser.close()
            await pages.runner.cleanup()
