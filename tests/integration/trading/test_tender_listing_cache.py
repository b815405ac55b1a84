"""The listing cache in the running app: repeated pages come from memory, and no change is ever hidden by it,
whether made through the API, behind the app's back, or while its change listener was down."""
import asyncio

from tests.integration.trading.conftest import create_draft, publish, published_tender
from trading.routes.listing import LISTING_CACHE


def _cache(client):
    return client.server.app[LISTING_CACHE]


async def _page(client, params):
    resp = await client.get("/api/v1/tenders", params=params)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    return await resp.json()


async def _until(predicate, what: str, tries: int = 200):
    for _ in range(tries):
        if await predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


async def test_a_repeated_page_is_served_from_memory_with_the_same_content(client, sessions, desk):
    made = await published_tender(client, sessions, desk, title="中山市东区道路照明工程")
    cache = _cache(client)
    assert cache.live
    # the publication's own change notice may reach the listener a moment after it commits (on a busy machine,
    # after the first page is read) and rightly drop that page; once it has arrived, the repeat is a hit
    served: list = []

    async def repeated_from_memory() -> bool:
        first = await _page(client, {"q": "道路", "category": "FJSZ"})
        hits = cache.hits
        second = await _page(client, {"q": "道路", "category": "FJSZ"})
        served[:] = [first, second]
        return cache.hits == hits + 1
    await _until(repeated_from_memory, "a repeated page served from memory")
    first, second = served
    assert second == first and [i["code"] for i in first["items"]] == [made["code"]]


async def test_a_tender_published_through_the_api_shows_on_the_very_next_page(client, sessions, desk):
    before = await _page(client, {"q": "道路"})
    assert before["items"] == []
    await _page(client, {"q": "道路"})  # now kept
    draft = await create_draft(client, desk, title="中山市南区道路改造工程")
    await publish(client, sessions, desk, draft["code"])
    after = await _page(client, {"q": "道路"})
    assert [i["code"] for i in after["items"]] == [draft["code"]]


async def test_a_change_made_behind_the_apps_back_reaches_the_listing(client, sessions, desk, raw_conn):
    made = await published_tender(client, sessions, desk, title="中山市西区道路改造工程")
    await _page(client, {"q": "道路"})
    cache = _cache(client)
    generation = cache.generation
    await raw_conn.execute("UPDATE tender SET title = '中山市西区道路改造工程（第二次）' WHERE code = $1",
                           made["code"])

    async def announced():
        return cache.generation > generation
    await _until(announced, "the change notification")
    page = await _page(client, {"q": "道路"})
    assert page["items"][0]["title"] == "中山市西区道路改造工程（第二次）"


async def test_while_the_listener_is_down_pages_come_from_the_database_until_it_reconnects(
        client, sessions, desk, raw_conn):
    made = await published_tender(client, sessions, desk, title="中山市北区道路改造工程")
    cache = _cache(client)
    await _page(client, {"q": "道路"})
    killed = await raw_conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'bidroom-listing' AND datname = current_database()")
    assert killed == 1

    async def down():
        return not cache.live
    await _until(down, "the listener noticing its connection is gone")
    await raw_conn.execute("UPDATE tender SET title = '中山市北区道路改造工程（变更）' WHERE code = $1", made["code"])
    page = await _page(client, {"q": "道路"})
    assert page["items"][0]["title"] == "中山市北区道路改造工程（变更）"
    assert len(cache) == 0

    async def up():
        return cache.live
    await _until(up, "the listener reconnecting", tries=400)
    await _page(client, {"q": "道路"})
    hits = cache.hits
    again = await _page(client, {"q": "道路"})
    assert again["items"][0]["title"] == "中山市北区道路改造工程（变更）" and cache.hits == hits + 1


async def test_a_local_commit_that_changes_a_listed_row_drops_the_pages_itself_and_a_rollback_does_not(
        sessions, desk):
    from sqlalchemy import select

    from core.identity_models import Organisation
    from trading.listing.cache import ListingCache
    cache = ListingCache(30)  # no listener: only the commit hook can drop its pages
    cache.live = True
    cache.put("q=道路", cache.generation, b"old page")
    tenderer = select(Organisation).where(Organisation.public_id == desk.tenderer)
    async with sessions() as session:
        await session.begin()
        org = (await session.execute(tenderer)).scalar_one()
        org.name = org.name + "（更名前）"
        await session.flush()
        await session.rollback()
    assert cache.get("q=道路") == b"old page"
    async with sessions() as session, session.begin():
        org = (await session.execute(tenderer)).scalar_one()
        org.name = org.name + "（更名）"
    assert cache.get("q=道路") is None
