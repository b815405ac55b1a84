"""What an upload is, from its first bytes, and the grammar of a binary age v1 header.

A client-sealed bid is stored as is, so its header is checked before anything is kept: it must be well formed
and name an X25519 recipient, or the tender identity could never open it.
"""
from __future__ import annotations

from enum import StrEnum

from core.errors import Unprocessable, UnsupportedMediaType

AGE_MAGIC = b"age-encryption.org/v1\n"
_AGE_PREFIX = b"age-encryption.org/"
_ARMOR_MAGIC = b"-----BEGIN AGE ENCRYPTED FILE-----"
_PGP_MAGIC = b"-----BEGIN PGP MESSAGE-----"
# Enough bytes to tell every format apart; a longer head that is still ambiguous is plaintext.
DETECT_BYTES = 64
MAX_AGE_HEADER = 64 * 1024
# An age payload is a 16-byte nonce plus at least one chunk carrying a 16-byte tag.
MIN_AGE_PAYLOAD = 32
_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


class UploadFormat(StrEnum):
    """What an upload turned out to be, from its first bytes."""

    PLAINTEXT = "plaintext"        # the server seals it
    AGE = "age"                    # binary age v1, sealed by the client: stored as is
    AGE_ARMORED = "age_armored"    # refused: ask for the binary form
    OTHER_SEALED = "other_sealed"  # refused: OpenPGP or an unknown age version would never open


def detect_format(head: bytes, *, complete: bool = False) -> UploadFormat | None:
    """Classify an upload from its first bytes; None while `head` is too short to tell (never when complete)."""
    if head.startswith(AGE_MAGIC):
        return UploadFormat.AGE
    if head.startswith(_AGE_PREFIX):  # an age version line, but not v1 (or not all of it yet)
        return UploadFormat.OTHER_SEALED if complete or len(head) >= len(AGE_MAGIC) else None
    text = head.lstrip()  # armour decoders tolerate leading whitespace, so we do too
    if text.startswith(_ARMOR_MAGIC):
        return UploadFormat.AGE_ARMORED
    if text.startswith(_PGP_MAGIC):
        return UploadFormat.OTHER_SEALED
    undecided = any(magic.startswith(probe) for magic, probe in
                    ((AGE_MAGIC, head), (_ARMOR_MAGIC, text), (_PGP_MAGIC, text)) if probe)
    if (undecided or not text) and not complete and len(head) < DETECT_BYTES:
        return None
    return UploadFormat.PLAINTEXT


def age_header_end(data: bytes | bytearray) -> int | None:
    """Length of the age header (through its "--- MAC" line) at the start of `data`, or None if not all there."""
    mark = data.find(b"\n--- ")
    if mark < 0:
        return None
    newline = data.find(b"\n", mark + 1)
    return None if newline < 0 else newline + 1


def malformed(reason: str) -> Unprocessable:
    """422 malformed_age with the reason."""
    return Unprocessable(f"not a well-formed age file: {reason}", code="malformed_age", details={"reason": reason})


def parse_age_header(header: bytes) -> list[tuple[str, list[str]]]:
    """Stanzas (type, arguments) of a binary age v1 header, checked against the format's grammar."""
    if not header.startswith(AGE_MAGIC) or not header.endswith(b"\n"):
        raise malformed("no age v1 header")
    lines = header[:-1].split(b"\n")[1:]
    stanzas: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"--- "):
            mac = line[4:]
            if i != len(lines) - 1 or len(mac) != 43 or not set(mac) <= _B64_CHARS:
                raise malformed("bad header MAC line")
            if not stanzas:
                raise malformed("no recipient stanza")
            return stanzas
        if not line.startswith(b"-> "):
            raise malformed("expected a recipient stanza")
        args = line[3:].split(b" ")
        if any(not arg or any(c < 0x21 or c > 0x7E for c in arg) for arg in args):
            raise malformed("bad stanza arguments")
        i += 1
        while True:  # body: full 64-column lines, then one shorter (possibly empty) line
            if i >= len(lines):
                raise malformed("header ends inside a stanza")
            body = lines[i]
            if len(body) > 64 or not set(body) <= _B64_CHARS:
                raise malformed("bad stanza body")
            i += 1
            if len(body) < 64:
                break
        stanzas.append((args[0].decode("ascii"), [a.decode("ascii") for a in args[1:]]))
    raise malformed("no header MAC line")


def check_client_sealed_header(header: bytes) -> None:
    """Refuse a client-sealed header that the tender identity could never open."""
    types = [kind for kind, _ in parse_age_header(header)]
    if "scrypt" in types:
        raise UnsupportedMediaType("this bid is sealed with a passphrase; seal it to the tender's recipient "
                                   "(age -r age1…)", code="not_sealed_to_tender")
    if "X25519" not in types:
        # Other stanza types (grease, plugins) may sit beside an X25519 one, but one of them must be X25519.
        raise UnsupportedMediaType("this bid is not sealed to an age X25519 recipient", code="not_sealed_to_tender",
                                   details={"stanzas": types})
