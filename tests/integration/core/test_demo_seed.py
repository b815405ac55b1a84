"""The demo data set: every role can sign in, staff belong to organisations, and a second seed changes nothing."""
import io
import time

import pyotp
import pytest
from rich.console import Console

from tests.helpers import auth, login
from web.demo import DEMO_ACCOUNTS, DEMO_BIDDERS, DEMO_PASSWORD, seed_demo


async def test_demo_accounts_sign_in_with_their_organisations_and_reseeding_is_a_no_op(settings, client, raw_conn):
    out = io.StringIO()
    await seed_demo(settings, console=Console(file=out, width=120), only_if_empty=True, tenders=2, experts=12)
    assert "bidroom-demo-2026" in out.getvalue()

    for username, _name, roles, secret, _org in DEMO_ACCOUNTS:
        tokens = await login(client, username, DEMO_PASSWORD, pyotp.TOTP(secret).now() if secret else None)
        me = await (await client.get("/api/v1/me", headers=auth(tokens))).json()
        assert me["roles"] == roles and me["organisation"]["name"], me
    agent_totp = pyotp.TOTP(DEMO_ACCOUNTS[1][3])  # the current code was spent above: the next one
    agent = await login(client, "agent", DEMO_PASSWORD, agent_totp.at(time.time() + agent_totp.interval))
    me = await (await client.get("/api/v1/me", headers=auth(agent))).json()
    assert me["organisation"]["name"] == "广东中诚招标代理有限公司"
    bidder = await login(client, DEMO_BIDDERS[0][0], DEMO_PASSWORD)
    me = await (await client.get("/api/v1/me", headers=auth(bidder))).json()
    assert me["organisation"]["name"] == DEMO_BIDDERS[0][1]

    users = await raw_conn.fetchval("SELECT count(*) FROM app_user")
    entries = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    again = io.StringIO()
    await seed_demo(settings, console=Console(file=again, width=120), only_if_empty=True, tenders=2, experts=12)
    assert "already present" in again.getvalue()
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user") == users
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == entries
    # the demo marks its database, and stores the demo TOTP secrets sealed like any other
    assert await raw_conn.fetchval("SELECT count(*) FROM demo_marker") == 1
    assert (await raw_conn.fetchval("SELECT totp_secret FROM app_user WHERE username = 'agent'")).startswith("v1:")


async def test_demo_seed_refuses_a_database_with_data_it_did_not_create(settings, client, raw_conn):
    from tests.helpers import register_bidder
    from web.demo import DemoRefused
    await register_bidder(client, "not-a-demo")
    entries = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    with pytest.raises(DemoRefused, match="--force"):
        await seed_demo(settings, console=Console(file=io.StringIO()), only_if_empty=False, tenders=0, experts=0)
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user") == 1
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == entries
