"""Pages: the public tender list page against GET /api/v1/tenders with the same query, in one run (target: the page
serves >= 50% of the API's requests/s); first paint and full load of the list page in Chromium on loopback; the
JavaScript and CSS each page loads; the supervisor's video wall of a session with 5 places on camera (first paint,
load event, and every tile's first video frame), its JavaScript and CSS, and the replay page's.

One `bidroom` server process (serving_app) on an embedded PostgreSQL with the demo data (N bulk tenders), loaded
in interleaved rounds by the same client at the same concurrency.

    .venv/bin/python bench/pages.py [--tenders 2000] [--seconds 10] [--concurrency 16] [--loads 10] [--wall-only]

The wall's 5 places are published by aiortc clients in this process sending a pre-encoded VP8 640x480 15 fps +
Opus clip (bench/media.py's publishers: no encoding on the client), into a session made as bench/media.py makes
its sessions; the supervisor signs in through the sign-in page.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing as mp
import platform
import statistics
import sys
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._load import run_load  # noqa: E402
from bench.http_baseline import bidroom_server, free_port, migrated_database  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
QUERY = "q=" + quote("中山")


async def seed(db_url: str, data_dir: Path, tenders: int) -> None:
    from rich.console import Console

    from core.settings import Settings
    from web.demo import seed_demo
    settings = Settings(data_dir=data_dir, database_url=db_url, statutory_periods=False, run_scheduler=False)
    await seed_demo(settings, console=Console(file=io.StringIO()), only_if_empty=False, tenders=tenders,
                    experts=10)


async def wait_up(url: str, proc, timeout_s: float = 180) -> None:
    import aiohttp
    async with aiohttp.ClientSession() as http:
        for _ in range(int(timeout_s * 5)):
            if not proc.is_alive():
                raise SystemExit(f"the server exited with {proc.exitcode}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


async def csrf_cookie(base: str) -> str:
    import aiohttp
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/tenders") as resp:
            return resp.cookies["bidroom_csrf"].value


async def browser_figures(base: str, loads: int) -> dict:
    from playwright.async_api import async_playwright
    out: dict = {"paint": [], "load": [], "weights": {}}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(loads):  # a fresh context each time: nothing cached
            context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            page = await context.new_page()
            await page.goto(f"{base}/tenders?{QUERY}", wait_until="load")
            timing = await page.evaluate("""() => new Promise((resolve) => {
                const done = (paint) => resolve({paint,
                    load: performance.getEntriesByType('navigation')[0].loadEventEnd});
                new PerformanceObserver((list) => {
                    const fcp = list.getEntries().find((e) => e.name === 'first-contentful-paint');
                    if (fcp) done(fcp.startTime);
                }).observe({type: 'paint', buffered: true});
                setTimeout(() => done(null), 3000);
            })""")
            out["paint"].append(timing["paint"])
            out["load"].append(timing["load"])
            await context.close()
        context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = await context.new_page()
        sizes: dict[str, dict[str, int]] = {}
        current = {"name": "sign-in, my bids"}

        async def count(response) -> None:
            kind = response.request.resource_type
            if kind in ("script", "stylesheet"):
                body = await response.body()
                bucket = sizes.setdefault(current["name"], {"script": 0, "stylesheet": 0})
                bucket[kind] += len(body)
        page.on("response", lambda r: asyncio.ensure_future(count(r)))
        await page.goto(f"{base}/signin")
        await page.fill("#username", "bidder1")
        await page.fill("#password", "bidroom-demo-2026")
        async with page.expect_navigation():
            await page.click("main form button[type=submit]")
        bid_url = await page.locator("main table tbody tr a.button").first.get_attribute("href")
        code = bid_url.split("/")[2]
        for name, path in (("tender list", f"/tenders?{QUERY}"), ("tender detail", f"/tenders/{code}"),
                           ("my bids", "/me/bids"), ("sealed bid", bid_url), ("API reference", "/api/v1/docs")):
            current["name"] = name
            await page.route("**/*", lambda route: route.continue_())  # no HTTP cache between pages
            await page.goto(base + path, wait_until="networkidle")
            await page.unroute("**/*")
        await page.wait_for_timeout(500)
        out["weights"] = sizes
        await browser.close()
    return out


PAINT_AND_LOAD = """() => new Promise((resolve) => {
    const done = (paint) => resolve({paint, load: performance.getEntriesByType('navigation')[0].loadEventEnd});
    new PerformanceObserver((list) => {
        const fcp = list.getEntries().find((e) => e.name === 'first-contentful-paint');
        if (fcp) done(fcp.startTime);
    }).observe({type: 'paint', buffered: true});
    setTimeout(() => done(null), 3000);
})"""

# the moment (ms since navigation) every tile of the wall has shown a video frame
ALL_TILES_MOVING = """(count) => new Promise((resolve) => {
    const give_up = performance.now() + 30000;
    const check = () => {
        if (performance.now() > give_up) {
            const videos = [...document.querySelectorAll('#wall-tiles video')];
            console.log('wall: ' + videos.filter((v) => v.videoWidth > 0 && v.currentTime > 0).length + ' of '
                        + videos.length + ' tiles moving; ' + document.getElementById('wall-status').dataset.state);
            resolve(null);
            return;
        }
        const videos = [...document.querySelectorAll('#wall-tiles video')];
        if (videos.length >= count && videos.every((v) => v.videoWidth > 0 && v.currentTime > 0)) {
            resolve(performance.now());
        } else {
            setTimeout(check, 20);
        }
    };
    check();
})"""


async def wall_figures(base: str, data_dir: Path, db_url: str, loads: int, places: int = 5) -> dict:
    """Publish `places` places of a new session, then load the supervisor's wall of it `loads` times cold."""
    import aiohttp
    import pyotp
    from playwright.async_api import async_playwright
    from sqlalchemy import any_, literal, update

    from bench import media as bench_media
    from core.db import create_engine, session_factory
    from core.identity_models import User
    from core.passwords import hash_password

    bench_media.make_clip()
    world = await bench_media.build_world(db_url, data_dir, shapes=[places])
    session = world.sessions[0]
    secret = pyotp.random_base32()
    engine = create_engine(db_url, pool_size=1)
    async with session_factory(engine)() as db, db.begin():
        username = (await db.execute(update(User).where(literal("supervisor") == any_(User.roles))
                                     .where(User.password_hash == "!")
                                     .values(password_hash=await hash_password("bench-wall-2026"),
                                             totp_secret=secret).returning(User.username))).scalars().first()
    await engine.dispose()

    out: dict = {"paint": [], "load": [], "moving": [], "weights": {}}
    ws_base = base.replace("http://", "ws://")
    async with aiohttp.ClientSession() as http, async_playwright() as p:

        async def on_camera() -> list:
            publishers = [bench_media.Publisher(ws_base, session.public_id, place) for place in session.places]
            for publisher in publishers:
                await publisher.start(http)
            await asyncio.sleep(1.0)   # every place sending before the supervisor opens the wall
            return publishers

        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = await context.new_page()
        await page.goto(f"{base}/signin")
        await page.fill("#username", username)
        await page.fill("#password", "bench-wall-2026")
        await page.fill("#totp", pyotp.TOTP(secret).now())
        async with page.expect_navigation():
            await page.click("main form button[type=submit]")
        signed_in = await context.storage_state()
        await context.close()
        wall = f"{base}/supervise/sessions/{session.public_id}"
        # each load with the places freshly on camera (a publication per load: in a first version, publishers
        # kept for every load stopped sending after a minute or so under this machine's load), in a fresh context
        # with the session cookie only: nothing cached
        for _ in range(loads):
            publishers = await on_camera()
            try:
                context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                                    storage_state=signed_in)
                page = await context.new_page()
                page.on("console", lambda m: m.text.startswith("wall:") and print(m.text, flush=True))
                await page.goto(wall, wait_until="load")
                timing = await page.evaluate(PAINT_AND_LOAD)
                out["paint"].append(timing["paint"])
                out["load"].append(timing["load"])
                out["moving"].append(await page.evaluate(ALL_TILES_MOVING, places))
                await context.close()
            finally:
                for publisher in publishers:
                    await publisher.stop()
        context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                            storage_state=signed_in)
        page = await context.new_page()
        sizes: dict[str, dict[str, int]] = {}
        current = {"name": ""}

        async def count(response) -> None:
            kind = response.request.resource_type
            if kind in ("script", "stylesheet"):
                body = await response.body()
                bucket = sizes.setdefault(current["name"], {"script": 0, "stylesheet": 0})
                bucket[kind] += len(body)
        page.on("response", lambda r: asyncio.ensure_future(count(r)))
        for name, path in (("video wall", wall), ("replay", wall + "/replay")):
            current["name"] = name
            await page.goto(path, wait_until="load")
            await page.wait_for_timeout(500)
        out["weights"] = sizes
        await browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenders", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--wall-only", action="store_true", help="only the supervisor's video wall")
    args = parser.parse_args()

    root, pg, db_url = migrated_database("bidroom-bench-pages-")
    asyncio.run(seed(db_url, root / "var", args.tenders))
    port = free_port()
    proc = mp.get_context("spawn").Process(target=bidroom_server, args=(db_url, str(root / "var"), port), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_up(base + "/healthz", proc))
        targets = {"page  GET /tenders?" + QUERY: f"{base}/tenders?{QUERY}",
                   "API   GET /api/v1/tenders?" + QUERY: f"{base}/api/v1/tenders?{QUERY}"}
        # a browser comes back with the CSRF cookie its first page set; the load client sends it the same way
        # (aiohttp's cookie jar ignores cookies from an IP address), and the API ignores it
        headers = {"Cookie": f"bidroom_csrf={asyncio.run(csrf_cookie(base))}"}
        rounds: dict[str, list] = {name: [] for name in targets}
        # interleaved: background load on the machine hits both alike
        for _ in range(0 if args.wall_only else args.rounds):
            for name, url in targets.items():
                rounds[name].append(asyncio.run(run_load(url, concurrency=args.concurrency, headers=headers,
                                                         seconds=args.seconds / args.rounds, warmup_s=0.5)))
        figures = None if args.wall_only else asyncio.run(browser_figures(base, args.loads))
        wall = asyncio.run(wall_figures(base, root / "var", db_url, args.loads))
    finally:
        proc.terminate()
        proc.join(10)
        pg.stop()

    if not args.wall_only:
        list_figures(args, rounds, figures)
    paints = [p for p in wall["paint"] if p is not None]
    moving = [m for m in wall["moving"] if m is not None] or [float("nan")]
    print(f"Chromium, supervisor's wall of 5 places on camera, {args.loads} cold loads: first contentful paint median "
          f"{statistics.median(paints):.0f} ms (min {min(paints):.0f}), load event median "
          f"{statistics.median(wall['load']):.0f} ms (min {min(wall['load']):.0f}), every tile's first video frame "
          f"median {statistics.median(moving):.0f} ms (min {min(moving):.0f}, "
          f"{len(moving)} of {args.loads} within 30 s)")
    for name, weight in wall["weights"].items():
        print(f"{name:<16} JS {weight['script'] / 1024:8.1f} KiB   CSS {weight['stylesheet'] / 1024:6.1f} KiB")


def list_figures(args, rounds: dict, figures: dict) -> None:
    print(f"# pages — {platform.python_version()}, {mp.cpu_count()} cores, {args.tenders} demo tenders, "
          f"concurrency {args.concurrency}, {args.rounds} rounds of {args.seconds / args.rounds:.1f} s each")
    rps = {}
    for name, results in rounds.items():
        total = sum(r.requests for r in results)
        seconds = sum(r.seconds for r in results)
        latencies = [x for r in results for x in r.latencies_ms]
        errors = sum(r.errors for r in results)
        rps[name] = total / seconds
        print(f"{name:<52} {rps[name]:8.0f} req/s   p50 {statistics.median(latencies):6.2f} ms   errors {errors}")
    page_rps, api_rps = rps.values()
    print(f"ratio page/API: {page_rps / api_rps:.2f} (target >= 0.5)")
    paints = [p for p in figures["paint"] if p is not None]
    print(f"Chromium, list page, {args.loads} cold loads: first contentful paint median "
          f"{statistics.median(paints):.0f} ms (min {min(paints):.0f}, {len(paints)} reported), load event median "
          f"{statistics.median(figures['load']):.0f} ms (min {min(figures['load']):.0f})")
    for name, weight in figures["weights"].items():
        print(f"{name:<16} JS {weight['script'] / 1024:8.1f} KiB   CSS {weight['stylesheet'] / 1024:6.1f} KiB")


if __name__ == "__main__":
    main()
