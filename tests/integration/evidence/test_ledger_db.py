"""The audit ledger in PostgreSQL: append-only, verifiable from its export, tamper detected by the CLI."""
import base64
import hashlib
import json
import os
import subprocess
import sys

import asyncpg
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text

from evidence import ledger_service as ledger
from evidence.ledger import MerkleFrontier, ZERO_HEAD, leaf_hash, next_head
from tests.helpers import register_bidder, staff


async def _append(sessions, n: int, start: int = 0):
    async with sessions() as session, session.begin():
        for i in range(start, start + n):
            await ledger.append(session, actor="system", action="test.event", entity=f"thing:{i}",
                                payload={"i": i, "名称": "中山市道路工程"})


async def test_update_and_delete_on_the_ledger_are_refused(sessions, raw_conn):
    await _append(sessions, 3)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await raw_conn.execute("UPDATE audit_entry SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await raw_conn.execute("DELETE FROM audit_entry WHERE seq = 3")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await raw_conn.execute("TRUNCATE audit_entry")
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == 3


async def test_an_entry_rolls_back_with_its_business_change(sessions, raw_conn):
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await ledger.append(session, actor="system", action="test.event", entity="thing:x")
            raise RuntimeError("business change failed")
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == 0


async def test_concurrent_appends_form_one_unbroken_chain(sessions, raw_conn):
    import asyncio
    await asyncio.gather(*[_append(sessions, 5, start=k * 5) for k in range(4)])
    rows = await raw_conn.fetch("SELECT seq FROM audit_entry ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(1, 21))


async def test_anyone_recomputes_the_chain_and_checkpoint_from_the_export(client, sessions):
    supervisor = await staff(sessions, client, "supervisor")
    for _ in range(3):
        await register_bidder(client)
    resp = await client.post("/api/v1/audit/checkpoint", headers=supervisor.headers)
    assert resp.status == 201
    entries, url = [], "/api/v1/audit/entries?limit=4"
    while url:
        page = await (await client.get(url, headers=supervisor.headers)).json()
        entries += page["entries"]
        url = page["next"]
    cp = await (await client.get("/api/v1/audit/checkpoint")).json()  # public, no login

    # independent recomputation, as an outside auditor would: hashlib and another RFC 8785 implementation
    # (the rfc8785 package), never the platform's own canonical JSON
    head, leaves = bytes(32), []
    for e in entries:
        body = {k: e[k] for k in ("seq", "at", "actor", "action", "entity", "payload_sha256")}
        leaf = hashlib.sha256(b"\x00" + rfc8785.dumps(body)).digest()
        head = hashlib.sha256(head + leaf).digest()
        assert head.hex() == e["entry_hash"]
        leaves.append(leaf)
    assert cp["size"] == len(entries) and cp["head"] == head.hex()
    frontier = MerkleFrontier()
    frontier.extend(leaves)
    assert cp["root"] == frontier.root().hex()
    signed = rfc8785.dumps({"size": cp["size"], "head": cp["head"], "root": cp["root"]})
    Ed25519PublicKey.from_public_bytes(base64.b64decode(cp["public_key"])).verify(
        base64.b64decode(cp["signature"]), signed)


async def test_bidders_cannot_read_the_ledger_export(client):
    from tests.helpers import bidder
    someone = await bidder(client)
    resp = await client.get("/api/v1/audit/entries", headers=someone.headers)
    assert resp.status == 403


async def test_checkpoints_grow_incrementally_and_match_a_full_recomputation(client, sessions, settings):
    from core.keys import load_or_create_ed25519
    signer = ledger.LedgerSigner(load_or_create_ed25519(settings.keys_dir / "ledger_ed25519.pem"))
    # starting the app already ledgers its own first steps (the platform holder key, for one)
    async with sessions() as session:
        already = (await session.execute(text("SELECT count(*) FROM audit_entry"))).scalar_one()
    for round_ in range(3):
        await _append(sessions, 7, start=round_ * 7)
        async with sessions() as session, session.begin():
            cp = await ledger.make_checkpoint(session, signer)
        assert cp.size == already + 7 * (round_ + 1)
    async with sessions() as session, session.begin():
        checked, problem = await ledger.verify_ledger(session, signer.public_key)
    assert (checked, problem) == (already + 21, None)


def _run_verify(settings) -> subprocess.CompletedProcess:
    env = {**os.environ, "BIDROOM_DATABASE_URL": settings.database_url,
           "BIDROOM_DATA_DIR": str(settings.data_dir), "BIDROOM_LOG_FORMAT": "text"}
    return subprocess.run([sys.executable, "-m", "web.cli", "audit", "verify"], env=env, capture_output=True,
                          text=True, timeout=120)


async def test_audit_verify_names_the_row_a_superuser_edited_behind_the_apps_back(client, sessions, settings,
                                                                                  raw_conn):
    for _ in range(3):
        await register_bidder(client)
    ok = _run_verify(settings)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout
    total = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    assert total >= 6
    # a superuser disables the guard, edits one row and puts the guard back
    await raw_conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
    await raw_conn.execute("UPDATE audit_entry SET actor = 'U-MALORY' WHERE seq = 4")
    await raw_conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
    bad = _run_verify(settings)
    assert bad.returncode != 0
    assert "seq 4" in bad.stdout, bad.stdout


async def test_audit_verify_catches_an_altered_payload(client, sessions, settings, raw_conn):
    await register_bidder(client)
    await raw_conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
    await raw_conn.execute("""UPDATE audit_entry SET payload = '{"username": "someone-else"}' WHERE seq = 2""")
    await raw_conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
    bad = _run_verify(settings)
    assert bad.returncode != 0 and "seq 2" in bad.stdout



async def test_a_checkpoint_is_not_built_on_a_previous_one_whose_signature_or_frontier_was_tampered_with(
        client, sessions, raw_conn):
    supervisor = await staff(sessions, client, "supervisor")
    resp = await client.post("/api/v1/audit/checkpoint", headers=supervisor.headers)
    assert resp.status == 201, await resp.text()
    first = await resp.json()
    await register_bidder(client)  # the ledger grows past the checkpoint

    # a superuser swaps the stored signature for a valid-looking one made by another key
    forged = base64.b64encode(bytes(64)).decode()
    await raw_conn.execute("UPDATE audit_checkpoint SET signature = $1 WHERE size = $2", forged, first["size"])
    resp = await client.post("/api/v1/audit/checkpoint", headers=supervisor.headers)
    assert resp.status == 409, await resp.text()
    error = (await resp.json())["error"]
    assert (error["code"], error["details"]["size"]) == ("ledger_checkpoint_invalid", first["size"])
    assert "signature" in error["message"]
    assert await raw_conn.fetchval("SELECT max(size) FROM audit_checkpoint") == first["size"]

    # the signature put back, the unsigned frontier altered: refused as well
    await raw_conn.execute("UPDATE audit_checkpoint SET signature = $1 WHERE size = $2", first["signature"],
                           first["size"])
    frontier = await raw_conn.fetchval("SELECT frontier::text FROM audit_checkpoint WHERE size = $1", first["size"])
    nodes = json.loads(frontier)
    nodes[0][1] = hashlib.sha256(b"not the tree").hexdigest()
    await raw_conn.execute("UPDATE audit_checkpoint SET frontier = $1::jsonb WHERE size = $2", json.dumps(nodes),
                           first["size"])
    resp = await client.post("/api/v1/audit/checkpoint", headers=supervisor.headers)
    assert resp.status == 409 and "frontier" in (await resp.json())["error"]["message"]

    # restored, the next checkpoint grows from it
    await raw_conn.execute("UPDATE audit_checkpoint SET frontier = $1::jsonb WHERE size = $2", frontier,
                           first["size"])
    resp = await client.post("/api/v1/audit/checkpoint", headers=supervisor.headers)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["size"] > first["size"]
