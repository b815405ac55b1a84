"""Fewer than three bids are never opened (招标投标法实施条例 第44条), and the opening record's signers.

The decryptor is instrumented: `trading.opening.open_stored_bid`, which decrypts one stored bid as a stream
(and the key rebuild, `evidence.sealing.combine_shares`), are wrapped to count their calls, and the real
functions still run.
"""
from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader

from evidence import sealing
from tests.integration.trading_bids.conftest import (PASSPHRASES, add_holders, bundle, draft_tender,
                                                     lot_public_id, publish, register, set_deadline, upload,
                                                     verify_record)
from trading import opening
from tests.helpers import submit_share
from tests.ocds_validation import ocds_record

URL = "/api/v1/tenders/{}/opening"


@pytest.fixture
def decryptions(monkeypatch) -> dict[str, int]:
    """Counts of bid decryptions and tender-key rebuilds, the real functions still doing the work."""
    counts = {"open_stored_bid": 0, "combine_shares": 0}
    real_open, real_combine = opening.open_stored_bid, sealing.combine_shares

    def counting_open(*args, **kwargs):
        counts["open_stored_bid"] += 1
        return real_open(*args, **kwargs)

    def counting_combine(*args, **kwargs):
        counts["combine_shares"] += 1
        return real_combine(*args, **kwargs)
    monkeypatch.setattr(opening, "open_stored_bid", counting_open)
    monkeypatch.setattr(sealing, "combine_shares", counting_combine)
    return counts


async def org_name(raw_conn, actor) -> str:
    return await raw_conn.fetchval(
        "SELECT o.name FROM app_user u JOIN organisation o ON o.id = u.organisation_id WHERE u.public_id = $1",
        actor.public_id)


async def record_files(client, record_no: str) -> tuple[str, dict]:
    """The record's printed text and its record.json, as anyone downloading it gets them."""
    resp = await client.get(f"/api/v1/records/{record_no}")
    assert resp.status == 200
    reader = PdfReader(io.BytesIO(await resp.read()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text, json.loads(reader.attachments["record.json"][0])


async def share(client, info, holder, passphrase):
    return await submit_share(client, info.code, holder.headers, passphrase)


async def test_a_lot_with_two_bids_fails_unopened_with_zero_decryptions_and_a_count_only_record(
        sessions, client, wrapped_holder_keys, raw_conn, decryptions):
    info = await draft_tender(sessions, client, bidders=3, platform_share=True)
    # k counts people: two people, and the platform's share beside them
    await add_holders(sessions, client, info, wrapped_holder_keys[:2], k=2)
    await publish(sessions, info)
    a, b, c = info.bidders
    assert (await upload(client, info, a, bundle(price="812345.67")))[0] == 201
    assert (await upload(client, info, b, bundle(price="923456.78")))[0] == 201
    await set_deadline(sessions, info, -1)

    resp = await client.post(URL.format(info.code), headers=info.agent.headers)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "failed" and body["failed_lots"] == [info.lot_id] and body["unlocked"] == 0
    assert decryptions == {"open_stored_bid": 0, "combine_shares": 0}
    # the bids stay sealed: never opened, no price; no share was unlocked, and none can be sent now
    rows = await raw_conn.fetch("SELECT status, opened_at, price FROM bid WHERE tender_id = $1", info.tender_id)
    assert [(r["status"], r["opened_at"], r["price"]) for r in rows] == [("submitted", None, None)] * 2
    assert await raw_conn.fetchval("SELECT count(*) FROM opening_share") == 0
    status, err = await share(client, info, info.holders[0], PASSPHRASES[0])
    assert (status, err["error"]["code"]) == (409, "not_opening")
    assert decryptions["open_stored_bid"] == 0
    assert (await (await client.get(f"/api/v1/tenders/{info.code}/opened-bids")).json())["bids"] == []
    lot = await raw_conn.fetchrow("SELECT failed_at, failure_reason, failure_bid_count FROM lot WHERE public_id = $1",
                                  info.lot_id)
    assert lot["failed_at"] is not None and lot["failure_reason"] == "fewer_than_three_bids"
    assert lot["failure_bid_count"] == 2
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE id = $1", info.tender_id) == "failed"
    entries = await raw_conn.fetch("SELECT action, payload FROM audit_entry WHERE entity IN ($1, $2) ORDER BY seq",
                                   f"tender:{info.code}", f"lot:{info.lot_id}")
    actions = [e["action"] for e in entries]
    assert actions[-2:] == ["lot.failed", "tender.failed"] and "tender.opening" not in actions
    assert "第四十四条" in json.loads(entries[-1]["payload"])["statute"]
    # the public OCDS record: an unsuccessful tender with the count of its bids and no bidder named
    release = await ocds_record(client, info.code)
    assert release["tender"]["status"] == "unsuccessful" and "tenderers" not in release["tender"]
    assert release["tender"]["numberOfTenderers"] == 2

    # the record (failed-tender record) gives the count of bids, never a bidder or a price
    assert await raw_conn.fetchval("SELECT kind FROM record WHERE record_no = $1", body["record_no"]) == "tender_failed"
    text, data = await record_files(client, body["record_no"])
    assert "流标记录" in text and info.lot_id in text and "第四十四条" in text
    for secret in ("812345.67", "812,345.67", "923456.78", "923,456.78", await org_name(raw_conn, a),
                   await org_name(raw_conn, b)):
        assert secret not in text and secret not in json.dumps(data, ensure_ascii=False)
    assert data["data"]["opened"] is False
    # the test settings run with BIDROOM_STATUTORY_PERIODS=off, and the record says so on the page and in data
    assert data["statutory_periods"] == "off" and "BIDROOM_STATUTORY_PERIODS=off" in text
    assert data["data"]["lots"] == [{"lot": info.lot_id, "bids": 2, "reason": "fewer_than_three_bids"}]
    report = await verify_record(client, body["record_no"])
    assert report["valid"] and report["sealed"]


async def test_two_lots_open_the_one_with_three_bids_and_fail_the_one_with_two(
        sessions, client, wrapped_holder_keys, raw_conn, decryptions):
    info = await draft_tender(sessions, client, bidders=5, lots=2)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    second = await lot_public_id(sessions, info, 2)
    await publish(sessions, info)
    await register(sessions, info.bidders[3:], second)
    for actor, price in zip(info.bidders[:3], ("300000.00", "310000.00", "320000.00")):
        assert (await upload(client, info, actor, bundle(price=price)))[0] == 201
    for actor, price in zip(info.bidders[3:], ("777777.77", "888888.88")):
        assert (await upload(client, info, actor, bundle(price=price), lot=second))[0] == 201
    await set_deadline(sessions, info, -1)

    body = await (await client.post(URL.format(info.code), headers=info.agent.headers)).json()
    assert body["status"] == "opening" and body["failed_lots"] == [second]
    _, holder2, holder3 = info.holders
    assert (await share(client, info, holder2, PASSPHRASES[1]))[0] == 200
    status, body = await share(client, info, holder3, PASSPHRASES[2])
    assert status == 200 and body["status"] == "opened" and body["valid_bids"] == 3, body
    assert body["failed_lots"] == [second]
    assert decryptions == {"open_stored_bid": 3, "combine_shares": 1}

    opened = (await (await client.get(f"/api/v1/tenders/{info.code}/opened-bids")).json())["bids"]
    assert sorted(b["lot"] for b in opened) == [info.lot_id] * 3
    sealed = await raw_conn.fetch("SELECT b.status, b.price FROM bid b JOIN lot l ON l.id = b.lot_id "
                                  "WHERE l.public_id = $1", second)
    assert [(r["status"], r["price"]) for r in sealed] == [("submitted", None)] * 2
    assert await raw_conn.fetchval("SELECT failure_reason FROM lot WHERE public_id = $1",
                                   second) == "fewer_than_three_bids"
    assert await raw_conn.fetchval("SELECT failed_at FROM lot WHERE public_id = $1", info.lot_id) is None

    # the opening record reads out the first lot, gives only the count for the second, and is signed by the
    # agent who ran the opening and by both key holders who unlocked it
    text, data = await record_files(client, body["record_no"])
    assert "开标记录" in text and "310,000.00" in text and await org_name(raw_conn, info.bidders[0]) in text
    for secret in ("777777.77", "777,777.77", "888888.88", "888,888.88", await org_name(raw_conn, info.bidders[3]),
                   await org_name(raw_conn, info.bidders[4])):
        assert secret not in text and secret not in json.dumps(data, ensure_ascii=False)
    assert data["data"]["lots_not_opened"][0]["lot"] == second and data["data"]["lots_not_opened"][0]["bids"] == 2
    signers = json.loads(await raw_conn.fetchval("SELECT signers FROM record WHERE record_no = $1",
                                                 body["record_no"]))
    assert [s["public_id"] for s in signers] == [info.agent.public_id, holder2.public_id, holder3.public_id,
                                                "platform"]
    assert "开标人" in text and "解密人" in text
    report = await verify_record(client, body["record_no"])
    assert report["valid"] and report["sealed"]


async def test_the_opening_does_not_start_before_opening_at(sessions, client, wrapped_holder_keys, raw_conn):
    info = await draft_tender(sessions, client, bidders=3)
    await add_holders(sessions, client, info, wrapped_holder_keys[:2], k=2)
    await publish(sessions, info)
    for actor in info.bidders:
        assert (await upload(client, info, actor, bundle()))[0] == 201
    # the deadline has passed but the opening time (set apart behind the API's back) has not
    await raw_conn.execute("UPDATE tender SET bid_deadline_at = now() - interval '1 second', "
                           "opening_at = now() + interval '1 hour' WHERE id = $1", info.tender_id)
    resp = await client.post(URL.format(info.code), headers=info.agent.headers)
    body = await resp.json()
    assert resp.status == 409 and body["error"]["code"] == "before_opening_time"
    assert "第三十四条" in body["error"]["details"]["statute"]
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE id = $1", info.tender_id) == "published"
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_opening") == 0
