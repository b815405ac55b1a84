"""The serving database role: the server reads and writes rows as a restricted role that owns nothing, so it
cannot ALTER, DROP, TRUNCATE or disable the triggers of the ledger tables; migrations run as the owner.

The shared fixtures connect as the cluster's superuser; this module makes the serving role in its test's
database (core.db.ensure_serving_role, as `bidroom serve` does on the embedded database) and runs the app as it.
"""
from __future__ import annotations

import secrets

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.db import LEDGER_TABLES, SERVING_ROLE, asyncpg_dsn, create_engine, ensure_serving_role, session_factory
from evidence import ledger_service as ledger
from tests.helpers import login, register_bidder


@pytest.fixture
async def serving_url(db_url) -> str:
    return await ensure_serving_role(db_url, secrets.token_hex(24))


@pytest.fixture
async def serving_conn(serving_url):
    conn = await asyncpg.connect(**asyncpg_dsn(serving_url))
    yield conn
    await conn.close()


KEYS = {"audit_entry": "seq", "audit_checkpoint": "size"}
REFUSED = [
    "ALTER TABLE {t} ADD COLUMN forged text",
    "ALTER TABLE {t} DISABLE TRIGGER ALL",
    "ALTER TABLE {t} DISABLE TRIGGER USER",
    "ALTER TABLE {t} RENAME TO {t}_old",
    "DROP TABLE {t}",
    "TRUNCATE {t}",
    "DELETE FROM {t}",
    "UPDATE {t} SET {key} = {key}",
    "CREATE TRIGGER noop BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
]


@pytest.mark.parametrize("table", LEDGER_TABLES)
@pytest.mark.parametrize("statement", REFUSED)
async def test_the_serving_role_cannot_alter_drop_truncate_or_disable_triggers_on_the_ledger(
        serving_conn, raw_conn, table, statement):
    assert await serving_conn.fetchval("SELECT current_user") == SERVING_ROLE
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await serving_conn.execute(statement.format(t=table, key=KEYS[table]))
    # the table and its triggers are as the migrations left them
    assert await raw_conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
    disabled = await raw_conn.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal AND tgenabled = 'D'", table)
    assert disabled == 0


async def test_the_serving_role_is_no_superuser_and_owns_nothing(serving_conn):
    row = await serving_conn.fetchrow(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert tuple(row) == (False, False, False, False)
    owned = await serving_conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = current_user")
    assert owned == 0


async def test_the_app_runs_as_the_serving_role_and_its_writes_reach_the_ledger(settings, serving_url, raw_conn):
    from web.app import create_app
    before = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    client = TestClient(TestServer(create_app(settings.with_(database_url=serving_url))))
    await client.start_server()
    try:
        user = await register_bidder(client)
        tokens = await login(client, user["username"])
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status == 200 and (await me.json())["username"] == user["username"]
    finally:
        await client.close()
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") > before
    # a signed checkpoint is written by the serving role too
    engine = create_engine(serving_url, pool_size=1)
    try:
        from core.keys import load_or_create_ed25519
        signer = ledger.LedgerSigner(load_or_create_ed25519(settings.keys_dir / "ledger_ed25519.pem"))
        async with session_factory(engine)() as session, session.begin():
            assert await ledger.make_checkpoint(session, signer) is not None
    finally:
        await engine.dispose()
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_checkpoint") >= 1


async def test_making_the_role_again_refreshes_grants_for_tables_added_since(db_url, serving_url, raw_conn):
    await raw_conn.execute("CREATE TABLE later_table (id bigint PRIMARY KEY)")
    conn = await asyncpg.connect(**asyncpg_dsn(serving_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO later_table VALUES (1)")
        password = serving_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        await ensure_serving_role(db_url, password)
        await conn.execute("INSERT INTO later_table VALUES (1)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DROP TABLE later_table")
    finally:
        await conn.close()
