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
    if isinstance(obj, float):
        raise TypeError("floats are not allowed in canonical JSON; use strings or integers")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError("canonical JSON object keys must be strings")
            _check(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check(v)


def cj(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes: sorted keys, no whitespace, UTF-8, non-ASCII unescaped."""
    _check(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_refuse_float).encode("utf-8")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
