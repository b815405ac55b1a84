"""Sign-in abuse: atomic throttling, trusted proxies, a stranger cannot lock out staff, TOTP replay, username
enumeration, password change and TOTP secrets sealed at rest."""
import asyncio
import json
import time

import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core import identity_service
from tests.helpers import PASSWORD, auth, login, register_bidder, social_credit_code, staff


@pytest.fixture
async def proxied(settings):
    """The app behind a proxy on loopback: X-Forwarded-For from 127.0.0.1 is believed."""
    from web.app import create_app
    test_client = TestClient(TestServer(create_app(settings.with_(trusted_proxies=("127.0.0.1/32", "::1/128")))))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def _agent(sessions, username: str) -> pyotp.TOTP:
    """An agent made as fixtures make staff (no vault: its secret is sealed at its first sign-in)."""
    async with sessions() as session, session.begin():
        user, uri = await identity_service.create_user(session, actor="system", username=username,
                                                       password=PASSWORD, display_name="招标代理 王芳",
                                                       roles=["agent"])
    return pyotp.TOTP(pyotp.parse_uri(uri).secret)


def _next(totp: pyotp.TOTP) -> str:
    """The code of the next time step (accepted within the one-step drift, and not yet spent)."""
    return totp.at(time.time() + totp.interval)


async def _try(client, username: str, password: str, address: str | None = None, totp: str | None = None):
    body = {"username": username, "password": password}
    if totp:
        body["totp"] = totp
    headers = {"X-Forwarded-For": address} if address else {}
    resp = await client.post("/api/v1/auth/login", json=body, headers=headers)
    data = await resp.json()
    return resp.status, data.get("error", {}).get("code"), data


async def test_parallel_wrong_guesses_never_pass_the_limit(client, settings):
    await register_bidder(client, "target")
    results = await asyncio.gather(*[_try(client, "target", f"wrong-guess-{i}") for i in range(20)])
    statuses = sorted(s for s, _, _ in results)
    evaluated = statuses.count(401)
    assert 1 <= evaluated <= settings.login_max_failures_account, statuses
    assert statuses.count(429) == 20 - evaluated
    assert {code for s, code, _ in results if s == 429} == {"login_throttled"}
    # this address stays throttled for this account, even with the right password
    status, code, _ = await _try(client, "target", PASSWORD)
    assert (status, code) == (429, "login_throttled")


async def test_a_strangers_failures_do_not_lock_out_the_agent_signing_in_elsewhere(proxied, sessions, settings):
    totp = await _agent(sessions, "agent.wang")
    outcomes = [await _try(proxied, "agent.wang", f"guess-{i}-x", "203.0.113.9") for i in range(50)]
    statuses = [s for s, _, _ in outcomes]
    limit = settings.login_max_failures_account
    assert statuses[:limit] == [401] * limit and set(statuses[limit:]) == {429}
    # 50 attempts are over the per-address limit too: the stranger cannot turn to other accounts from there
    status, _, data = await _try(proxied, "agent.other", "guess-y-1", "203.0.113.9")
    assert (status, data["error"]["details"]["scope"]) == (429, "address")

    status, _, tokens = await _try(proxied, "agent.wang", PASSWORD, "198.51.100.7", totp.now())
    assert status == 200, tokens
    assert (await proxied.get("/api/v1/me", headers=auth(tokens))).status == 200
    # the stranger is still throttled
    assert (await _try(proxied, "agent.wang", PASSWORD, "203.0.113.9"))[:2] == (429, "login_throttled")


async def test_many_addresses_trigger_the_account_backoff_but_a_clean_address_still_signs_in(proxied, sessions,
                                                                                            settings):
    totp = await _agent(sessions, "agent.li")
    for i in range(settings.login_account_backoff_after + 10):
        status, code, _ = await _try(proxied, "agent.li", "guess-x-1", f"192.0.2.{i + 1}")
        assert (status, code) == (401, "invalid_credentials")
    # an address that already failed on this account now waits (the backoff is far longer than this test)
    status, code, data = await _try(proxied, "agent.li", "guess-x-2", "192.0.2.1")
    assert (status, code, data["error"]["details"]["scope"]) == (429, "login_throttled", "account_backoff")
    # the owner, from an address with no failures on the account, is not slowed
    status, _, _ = await _try(proxied, "agent.li", PASSWORD, "198.51.100.20", totp.now())
    assert status == 200


async def test_forwarded_for_is_read_from_the_right_and_only_behind_a_trusted_proxy(proxied, client, settings,
                                                                                    raw_conn):
    await register_bidder(proxied, "spoofer")
    # behind the trusted proxy: whatever the client writes on the left, the proxy's entry names it
    for i in range(settings.login_max_failures_account):
        status, _, _ = await _try(proxied, "spoofer", "wrong-pass-1", f"10.9.9.{i}, 203.0.113.50")
        assert status == 401
    assert (await _try(proxied, "spoofer", PASSWORD, "10.9.9.99, 203.0.113.50"))[:2] == (429, "login_throttled")
    assert (await _try(proxied, "spoofer", PASSWORD, "203.0.113.51"))[0] == 200
    # a chain of trusted proxies is skipped; an entry that is not an address stops the walk at the last good hop
    await _try(proxied, "spoofer", "wrong-pass-1", "203.0.113.60, 127.0.0.1")
    await _try(proxied, "spoofer", "wrong-pass-1", "<script>, 203.0.113.61")
    await _try(proxied, "spoofer", "wrong-pass-1", "203.0.113.62, not-an-address")
    keys = {r["key"] for r in await raw_conn.fetch("SELECT key FROM login_throttle WHERE key LIKE 'pair:spoofer|%'")}
    assert {"pair:spoofer|203.0.113.60", "pair:spoofer|203.0.113.61", "pair:spoofer|127.0.0.1"} <= keys
    assert not any("script" in k or "not-an" in k or "203.0.113.62" in k for k in keys)

    # without trusted proxies the header is ignored: a fake address does not escape the throttle
    await register_bidder(client, "spoofer2")
    for i in range(settings.login_max_failures_account):
        assert (await _try(client, "spoofer2", "wrong-pass-1", f"10.8.8.{i}"))[0] == 401
    assert (await _try(client, "spoofer2", PASSWORD, "10.8.8.200"))[:2] == (429, "login_throttled")


async def test_a_totp_code_signs_in_once(client, sessions, raw_conn):
    totp = await _agent(sessions, "agent.zhao")
    code = totp.now()
    first = await login(client, "agent.zhao", PASSWORD, code)
    status, error, _ = await _try(client, "agent.zhao", PASSWORD, totp=code)
    assert (status, error) == (401, "totp_reused")
    # the secret was sealed at its first use; the plaintext is gone from the database
    stored = await raw_conn.fetchval("SELECT totp_secret FROM app_user WHERE username = 'agent.zhao'")
    assert stored.startswith("v1:") and totp.secret not in stored
    # the next code works, with the sealed secret
    second = await login(client, "agent.zhao", PASSWORD, _next(totp))
    assert first["access_token"] != second["access_token"]
    # and an older step than the last one used is refused as well
    assert (await _try(client, "agent.zhao", PASSWORD, totp=code))[:2] == (401, "totp_reused")


async def test_the_same_totp_code_sent_twice_at_once_signs_in_once(client, sessions):
    totp = await _agent(sessions, "agent.sun")
    code = totp.now()
    results = await asyncio.gather(*[_try(client, "agent.sun", PASSWORD, totp=code) for _ in range(2)])
    assert sorted((s, c) for s, c, _ in results) == [(200, None), (401, "totp_reused")]


async def test_secrets_of_accounts_the_admin_creates_are_sealed_at_once(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    resp = await client.post("/api/v1/admin/users", headers=admin.headers, json={
        "username": "supervisor.he", "password": PASSWORD, "display_name": "监督员", "roles": ["supervisor"]})
    assert resp.status == 201, await resp.text()
    secret = pyotp.parse_uri((await resp.json())["totp_provisioning_uri"]).secret
    stored = await raw_conn.fetchval("SELECT totp_secret FROM app_user WHERE username = 'supervisor.he'")
    assert stored.startswith("v1:") and secret not in stored
    # a sealed secret copied onto another account does not open there (the owner is bound in)
    await raw_conn.execute("UPDATE app_user SET totp_secret = $1 WHERE username = $2",
                           stored, admin.username)
    assert (await _try(client, admin.username, PASSWORD, totp=pyotp.TOTP(secret).now()))[:2] == (
        401, "totp_unreadable")
    await login(client, "supervisor.he", PASSWORD, pyotp.TOTP(secret).now())


async def test_a_taken_username_answers_like_any_invalid_field(client, raw_conn, settings):
    await register_bidder(client, "taken")

    def body(username: str) -> dict:
        return {"username": username, "password": PASSWORD, "display_name": "某公司", "role": "bidder",
                "organisation": {"name": "中山市某某有限公司", "social_credit_code": social_credit_code()}}

    taken = await client.post("/api/v1/auth/register", json=body("taken"))
    malformed = await client.post("/api/v1/auth/register", json=body("bad name!"))
    t, m = await taken.json(), await malformed.json()
    assert taken.status == malformed.status == 422
    assert t["error"]["code"] == m["error"]["code"] == "validation_failed"
    assert t["error"].keys() == m["error"].keys()
    assert [e["path"] for e in t["error"]["details"]["errors"]] == ["body.username"]
    assert [e["path"] for e in m["error"]["details"]["errors"]] == ["body.username"]
    assert "taken" not in json.dumps(t["error"]) and "exist" not in json.dumps(t["error"])
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user") == 1
    assert await raw_conn.fetchval("SELECT count(*) FROM organisation") == 1

    # probing names is throttled per address
    for _ in range(settings.login_max_failures_ip - 1):
        assert (await client.post("/api/v1/auth/register", json=body("taken"))).status == 422
    resp = await client.post("/api/v1/auth/register", json=body("taken"))
    assert (resp.status, (await resp.json())["error"]["code"]) == (429, "registration_throttled")
    assert int(resp.headers["Retry-After"]) > 0


async def test_a_user_changes_their_password_and_other_sessions_end(client, raw_conn):
    user = await register_bidder(client, "changer")
    here = await login(client, "changer")
    elsewhere = await login(client, "changer")
    url = "/api/v1/me/password"

    resp = await client.post(url, headers=auth(here), json={"current_password": "not-my-password-1",
                                                            "new_password": "brand-new-secret-9"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "invalid_current_password")
    resp = await client.post(url, headers=auth(here), json={"current_password": PASSWORD,
                                                            "new_password": "abcdefghijklmnop"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "weak_password")
    resp = await client.post(url, headers=auth(here), json={"current_password": PASSWORD,
                                                            "new_password": PASSWORD})
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "password_unchanged")
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'user.password_change'") == 0

    resp = await client.post(url, headers=auth(here), json={
        "current_password": PASSWORD, "new_password": "brand-new-secret-9", "refresh_token": here["refresh_token"]})
    assert resp.status == 204, await resp.text()

    # the other session is over; this one goes on
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "refresh_revoked")
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": here["refresh_token"]})
    assert resp.status == 200
    # the old password no longer signs in, the new one does
    assert (await _try(client, "changer", PASSWORD))[:2] == (401, "invalid_credentials")
    await login(client, "changer", "brand-new-secret-9")
    assert await raw_conn.fetchval(
        "SELECT count(*) FROM audit_entry WHERE action = 'user.password_change' AND actor = $1",
        user["public_id"]) == 1

    # signed out, nobody changes a password
    resp = await client.post(url, json={"current_password": "brand-new-secret-9", "new_password": "x-new-pass-10"})
    assert resp.status == 401


async def test_the_sweep_drops_counters_that_no_longer_limit_anything(client, sessions, raw_conn, settings):
    for i in range(3):
        await _try(client, f"ghost-{i}", "wrong-pass-1")
    # two counters age past their window and backoff; the rest are current
    await raw_conn.execute(
        "UPDATE login_throttle SET window_started_at = now() - interval '2 days', last_failure_at = "
        "CASE WHEN last_failure_at IS NULL THEN NULL ELSE now() - interval '2 days' END "
        "WHERE key IN ('pair:ghost-0|127.0.0.1', 'acct:ghost-0')")
    before = await raw_conn.fetchval("SELECT count(*) FROM login_throttle")
    async with sessions() as session, session.begin():
        dropped = await identity_service.sweep_login_throttle(session, window_s=settings.login_window_s,
                                                             backoff_max_s=settings.login_account_backoff_max_s)
    assert dropped == 2
    assert await raw_conn.fetchval("SELECT count(*) FROM login_throttle") == before - 2
    assert await raw_conn.fetchval("SELECT count(*) FROM login_throttle WHERE key LIKE '%ghost-0%'") == 0
