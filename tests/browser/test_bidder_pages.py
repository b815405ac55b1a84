"""A bidder in Chromium: signs in, finds the lots it registered for, seals its bid in the browser with
age-encryption and submits only ciphertext, which the tender's identity (rebuilt here from the key holders'
shares) opens to the very bundle; the server-sealed fallback; accessibility of the bidder pages."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile

import asyncpg
import pyrage

from core.db import asyncpg_dsn
from evidence.sealing.header import AGE_MAGIC
from evidence.sealing.shares import combine_shares
from trading.demo import DEMO_HOLDER_PASSPHRASE
from trading.keyholding import unwrap_holder_identity
from tests.browser.conftest import axe_violations, sign_in


def bid_bundle(price: str) -> bytes:
    """A bid bundle as a bidder's tool makes it: a tar whose first member is form.json."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("form.json", json.dumps({"price": price, "duration_days": 180,
                                                     "declared": {"质量标准": "合格"}}).encode()),
                           ("documents/投标文件.txt", "投标文件正文：技术方案与报价说明。".encode() * 200)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


async def tender_identity(site, code: str) -> tuple[str, str]:
    """(identity, recipient) of a tender, rebuilt as the opening would: each holder's key unwrapped with the demo
    holder passphrase, their shares decrypted and combined."""
    conn = await asyncpg.connect(**asyncpg_dsn(site.db_url))
    try:
        recipient = await conn.fetchval("SELECT age_recipient FROM tender WHERE code = $1", code)
        rows = await conn.fetch(
            "SELECT h.encrypted_share, k.wrapped_identity FROM tender_key_holder h JOIN tender t ON t.id = h.tender_id"
            " JOIN holder_key k ON k.id = h.holder_key_id WHERE t.code = $1 AND h.user_id IS NOT NULL", code)
    finally:
        await conn.close()
    shares = []
    for row in rows:
        holder = await asyncio.to_thread(unwrap_holder_identity, row["wrapped_identity"], DEMO_HOLDER_PASSPHRASE)
        shares.append(pyrage.decrypt(row["encrypted_share"], [pyrage.x25519.Identity.from_str(holder)]))
    return combine_shares(shares, recipient), recipient


async def stored_bid(site, bid_no: str) -> tuple[bytes, str]:
    conn = await asyncpg.connect(**asyncpg_dsn(site.db_url))
    try:
        row = await conn.fetchrow("SELECT storage_key, sha256 FROM bid WHERE public_id = $1", bid_no)
    finally:
        await conn.close()
    return (site.data_dir / "storage" / row["storage_key"]).read_bytes(), row["sha256"]


async def test_a_bidder_seals_in_the_browser_and_the_server_only_ever_holds_ciphertext(site, context_for, tmp_path):
    page = await (await context_for("zh-CN")).new_page()
    await sign_in(page, "bidder1")
    assert page.url.endswith("/me/bids")
    # the showcase tender's two lots open for bids, registered by the demo (the evaluation demo's opened tender,
    # which bidder1 bid on too, has no submission button)
    rows = page.locator("main table tbody tr", has=page.locator("a.button"))
    assert await rows.count() == 2
    async with page.expect_navigation():
        await rows.first.locator("a.button").click()
    code, lot = page.url.split("/tenders/")[1].split("/bid")[0].split("/lots/")
    bundle = bid_bundle("5180000.00")
    (tmp_path / "bid.tar").write_bytes(bundle)
    await page.set_input_files("#bundle", str(tmp_path / "bid.tar"))
    assert await page.is_checked("#seal-here")
    await page.click("#bid-form button[type=submit]")
    await page.locator("#receipt").wait_for(state="visible")
    assert await page.get_attribute("#bid-progress", "value") == "100"
    assert "已接收" in await page.locator("#bid-status").inner_text()
    bid_no = await page.locator("#receipt [data-field=bid]").inner_text()
    assert await page.locator("#receipt [data-field=sealed_by]").inner_text() == "client"
    receipt_sha = await page.locator("#receipt [data-field=ciphertext_sha256]").inner_text()

    stored, sha = await stored_bid(site, bid_no)
    assert sha == receipt_sha == hashlib.sha256(stored).hexdigest()
    assert stored.startswith(AGE_MAGIC) and b"\n-> X25519 " in stored[:512]
    assert bundle not in stored and b"form.json" not in stored  # nothing readable reached the server
    identity, recipient = await tender_identity(site, code)
    assert recipient in await page.locator("#bid-form").get_attribute("data-recipient")
    assert pyrage.decrypt(stored, [pyrage.x25519.Identity.from_str(identity)]) == bundle
    other = pyrage.x25519.Identity.generate()
    try:
        pyrage.decrypt(stored, [other])
        opened_by_stranger = True
    except pyrage.DecryptError:
        opened_by_stranger = False
    assert not opened_by_stranger

    # the fallback: the plain bundle, sealed by the server as it arrives; it replaces the first bid
    await page.goto(f"/tenders/{code}/lots/{lot}/bid")
    assert await page.locator(".note").count() == 1  # the page says a bid exists and would be replaced
    await page.set_input_files("#bundle", str(tmp_path / "bid.tar"))
    await page.uncheck("#seal-here")
    await page.click("#bid-form button[type=submit]")
    await page.locator("#receipt").wait_for(state="visible")
    assert await page.locator("#receipt [data-field=sealed_by]").inner_text() == "server"
    second = await page.locator("#receipt [data-field=bid]").inner_text()
    stored, _ = await stored_bid(site, second)
    assert stored.startswith(AGE_MAGIC)
    assert pyrage.decrypt(stored, [pyrage.x25519.Identity.from_str(identity)]) == bundle

    await page.goto("/me/bids")
    first_row = await page.locator("main table tbody tr").first.inner_text()
    assert second in first_row and "由平台加密" in first_row
    assert await axe_violations(page) == []
    await page.goto(f"/tenders/{code}/lots/{lot}/bid")
    assert await axe_violations(page) == []


async def test_a_refused_upload_says_why_in_the_readers_language(site, context_for, tmp_path):
    page = await (await context_for("en")).new_page()
    await sign_in(page, "bidder2")
    async with page.expect_navigation():
        await page.locator("main table tbody tr").first.locator("a.button").click()
    (tmp_path / "notes.tar").write_bytes(b"these are notes, not a bid bundle" * 10)
    await page.set_input_files("#bundle", str(tmp_path / "notes.tar"))
    await page.uncheck("#seal-here")
    await page.click("#bid-form button[type=submit]")
    status = page.locator("#bid-status")
    await status.filter(has_text="not received").wait_for()
    assert "The file is not a bid bundle" in await status.inner_text()
    assert await page.locator("#receipt").is_hidden()


async def test_a_visitor_registers_an_organisation_and_lands_on_my_bids(site, context_for):
    page = await (await context_for("zh-CN")).new_page()
    await page.goto("/register")
    assert await axe_violations(page) == []
    await page.fill("#org_name", "中山市浏览器测试建设有限公司")
    await page.fill("#social_credit_code", "91442000MA4W0009XX")
    await page.fill("#display_name", "测试员")
    await page.fill("#username", "browser-bidder")
    await page.fill("#password", "browser-pass-2026")
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    # a wrong credit code is refused on the form, in Chinese, with the values kept
    assert "统一社会信用代码无效" in await page.locator("[role=alert]").inner_text()
    assert await page.input_value("#org_name") == "中山市浏览器测试建设有限公司"
    from core.identity_rules import uscc_check_char
    good = "91442000MA4W0009" + "0"
    good = good[:17] + uscc_check_char(good[:17])
    await page.fill("#social_credit_code", good)
    await page.fill("#password", "browser-pass-2026")
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    assert page.url.endswith("/me/bids")
    assert "您尚未报名任何标段" in await page.locator("main").inner_text()
    assert await axe_violations(page) == []
