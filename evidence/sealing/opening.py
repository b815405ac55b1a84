"""Opening a sealed bid with the tender identity rebuilt from the key holders' shares."""
from __future__ import annotations

import os

import pyrage

from core.errors import Unprocessable
from evidence.sealing.shares import parse_identity


def open_sealed(sealed: bytes | str | os.PathLike, identity: str) -> bytes:
    """Decrypt a whole sealed bid (bytes, or a path to them) in memory; Unprocessable(undecryptable) on failure."""
    ident = parse_identity(identity)
    if not isinstance(sealed, (bytes, bytearray)):
        with open(sealed, "rb") as fh:
            sealed = fh.read()
    try:
        return pyrage.decrypt(bytes(sealed), [ident])
    except (pyrage.DecryptError, OSError, ValueError) as err:
        # The opening counts such a bid as withdrawn or revoked; the reason is kept for the opening record.
        raise Unprocessable("this sealed bid cannot be decrypted with the tender key", code="undecryptable",
                            details={"reason": str(err)[:200]}) from err
