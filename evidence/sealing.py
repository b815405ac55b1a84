"""Sealed bids (密封投标): age encryption to a per-tender X25519 recipient, with its identity split k-of-n.

- At publish time a tender gets an age identity. Its secret is split with Shamir (pyshamir) among the key
  holders. The platform encrypts each share to its holder's personal key (`split_identity_plain`, then
  trading.keyholding); `split_identity` instead wraps each share under a passphrase with age's scrypt
  recipient, for holders who keep their share offline and unwrap it with the stock `age -d` tool.
- Bids are stored only as age ciphertext. A client may seal before upload with the published recipient
  (`age -r age1… -o bid.age bid.zip`); otherwise `StreamSealer` seals the upload stream as it arrives.
- At the opening, k holders unwrap their shares, `combine_shares` rebuilds the identity in memory and checks it
  against the published recipient, and `open_sealed` / `open_sealed_to` decrypt each bid.

Cost of a share: pyrage offers no way to set the scrypt work factor. It calibrates for about a second on the
machine that wraps (work factor 2^19 measured here: ~1.6 s and ~512 MiB of memory for each wrap or unwrap), and
it holds the GIL throughout. Run split_identity and unwrap_share in a process pool, never on the event loop,
and not many at once.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, BinaryIO, Sequence

import pyrage
import pyshamir

from core.canonical import cj
from core.errors import Forbidden, PayloadTooLarge, Unprocessable, UnsupportedMediaType

log = logging.getLogger(__name__)

AGE_MAGIC = b"age-encryption.org/v1\n"
_AGE_PREFIX = b"age-encryption.org/"
_ARMOR_MAGIC = b"-----BEGIN AGE ENCRYPTED FILE-----"
_PGP_MAGIC = b"-----BEGIN PGP MESSAGE-----"
# Enough bytes to tell every format apart; a longer head that is still ambiguous is plaintext.
DETECT_BYTES = 64
MAX_AGE_HEADER = 64 * 1024
# An age payload is a 16-byte nonce plus at least one chunk carrying a 16-byte tag.
_MIN_AGE_PAYLOAD = 32
_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

SHARE_FORMAT = "bidroom-share/1"
MIN_PASSPHRASE_LENGTH = 8
COPY_CHUNK = 64 * 1024


# ---------------------------------------------------------------------------------------------------------------
# Tender identities and their k-of-n shares
# ---------------------------------------------------------------------------------------------------------------

def new_tender_identity() -> tuple[str, str]:
    """A fresh age X25519 identity for one tender: ("AGE-SECRET-KEY-1…", "age1…")."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipient_of(identity: str) -> str:
    """The public recipient ("age1…") of an identity string."""
    return str(_parse_identity(identity).to_public())


def _parse_identity(identity: str) -> pyrage.x25519.Identity:
    try:
        return pyrage.x25519.Identity.from_str(identity)
    except (pyrage.IdentityError, TypeError, ValueError) as err:
        raise Unprocessable("not an age X25519 identity", code="invalid_identity") from err


def _parse_recipient(recipient: str) -> pyrage.x25519.Recipient:
    try:
        return pyrage.x25519.Recipient.from_str(recipient)
    except (pyrage.RecipientError, TypeError, ValueError) as err:
        raise Unprocessable("not an age X25519 recipient", code="invalid_recipient",
                            details={"recipient": str(recipient)[:80]}) from err


@dataclass(frozen=True)
class ShareInfo:
    """What an unwrapped share says about itself (the share bytes stay inside)."""

    k: int
    n: int
    recipient: str


def split_identity(identity: str, k: int, n: int, passphrases: Sequence[str]) -> list[bytes]:
    """Split `identity` k-of-n; share i comes back wrapped (age scrypt) under passphrases[i]. Slow: see module doc."""
    ident = _parse_identity(identity)
    _check_threshold(k, n)
    if len(passphrases) != n:
        raise Unprocessable("one passphrase per key holder is needed", code="invalid_threshold",
                            details={"n": n, "passphrases": len(passphrases)})
    for i, passphrase in enumerate(passphrases):
        if not isinstance(passphrase, str) or len(passphrase) < MIN_PASSPHRASE_LENGTH:
            raise Unprocessable(f"passphrases need at least {MIN_PASSPHRASE_LENGTH} characters",
                                code="weak_passphrase", details={"holder": i})
    wrapped = [pyrage.passphrase.encrypt(envelope, passphrase)
               for envelope, passphrase in zip(_split_envelopes(ident, identity, k, n), passphrases)]
    log.info("split a tender identity %d-of-%d for %s", k, n, str(ident.to_public()))
    return wrapped


def _check_threshold(k: int, n: int) -> None:
    if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, int) or not isinstance(n, int) \
            or not 2 <= k <= n <= 255:
        # k = 1 would let any one holder open every bid early, which is what the split exists to prevent.
        raise Unprocessable("the threshold must satisfy 2 <= k <= n <= 255", code="invalid_threshold",
                            details={"k": k, "n": n})


def _split_envelopes(ident: pyrage.x25519.Identity, identity: str, k: int, n: int) -> list[bytes]:
    recipient = str(ident.to_public())
    parts = pyshamir.split(identity.encode("ascii"), n, k)
    return [cj({"format": SHARE_FORMAT, "k": k, "n": n, "recipient": recipient,
                "share": base64.b64encode(bytes(part)).decode("ascii")}) for part in parts]


def split_identity_plain(identity: str, k: int, n: int) -> list[bytes]:
    """Split `identity` k-of-n into unwrapped shares (the caller encrypts each to its holder); fast."""
    ident = _parse_identity(identity)
    _check_threshold(k, n)
    return _split_envelopes(ident, identity, k, n)


def _is_scrypt_age(data: bytes) -> bool:
    header_end = data.find(b"\n--- ")
    return data.startswith(AGE_MAGIC) and header_end > 0 and b"\n-> scrypt " in data[:header_end + 1]


def unwrap_share(wrapped: bytes, passphrase: str) -> bytes:
    """The share inside `wrapped`, or Forbidden(wrong_passphrase). Slow: see module doc."""
    if not isinstance(wrapped, (bytes, bytearray)) or not _is_scrypt_age(bytes(wrapped)):
        raise Unprocessable("this is not a wrapped key share", code="malformed_share")
    try:
        envelope = pyrage.passphrase.decrypt(bytes(wrapped), passphrase)
    except pyrage.DecryptError as err:
        # age cannot tell a wrong passphrase from a damaged share: both fail the header MAC.
        raise Forbidden("the passphrase does not unlock this key share", code="wrong_passphrase") from err
    _read_envelope(envelope)
    return envelope


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


def share_info(share: bytes) -> ShareInfo:
    """Threshold and recipient named by an unwrapped share."""
    return _read_envelope(share)[0]


def combine_shares(shares: Sequence[bytes], recipient: str | None = None) -> str:
    """Rebuild the tender identity from k or more unwrapped shares, checked against its published recipient."""
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


# ---------------------------------------------------------------------------------------------------------------
# Upload formats and the age header
# ---------------------------------------------------------------------------------------------------------------

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


def is_sealed(head: bytes) -> bool:
    """True if these first bytes start a binary age file."""
    return head.startswith(AGE_MAGIC)


def age_header_end(data: bytes | bytearray) -> int | None:
    """Length of the age header (through its "--- MAC" line) at the start of `data`, or None if not all there."""
    mark = data.find(b"\n--- ")
    if mark < 0:
        return None
    newline = data.find(b"\n", mark + 1)
    return None if newline < 0 else newline + 1


def _malformed(reason: str) -> Unprocessable:
    return Unprocessable(f"not a well-formed age file: {reason}", code="malformed_age", details={"reason": reason})


def parse_age_header(header: bytes) -> list[tuple[str, list[str]]]:
    """Stanzas (type, arguments) of a binary age v1 header, checked against the format's grammar."""
    if not header.startswith(AGE_MAGIC) or not header.endswith(b"\n"):
        raise _malformed("no age v1 header")
    lines = header[:-1].split(b"\n")[1:]
    stanzas: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"--- "):
            mac = line[4:]
            if i != len(lines) - 1 or len(mac) != 43 or not set(mac) <= _B64_CHARS:
                raise _malformed("bad header MAC line")
            if not stanzas:
                raise _malformed("no recipient stanza")
            return stanzas
        if not line.startswith(b"-> "):
            raise _malformed("expected a recipient stanza")
        args = line[3:].split(b" ")
        if any(not arg or any(c < 0x21 or c > 0x7E for c in arg) for arg in args):
            raise _malformed("bad stanza arguments")
        i += 1
        while True:  # body: full 64-column lines, then one shorter (possibly empty) line
            if i >= len(lines):
                raise _malformed("header ends inside a stanza")
            body = lines[i]
            if len(body) > 64 or not set(body) <= _B64_CHARS:
                raise _malformed("bad stanza body")
            i += 1
            if len(body) < 64:
                break
        stanzas.append((args[0].decode("ascii"), [a.decode("ascii") for a in args[1:]]))
    raise _malformed("no header MAC line")


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


# ---------------------------------------------------------------------------------------------------------------
# Sealing an upload as it streams in
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SealedUpload:
    """What was stored: the ciphertext's SHA-256 and size, and who sealed it."""

    sha256: str
    size: int
    received: int
    format: UploadFormat

    @property
    def sealed_by(self) -> str:
        """"server" when we sealed a plaintext upload, "client" when the upload was already age ciphertext."""
        return "client" if self.format is UploadFormat.AGE else "server"


_EOF = object()
_ABORT = object()


class _Aborted(Exception):
    """Raised inside the sealing worker to stop pyrage when the upload is abandoned."""


class _QueueReader:
    """A file-like reader that pyrage pulls from, fed chunk by chunk through a bounded queue."""

    def __init__(self, chunks: queue.Queue) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        while not self._buf:
            if self._eof:
                return b""
            item = self._chunks.get()
            if item is _EOF:
                self._eof = True
                return b""
            if item is _ABORT:
                raise _Aborted()
            self._buf = memoryview(item)
        if size is None or size < 0:
            size = len(self._buf)
        piece, self._buf = self._buf[:size], self._buf[size:]
        return bytes(piece)


class _HashingWriter:
    """Writes through to the destination while hashing and counting what is written.

    pyrage reports a failing write only as its own error with a message; the original (disk full, say) is kept
    in `error` so it is raised as itself and never mistaken for bad ciphertext.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            view = memoryview(data)
            while view:
                written = self._out.write(view)
                written = len(view) if written is None else written
                view = view[written:]
        except BaseException as err:
            self.error = err
            raise
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


class StreamSealer:
    """Seal an upload chunk by chunk into `out`, so its plaintext is never written anywhere.

    pyrage's `encrypt_io` pulls plaintext from a file-like reader and encrypts it in 64 KiB age chunks as it
    goes, so a worker thread runs it over a reader fed through a bounded queue: `write` (or `awrite` from a
    coroutine) hands chunks over and blocks only while the queue is full. Memory stays at about
    (queue_depth + 2) chunks plus pyrage's 64 KiB buffers, whatever the upload's size.

    An upload that already is binary age ciphertext (sealed by the client) is checked and stored as is. Armoured
    age and OpenPGP are refused. `max_bytes` caps the bytes received; past it `write` raises PayloadTooLarge.
    On any error the caller discards `out`: it may hold a partial ciphertext, never plaintext.
    """

    def __init__(self, out: BinaryIO, recipient: str, *, max_bytes: int, queue_depth: int = 4) -> None:
        if max_bytes <= 0 or queue_depth <= 0:
            raise ValueError("max_bytes and queue_depth must be positive")
        self._recipient = _parse_recipient(recipient)
        self._max_bytes = max_bytes
        self._queue: queue.Queue = queue.Queue(maxsize=queue_depth)
        self._reader = _QueueReader(self._queue)
        self._writer = _HashingWriter(out)
        self._out = out
        self._head = bytearray()
        self._format: UploadFormat | None = None
        self._received = 0
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._aborted = False
        self._done = False

    @property
    def format(self) -> UploadFormat | None:
        """The upload's format once its first bytes have arrived."""
        return self._format

    @property
    def received(self) -> int:
        """Bytes received so far."""
        return self._received

    def __enter__(self) -> StreamSealer:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._done:
            self.abort()

    def write(self, chunk: bytes) -> None:
        """Hand one chunk of the upload over; blocks while the sealing worker catches up."""
        for item in self._accept(chunk):
            self._put(item)

    async def awrite(self, chunk: bytes) -> None:
        """Like write, but waits for a full queue in a thread instead of blocking the event loop."""
        for item in self._accept(chunk):
            self._raise_worker_error()
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                await asyncio.to_thread(self._put, item)

    def close(self) -> SealedUpload:
        """Finish the upload and return what was stored; raises what the worker ran into."""
        if self._done:
            raise RuntimeError("this sealer is already closed")
        if self._format is None:
            if self._received == 0:
                self.abort()
                raise Unprocessable("the upload is empty", code="empty_upload")
            self._start(detect_format(bytes(self._head), complete=True))
            head, self._head = bytes(self._head), bytearray()
            self._put(head)
        self._put(_EOF)
        assert self._thread is not None
        self._thread.join()
        self._done = True
        self._raise_worker_error()
        assert self._format is not None
        return SealedUpload(sha256=self._writer.sha256.hexdigest(), size=self._writer.size,
                            received=self._received, format=self._format)

    async def aclose(self) -> SealedUpload:
        """close() without blocking the event loop while pyrage writes the last chunk."""
        return await asyncio.to_thread(self.close)

    def abort(self) -> None:
        """Stop sealing and drop the upload; `out` is left for the caller to delete."""
        self._done = True
        self._aborted = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            while thread.is_alive():
                try:
                    self._queue.put(_ABORT, timeout=0.1)
                    break
                except queue.Full:
                    continue
            thread.join()

    def _accept(self, chunk: bytes) -> list[bytes]:
        """Count and classify an incoming chunk; return what to queue for the worker."""
        if self._done:
            raise RuntimeError("this sealer is closed")
        self._raise_worker_error()
        if not chunk:
            return []
        chunk = bytes(chunk)  # the caller may reuse a bytearray buffer
        self._received += len(chunk)
        if self._received > self._max_bytes:
            self.abort()
            raise PayloadTooLarge(f"the upload is larger than {self._max_bytes} bytes", code="upload_too_large",
                                  details={"max_bytes": self._max_bytes})
        if self._format is not None:
            return [chunk]
        self._head += chunk
        found = detect_format(bytes(self._head[:DETECT_BYTES]))
        if found is None:
            return []
        self._start(found)
        head, self._head = bytes(self._head), bytearray()
        return [head]

    def _start(self, found: UploadFormat) -> None:
        if found is UploadFormat.AGE_ARMORED:
            self.abort()
            raise UnsupportedMediaType("armoured age files are not accepted; upload the binary file "
                                       "(age without -a)", code="armored_not_accepted")
        if found is UploadFormat.OTHER_SEALED:
            self.abort()
            raise UnsupportedMediaType("this upload is encrypted in a format the opening cannot read; "
                                       "seal it with age to the tender's recipient, or upload it plain",
                                       code="unsupported_seal")
        self._format = found
        self._thread = threading.Thread(target=self._run, name="bid-sealer", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        """Queue an item, waking up now and then to notice a worker that has died."""
        while True:
            self._raise_worker_error()
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if self._thread is None or not self._thread.is_alive():
                    self._raise_worker_error()
                    raise RuntimeError("the sealing worker stopped") from None

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            if self._format is UploadFormat.PLAINTEXT:
                pyrage.encrypt_io(self._reader, self._writer, [self._recipient])
            else:
                self._copy_client_sealed()
            self._writer.flush()
        except BaseException as err:  # handed to the uploading thread, which raises it
            if not self._aborted:
                log.warning("sealing an upload failed: %s", err)
                self._error = self._writer.error or err

    def _copy_client_sealed(self) -> None:
        """Check a client-sealed upload's header before anything is stored, then copy it through."""
        buf = bytearray()
        end = None
        while end is None:
            if len(buf) > MAX_AGE_HEADER:
                raise _malformed("header too long")
            chunk = self._reader.read(COPY_CHUNK)
            if not chunk:
                raise _malformed("the file ends inside its header")
            buf += chunk
            end = age_header_end(buf)
        check_client_sealed_header(bytes(buf[:end]))
        payload = len(buf) - end
        self._writer.write(bytes(buf))
        del buf
        while chunk := self._reader.read(COPY_CHUNK):
            self._writer.write(chunk)
            payload += len(chunk)
        if payload < _MIN_AGE_PAYLOAD:
            raise _malformed("the encrypted payload is truncated")


def seal_bytes(plaintext: bytes, recipient: str) -> bytes:
    """Seal a small in-memory payload (a bid form, a test fixture) to a tender's recipient."""
    return pyrage.encrypt(plaintext, [_parse_recipient(recipient)])


# ---------------------------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------------------------

def _undecryptable(err: BaseException) -> Unprocessable:
    # The opening counts such a bid as withdrawn; the reason is kept for the opening record.
    return Unprocessable("this sealed bid cannot be decrypted with the tender key", code="undecryptable",
                         details={"reason": str(err)[:200]})


def open_sealed(sealed: bytes | str | os.PathLike, identity: str) -> bytes:
    """Decrypt a whole sealed bid (bytes, or a path to them) in memory; Unprocessable(undecryptable) on failure."""
    ident = _parse_identity(identity)
    if not isinstance(sealed, (bytes, bytearray)):
        with open(sealed, "rb") as fh:
            sealed = fh.read()
    try:
        return pyrage.decrypt(bytes(sealed), [ident])
    except (pyrage.DecryptError, OSError, ValueError) as err:
        raise _undecryptable(err) from err


class _TrackingReader:
    """Passes reads through, remembering an I/O error of our own so it is not mistaken for bad ciphertext."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return self._src.read(size)
        except BaseException as err:
            self.error = err
            raise


def open_sealed_to(src: BinaryIO, dst: BinaryIO, identity: str) -> int:
    """Stream-decrypt a sealed bid from `src` into `dst`; returns the plaintext size.

    age authenticates each 64 KiB chunk as it goes, so a file damaged near its end fails only after the chunks
    before the damage were written: write to a temporary file and keep it only if this returns.
    """
    ident = _parse_identity(identity)
    reader, writer = _TrackingReader(src), _HashingWriter(dst)
    try:
        pyrage.decrypt_io(reader, writer, [ident])
    except (pyrage.DecryptError, OSError, ValueError) as err:
        own = reader.error or writer.error
        if own is not None:
            raise own from err
        raise _undecryptable(err) from err
    writer.flush()
    return writer.size
