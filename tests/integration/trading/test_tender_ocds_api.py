"""OCDS over HTTP: record packages per tender and paged release packages validate against OCDS 1.1.5. The states
after the opening, each reached through the API, are checked in tests/integration/evaluation/test_ocds_after_opening.py
and, opening and failed, in tests/integration/trading_bids/test_bids_opening.py and test_bids_statutory.py."""
import json
from decimal import Decimal

import pytest

from tests.integration.trading.conftest import create_draft, published_tender
from tests.ocds_validation import package_validators, schema_errors as _errors
from web.keys import SCHEDULER


@pytest.fixture(scope="module")
def validators():
    return package_validators()


async def _json(resp):
    assert resp.status == 200, await resp.text()
    return json.loads(await resp.text(), parse_float=Decimal)


async def _close(client, raw_conn, code):
    await raw_conn.execute("UPDATE tender SET bid_deadline_at = now() - interval '1 second', opening_at = now() "
                           "WHERE code = $1", code)
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() WHERE kind = 'trading.close_bidding' "
                           "AND status = 'pending'")
    await client.app[SCHEDULER].run_due()


async def test_record_packages_validate_in_every_reachable_state(client, sessions, desk, raw_conn, validators):
    draft = await create_draft(client, desk)
    await client.post(f"/api/v1/tenders/{draft['code']}/documents", data=b"%PDF-1.7 test", params={
        "filename": "招标文件.pdf"}, headers={**desk.agent.headers, "Content-Type": "application/octet-stream"})
    states = {"draft": await _json(await client.get(f"/api/v1/tenders/{draft['code']}/ocds",
                                                    headers=desk.agent.headers))}
    published = await published_tender(client, sessions, desk)
    states["published"] = await _json(await client.get(f"/api/v1/tenders/{published['code']}/ocds"))
    closed = await published_tender(client, sessions, desk)
    await _close(client, raw_conn, closed["code"])
    states["closed"] = await _json(await client.get(f"/api/v1/tenders/{closed['code']}/ocds"))
    await client.post(f"/api/v1/tenders/{closed['code']}/cancel", json={"reason": "投诉成立"},
                      headers=desk.agent.headers)
    states["cancelled"] = await _json(await client.get(f"/api/v1/tenders/{closed['code']}/ocds"))
    for status, package in states.items():
        assert _errors(validators["record"], package) == [], status
        compiled = package["records"][0]["compiledRelease"]
        assert compiled["tender"]["statusDetails"] == status
    draft_release = states["draft"]["records"][0]["compiledRelease"]
    assert draft_release["tender"]["documents"][0]["format"] == "application/pdf"
    assert draft_release["tender"]["value"] == {"amount": Decimal("12345678.90"), "currency": "CNY"}
    assert states["cancelled"]["records"][0]["compiledRelease"]["tender"]["status"] == "cancelled"


async def test_a_drafts_record_is_not_public(client, desk):
    draft = await create_draft(client, desk)
    assert (await client.get(f"/api/v1/tenders/{draft['code']}/ocds")).status == 404


async def test_release_packages_page_through_public_tenders_by_update_time(client, sessions, desk, validators):
    codes = [(await published_tender(client, sessions, desk, title=f"中山市第{i}期道路工程"))["code"] for i in range(3)]
    await create_draft(client, desk)
    seen, url = [], "/api/v1/ocds/releases?limit=2"
    while url:
        resp = await client.get(url)
        package = await _json(resp)
        assert _errors(validators["release"], package) == []
        seen += [r["tender"]["id"] for r in package["releases"]]
        nxt = package.get("links", {}).get("next")
        url = nxt[nxt.index("/api/"):] if nxt else None
    assert seen == codes


async def test_release_packages_filter_by_update_time(client, sessions, desk):
    first = await published_tender(client, sessions, desk)
    package = await _json(await client.get("/api/v1/ocds/releases", params={"since": first["updated_at"]}))
    assert [r["tender"]["id"] for r in package["releases"]] == [first["code"]]
    later = await _json(await client.get("/api/v1/ocds/releases", params={"since": "2099-01-01T00:00:00+00:00"}))
    assert later["releases"] == []
