"""The public pages in Chromium: search by a Chinese keyword, a tender's detail and timeline, the language switch,
CSRF refusal, and axe-core on each page."""
from __future__ import annotations

import re
from urllib.parse import quote

import aiohttp

from tests.browser.conftest import axe_violations

KEYWORD = "门诊楼"


async def _showcase_code(site) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{site.base}/api/v1/tenders?q={quote(KEYWORD)}") as resp:
            items = (await resp.json())["items"]
    return next(i["code"] for i in items if "演示" in i["title"])


async def test_the_public_finds_a_tender_by_a_chinese_keyword(site, context_for):
    page = await (await context_for("zh-CN")).new_page()
    await page.goto("/tenders")
    assert await page.get_attribute("html", "lang") == "zh-CN"
    await page.fill("#q", KEYWORD)
    async with page.expect_navigation():
        await page.press("#q", "Enter")
    codes = [c.strip() for c in await page.locator(".card .code").all_inner_texts()]
    # the page lists what the API lists for the same query, in the same order (one listing, one cache)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{site.base}/api/v1/tenders?q={quote(KEYWORD)}") as resp:
            api_codes = [i["code"] for i in (await resp.json())["items"]]
    assert codes == api_codes and codes
    title = page.locator(".card h2 a", has_text="门诊楼节能改造")
    async with page.expect_navigation():
        await title.click()
    assert await page.locator("h1").inner_text() == "中山市人民医院门诊楼节能改造工程施工（演示·可投标）"
    # the lifecycle picture: seven steps, published done, the next one current
    steps = page.locator("figure.timeline svg g.step")
    assert await steps.count() == 7
    assert "done" in await steps.nth(0).get_attribute("class")
    assert "current" in await steps.nth(1).get_attribute("class")
    assert await page.locator("figure.timeline text.label").first.text_content() == "发布"
    for heading in ("标段", "招标文件", "澄清与修改", "答疑澄清"):
        assert await page.locator("h2", has_text=heading).count() == 1
    # amounts in 万元 for Chinese readers, times in Beijing time
    assert "860.00 万元" in await page.locator("aside").inner_text()
    assert "UTC+8" in await page.locator("aside").inner_text()


async def test_the_language_switch_keeps_its_choice_and_accept_language_picks_english(site, context_for):
    page = await (await context_for("zh-CN")).new_page()
    await page.goto("/results")
    assert await page.locator("nav[aria-label] a").first.inner_text() == "招标公告"
    async with page.expect_navigation():
        await page.click("header a[hreflang=en]")
    assert page.url.endswith("/results")  # back where the reader was
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.locator("h1").inner_text() == "Results and award notices"
    await page.goto("/tenders?q=" + quote(KEYWORD))  # the choice is kept by its cookie
    assert await page.locator("nav[aria-label] a").first.inner_text() == "Tenders"
    assert re.search(r"¥[\d,]+\.\d\d", await page.locator(".card").first.inner_text())
    async with page.expect_navigation():
        await page.click("header a[hreflang=zh-CN]")
    assert await page.get_attribute("html", "lang") == "zh-CN"
    english = await (await context_for("en-US")).new_page()
    await english.goto("/verify/draw")
    assert await english.locator("h1").inner_text() == "Verify an expert draw"


async def test_a_form_post_without_its_csrf_token_is_refused(site, context_for):
    context = await context_for("en")
    page = await context.new_page()
    await page.goto("/signin")  # the visitor has a CSRF cookie now
    token = await page.get_attribute("input[name=csrf_token]", "value")
    form = {"username": "bidder1", "password": "bidroom-demo-2026"}
    refused = await page.request.post("/signin", form=form, max_redirects=0)
    assert refused.status == 403
    assert "csrf_failed" in await refused.text()
    forged = await page.request.post("/signin", form={**form, "csrf_token": "0" * 64}, max_redirects=0)
    assert forged.status == 403
    # another visitor's token does not fit this visitor's cookie
    other = await (await context_for("en")).new_page()
    await other.goto("/signin")
    theirs = await other.get_attribute("input[name=csrf_token]", "value")
    assert theirs != token
    assert (await page.request.post("/signin", form={**form, "csrf_token": theirs}, max_redirects=0)).status == 403
    await page.goto("/me/bids")
    assert "/signin" in page.url  # none of the refused posts signed the visitor in
    accepted = await page.request.post("/signin", form={**form, "csrf_token": token}, max_redirects=0)
    assert accepted.status == 303 and accepted.headers["location"] == "/me/bids"
    cookie = next(c for c in await context.cookies() if c["name"] == "bidroom_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


async def test_the_public_pages_have_no_serious_accessibility_violations(site, context_for):
    code = await _showcase_code(site)
    page = await (await context_for("zh-CN")).new_page()
    for path in ("/tenders", f"/tenders/{code}", "/results", "/verify/record", "/verify/draw", "/ledger",
                 "/signin", "/tenders?q=nothing-matches-this"):
        await page.goto(path)
        assert await axe_violations(page) == [], path
    english = await (await context_for("en")).new_page()
    for path in ("/tenders", f"/tenders/{code}"):
        await english.goto(path)
        assert await axe_violations(english) == [], ("en", path)


async def test_record_and_draw_verification_answer_in_the_page(site, context_for, tmp_path):
    page = await (await context_for("en")).new_page()
    await page.goto("/verify/record")
    not_pdf = tmp_path / "notes.pdf"
    not_pdf.write_bytes(b"just some text, not a PDF")
    await page.set_input_files("#pdf", str(not_pdf))
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    assert "The file is not a PDF." in await page.locator("[role=alert]").inner_text()
    await page.goto("/verify/draw")
    await page.fill("#record", '{"algorithm": "x", "draw_id": 1.5}')
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    assert "not a draw record" in await page.locator("[role=alert]").inner_text()


async def _checkpoint(site) -> dict | None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{site.base}/api/v1/audit/checkpoint") as resp:
            return await resp.json() if resp.status == 200 else None


async def test_the_ledger_page_shows_the_signed_checkpoint(site, context_for):
    page = await (await context_for("en")).new_page()
    before = None
    for _ in range(150):  # the server signs a checkpoint every few seconds in this set-up
        before = await _checkpoint(site)
        if before is not None:
            break
        await page.wait_for_timeout(200)
    await page.goto("/ledger")
    text = await page.locator("main").inner_text()
    after = await _checkpoint(site)
    # the page shows the latest checkpoint: the one read before it, or one signed while it loaded
    assert before["root"] in text or after["root"] in text
    assert before["public_key"] in text and "Merkle root" in text
