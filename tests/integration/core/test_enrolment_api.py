"""Enrolment links: an admin invites an expert of the pool or a new member of staff, who sets up their own
sign-in. Single use, 72 hours by the database clock, stored only as SHA-256, and the admin never sees a factor."""
import asyncio
import hashlib
import json
import time
from urllib.parse import parse_qs, urlsplit

import pyotp

from expert_pool.demo import id_card
from tests.helpers import PASSWORD, auth, bidder, login, staff


async def register_expert(client, admin, i: int = 1) -> str:
    """An expert registered by the admin without any login; returns E-XXXXXX."""
    resp = await client.post("/api/v1/experts", headers=admin.headers, json={
        "name": f"李{'明华国'[i % 3]}", "id_card_no": id_card(4000 + i, "442000"), "phone": f"1380000{i:04d}",
        "province_code": "440000", "city_code": "442000", "category": "technical", "title": "高级工程师",
        "specialties": ["A0101"]})
    assert resp.status == 201, await resp.text()
    expert = await resp.json()
    assert expert["account"] is None
    return expert["expert_id"]


async def error_of(resp) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]["code"]


async def actions(raw_conn, entity: str) -> list[str]:
    return [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", entity)]


async def test_an_expert_without_a_login_enrols_through_the_link_and_is_linked_to_the_pool_entry(
        client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    expert_id = await register_expert(client, admin)

    resp = await client.post(f"/api/v1/admin/experts/{expert_id}/enrolment", headers=admin.headers)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    link = await resp.json()
    assert link["purpose"] == "expert_account" and link["expert_id"] == expert_id and link["roles"] == ["expert"]
    token = parse_qs(urlsplit(link["url"]).query)["token"][0]
    assert token == link["token"] and link["url"].startswith("http://127.0.0.1:8080/api/v1/enrolment?token=")
    # only the SHA-256 is kept; the link lasts 72 hours by the database clock
    row = await raw_conn.fetchrow("SELECT token_hash, expires_at - created_at AS ttl FROM enrolment_token")
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["ttl"].total_seconds() == 72 * 3600
    assert token not in json.dumps([dict(r) for r in await raw_conn.fetch("SELECT payload FROM audit_entry")])

    # the expert opens the link (no sign-in) and sees what it is for
    resp = await client.get("/api/v1/enrolment", params={"token": token})
    assert resp.status == 200, await resp.text()
    info = await resp.json()
    assert (info["purpose"], info["expert_id"], info["needs_username"], info["needs_totp"]) == (
        "expert_account", expert_id, True, False)

    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": "short1"})
    assert resp.status == 422  # pydantic: the password is too short; nothing changed
    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": "onlyletters"})
    assert await error_of(resp) == (422, "weak_password")
    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": PASSWORD})
    assert await error_of(resp) == (422, "username_required")
    assert await raw_conn.fetchval("SELECT user_id FROM expert WHERE public_id = $1", expert_id) is None

    resp = await client.post("/api/v1/enrolment/complete", json={
        "token": token, "username": "li.minghua", "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    user = await resp.json()
    assert user["roles"] == ["expert"] and user["username"] == "li.minghua"

    # the expert signs in and finds their own pool entry; the admin sees the account on the expert
    tokens = await login(client, "li.minghua")
    mine = await (await client.get("/api/v1/me/expert", headers=auth(tokens))).json()
    assert mine["expert_id"] == expert_id
    seen = await (await client.get(f"/api/v1/experts/{expert_id}", headers=admin.headers)).json()
    assert seen["account"] == user["public_id"]

    # single use; a linked expert gets no further link
    resp = await client.post("/api/v1/enrolment/complete", json={
        "token": token, "username": "someone-else", "password": PASSWORD})
    assert await error_of(resp) == (410, "enrolment_used")
    assert await error_of(await client.get("/api/v1/enrolment", params={"token": token})) == (410, "enrolment_used")
    resp = await client.post(f"/api/v1/admin/experts/{expert_id}/enrolment", headers=admin.headers)
    assert await error_of(resp) == (409, "expert_already_linked")

    enrolment = f"enrolment:{link['enrolment_id']}"
    assert await actions(raw_conn, enrolment) == ["enrolment.create", "enrolment.complete"]
    assert "expert.account_link" in await actions(raw_conn, f"expert:{expert_id}")


async def test_new_staff_set_their_own_password_and_totp_so_the_admin_never_sees_either(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    org = await (await client.post("/api/v1/admin/organisations", headers=admin.headers, json={
        "name": "广东中诚招标代理有限公司", "kind": "agency"})).json()
    resp = await client.post("/api/v1/admin/enrolments", headers=admin.headers, json={
        "username": "wang.fang", "display_name": "王芳", "roles": ["agent"], "organisation_id": org["public_id"]})
    assert resp.status == 201, await resp.text()
    link = await resp.json()
    assert "otpauth" not in json.dumps(link) and "password" not in json.dumps(link)
    assert link["user"]["username"] == "wang.fang" and link["user"]["is_active"] is False
    token = link["token"]

    # the account cannot sign in before its owner completes the enrolment
    resp = await client.post("/api/v1/auth/login", json={"username": "wang.fang", "password": PASSWORD})
    assert resp.status == 401

    info = await (await client.get("/api/v1/enrolment", params={"token": token})).json()
    assert (info["username"], info["organisation"], info["needs_totp"], info["needs_username"]) == (
        "wang.fang", "广东中诚招标代理有限公司", True, False)

    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": PASSWORD,
                                                                 "totp": "123456"})
    assert await error_of(resp) == (409, "totp_not_started")
    resp = await client.post("/api/v1/enrolment/totp", json={"token": token})
    assert resp.status == 200, await resp.text()
    uri = (await resp.json())["totp_provisioning_uri"]
    secret = pyotp.parse_uri(uri).secret
    assert "wang.fang" in uri

    totp = pyotp.TOTP(secret)
    wrong = "000000" if totp.now() != "000000" else "111111"
    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": PASSWORD,
                                                                 "totp": wrong})
    assert await error_of(resp) == (422, "totp_invalid")
    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": PASSWORD})
    assert await error_of(resp) == (422, "totp_required")
    assert await raw_conn.fetchval("SELECT is_active FROM app_user WHERE username = 'wang.fang'") is False

    first_code = totp.now()
    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": PASSWORD,
                                                                 "totp": first_code})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["totp_enrolled"] is True

    # the agent signs in with both factors (the enrolment's code is spent: the next one); the secret never
    # reached the admin or the ledger, and it is stored sealed
    resp = await client.post("/api/v1/auth/login", json={"username": "wang.fang", "password": PASSWORD,
                                                         "totp": first_code})
    assert await error_of(resp) == (401, "totp_reused")
    tokens = await login(client, "wang.fang", PASSWORD, totp.at(time.time() + totp.interval))
    stored = await raw_conn.fetchval("SELECT totp_secret FROM app_user WHERE username = 'wang.fang'")
    assert stored.startswith("v1:") and secret not in stored
    me = await (await client.get("/api/v1/me", headers=auth(tokens))).json()
    assert (me["roles"], me["organisation"]["name"]) == (["agent"], "广东中诚招标代理有限公司")
    assert secret not in json.dumps([r["payload"] for r in await raw_conn.fetch("SELECT payload FROM audit_entry")])
    assert await raw_conn.fetchval("SELECT pending_totp_secret FROM enrolment_token") is None
    assert await actions(raw_conn, f"enrolment:{link['enrolment_id']}") == [
        "enrolment.create", "enrolment.totp_offer", "enrolment.complete"]
    assert await error_of(await client.post("/api/v1/enrolment/totp", json={"token": token})) == (
        410, "enrolment_used")
    resp = await client.post(f"/api/v1/admin/users/{link['user']['public_id']}/enrolment", headers=admin.headers)
    assert await error_of(resp) == (409, "user_already_enrolled")


async def test_a_link_expires_by_the_database_clock_and_a_new_one_revokes_the_old(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    link = await (await client.post("/api/v1/admin/enrolments", headers=admin.headers, json={
        "username": "li.ming", "display_name": "李明", "roles": ["purchaser"]})).json()
    await raw_conn.execute("UPDATE enrolment_token SET created_at = now() - interval '73 hours', "
                           "expires_at = now() - interval '1 hour'")
    resp = await client.post("/api/v1/enrolment/complete", json={"token": link["token"], "password": PASSWORD})
    assert await error_of(resp) == (410, "enrolment_expired")
    assert await raw_conn.fetchval("SELECT is_active FROM app_user WHERE username = 'li.ming'") is False

    # the admin sends a fresh link; the old one (even unexpired) is withdrawn
    fresh = await (await client.post(f"/api/v1/admin/users/{link['user']['public_id']}/enrolment",
                                     headers=admin.headers)).json()
    third = await (await client.post(f"/api/v1/admin/users/{link['user']['public_id']}/enrolment",
                                     headers=admin.headers)).json()
    resp = await client.get("/api/v1/enrolment", params={"token": fresh["token"]})
    assert await error_of(resp) == (410, "enrolment_revoked")
    # a purchaser has no second factor to set up
    resp = await client.post("/api/v1/enrolment/totp", json={"token": third["token"]})
    assert await error_of(resp) == (409, "totp_not_needed")
    resp = await client.post("/api/v1/enrolment/complete", json={"token": third["token"], "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    await login(client, "li.ming")

    # an unused link can be withdrawn by the admin
    other = await (await client.post("/api/v1/admin/enrolments", headers=admin.headers, json={
        "username": "zhao.lei", "display_name": "赵磊", "roles": ["purchaser"]})).json()
    resp = await client.delete(f"/api/v1/admin/enrolments/{other['enrolment_id']}", headers=admin.headers)
    assert resp.status == 204
    assert await error_of(await client.get("/api/v1/enrolment", params={"token": other["token"]})) == (
        410, "enrolment_revoked")
    resp = await client.delete(f"/api/v1/admin/enrolments/{third['enrolment_id']}", headers=admin.headers)
    assert await error_of(resp) == (409, "enrolment_used")


async def test_a_link_completes_once_even_when_used_twice_at_the_same_moment(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    expert_id = await register_expert(client, admin, 2)
    link = await (await client.post(f"/api/v1/admin/experts/{expert_id}/enrolment", headers=admin.headers)).json()
    first, second = await asyncio.gather(*(
        client.post("/api/v1/enrolment/complete", json={"token": link["token"], "username": name,
                                                        "password": PASSWORD})
        for name in ("racer.one", "racer.two")))
    assert sorted([first.status, second.status]) == [200, 410]
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user WHERE username LIKE 'racer.%'") == 1
    assert await raw_conn.fetchval("SELECT u.username LIKE 'racer.%' FROM expert e JOIN app_user u "
                                   "ON u.id = e.user_id WHERE e.public_id = $1", expert_id)


async def test_enrolment_refusals_are_clear_and_change_nothing(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    someone = await bidder(client)
    assert await error_of(await client.get("/api/v1/enrolment", params={"token": "x" * 43})) == (
        404, "enrolment_not_found")
    resp = await client.post("/api/v1/admin/experts/E-NOSUCH/enrolment", headers=admin.headers)
    assert await error_of(resp) == (404, "expert_not_found")
    resp = await client.post("/api/v1/admin/enrolments", headers=someone.headers, json={
        "username": "sneaky", "display_name": "x", "roles": ["admin"]})
    assert await error_of(resp) == (403, "role_forbidden")
    for roles, code in ((["expert"], "expert_role_by_pool"), (["bidder"], "role_not_self_registering")):
        resp = await client.post("/api/v1/admin/enrolments", headers=admin.headers, json={
            "username": "newbie", "display_name": "x", "roles": roles})
        assert await error_of(resp) == (422, code)
    resp = await client.post("/api/v1/admin/enrolments", headers=admin.headers, json={
        "username": someone.username, "display_name": "x", "roles": ["agent"]})
    assert await error_of(resp) == (409, "username_taken")
    resp = await client.post("/api/v1/admin/enrolments", headers=admin.headers, json={
        "username": "newbie", "display_name": "x", "roles": ["agent"], "organisation_id": "O-NOSUCH"})
    assert await error_of(resp) == (404, "organisation_not_found")
    assert await raw_conn.fetchval("SELECT count(*) FROM enrolment_token") == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user WHERE username = 'newbie'") == 0

    # an expert cannot take a username that is already in use
    expert_id = await register_expert(client, admin, 3)
    link = await (await client.post(f"/api/v1/admin/experts/{expert_id}/enrolment", headers=admin.headers)).json()
    resp = await client.post("/api/v1/enrolment/complete", json={
        "token": link["token"], "username": someone.username, "password": PASSWORD})
    assert await error_of(resp) == (409, "username_taken")
    assert await raw_conn.fetchval("SELECT used_at FROM enrolment_token") is None


async def test_an_admin_links_an_existing_expert_account_to_an_expert_without_a_login(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    await staff(sessions, client, "expert", username="chen.gang")
    agent = await staff(sessions, client, "agent")
    expert_id = await register_expert(client, admin, 4)
    link = await (await client.post(f"/api/v1/admin/experts/{expert_id}/enrolment", headers=admin.headers)).json()

    resp = await client.put(f"/api/v1/admin/experts/{expert_id}/account", headers=admin.headers,
                            json={"username": agent.username})
    assert await error_of(resp) == (422, "user_not_expert")
    resp = await client.put(f"/api/v1/admin/experts/{expert_id}/account", headers=admin.headers,
                            json={"username": "nobody"})
    assert await error_of(resp) == (404, "user_not_found")
    assert await raw_conn.fetchval("SELECT user_id FROM expert WHERE public_id = $1", expert_id) is None

    resp = await client.put(f"/api/v1/admin/experts/{expert_id}/account", headers=admin.headers,
                            json={"username": "chen.gang"})
    assert resp.status == 200, await resp.text()
    linked = await resp.json()
    assert linked["account"]["username"] == "chen.gang"
    mine = await (await client.get("/api/v1/me/expert", headers=auth(await login(client, "chen.gang")))).json()
    assert mine["expert_id"] == expert_id
    # the outstanding enrolment link of that expert is withdrawn; the account links to one expert only
    assert await error_of(await client.get("/api/v1/enrolment", params={"token": link["token"]})) == (
        410, "enrolment_revoked")
    other = await register_expert(client, admin, 5)
    resp = await client.put(f"/api/v1/admin/experts/{other}/account", headers=admin.headers,
                            json={"username": "chen.gang"})
    assert await error_of(resp) == (409, "user_already_linked")
    resp = await client.put(f"/api/v1/admin/experts/{expert_id}/account", headers=admin.headers,
                            json={"username": "chen.gang"})
    assert await error_of(resp) == (409, "expert_already_linked")
    assert await actions(raw_conn, f"expert:{expert_id}") == ["expert.create", "expert.account_link"]
