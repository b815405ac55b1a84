"""Sealing a bid upload as it streams in, so its plaintext is never written anywhere.

A plaintext upload is encrypted to the tender's recipient chunk by chunk; an upload that already is binary age
ciphertext (sealed by the client) has its header checked and is stored unchanged.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyrage

from core.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from evidence.sealing.header import (DETECT_BYTES, MAX_AGE_HEADER, MIN_AGE_PAYLOAD, UploadFormat, age_header_end,
                                     check_client_sealed_header, detect_format, malformed)
from evidence.sealing.shares import parse_recipient

log = logging.getLogger(__name__)

COPY_CHUNK = 64 * 1024


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
    goes, so a worker thread runs it over a reader fed through a bounded queue: `awrite` hands chunks over and
    waits (in a thread, off the event loop) only while the queue is full. Memory stays at about
    (queue_depth + 2) chunks plus pyrage's 64 KiB buffers, whatever the upload's size.

    An upload that already is binary age ciphertext (sealed by the client) is checked and stored as is. Armoured
    age and OpenPGP are refused. `max_bytes` caps the bytes received; past it `awrite` raises PayloadTooLarge.
    On any error the caller discards `out`: it may hold a partial ciphertext, never plaintext.
    """

    def __init__(self, out: BinaryIO, recipient: str, *, max_bytes: int, queue_depth: int = 4) -> None:
        if max_bytes <= 0 or queue_depth <= 0:
            raise ValueError("max_bytes and queue_depth must be positive")
        self._recipient = parse_recipient(recipient)
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

    def __enter__(self) -> StreamSealer:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._done:
            self.abort()

    async def awrite(self, chunk: bytes) -> None:
        """Hand one chunk of the upload over; a full queue is waited for in a thread, not on the event loop."""
        for item in self._accept(chunk):
            self._raise_worker_error()
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                await asyncio.to_thread(self._put, item)

    async def aclose(self) -> SealedUpload:
        """Finish the upload and return what was stored; raises what the worker ran into.

        Runs in a thread: the worker may still be encrypting the last chunks and pyrage writes the final one.
        """
        return await asyncio.to_thread(self._close)

    def _close(self) -> SealedUpload:
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
                raise malformed("header too long")
            chunk = self._reader.read(COPY_CHUNK)
            if not chunk:
                raise malformed("the file ends inside its header")
            buf += chunk
            end = age_header_end(buf)
        check_client_sealed_header(bytes(buf[:end]))
        payload = len(buf) - end
        self._writer.write(bytes(buf))
        del buf
        while chunk := self._reader.read(COPY_CHUNK):
            self._writer.write(chunk)
            payload += len(chunk)
        if payload < MIN_AGE_PAYLOAD:
            raise malformed("the encrypted payload is truncated")
