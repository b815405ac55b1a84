"""The opening: key holders unlock their shares, k of them open every bid, the bad ones are withdrawn."""
from __future__ import annotations

import re
import subprocess
from decimal import Decimal

import pyrage
from sqlalchemy import text

from evidence import sealing
from tests.integration.trading_bids.conftest import (PASSPHRASES, add_holders, bundle, draft_tender, publish,
                                                     set_deadline, upload, verify_record)
from tests.helpers import submit_share
from tests.ocds_validation import ocds_record

URL = "/api/v1/tenders/{}/opening"


async def share(client, info, holder, passphrase):
    return await submit_share(client, info.code, holder.headers, passphrase)


async def all_text_in_database(raw_conn) -> str:
    """Every row of every table as text: what someone holding only the database would have."""
    tables = [r["tablename"] for r in await raw_conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    parts = []
    for table in tables:
        rows = await raw_conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
        parts.extend(r["row"] for r in rows)
    return "\n".join(parts)


async def test_two_of_three_holders_open_the_bids_and_damaged_ones_are_withdrawn(
        sessions, client, wrapped_holder_keys, raw_conn, settings, tmp_path):
    info = await draft_tender(sessions, client, bidders=5)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    recipient = await publish(sessions, info)
    a, b, c, d, e = info.bidders

    assert (await upload(client, info, a, bundle(price="1000000.00", declared={"项目经理": "李四"})))[0] == 201
    # b seals with the stock age tool to the published recipient
    plain, sealed = tmp_path / "bid.tar", tmp_path / "bid.age"
    plain.write_bytes(bundle(price="990000.50", duration_days=200, documents={"报价单.pdf": b"%PDF-1.4 b"}))
    subprocess.run(["age", "-r", recipient, "-o", str(sealed), str(plain)], check=True)
    status, receipt_b = await upload(client, info, b, sealed.read_bytes())
    assert status == 201 and receipt_b["receipt"]["sealed_by"] == "client"
    assert (await upload(client, info, c, bundle(price="1010000.00")))[0] == 201
    status, receipt_d = await upload(client, info, d, bundle(price="950000.00"))
    # e seals to some other key: a well-formed age file the tender key cannot open
    _, stranger = sealing.new_tender_identity()
    sealed_e = pyrage.encrypt(bundle(price="1.00"), [pyrage.x25519.Recipient.from_str(stranger)])
    assert (await upload(client, info, e, sealed_e))[0] == 201

    # the stored file of d is damaged after its receipt
    key = await raw_conn.fetchval("SELECT storage_key FROM bid WHERE public_id = $1", receipt_d["receipt"]["bid"])
    path = settings.storage_dir / key
    damaged = bytearray(path.read_bytes())
    damaged[-40] ^= 0xFF
    path.write_bytes(bytes(damaged))

    # before the opening the database holds no tender key, no holder key and no price in clear
    dump = await all_text_in_database(raw_conn)
    assert "AGE-SECRET-KEY" not in dump and "1000000.00" not in dump and "李四" not in dump

    resp = await client.post(URL.format(info.code), headers=info.agent.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "before_deadline"
    await set_deadline(sessions, info, -1)
    resp = await client.post(URL.format(info.code), headers=info.agent.headers)
    assert resp.status == 200 and (await resp.json())["status"] == "opening"

    holder1, holder2, _ = info.holders
    status, body = await share(client, info, holder1, "not-the-right-passphrase")
    assert (status, body["error"]["code"]) == (422, "wrong_passphrase")
    assert await raw_conn.fetchval("SELECT count(*) FROM opening_share") == 0
    # age measures the machine on each unlock and refuses a work factor far above what it can do now; on a
    # saturated machine a key wrapped on a quiet one looks like that. Shown here with the key's stanza asking for
    # 2^40: the right passphrase is answered 503 busy, not "wrong passphrase", and nothing is recorded.
    wrapped = await raw_conn.fetchval(
        "SELECT k.wrapped_identity FROM tender_key_holder h JOIN holder_key k ON k.id = h.holder_key_id "
        "JOIN app_user u ON u.id = h.user_id JOIN tender t ON t.id = h.tender_id WHERE u.public_id = $1 "
        "AND t.code = $2", holder1.public_id, info.code)
    heavy = re.sub(rb"(-> scrypt \S+) \d+", rb"\1 40", wrapped, count=1)
    await raw_conn.execute("UPDATE holder_key SET wrapped_identity = $1 WHERE wrapped_identity = $2", heavy, wrapped)
    resp = await client.post(URL.format(info.code) + "/shares", json={"passphrase": PASSPHRASES[0]},
                             headers=holder1.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (503, "key_unlock_busy")
    assert int(resp.headers["Retry-After"]) > 0
    assert await raw_conn.fetchval("SELECT count(*) FROM opening_share") == 0
    await raw_conn.execute("UPDATE holder_key SET wrapped_identity = $1 WHERE wrapped_identity = $2", wrapped, heavy)
    status, body = await share(client, info, holder1, PASSPHRASES[0])
    assert status == 200 and body["unlocked"] == 1 and body["status"] == "opening"
    status, body = await share(client, info, holder1, PASSPHRASES[0])
    assert (status, body["error"]["code"]) == (409, "share_already_unlocked")
    # one share is in; the tender key is still nowhere in the database
    assert "AGE-SECRET-KEY" not in await all_text_in_database(raw_conn)

    status, body = await share(client, info, holder2, PASSPHRASES[1])
    assert status == 200 and body["status"] == "opened" and body["valid_bids"] == 3, body
    assert await raw_conn.fetchval("SELECT count(*) FROM opening_share") == 0

    opened = (await (await client.get(f"/api/v1/tenders/{info.code}/opened-bids")).json())["bids"]
    by_bidder = {row["bidder_name"]: row for row in opened}
    names = {}
    for actor in info.bidders:
        names[actor.public_id] = await raw_conn.fetchval(
            "SELECT o.name FROM app_user u JOIN organisation o ON o.id = u.organisation_id WHERE u.public_id = $1",
            actor.public_id)
    assert Decimal(by_bidder[names[a.public_id]]["price"]) == Decimal("1000000.00")
    assert by_bidder[names[a.public_id]]["declared"] == {"项目经理": "李四"}
    assert Decimal(by_bidder[names[b.public_id]]["price"]) == Decimal("990000.50")
    assert by_bidder[names[b.public_id]]["duration_days"] == 200
    assert (by_bidder[names[d.public_id]]["status"], by_bidder[names[d.public_id]]["withdrawal_kind"],
            by_bidder[names[d.public_id]]["withdrawal_cause"]) == ("invalid", "撤回", "stored_ciphertext_damaged")
    assert (by_bidder[names[e.public_id]]["withdrawal_kind"],
            by_bidder[names[e.public_id]]["withdrawal_cause"]) == ("撤销", "undecryptable")

    report = await verify_record(client, body["record_no"])
    assert report["valid"] and report["sealed"] and report["archived"]
    assert report["record"]["record_no"] == body["record_no"]


async def test_a_tender_left_with_two_valid_bids_after_the_opening_fails_with_a_record(
        sessions, client, wrapped_holder_keys, raw_conn):
    info = await draft_tender(sessions, client, bidders=3, platform_share=True)
    # the agent, a supervisor and the platform hold shares; k = 2 people: both people's passphrases, with the
    # platform's share beside them
    await add_holders(sessions, client, info, wrapped_holder_keys[:2], k=2)
    await publish(sessions, info)
    a, b, c = info.bidders
    assert (await upload(client, info, a, bundle(price="500.00")))[0] == 201
    assert (await upload(client, info, b, bundle(price="600.00")))[0] == 201
    # three bids, so the lot is opened; c's is sealed to another key and is revoked at the opening
    _, stranger = sealing.new_tender_identity()
    sealed_c = pyrage.encrypt(bundle(price="700.00"), [pyrage.x25519.Recipient.from_str(stranger)])
    assert (await upload(client, info, c, sealed_c))[0] == 201
    await set_deadline(sessions, info, -1)
    body = await (await client.post(URL.format(info.code), headers=info.agent.headers)).json()
    assert body["unlocked"] == 1 and body["holders_unlocked"] == ["platform"] and body["failed_lots"] == []
    status, body = await share(client, info, info.agent, PASSPHRASES[0])
    assert status == 200 and body["status"] == "opening" and body["unlocked"] == 2
    status, body = await share(client, info, info.holders[1], PASSPHRASES[1])
    assert status == 200 and body["status"] == "failed" and body["valid_bids"] == 2
    assert body["failed_lots"] == [info.lot_id]
    assert await raw_conn.fetchval("SELECT failure_reason FROM lot WHERE public_id = $1",
                                   info.lot_id) == "fewer_than_three_valid_bids"
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE id = $1", info.tender_id) == "failed"
    kind = await raw_conn.fetchval("SELECT kind FROM record WHERE record_no = $1", body["record_no"])
    assert kind == "tender_failed"
    report = await verify_record(client, body["record_no"])
    assert report["valid"] and report["sealed"]


async def test_only_an_agent_of_the_tender_starts_the_opening_and_only_holders_send_shares(
        sessions, client, wrapped_holder_keys):
    info = await draft_tender(sessions, client, bidders=3)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    await publish(sessions, info)
    for actor in info.bidders:  # three bids: the lot is opened (fewer would fail it unopened)
        assert (await upload(client, info, actor, bundle()))[0] == 201
    await set_deadline(sessions, info, -1)
    resp = await client.post(URL.format(info.code), headers=info.bidders[0].headers)
    assert resp.status == 403
    status, body = await share(client, info, info.holders[0], PASSPHRASES[0])
    assert (status, body["error"]["code"]) == (409, "not_opening")
    assert (await client.post(URL.format(info.code), headers=info.agent.headers)).status == 200
    status, body = await share(client, info, info.bidders[0], "whatever-passphrase")
    assert (status, body["error"]["code"]) == (403, "not_key_holder")
    async with sessions() as session:
        assert (await session.execute(text("SELECT status FROM tender WHERE id = :i"),
                                      {"i": info.tender_id})).scalar_one() == "opening"
    # while the opening waits for the shares the bids are sealed, and the public OCDS record names no bidder
    release = await ocds_record(client, info.code)
    assert release["tender"]["statusDetails"] == "opening" and "tenderers" not in release["tender"]
