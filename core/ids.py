"""Public pseudonymous ids such as U-7Q4M2K: no names, no sequence numbers leaked."""
from __future__ import annotations

import secrets

# Crockford-style alphabet without I, L, O, U so ids read unambiguously aloud and on paper.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def public_id(prefix: str, length: int = 6) -> str:
    return prefix + "-" + "".join(secrets.choice(ALPHABET) for _ in range(length))
