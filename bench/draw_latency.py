"""Expert draw latency through the API: a pool of 100,000 experts, a draw with 3 quotas and every avoidance rule.

The server runs in its own process (the real app, `run_scheduler=False` so the record PDFs that follow each draw
do not compete with the measurement), against an embedded PostgreSQL seeded with the demo expert generator plus:
a tenderer and three bidders that employ experts, an authority, declared conflicts with the bidders, experts on
leave at the session time, experts at the monthly cap, familiar faces of the tenderer, and the demo's suspended
experts. The client, in this process, requests draws one after another over real HTTP and times:

- POST /api/v1/lots/{lot}/draws  (committee rules, avoidance screening, candidate list, commitment, ledger);
- POST /api/v1/draws/{id}/entropy (steps 3-6, invitations with timeouts, notifications, ledger).

Target: p99 <= 100 ms for the draw request. Prints p50 and p99 of both.

    .venv/bin/python bench/draw_latency.py [--experts 100000] [--draws 200]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_baseline import bidroom_server, free_port, migrated_database, wait_up  # noqa: E402

PASSWORD = "bench-Passw0rd!"
# Three quotas of a cross-site committee of 7: Guangzhou builders, Zhongshan cost experts, Shenzhen IT experts.
# "typical" asks for leaf specialties, as draw requests usually do; "wide" asks for whole specialty groups,
# which puts about ten times as many experts through screening and into the published candidate list.
SCENARIOS = {
    "typical": [{"name": "土建", "specialty": "A0101", "region": "440100", "count": 3, "backups": 2},
                {"name": "造价", "specialty": "C0101", "region": "442000", "count": 2, "backups": 1},
                {"name": "信息", "specialty": "D0101", "region": "440300", "count": 2, "backups": 1}],
    "wide": [{"name": "土建", "specialty": "A01", "region": "440100", "count": 3, "backups": 2},
             {"name": "造价", "specialty": "C01", "region": "442000", "count": 2, "backups": 1},
             {"name": "信息", "specialty": "D01", "region": "440300", "count": 2, "backups": 1}],
}


def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))]


async def seed(db_url: str, n: int, session_at: datetime) -> dict:
    """The pool, the parties and every avoidance situation; returns what the client needs."""
    from sqlalchemy import insert, select, text

    from core import identity_service
    from core.db import create_engine, session_factory
    from core.identity_models import Organisation, User
    from expert_pool.demo import seed_experts
    from expert_pool.models import Expert, ExpertConflict, ExpertLeave, ExpertService
    from trading.models import BidderRegistration, Lot, Tender

    engine = create_engine(db_url, pool_size=2)
    sessions = session_factory(engine)
    rng = random.Random(7)
    t0 = time.perf_counter()
    async with sessions() as session, session.begin():
        await seed_experts(session, n, seed=2026)
    print(f"seeded {n} experts in {time.perf_counter() - t0:.1f} s")
    async with sessions() as session, session.begin():
        # the tender's supervising organisation: only its supervisors execute the tender's draws
        supervising = await identity_service.create_organisation(
            session, actor="system", name="中山市基准监督管理办公室", social_credit_code=None)
        secrets = {}
        for role in ("agent", "supervisor"):
            user, _ = await identity_service.create_user(
                session, actor="system", username=f"bench-{role}", password=PASSWORD, display_name=f"基准 {role}",
                roles=[role], organisation_public_id=supervising.public_id if role == "supervisor" else None)
            secrets[role] = user.totp_secret
        agent_pk = (await session.execute(select(User.id).where(User.username == "bench-agent"))).scalar_one()
        # the parties are employers of the pool, so avoidance has experts to exclude for each
        busiest = (await session.execute(text(
            "SELECT employer_id FROM expert WHERE city_code = '440100' AND specialties && ARRAY['A0101']::varchar[] "
            "GROUP BY employer_id ORDER BY count(*) DESC LIMIT 5"))).scalars().all()
        tenderer_pk, bidder_pks, authority_pk = busiest[0], busiest[1:4], busiest[4]
        authority = (await session.execute(select(Organisation.public_id).where(
            Organisation.id == authority_pk))).scalar_one()
        tender = Tender(code="ZS-2026-FJSZ-90001", title="中山市基准测试综合楼工程", family="FJSZ",
                        subtype="FJSZ-SG", method="open", region_code="ZS", status="published",
                        tenderer_id=tenderer_pk, created_by_id=agent_pk, budget=Decimal("50000000.00"),
                        supervisor_organisation_id=supervising.id)
        session.add(tender)
        await session.flush()
        lot = Lot(public_id="ZS-2026-FJSZ-90001-L01", tender_id=tender.id, lot_no=1, title="施工总承包",
                  budget=Decimal("50000000.00"))
        session.add(lot)
        await session.flush()
        for org in bidder_pks:
            session.add(BidderRegistration(tender_id=tender.id, lot_id=lot.id, organisation_id=org,
                                           registered_by_id=agent_pk))
        ids = (await session.execute(select(Expert.id))).scalars().all()
        chosen = rng.sample(ids, 3_000)
        conflicts, leave, capped, familiar = chosen[:500], chosen[500:1500], chosen[1500:2000], chosen[2000:]
        await session.execute(insert(ExpertConflict), [
            {"expert_id": e, "organisation_id": rng.choice(bidder_pks), "note": "曾任职"} for e in conflicts])
        await session.execute(insert(ExpertLeave), [
            {"expert_id": e, "starts_at": session_at - timedelta(days=2), "ends_at": session_at + timedelta(days=2),
             "reason": "出差"} for e in leave])
        other = busiest[4]
        await session.execute(insert(ExpertService), [
            {"expert_id": e, "tenderer_id": other, "served_at": session_at - timedelta(hours=k + 1)}
            for e in capped for k in range(8)] + [
            {"expert_id": e, "tenderer_id": tenderer_pk, "served_at": session_at - timedelta(days=30)}
            for e in familiar])
        await session.execute(text("ANALYZE"))
    await engine.dispose()
    return {"lot": lot.public_id, "authority": authority, "totp": secrets}


async def sign_in(http: aiohttp.ClientSession, base: str, username: str, totp_secret: str | None) -> dict:
    import pyotp
    body = {"username": username, "password": PASSWORD}
    if totp_secret:
        body["totp"] = pyotp.TOTP(totp_secret).now()
    async with http.post(base + "/api/v1/auth/login", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def measure(base: str, info: dict, session_at: datetime, draws: int, warmup: int, quotas: list) -> dict:
    request_ms: list[float] = []
    entropy_ms: list[float] = []
    last = None
    async with aiohttp.ClientSession() as http:
        agent = await sign_in(http, base, "bench-agent", info["totp"]["agent"])
        supervisor = await sign_in(http, base, "bench-supervisor", info["totp"]["supervisor"])
        body = {"session_at": session_at.isoformat(), "venue": "中山市公共资源交易中心 3号评标室",
                "quotas": quotas, "authority_organisations": [info["authority"]]}
        for i in range(warmup + draws):
            t0 = time.perf_counter()
            async with http.post(f"{base}/api/v1/lots/{info['lot']}/draws", json=body, headers=agent) as resp:
                notice = await resp.json()
                assert resp.status == 201, notice
            t1 = time.perf_counter()
            async with http.post(f"{base}/api/v1/draws/{notice['draw_id']}/entropy",
                                 json={"entropy": os.urandom(16).hex()}, headers=supervisor) as resp:
                drawn = await resp.json()
                assert resp.status == 200, drawn
            t2 = time.perf_counter()
            # a lot has one original draw: cancel this one (untimed) so the next request may draw again
            async with http.post(f"{base}/api/v1/draws/{notice['draw_id']}/cancel", headers=agent,
                                 json={"reason": "基准测试 benchmark"}) as resp:
                assert resp.status == 200, await resp.text()
            if i >= warmup:
                request_ms.append((t1 - t0) * 1000)
                entropy_ms.append((t2 - t1) * 1000)
            last = notice
    return {"request": request_ms, "entropy": entropy_ms, "last": last}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experts", type=int, default=100_000)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=["typical", "wide"])
    args = parser.parse_args()

    root, pg, db_url = migrated_database("bidroom-bench-draw-")
    session_at = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0)
    proc = None
    try:
        info = asyncio.run(seed(db_url, args.experts, session_at))
        port = free_port()
        proc = mp.get_context("spawn").Process(target=bidroom_server, args=(db_url, str(root / "var"), port),
                                               daemon=True)
        proc.start()
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_up(base + "/healthz"))
        outs = {name: asyncio.run(measure(base, info, session_at, args.draws, args.warmup, SCENARIOS[name]))
                for name in args.scenarios}
    finally:
        if proc is not None:
            proc.terminate()
            proc.join(10)
        pg.stop()

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.experts} experts, {args.draws} draws after {args.warmup} warm-up, one client, sequential")
    for scenario, out in outs.items():
        last = out["last"]
        print(f"\n[{scenario}] quotas {', '.join(q['specialty'] + '@' + q['region'] for q in SCENARIOS[scenario])}: "
              f"{last['considered']} experts match a quota, {last['eligible']} eligible, excluded by reason "
              f"{last['exclusions']}")
        for name, label in (("request", "POST /lots/{lot}/draws (screen + commit)"),
                            ("entropy", "POST /draws/{id}/entropy (draw + invite)")):
            values = out[name]
            print(f"{label:<44} p50 {pct(values, 50):7.1f} ms   p90 {pct(values, 90):7.1f} ms   "
                  f"p99 {pct(values, 99):7.1f} ms   max {max(values):7.1f} ms")
        slowest = sorted(range(len(out["request"])), key=lambda i: -out["request"][i])[:5]
        print("slowest draw requests (index: ms): " + ", ".join(f"{i}: {out['request'][i]:.0f}" for i in slowest))
        p99 = pct(out["request"], 99)
        print(f"draw request p99 {p99:.1f} ms (target <= 100 ms: {'met' if p99 <= 100 else 'NOT met'})")


if __name__ == "__main__":
    main()
