"""The server killed (SIGKILL) during an opening, on the embedded database: after a restart on the same data
directory the opening resumes where its last committed step left it and completes, with one opening, one
record, one ledger entry per step, no unlocked share left in the database, and a ledger that verifies.

Three kill points, each reached deterministically: between two committed shares; with the last share's
transaction decrypting the bids and waiting for the ledger lock (held by the test); and with everything written
(checkpoint, share, outcomes, ledger entries, the signed record's file) and only the record's row waiting for its
table (locked by the test).

The tender is set up behind the API's back (the same helpers as the sealed-bid tests, on a connection of the
embedded database's owner); everything the users do goes through the HTTP API of a real `bidroom serve`."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiohttp
from sqlalchemy import text

from core.db import EmbeddedPostgres, create_engine, session_factory
from evidence.ledger_service import LEDGER_LOCK_KEY
from tests.e2e.test_serve_subprocess import free_port, wait_healthy
from tests.integration.trading_bids.conftest import (PASSPHRASES, add_holders, bundle, draft_tender, publish,
                                                     set_deadline, upload)
from trading import keyholding
from web.runtime import EMBEDDED_DATABASE

ROOT = Path(__file__).resolve().parents[2]


class Server:
    """`bidroom serve` on one data directory, started and killed at will."""

    def __init__(self, root: Path) -> None:
        self.data_dir = root / "var"
        self.log_path = root / "server.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
        env.update(BIDROOM_DATA_DIR=str(self.data_dir), BIDROOM_LOG_FORMAT="text")
        return env

    async def start(self) -> None:
        env = self.env()
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"---- start {self.starts}\n")
            log.flush()
            self.proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(self.port)],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        await wait_healthy(self.base, self.proc)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def tail(self) -> str:
        return self.log_path.read_text()[-4000:]


async def count(engine, sql: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def kill_while_waiting(server: Server, engine, url: str, holder, passphrase: str, *, hold: str, params: dict,
                             waiting: tuple[str, str | None]) -> None:
    """Send a holder's share while this test holds a lock (`hold`) that the share's transaction needs, wait
    until that transaction is seen waiting for it (`waiting`: lock type and relation), and kill the server
    there, with the share's transaction open (its tender row lock held): a deterministic point inside the
    opening, before its commit."""
    locktype, relation = waiting
    async with engine.connect() as holder_conn, holder_conn.begin():
        await holder_conn.execute(text(hold), params)
        async with aiohttp.ClientSession(base_url=server.base) as client:
            submit = asyncio.ensure_future(client.post(url, json={"passphrase": passphrase},
                                                       headers=holder.headers))
            while not await count(engine,
                                  "SELECT count(*) FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation "
                                  f"WHERE NOT l.granted AND l.locktype = '{locktype}'"
                                  + (f" AND c.relname = '{relation}'" if relation else "")
                                  + " AND EXISTS (SELECT 1 FROM pg_locks t JOIN pg_class tc ON tc.oid = t.relation "
                                  "WHERE tc.relname = 'tender' AND t.mode = 'RowShareLock' AND t.granted)"):
                if submit.done():
                    answer = submit.result()
                    raise AssertionError(f"the share's transaction did not wait for the lock held by the test: "
                                         f"{answer.status} {await answer.text()}\n{server.tail()}")
                await asyncio.sleep(0.02)
            server.kill()
            try:
                await submit
            except aiohttp.ClientError:
                pass  # the connection died with the server: the holder cannot know the outcome, and retries
            else:
                raise AssertionError("the share was answered although the server was killed before its commit")
        await holder_conn.rollback()


async def state(engine, tender_id: int, code: str) -> dict:
    async with engine.connect() as conn:
        async def one(sql: str, **params):
            return (await conn.execute(text(sql), {"t": tender_id, "e": f"tender:{code}", **params})).scalar_one()

        actions = dict((await conn.execute(text(
            "SELECT action, count(*) FROM audit_entry WHERE entity = :e GROUP BY action"),
            {"e": f"tender:{code}"})).all())
        holders = sorted((await conn.execute(text(
            "SELECT payload->>'holder' FROM audit_entry WHERE entity = :e AND action = 'tender.share_unlocked'"),
            {"e": f"tender:{code}"})).scalars())
        return {"status": await one("SELECT status FROM tender WHERE id = :t"),
                "openings": await one("SELECT count(*) FROM tender_opening WHERE tender_id = :t"),
                "completed": await one("SELECT count(*) FROM tender_opening WHERE tender_id = :t "
                                       "AND completed_at IS NOT NULL"),
                "shares": await one("SELECT count(*) FROM opening_share WHERE tender_id = :t"),
                "records": await one("SELECT count(*) FROM record WHERE entity = :e AND kind = 'bid_opening'"),
                "opened_bids": await one("SELECT count(*) FROM bid WHERE tender_id = :t AND status = 'opened'"),
                "actions": actions, "holders_unlocked": holders}


async def test_a_server_killed_during_an_opening_resumes_it_after_a_restart_without_duplicates():
    # outside pytest's basetemp, which is private to this user (the embedded server runs as another when root)
    # and which a concurrent pytest run may prune
    root = Path(tempfile.mkdtemp(prefix="bidroom-opening-crash-"))
    server = Server(root)
    # the holders' keys are wrapped (scrypt, slow) while the server makes its database on first start
    with ProcessPoolExecutor(max_workers=2) as pool:
        wrapping = [asyncio.wrap_future(pool.submit(keyholding.wrap_holder_identity, passphrase))
                    for passphrase in PASSPHRASES[:2]]
        await server.start()
        wrapped = await asyncio.gather(*wrapping)
    # the test's own handle on the embedded server, as its owner: set-up and the checks
    pg = EmbeddedPostgres(server.data_dir / "pg").start()
    engine = create_engine(pg.async_url(EMBEDDED_DATABASE), pool_size=2)
    sessions = session_factory(engine)
    try:
        async with aiohttp.ClientSession(base_url=server.base) as client:
            # the platform's share plus the agent's and a supervisor's: k = 2 people
            info = await draft_tender(sessions, client, bidders=3, platform_share=True)
            await add_holders(sessions, client, info, wrapped, k=2)
            await publish(sessions, info)
            for actor, price in zip(info.bidders, ("300.00", "200.00", "250.00")):
                status, body = await upload(client, info, actor, bundle(price=price))
                assert status == 201, body
            await set_deadline(sessions, info, -1)
            agent, supervisor = info.holders
            shares_url = f"/api/v1/tenders/{info.code}/opening/shares"

            resp = await client.post(f"/api/v1/tenders/{info.code}/opening", headers=agent.headers)
            assert resp.status == 200, await resp.text()
            resp = await client.post(shares_url, json={"passphrase": PASSPHRASES[0]}, headers=agent.headers)
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["unlocked"] == 2

        # 1. killed between two committed steps: the platform's and the agent's shares are in
        server.kill()
        before = await state(engine, info.tender_id, info.code)
        assert (before["status"], before["openings"], before["completed"], before["shares"]) == ("opening", 1, 0, 2)

        await server.start()
        async with aiohttp.ClientSession(base_url=server.base) as client:
            progress = await (await client.get(f"/api/v1/tenders/{info.code}/opening")).json()
            assert (progress["status"], progress["unlocked"]) == ("opening", 2)
            # the agent's share survived the crash: sending it again is refused, not counted twice
            resp = await client.post(shares_url, json={"passphrase": PASSPHRASES[0]}, headers=agent.headers)
            assert resp.status == 409 and (await resp.json())["error"]["code"] == "share_already_unlocked"

        # 2. killed while the opening runs: the last share is in, every bid is decrypted and checked, and the
        # opening waits for the ledger (held here, as any busy writer would hold it) to sign its checkpoint
        await kill_while_waiting(server, engine, shares_url, supervisor, PASSPHRASES[1],
                                 hold="SELECT pg_advisory_xact_lock(:k)", params={"k": LEDGER_LOCK_KEY},
                                 waiting=("advisory", None))
        assert await state(engine, info.tender_id, info.code) == before

        # 3. killed at the last moment: the checkpoint is signed and committed, the share, the bids' outcomes,
        # the ledger entries and the signed record are written, and the record's row waits for its table
        await server.start()
        await kill_while_waiting(server, engine, shares_url, supervisor, PASSPHRASES[1],
                                 hold="LOCK TABLE record IN EXCLUSIVE MODE", params={},
                                 waiting=("relation", "record"))
        assert await state(engine, info.tender_id, info.code) == before

        # 4. restarted: the supervisor sends the share again and the opening completes
        await server.start()
        async with aiohttp.ClientSession(base_url=server.base) as client:
            resp = await client.post(shares_url, json={"passphrase": PASSPHRASES[1]}, headers=supervisor.headers)
            assert resp.status == 200, await resp.text()
            done = await resp.json()
            assert done["status"] == "opened" and done["valid_bids"] == 3 and done["record_no"]
            resp = await client.post(shares_url, json={"passphrase": PASSPHRASES[1]}, headers=supervisor.headers)
            assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_opening"
            bids = (await (await client.get(f"/api/v1/tenders/{info.code}/opened-bids")).json())["bids"]
            assert sorted(b["price"] for b in bids) == ["200.00", "250.00", "300.00"]
            record = await client.get(f"/api/v1/records/{done['record_no']}")
            assert record.status == 200 and (await record.read()).startswith(b"%PDF")

        after = await state(engine, info.tender_id, info.code)
        assert (after["status"], after["openings"], after["completed"], after["records"],
                after["opened_bids"]) == ("opened", 1, 1, 1, 3)
        assert after["shares"] == 0  # no unlocked share (key material) is left in the database
        # one ledger entry per step: each share once, the opening started once and completed once
        assert after["holders_unlocked"] == sorted(["platform", agent.public_id, supervisor.public_id])
        assert after["actions"]["tender.share_unlocked"] == 3
        assert after["actions"]["tender.opening"] == 1
        assert after["actions"]["tender.opened"] == 1
        assert "bid.invalidated" not in after["actions"]
        assert server.stop() == 0, server.tail()
        # the ledger's hash chain and every checkpoint, the ones signed for openings that were killed included
        verified = subprocess.run([sys.executable, "-m", "web.cli", "audit", "verify"], env=server.env(), cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0 and "OK" in verified.stdout, verified.stdout + verified.stderr
    except BaseException:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
        print(server.tail())
        raise
    finally:
        await engine.dispose()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
