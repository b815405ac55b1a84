"""Listing search covers the lots' titles and the optional English title."""
from tests.integration.trading.conftest import published_tender


async def _codes(client, q):
    resp = await client.get("/api/v1/tenders", params={"q": q})
    assert resp.status == 200, await resp.text()
    return [item["code"] for item in (await resp.json())["items"]]


async def test_a_lot_title_is_found_by_its_words_and_phrases(client, sessions, desk):
    lots = [{"title": "空调及照明", "budget": "3000000.00"}, {"title": "给排水", "budget": "2000000.00"}]
    tender = await published_tender(client, sessions, desk, title="中山市人民医院住院楼机电安装工程", lots=lots)
    other = await published_tender(client, sessions, desk, title="中山市体育馆维修工程")
    assert await _codes(client, "空调") == [tender["code"]]
    assert await _codes(client, "空调及照明") == [tender["code"]]
    assert await _codes(client, "给排水") == [tender["code"]]
    assert await _codes(client, "中山") == [tender["code"], other["code"]]
    assert await _codes(client, "空调维修") == []


async def test_the_english_title_is_shown_searched_and_published_as_open_data(client, sessions, desk):
    tender = await published_tender(client, sessions, desk, title="中山市翠亨新区污水处理厂扩建工程",
                                    title_en="Cuiheng New Area Sewage Treatment Plant Expansion")
    await published_tender(client, sessions, desk, title="中山市东区市政道路照明工程")
    assert await _codes(client, "sewage") == [tender["code"]]
    assert await _codes(client, "Treatment plant") == [tender["code"]]
    assert await _codes(client, "sewage bridge") == []
    page = await (await client.get("/api/v1/tenders", params={"q": "sewage"})).json()
    assert page["items"][0]["title_en"] == "Cuiheng New Area Sewage Treatment Plant Expansion"
    detail = await (await client.get(f"/api/v1/tenders/{tender['code']}")).json()
    assert detail["title_en"] == "Cuiheng New Area Sewage Treatment Plant Expansion"
    record = await (await client.get(f"/api/v1/tenders/{tender['code']}/ocds")).json()
    assert record["records"][0]["compiledRelease"]["tender"]["title_en"] == detail["title_en"]
