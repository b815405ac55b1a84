"""The pages with media workers on, in Chromium with its fake camera and microphone: a web tier and a media worker
(`bidroom media-worker`'s app) on one database, each on a port of its own. The chair signs in on the web tier's
pages and goes on camera from the place page; the page's sockets, opened with media tickets, go to the worker that
owns the session (a different origin, which the page cookie does not reach), and the worker records the place.
The supervisor's video wall, also served by the web tier, shows the place moving through the same worker."""
import asyncio

import pyotp
from playwright.async_api import async_playwright

from core import identity_service
from evaluation.media.routes import MEDIA_HUB
from evaluation.media.worker_routes import worker_app
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, sign_in
from tests.browser.test_media_pages import frames_advance
from tests.helpers import PASSWORD
from web.app import create_app

from .test_worker import free_port, start


async def page_supervisor(sessions, raw_conn, supervisor_public_id: str) -> tuple[str, str]:
    """A supervisor of the tender's supervising organisation with a page sign-in: (username, TOTP secret)."""
    org = await raw_conn.fetchval("SELECT o.public_id FROM organisation o JOIN app_user u ON u.organisation_id = o.id "
                                  "WHERE u.public_id = $1", supervisor_public_id)
    async with sessions() as session, session.begin():
        user, _ = await identity_service.create_user(session, actor="system", username="wall-supervisor",
                                                     password=PASSWORD, display_name="监督员 陈",
                                                     roles=["supervisor"], organisation_public_id=org)
        return user.username, user.totp_secret


async def test_the_place_page_and_the_wall_reach_the_sessions_media_worker(live, sessions, settings, raw_conn):
    sid, chair = live.session_id, live.members[0]
    web_port, worker_port = free_port(), free_port()
    web_base, worker_base = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{worker_port}"
    tuned = settings.with_(media_workers=True, public_url=web_base)
    worker = await start(worker_app(tuned, worker_id="media-1", base_url=worker_base), worker_port)
    web = await start(create_app(tuned), web_port)
    username, secret = await page_supervisor(sessions, raw_conn, live.supervisor.public_id)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                expert = await (await browser.new_context(locale="zh-CN", base_url=web_base)).new_page()
                sockets: list[str] = []
                expert.on("websocket", lambda ws: sockets.append(ws.url))
                await sign_in(expert, chair.person.username, PASSWORD)
                await expert.goto(f"/sessions/{sid}/place")
                await expert.wait_for_selector("#publish-status[data-state=live]", timeout=30_000)
                await expert.wait_for_selector("#conference-status[data-state=live]", timeout=30_000)

                # the sockets went to the worker, with tickets; the worker publishes the place, the web tier nothing
                worker_ws = worker_base.replace("http://", "ws://") + f"/api/v1/media/sessions/{sid}/"
                assert sorted(sockets) == sorted([worker_ws + "conference", worker_ws + f"places/{chair.place_id}"
                                                  "/publish"]), sockets
                assert await raw_conn.fetchval(
                    "SELECT a.worker_id FROM media_assignment a JOIN evaluation_session s ON s.id = a.session_id "
                    "WHERE s.public_id = $1", sid) == "media-1"
                hub = worker.app[MEDIA_HUB]
                assert hub.publication(sid, chair.place_id) is not None
                assert web.app.get(MEDIA_HUB) is None or web.app[MEDIA_HUB].publication(sid, chair.place_id) is None

                # the supervisor's wall, from the web tier's page, watches the place through the worker
                wall = await (await browser.new_context(locale="zh-CN", base_url=web_base)).new_page()
                await sign_in(wall, username, PASSWORD, totp=pyotp.TOTP(secret).now)
                await wall.goto(f"/supervise/sessions/{sid}")
                await wall.wait_for_selector("#wall-status[data-state=live]", timeout=30_000)
                await frames_advance(wall, f"#wall-tiles [data-place='{chair.place_id}'] video")

                # the chair leaves: the worker closes the segment it recorded, on the ledger
                await expert.context.close()
                row = None
                for _ in range(150):
                    row = await raw_conn.fetchrow(
                        "SELECT g.recorder, g.sha256 FROM media_segment g JOIN venue_place p ON p.id = g.place_id "
                        "WHERE p.public_id = $1 AND g.ended_at IS NOT NULL", chair.place_id)
                    if row is not None:
                        break
                    await asyncio.sleep(0.2)
                assert row is not None and row["recorder"] == "media-1" and len(row["sha256"]) == 64
            finally:
                await browser.close()
    finally:
        await web.close()
        await worker.close()
