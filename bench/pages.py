"""Pages: the public tender list page against GET /api/v1/tenders with the same query, in one run (target: the page
serves >= 50% of the API's requests/s); first paint and full load of the list page in Chromium on loopback; the
JavaScript and CSS each page loads.

One `bidroom` server process (serving_app) on an embedded PostgreSQL with the demo data (N bulk tenders), loaded
in interleaved rounds by the same client at the same concurrency.

    .venv/bin/python bench/pages.py [--tenders 2000] [--seconds 10] [--concurrency 16] [--loads 10]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenders", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loads", type=int, default=10)
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
        for _ in range(args.rounds):  # interleaved: background load on the machine hits both alike
            for name, url in targets.items():
                rounds[name].append(asyncio.run(run_load(url, concurrency=args.concurrency, headers=headers,
                                                         seconds=args.seconds / args.rounds, warmup_s=0.5)))
        figures = asyncio.run(browser_figures(base, args.loads))
    finally:
        proc.terminate()
        proc.join(10)
        pg.stop()

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
