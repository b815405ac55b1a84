"""A tender's age identity and its k-of-n Shamir shares (pyshamir).

A share is a small JSON envelope naming the threshold and the tender's recipient beside the pyshamir part, so
that shares from different splits or tenders are told apart before anything is combined. The envelopes leave
this module unencrypted: trading.keyholding encrypts each one to its holder's personal age key at once.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Sequence

import pyrage
import pyshamir

from core.canonical import cj
from core.errors import Unprocessable

log = logging.getLogger(__name__)

SHARE_FORMAT = "bidroom-share/1"
# Key holders protect their personal keys with passphrases of at least this length (trading.keyholding).
MIN_PASSPHRASE_LENGTH = 8


def new_tender_identity() -> tuple[str, str]:
    """A fresh age X25519 identity for one tender: ("AGE-SECRET-KEY-1…", "age1…")."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def parse_identity(identity: str) -> pyrage.x25519.Identity:
    """An age X25519 identity, or 422 invalid_identity."""
    try:
        return pyrage.x25519.Identity.from_str(identity)
    except (pyrage.IdentityError, TypeError, ValueError) as err:
        raise Unprocessable("not an age X25519 identity", code="invalid_identity") from err


def parse_recipient(recipient: str) -> pyrage.x25519.Recipient:
    """An age X25519 recipient, or 422 invalid_recipient."""
    try:
        return pyrage.x25519.Recipient.from_str(recipient)
    except (pyrage.RecipientError, TypeError, ValueError) as err:
        raise Unprocessable("not an age X25519 recipient", code="invalid_recipient",
                            details={"recipient": str(recipient)[:80]}) from err


@dataclass(frozen=True)
class ShareInfo:
    """What a share envelope says about its split (the share bytes stay inside)."""

    k: int
    n: int
    recipient: str


def _check_threshold(k: int, n: int) -> None:
    if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, int) or not isinstance(n, int) \
            or not 2 <= k <= n <= 255:
        # k = 1 would let any one holder open every bid early, which is what the split exists to prevent.
        raise Unprocessable("the threshold must satisfy 2 <= k <= n <= 255", code="invalid_threshold",
                            details={"k": k, "n": n})


def split_identity_plain(identity: str, k: int, n: int) -> list[bytes]:
    """Split `identity` k-of-n into share envelopes; the caller encrypts each to its holder at once."""
    recipient = str(parse_identity(identity).to_public())
    _check_threshold(k, n)
    parts = pyshamir.split(identity.encode("ascii"), n, k)
    log.info("split a tender identity %d-of-%d for %s", k, n, recipient)
    return [cj({"format": SHARE_FORMAT, "k": k, "n": n, "recipient": recipient,
                "share": base64.b64encode(bytes(part)).decode("ascii")}) for part in parts]


def _read_envelope(share: bytes) -> tuple[ShareInfo, bytes]:
    try:
        data = json.loads(share)
        if data["format"] != SHARE_FORMAT:
            raise ValueError(f"unknown share format {data['format']!r}")
        info = ShareInfo(k=int(data["k"]), n=int(data["n"]), recipient=str(data["recipient"]))
        part = base64.b64decode(data["share"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise Unprocessable("this is not a key share", code="malformed_share") from err
    if len(part) < 2:
        raise Unprocessable("this key share is empty", code="malformed_share")
    return info, part


def combine_shares(shares: Sequence[bytes], recipient: str | None = None) -> str:
    """Rebuild the tender identity from k or more share envelopes, checked against its published recipient."""
    if not shares:
        raise Unprocessable("no key shares given", code="insufficient_shares", details={"given": 0})
    read = [_read_envelope(s) for s in shares]
    info = read[0][0]
    if any(other != info for other, _ in read):
        raise Unprocessable("these key shares belong to different splits", code="mismatched_shares")
    if recipient is not None and recipient != info.recipient:
        raise Unprocessable("these key shares are for another tender", code="identity_mismatch",
                            details={"expected": recipient, "shares_for": info.recipient})
    # The last byte of a pyshamir part is its x coordinate: the same share given twice counts once.
    by_x: dict[int, bytes] = {}
    for _, part in read:
        if by_x.setdefault(part[-1], part) != part:
            raise Unprocessable("two different key shares claim the same position", code="mismatched_shares")
    if len(by_x) < info.k:
        raise Unprocessable(f"{info.k} key holders must unlock their shares, {len(by_x)} did",
                            code="insufficient_shares", details={"required": info.k, "given": len(by_x)})
    try:
        secret = bytes(pyshamir.combine([bytearray(p) for p in by_x.values()])).decode("ascii")
        rebuilt = pyrage.x25519.Identity.from_str(secret)
    except (ValueError, UnicodeDecodeError, pyrage.IdentityError) as err:
        raise Unprocessable("the key shares do not rebuild the tender key", code="identity_mismatch") from err
    if str(rebuilt.to_public()) != info.recipient:
        raise Unprocessable("the key shares do not rebuild the tender key", code="identity_mismatch",
                            details={"expected": info.recipient})
    return secret
