"""Browser fixtures for page tests, for every role's pages: one `bidroom serve` process on the embedded
PostgreSQL (a database copied from the test session's migrated template, with the demo data seeded small), and
Debian's Chromium driven by Playwright.

- `site` (session): the running server: `site.base`, `site.data_dir`, `site.db_url`.
- `browser` (session): Chromium from /usr/bin/chromium (headless, no sandbox, fake camera and microphone).
- `context_for(locale)`: a fresh browser context (own cookies) in a language; closed at the end of the test.
- `sign_in(page, username, password, totp=None)`, `forget_last_code(site, username)`, `axe_violations(page)`,
  `DEMO_PASSWORD`.

Everything runs in the session's event loop; one server and one browser serve the whole directory: under xdist,
tests/conftest.py (SERIAL_GROUPS) runs every test under tests/browser/ on one worker, so the demo is seeded once
per run and the server and Chromium start once."""
from __future__ import annotations

import asyncio
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from rich.console import Console

from core.db import asyncpg_dsn
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BIDROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--use-fake-ui-for-media-stream",
                 # the fake camera at 5 frames a second (the pages ask for 15): five members' cameras, each member
                 # decoding the other four and the wall all five, on the two cores the suite runs on
                 "--use-fake-device-for-media-stream=fps=5"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
DEMO_PASSWORD = "bidroom-demo-2026"
TEMPLATE = "bidroom_template"


@dataclass(frozen=True)
class Site:
    base: str
    data_dir: Path
    db_url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                async with http.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("server did not become healthy in time")


@pytest.fixture(scope="session")
async def site(pg_server, tmp_path_factory):
    """A real server process with demo data: its own database from the migrated template, its own data dir."""
    name = f"browser_{os.getpid()}"
    admin = await asyncpg.connect(**asyncpg_dsn(pg_server.libpq_uri("postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
    finally:
        await admin.close()
    db_url = pg_server.libpq_uri(name)
    data_dir = tmp_path_factory.mktemp("browser") / "var"
    port = _free_port()
    settings = Settings(data_dir=data_dir, database_url=db_url, public_url=f"http://127.0.0.1:{port}",
                        statutory_periods=False, run_scheduler=False, log_json=False)
    from web.demo import seed_demo
    await seed_demo(settings, console=Console(file=io.StringIO()), only_if_empty=False, tenders=6, experts=200)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
    env.update(BIDROOM_DATA_DIR=str(data_dir), BIDROOM_DATABASE_URL=db_url, BIDROOM_LOG_FORMAT="text",
               BIDROOM_STATUTORY_PERIODS="off", BIDROOM_CHECKPOINT_INTERVAL_S="3",
               BIDROOM_ENROLMENT_PRIORITY="low")  # the suite keeps both cores busy (see tests/conftest.py)
    log = data_dir.parent / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(base, proc, log)
        yield Site(base, data_dir, db_url, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        admin = await asyncpg.connect(**asyncpg_dsn(pg_server.libpq_uri("postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def browser() -> Browser:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context_for(browser, site):
    """Make browser contexts (separate cookie jars) in a language, at 1366x768; all closed after the test."""
    made: list[BrowserContext] = []

    async def make(locale: str = "zh-CN", **options) -> BrowserContext:
        options.setdefault("viewport", {"width": 1366, "height": 768})
        context = await browser.new_context(locale=locale, base_url=site.base, **options)
        context.set_default_timeout(15_000)
        made.append(context)
        return context
    yield make
    for context in made:
        await context.close()


async def forget_last_code(site, username: str) -> None:
    """A one-time code is accepted once per 30 s step, and the browser tests sign the same demo staff in many
    times (pages and API clients): forget the step last used, as the clock moving on would."""
    conn = await asyncpg.connect(**asyncpg_dsn(site.db_url))
    try:
        await conn.execute("UPDATE app_user SET totp_last_step = NULL WHERE username = $1", username)
    finally:
        await conn.close()


async def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD,
                  totp: str | Callable[[], str] | None = None) -> None:
    """Through the sign-in page, as a person would. `totp` may be a function giving the code: it is read as the
    field is filled, as a person reads their authenticator, so a 30 s step that ends while the page loads cannot
    leave a stale code."""
    await page.goto("/signin")
    await page.fill("#username", username)
    await page.fill("#password", password)
    if totp:
        await page.fill("#totp", totp() if callable(totp) else totp)
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    if page.url.split("?")[0].rstrip("/").endswith("/signin"):  # refused: say so here, not as a missing page later
        shown = await page.locator("main").inner_text()
        raise AssertionError(f"{username} could not sign in: {shown[:300]}")


async def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """Run axe-core (npm) on the page; evaluated through the DevTools protocol, so the page's CSP allows it."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]


async def answer_in_place(page: Page, target, *, timeout_ms: float = 30_000) -> None:
    """Click a form's button on a place page whose member is on air: the page sends the form and shows the answer
    without leaving (the camera, its recording and the conference run on). Waits for that answer."""
    locator = page.locator(target) if isinstance(target, str) else target
    token = secrets.token_hex(8)   # gone if the page were loaded again instead of answering in place
    before = await page.evaluate("(t) => { window.answerToken = t; "
                                 "return document.getElementById('main').dataset.answered || '0'; }", token)
    await locator.click(timeout=timeout_ms)
    await page.wait_for_function("([t, n]) => window.answerToken === t "
                                 "&& (document.getElementById('main').dataset.answered || '0') !== n",
                                 arg=[token, before], timeout=timeout_ms)


async def refresh_place(page: Page) -> None:
    """Bring an on-air place page up to date without reloading it (what it does by itself every few seconds)."""
    await page.evaluate("window.bidroomPlace.refresh()")
