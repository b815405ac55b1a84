"""`bidroom serve` as a real process on the embedded database: a bidder registers, signs in and sees itself."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.helpers import PASSWORD, social_credit_code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_healthy(base: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"server exited early with {proc.returncode}"
            try:
                async with http.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError("server did not become healthy in time")


async def test_serve_on_embedded_database_registers_logs_in_and_shuts_down_cleanly(tmp_path):
    port = free_port()
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
    env.update(BIDROOM_DATA_DIR=str(data_dir), BIDROOM_LOG_FORMAT="text")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, proc)
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/api/v1/auth/register", json={
                    "username": "e2e-bidder", "password": PASSWORD, "display_name": "珠海市海岸科技股份有限公司",
                    "role": "bidder", "organisation": {"name": "珠海市海岸科技股份有限公司",
                                                       "social_credit_code": social_credit_code()}}) as resp:
                assert resp.status == 201, await resp.text()
            async with http.post(base + "/api/v1/auth/login",
                                 json={"username": "e2e-bidder", "password": PASSWORD}) as resp:
                assert resp.status == 200
                tokens = await resp.json()
            async with http.get(base + "/api/v1/me",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"}) as resp:
                me = await resp.json()
            assert me["username"] == "e2e-bidder"
            assert me["organisation"]["name"] == "珠海市海岸科技股份有限公司"
            async with http.get(base + "/readyz") as resp:
                assert (await resp.json())["status"] == "ready"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    assert code == 0, (tmp_path / "server.log").read_text()[-3000:]
    # the embedded server was stopped with the app: nothing is left holding the data directory
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    # keys were generated on first start, owner-only
    for key in (data_dir / "keys").iterdir():
        assert key.stat().st_mode & 0o077 == 0, key
