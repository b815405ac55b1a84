"""Content-addressed file storage: streaming writes with a running SHA-256, fsync then rename, off the event loop.

Every file the platform keeps (bid ciphertexts, documents, records, recordings) goes through one `Storage`, so
a crash never leaves a half-written file under a final name: a write lands in `<root>/tmp/`, is fsynced, and is
renamed into place; the directory is fsynced too. Keys are relative POSIX paths; content-addressed keys are
`<kind>/<aa>/<sha256><suffix>`. Local disk today; the interface is small enough for an object store later.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import AsyncIterable, BinaryIO, Callable


class StorageLimitExceeded(Exception):
    """The stream was longer than the caller's limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Stored:
    """A file that was written: its key, SHA-256 (hex) and size in bytes."""

    key: str
    sha256: str
    size: int


def content_key(kind: str, sha256: str, suffix: str = "") -> str:
    """The content address of bytes with this digest, e.g. records/ab/ab12….pdf."""
    return f"{kind}/{sha256[:2]}/{sha256}{suffix}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep of abandoned temporary files removed."""

    removed: int
    bytes: int


class PendingFile:
    """A temporary file that a writer outside `Storage` fills (e.g. an encryptor writing from its own thread);
    `commit` makes it durable under a key, `discard` drops it. Until then it sits in `<root>/tmp/`."""

    def __init__(self, storage: Storage, file: BinaryIO, path: Path) -> None:
        self._storage, self.file, self.path = storage, file, path

    async def commit(self, key: str, *, replace: bool = True) -> None:
        """Flush, fsync and close the file, then rename it to `key` and fsync the directory (off the loop)."""
        try:
            await asyncio.to_thread(_flush_close, self.file)
            await asyncio.to_thread(self._storage._commit, self.path, key, replace=replace)
        except BaseException:
            await self.discard()
            raise

    async def discard(self) -> None:
        def _drop() -> None:
            self.file.close()
            self.path.unlink(missing_ok=True)
        await asyncio.to_thread(_drop)


class Storage:
    """Files under one root directory, written atomically and durably."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The local path of a key; refuses keys that would leave the root."""
        pure = PurePosixPath(key)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise ValueError(f"unsafe storage key {key!r}")
        return self.root.joinpath(*pure.parts)

    # -- writing -------------------------------------------------------------------------------------------
    def _temp(self) -> tuple[BinaryIO, Path]:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="w-", suffix=".part")
        return os.fdopen(fd, "wb"), Path(name)

    def _commit(self, temp: Path, key: str, *, replace: bool) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if not replace and final.exists():
            temp.unlink(missing_ok=True)  # the same content is already stored
            return
        os.replace(temp, final)
        _fsync_dir(final.parent)

    def _write_all(self, data: bytes, key: str, replace: bool) -> None:
        out, temp = self._temp()
        try:
            with out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._commit(temp, key, replace=replace)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    async def put_bytes(self, data: bytes, *, kind: str | None = None, key: str | None = None,
                        suffix: str = "") -> Stored:
        """Store bytes under `key`, or content-addressed under `kind` when no key is given."""
        sha = hashlib.sha256(data).hexdigest()
        final_key = key if key is not None else content_key(_need(kind), sha, suffix)
        await asyncio.to_thread(self._write_all, data, final_key, key is not None)
        return Stored(final_key, sha, len(data))

    def put_bytes_sync(self, data: bytes, *, key: str) -> Stored:
        """`put_bytes` under a fixed key, for code already off the event loop (worker threads)."""
        self._write_all(data, key, True)
        return Stored(key, hashlib.sha256(data).hexdigest(), len(data))

    async def put_stream(self, chunks: AsyncIterable[bytes], *, kind: str | None = None, key: str | None = None,
                         suffix: str = "", limit: int | None = None,
                         on_chunk: Callable[[bytes], None] | None = None) -> Stored:
        """Stream chunks to a temporary file with a running SHA-256, then fsync and rename into place.

        `on_chunk` sees each chunk first (to sniff or check it; raising stops the write and stores nothing).
        Beyond `limit` bytes, StorageLimitExceeded is raised and nothing is stored.
        """
        final_key = key
        digest = hashlib.sha256()
        size = 0
        out, temp = await self._make_temp()
        try:
            async for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise StorageLimitExceeded(limit)
                if on_chunk is not None:
                    on_chunk(chunk)
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(_flush_close, out)
            sha = digest.hexdigest()
            if final_key is None:
                final_key = content_key(_need(kind), sha, suffix)
            await asyncio.to_thread(self._commit, temp, final_key, replace=key is not None)
        except BaseException:
            out.close()
            temp.unlink(missing_ok=True)
            raise
        return Stored(final_key, sha, size)

    async def open_pending(self) -> PendingFile:
        """A temporary file for a writer that needs a file object; commit or discard it."""
        out, temp = await self._make_temp()
        return PendingFile(self, out, temp)

    async def _make_temp(self) -> tuple[BinaryIO, Path]:
        """`_temp` off the loop. A cancelled caller cannot stop the thread that makes the file (a request handler
        is cancelled at shutdown, and on a client's hang-up where the server cancels handlers, as aiohttp's test
        server does): what the thread makes for a caller that is gone is dropped as soon as it is made."""
        making = asyncio.ensure_future(asyncio.to_thread(self._temp))
        try:
            return await asyncio.shield(making)
        except BaseException:
            making.add_done_callback(_drop_unclaimed)
            raise

    # -- reading and removing ------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    async def read_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    def read_bytes_sync(self, key: str) -> bytes:
        """For code already off the event loop (worker threads and processes)."""
        return self.path(key).read_bytes()

    async def delete(self, key: str) -> bool:
        """Remove a stored file; returns whether it existed."""
        return await asyncio.to_thread(self.delete_sync, key)

    def delete_sync(self, key: str) -> bool:
        """`delete` for code already off the event loop."""
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def sweep_temp(self, *, stale_after_s: float, now: float | None = None) -> SweepResult:
        """Delete temporary files nobody has written for `stale_after_s` (blocking: run it in a thread).

        A write in progress touches its file with every chunk, so only files a crash or a dropped connection
        left behind are old enough; writes still streaming in this or another process are safe."""
        return self.sweep_stale(self.root / "tmp", "*.part", stale_after_s=stale_after_s, now=now)

    def sweep_stale(self, directory: Path, pattern: str, *, stale_after_s: float,
                    now: float | None = None) -> SweepResult:
        """Delete the files under `directory` matching the glob `pattern` whose modification time is older than
        `stale_after_s` (blocking: run it in a thread). `directory` must lie under the storage root; a missing
        one holds nothing. A file another process removes first is skipped."""
        directory = Path(directory)
        if not directory.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"{directory} is outside the storage root")
        if not directory.is_dir():
            return SweepResult(0, 0)
        cutoff = (time.time() if now is None else now) - stale_after_s
        removed = size = 0
        for path in directory.glob(pattern):
            try:
                info = path.stat()
                if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                    path.unlink()
                    removed, size = removed + 1, size + info.st_size
            except FileNotFoundError:
                continue  # another process swept it first
        return SweepResult(removed, size)

    def free_bytes(self) -> int:
        """Free space for an unprivileged writer on the volume that holds the storage root (blocking, cheap)."""
        path = self.root
        while not path.exists() and path != path.parent:
            path = path.parent
        return shutil.disk_usage(path).free


def _drop_unclaimed(making: asyncio.Future) -> None:
    """Done callback of a pending file's making whose caller was cancelled: close and remove what it made, in a
    thread (an unlink is a disk operation)."""
    if making.cancelled() or making.exception() is not None:
        return
    out, temp = making.result()

    def drop() -> None:
        out.close()
        temp.unlink(missing_ok=True)
    asyncio.get_running_loop().run_in_executor(None, drop)


def _flush_close(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
    out.close()


def _need(kind: str | None) -> str:
    if not kind:
        raise ValueError("give a key, or a kind for a content-addressed key")
    return kind
