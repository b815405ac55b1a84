"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and the hashing helpers built on it.

What is hashed or signed (ledger entries, draw inputs, checkpoints, receipts, key shares) goes through `cj`, so
every byte is fixed by the RFC and anyone can recompute a hash with any RFC 8785 implementation:

- object members sorted by their names as UTF-16 code units (§3.2.3), which differs from Python's code-point
  order only when a name holds a character beyond U+FFFF;
- strings as ECMAScript's JSON.stringify writes them (§3.2.2.2): UTF-8, only `"`, `\\` and the control
  characters escaped, the usual short escapes and `\\u00xx` with lower-case hex for the rest;
- no whitespace.

Numbers are the one restriction. RFC 8785 writes every number as the IEEE 754 double that ECMAScript would
print. The platform keeps money and scores exact, so what it hashes holds integers only, and only those an
IEEE double represents exactly (|n| <= 2**53 - 1, I-JSON): a larger integer would be hashed here as written
but read back rounded by every other implementation. Non-integer numbers (float, Decimal) are written as strings
by the caller. Anything else (floats, larger integers, non-string names, lone surrogates, other types) is
refused with `NotCanonical`.
"""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from core.errors import Unprocessable

MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonical(Unprocessable, TypeError):
    """A value that canonical JSON cannot carry exactly: 422 not_canonical_json (also a TypeError)."""

    code = "not_canonical_json"


def _refuse(obj: Any) -> NotCanonical:
    if isinstance(obj, float):
        return NotCanonical("floats are not allowed in canonical JSON; use strings or integers")
    if isinstance(obj, Decimal):
        return NotCanonical("decimals are not allowed in canonical JSON; write them as strings")
    if isinstance(obj, int):
        return NotCanonical(f"integers beyond ±(2**53 - 1) are not allowed in canonical JSON; write {obj} "
                            f"as a string", details={"limit": MAX_SAFE_INTEGER})
    return NotCanonical(f"{type(obj).__name__} values are not allowed in canonical JSON")


def _check(obj: Any) -> bool:
    """Refuse what canonical JSON cannot carry; True when some member name needs UTF-16 ordering."""
    # iterative, exact types first: candidate lists of thousands of objects pass through here on every draw
    astral = False
    pending = [obj]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            raise _refuse(item)
        if isinstance(item, dict):
            for key in item:
                if type(key) is not str and not isinstance(key, str):
                    raise NotCanonical("canonical JSON object keys must be strings")
                if not astral and not key.isascii() and max(key) > "\uffff":
                    astral = True
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif isinstance(item, str):
            continue
        elif isinstance(item, int) and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            continue  # an int subclass such as IntEnum: written as its number
        else:
            raise _refuse(item)
    return astral


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be")  # big-endian bytes compare as the UTF-16 code units do


def _utf16_ordered(obj: Any) -> Any:
    """A copy whose objects are already in RFC 8785 member order, for dumping without sort_keys."""
    if isinstance(obj, dict):
        return {key: _utf16_ordered(obj[key]) for key in sorted(obj, key=_utf16_key)}
    if isinstance(obj, (list, tuple)):
        return [_utf16_ordered(x) for x in obj]
    return obj


def cj(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of `obj`; NotCanonical for what the scheme cannot carry exactly."""
    astral = _check(obj)
    try:
        if astral:
            obj = _utf16_ordered(obj)
        text = json.dumps(obj, sort_keys=not astral, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise NotCanonical("canonical JSON strings must be valid Unicode; a lone surrogate is not") from err


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
