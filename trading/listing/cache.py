"""Recently served public listing pages, kept in memory and dropped whenever the data behind them changes.

The public listing (GET /api/v1/tenders) is the platform's hottest read: the same few pages (the front page, a
popular keyword in a category) are asked for over and over, and each costs a GIN-index query. A page's JSON body
is kept under its exact query string and served again until something it could show changes:

- PostgreSQL tells every server process: statement triggers on `tender` and `organisation` (migration 0009)
  notify `bidroom_listing` at commit, and each process LISTENs on its own connection;
- within one process, a session that wrote a tender or organisation drops the pages as it commits (the
  notification may arrive a moment after the writer's next request);
- pages expire after `listing_cache_s` seconds regardless, and nothing is cached while the listening connection
  is down (it reconnects on its own).

A page is stored only if no change was announced while its query ran, so a page read before a commit can never
outlive the notification of that commit. Requests that miss the same page at the same time share one query.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import weakref
from collections import OrderedDict
from typing import Any, AsyncIterator, Awaitable, Callable

import asyncpg
from sqlalchemy import event
from sqlalchemy.orm import Session

CHANNEL = "bidroom_listing"
_CHANGED = "trading.listing_changed"

log = logging.getLogger(__name__)
_caches: "weakref.WeakSet[ListingCache]" = weakref.WeakSet()


class ListingCache:
    """Listing pages by query string; serves only while `live` (the process is listening for changes)."""

    def __init__(self, ttl_s: float, max_pages: int = 1024):
        self.ttl_s = ttl_s
        self.max_pages = max_pages
        self.generation = 0
        self.live = False
        self.hits = 0
        self.misses = 0
        self._pages: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._flights: dict[tuple[str, int], asyncio.Future] = {}
        _caches.add(self)

    @property
    def enabled(self) -> bool:
        return self.live and self.ttl_s > 0

    def get(self, key: str) -> bytes | None:
        if not self.enabled:
            return None
        entry = self._pages.get(key)
        if entry is None or entry[0] <= time.monotonic():
            self.misses += 1
            return None
        self._pages.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: str, generation: int, body: bytes) -> None:
        """Keep a page read at `generation`, unless a change was announced since."""
        if not self.enabled or generation != self.generation:
            return
        self._pages[key] = (time.monotonic() + self.ttl_s, body)
        self._pages.move_to_end(key)
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)

    async def load(self, key: str, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        """The page under `key`: from memory, or from one `produce()` shared by every request that misses at the
        same time (after a change, 32 waiting clients would otherwise run 32 identical queries at once). A request
        that arrives after a change never joins a query started before it."""
        body = self.get(key)
        if body is not None:
            return body
        if not self.enabled:
            return await produce()
        generation = self.generation
        flight = self._flights.get((key, generation))
        if flight is None:
            flight = asyncio.ensure_future(produce())
            self._flights[(key, generation)] = flight

            def landed(done: asyncio.Future) -> None:
                self._flights.pop((key, generation), None)
                if not done.cancelled() and done.exception() is None:
                    self.put(key, generation, done.result())
            flight.add_done_callback(landed)
        return await asyncio.shield(flight)

    def invalidate(self, *_: Any) -> None:
        self.generation += 1
        self._pages.clear()

    def __len__(self) -> int:
        return len(self._pages)


def invalidate_all() -> None:
    """Drop every page in this process (a local write committed)."""
    for cache in list(_caches):
        cache.invalidate()


async def listen(cache: ListingCache, dsn: dict[str, Any], retry_s: float = 1.0) -> None:
    """Keep a connection LISTENing for listing changes; the cache serves only while it is up. Runs until
    cancelled."""
    while True:
        lost = asyncio.Event()
        conn = None
        try:
            conn = await asyncpg.connect(**dsn, server_settings={"application_name": "bidroom-listing"})
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, cache.invalidate)
            cache.invalidate()  # changes made while nobody listened
            cache.live = True
            await lost.wait()
            log.warning("listing change listener lost its connection; listing cache off until it reconnects")
        except Exception as err:  # noqa: BLE001 - any failure: stay off, retry
            log.warning("listing change listener cannot connect (%s); retrying", err)
        finally:
            cache.live = False
            cache.invalidate()
            if conn is not None and not conn.is_closed():
                await conn.close()
        await asyncio.sleep(retry_s)


@contextlib.asynccontextmanager
async def listening(cache: ListingCache, dsn: dict[str, Any]) -> AsyncIterator[None]:
    """`listen` running for the duration; waits (briefly) until the cache is live."""
    task = asyncio.create_task(listen(cache, dsn), name="listing-cache-listener")
    for _ in range(100):
        if cache.live or task.done():
            break
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


# ---- local writes --------------------------------------------------------------------------------------------

@functools.cache
def _listed_types() -> tuple[type, ...]:
    from core.identity_models import Organisation
    from trading.models import Tender
    return (Tender, Organisation)


@event.listens_for(Session, "after_flush")
def _note_listing_change(session: Session, _flush_context: Any) -> None:
    if session.info.get(_CHANGED):
        return
    listed = _listed_types()
    if any(isinstance(obj, listed) for group in (session.new, session.dirty, session.deleted) for obj in group):
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _drop_pages_on_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        invalidate_all()


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)
