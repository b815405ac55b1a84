"""Deadline burst: many bidders upload their bids in the last seconds before the bid deadline.

Two server processes on one embedded PostgreSQL: bidroom (PUT /api/v1/tenders/{code}/lots/{lot}/bid, a plain
bid bundle sealed with age on arrival, the deadline re-checked by the DB clock, a signed receipt) and a bare
aiohttp handler streaming the same uploads to disk with a SHA-256 (the baseline). The same client sends the
same uploads to both at the same concurrency.

For bidroom the deadline is set so the burst starts `--lead` seconds before it; a late wave of `--late`
uploads starts just after it. Then the script checks that:
- every 201 carries a receipt whose DB time is before the deadline, and every receipt has its row;
- no bid row was recorded at or after the deadline, and every late upload got 409 bid_deadline_passed;
- opening the stored bids with two holders' shares gives back exactly the bytes each bidder sent.

With `--kill-at S` the bidroom server is killed with SIGKILL S seconds into the burst and started again on the
same port; a bidder whose upload broke retries until it has a receipt (as a bidder would). Every receipt issued
before the kill must still open to the bytes sent. Peak RSS is the larger VmHWM of the two server processes.

    .venv/bin/python bench/deadline_burst.py [--bidders 300] [--mib 5] [--lead 60] [--late 20] [--kill-at 10]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import platform
import signal
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_baseline import free_port, migrated_database, wait_up  # noqa: E402

PASSPHRASES = ["bench-holder-passphrase-1", "bench-holder-passphrase-2"]


def bare_server(port: int, directory: str) -> None:
    """The baseline: stream the body to a file while hashing it, return the digest."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        path = Path(directory) / f"{os.urandom(8).hex()}.bin"
        with open(path, "wb") as out:
            async for chunk in request.content.iter_chunked(256 * 1024):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        return web.json_response({"sha256": digest.hexdigest()}, status=201)
    app = web.Application()
    app.router.add_put("/bid", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def bidroom_server(db_url: str, data_dir: str, port: int) -> None:
    import logging

    from aiohttp import web

    from core.settings import Settings
    from web.app import serving_app
    from web.logs import configure
    configure(json_lines=True, level=logging.WARNING)
    settings = Settings(data_dir=Path(data_dir), database_url=db_url, port=port, run_scheduler=False)
    web.run_app(serving_app(settings), host="127.0.0.1", port=port, access_log=None, print=None)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def register_bidders(base: str, n: int) -> list[tuple[str, str]]:
    """n bidder accounts with their organisations: (user public id, token)."""
    from tests.helpers import PASSWORD, social_credit_code
    sem = asyncio.Semaphore(8)

    async def one(http: aiohttp.ClientSession, i: int) -> tuple[str, str]:
        async with sem:
            async with http.post(base + "/api/v1/auth/register", json={
                    "username": f"burst{i}", "password": PASSWORD, "display_name": f"投标人{i}",
                    "role": "bidder", "organisation": {"name": f"中山市第{i}建设工程有限公司",
                                                       "social_credit_code": social_credit_code(700000 + i)}}) as r:
                user = await r.json()
            async with http.post(base + "/api/v1/auth/login",
                                 json={"username": f"burst{i}", "password": PASSWORD}) as r:
                return user["public_id"], (await r.json())["access_token"]
    async with aiohttp.ClientSession() as http:
        return await asyncio.gather(*[one(http, i) for i in range(n)])


async def make_tender(db_url: str, bidders: list[str], data_dir: Path) -> tuple[str, str, int]:
    """A published tender with one lot, the bidders registered, two enrolled holders; returns (code, lot, id)."""
    from concurrent.futures import ProcessPoolExecutor

    from sqlalchemy import select, text

    from core import identity_service
    from core.db import create_engine, session_factory
    from core.identity_models import User
    from tests.helpers import social_credit_code
    from trading import keyholding
    from trading.models import BidderRegistration, Lot, Tender

    with ProcessPoolExecutor(max_workers=2) as pool:
        wrapped = list(pool.map(keyholding.wrap_holder_identity, PASSPHRASES))
    engine = create_engine(db_url, pool_size=2)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        org = await identity_service.create_organisation(session, actor="system", name="基准招标代理有限公司",
                                                         social_credit_code=social_credit_code(699999))
        holders = []
        for i, pair in enumerate(wrapped):
            user, _ = await identity_service.create_user(
                session, actor="system", username=f"holder{i}", password="correct-horse-7battery",
                display_name=f"持钥人{i}", roles=["agent"], organisation_public_id=org.public_id)
            await keyholding.store_holder_key(session, user, pair[0], pair[1], actor="system")
            holders.append(user)
        tender = Tender(code="ZS-2026-FJSZ-77777", title="中山市道路改造工程（基准）", family="FJSZ",
                        subtype="FJSZ-SG", method="open", region_code="ZS", status="draft", tenderer_id=org.id,
                        agent_id=org.id, created_by_id=holders[0].id, budget=Decimal("9000000.00"))
        session.add(tender)
        await session.flush()
        lot = Lot(public_id=f"{tender.code}-L01", tender_id=tender.id, lot_no=1, title="第一标段",
                  budget=Decimal("9000000.00"))
        session.add(lot)
        await session.flush()
        users = (await session.execute(select(User).where(User.public_id.in_(bidders)))).scalars()
        for user in users:
            session.add(BidderRegistration(tender_id=tender.id, lot_id=lot.id, organisation_id=user.organisation_id,
                                           registered_by_id=user.id))
        await keyholding.set_key_holders(session, tender, [h.public_id for h in holders], 2, actor="system")
        await keyholding.seal_at_publish(session, tender, actor="system")
        await session.execute(text("UPDATE tender SET status = 'published', published_at = now(), "
                                   "bid_deadline_at = now() + interval '1 day' WHERE id = :i"), {"i": tender.id})
        result = tender.code, lot.public_id, tender.id
    await engine.dispose()
    return result


async def set_deadline(db_url: str, tender_id: int, seconds: float) -> datetime:
    import asyncpg

    from core.db import asyncpg_dsn
    conn = await asyncpg.connect(**asyncpg_dsn(db_url))
    try:
        return await conn.fetchval("UPDATE tender SET bid_deadline_at = now() + make_interval(secs => $1) "
                                   "WHERE id = $2 RETURNING bid_deadline_at", seconds, tender_id)
    finally:
        await conn.close()


async def burst(url_of, payloads: list[bytes], tokens: list[str | None], *, start_at: float,
                retry_until: float | None = None) -> list[tuple]:
    """All uploads at once from `start_at` (monotonic): [(status, json or None, seconds, finished_at, attempts)].

    With `retry_until`, an upload whose connection broke (the server was killed) is sent again after a short
    pause until it gets an HTTP answer or that time passes; its seconds count from the first attempt."""
    connector = aiohttp.TCPConnector(limit=len(payloads))
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        async def one(i: int) -> tuple:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
            headers = {"Content-Type": "application/octet-stream"}
            if tokens[i]:
                headers["Authorization"] = f"Bearer {tokens[i]}"
            t0, attempts = time.monotonic(), 0
            while True:
                attempts += 1
                try:
                    async with http.put(url_of(i), data=payloads[i], headers=headers) as resp:
                        body = await resp.json()
                        return resp.status, body, time.monotonic() - t0, time.time(), attempts
                except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                    if retry_until is None or time.monotonic() > retry_until:
                        return 0, {"error": str(err)}, time.monotonic() - t0, time.time(), attempts
                    await asyncio.sleep(0.5)
        return await asyncio.gather(*[one(i) for i in range(len(payloads))])


def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] if data else float("nan")


def report(name: str, results: list[tuple], total_bytes: int) -> None:
    ok = [r for r in results if r[0] == 201]
    span = max(r[2] for r in results) if results else float("nan")
    lat = [r[2] * 1000 for r in ok]
    print(f"{name:<44} {len(ok):4d}/{len(results)} ok  {total_bytes / 2**20 / span:7.1f} MiB/s  "
          f"{len(ok) / span:6.1f} bids/s  p50 {pct(lat, 50):7.0f} ms  p99 {pct(lat, 99):7.0f} ms")


async def stored_keys(db_url: str, tender_id: int) -> set[str]:
    """The storage keys of every bid row of the tender, whatever its status."""
    import asyncpg

    from core.db import asyncpg_dsn
    conn = await asyncpg.connect(**asyncpg_dsn(db_url))
    try:
        return {r["storage_key"] for r in await conn.fetch("SELECT storage_key FROM bid WHERE tender_id = $1",
                                                            tender_id)}
    finally:
        await conn.close()


async def open_all(db_url: str, storage: Path, tender_id: int) -> dict[str, str]:
    """Open every stored live bid with two holders' shares: {bid public id: SHA-256 of the plaintext}."""
    import asyncpg
    import pyrage

    from core.db import asyncpg_dsn
    from evidence import sealing
    from trading import keyholding
    conn = await asyncpg.connect(**asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch("SELECT k.encrypted_share, h.wrapped_identity, t.age_recipient FROM tender_key_holder k "
                                "JOIN holder_key h ON h.id = k.holder_key_id JOIN tender t ON t.id = k.tender_id "
                                "WHERE k.tender_id = $1 ORDER BY k.position", tender_id)
        shares = []
        for row, passphrase in zip(rows, PASSPHRASES):
            identity = keyholding.unwrap_holder_identity(row["wrapped_identity"], passphrase)
            shares.append(pyrage.decrypt(row["encrypted_share"], [pyrage.x25519.Identity.from_str(identity)]))
        identity = sealing.combine_shares(shares, rows[0]["age_recipient"])
        bids = await conn.fetch("SELECT public_id, storage_key FROM bid WHERE tender_id = $1 AND status = 'submitted'",
                                tender_id)
        return {b["public_id"]: hashlib.sha256(sealing.open_sealed(storage / b["storage_key"], identity)).hexdigest()
                for b in bids}
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bidders", type=int, default=300)
    parser.add_argument("--mib", type=float, default=5.0)
    parser.add_argument("--lead", type=float, default=60.0, help="seconds between the burst and the deadline")
    parser.add_argument("--late", type=int, default=20, help="uploads started just after the deadline")
    parser.add_argument("--kill-at", type=float, default=10.0,
                        help="SIGKILL the bidroom server this many seconds into the burst, then restart it (0: no)")
    args = parser.parse_args()

    from trading.bundle import make_bundle

    root, pg, db_url = migrated_database("bidroom-burst-")
    (root / "bare").mkdir()

    ctx = mp.get_context("spawn")
    procs = []
    try:
        bare_port, bid_port = free_port(), free_port()
        for fn, fargs in ((bare_server, (bare_port, str(root / "bare"))),
                          (bidroom_server, (db_url, str(root / "var"), bid_port))):
            proc = ctx.Process(target=fn, args=fargs, daemon=True)
            proc.start()
            procs.append(proc)
        base = f"http://127.0.0.1:{bid_port}"
        asyncio.run(wait_up(base + "/healthz"))
        n = args.bidders + args.late
        accounts = asyncio.run(register_bidders(base, n))
        code, lot, tender_id = asyncio.run(make_tender(db_url, [a[0] for a in accounts], root / "var"))
        doc = os.urandom(int(args.mib * 2**20))
        payloads = [make_bundle({"price": f"{1000000 + i}.00", "duration_days": 180},
                                {"投标文件.pdf": doc[:-8] + i.to_bytes(8, "big")}) for i in range(n)]
        sent = [hashlib.sha256(p).hexdigest() for p in payloads]
        total = sum(len(p) for p in payloads[:args.bidders])

        # baseline: the same main burst to the bare handler
        bare = asyncio.run(burst(lambda i: f"http://127.0.0.1:{bare_port}/bid", payloads[:args.bidders],
                                 [None] * args.bidders, start_at=time.monotonic()))

        url = f"{base}/api/v1/tenders/{code}/lots/{lot}/bid"
        tokens = [a[1] for a in accounts]

        rss_of_killed = [0.0]
        killed_at: list[float] = []

        async def restart(how: int) -> None:
            os.kill(procs[1].pid, how)
            await asyncio.to_thread(procs[1].join, 10)
            fresh = ctx.Process(target=bidroom_server, args=(db_url, str(root / "var"), bid_port), daemon=True)
            await asyncio.to_thread(fresh.start)
            procs[1] = fresh
            await wait_up(base + "/healthz")

        async def kill_and_restart(at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            rss_of_killed[0] = peak_rss_mib(procs[1].pid)
            killed_at.append(time.monotonic())
            await restart(signal.SIGKILL)
            killed_at.append(time.monotonic())

        # Bidders sign up days before a deadline, not in the same process lifetime: each Argon2id hash takes
        # 64 MiB while it runs, and the heap it leaves would be counted as the burst's. Start the burst on a
        # freshly started server.
        setup_rss = peak_rss_mib(procs[1].pid)
        asyncio.run(restart(signal.SIGTERM))

        async def both_waves():
            deadline = await set_deadline(db_url, tender_id, args.lead + 1.0)
            start = time.monotonic() + 1.0
            main_wave = burst(lambda i: url, payloads[:args.bidders], tokens[:args.bidders], start_at=start,
                              retry_until=start + args.lead)
            late_wave = burst(lambda i: url, payloads[args.bidders:], tokens[args.bidders:],
                              start_at=start + args.lead + 0.5)
            extra = [kill_and_restart(start + args.kill_at)] if args.kill_at > 0 else []
            main_results, late_results, *_ = await asyncio.gather(main_wave, late_wave, *extra)
            return deadline, start, main_results, late_results
        deadline, started, main, late = asyncio.run(both_waves())
        rss = max(rss_of_killed[0], peak_rss_mib(procs[1].pid))

        print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"{args.bidders} concurrent uploads of {payloads[0].__len__() / 2**20:.2f} MiB, client in this process")
        report("bare aiohttp, stream to disk + SHA-256", bare, total)
        report("bidroom PUT bid (seal on arrival, receipt)", main, total)
        if killed_at:
            retried = [r for r in main if r[4] > 1]
            print(f"bidroom killed with SIGKILL {killed_at[0] - started:.1f} s into the burst, serving again "
                  f"{killed_at[1] - killed_at[0]:.1f} s later; {len(retried)} uploads broke and were sent again")
        last = max(r[3] for r in main) - (time.time() - time.monotonic() + started)
        print(f"last receipt of the main wave {last:.1f} s after its start")
        print(f"bidroom server peak RSS during the burst: {rss:.0f} MiB"
              + (f" (killed process {rss_of_killed[0]:.0f} MiB)" if killed_at else "")
              + f"; {setup_rss:.0f} MiB while {len(accounts)} bidders signed up, "
              f"before a restart")

        def code(r: tuple) -> str:
            error = r[1].get("error") if isinstance(r[1], dict) else None
            return error.get("code") if isinstance(error, dict) else str(error)
        receipts = {r[1]["receipt"]["bid"]: (i, r[1]) for i, r in enumerate(main) if r[0] == 201}
        refused = [r for r in main if r[0] != 201]
        late_codes = sorted({(r[0], code(r)) for r in late})
        problems = []
        if refused:
            problems.append(f"{len(refused)} uploads of the main wave got no receipt")
        if last >= args.lead:
            problems.append("the main wave did not finish before the deadline")
        if any(datetime.fromisoformat(body["receipt"]["received_at"]) >= deadline for _, body in receipts.values()):
            problems.append("a receipt is dated at or after the deadline")
        if any(r[0] == 201 for r in late):
            problems.append("an upload started after the deadline was accepted")
        opened = asyncio.run(open_all(db_url, root / "var" / "storage", tender_id))
        if set(opened) != set(receipts):
            problems.append(f"stored bids {len(opened)} != receipts {len(receipts)}")
        mismatched = [b for b, (i, _) in receipts.items() if opened.get(b) != sent[i]]
        if mismatched:
            problems.append(f"{len(mismatched)} bids do not decrypt to the bytes sent")
        print(f"deadline (DB) {deadline.isoformat()}; main wave: {len(receipts)} receipts, {len(refused)} refused "
              f"({sorted({code(r) for r in refused}) if refused else '-'}); late wave: {late_codes}")
        stored = asyncio.run(stored_keys(db_url, tender_id))
        leftovers = [p for p in (root / "var" / "storage" / "bids").rglob("*")
                     if p.is_file() and str(p.relative_to(root / "var" / "storage")) not in stored]
        print(f"files in bid storage with no bid row (uploads cut by the kill): {len(leftovers)}, "
              f"{sum(p.stat().st_size for p in leftovers) / 2**20:.1f} MiB")
        print(f"opened {len(opened)} stored bids with 2 of 2 shares: "
              f"{'all decrypt to the bytes sent' if not mismatched else 'MISMATCH'}")
        print("checks: " + ("all passed" if not problems else "; ".join(problems)))
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(10)
        pg.stop()


if __name__ == "__main__":
    main()
