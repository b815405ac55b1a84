"""TOTP secrets at rest and one-time-code matching.

A TOTP secret is the second factor of every admin, agent and supervisor: whoever reads it from a database dump
can make codes. Secrets are therefore stored sealed with AES-GCM under a key derived (HKDF-SHA256) from the
platform master secret, the same 0600 file outside the database that protects the PKI keys and the opening
shares (`<keys dir>/master.secret`). The sealed form is `v1:` + base64url(nonce ‖ ciphertext ‖ tag), and the
owner's public id is the associated data, so a sealed secret copied onto another account does not open.

Secrets written before sealing existed are plaintext base32. They are sealed lazily: the first successful sign-in
with such a secret rewrites it sealed (identity_service.authenticate), so no migration needs the master secret.

A code is matched to its time step (RFC 6238, 30 s steps, one step of clock drift either way) so that the
caller can record the step and refuse a second use of the same code.
"""
from __future__ import annotations

import base64
import hmac
import os
from pathlib import Path

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.settings import ensure_secret_file

SEALED_PREFIX = "v1:"
_INFO = b"bidroom totp secret at rest v1"
DRIFT_STEPS = 1


class TotpSecretUnreadable(Exception):
    """A sealed secret that does not open with this installation's master secret."""


class TotpVault:
    """Seals and opens TOTP secrets under the master secret."""

    def __init__(self, master_secret: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(master_secret)
        self._aead = AESGCM(key)

    @classmethod
    def for_keys_dir(cls, keys_dir: Path) -> "TotpVault":
        return cls(ensure_secret_file(Path(keys_dir) / "master.secret"))

    def seal(self, secret: str, *, owner: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), owner.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, *, owner: str) -> str:
        """The secret of a stored value: sealed values are opened, legacy plaintext is returned as it is."""
        if not is_sealed(stored):
            return stored
        raw = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], owner.encode()).decode()
        except InvalidTag as err:
            raise TotpSecretUnreadable("a TOTP secret does not open with this installation's master secret") from err


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)


def matching_step(secret: str, code: str, now_s: float) -> int | None:
    """The time step whose code equals `code` (the current one or one either side), or None."""
    totp = pyotp.TOTP(secret)
    current = int(now_s // totp.interval)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
