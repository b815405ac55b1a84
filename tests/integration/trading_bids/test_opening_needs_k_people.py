"""k distinct people open a tender, whether or not the platform holds a share; and a holder's share is unwrapped
with no connection or lock held.

- k counts people: with the platform's share the key is split with threshold k + 1, so the platform's share and
  k - 1 people's rebuild nothing and the opening waits, saying how many people it has and needs; the k-th person
  opens it.
- A share submission unwraps the holder key (scrypt, in the pool) before its transaction: while it waits, no
  connection is idle in a transaction, the tender row is not locked, and another holder's share goes in.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.errors import Unprocessable
from evidence import sealing
from tests.integration.trading_bids.conftest import (PASSPHRASES, add_holders, bundle, draft_tender, publish,
                                                     set_deadline, upload)
from trading.routes.bids import KEYRING, SEALING_POOL
from tests.helpers import submit_share

URL = "/api/v1/tenders/{}/opening"


async def share(client, info, holder, passphrase):
    return await submit_share(client, info.code, holder.headers, passphrase)


async def tender_in_opening(sessions, client, pairs, *, k: int, platform_share: bool):
    """A tender with three plain bids, past its deadline, its opening started by the agent."""
    info = await draft_tender(sessions, client, bidders=3, platform_share=platform_share)
    await add_holders(sessions, client, info, pairs, k=k)
    await publish(sessions, info)
    for n, actor in enumerate(info.bidders):
        status, body = await upload(client, info, actor, bundle(price=f"{n + 1}00000.00"))
        assert status == 201, body
    await set_deadline(sessions, info, -1)
    resp = await client.post(URL.format(info.code), headers=info.agent.headers)
    assert resp.status == 200, await resp.text()
    return info, await resp.json()


async def test_with_the_platform_share_k_minus_one_people_cannot_open_and_k_people_do(
        sessions, client, wrapped_holder_keys, raw_conn):
    # three people (the agent and two supervisors) and the platform; k = 2 people
    info, started = await tender_in_opening(sessions, client, wrapped_holder_keys, k=2, platform_share=True)
    sealed = await raw_conn.fetchrow("SELECT key_threshold, key_holder_count, platform_holds_share FROM tender "
                                     "WHERE id = $1", info.tender_id)
    assert tuple(sealed) == (2, 3, True)
    assert started["holders_unlocked"] == ["platform"] and started["platform_unlocked"] is True
    assert (started["people_unlocked"], started["threshold"], started["platform_share"]) == (0, 2, True)

    # k - 1 people and the platform: the opening waits, and says so
    status, body = await share(client, info, info.holders[0], PASSPHRASES[0])
    assert status == 200 and body["status"] == "opening", body
    assert (body["people_unlocked"], body["threshold"], body["unlocked"]) == (1, 2, 2)
    resp = await client.get(f"/api/v1/tenders/{info.code}/opened-bids")
    refusal = await resp.json()
    assert resp.status == 409 and refusal["error"]["code"] == "not_opened", refusal
    assert (refusal["error"]["details"]["people_unlocked"], refusal["error"]["details"]["people_needed"]) == (1, 2)
    assert "2 key holders" in refusal["error"]["message"]
    assert await raw_conn.fetchval("SELECT count(*) FROM bid WHERE tender_id = $1 AND status = 'opened'",
                                   info.tender_id) == 0
    # and it is not only the count: the shares in hand (the platform's and one person's) rebuild nothing
    keyring = client.app[KEYRING]
    in_hand = [keyring.open(row["sealed_share"], context=f"opening_share:{row['tender_key_holder_id']}")
               for row in await raw_conn.fetch("SELECT tender_key_holder_id, sealed_share FROM opening_share "
                                               "WHERE tender_id = $1", info.tender_id)]
    assert len(in_hand) == 2
    with pytest.raises(Unprocessable):
        sealing.combine_shares(in_hand, await raw_conn.fetchval("SELECT age_recipient FROM tender WHERE id = $1",
                                                                info.tender_id))

    # the k-th person opens it
    status, body = await share(client, info, info.holders[2], PASSPHRASES[2])
    assert status == 200 and body["status"] == "opened" and body["valid_bids"] == 3, body
    unlocked_by = [r["actor"] for r in await raw_conn.fetch(
        "SELECT actor FROM audit_entry WHERE action = 'tender.share_unlocked' AND entity = $1 ORDER BY seq",
        f"tender:{info.code}")]
    assert unlocked_by == ["system", info.holders[0].public_id, info.holders[2].public_id]
    resp = await client.get(f"/api/v1/tenders/{info.code}/opened-bids")
    assert resp.status == 200 and len((await resp.json())["bids"]) == 3
    assert await raw_conn.fetchval("SELECT count(*) FROM opening_share") == 0


class HeldPool(ThreadPoolExecutor):
    """The sealing pool, with its first job held until the test releases it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(max_workers=2)
        self.entered = asyncio.Event()
        self.release = threading.Event()
        self._loop, self._held = loop, False

    def submit(self, fn, /, *args, **kwargs):
        if self._held:
            return super().submit(fn, *args, **kwargs)
        self._held = True

        def held(*a, **kw):
            self._loop.call_soon_threadsafe(self.entered.set)
            self.release.wait()
            return fn(*a, **kw)
        return super().submit(held, *args, **kwargs)


async def test_a_share_being_unwrapped_holds_no_connection_and_no_lock_on_the_tender(
        settings, sessions, wrapped_holder_keys, raw_conn):
    from web.app import create_app
    app = create_app(settings)
    pool = HeldPool(asyncio.get_running_loop())

    async def hold_the_pool(app):   # after the app's own start-up made its pool
        app[SEALING_POOL] = pool
    app.on_startup.append(hold_the_pool)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        info, _ = await tender_in_opening(sessions, client, wrapped_holder_keys, k=3, platform_share=False)
        first, second, third = info.holders
        held = asyncio.create_task(share(client, info, first, PASSPHRASES[0]))
        entered = asyncio.create_task(pool.entered.wait())
        await asyncio.wait({held, entered}, return_when=asyncio.FIRST_COMPLETED)
        assert not held.done(), held.result()   # the first holder's key is being unwrapped, and held there

        # meanwhile: no connection of the app sits in a transaction, and the tender row is free to lock
        assert await raw_conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'bidroom' AND state LIKE 'idle in transaction%'") == 0
        async with raw_conn.transaction():
            assert await raw_conn.fetchval("SELECT id FROM tender WHERE id = $1 FOR UPDATE NOWAIT",
                                           info.tender_id) == info.tender_id
        # another holder's share goes in, and readers see it, while the first is still unwrapping
        status, body = await share(client, info, second, PASSPHRASES[1])
        assert status == 200 and body["holders_unlocked"] == [second.public_id] and body["people_unlocked"] == 1
        progress = await (await client.get(URL.format(info.code))).json()
        assert progress["people_unlocked"] == 1 and progress["status"] == "opening"
        assert not held.done()

        pool.release.set()
        status, body = await held
        assert status == 200 and body["people_unlocked"] == 2 and body["status"] == "opening", body
        assert sorted(body["holders_unlocked"]) == sorted([first.public_id, second.public_id])
        order = [r["actor"] for r in await raw_conn.fetch(
            "SELECT actor FROM audit_entry WHERE action = 'tender.share_unlocked' AND entity = $1 ORDER BY seq",
            f"tender:{info.code}")]
        assert order == [second.public_id, first.public_id]
        # the same holder again: refused before any unwrap, nothing written
        status, body = await share(client, info, first, PASSPHRASES[0])
        assert (status, body["error"]["code"]) == (409, "share_already_unlocked")
        assert await raw_conn.fetchval("SELECT count(*) FROM opening_share WHERE tender_id = $1",
                                       info.tender_id) == 2
    finally:
        pool.release.set()
        await client.close()
        pool.shutdown(wait=True)


async def test_migration_0026_moves_tenders_with_the_platform_share_to_counting_people(
        sessions, client, wrapped_holder_keys, raw_conn, db_url):
    """Before 0026, k and n counted the platform's share; a tender keeps the same shares and the same people."""
    from alembic import command

    from core.migrate import alembic_config
    sealed = await draft_tender(sessions, client, bidders=0, platform_share=True)
    await add_holders(sessions, client, sealed, wrapped_holder_keys[:2], k=2)
    await publish(sessions, sealed)
    draft = await draft_tender(sessions, client, bidders=0, platform_share=True, key_threshold=2, key_holder_count=3)
    plain = await draft_tender(sessions, client, bidders=0, key_threshold=2, key_holder_count=3)

    async def numbers() -> list[tuple[int, int]]:
        return [tuple(await raw_conn.fetchrow("SELECT key_threshold, key_holder_count FROM tender WHERE id = $1",
                                              info.tender_id)) for info in (sealed, draft, plain)]

    before = await numbers()
    assert before == [(2, 2), (2, 3), (2, 3)]
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0026-1")
    # the old terms: the platform's share counted in k and n
    assert await numbers() == [(3, 3), (3, 4), (2, 3)]
    await asyncio.to_thread(command.upgrade, alembic_config(db_url), "heads")
    assert await numbers() == before
