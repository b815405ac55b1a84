"""Argon2id password hashing, run in a worker thread so the event loop never blocks on it."""
from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # library defaults: Argon2id
# a real hash to verify against when the account does not exist, so timing does not reveal usernames
_DUMMY = _hasher.hash("not-a-password-0")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)
