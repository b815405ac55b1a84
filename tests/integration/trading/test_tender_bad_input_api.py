"""Bad tender input gets a clear 4xx with a stable code, and nothing is created or changed."""
import pytest

from tests.integration.trading.conftest import EVALUATION, create_draft, draft_body

BAD_DRAFTS = [
    ({"budget": "-1.00"}, 422, "invalid_budget"),
    ({"budget": "12.345"}, 422, "invalid_budget"),
    ({"budget": "lots"}, 422, "validation_failed"),
    ({"family": "ZFCG", "subtype": "FJSZ-SG"}, 422, "subtype_mismatch"),
    ({"subtype": "FJSZ-XX"}, 404, "unknown_subtype"),
    ({"method": "lottery"}, 422, "unknown_method"),
    ({"tenderer": "O-NOBODY"}, 422, "unknown_organisation"),
    ({"region_code": "zs"}, 422, "validation_failed"),
    ({"lots": [{"title": "一标段", "budget": "99999999.00"}]}, 422, "lot_budgets_exceed_budget"),
    ({"key_threshold": 4, "key_holder_count": 3}, 422, "invalid_key_split"),
    ({"key_threshold": 1, "key_holder_count": 3}, 422, "invalid_key_split"),
    ({"evaluation": {**EVALUATION, "price_weight": "50"}}, 422, "evaluation_total_not_100"),
    ({"evaluation": {"method": "guesswork"}}, 422, "invalid_evaluation"),
    ({"evaluation": {**EVALUATION, "criteria": [{"name": "技术", "max": "-60", "objective": False}]}}, 422,
     "invalid_evaluation"),
    ({"evaluation": {**EVALUATION, "price_formula": {"rule": "mean_benchmark", "k": "2", "e": "1"}}}, 422,
     "invalid_evaluation"),
    ({"bid_deadline_at": "2020-01-01T00:00:00+08:00"}, 422, "invalid_timeline"),
    ({"opening_at": "2020-01-01T00:00:00"}, 422, "validation_failed"),
    ({"surprise": True}, 422, "validation_failed"),
]


@pytest.mark.parametrize("change, status, code", BAD_DRAFTS, ids=[c for _, _, c in BAD_DRAFTS])
async def test_a_bad_draft_is_refused_with_a_stable_code_and_nothing_is_stored(client, desk, raw_conn, change,
                                                                               status, code):
    body = draft_body(**{"tenderer": desk.tenderer, **change})
    resp = await client.post("/api/v1/tenders", json=body, headers=desk.agent.headers)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"]["code"] == code
    assert await raw_conn.fetchval("SELECT count(*) FROM tender") == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_sequence") == 0


async def test_lowest_price_evaluation_needs_no_criteria(client, desk):
    draft = await create_draft(client, desk, evaluation={"method": "lowest_price"})
    assert draft["evaluation"] == {"method": "lowest_price"}


async def test_unknown_tenders_lots_and_documents_are_404(client, desk):
    for path in ("/api/v1/tenders/ZS-2026-FJSZ-99999", "/api/v1/tenders/ZS-2026-FJSZ-99999/ocds",
                 "/api/v1/documents/D-NOPE0000", "/api/v1/tenders/ZS-2026-FJSZ-99999/clarifications"):
        resp = await client.get(path)
        assert resp.status == 404, path
    resp = await client.post("/api/v1/tenders/ZS-2026-FJSZ-99999/publish", headers=desk.agent.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "tender_not_found"


async def test_a_refused_edit_changes_nothing(client, desk):
    draft = await create_draft(client, desk)
    resp = await client.patch(f"/api/v1/tenders/{draft['code']}", json={"budget": "1.00", "title": "新标题"},
                              headers=desk.agent.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "lot_budgets_exceed_budget"
    again = await (await client.get(f"/api/v1/tenders/{draft['code']}", headers=desk.agent.headers)).json()
    assert (again["budget"], again["title"]) == (draft["budget"], draft["title"])


async def test_cancelling_needs_a_reason(client, desk):
    draft = await create_draft(client, desk)
    resp = await client.post(f"/api/v1/tenders/{draft['code']}/cancel", json={}, headers=desk.agent.headers)
    assert resp.status == 422
    detail = await (await client.get(f"/api/v1/tenders/{draft['code']}", headers=desk.agent.headers)).json()
    assert detail["status"] == "draft"


async def test_every_trading_route_names_a_missing_tender_or_lot_with_one_code(client, desk):
    from tests.helpers import bidder
    missing = "ZS-2026-FJSZ-99999"
    for path in (f"/api/v1/tenders/{missing}/opening", f"/api/v1/tenders/{missing}/candidates",
                 f"/api/v1/tenders/{missing}/objections", f"/api/v1/tenders/{missing}/opened-bids"):
        resp = await client.get(path)
        assert (resp.status, (await resp.json())["error"]["code"]) == (404, "tender_not_found"), path
    resp = await client.get(f"/api/v1/tenders/{missing}/key-holders", headers=desk.agent.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "tender_not_found")
    someone = await bidder(client)
    resp = await client.post("/api/v1/lots/ZS-2026-FJSZ-99999-L01/registrations", headers=someone.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "lot_not_found")
    resp = await client.get(f"/api/v1/tenders/{missing}/lots/{missing}-L01/bid", headers=someone.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "tender_not_found")


async def test_the_mean_benchmark_formula_is_stored_as_sent_and_documented_in_openapi(client, desk):
    evaluation = {**EVALUATION, "aggregation": "trimmed_mean", "decimals": 3,
                  "price_formula": {"rule": "mean_benchmark", "k": "0.95", "e": "1.5", "drop_extremes": True}}
    draft = await create_draft(client, desk, evaluation=evaluation)
    assert draft["evaluation"] == evaluation
    spec = await (await client.get("/api/v1/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for shape in ("ComprehensiveScoring", "LowestEvaluatedPrice", "LowestPriceBenchmark", "MeanBenchmark"):
        assert shape in schemas, shape
    method = schemas["TenderIn"]["properties"]["evaluation"]
    assert method["discriminator"]["propertyName"] == "method"
    assert schemas["ComprehensiveScoring"]["properties"]["price_formula"]["discriminator"]["propertyName"] == "rule"
