"""The media plane in the pages, in Chromium with its fake camera and microphone:

- two experts of one session, in two browser contexts, go on camera from their place pages (publishing over the
  cookie session's WebSocket) and each sees the other's video move (the committee conference); the chair mutes
  the other member for everyone;
- the supervisor's video wall shows both places moving, with their health;
- the supervisor replays a place from a timeline marker (the chair's mute), and the recording plays at that offset;
- the page WebSockets refuse a cross-site upgrade, an anonymous one, and a signed-in user who is not a member.

The session is a second demo tender's, reached through the services as the demo's own is (`bidroom demo seed`'s
evaluation walk), then checked in, started and its chair elected through the services; its members are demo pool
experts (who sign in with the demo password), and its tender is supervised by the demo supervisor's authority. The
demo's own evaluation session is left as it is for the role pages' test.

Helpers for other browser tests: `media_session(site, experts)`, `frames_advance(page, selector, count=...)`,
`video_readings(page, selector)`, `cookie_header(context)`, `ws_url(site, path)`, `previous_code(username)`,
`free_expert(site)`."""
from __future__ import annotations

import asyncio
import io
import itertools
import os
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import pyotp
import pytest
from playwright.async_api import BrowserContext, Page
from rich.console import Console
from sqlalchemy import select

from core.db import asyncpg_dsn, create_engine, session_factory
from core.identity_models import User
from core.settings import Settings
from evaluation import chair, members
from evaluation import sessions as sessions_svc
from evaluation.demo import seed_evaluation
from evaluation.models import EvaluationMember, EvaluationSession, Place
from expert_pool.models import Expert
from tests.browser.conftest import axe_violations, forget_last_code, sign_in
from trading.access import principal_of
from web.demo import DEMO_ACCOUNTS

SECRETS = {username: secret for username, _name, _roles, secret, _org in DEMO_ACCOUNTS}
_n = itertools.count(1)


# ---- helpers (importable) ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MediaMember:
    username: str
    member_id: str
    place_id: str
    label: str


@dataclass(frozen=True)
class MediaSession:
    session_id: str
    members: list[MediaMember]   # members[0] is the chair
    supervisor: str              # the demo supervisor's username (TOTP in web.demo.DEMO_ACCOUNTS)


async def media_session(site, experts: int = 2) -> MediaSession:
    """A second demo tender's evaluation in progress, reached through the services as the demo's own is (opened
    with 4 bids, a committee of 5 drawn 2 + 3 and placed; its session a day after the demo's, so the two share
    the rooms without overlapping), then: check-in opened by the demo agent, every member checked in, the session
    started, and its first member elected chair by three votes. Returns the first `experts` members (the chair
    first); the demo's own tender and session are left as they are for the role pages' tests."""
    engine = create_engine(site.db_url, pool_size=2)
    sessions = session_factory(engine)
    settings = Settings(data_dir=site.data_dir, database_url=site.db_url, public_url=site.base,
                        statutory_periods=False, run_scheduler=False, log_json=False)
    try:
        session_id = await seed_evaluation(sessions, Console(file=io.StringIO()), {
            "settings": settings, "evaluation_title": f"远程异地评标视频会议检验工程（第{next(_n)}{os.getpid()}号）",
            "evaluation_day": 1})
        assert session_id, "the demo pool could not staff a second committee"
        async with sessions() as session:
            rows = (await session.execute(
                select(EvaluationMember.public_id, User, Expert.id_card_no, Place.public_id, Place.label)
                .join(User, User.id == EvaluationMember.user_id).join(Expert, Expert.id == EvaluationMember.expert_id)
                .join(Place, Place.id == EvaluationMember.place_id)
                .join(EvaluationSession, EvaluationSession.id == EvaluationMember.session_id)
                .where(EvaluationSession.public_id == session_id).order_by(EvaluationMember.public_id))).all()
            agent = (await session.execute(select(User).where(User.username == "agent"))).scalar_one()
        async with sessions() as session, session.begin():
            await sessions_svc.open_check_in(session, who=principal_of(agent), session_public_id=session_id)
        for _member, user, id_card_no, _place, _label in rows:
            async with sessions() as session, session.begin():
                await members.check_in(session, who=principal_of(user), session_public_id=session_id,
                                       id_card_last4=id_card_no[-4:], commitment=True, conflicts=[], note=None)
        async with sessions() as session, session.begin():
            await sessions_svc.start_session(session, who=principal_of(agent), session_public_id=session_id)
        for _member, user, *_ in rows[:3]:
            async with sessions() as session, session.begin():
                standing = await chair.vote(session, who=principal_of(user), session_public_id=session_id,
                                            candidate_public_id=rows[0][0])
        assert standing.chair is not None
        return MediaSession(session_id, [MediaMember(user.username, member, place, label)
                                         for member, user, _, place, label in rows[:experts]], "supervisor")
    finally:
        await engine.dispose()


# requestVideoFrameCallback counts the frames each <video> presents; currentTime moves while it plays
_READINGS = """(selector) => [...document.querySelectorAll(selector)].map((v) => {
  if (v.__frames === undefined) {
    v.__frames = 0;
    const tick = () => { v.__frames += 1; v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
  }
  return {frames: v.__frames, time: v.currentTime, width: v.videoWidth, label: v.getAttribute('aria-label')};
})"""


async def video_readings(page: Page, selector: str) -> list[dict]:
    """Each matching <video>: frames presented since first read, currentTime, width, aria-label."""
    return await page.evaluate(_READINGS, selector)


async def frames_advance(page: Page, selector: str, *, count: int = 1, frames: int = 5,
                         timeout_s: float = 20.0) -> list[dict]:
    """Wait until at least `count` <video> elements matching `selector` each show `frames` new frames and a later
    currentTime than at the first reading; the readings of the moving ones. Fails the test if they do not."""
    first = {r["label"]: r for r in await video_readings(page, selector)}
    deadline = asyncio.get_running_loop().time() + timeout_s
    moving: list[dict] = []
    while asyncio.get_running_loop().time() < deadline:
        now = await video_readings(page, selector)
        for r in now:
            first.setdefault(r["label"], r)
        moving = [r for r in now if r["frames"] - first[r["label"]]["frames"] >= frames
                  and r["time"] > first[r["label"]]["time"] and r["width"] > 0]
        if len(moving) >= count:
            return moving
        await asyncio.sleep(0.2)
    readings = await video_readings(page, selector)
    raise AssertionError(f"{len(moving)} of {count} videos moving in {selector}: {readings}")


async def cookie_header(context: BrowserContext) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in await context.cookies())


def previous_code(username: str) -> str:
    """The demo account's one-time code of the previous step: still accepted, and it leaves the current one to a
    later sign-in of the same account (a code is accepted once)."""
    totp = pyotp.TOTP(SECRETS[username])
    return totp.at(time.time() - totp.interval)


async def free_expert(site) -> str:
    """The username of a demo pool expert on no committee (signs in with the demo password)."""
    conn = await asyncpg.connect(**asyncpg_dsn(site.db_url))
    try:
        return await conn.fetchval(
            "SELECT u.username FROM expert e JOIN app_user u ON u.id = e.user_id WHERE NOT EXISTS "
            "(SELECT 1 FROM expert_invitation i WHERE i.expert_id = e.id) ORDER BY e.id DESC LIMIT 1")
    finally:
        await conn.close()


def ws_url(site, path: str) -> str:
    return site.base.replace("http://", "ws://") + path


async def _segments_closed(site, session_id: str, places: int) -> None:
    conn = await asyncpg.connect(**asyncpg_dsn(site.db_url))
    try:
        for _ in range(150):
            closed = await conn.fetchval(
                "SELECT count(DISTINCT g.place_id) FROM media_segment g "
                "JOIN evaluation_session s ON s.id = g.session_id "
                "WHERE s.public_id = $1 AND g.ended_at IS NOT NULL", session_id)
            if closed >= places:
                return
            await asyncio.sleep(0.2)
        raise AssertionError("the segments were not closed after the publishers left")
    finally:
        await conn.close()


# ---- tests ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def media(site) -> MediaSession:
    return await media_session(site, experts=2)


async def test_experts_confer_the_supervisor_watches_and_replays_from_a_marker(site, context_for, media):
    chair, other = media.members
    sid = media.session_id
    chair_page, other_page, wall = [await (await context_for(locale)).new_page() for locale in ("zh-CN", "en", "zh-CN")]
    # an earlier browser test may have signed the supervisor in with this step's code: a code counts once, and
    # the previous step's is refused after a later one was used
    await forget_last_code(site, media.supervisor)
    await asyncio.gather(sign_in(chair_page, chair.username), sign_in(other_page, other.username),
                         sign_in(wall, media.supervisor, totp=lambda: previous_code(media.supervisor)))
    pages = [chair_page, other_page]
    await asyncio.gather(*(page.goto(f"/sessions/{sid}/place") for page in pages),
                         wall.goto(f"/supervise/sessions/{sid}"))
    for page in pages:   # each goes on camera by itself (checked in, session live) and joins the conference
        await page.wait_for_selector("#publish-status[data-state=live]")
        await page.wait_for_selector("#conference-status[data-state=live]")
    assert await chair_page.locator("#publish-status").inner_text() == "直播中：会议正在接收您的摄像头画面"
    assert await other_page.locator("#publish-status").inner_text() == "Live: the session receives your camera"
    # each sees the other member's camera moving, and not their own in the committee's tiles
    for page, them in ((chair_page, other), (other_page, chair)):
        moving = await frames_advance(page, "#committee-tiles video")
        assert len(moving) == 1 and them.member_id in moving[0]["label"] and them.label in moving[0]["label"]
        await frames_advance(page, "#camera-preview video")
    # the supervisor's wall: both places moving, each with its health
    found, _ = await asyncio.gather(axe_violations(chair_page), wall.wait_for_selector("#wall-status[data-state=live]"))
    assert found == []
    assert len(await frames_advance(wall, "#wall-tiles video", count=2)) == 2
    for m in media.members:   # each tile's health: frames per second and the last frame's time
        health = wall.locator(f"#wall-tiles [data-place='{m.place_id}'] .health")
        await wall.wait_for_function("(el) => Number(el.dataset.fps) > 0", arg=await health.element_handle())
        assert "帧/秒" in await health.inner_text() and "最后一帧" in await health.inner_text()
    assert await axe_violations(wall) == []

    # the chair mutes the other member for everyone: the chair's tile says so once the server has done it
    mute = chair_page.locator(f"#committee-tiles [data-place='{other.place_id}'] button.mute")
    await mute.click()
    await chair_page.wait_for_selector(
        f"#committee-tiles [data-place='{other.place_id}'] button.mute[aria-pressed=true]")
    assert await chair_page.locator(f"[data-place='{other.place_id}'] .muted-badge").is_visible()
    await wall.wait_for_function("(t) => document.querySelector(t).textContent.includes('已被组长静音')",
                                 arg=f"#wall-tiles [data-place='{other.place_id}'] .health")
    await frames_advance(chair_page, "#committee-tiles video", frames=15)   # recorded on after the mute

    # the other member's browser goes away mid-session (a crash, a cable pulled): once their video has been
    # missing for the loss limit the wall says so and marks the tile; back on the place page, the camera
    # restarts by itself and the wall says the video is restored
    await other_page.context.close()
    lost = wall.locator(f"#wall-alerts li.alert-lost[data-place='{other.place_id}']")
    await lost.wait_for(timeout=30_000)
    assert other.label in await lost.inner_text() and "中断" in await lost.inner_text()
    assert await wall.locator(f"#wall-tiles [data-place='{other.place_id}'].lost").count() == 1
    other_page = await (await context_for("en")).new_page()
    await sign_in(other_page, other.username)
    await other_page.goto(f"/sessions/{sid}/place")
    await other_page.wait_for_selector("#publish-status[data-state=live]")
    restored = wall.locator(f"#wall-alerts li.alert-restored[data-place='{other.place_id}']")
    await restored.wait_for(timeout=30_000)
    assert await wall.locator(f"#wall-tiles [data-place='{other.place_id}'].lost").count() == 0
    pages = [chair_page, other_page]
    for page in pages:
        await page.close()   # the publishers leave: their segments close
    await _segments_closed(site, sid, places=2)

    # the replay: the mute's marker on the muted place opens its segment at the marker's offset
    await wall.goto(f"/supervise/sessions/{sid}/replay")
    mark = wall.locator("li.marker[data-action='evaluation.media.mute'] a.mark.own")
    assert await mark.count() == 1
    offset = float(await mark.get_attribute("data-offset"))
    assert offset > 0.5
    await mark.click()
    await wall.wait_for_function("(o) => { const v = document.getElementById('replay-video');"
                                 " return v.readyState >= 2 && !v.paused && v.currentTime >= o; }", arg=offset)
    start = await wall.evaluate("document.getElementById('replay-video').currentTime")
    assert abs(start - offset) < 1.5
    await wall.wait_for_function("(t) => document.getElementById('replay-video').currentTime > t + 0.3", arg=start)
    assert await axe_violations(wall) == []


async def test_the_page_sockets_refuse_other_sites_strangers_and_anonymous_visitors(site, context_for, media):
    sid = media.session_id
    publish = f"/sessions/{sid}/media/places/{media.members[0].place_id}/publish"
    context = await context_for("en")
    await sign_in(await context.new_page(), await free_expert(site))   # an expert, but not on this committee
    cookies = await cookie_header(context)
    async with aiohttp.ClientSession() as http:
        # another site's page cannot ride on a signed-in cookie (cross-site WebSocket hijacking); nor can a client
        # that does not say where it comes from
        for origin in ("http://evil.example", None):
            headers = {"Cookie": cookies, **({"Origin": origin} if origin else {})}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(ws_url(site, publish), headers=headers)
            assert refused.value.status == 403
        async with http.get(site.base + publish, headers={"Cookie": cookies, "Origin": "http://evil.example",
                                                          "Accept": "application/json"}) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "origin_refused"
        # from this site but signed out: 401 before any upgrade
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url(site, publish), headers={"Origin": site.base})
        assert refused.value.status == 401
        # signed in, from this site, but not a member nor a supervisor: the signaling's own refusal for each socket
        for path in (publish, f"/sessions/{sid}/media/conference", f"/supervise/sessions/{sid}/media/watch"):
            async with http.ws_connect(ws_url(site, path), headers={"Cookie": cookies, "Origin": site.base}) as ws:
                message = await ws.receive_json(timeout=10)
                assert (message["type"], message["code"]) == ("error", "media_forbidden"), path
                await ws.receive(timeout=10)
                assert ws.close_code == 4403, path
