"""The two ways a member may not simply sign the evaluation report, over HTTP (招标投标法实施条例 第53条):

- a refusal to sign without written reasons counts as agreement with the result: it is recorded, and it does not
  block the platform's seal;
- a dissent is stated in writing with its reasons: the revision already rendered can no longer be signed, and the
  next revision prints the dissent; the dissenter signs it like everyone else.

Each runs on a copy of the `scored` lot (session_setup.score: review passed, sheets submitted, scoring closed).
"""
from __future__ import annotations

import io
import json

from pypdf import PdfReader

from evidence.signing import verify_pdf
from web.keys import RECORDS

from .conftest import post


async def _pdf(client, record_no: str, actor) -> bytes:
    resp = await client.get(f"/api/v1/records/{record_no}", headers=actor.headers)
    assert resp.status == 200, await resp.text()
    return await resp.read()


async def _ledger(raw_conn, action: str, entity: str) -> list[dict]:
    return [json.loads(r["payload"]) for r in await raw_conn.fetch(
        "SELECT payload FROM audit_entry WHERE action = $1 AND entity = $2 ORDER BY seq", action, entity)]


async def test_a_refusal_without_reasons_counts_as_agreement_and_the_seal_follows(client, raw_conn, scored):
    s = scored
    url, agent, by_member = s.ready.url, s.ready.info.agent, s.members
    m = sorted(by_member)
    issued = await post(client, url + "/report", by_member[s.chair], None, 201)
    record_no = issued["record_no"]
    assert sorted(issued["pending"]) == m and issued["refused"] == []

    # only members refuse; nothing is recorded for the others
    for outsider in (agent, s.ready.supervisor, s.ready.outsider):
        refused = await post(client, url + "/report/refusal", outsider, None, 403)
        assert refused["error"]["code"] in ("not_a_member", "role_forbidden")
    assert await _ledger(raw_conn, "evaluation.report.refuse", f"record:{record_no}") == []

    # m[4] refuses while others are still to sign: recorded, deemed agreement, nothing sealed yet
    state = await post(client, url + "/report/refusal", by_member[m[4]], None, 200)
    assert state["refused"] == [m[4]] and sorted(state["pending"]) == m[:4] and not state["sealed"]
    again = await post(client, url + "/report/refusal", by_member[m[4]], None, 409)
    assert again["error"]["code"] == "already_refused"
    [entry] = await _ledger(raw_conn, "evaluation.report.refuse", f"record:{record_no}")
    assert (entry["member"], entry["deemed"]) == (m[4], "agreement") and "第53条" in entry["rule"]

    # a member who signed cannot refuse afterwards
    await post(client, url + "/report/signatures", by_member[m[0]], None, 200)
    refused = await post(client, url + "/report/refusal", by_member[m[0]], None, 409)
    assert refused["error"]["code"] == "already_signed"

    # the last signature completes the report: the refusal does not block the seal, the session closes
    for member in m[1:4]:
        state = await post(client, url + "/report/signatures", by_member[member], None, 200)
    assert state["sealed"] and state["pending"] == [] and state["refused"] == [m[4]]
    assert state["signed"] == m[:4] and state["session_status"] == "closed"
    [final] = await _ledger(raw_conn, "evaluation.report.finalise", f"record:{record_no}")
    assert final["refused_deemed_agreement"] == [m[4]] and final["signed"] == m[:4]
    checked = await verify_pdf(await _pdf(client, record_no, s.ready.supervisor), client.app[RECORDS].pki)
    assert checked.valid and checked.sealed and len(checked.signatures) == 5   # four members and the seal
    assert all(sig.intact and sig.valid and sig.trusted for sig in checked.signatures)

    # sealed: no refusal, signature or dissent any more; the candidates follow from the report
    refused = await post(client, url + "/report/refusal", by_member[m[4]], None, 409)
    assert refused["error"]["code"] == "record_sealed"
    refused = await post(client, url + "/report/dissent", by_member[m[4]], {"reasons": "不同意排序"}, 409)
    assert refused["error"]["code"] == "record_sealed"
    published = await post(client, url + "/candidates", agent, {"publicity_days": 3}, 201)
    assert {c["report_no"] for c in published["candidates"]} == {record_no}


async def test_a_dissent_needs_written_reasons_and_the_next_revision_prints_it(client, raw_conn, scored):
    s = scored
    url, agent, by_member = s.ready.url, s.ready.info.agent, s.members
    m = sorted(by_member)
    chair = by_member[s.chair]
    first = await post(client, url + "/report", chair, None, 201)
    await post(client, url + "/report/signatures", by_member[m[1]], None, 200)

    # a dissent without reasons, from a non-member, or from a member who already signed: refused, nothing changes
    for body in ({"reasons": ""}, {"reasons": "   "}, {}):
        refused = await post(client, url + "/report/dissent", by_member[m[3]], body, 422)
        assert refused["error"]["code"] == "validation_failed"
    refused = await post(client, url + "/report/dissent", agent, {"reasons": "不同意"}, 403)
    assert refused["error"]["code"] in ("not_a_member", "role_forbidden")
    refused = await post(client, url + "/report/dissent", by_member[m[1]], {"reasons": "不同意"}, 409)
    assert refused["error"]["code"] == "already_signed"
    assert await _ledger(raw_conn, "evaluation.report.dissent", f"record:{first['record_no']}") == []

    # m[3] dissents in writing: the rendered revision goes stale; nobody signs, refuses or seals it any more
    reasons = "不同意评审结果：第三名的项目业绩证明材料与招标文件要求不符，应予扣分。"
    stale = await post(client, url + "/report/dissent", by_member[m[3]], {"reasons": reasons}, 200)
    assert stale["stale"] and stale["dissented"] == [m[3]] and not stale["sealed"]
    for path in ("/report/signatures", "/report/refusal"):
        refused = await post(client, url + path, by_member[m[2]], None, 409)
        assert refused["error"]["code"] == "report_stale"
    [entry] = await _ledger(raw_conn, "evaluation.report.dissent", f"record:{first['record_no']}")
    assert (entry["member"], entry["reasons"]) == (m[3], reasons) and "第53条" in entry["rule"]

    # the next revision prints the dissent and names the one it supersedes; all five sign it, the dissenter too
    second = await post(client, url + "/report", chair, None, 201)
    assert (second["revision"], second["supersedes"], second["signed"]) == (2, first["record_no"], [])
    assert not second["stale"] and sorted(second["pending"]) == m
    for member in m:
        state = await post(client, url + "/report/signatures", by_member[member], None, 200)
    assert state["sealed"] and state["signed"] == m and state["session_status"] == "closed"
    pdf = await _pdf(client, second["record_no"], s.ready.supervisor)
    checked = await verify_pdf(pdf, client.app[RECORDS].pki)
    assert checked.valid and checked.sealed and len(checked.signatures) == 6
    assert all(sig.intact and sig.valid and sig.trusted for sig in checked.signatures)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert reasons in text and "第2版" in text and first["record_no"] in text
    # the first revision stays on record, unsealed, with the dissent that made it stale
    assert await raw_conn.fetchval("SELECT status FROM record WHERE record_no = $1", first["record_no"]) == "signing"
