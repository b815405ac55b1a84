"""Canonical JSON (RFC 8785 for objects without floats) and the hashing helpers built on it."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def _refuse_float(obj: Any) -> Any:
    if isinstance(obj, float):
        raise TypeError("floats are not allowed in canonical JSON; use strings or integers")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _check(obj: Any) -> None:
    # iterative, exact types first: candidate lists of thousands of objects pass through here on every draw
    pending = [obj]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if isinstance(item, float):
            raise TypeError("floats are not allowed in canonical JSON; use strings or integers")
        if isinstance(item, dict):
            if not all(type(k) is str or isinstance(k, str) for k in item):
                raise TypeError("canonical JSON object keys must be strings")
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)


def cj(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes: sorted keys, no whitespace, UTF-8, non-ASCII unescaped."""
    _check(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_refuse_float).encode("utf-8")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
