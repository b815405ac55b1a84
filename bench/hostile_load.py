"""Hostile load (issue 9): an honest client lists tenders while signed-in key holders flood the holder-key
enrolment (scrypt, ~1.6 s and 512 MiB a job) and anonymous callers post 32 MiB bodies to the record verifier.

One real `bidroom serve` process on the embedded database of a scratch data directory, with its default
settings (or those given with `--server-env`). The honest client sends GET /api/v1/tenders?limit=20 back to
back (one connection) and its latency is measured in alternating phases of the same run: without the attack,
then during it, `--rounds` times. During an attack phase:
- `--enrolers` (50) signed-in agents each send POST /api/v1/me/holder-key again as soon as the last one is
  answered, ignoring Retry-After (closed loop, 50 always in flight);
- `--uploaders` (20) anonymous clients each post a `--upload-mib` (32) MiB body to POST /api/v1/records/verify
  again as soon as the last one is answered or cut off, on raw connections written in flow-controlled chunks
  of one shared buffer: the attack process spends CPU only on the bytes the server takes, as an attacker on
  another machine would cost this one nothing for the rest.
Target: the honest client's p99 during the attack at most 2x its p99 without it. Prints both, with p50, and
the attackers' status code counts (201 enrolled; 429 busy or rate limited; 413 too large; 503 busy).

    .venv/bin/python bench/hostile_load.py [--rounds 2] [--seconds 15] [--tenders 2000] [--enrolers 50]
                                           [--uploaders 20] [--upload-mib 32] [--server-env BIDROOM_X=V ...]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_baseline import free_port  # noqa: E402
from bench.listing import seed  # noqa: E402
from core.db import EmbeddedPostgres, create_engine, session_factory  # noqa: E402
from web.runtime import EMBEDDED_DATABASE  # noqa: E402

PASSWORD = "correct-horse-7battery"
LISTING = "/api/v1/tenders?limit=20"


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[int, tuple[int, str, float, int]]:
    """Every live process: pid -> (parent pid, name, CPU seconds used so far (user + system), start time)."""
    stats: dict[int, tuple[int, str, float, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        stats[int(entry)] = (int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / TICK, int(fields[19]))
    return stats


def cpu_share(before: dict, after: dict, groups: dict[str, int], seconds: float) -> str:
    """The cores each group used over a phase: a process belongs to the first group whose pid is itself or an
    ancestor (its descendants are "<group> workers"); PostgreSQL's processes form "postgres", the rest "other".
    A process that ended during the phase is not counted; one that started during it counts whole."""
    owner = {pid: name for name, pid in groups.items()}
    used: dict[str, float] = {name: 0.0 for name in [*groups, "postgres", "other"]}
    for pid, (_ppid, comm, total, started) in after.items():
        group, p = None, pid
        while p in after and group is None:
            group = owner.get(p)
            p = after[p][0] if p != after[p][0] else 0
        if group is not None and pid != groups[group]:
            group += " workers"  # the server's scrypt and validation pools, say
        # the same process, not a reused pid (a kernel worker renames itself with each work queue it serves)
        start = before[pid][2] if pid in before and before[pid][3] == started else 0.0
        group = group or ("postgres" if comm.startswith("postgres") else "other")
        used[group] = used.get(group, 0.0) + total - start
    return "   ".join(f"{k} {v / seconds:.2f}" for k, v in used.items())


def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] if data else float("nan")


async def wait_healthy(base: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}")
            try:
                async with http.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise SystemExit("the server did not become healthy")


async def make_agents(db_url: str, n: int) -> list[tuple[str, str]]:
    """`n` agent accounts of one agency (key-holding role), made as `bidroom users create` would; returns
    (username, TOTP secret) pairs."""
    from core import identity_service
    from tests.helpers import social_credit_code
    engine = create_engine(db_url, pool_size=2)
    sessions = session_factory(engine)
    out = []
    try:
        async with sessions() as session, session.begin():
            agency = await identity_service.create_organisation(
                session, actor="system", name="深圳市基准压力测试招标代理有限公司",
                social_credit_code=social_credit_code(909090))
            agency_id = agency.public_id
        for i in range(n):
            async with sessions() as session, session.begin():
                user, _ = await identity_service.create_user(
                    session, actor="system", username=f"hostile-agent-{i}", password=PASSWORD,
                    display_name=f"压力测试代理 {i}", roles=["agent"], organisation_public_id=agency_id)
                out.append((user.username, user.totp_secret))
    finally:
        await engine.dispose()
    return out


async def sign_in(http: aiohttp.ClientSession, base: str, username: str, secret: str) -> dict:
    import pyotp
    async with http.post(base + "/api/v1/auth/login", json={"username": username, "password": PASSWORD,
                                                            "totp": pyotp.TOTP(secret).now()}) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise SystemExit(f"sign-in of {username} failed: {resp.status} {body}")
        return {"Authorization": f"Bearer {body['access_token']}"}


async def honest(base: str, seconds: float) -> list[float]:
    """One honest client listing tenders back to back for `seconds`; latencies in ms (non-200 is fatal)."""
    latencies = []
    async with aiohttp.ClientSession() as http:
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            async with http.get(base + LISTING) as resp:
                await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"the honest client got {resp.status}")
            latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


async def enroler(base: str, headers: dict, stop: asyncio.Event, counts: Counter) -> None:
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=120)) as http:
        while not stop.is_set():
            try:
                async with http.post(base + "/api/v1/me/holder-key",
                                     json={"passphrase": "an attacker's long enough passphrase"}) as resp:
                    await resp.read()
                    counts[f"enrol {resp.status}"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                counts[f"enrol {type(err).__name__}"] += 1


UPLOAD_CHUNK = memoryview(bytes(256 * 1024))


async def upload_once(host: str, port: int, size: int) -> str:
    """One POST of a `size`-byte PDF body to the verifier on a raw connection, written in flow-controlled
    chunks of one shared buffer, with the answer read meanwhile: the attacker spends its CPU only on bytes the
    server accepts, as one on another machine would. Returns "verify <status>" or the error's name."""
    reader, writer = await asyncio.open_connection(host, port)

    async def send() -> None:
        writer.write(f"POST /api/v1/records/verify HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Content-Type: application/pdf\r\nContent-Length: {size}\r\n\r\n%PDF-1.7\n".encode())
        left = size - 9
        while left > 0:
            writer.write(UPLOAD_CHUNK[:min(left, len(UPLOAD_CHUNK))])
            left -= len(UPLOAD_CHUNK)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        status = (await reader.readline()).split()
        if len(status) < 2:
            return "verify ConnectionClosed"
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return f"verify {status[1].decode()}"
    except (OSError, asyncio.IncompleteReadError) as err:
        return f"verify {type(err).__name__}"
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()


async def uploader(base: str, size: int, stop: asyncio.Event, counts: Counter) -> None:
    host, port = base.removeprefix("http://").split(":")
    while not stop.is_set():
        # a fresh connection each time: a server that refuses a body early closes the connection it came on
        try:
            counts[await asyncio.wait_for(upload_once(host, int(port), size), 120)] += 1
        except (OSError, asyncio.TimeoutError) as err:
            counts[f"verify {type(err).__name__}"] += 1


def attackers(base: str, agents: list[dict], upload_mib: int, uploaders: int, ready, stop, results) -> None:
    """The attack, in its own process (so that writing 32 MiB bodies never delays the honest client's loop):
    runs until `stop` is set, then puts its status counts on `results`."""
    async def run() -> Counter:
        counts: Counter = Counter()
        done = asyncio.Event()
        tasks = [asyncio.ensure_future(enroler(base, h, done, counts)) for h in agents]
        size = upload_mib * 1024 * 1024
        tasks += [asyncio.ensure_future(uploader(base, size, done, counts)) for _ in range(uploaders)]
        await asyncio.sleep(1.0)  # every attacker has a request in flight
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        done.set()
        await asyncio.gather(*tasks)
        return counts
    results.put(dict(asyncio.run(run())))


async def measured(seconds: float, groups: dict[str, int], base: str) -> list[float]:
    """The honest client for `seconds`, printing the cores each process group used meanwhile."""
    before, t0 = cpu_seconds(), time.monotonic()
    latencies = await honest(base, seconds)
    print(f"  cores used: {cpu_share(before, cpu_seconds(), groups, time.monotonic() - t0)}")
    return latencies


def burn(stop) -> None:
    """The control load: one process keeping one core busy, touching nothing of the server's."""
    while not stop.is_set():
        sum(range(10_000))


async def control_phase(base: str, seconds: float, server_pid: int) -> list[float]:
    """The honest client while a process that is not an attacker keeps one core busy: what a load generator
    sharing the machine costs the honest client by itself."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=burn, args=(stop,))
    proc.start()
    try:
        return await measured(seconds, {"server": server_pid, "burner": proc.pid, "honest": os.getpid()}, base)
    finally:
        stop.set()
        proc.join()


async def attack_phase(base: str, seconds: float, agents: list[dict], upload_mib: int, uploaders: int,
                       counts: Counter, server_pid: int) -> list[float]:
    ctx = mp.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=attackers, args=(base, agents, upload_mib, uploaders, ready, stop, results))
    proc.start()
    while not ready.is_set():
        await asyncio.sleep(0.05)
    try:
        return await measured(seconds, {"server": server_pid, "attackers": proc.pid, "honest": os.getpid()}, base)
    finally:
        stop.set()
        counts.update(await asyncio.to_thread(results.get))
        proc.join()


def describe(name: str, values: list[float]) -> str:
    return (f"{name:<26} {len(values):6d} requests   p50 {pct(values, 50):7.2f} ms   p99 {pct(values, 99):8.2f} ms"
            f"   max {max(values):8.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--tenders", type=int, default=2000)
    parser.add_argument("--enrolers", type=int, default=50)
    parser.add_argument("--uploaders", type=int, default=20)
    parser.add_argument("--upload-mib", type=int, default=32)
    parser.add_argument("--server-env", action="append", default=[], metavar="BIDROOM_NAME=VALUE",
                        help="a setting for the server (repeatable), e.g. BIDROOM_RATE_LIMITED_REPEAT_HOLD_S=1")
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    root = Path(tempfile.mkdtemp(prefix="bidroom-hostile-"))
    root.chmod(0o755)  # the embedded PostgreSQL runs as its own user when started by root
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
    env.update(BIDROOM_DATA_DIR=str(root / "var"), BIDROOM_LOG_FORMAT="json")
    for setting in args.server_env:
        name, _, value = setting.partition("=")
        if not name.startswith("BIDROOM_") or not value:
            parser.error(f"--server-env takes BIDROOM_NAME=VALUE, got {setting!r}")
        env[name] = value
    log = open(root / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    pg = None
    try:
        await wait_healthy(base, server)
        pg = EmbeddedPostgres(root / "var" / "pg").start()
        owner_url = pg.libpq_uri(EMBEDDED_DATABASE)
        seeded = await seed(owner_url, args.tenders)
        print(f"seeded {args.tenders} tenders in {seeded:.1f} s")
        accounts = await make_agents(pg.async_url(EMBEDDED_DATABASE), args.enrolers)
        async with aiohttp.ClientSession() as http:
            agents = [await sign_in(http, base, username, secret) for username, secret in accounts]
        await honest(base, 2.0)  # warm-up
        quiet: list[float] = []
        attacked: list[float] = []
        control: list[float] = []
        counts: Counter = Counter()
        for r in range(args.rounds):
            print(f"round {r + 1} without attack")
            q = await measured(args.seconds, {"server": server.pid, "honest": os.getpid()}, base)
            print(f"round {r + 1} with one core busy elsewhere (control)")
            c = await control_phase(base, args.seconds, server.pid)
            print(f"round {r + 1} under attack")
            a = await attack_phase(base, args.seconds, agents, args.upload_mib, args.uploaders, counts, server.pid)
            print(describe(f"round {r + 1} without attack", q))
            print(describe(f"round {r + 1} one core busy", c))
            print(describe(f"round {r + 1} under attack", a))
            quiet += q
            control += c
            attacked += a
            await asyncio.sleep(2.0)  # let the last enrolments drain before the next quiet phase
        print()
        print(describe("honest, without attack", quiet))
        print(describe("honest, one core busy", control))
        print(describe("honest, under attack", attacked))
        print(f"p50 ratio {pct(attacked, 50) / pct(quiet, 50):.2f}x   "
              f"p99 ratio {pct(attacked, 99) / pct(quiet, 99):.2f}x   (target p99 <= 2x)")
        print(f"control (one core busy, no attack): p50 ratio {pct(control, 50) / pct(quiet, 50):.2f}x   "
              f"p99 ratio {pct(control, 99) / pct(quiet, 99):.2f}x")
        print("attackers' answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        if server.poll() is not None:
            raise SystemExit(f"the server died during the run ({server.returncode})")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
