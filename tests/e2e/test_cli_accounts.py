"""The operator's CLI against an external database: `bidroom db upgrade`, `bidroom users create` and the
enrolment links of `bidroom users invite` / `invite-expert`."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyotp
from urllib.parse import parse_qs, urlsplit

from expert_pool.demo import id_card
from tests.helpers import PASSWORD, auth, login, staff

BIN = Path(sys.executable).with_name("bidroom")
# the checked-out code, which the installed `bidroom` script would otherwise resolve elsewhere
SOURCE = str(Path(__file__).resolve().parents[2])


def bidroom(*args: str, db_url: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BIDROOM_DATABASE_URL": db_url, "BIDROOM_DATA_DIR": str(data_dir), "COLUMNS": "400",
           "PYTHONPATH": os.pathsep.join(filter(None, (SOURCE, os.environ.get("PYTHONPATH"))))}
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)


async def test_an_operator_upgrades_the_schema_and_creates_an_admin_who_signs_in_with_totp(db_url, tmp_path,
                                                                                           client, raw_conn):
    upgraded = bidroom("db", "upgrade", db_url=db_url, data_dir=tmp_path / "var")
    assert upgraded.returncode == 0, upgraded.stderr
    created = bidroom("users", "create", "--username", "ops-admin", "--display-name", "运维 管理员", "--role", "admin",
                      "--password", PASSWORD, db_url=db_url, data_dir=tmp_path / "var")
    assert created.returncode == 0, created.stdout + created.stderr
    uri = re.search(r"otpauth://\S+", created.stdout).group(0)
    secret = pyotp.parse_uri(uri).secret

    stored = await raw_conn.fetchval("SELECT totp_secret FROM app_user WHERE username = 'ops-admin'")
    assert stored.startswith("v1:") and secret not in stored  # sealed under the master secret at once
    tokens = await login(client, "ops-admin", PASSWORD, pyotp.TOTP(secret).now())
    me = await (await client.get("/api/v1/me", headers=auth(tokens))).json()
    assert (me["username"], me["roles"], me["display_name"]) == ("ops-admin", ["admin"], "运维 管理员")
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action LIKE 'user.%'") >= 1

    again = bidroom("users", "create", "--username", "ops-admin", "--role", "admin", "--password", PASSWORD,
                    db_url=db_url, data_dir=tmp_path / "var")
    assert again.returncode == 2 and "username" in again.stdout
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user WHERE username = 'ops-admin'") == 1


def link_token(stdout: str) -> str:
    url = re.search(r"https?://\S+/api/v1/enrolment\?token=\S+", stdout).group(0)
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_an_operator_invites_staff_and_an_expert_who_set_up_their_own_sign_in(db_url, tmp_path, client,
                                                                                     sessions, raw_conn):
    invited = bidroom("users", "invite", "--username", "ops-agent", "--display-name", "招标代理 王芳", "--role", "agent",
                      db_url=db_url, data_dir=tmp_path / "var")
    assert invited.returncode == 0, invited.stdout + invited.stderr
    assert "otpauth" not in invited.stdout  # the operator never sees the second factor
    token = link_token(invited.stdout)

    info = await (await client.get("/api/v1/enrolment", params={"token": token})).json()
    assert (info["username"], info["roles"], info["needs_totp"]) == ("ops-agent", ["agent"], True)
    uri = (await (await client.post("/api/v1/enrolment/totp", json={"token": token})).json())["totp_provisioning_uri"]
    totp = pyotp.TOTP(pyotp.parse_uri(uri).secret)
    resp = await client.post("/api/v1/enrolment/complete", json={"token": token, "password": PASSWORD,
                                                                 "totp": totp.now()})
    assert resp.status == 200, await resp.text()
    tokens = await login(client, "ops-agent", PASSWORD, totp.at(time.time() + totp.interval))  # enrolment's is spent
    me = await (await client.get("/api/v1/me", headers=auth(tokens))).json()
    assert (me["display_name"], me["roles"]) == ("招标代理 王芳", ["agent"])

    admin = await staff(sessions, client, "admin")
    resp = await client.post("/api/v1/experts", headers=admin.headers, json={
        "name": "周建国", "id_card_no": id_card(777, "440100"), "phone": "13800007777", "province_code": "440000",
        "city_code": "440100", "category": "technical", "specialties": ["A0101"]})
    expert_id = (await resp.json())["expert_id"]
    invited = bidroom("users", "invite-expert", "--expert", expert_id, db_url=db_url, data_dir=tmp_path / "var")
    assert invited.returncode == 0, invited.stdout + invited.stderr
    resp = await client.post("/api/v1/enrolment/complete", json={
        "token": link_token(invited.stdout), "username": "zhou.jianguo", "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    mine = await (await client.get("/api/v1/me/expert", headers=auth(await login(client, "zhou.jianguo")))).json()
    assert mine["expert_id"] == expert_id

    again = bidroom("users", "invite-expert", "--expert", expert_id, db_url=db_url, data_dir=tmp_path / "var")
    assert again.returncode == 2 and "expert_already_linked" in again.stdout
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'enrolment.complete'") == 2


async def test_demo_seed_refuses_a_database_the_demo_did_not_create_unless_forced(db_url, tmp_path, client,
                                                                                 raw_conn):
    from tests.helpers import register_bidder
    await register_bidder(client, "real-bidder")
    users = await raw_conn.fetchval("SELECT count(*) FROM app_user")
    entries = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    refused = bidroom("demo", "seed", "--tenders", "0", "--experts", "0", db_url=db_url, data_dir=tmp_path / "var")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "demo_refused" in refused.stdout and "--force" in refused.stdout
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user") == users
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == entries

    forced = bidroom("demo", "seed", "--tenders", "0", "--experts", "0", "--force", db_url=db_url,
                     data_dir=tmp_path / "var")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user WHERE username = 'agent'") == 1
    assert await raw_conn.fetchval("SELECT count(*) FROM demo_marker") == 1
