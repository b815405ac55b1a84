"""The role pages in Chromium on the demo's evaluation session (a tender opened with 4 bids, a committee of 5
drawn 2 + 3 and placed at the Zhongshan main venue and the Guangzhou sub-venue):

- an expert checks in on the place page (ID card, integrity commitment, avoidance declaration over the bidders),
  and, once the others have checked in, the chair is elected and the review closed through the API, fills a score
  sheet whose out-of-range score is caught as it is typed, then submits it;
- the agent opens check-in and starts the evaluation from the tender's desk;
- a supervisor follows the session on the live list and suspends and resumes it with a reason;
- an admin invites a staff member (the enrolment link shown once) and adds a place to a room.

The other members' steps go through the JSON API, as their own browsers would; the page's own steps are a
person's clicks. Screenshots of the expert's and the supervisor's main pages in Chinese and English go to
$BIDROOM_SCREENSHOT_DIR when set (docs/screenshots for the README), else to the test's temporary directory."""
from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pyotp
import pytest

from core.db import asyncpg_dsn
from evaluation.demo import DEMO_TENDER_TITLE
from tests.browser.conftest import (DEMO_PASSWORD, answer_in_place, axe_violations, forget_last_code, refresh_place,
                                    sign_in)
from web.demo import DEMO_ACCOUNTS

SECRETS = {username: secret for username, _name, _roles, secret, _org in DEMO_ACCOUNTS}
REQUIREMENTS = [{"code": "Q1", "title": "营业执照有效", "kind": "qualification"},
                {"code": "C1", "title": "投标报价未超过最高限价", "kind": "compliance"}]


class Api:
    """The JSON API over HTTP with bearer tokens, as another member's or the agent's client would use it."""

    def __init__(self, site):
        self.site = site
        self.base = site.base
        self.http = aiohttp.ClientSession()
        self.tokens: dict[str, str] = {}

    async def login(self, username: str) -> None:
        body = {"username": username, "password": DEMO_PASSWORD}
        if SECRETS.get(username):
            await forget_last_code(self.site, username)  # the pages may have used this step's code
            body["totp"] = pyotp.TOTP(SECRETS[username]).now()
        async with self.http.post(self.base + "/api/v1/auth/login", json=body) as resp:
            assert resp.status == 200, await resp.text()
            self.tokens[username] = (await resp.json())["access_token"]

    async def call(self, method: str, path: str, who: str, body=None, status: int = 200):
        if who not in self.tokens:
            await self.login(who)
        async with self.http.request(method, self.base + path, json=body,
                                     headers={"Authorization": f"Bearer {self.tokens[who]}"}) as resp:
            assert resp.status == status, f"{method} {path}: {resp.status} {await resp.text()}"
            return await resp.json() if resp.content_type == "application/json" else None


async def _demo_session(site) -> tuple[str, list[dict]]:
    """The demo session's id and its members: login, member id, the ID card's last four (what each expert knows)."""
    conn = await asyncpg.connect(**asyncpg_dsn(site.db_url))
    try:
        sid = await conn.fetchval("SELECT s.public_id FROM evaluation_session s JOIN tender t ON t.id = s.tender_id "
                                  "WHERE t.title = $1", DEMO_TENDER_TITLE)
        rows = await conn.fetch(
            "SELECT m.public_id AS member, u.username, right(e.id_card_no, 4) AS last4 FROM evaluation_member m "
            "JOIN app_user u ON u.id = m.user_id JOIN expert e ON e.id = m.expert_id "
            "JOIN evaluation_session s ON s.id = m.session_id WHERE s.public_id = $1 AND m.status <> 'withdrawn' "
            "ORDER BY m.public_id", sid)
    finally:
        await conn.close()
    assert sid is not None and len(rows) == 5, "the demo seeds a session with a committee of 5"
    return sid, [dict(r) for r in rows]


async def _demo_code(site) -> str:
    conn = await asyncpg.connect(**asyncpg_dsn(site.db_url))
    try:
        return await conn.fetchval("SELECT code FROM tender WHERE title = $1", DEMO_TENDER_TITLE)
    finally:
        await conn.close()


def _shots(tmp_path) -> Path:
    out = Path(os.environ.get("BIDROOM_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


async def _switch_language(page) -> None:
    async with page.expect_navigation():
        await page.click("header a.lang")


@pytest.fixture(scope="module")
async def api(site):
    client = Api(site)
    yield client
    await client.http.close()


async def test_an_expert_checks_in_and_scores_on_the_place_page(site, context_for, api, tmp_path):
    sid, members = await _demo_session(site)
    url = f"/api/v1/evaluation-sessions/{sid}"
    me, others = members[0], members[1:]
    shots = _shots(tmp_path)

    # the agent opens check-in from the tender's desk (the current step's code: a previous step's code can
    # expire while a loaded browser fills the form, and the API client forgets the step before it signs in again)
    desk = await (await context_for("zh-CN")).new_page()
    await forget_last_code(site, "agent")   # an earlier browser test may have used that step's code
    await sign_in(desk, "agent", totp=pyotp.TOTP(SECRETS["agent"]).now())
    assert desk.url.endswith("/manage")
    async with desk.expect_navigation():
        await desk.click(f"a[href='/manage/tenders/{await _demo_code(site)}']")
    # the demo's opening is complete: its record and the four valid bids
    assert (await desk.locator("#opening-record").inner_text()).endswith("4")
    async with desk.expect_navigation():
        await desk.click("#sessions button[type=submit]")
    assert await desk.locator("#sessions .badge").inner_text() == "签到"
    assert await axe_violations(desk) == []
    await desk.evaluate("window.scrollTo(0, 0)")
    await desk.screenshot(path=str(shots / "manage-tender.zh-CN.png"))

    # the tender wizard: the evaluation points' live total as the agent types (the server checks it again)
    await desk.goto("/manage")
    async with desk.expect_navigation():
        await desk.click("#new-tender")
    points = desk.locator("input[name=criterion_max]")
    await points.nth(0).fill("50")
    await points.nth(1).fill("10")
    await desk.fill("#price_weight", "30")
    assert await desk.locator("#points-total").inner_text() == "合计 90 分，不是 100 分。"
    await points.nth(1).fill("20")
    assert await desk.locator("#points-total").inner_text() == "合计 100 分。"
    assert await desk.locator("#period-check").get_attribute("class") == "ok"  # the default deadline: 21 days
    await desk.check("#m-lowest")
    assert await desk.locator("#scoring").is_hidden()  # the lowest evaluated price scores nothing
    assert await axe_violations(desk) == []
    await desk.goto(f"/manage/tenders/{await _demo_code(site)}")  # back at the demo tender's desk

    page = await (await context_for("zh-CN")).new_page()
    await sign_in(page, me["username"])
    # an expert lands on their evaluations, which lead to the place
    assert page.url.endswith("/me/invitations")
    async with page.expect_navigation():
        await page.click(f"a[href='/sessions/{sid}/place']")
    assert await page.locator("h1").inner_text() == "评标席位"
    assert await page.locator("#member-status").inner_text() == "已入选"
    # the avoidance declaration lists the lot's four bidders
    assert await page.locator("#check-in-form input[name=conflict]").count() == 4
    assert await page.locator("#media").count() == 1
    assert await axe_violations(page) == []

    # the commitment unticked: the browser holds the form back; a wrong ID card: the platform refuses, in Chinese
    await page.fill("#id_card_last4", "0000" if me["last4"] != "0000" else "1111")
    await page.check("#commitment")
    async with page.expect_navigation():
        await page.click("#check-in-form button[type=submit]")
    assert "身份证号码后四位与登记信息不符" in await page.locator(".alert").inner_text()
    assert await page.locator("#member-status").inner_text() == "已入选"
    await page.fill("#id_card_last4", me["last4"])
    await page.check("#commitment")
    async with page.expect_navigation():
        await page.click("#check-in-form button[type=submit]")
    assert await page.locator("#member-status").inner_text() == "已签到"

    # the others check in, the agent starts, the committee elects this expert chair and reviews, through the API
    for m in others:
        await api.call("POST", url + "/check-in", m["username"],
                       {"id_card_last4": m["last4"], "commitment": True, "conflicts": []})
    await desk.reload()
    async with desk.expect_navigation():
        await desk.click("#sessions button[type=submit]")
    assert await desk.locator("#sessions .badge").inner_text() == "评标中"
    await _switch_language(desk)
    await desk.evaluate("window.scrollTo(0, 0)")
    await desk.screenshot(path=str(shots / "manage-tender.en.png"))
    for m in others[:3]:
        await api.call("POST", url + "/chair/votes", m["username"], {"candidate": me["member"]})
    await api.call("PUT", url + "/review/requirements", "agent", {"requirements": REQUIREMENTS})
    bidders = await api.call("GET", url + "/declaration", others[0]["username"])
    for m in others:
        await api.call("POST", url + "/review/ballots", m["username"], {"ballots": [
            {"bidder": b["organisation_id"], "requirement": r["code"], "passed": True}
            for b in bidders for r in REQUIREMENTS]})

    # the chair casts their own ballots on the page and closes the review; the page is on air since check-in, so
    # it shows what the others did and each form's answer without leaving (its camera keeps publishing)
    await page.evaluate("window.stillThisPage = true")
    await refresh_place(page)
    for radio in await page.locator("#review input[type=radio][value=pass]").all():
        await radio.check()
    await answer_in_place(page, "#review form.wide-form button[type=submit]")
    await answer_in_place(page, "#review form.inline button[type=submit]")
    assert await page.locator("#review table tbody tr").count() == 4

    # a score sheet: 45 of 40 is caught as it is typed, with the range in the message
    first = bidders[0]["organisation_id"]
    sheet = page.locator(f"#sheet-{first}")
    inputs = sheet.locator("input.score")
    assert await inputs.count() == 3
    await inputs.nth(0).fill("45")
    assert await inputs.nth(0).get_attribute("aria-invalid") == "true"
    assert "0 至 40" in await sheet.locator(".field-msg").first.inner_text()
    assert not await inputs.nth(0).evaluate("el => el.checkValidity()")
    await inputs.nth(0).fill("36.5")
    assert await inputs.nth(0).get_attribute("aria-invalid") == "false"
    await inputs.nth(1).fill("18")
    await inputs.nth(2).fill("9")
    assert await sheet.locator("output.sheet-total").inner_text() == "63.50"
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(shots / "place.zh-CN.png"))
    await answer_in_place(page, sheet.locator("button[value=submit]"))
    sheet = page.locator(f"#sheet-{first}")
    assert await sheet.locator(".sheet-status").inner_text() == "已提交"
    assert await page.evaluate("window.stillThisPage") is True   # never reloaded: the camera ran on throughout
    assert Decimal(await sheet.locator("input.score").nth(0).input_value()) == Decimal("36.5")
    # the server holds the same sheet
    mine = await api.call("GET", url + "/sheets", me["username"])
    assert [(s["bidder"], s["status"], {k: Decimal(v) for k, v in s["scores"].items()}) for s in mine] == [
        (first, "submitted", {"技术方案": Decimal("36.5"), "项目经理业绩": Decimal(18), "企业信誉": Decimal(9)})]
    assert await axe_violations(page) == []

    await _switch_language(page)
    assert await page.locator("h1").inner_text() == "Evaluation place"
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(shots / "place.en.png"))


async def test_a_supervisor_suspends_and_resumes_a_session_with_a_reason(site, context_for, tmp_path):
    sid, _ = await _demo_session(site)
    page = await (await context_for("zh-CN")).new_page()
    await sign_in(page, "supervisor", totp=pyotp.TOTP(SECRETS["supervisor"]).now())
    assert page.url.endswith("/supervise")
    assert await page.locator("h1").inner_text() == "进行中的评标会议"
    assert await axe_violations(page) == []
    shots = _shots(tmp_path)
    await page.screenshot(path=str(shots / "supervise.zh-CN.png"))
    async with page.expect_navigation():
        await page.click(f"a[href='/supervise/sessions/{sid}']")
    before = await page.locator("#session-status").inner_text()
    assert before != "已暂停"
    assert await page.locator("tbody tr").count() >= 5
    assert await axe_violations(page) == []

    # a suspension without a reason is held back by the form; with one, the session stops where it is
    await page.click("#suspend-form button[type=submit]")
    assert await page.locator("#session-status").inner_text() == before
    async with page.expect_navigation():
        await page.fill("#reason", "中山主场网络中断，等待恢复")
        await page.click("#suspend-form button[type=submit]")
    assert await page.locator("#session-status").inner_text() == "已暂停"
    assert "中山主场网络中断" in await page.locator("#suspended-note").inner_text()
    await page.screenshot(path=str(shots / "supervise-session.zh-CN.png"))

    async with page.expect_navigation():
        await page.fill("#note", "网络已恢复")
        await page.click("#resume-form button[type=submit]")
    assert await page.locator("#session-status").inner_text() == before
    assert await page.locator("#suspend-form").count() == 1

    await _switch_language(page)
    assert await page.locator("h1").inner_text() == f"Evaluation session {sid}"
    await page.screenshot(path=str(shots / "supervise-session.en.png"))
    async with page.expect_navigation():
        await page.click("a[href='/supervise']")
    await page.screenshot(path=str(shots / "supervise.en.png"))


async def test_an_admin_adds_a_place_and_invites_a_staff_member(site, context_for, tmp_path):
    page = await (await context_for("zh-CN")).new_page()
    await sign_in(page, "admin", totp=pyotp.TOTP(SECRETS["admin"]).now())
    assert page.url.endswith("/admin/users")
    await page.fill("#username", "agent.lin")
    await page.fill("#display_name", "招标代理 林晓")
    await page.check("#role-agent")
    async with page.expect_navigation():
        await page.click("form[action='/admin/enrolments'] button[type=submit]")
    link = await page.locator("#enrolment-link code").inner_text()
    assert link.startswith(site.base) and "enrol" in link
    # the link is shown once: the list again does not show it
    await page.goto("/admin/users")
    assert await page.locator("#enrolment-link").count() == 0

    await page.goto("/admin/venues")
    assert await axe_violations(page) == []
    room = page.locator("form[action^='/admin/venues/rooms/']").first
    await room.locator("input[name=label]").fill("D-09")
    async with page.expect_navigation():
        await room.locator("button[type=submit]").click()
    assert "D-09" in await page.locator("main").inner_text()
    shots = _shots(tmp_path)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(shots / "admin-venues.zh-CN.png"))
    await _switch_language(page)
    assert await page.locator("h1").inner_text() == "Venues"
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(shots / "admin-venues.en.png"))
