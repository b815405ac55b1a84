"""Content-addressed storage: what is stored is exactly what was sent, and a failed write leaves nothing behind."""
from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest

from core.storage import Storage, StorageLimitExceeded, content_key


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def test_a_stream_is_stored_under_its_sha256_with_its_size(tmp_path):
    store = Storage(tmp_path)
    stored = await store.put_stream(chunks(b"\xe6\x8a\x95\xe6\xa0\x87", b" bid"), kind="documents", suffix=".pdf")
    digest = hashlib.sha256("投标 bid".encode()).hexdigest()
    assert (stored.sha256, stored.size) == (digest, len("投标 bid".encode()))
    assert stored.key == content_key("documents", digest, ".pdf") == f"documents/{digest[:2]}/{digest}.pdf"
    assert await store.read_bytes(stored.key) == "投标 bid".encode()
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_the_same_bytes_twice_are_stored_once(tmp_path):
    store = Storage(tmp_path)
    first = await store.put_bytes(b"record", kind="records")
    second = await store.put_stream(chunks(b"rec", b"ord"), kind="records")
    assert first == second
    assert len(list((tmp_path / "records").rglob("*"))) == 2  # the fan-out folder and the one file


async def test_an_explicit_key_is_replaced_whole(tmp_path):
    store = Storage(tmp_path)
    await store.put_bytes(b"old", key="bids/T-1/B-1.age")
    stored = await store.put_bytes(b"new", key="bids/T-1/B-1.age")
    assert stored.key == "bids/T-1/B-1.age"
    assert await store.read_bytes("bids/T-1/B-1.age") == b"new"


async def test_a_stream_over_the_limit_stores_nothing(tmp_path):
    store = Storage(tmp_path)
    with pytest.raises(StorageLimitExceeded):
        await store.put_stream(chunks(b"a" * 10, b"b" * 10), kind="documents", limit=15)
    assert not (tmp_path / "documents").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_check_that_refuses_a_chunk_stores_nothing(tmp_path):
    store = Storage(tmp_path)

    def refuse_second(chunk: bytes) -> None:
        if chunk.startswith(b"bad"):
            raise ValueError("not a bundle")

    with pytest.raises(ValueError):
        await store.put_stream(chunks(b"good", b"bad"), key="bids/x.age", on_chunk=refuse_second)
    assert not store.exists("bids/x.age")
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../../b", ""])
def test_keys_that_would_leave_the_root_are_refused(tmp_path, key):
    with pytest.raises(ValueError):
        Storage(tmp_path).path(key)


async def test_delete_says_whether_the_file_existed(tmp_path):
    store = Storage(tmp_path)
    stored = await store.put_bytes(b"x", kind="records")
    assert await store.delete(stored.key) is True
    assert await store.delete(stored.key) is False


async def _stalled():
    await asyncio.Event().wait()
    yield b""


class HeldStorage(Storage):
    """A real Storage whose thread makes a temporary file only once the test lets it, so that a cancel lands while
    the thread is at work, every time."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.go = threading.Event()

    def _temp(self):
        self.go.wait(5)
        return super()._temp()


@pytest.mark.parametrize("opener", ["open_pending", "put_stream"])
async def test_a_temporary_file_whose_opener_is_cancelled_is_not_left_behind(tmp_path, opener):
    """The file is made in a thread, which a cancelled caller cannot stop: a handler cancelled while it opened its
    temporary file (at shutdown, or its client hung up) must not leave the file in tmp/ for the sweep to find
    days later."""
    store = HeldStorage(tmp_path)
    opening = asyncio.ensure_future(store.open_pending() if opener == "open_pending"
                                    else store.put_stream(_stalled(), kind="documents"))
    await asyncio.sleep(0.05)  # the thread is at work, waiting to make the file
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    store.go.set()  # the thread makes the file now, for a caller that is gone
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while loop.time() < deadline:
        if (tmp_path / "tmp").is_dir() and not list(tmp_path.glob("tmp/*.part")):
            break
        await asyncio.sleep(0.005)
    assert (tmp_path / "tmp").is_dir()  # the thread did make the file (and its directory)
    assert list(tmp_path.glob("tmp/*.part")) == []
