"""Disk and thread exhaustion by bid uploads: replaced ciphertexts are deleted, uploads wait for a slot unread,
one upload per bidder and lot at a time, a body that stalls times out, and a nearly full volume refuses more."""
from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from contextlib import asynccontextmanager

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.errors import BadRequest, RequestTimeout
from trading import bids

from tests.integration.trading_bids.conftest import add_holders, bundle, draft_tender, publish, upload

BIG = bundle(documents={"投标文件.pdf": b"%PDF-1.7 " + b"x" * (2 * 2**20)})


@asynccontextmanager
async def app_client(settings, **changes):
    """A client of an app built with these settings changed."""
    from web.app import create_app
    client = TestClient(TestServer(create_app(dataclasses.replace(settings, **changes))))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def open_tender(sessions, client, pairs, bidders: int = 2):
    info = await draft_tender(sessions, client, bidders=bidders)
    await add_holders(sessions, client, info, pairs, k=2)
    await publish(sessions, info)
    return info


def partial_files(settings) -> list:
    tmp = settings.storage_dir / "tmp"
    return sorted(tmp.glob("*.part")) if tmp.is_dir() else []


def bid_files(settings) -> list:
    root = settings.storage_dir / "bids"
    return sorted(p for p in root.rglob("*.age")) if root.is_dir() else []


class PausedBody:
    """An upload body that sends its first part, then waits until released (a slow bidder, held mid-upload)."""

    def __init__(self, data: bytes, split: int = 64 * 1024) -> None:
        self.data, self.split = data, split
        self.release = asyncio.Event()

    async def __call__(self):
        yield self.data[:self.split]
        await self.release.wait()
        yield self.data[self.split:]


async def wait_for(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}; the server's tasks, where each one waits:\n{task_stacks()}")


def task_stacks() -> str:
    """Where every other task of this loop (the in-process server's handlers among them) is waiting: what a
    failure here needs in order to be understood."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.print_stack(limit=12, file=out)
    return out.getvalue()


def put(client, info, actor, body):
    return client.put(f"/api/v1/tenders/{info.code}/lots/{info.lot_id}/bid", data=body,
                      headers={**actor.headers, "Content-Type": "application/octet-stream"})


async def test_a_replaced_ciphertext_is_deleted_once_the_replacement_is_committed_and_its_hash_stays_in_the_ledger(
        sessions, client, wrapped_holder_keys, raw_conn, settings):
    info = await open_tender(sessions, client, wrapped_holder_keys)
    bidder = info.bidders[0]
    status, first = await upload(client, info, bidder, bundle(price="100.00"))
    assert status == 201
    first_key = await raw_conn.fetchval("SELECT storage_key FROM bid WHERE public_id = $1", first["receipt"]["bid"])
    assert (settings.storage_dir / first_key).exists()
    status, second = await upload(client, info, bidder, bundle(price="90.00"))
    assert status == 201 and second["receipt"]["replaces"] == first["receipt"]["bid"]
    second_key = await raw_conn.fetchval("SELECT storage_key FROM bid WHERE public_id = $1", second["receipt"]["bid"])
    assert not (settings.storage_dir / first_key).exists() and (settings.storage_dir / second_key).exists()
    assert bid_files(settings) == [settings.storage_dir / second_key]
    # the replaced bid's digest is still on record: its row, and the ledger entry of its receipt
    row = await raw_conn.fetchrow("SELECT status, sha256 FROM bid WHERE public_id = $1", first["receipt"]["bid"])
    assert (row["status"], row["sha256"]) == ("replaced", first["receipt"]["ciphertext_sha256"])
    submitted = [json.loads(p) for p in await raw_conn.fetchval(
        "SELECT array_agg(payload::text) FROM audit_entry WHERE action IN ('bid.submit', 'bid.replace')")]
    assert {p["ciphertext_sha256"] for p in submitted} == {first["receipt"]["ciphertext_sha256"],
                                                         second["receipt"]["ciphertext_sha256"]}
    # withdrawing keeps the file; a new bid after the withdrawal supersedes it
    assert (await client.delete(f"/api/v1/tenders/{info.code}/lots/{info.lot_id}/bid",
                                headers=bidder.headers)).status == 200
    assert (settings.storage_dir / second_key).exists()
    status, third = await upload(client, info, bidder, bundle(price="80.00"))
    assert status == 201 and third["receipt"]["replaces"] is None
    third_key = await raw_conn.fetchval("SELECT storage_key FROM bid WHERE public_id = $1", third["receipt"]["bid"])
    assert bid_files(settings) == [settings.storage_dir / third_key]
    # another bidder's bid is never touched
    assert (await upload(client, info, info.bidders[1], bundle()))[0] == 201
    assert len(bid_files(settings)) == 2


async def test_a_second_upload_by_the_same_bidder_for_the_same_lot_while_one_is_in_flight_is_refused(
        sessions, client, wrapped_holder_keys, raw_conn, settings):
    info = await open_tender(sessions, client, wrapped_holder_keys)
    bidder = info.bidders[0]
    slow = PausedBody(BIG)
    first = asyncio.create_task(put(client, info, bidder, slow()))
    await wait_for(lambda: partial_files(settings), "the first upload to be read")
    status, body = await upload(client, info, bidder, bundle(price="1.00"))
    assert (status, body["error"]["code"]) == (409, "upload_in_progress"), body
    # another bidder is not held up by it
    assert (await upload(client, info, info.bidders[1], bundle()))[0] == 201
    slow.release.set()
    resp = await first
    assert resp.status == 201, await resp.text()
    # once the first is receipted, the bidder may replace it
    status, body = await upload(client, info, bidder, bundle(price="2.00"))
    assert status == 201 and body["receipt"]["replaces"] == (await resp.json())["receipt"]["bid"]


async def test_uploads_beyond_the_slots_wait_unread_and_go_in_once_a_slot_is_free(
        sessions, settings, wrapped_holder_keys, raw_conn):
    async with app_client(settings, upload_slots=1) as client:
        info = await open_tender(sessions, client, wrapped_holder_keys)
        a, b = info.bidders
        slow = PausedBody(BIG)
        first = asyncio.create_task(put(client, info, a, slow()))
        await wait_for(lambda: partial_files(settings), "the first upload to be read")
        second = asyncio.create_task(put(client, info, b, bundle(price="5.00")))
        await asyncio.sleep(0.5)
        # the only slot is taken: the second upload has not been read (no pending file of its own) nor answered
        assert not second.done() and len(partial_files(settings)) == 1
        slow.release.set()
        assert (await first).status == 201
        resp = await second
        assert resp.status == 201, await resp.text()
        assert await raw_conn.fetchval("SELECT count(*) FROM bid WHERE tender_id = $1 AND status = 'submitted'",
                                       info.tender_id) == 2


async def test_an_upload_whose_body_stalls_is_cut_off_with_408_and_nothing_is_stored(
        sessions, settings, wrapped_holder_keys, raw_conn):
    async with app_client(settings, upload_idle_timeout_s=1) as client:
        info = await open_tender(sessions, client, wrapped_holder_keys, bidders=1)
        stalled = PausedBody(BIG)  # never released
        resp = await put(client, info, info.bidders[0], stalled())
        body = await resp.json()
        assert (resp.status, body["error"]["code"]) == (408, "upload_timeout"), body
        stalled.release.set()
        assert await raw_conn.fetchval("SELECT count(*) FROM bid WHERE tender_id = $1", info.tender_id) == 0
        assert partial_files(settings) == [] and bid_files(settings) == []
        # the slot and the bidder's claim were given back: the next upload goes in
        assert (await upload(client, info, info.bidders[0], bundle()))[0] == 201


async def test_uploads_are_refused_with_507_when_the_data_volume_is_below_its_reserve(
        sessions, settings, wrapped_holder_keys, raw_conn):
    import shutil
    free_mb = shutil.disk_usage(settings.data_dir.parent).free // 2**20
    async with app_client(settings, min_free_disk_mb=free_mb + 1024) as client:
        info = await open_tender(sessions, client, wrapped_holder_keys, bidders=1)
        status, body = await upload(client, info, info.bidders[0], bundle())
        assert (status, body["error"]["code"]) == (507, "insufficient_storage"), body
        assert await raw_conn.fetchval("SELECT count(*) FROM bid WHERE tender_id = $1", info.tender_id) == 0
        assert partial_files(settings) == [] and bid_files(settings) == []
    async with app_client(settings, min_free_disk_mb=1) as client:
        assert (await upload(client, info, info.bidders[0], bundle()))[0] == 201


async def test_a_bidder_who_hangs_up_mid_upload_leaves_nothing_and_frees_the_slot(
        sessions, settings, wrapped_holder_keys, raw_conn):
    async with app_client(settings, upload_slots=1) as client:
        info = await open_tender(sessions, client, wrapped_holder_keys, bidders=1)
        bidder = info.bidders[0]
        reader, writer = await asyncio.open_connection(client.host, client.port)
        head = (f"PUT /api/v1/tenders/{info.code}/lots/{info.lot_id}/bid HTTP/1.1\r\nHost: bidroom\r\n"
                f"Authorization: {bidder.headers['Authorization']}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(BIG)}\r\n\r\n").encode()
        writer.write(head + BIG[:256 * 1024])
        await writer.drain()
        await wait_for(lambda: partial_files(settings), "the upload to be read")
        writer.close()
        await wait_for(lambda: not partial_files(settings), "the cut upload to be dropped")
        assert await raw_conn.fetchval("SELECT count(*) FROM bid WHERE tender_id = $1", info.tender_id) == 0
        # the only slot and the bidder's claim were given back
        assert (await upload(client, info, bidder, bundle()))[0] == 201


async def test_a_lost_connection_is_a_refusal_and_a_stalled_body_a_timeout():
    """The body reader of an upload: what the server sees when a client hangs up, or stops sending."""
    async def hung_up():
        yield b"x" * 10
        raise ConnectionResetError("Connection lost")

    async def stalled():
        yield b"x" * 10
        await asyncio.Event().wait()

    got = []
    with pytest.raises(BadRequest) as caught:
        async for chunk in bids.timed_chunks(hung_up(), idle_timeout_s=5, timeout_s=5):
            got.append(chunk)
    assert caught.value.code == "upload_incomplete" and got == [b"x" * 10]
    with pytest.raises(RequestTimeout) as caught:
        async for chunk in bids.timed_chunks(stalled(), idle_timeout_s=0.05, timeout_s=5):
            pass
    assert (caught.value.status, caught.value.code) == (408, "upload_timeout")
