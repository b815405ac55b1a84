"""Screenshots of the public tender list and the bidder's pages in Chinese and English, at 1366x768.

They go to $BIDROOM_SCREENSHOT_DIR when set (`BIDROOM_SCREENSHOT_DIR=docs/screenshots pytest tests/browser`
refreshes the README's pictures), else to the test's temporary directory."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from tests.browser.conftest import sign_in

PAGES = (("tenders", "/tenders?q=" + quote("中山")), ("my-bids", "/me/bids"), ("bid", None))
TITLES = {"zh-CN": ("招标公告", "我的投标", "递交加密投标文件"), "en": ("Tender notices", "My bids", "Submit a sealed bid")}


async def test_screenshots_of_the_public_list_and_the_bidder_pages_in_both_languages(site, context_for, tmp_path):
    out = Path(os.environ.get("BIDROOM_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    for locale, suffix in (("zh-CN", "zh-CN"), ("en", "en")):
        page = await (await context_for(locale)).new_page()
        await sign_in(page, "bidder3")
        bid_url = await page.locator("main table tbody tr a.button").first.get_attribute("href")
        for (name, path), title in zip(PAGES, TITLES[locale]):
            await page.goto(path or bid_url)
            assert await page.locator("h1").inner_text() == title
            target = out / f"{name}.{suffix}.png"
            await page.screenshot(path=str(target))
            assert target.stat().st_size > 10_000
