"""The listing page cache on its own: what it keeps, when it refuses, and what drops it."""
import time

from trading.listing.cache import ListingCache, invalidate_all


def live(ttl_s: float = 30, max_pages: int = 1024) -> ListingCache:
    cache = ListingCache(ttl_s, max_pages)
    cache.live = True
    return cache


def test_a_kept_page_is_served_again_with_the_same_bytes():
    cache = live()
    cache.put("q=道路", cache.generation, b'{"items":[1]}')
    assert cache.get("q=道路") == b'{"items":[1]}'
    assert cache.get("q=桥梁") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_page_read_before_a_change_was_announced_is_not_kept():
    cache = live()
    generation = cache.generation  # the query starts
    cache.invalidate()  # a tender changes while it runs
    cache.put("q=道路", generation, b"old")
    assert cache.get("q=道路") is None and len(cache) == 0


def test_a_change_drops_every_page_in_every_cache_of_the_process():
    first, second = live(), live()
    first.put("a", first.generation, b"1")
    second.put("b", second.generation, b"2")
    invalidate_all()
    assert first.get("a") is None and second.get("b") is None


def test_nothing_is_kept_or_served_while_not_listening_or_switched_off():
    cache = ListingCache(30)
    cache.put("a", cache.generation, b"1")
    assert cache.get("a") is None and len(cache) == 0
    off = live(ttl_s=0)
    off.put("a", off.generation, b"1")
    assert off.get("a") is None


def test_pages_expire_and_the_least_recently_used_goes_first():
    cache = live(max_pages=2)
    for key in ("a", "b"):
        cache.put(key, cache.generation, key.encode())
    assert cache.get("a") == b"a"  # a is now the most recent
    cache.put("c", cache.generation, b"c")
    assert cache.get("b") is None and cache.get("a") == b"a" and cache.get("c") == b"c"
    short = live(ttl_s=0.05)
    short.put("a", short.generation, b"a")
    time.sleep(0.06)
    assert short.get("a") is None


async def test_requests_missing_together_share_one_query_but_never_one_started_before_a_change():
    import asyncio
    cache = live()
    calls = []
    gate = asyncio.Event()

    async def produce() -> bytes:
        calls.append(cache.generation)
        number = len(calls)
        await gate.wait()
        return f"page@{number}".encode()

    first = [asyncio.ensure_future(cache.load("q=道路", produce)) for _ in range(5)]
    await asyncio.sleep(0)
    cache.invalidate()  # a tender changes while that query runs
    late = asyncio.ensure_future(cache.load("q=道路", produce))
    await asyncio.sleep(0)
    gate.set()
    bodies = await asyncio.gather(*first)
    assert bodies == [b"page@1"] * 5  # five requests, one query
    assert await late == b"page@2"  # the request after the change ran its own
    assert len(calls) == 2
    # only the query started after the change is kept
    assert cache.get("q=道路") == await late


async def test_a_failed_query_is_not_kept_and_reaches_every_waiter():
    import asyncio
    import pytest
    cache = live()

    async def produce() -> bytes:
        await asyncio.sleep(0)
        raise ValueError("bad cursor")

    results = await asyncio.gather(*[cache.load("c", produce) for _ in range(3)], return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert cache.get("c") is None
    with pytest.raises(ValueError):
        await cache.load("c", produce)
