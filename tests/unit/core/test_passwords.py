"""Password hashing: Argon2id at argon2-cffi's default cost unless BIDROOM_PASSWORD_HASH=test lowers it for a test
run; a hash made at either cost verifies under the other (each hash carries its parameters); anything else in the
variable stops the process at import rather than hashing at an unknown cost."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import asyncio, sys
from core import passwords
stored = sys.argv[1] if len(sys.argv) > 1 else None
async def main():
    made = await passwords.hash_password("correct-horse-7battery")
    print(passwords.PROFILE, made.split("$")[3])
    if stored:
        print(await passwords.verify_password(stored, "correct-horse-7battery"),
              await passwords.verify_password(stored, "wrong-horse-7battery"))
asyncio.run(main())
"""


def probe(profile: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BIDROOM_PASSWORD_HASH"}
    if profile is not None:
        env["BIDROOM_PASSWORD_HASH"] = profile
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_standard_cost_is_the_librarys_default_and_the_test_cost_its_minimum():
    standard = probe(None)
    assert standard.returncode == 0, standard.stderr
    assert standard.stdout.split() == ["standard", "m=65536,t=3,p=4"]
    test = probe("test")
    assert test.stdout.split() == ["test", "m=1024,t=1,p=1"]


def test_a_hash_of_either_cost_verifies_under_the_other():
    from argon2 import PasswordHasher
    standard_hash = PasswordHasher().hash("correct-horse-7battery")
    out = probe("test", standard_hash)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == "True False"
    test_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("correct-horse-7battery")
    assert probe(None, test_hash).stdout.splitlines()[1] == "True False"


def test_an_unknown_cost_stops_the_process_at_import():
    out = probe("cheap")
    assert out.returncode != 0
    assert "BIDROOM_PASSWORD_HASH is 'cheap'; use one of standard, test" in out.stderr
