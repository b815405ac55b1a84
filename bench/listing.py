"""Public tender listing: bidroom's GET /api/v1/tenders with a Chinese keyword and a category filter, against a
bare aiohttp + asyncpg handler running the very same SQL, in one run.

Seeds N demo tenders (trading.demo.demo_rows: Chinese titles over 21 Guangdong cities and four families) with
COPY, then loads three servers in interleaved rounds at the same concurrency: the bare handler, bidroom with its
listing page cache switched off (so both run the SQL on every request: the like-for-like ratio), and bidroom as
it serves by default (the page kept in memory after the first request until a tender changes). Targets
(issue 4): ratio >= 0.5, bidroom p99 <= 50 ms.

    .venv/bin/python bench/listing.py [--tenders 100000] [--seconds 10] [--concurrency 32] [--q 道路]
                                      [--category FJSZ]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._load import LoadResult, run_load  # noqa: E402
from bench.http_baseline import bidroom_server, free_port, migrated_database, wait_up  # noqa: E402
from core.db import asyncpg_dsn  # noqa: E402


def compiled_listing(q: str, category: str, limit: int) -> tuple[str, list]:
    """The listing's SQL and positional parameters exactly as the service builds them."""
    from trading.listing.query import ListingFilter, listing_sql
    return listing_sql(ListingFilter(q=q, category=category, limit=limit))


def bare_server(db_url: str, port: int, q: str, category: str, limit: int) -> None:
    """The baseline: aiohttp + asyncpg running the listing SQL and returning its rows as JSON."""
    import asyncpg
    from aiohttp import web

    sql, params = compiled_listing(q, category, limit)

    async def init() -> web.Application:
        app = web.Application()
        pool = await asyncpg.create_pool(**asyncpg_dsn(db_url), min_size=10, max_size=10)

        async def handler(request: web.Request) -> web.Response:
            async with pool.acquire() as conn:
                rows = await conn.fetch(sql, *params)
            return web.json_response({"items": [dict(r) for r in rows[:limit]]},
                                     dumps=lambda d: json.dumps(d, ensure_ascii=False, default=str))
        app.router.add_get("/", handler)
        return app
    web.run_app(init(), host="127.0.0.1", port=port, access_log=None, print=None)


async def seed(db_url: str, n: int) -> float:
    """N tenders by COPY (plus 21 tenderers and one agent); returns the seconds it took."""
    import asyncpg

    from trading.demo import CITIES, TENDERER_PATTERNS, demo_rows
    started = time.perf_counter()
    conn = await asyncpg.connect(**asyncpg_dsn(db_url))
    try:
        user_id = await conn.fetchval(
            "INSERT INTO app_user (public_id, username, display_name, password_hash, roles) "
            "VALUES ('U-BENCH1', 'bench-agent', '基准代理', 'x', '{agent}') RETURNING id")
        tenderers = {}
        for i, (region, city, _) in enumerate(CITIES):
            name = TENDERER_PATTERNS[i % len(TENDERER_PATTERNS)].format(city=city)
            org_id = await conn.fetchval("INSERT INTO organisation (public_id, name, kind) VALUES ($1, $2, "
                                         "'public_institution') RETURNING id", f"O-BENCH{i:02d}", name)
            tenderers[region] = (org_id, name)
        now = datetime.now(timezone.utc)
        rows = list(demo_rows(random.Random(2026), n, now=now, tenderers=tenderers, agent_org_id=None,
                              created_by_id=user_id))
        columns = list(rows[0])
        records = [tuple(json.dumps(r[c], ensure_ascii=False) if c == "evaluation" else r[c] for c in columns)
                   for r in rows]
        await conn.copy_records_to_table("tender", records=records, columns=columns)
        await conn.execute("ANALYZE tender")
    finally:
        await conn.close()
    return time.perf_counter() - started


def _merge(results: list[LoadResult]) -> LoadResult:
    return LoadResult(sum(r.requests for r in results), sum(r.errors for r in results),
                      sum(r.seconds for r in results), [x for r in results for x in r.latencies_ms])


async def _sample(url: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return len(body["items"])


SERVERS = {
    "bare": "bare aiohttp+asyncpg, same SQL",
    "uncached": "bidroom, page cache off",
    "bidroom": "bidroom GET /api/v1/tenders",
    "churn": "bidroom, with tenders changing",
}


async def load_with_changes(url: str, db_url: str, changes_per_s: float, **load) -> LoadResult:
    """Load `url` while another connection changes a tender `changes_per_s` times a second (each change drops
    every cached page, as a real edit, publication or close would)."""
    import asyncpg
    conn = await asyncpg.connect(**asyncpg_dsn(db_url))
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM tender ORDER BY random() LIMIT 1000")]
    done = asyncio.Event()

    async def change() -> None:
        while not done.is_set():
            await conn.execute("UPDATE tender SET updated_at = now() WHERE id = $1", random.choice(ids))
            await asyncio.sleep(1 / changes_per_s)
    writer = asyncio.create_task(change())
    try:
        return await run_load(url, **load)
    finally:
        done.set()
        await writer
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenders", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--q", default="道路")
    parser.add_argument("--category", default="FJSZ")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--changes-per-s", type=float, default=20, help="tender changes a second in the churn run")
    args = parser.parse_args()

    root, pg, db_url = migrated_database("bidroom-bench-listing-")
    seed_s = asyncio.run(seed(db_url, args.tenders))

    ctx = mp.get_context("spawn")
    procs, targets = [], {}
    query = urlencode({"q": args.q, "category": args.category, "limit": args.limit})
    try:
        for name in ("bare", "uncached", "bidroom"):
            port = free_port()
            if name == "bare":
                fn, fargs = bare_server, (db_url, port, args.q, args.category, args.limit)
            else:  # both bidroom servers share the data directory's keys; only the page cache differs
                overrides = {"listing_cache_s": 0} if name == "uncached" else {}
                fn, fargs = bidroom_server, (db_url, str(root / "var"), port, overrides)
            proc = ctx.Process(target=fn, args=fargs, daemon=True)
            proc.start()
            procs.append(proc)
            base = f"http://127.0.0.1:{port}"
            asyncio.run(wait_up(base + ("/" if name == "bare" else "/healthz")))
            targets[name] = base + "/" if name == "bare" else f"{base}/api/v1/tenders?{query}"
        targets["churn"] = targets["bidroom"]
        items = {name: asyncio.run(_sample(url)) for name, url in targets.items()}
        rounds: dict[str, list[LoadResult]] = {name: [] for name in SERVERS}
        load = dict(concurrency=args.concurrency, seconds=args.seconds / args.rounds, warmup_s=0.5)
        for _ in range(args.rounds):
            for name in SERVERS:
                run = (load_with_changes(targets[name], db_url, args.changes_per_s, **load) if name == "churn"
                       else run_load(targets[name], **load))
                rounds[name].append(asyncio.run(run))
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(10)
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.tenders} tenders seeded in {seed_s:.0f} s, {args.concurrency} connections, {args.rounds} "
          f"interleaved rounds, {args.seconds:.0f} s per server")
    print(f"query: q={args.q} category={args.category} limit={args.limit} ({items['bidroom']} items per page; "
          f"bare returns {items['bare']})")
    for name, label in SERVERS.items():
        print(_merge(rounds[name]).line(label if name != "churn" else f"{label} {args.changes_per_s:g}/s"))

    def ratio(name: str) -> tuple[float, list[float]]:
        per_round = [b.rps / a.rps for a, b in zip(rounds["bare"], rounds[name])]
        return statistics.median(per_round), per_round

    same_sql, same_sql_rounds = ratio("uncached")
    served, served_rounds = ratio("bidroom")
    print("per-round ratios, page cache off: " + " ".join(f"{r:.2f}" for r in same_sql_rounds))
    print("per-round ratios, as served:      " + " ".join(f"{r:.2f}" for r in served_rounds))
    print(f"ratio bidroom/bare, both running the SQL (cache off): {same_sql:.2f}  "
          f"(target >= 0.50: {'met' if same_sql >= 0.5 else 'NOT met'})")
    print(f"ratio bidroom/bare, bidroom as served (cache on):      {served:.2f}")
    p99 = _merge(rounds["bidroom"]).pct(99)
    print(f"bidroom p99 as served: {p99:.1f} ms  (target <= 50 ms: {'met' if p99 <= 50 else 'NOT met'}); "
          f"with the cache off: {_merge(rounds['uncached']).pct(99):.1f} ms; with {args.changes_per_s:g} tender "
          f"changes a second: {_merge(rounds['churn']).pct(99):.1f} ms")


if __name__ == "__main__":
    main()
