"""HTTP baseline: bidroom's authenticated GET /api/v1/me against a bare aiohttp + asyncpg `SELECT 1` handler.

Both servers run in separate processes on this machine, against the same embedded PostgreSQL, and are loaded
in turn by the same client at the same concurrency. Target: bidroom >= 50% of the bare handler's requests/s.

    .venv/bin/python bench/http_baseline.py [--seconds 10] [--concurrency 32]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._load import run_load  # noqa: E402
from core.db import EmbeddedPostgres, asyncpg_dsn  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_server(db_url: str, port: int) -> None:
    """The baseline: the least an aiohttp + asyncpg handler can do per request."""
    import asyncpg
    from aiohttp import web

    async def init() -> web.Application:
        app = web.Application()
        pool = await asyncpg.create_pool(**asyncpg_dsn(db_url), min_size=10, max_size=10)

        async def handler(request: web.Request) -> web.Response:
            async with pool.acquire() as conn:
                value = await conn.fetchval("SELECT 1")
            return web.json_response({"value": value})
        app.router.add_get("/", handler)
        return app
    web.run_app(init(), host="127.0.0.1", port=port, access_log=None, print=None)


def bidroom_server(db_url: str, data_dir: str, port: int, overrides: dict | None = None) -> None:
    import logging

    from aiohttp import web

    from core.settings import Settings
    from web.app import serving_app
    from web.logs import configure
    configure(json_lines=True, level=logging.WARNING)
    settings = Settings(data_dir=Path(data_dir), database_url=db_url, port=port, run_scheduler=False,
                        **(overrides or {}))
    web.run_app(serving_app(settings), host="127.0.0.1", port=port, access_log=None, print=None)


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


async def bidroom_token(base: str) -> str:
    from tests.helpers import PASSWORD, social_credit_code
    async with aiohttp.ClientSession() as http:
        await http.post(base + "/api/v1/auth/register", json={
            "username": "bench-bidder", "password": PASSWORD, "display_name": "基准测试公司", "role": "bidder",
            "organisation": {"name": "基准测试有限公司", "social_credit_code": social_credit_code(424242)}})
        async with http.post(base + "/api/v1/auth/login",
                             json={"username": "bench-bidder", "password": PASSWORD}) as resp:
            return (await resp.json())["access_token"]


def migrated_database(prefix: str) -> tuple[Path, EmbeddedPostgres, str]:
    """A scratch directory with an embedded PostgreSQL holding a migrated `bench` database: (root, server, url)."""
    from core.migrate import upgrade
    root = Path(tempfile.mkdtemp(prefix=prefix))
    pg = EmbeddedPostgres(root / "pg", cleanup_mode="delete").start()
    pg.psql("CREATE DATABASE bench;")
    db_url = pg.libpq_uri("bench")
    upgrade(db_url)
    return root, pg, db_url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    root, pg, db_url = migrated_database("bidroom-bench-")

    ctx = mp.get_context("spawn")
    procs, targets = [], {}
    try:
        for name in ("bare", "bidroom"):
            port = free_port()
            fn, fargs = (bare_server, (db_url, port)) if name == "bare" else (
                bidroom_server, (db_url, str(root / "var"), port))
            proc = ctx.Process(target=fn, args=fargs, daemon=True)
            proc.start()
            procs.append(proc)
            base = f"http://127.0.0.1:{port}"
            asyncio.run(wait_up(base + ("/" if name == "bare" else "/healthz")))
            if name == "bare":
                targets[name] = (base + "/", None)
            else:
                token = asyncio.run(bidroom_token(base))
                targets[name] = (base + "/api/v1/me", {"Authorization": f"Bearer {token}"})
        # interleave short rounds so that background load on the machine hits both sides alike
        rounds: dict[str, list] = {"bare": [], "bidroom": []}
        for _ in range(args.rounds):
            for name in ("bare", "bidroom"):
                url, headers = targets[name]
                rounds[name].append(asyncio.run(run_load(url, concurrency=args.concurrency,
                                                         seconds=args.seconds / args.rounds, headers=headers,
                                                         warmup_s=0.5)))
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(10)
        pg.stop()

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.concurrency} connections, {args.rounds} interleaved rounds, {args.seconds:.0f} s per side "
          f"(client in this process)")
    ratios = [b.rps / a.rps for a, b in zip(rounds["bare"], rounds["bidroom"])]
    for name, label in (("bare", "bare aiohttp+asyncpg SELECT 1"), ("bidroom", "bidroom GET /api/v1/me (JWT)")):
        merged = rounds[name][0]
        for r in rounds[name][1:]:
            merged = type(merged)(merged.requests + r.requests, merged.errors + r.errors,
                                  merged.seconds + r.seconds, merged.latencies_ms + r.latencies_ms)
        print(merged.line(label))
    ratio = statistics.median(ratios)
    print("per-round ratios: " + " ".join(f"{r:.2f}" for r in ratios))
    print(f"ratio bidroom/bare (median of rounds): {ratio:.2f}  (target >= 0.50: {'met' if ratio >= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
