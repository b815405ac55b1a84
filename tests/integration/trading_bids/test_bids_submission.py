"""Submitting, replacing and withdrawing sealed bids; the deadline is the database's, never the app's."""
from __future__ import annotations

import base64
import dataclasses
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.exceptions import InvalidSignature

from core.canonical import cj
from evidence import sealing
from tests.integration.trading_bids.conftest import (add_holders, bundle, draft_tender, publish, set_deadline,
                                                     upload)
from trading import bids
from web.keys import LEDGER_SIGNER


def skew_app_clock(monkeypatch, offset: timedelta) -> None:
    """Make the app server's own clock wrong by `offset` (time.time and the bid service's datetime)."""
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + offset.total_seconds())

    class SkewedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz or timezone.utc) + offset

    monkeypatch.setattr(bids, "datetime", SkewedDatetime, raising=False)


@pytest.fixture
async def open_tender(sessions, client, wrapped_holder_keys):
    info = await draft_tender(sessions, client, bidders=2)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    info.recipient = await publish(sessions, info)
    return info


async def bid_rows(raw_conn, info):
    return await raw_conn.fetch("SELECT public_id, status, price, duration_days, declared, sha256, size, storage_key, "
                                "sealed_by FROM bid WHERE tender_id = $1 ORDER BY id", info.tender_id)


async def test_a_bid_a_second_before_the_deadline_is_accepted_even_when_the_app_clock_says_it_is_late(
        sessions, client, open_tender, raw_conn, monkeypatch):
    info = open_tender
    await set_deadline(sessions, info, 1.5)
    skew_app_clock(monkeypatch, timedelta(hours=1))
    status, body = await upload(client, info, info.bidders[0], bundle())
    assert status == 201, body
    deadline = await raw_conn.fetchval("SELECT bid_deadline_at FROM tender WHERE id = $1", info.tender_id)
    assert datetime.fromisoformat(body["receipt"]["received_at"]) < deadline


async def test_a_bid_a_second_after_the_deadline_is_refused_even_when_the_app_clock_says_it_is_early(
        sessions, client, open_tender, raw_conn, monkeypatch, settings):
    info = open_tender
    await set_deadline(sessions, info, -1)
    skew_app_clock(monkeypatch, timedelta(hours=-1))
    status, body = await upload(client, info, info.bidders[0], bundle())
    assert status == 409 and body["error"]["code"] == "bid_deadline_passed"
    assert await bid_rows(raw_conn, info) == []
    assert not list((settings.storage_dir / "bids").rglob("*.age"))


def receipt_verifies(public_key, receipt: dict, signature: str) -> bool:
    """What a bidder does with a receipt: check the platform's Ed25519 signature over its canonical JSON."""
    try:
        public_key.verify(base64.b64decode(signature), cj(receipt))
    except InvalidSignature:
        return False
    return True


async def test_stored_bids_are_age_ciphertext_with_no_price_and_a_receipt_signed_by_the_platform(
        client, open_tender, raw_conn, settings):
    info = open_tender
    status, body = await upload(client, info, info.bidders[0], bundle(price="777888.99"))
    assert status == 201, body
    [row] = await bid_rows(raw_conn, info)
    stored = (settings.storage_dir / row["storage_key"]).read_bytes()
    assert stored.startswith(sealing.AGE_MAGIC) and b"777888.99" not in stored and b"form.json" not in stored
    assert row["price"] is None and row["duration_days"] is None and row["declared"] is None
    assert row["sealed_by"] == "server" and row["size"] == len(stored)
    receipt = body["receipt"]
    assert receipt["ciphertext_sha256"] == row["sha256"] and receipt["bid"] == row["public_id"]
    signer = client.app[LEDGER_SIGNER]
    assert receipt_verifies(signer.public_key, receipt, body["signature"])
    assert not receipt_verifies(signer.public_key, {**receipt, "size": 1}, body["signature"])
    entry = await raw_conn.fetchrow("SELECT action, payload FROM audit_entry WHERE action = 'bid.submit'")
    assert entry is not None and row["sha256"] in entry["payload"]


async def test_no_endpoint_gives_bid_content_before_the_opening(client, open_tender):
    info = open_tender
    assert (await upload(client, info, info.bidders[0], bundle()))[0] == 201
    mine = await client.get(f"/api/v1/tenders/{info.code}/lots/{info.lot_id}/bid", headers=info.bidders[0].headers)
    data = await mine.json()
    assert mine.status == 200 and "price" not in data and data["status"] == "submitted"
    resp = await client.get(f"/api/v1/tenders/{info.code}/opened-bids")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_opened"


async def test_a_bidder_replaces_and_withdraws_before_the_deadline_but_not_after(
        sessions, client, open_tender, raw_conn):
    info = open_tender
    first = (await upload(client, info, info.bidders[0], bundle(price="100.00")))[1]
    status, second = await upload(client, info, info.bidders[0], bundle(price="90.00"))
    assert status == 201 and second["receipt"]["replaces"] == first["receipt"]["bid"]
    assert [r["status"] for r in await bid_rows(raw_conn, info)] == ["replaced", "submitted"]
    url = f"/api/v1/tenders/{info.code}/lots/{info.lot_id}/bid"
    resp = await client.delete(url, headers=info.bidders[0].headers)
    assert resp.status == 200 and (await resp.json())["status"] == "withdrawn"
    assert (await upload(client, info, info.bidders[1], bundle()))[0] == 201
    await set_deadline(sessions, info, -1)
    resp = await client.delete(url, headers=info.bidders[1].headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "bid_deadline_passed"
    status, body = await upload(client, info, info.bidders[1], bundle(price="80.00"))
    assert status == 409 and body["error"]["code"] == "bid_deadline_passed"
    assert [r["status"] for r in await bid_rows(raw_conn, info)] == ["replaced", "withdrawn", "submitted"]


@pytest.mark.parametrize("payload, status, code", [
    (bundle(price="-100.00"), 422, "invalid_price"),
    (bundle(price="一百万"), 422, "invalid_price"),
    (bundle(price="12.345"), 422, "invalid_price"),
    (bundle(duration_days=0), 422, "invalid_duration"),
    (b"just some text that is not a tar archive at all" * 20, 422, "invalid_bid_bundle"),
    (b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n", 415, "armored_not_accepted"),
    (b"age-encryption.org/v1\n-> scrypt c2FsdA 18\nYWJj\n--- " + b"A" * 43 + b"\n" + b"x" * 64, 415,
     "not_sealed_to_tender"),
    (b"", 422, "empty_upload"),
])
async def test_bad_bids_are_refused_with_a_stable_code_and_nothing_is_stored(
        client, open_tender, raw_conn, settings, payload, status, code):
    info = open_tender
    got, body = await upload(client, info, info.bidders[0], payload)
    assert (got, body["error"]["code"]) == (status, code), body
    assert await bid_rows(raw_conn, info) == []
    assert not [p for d in ("bids", "tmp") for p in (settings.storage_dir / d).rglob("*") if p.is_file()]


async def test_bids_for_unknown_lots_or_by_unregistered_bidders_are_refused(client, open_tender, raw_conn):
    info = open_tender
    got, body = await upload(client, info, info.bidders[0], bundle(), lot=f"{info.code}-L99")
    assert (got, body["error"]["code"]) == (404, "lot_not_found")
    got, body = await upload(client, info, info.agent, bundle())
    assert (got, body["error"]["code"]) == (403, "not_registered")
    assert await bid_rows(raw_conn, info) == []


async def test_an_upload_over_the_size_limit_is_refused_while_streaming(sessions, settings, wrapped_holder_keys,
                                                                         raw_conn):
    from web.app import create_app
    small = dataclasses.replace(settings, max_upload_bytes=64 * 1024)
    client = TestClient(TestServer(create_app(small)))
    await client.start_server()
    try:
        info = await draft_tender(sessions, client, bidders=1)
        await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
        await publish(sessions, info)

        async def body():
            yield bundle()
            for _ in range(20):
                yield b"\0" * 8192

        resp = await client.put(f"/api/v1/tenders/{info.code}/lots/{info.lot_id}/bid", data=body(),
                                headers={**info.bidders[0].headers, "Content-Type": "application/octet-stream"})
        assert resp.status == 413 and (await resp.json())["error"]["code"] == "upload_too_large"
        assert await bid_rows(raw_conn, info) == []
    finally:
        await client.close()
