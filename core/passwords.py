"""Argon2id password hashing, run in a worker thread so the event loop never blocks on it.

The cost is argon2-cffi's defaults (RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes), about 0.17 s
of a core per hash or check. `BIDROOM_PASSWORD_HASH=test`, read when this module is imported, lowers it to
Argon2id's minimum for test runs, which sign in thousands of accounts; the app then warns at start-up and
`/healthz` says so. A stored hash carries its own parameters, so either kind verifies under either setting."""
from __future__ import annotations

import asyncio
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PROFILE_ENV = "BIDROOM_PASSWORD_HASH"
_PROFILES = {"standard": {}, "test": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}}
PROFILE = os.environ.get(PROFILE_ENV, "standard")
if PROFILE not in _PROFILES:
    raise RuntimeError(f"{PROFILE_ENV} is {PROFILE!r}; use one of {', '.join(sorted(_PROFILES))}")

_hasher = PasswordHasher(**_PROFILES[PROFILE])
# a real hash to verify against when the account does not exist, so timing does not reveal usernames
_DUMMY = _hasher.hash("not-a-password-0")


def weakened() -> bool:
    """True when passwords are hashed at the test cost (BIDROOM_PASSWORD_HASH=test)."""
    return PROFILE != "standard"


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)
