"""OCDS over HTTP: record packages per tender and paged release packages validate against OCDS 1.1.5."""
import json
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource

from tests.integration.trading.conftest import create_draft, published_tender
from web.keys import SCHEDULER

SCHEMAS = Path(__file__).resolve().parents[2] / "ocds_schema"
RELEASE_SCHEMA_URL = "https://standard.open-contracting.org/schema/1__1__5/release-schema.json"


def _load(name):
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validators():
    registry = Registry().with_resource(RELEASE_SCHEMA_URL, Resource.from_contents(_load("release-schema.json")))
    return {name: Draft4Validator(_load(f"{name}-package-schema.json"), registry=registry)
            for name in ("record", "release")}


def _errors(validator, instance):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


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


async def _bid_rows(raw_conn, code, user_public_id, orgs, *, candidates=False, award=False):
    """Opened bids, and candidates and an award, written directly: these tests cover the OCDS view of them."""
    tender_id, lot_id = await raw_conn.fetchrow(
        "SELECT t.id, l.id FROM tender t JOIN lot l ON l.tender_id = t.id WHERE t.code = $1 ORDER BY l.lot_no "
        "LIMIT 1", code)
    user_id = await raw_conn.fetchval("SELECT id FROM app_user WHERE public_id = $1", user_public_id)
    bid_ids = []
    for i, org in enumerate(orgs):
        org_id = await raw_conn.fetchval("SELECT id FROM organisation WHERE public_id = $1", org)
        bid_ids.append(await raw_conn.fetchval(
            "INSERT INTO bid (public_id, tender_id, lot_id, organisation_id, submitted_by_id, status, storage_key, "
            "sha256, size, sealed_by, price, opened_at) VALUES ($1, $2, $3, $4, $5, 'opened', 'k', $6, 10, "
            "'server', $7, now()) RETURNING id", f"B-{code}-{i}", tender_id, lot_id, org_id, user_id, "0" * 64,
            Decimal("7000000.00") + i))
    await raw_conn.execute("INSERT INTO tender_opening (tender_id, started_by_id, completed_at, outcome, valid_bids)"
                           " VALUES ($1, $2, now(), 'opened', $3)", tender_id, user_id, len(orgs))
    if candidates:
        for rank, bid_id in enumerate(bid_ids, start=1):
            await raw_conn.execute("INSERT INTO award_candidate (tender_id, lot_id, bid_id, rank, publicity_ends_at)"
                                   " VALUES ($1, $2, $3, $4, now() + interval '3 days')", tender_id, lot_id, bid_id,
                                   rank)
    if award:
        await raw_conn.execute("INSERT INTO award (tender_id, lot_id, bid_id, price, record_no) VALUES "
                               "($1, $2, $3, $4, 'R-TEST')", tender_id, lot_id, bid_ids[0], Decimal("7000000.00"))


async def test_records_after_the_opening_disclose_bidders_then_candidates_then_the_winner(
        client, sessions, desk, raw_conn, validators):
    from tests.integration.trading.conftest import organisation
    orgs = [await organisation(sessions, f"投标单位{i}建设有限公司") for i in range(3)]
    seen = {}
    for status, candidates, award in (("opening", None, None), ("opened", False, False), ("evaluating", False, False),
                                      ("candidates_published", True, False), ("awarded", True, True),
                                      ("complete", True, True), ("failed", False, False)):
        tender = await published_tender(client, sessions, desk)
        if candidates is not None:  # while opening, the bids are still sealed
            await _bid_rows(raw_conn, tender["code"], desk.agent.public_id, orgs, candidates=candidates, award=award)
        await raw_conn.execute("UPDATE tender SET status = $1 WHERE code = $2", status, tender["code"])
        package = await _json(await client.get(f"/api/v1/tenders/{tender['code']}/ocds"))
        assert _errors(validators["record"], package) == [], status
        seen[status] = package["records"][0]["compiledRelease"]
    assert "tenderers" not in seen["opening"]["tender"]
    assert seen["opened"]["tender"]["numberOfTenderers"] == 3 and "awards" not in seen["opened"]
    assert [a["status"] for a in seen["candidates_published"]["awards"]] == ["pending"] * 3
    assert [a["status"] for a in seen["awarded"]["awards"]] == ["active", "unsuccessful", "unsuccessful"]
    winner = next(p for p in seen["awarded"]["parties"] if "supplier" in p["roles"])
    assert winner["id"] == orgs[0]
    assert seen["failed"]["tender"]["status"] == "unsuccessful"
