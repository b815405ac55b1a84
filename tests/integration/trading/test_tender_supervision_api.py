"""Supervision is per tender (行政监督部门, 招标投标法实施条例 第4条): a tender names its supervising organisation,
which must have supervisor accounts, and cannot be published without one."""
from tests.integration.trading.conftest import create_draft, draft_body, organisation, prepare_keys


async def _refused(client, desk, body, code):
    before = await client.get("/api/v1/tenders", params={"limit": 100})
    resp = await client.post("/api/v1/tenders", json=body, headers=desk.agent.headers)
    error = (await resp.json())["error"]
    assert (resp.status, error["code"]) == (422, code), error
    assert error["details"]["field"] == "supervisor_organisation"
    return before


async def test_the_supervising_organisation_must_exist_and_have_supervisors(client, sessions, desk, raw_conn):
    no_supervisors = await organisation(sessions, "中山市某建设有限公司")
    await _refused(client, desk, draft_body(desk.tenderer, supervisor_organisation="ORG-NOSUCH1"),
                   "unknown_organisation")
    await _refused(client, desk, draft_body(desk.tenderer, supervisor_organisation=no_supervisors),
                   "not_a_supervising_organisation")
    assert await raw_conn.fetchval("SELECT count(*) FROM tender") == 0
    draft = await create_draft(client, desk)
    assert draft["supervisor_organisation"]["organisation_id"] == desk.supervision
    resp = await client.patch(f"/api/v1/tenders/{draft['code']}", json={"supervisor_organisation": no_supervisors},
                              headers=desk.agent.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "not_a_supervising_organisation"
    detail = await (await client.get(f"/api/v1/tenders/{draft['code']}", headers=desk.agent.headers)).json()
    assert detail["supervisor_organisation"]["organisation_id"] == desk.supervision


async def test_a_tender_without_a_supervising_organisation_is_not_published(client, sessions, desk, raw_conn):
    draft = await create_draft(client, desk, supervisor_organisation=None)
    assert draft["supervisor_organisation"] is None
    code = draft["code"]
    resp = await client.post(f"/api/v1/tenders/{code}/publish", headers=desk.agent.headers)
    error = (await resp.json())["error"]
    assert (resp.status, error["code"]) == (422, "supervisor_organisation_required"), error
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", code) == "draft"
    resp = await client.patch(f"/api/v1/tenders/{code}", json={"supervisor_organisation": desk.supervision},
                              headers=desk.agent.headers)
    assert resp.status == 200, await resp.text()
    await prepare_keys(client, sessions, desk, code)
    resp = await client.post(f"/api/v1/tenders/{code}/publish", headers=desk.agent.headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["supervisor_organisation"]["organisation_id"] == desk.supervision
