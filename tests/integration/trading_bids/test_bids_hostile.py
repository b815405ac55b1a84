"""Hostile bid bundles (tests/hostile/tars.py): refused at upload when plain, withdrawn alone at the opening when
sealed by the client, with bounded memory either way."""
from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
from decimal import Decimal

import pyrage
import pytest
from pypdf import PdfReader

from tests.hostile.tars import corpus, gnu_sparse, symbolic_link
from tests.integration.trading_bids.conftest import (PASSPHRASES, add_holders, bundle, draft_tender, publish,
                                                     set_deadline, upload)
from trading.bundle import BundleLimits, make_bundle
from evidence import ledger_service
from trading import opening
from trading.opening import REVOKED, open_stored_bid
from tests.helpers import submit_share

URL = "/api/v1/tenders/{}/opening"
CORPUS = corpus()


def stored_files(settings) -> list:
    return [p for d in ("bids", "tmp") for p in (settings.storage_dir / d).rglob("*") if p.is_file()]


async def test_every_hostile_plain_bundle_is_refused_at_upload_with_its_code_and_nothing_is_stored(
        sessions, client, wrapped_holder_keys, raw_conn, settings):
    info = await draft_tender(sessions, client, bidders=1)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    await publish(sessions, info)
    for hostile in CORPUS:
        status, body = await upload(client, info, info.bidders[0], hostile.data)
        assert (status, body["error"]["code"]) == (422, hostile.code), (hostile.name, body)
        if hostile.reason is not None:
            assert body["error"]["details"]["reason"] == hostile.reason, (hostile.name, body)
        assert await raw_conn.fetchval("SELECT count(*) FROM bid WHERE tender_id = $1", info.tender_id) == 0
        assert stored_files(settings) == [], hostile.name
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action LIKE 'bid.%'") == 0
    # the same bidder's honest bundle still goes in
    assert (await upload(client, info, info.bidders[0], bundle()))[0] == 201


def _seal(data: bytes, recipient: str) -> bytes:
    """Sealed by the bidder's own age client: the platform only ever sees ciphertext."""
    return pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(recipient)])


async def _record_data(client, record_no: str) -> dict:
    reader = PdfReader(io.BytesIO(await (await client.get(f"/api/v1/records/{record_no}")).read()))
    return json.loads(reader.attachments["record.json"][0])["data"]


@pytest.fixture
def order_of_work(monkeypatch) -> list[str]:
    """What the opening does, in order: "open" for each bid decrypted, "ledger" for each ledger append (the
    first append takes the ledger lock, held until the transaction ends). The real functions still run."""
    events: list[str] = []
    real_open, real_append = opening.open_stored_bid, ledger_service.append

    def counting_open(*args, **kwargs):
        events.append("open")
        return real_open(*args, **kwargs)

    async def counting_append(*args, **kwargs):
        events.append("ledger")
        return await real_append(*args, **kwargs)
    monkeypatch.setattr(opening, "open_stored_bid", counting_open)
    monkeypatch.setattr(ledger_service, "append", counting_append)
    return events


async def test_a_client_sealed_hostile_bundle_is_revoked_at_the_opening_and_the_other_bids_open(
        sessions, client, wrapped_holder_keys, raw_conn, order_of_work):
    info = await draft_tender(sessions, client, bidders=4)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    recipient = await publish(sessions, info)
    a, b, c, hostile = info.bidders
    for actor, price in ((a, "300.00"), (b, "200.00"), (c, "100.00")):
        assert (await upload(client, info, actor, bundle(price=price)))[0] == 201
    # a 6 KiB sparse bundle declaring a 50 GiB file, sealed by the bidder: the upload can only see ciphertext
    status, receipt = await upload(client, info, hostile, _seal(gnu_sparse(), recipient))
    assert status == 201 and receipt["receipt"]["sealed_by"] == "client"
    await set_deadline(sessions, info, -1)
    assert (await client.post(URL.format(info.code), headers=info.agent.headers)).status == 200
    for holder, passphrase in zip(info.holders[:2], PASSPHRASES):
        order_of_work.clear()
        status, body = await submit_share(client, info.code, holder.headers, passphrase)
        assert status == 200, body
    assert body["status"] == "opened" and body["valid_bids"] == 3 and body["failed_lots"] == []
    # the last share: all four bids were decrypted and checked before the request's first ledger entry
    assert order_of_work[:4] == ["open"] * 4 and "open" not in order_of_work[4:] and "ledger" in order_of_work

    opened = (await (await client.get(f"/api/v1/tenders/{info.code}/opened-bids")).json())["bids"]
    bad = [row for row in opened if row["status"] == "invalid"]
    assert [(r["bid"], r["withdrawal_kind"], r["withdrawal_cause"]) for r in bad] == [
        (receipt["receipt"]["bid"], REVOKED, "bundle_member_not_allowed")]
    assert sorted(Decimal(r["price"]) for r in opened if r["status"] == "opened") == [
        Decimal("100.00"), Decimal("200.00"), Decimal("300.00")]
    entry = await raw_conn.fetchrow("SELECT actor, payload FROM audit_entry WHERE action = 'bid.invalidated'")
    payload = json.loads(entry["payload"])
    assert payload["bid"] == receipt["receipt"]["bid"] and payload["kind"] == REVOKED
    assert payload["cause"] == "bundle_member_not_allowed" and "第三十一条" in payload["statute"]
    assert payload["ciphertext_sha256"] == receipt["receipt"]["ciphertext_sha256"]
    record = await _record_data(client, body["record_no"])
    [withdrawn] = [x for x in record["bids"] if x["status"] == "invalid"]
    assert (withdrawn["bid"], withdrawn["withdrawal_kind"], withdrawn["withdrawal_cause"]) == (
        receipt["receipt"]["bid"], REVOKED, "bundle_member_not_allowed")


async def test_a_hostile_bundle_that_leaves_fewer_than_three_valid_bids_fails_the_lot(
        sessions, client, wrapped_holder_keys, raw_conn):
    info = await draft_tender(sessions, client, bidders=3)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    recipient = await publish(sessions, info)
    a, b, hostile = info.bidders
    assert (await upload(client, info, a, bundle(price="500.00")))[0] == 201
    assert (await upload(client, info, b, bundle(price="600.00")))[0] == 201
    assert (await upload(client, info, hostile, _seal(symbolic_link(), recipient)))[0] == 201
    await set_deadline(sessions, info, -1)
    # three bids: the lot is opened (实施条例 第44条 lets it), then only two are valid
    assert (await (await client.post(URL.format(info.code), headers=info.agent.headers)).json())["failed_lots"] == []
    for holder, passphrase in zip(info.holders[:2], PASSPHRASES):
        status, body = await submit_share(client, info.code, holder.headers, passphrase)
        assert status == 200, body
    assert body["status"] == "failed" and body["valid_bids"] == 2 and body["failed_lots"] == [info.lot_id]
    assert await raw_conn.fetchval("SELECT failure_reason FROM lot WHERE public_id = $1",
                                   info.lot_id) == "fewer_than_three_valid_bids"
    assert await raw_conn.fetchval("SELECT count(*) FROM opening_share") == 0


@pytest.mark.parametrize("hostile", CORPUS, ids=[h.name for h in CORPUS])
def test_every_hostile_bundle_sealed_by_a_client_is_revoked_with_its_code(tmp_path, hostile):
    identity = pyrage.x25519.Identity.generate()
    sealed = pyrage.encrypt(hostile.data, [identity.to_public()])
    path = tmp_path / "bid.age"
    path.write_bytes(sealed)
    outcome = open_stored_bid(path, hashlib.sha256(sealed).hexdigest(), "client", str(identity))
    assert (outcome.bundle, outcome.kind, outcome.cause) == (None, REVOKED, hostile.code)


def test_opening_a_bid_never_holds_it_whole(tmp_path):
    """A 24 MiB bundle opens with a small fraction of its size in Python memory: it streams through the scanner."""
    identity = pyrage.x25519.Identity.generate()
    documents = {f"part{i}.pdf": bytes([i]) * (8 * 2**20) for i in range(3)}
    sealed = pyrage.encrypt(make_bundle({"price": "1.00", "duration_days": 1}, documents), [identity.to_public()])
    path = tmp_path / "bid.age"
    path.write_bytes(sealed)
    digest = hashlib.sha256(sealed).hexdigest()
    del sealed, documents
    tracemalloc.start()
    try:
        outcome = open_stored_bid(path, digest, "client", str(identity), BundleLimits(max_bytes=32 * 2**20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [d.size for d in outcome.bundle.documents] == [8 * 2**20] * 3
    assert outcome.bundle.documents[1].sha256 == hashlib.sha256(bytes([1]) * (8 * 2**20)).hexdigest()
    assert peak < 2 * 2**20, peak
    # the same bundle against a lower limit is refused as too large, before its data is read
    outcome = open_stored_bid(path, digest, "client", str(identity), BundleLimits(max_bytes=16 * 2**20))
    assert (outcome.kind, outcome.cause) == (REVOKED, "bundle_too_large")
