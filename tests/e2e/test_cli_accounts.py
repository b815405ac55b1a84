"""The operator's CLI against an external database: `bidroom db upgrade` and `bidroom users create`."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pyotp

from tests.helpers import PASSWORD, auth, login

BIN = Path(sys.executable).with_name("bidroom")


def bidroom(*args: str, db_url: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BIDROOM_DATABASE_URL": db_url, "BIDROOM_DATA_DIR": str(data_dir), "COLUMNS": "400"}
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

    tokens = await login(client, "ops-admin", PASSWORD, pyotp.TOTP(secret).now())
    me = await (await client.get("/api/v1/me", headers=auth(tokens))).json()
    assert (me["username"], me["roles"], me["display_name"]) == ("ops-admin", ["admin"], "运维 管理员")
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action LIKE 'user.%'") >= 1

    again = bidroom("users", "create", "--username", "ops-admin", "--role", "admin", "--password", PASSWORD,
                    db_url=db_url, data_dir=tmp_path / "var")
    assert again.returncode == 2 and "username" in again.stdout
    assert await raw_conn.fetchval("SELECT count(*) FROM app_user WHERE username = 'ops-admin'") == 1
