"""The public listing: Chinese and English search, filters, keyset pages, and the Atom feed."""
from xml.etree import ElementTree as ET

from tests.integration.trading.conftest import create_draft, organisation, published_tender

ATOM = "{http://www.w3.org/2005/Atom}"


async def _seed(client, sessions, desk):
    """Five published tenders (deadlines 21..25 days out) and one draft, with distinct words in their titles."""
    hospital = await organisation(sessions, "广州市卫生健康委员会")
    made = {}
    specs = [
        ("zs_road", dict(title="中山市火炬开发区道路改造工程施工", days=21)),
        ("gz_equipment", dict(title="广州市天河区医疗设备采购项目", days=22, family="ZFCG", subtype="ZFCG-HW",
                              region_code="GZ", budget="3000000.00", lots=[], tenderer=hospital)),
        ("fs_bridge", dict(title="佛山市南海区桥梁维修加固工程", days=23, region_code="FS", budget="900000.00",
                           lots=[])),
        ("zs_school", dict(title="中山市石岐区学校教学楼新建工程", days=24, budget="50000000.00", lots=[],
                           description="含室外配套")),
        ("sz_road", dict(title="深圳市南山区滨海大道道路养护服务 Smart Road", days=25, family="ZFCG",
                         subtype="ZFCG-FW", region_code="SZ", budget="2000000.00", lots=[])),
    ]
    for key, kw in specs:
        tender = await published_tender(client, sessions, desk, **kw)
        made[key] = tender["code"]
    made["draft"] = (await create_draft(client, desk, title="中山市未发布道路工程草稿"))["code"]
    return made


async def _codes(client, query):
    resp = await client.get("/api/v1/tenders", params=query)
    assert resp.status == 200, await resp.text()
    return [item["code"] for item in (await resp.json())["items"]]


async def test_search_finds_the_matching_tenders_and_nothing_else(client, sessions, desk):
    made = await _seed(client, sessions, desk)
    assert await _codes(client, {"q": "中山"}) == [made["zs_road"], made["zs_school"]]
    assert await _codes(client, {"q": "道路"}) == [made["zs_road"], made["sz_road"]]
    assert await _codes(client, {"q": "医疗设备"}) == [made["gz_equipment"]]
    assert await _codes(client, {"q": "smart"}) == [made["sz_road"]]
    assert await _codes(client, {"q": "中山 道路"}) == [made["zs_road"]]
    assert await _codes(client, {"q": "杭州"}) == []
    assert made["draft"] not in await _codes(client, {"q": "草稿"})


async def test_filters_by_category_region_status_budget_and_deadline(client, sessions, desk):
    made = await _seed(client, sessions, desk)
    assert await _codes(client, {"category": "ZFCG"}) == [made["gz_equipment"], made["sz_road"]]
    assert await _codes(client, {"category": "ZFCG-HW"}) == [made["gz_equipment"]]
    assert await _codes(client, {"region": "ZS"}) == [made["zs_road"], made["zs_school"]]
    assert await _codes(client, {"budget_min": "1000000", "budget_max": "3000000"}) == [made["gz_equipment"],
                                                                                       made["sz_road"]]
    page = await (await client.get("/api/v1/tenders", params={"q": "桥梁"})).json()
    deadline = page["items"][0]["bid_deadline_at"]
    assert await _codes(client, {"deadline_from": deadline}) == [made["fs_bridge"], made["zs_school"],
                                                                 made["sz_road"]]
    assert await _codes(client, {"deadline_to": deadline}) == [made["zs_road"], made["gz_equipment"],
                                                               made["fs_bridge"]]
    assert await _codes(client, {"status": "closed"}) == []
    assert len(await _codes(client, {"status": "published"})) == 5


async def test_keyset_pages_walk_every_tender_once_in_both_sort_orders(client, sessions, desk):
    made = await _seed(client, sessions, desk)
    for sort, expected in (("deadline", [made[k] for k in ("zs_road", "gz_equipment", "fs_bridge", "zs_school",
                                                           "sz_road")]),
                           ("published", [made[k] for k in ("sz_road", "zs_school", "fs_bridge", "gz_equipment",
                                                            "zs_road")])):
        seen, cursor = [], None
        for _ in range(5):
            params = {"limit": "2", "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = await (await client.get("/api/v1/tenders", params=params)).json()
            seen += [item["code"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected


async def test_listing_items_carry_category_names_and_exact_budgets(client, sessions, desk):
    await published_tender(client, sessions, desk, budget="12345678.91", lots=[])
    item = (await (await client.get("/api/v1/tenders")).json())["items"][0]
    assert item["budget"] == "12345678.91"
    assert item["category"] == {"family": "FJSZ", "family_zh": "房建市政", "subtype": "FJSZ-SG", "subtype_zh": "施工"}
    assert item["tenderer"] == "广东省交通运输厅直属工程处"


async def test_bad_listing_parameters_get_clear_4xx_codes(client):
    cases = [({"cursor": "not-a-cursor"}, 400, "invalid_cursor"), ({"status": "draft"}, 422, "status_not_public"),
             ({"status": "sleeping"}, 422, "unknown_status"), ({"category": "XXXX"}, 404, "unknown_family"),
             ({"limit": "1000"}, 422, "validation_failed"), ({"budget_min": "abc"}, 422, "validation_failed")]
    for params, status, code in cases:
        resp = await client.get("/api/v1/tenders", params=params)
        assert resp.status == status, params
        assert (await resp.json())["error"]["code"] == code, params


async def test_a_cursor_from_one_sort_order_is_refused_by_the_other(client, sessions, desk):
    await _seed(client, sessions, desk)
    page = await (await client.get("/api/v1/tenders", params={"limit": "1", "sort": "deadline"})).json()
    resp = await client.get("/api/v1/tenders", params={"sort": "published", "cursor": page["next_cursor"]})
    assert resp.status == 400


async def test_the_atom_feed_lists_published_tenders_newest_first_with_chinese_titles(client, sessions, desk):
    made = await _seed(client, sessions, desk)
    resp = await client.get("/api/v1/tenders/feed.atom")
    assert resp.status == 200
    assert resp.content_type == "application/atom+xml"
    root = ET.fromstring(await resp.read())
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{required}") is not None
    entries = root.findall(f"{ATOM}entry")
    titles = [e.find(f"{ATOM}title").text for e in entries]
    assert titles[0] == f"深圳市南山区滨海大道道路养护服务 Smart Road（{made['sz_road']}）"
    assert len(entries) == 5 and not any("草稿" in t for t in titles)
    ids = [e.find(f"{ATOM}id").text for e in entries]
    assert len(set(ids)) == 5
    assert all(e.find(f"{ATOM}updated") is not None and e.find(f"{ATOM}link").get("href") for e in entries)


async def test_a_longer_chinese_phrase_matches_as_a_substring_not_as_scattered_bigrams(client, sessions, desk):
    road = await published_tender(client, sessions, desk, title="中山路人行道改造工程", lots=[])
    await published_tender(client, sessions, desk, title="中山市东区山路修缮工程", lots=[])  # 中山 + 山路, apart
    assert await _codes(client, {"q": "中山路"}) == [road["code"]]
    assert len(await _codes(client, {"q": "山路"})) == 2


async def test_category_names_are_a_filter_not_keywords(client, sessions, desk):
    await published_tender(client, sessions, desk, title="中山市东区学校维修", lots=[])  # FJSZ-SG, 施工
    assert await _codes(client, {"q": "施工"}) == []
