"""Registration, sign-in, refresh rotation with reuse detection, logout, session kill, throttling, TOTP."""
import pyotp
from sqlalchemy import text

from tests.helpers import PASSWORD, auth, bidder, login, register_bidder, social_credit_code, staff


async def test_bidder_registers_with_its_organisation_and_sees_itself(client):
    user = await register_bidder(client, "hengxin", "中山市恒信建设工程有限公司")
    assert user["roles"] == ["bidder"]
    assert user["organisation"]["name"] == "中山市恒信建设工程有限公司"
    tokens = await login(client, "hengxin")
    resp = await client.get("/api/v1/me", headers=auth(tokens))
    assert resp.status == 200
    assert (await resp.json())["public_id"] == user["public_id"]


async def test_registration_refuses_a_bad_social_credit_code_and_changes_nothing(client, raw_conn):
    code = social_credit_code()
    bad = code[:17] + ("0" if code[17] != "0" else "1")
    resp = await client.post("/api/v1/auth/register", json={
        "username": "badcode", "password": PASSWORD, "display_name": "x", "role": "bidder",
        "organisation": {"name": "某公司", "social_credit_code": bad}})
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "invalid_social_credit_code"
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user") == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM organisation") == 0


async def test_registration_refuses_a_duplicate_organisation_and_username(client):
    code = social_credit_code()
    body = {"username": "first", "password": PASSWORD, "display_name": "x", "role": "bidder",
            "organisation": {"name": "某某公司", "social_credit_code": code}}
    assert (await client.post("/api/v1/auth/register", json=body)).status == 201
    resp = await client.post("/api/v1/auth/register", json={**body, "username": "second"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "organisation_already_registered")
    resp = await client.post("/api/v1/auth/register", json={
        **body, "organisation": {"name": "另一家", "social_credit_code": social_credit_code()}})
    # a taken name answers like any invalid field, without saying it is taken (see test_auth_hardening)
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "validation_failed")


async def test_staff_roles_cannot_self_register(client):
    resp = await client.post("/api/v1/auth/register", json={
        "username": "sneaky", "password": PASSWORD, "display_name": "x", "role": "admin",
        "organisation": {"name": "某某公司", "social_credit_code": social_credit_code()}})
    assert resp.status == 422
    assert any(e["path"] == "body.role" for e in (await resp.json())["error"]["details"]["errors"])


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(client):
    await register_bidder(client, "rotor")
    first = await login(client, "rotor")
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert resp.status == 200
    second = await resp.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert "__Host-bidroom_refresh" in resp.headers.get("Set-Cookie", "")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie

    # an attacker replays the first, already rotated token
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "refresh_reused")
    # the legitimate newer token is now dead too: the whole family was revoked
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "refresh_revoked")
    # a separate sign-in still works
    await login(client, "rotor")


async def test_logout_ends_the_session(client):
    await register_bidder(client, "leaver")
    tokens = await login(client, "leaver")
    resp = await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]},
                             headers=auth(tokens))
    assert resp.status == 204
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert (await resp.json())["error"]["code"] == "refresh_revoked"


async def test_admin_kills_sessions_and_the_access_token_stops_working(client, sessions):
    admin = await staff(sessions, client, "admin")
    victim = await bidder(client)
    assert (await client.get("/api/v1/me", headers=victim.headers)).status == 200
    resp = await client.post(f"/api/v1/admin/users/{victim.public_id}/revoke-sessions", headers=admin.headers)
    assert resp.status == 204
    resp = await client.get("/api/v1/me", headers=victim.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "token_revoked")
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": victim.tokens["refresh_token"]})
    assert resp.status == 401


async def test_only_admins_create_accounts(client, sessions):
    someone = await bidder(client)
    resp = await client.post("/api/v1/admin/users", headers=someone.headers, json={
        "username": "newexpert", "password": PASSWORD, "display_name": "张伟", "roles": ["expert"]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "role_forbidden")


async def test_admin_creates_an_agent_who_must_use_totp(client, sessions):
    admin = await staff(sessions, client, "admin")
    resp = await client.post("/api/v1/admin/users", headers=admin.headers, json={
        "username": "wangfang", "password": PASSWORD, "display_name": "王芳", "roles": ["agent"]})
    assert resp.status == 201
    created = await resp.json()
    uri = created["totp_provisioning_uri"]
    assert uri.startswith("otpauth://totp/")
    secret = pyotp.parse_uri(uri).secret

    resp = await client.post("/api/v1/auth/login", json={"username": "wangfang", "password": PASSWORD})
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "totp_required")
    resp = await client.post("/api/v1/auth/login", json={"username": "wangfang", "password": PASSWORD,
                                                         "totp": "000000" if pyotp.TOTP(secret).now() != "000000"
                                                         else "111111"})
    assert (await resp.json())["error"]["code"] == "totp_invalid"
    await login(client, "wangfang", totp=pyotp.TOTP(secret).now())


async def test_repeated_failures_are_throttled_with_retry_after(client, settings):
    await register_bidder(client, "forgetful")
    for _ in range(settings.login_max_failures_account):
        resp = await client.post("/api/v1/auth/login", json={"username": "forgetful", "password": "wrong-pass-1"})
        assert resp.status == 401
    resp = await client.post("/api/v1/auth/login", json={"username": "forgetful", "password": PASSWORD})
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "login_throttled"
    assert int(resp.headers["Retry-After"]) > 0


async def test_throttling_per_address_covers_many_accounts(client, settings, raw_conn):
    for i in range(settings.login_max_failures_ip):
        resp = await client.post("/api/v1/auth/login", json={"username": f"ghost{i}", "password": "wrong-pass-1"})
        assert resp.status == 401
    resp = await client.post("/api/v1/auth/login", json={"username": "ghost-new", "password": "wrong-pass-1"})
    assert resp.status == 429


async def test_identity_changes_are_in_the_audit_ledger(client, raw_conn):
    user = await register_bidder(client, "audited")
    await login(client, "audited")
    actions = [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE actor = $1 ORDER BY seq", user["public_id"])]
    assert actions == ["organisation.create", "user.register", "auth.login"]


async def test_admin_lists_users_with_keyset_pagination(client, sessions):
    admin = await staff(sessions, client, "admin")
    for _ in range(3):
        await register_bidder(client)
    seen, url = [], "/api/v1/admin/users?limit=2"
    while url:
        page = await (await client.get(url, headers=admin.headers)).json()
        seen += [u["public_id"] for u in page["items"]]
        url = page["next"]
    assert len(seen) == 4 and seen == sorted(seen) and len(set(seen)) == 4


async def test_idempotency_key_replays_instead_of_duplicating(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    body = {"name": "中山市交通运输局", "kind": "tenderer", "social_credit_code": social_credit_code()}
    headers = {**admin.headers, "Idempotency-Key": "org-create-1"}
    first = await client.post("/api/v1/admin/organisations", json=body, headers=headers)
    second = await client.post("/api/v1/admin/organisations", json=body, headers=headers)
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert await raw_conn.fetchval("SELECT count(*) FROM organisation WHERE kind = 'tenderer'") == 1
    resp = await client.post("/api/v1/admin/organisations", json={**body, "name": "别的"}, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "idempotency_key_reused")
