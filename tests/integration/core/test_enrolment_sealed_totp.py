"""The TOTP secret offered during an enrolment is sealed at rest, like the secrets of enrolled accounts: a copy
of the database shows neither the pending secret nor anything that opens on another enrolment."""
import pyotp

from tests.helpers import PASSWORD, staff


async def _invite(client, admin, username: str) -> str:
    org = await (await client.post("/api/v1/admin/organisations", headers=admin.headers, json={
        "name": f"{username} 招标代理有限公司", "kind": "agency"})).json()
    resp = await client.post("/api/v1/admin/enrolments", headers=admin.headers, json={
        "username": username, "display_name": "王芳", "roles": ["supervisor"], "organisation_id": org["public_id"]})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["token"]


async def _offer(client, token: str) -> str:
    resp = await client.post("/api/v1/enrolment/totp", json={"token": token})
    assert resp.status == 200, await resp.text()
    return pyotp.parse_uri((await resp.json())["totp_provisioning_uri"]).secret


async def test_the_pending_totp_secret_is_sealed_and_completes_the_enrolment(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin")
    first, second = await _invite(client, admin, "li.na"), await _invite(client, admin, "zhao.lei")
    secret, other_secret = await _offer(client, first), await _offer(client, second)
    rows = await raw_conn.fetch("SELECT public_id, pending_totp_secret FROM enrolment_token ORDER BY id")
    stored = {r["public_id"]: r["pending_totp_secret"] for r in rows}
    assert all(value.startswith("v1:") for value in stored.values())
    assert secret not in str(stored) and other_secret not in str(stored)
    ids = list(stored)
    # a sealed secret copied onto another enrolment does not open there: that enrolment must scan again
    await raw_conn.execute("UPDATE enrolment_token SET pending_totp_secret = $1 WHERE public_id = $2",
                           stored[ids[0]], ids[1])
    resp = await client.post("/api/v1/enrolment/complete", json={
        "token": second, "password": PASSWORD, "totp": pyotp.TOTP(secret).now()})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "totp_not_started"
    assert await raw_conn.fetchval("SELECT is_active FROM app_user WHERE username = 'zhao.lei'") is False
    # the owner of the first link completes with a code of the secret they scanned
    resp = await client.post("/api/v1/enrolment/complete", json={
        "token": first, "password": PASSWORD, "totp": pyotp.TOTP(secret).now()})
    assert resp.status == 200, await resp.text()
    assert await raw_conn.fetchval("SELECT pending_totp_secret FROM enrolment_token WHERE public_id = $1",
                                   ids[0]) is None
    sealed = await raw_conn.fetchval("SELECT totp_secret FROM app_user WHERE username = 'li.na'")
    assert sealed.startswith("v1:") and secret not in sealed
