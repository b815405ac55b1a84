"""The whole flow on real PostgreSQL, through HTTP only: a tender made and published through the API with 4
sealed bids; a committee of 5 drawn 2 + 3 from Guangzhou and Zhongshan; the opening; check-in, where a Zhongshan
expert declares a conflict and the quota's backup takes the seat; the chair elected; the qualification review
rejecting one bidder; scoring with a deviant score justified in writing; the report issued, signed by the 5 with
their own certificates and sealed, every signature validated by pyHanko and by poppler's pdfsig; candidates
published from it; an objection upheld, the lot back with its committee for re-evaluation, a second revision of the
report made stale by a member's written dissent, a third printing it, signed by four and refused by one without
reasons (deemed agreement, 实施条例 第53条), the candidates published again from it; a second objection answered;
the award notice; complete.

Bad input on the way, each refused with a clear 4xx and no state change: signing before scoring closes, a
non-member signing, and candidates typed by hand for a lot with a committee.

No state is written to the database by hand. Only the clock is: the bid deadline and the end of the publicity
period are moved into the past rather than waited for (days, in production).
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

from pypdf import PdfReader

from evidence.signing import verify_pdf
from tests.helpers import Actor
from web.keys import RECORDS

from .conftest import post
from .session_setup import Ready, accept_invitations, check_in_all, id_card_last4, member_experts

TECH, RECORD = "技术方案", "项目业绩"   # max 40 subjective; max 20 objective (EVALUATION, price weight 40)


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian: poppler-utils / libnss3-tools)"
    return path


def pdfsig_sections(path: Path, *extra: str) -> list[str]:
    run = subprocess.run([_tool("pdfsig"), *extra, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return re.split(r"^Signature #\d+:", run.stdout, flags=re.M)[1:]


async def put(client, url: str, actor: Actor, body: dict, status: int) -> dict:
    resp = await client.put(url, headers=actor.headers, json=body)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def get(client, url: str, actor: Actor | None, status: int = 200):
    resp = await client.get(url, headers=actor.headers if actor else {})
    assert resp.status == status, await resp.text()
    return await resp.read() if resp.content_type == "application/pdf" else await resp.json()


async def tender_status(client, code: str) -> str:
    return (await get(client, f"/api/v1/tenders/{code}", None))["status"]


async def validate_report(client, pdf: bytes, names: list[str], tmp_path: Path) -> None:
    """Every signature on the report valid for pyHanko and for pdfsig, the platform seal last, the members'
    certificates chaining to the platform root."""
    pki = client.app[RECORDS].pki
    report = await verify_pdf(pdf, pki)
    assert report.valid and report.sealed and len(report.signatures) == 6
    for sig in report.signatures:
        assert sig.intact and sig.valid and sig.trusted and sig.timestamp_valid, sig.problem
    assert sorted(s.signer_name for s in report.signatures[:5]) == sorted(names)
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    sections = pdfsig_sections(path)
    assert len(sections) == 6
    assert all("Signature Validation: Signature is Valid." in s for s in sections)
    assert "Total document signed" in sections[-1]
    nss = tmp_path / "nss"
    if not nss.exists():
        nss.mkdir()
        root = tmp_path / "root.pem"
        root.write_bytes(pki.root_cert_pem())
        subprocess.run([_tool("certutil"), "-N", "-d", f"sql:{nss}", "--empty-password"], check=True,
                       capture_output=True)
        subprocess.run([_tool("certutil"), "-A", "-d", f"sql:{nss}", "-n", "bidroom-root", "-t", "CT,C,C", "-i",
                        str(root)], check=True, capture_output=True)
    trusted = pdfsig_sections(path, "-nssdir", f"sql:{nss}")
    assert all("Certificate Validation: Certificate is Trusted." in s for s in trusted)
    for name in names:
        assert f"Signer Certificate Common Name: {name}" in "".join(trusted)


async def sign_all(client, url: str, members: dict[str, Actor]) -> dict:
    """Every member signs in turn; the last signature seals the report and closes the session."""
    order = sorted(members)
    for i, member in enumerate(order):
        state = await post(client, url + "/report/signatures", members[member], None, 200)
        assert member in state["signed"]
        assert state["sealed"] is (i == len(order) - 1)
    return state


async def test_the_full_flow_from_the_tender_to_complete_through_http(client, sessions, raw_conn, ready: Ready,
                                                                     tmp_path):
    # the tender, its 4 bids, the draw and the opening: session_setup.ready_lot, through the API
    info = ready.info
    agent, supervisor, url, code = info.agent, ready.supervisor, ready.url, info.code
    assert await tender_status(client, code) == "opened"

    # ---- check-in: a Zhongshan expert declares a conflict and the quota's backup takes the seat
    await post(client, url + "/committee", agent, {}, 200)
    await post(client, url + "/check-in/open", agent, None, 200)
    seated = await member_experts(raw_conn, ready.session_id)
    city = {e: await raw_conn.fetchval("SELECT city_code FROM expert WHERE public_id = $1", e) for e in seated.values()}
    assert sorted(city.values()) == ["440100", "440100", "442000", "442000", "442000"]
    leaving = next(e for e in seated.values() if city[e] == "442000")
    bidders = await get(client, url + "/declaration", ready.experts[leaving])
    left = await post(client, url + "/check-in", ready.experts[leaving],
                      {"id_card_last4": await id_card_last4(raw_conn, leaving), "commitment": True,
                       "conflicts": [bidders[0]["organisation_id"]], "note": "近三年曾在该投标人任职"}, 200)
    assert left["status"] == "withdrawn"
    backup = ready.backups["中山"]
    assert await accept_invitations(client, {backup: ready.experts[backup]}) == [backup]
    await post(client, url + "/committee", agent, {}, 200)
    await check_in_all(client, raw_conn, ready)
    started = await post(client, url + "/start", agent, None, 200)
    assert started["status"] == "in_progress"
    assert await tender_status(client, code) == "evaluating"   # opened -> evaluating when the session starts

    by_member = {m: ready.experts[e] for m, e in (await member_experts(raw_conn, ready.session_id)).items()}
    assert len(by_member) == 5 and backup in (await member_experts(raw_conn, ready.session_id)).values()
    m = sorted(by_member)
    names = [await raw_conn.fetchval("SELECT name FROM expert WHERE public_id = $1", e)
             for e in (await member_experts(raw_conn, ready.session_id)).values()]

    # ---- the chair, by majority
    for voter in m[:3]:
        standing = await post(client, url + "/chair/votes", by_member[voter], {"candidate": m[0]}, 200)
    assert (standing["chair"], standing["how"]) == (m[0], "majority")
    chair = by_member[m[0]]

    # bad input: signing before scoring closes (409) and a non-member signing (403); nothing is recorded
    refused = await post(client, url + "/report/signatures", chair, None, 409)
    assert refused["error"]["code"] == "scoring_not_closed"
    refused = await post(client, url + "/report", chair, None, 409)
    assert refused["error"]["code"] == "scoring_not_closed"
    for outsider in (ready.experts[leaving], agent, info.bidders[0]):
        refused = await post(client, url + "/report/signatures", outsider, None, 403)
        assert refused["error"]["code"] == "not_a_member"

    # ---- qualification and compliance review: one bidder rejected by majority, with reasons
    ids = [b["organisation_id"] for b in bidders]
    rejected = ids[3]
    await put(client, url + "/review/requirements", agent,
              {"requirements": [{"code": "Q1", "title": "企业资质", "kind": "qualification"},
                                {"code": "C1", "title": "投标保证金", "kind": "compliance"}]}, 200)
    for i, member in enumerate(m):
        ballots = [{"bidder": x, "requirement": r, "passed": not (x == rejected and r == "C1" and i < 4),
                    "reason": "投标保证金未按招标文件要求提交" if x == rejected and r == "C1" and i < 4 else None}
                   for x in ids for r in ("Q1", "C1")]
        await post(client, url + "/review/ballots", by_member[member], {"ballots": ballots}, 200)
    review = await post(client, url + "/review/close", chair, None, 200)
    assert [b["bidder"] for b in review["result"]["bidders"] if not b["passed"]] == [rejected]
    compliant = [x for x in ids if x != rejected]

    # ---- scoring: m[4] scores the first bidder far below the others (畸低, not low), then justifies it
    tech = {compliant[0]: ["34", "35", "35", "36", "26"], compliant[1]: ["30"] * 5, compliant[2]: ["28"] * 5}
    for i, member in enumerate(m):
        for x in compliant:
            await put(client, url + f"/sheets/{x}", by_member[member],
                      {"scores": {TECH: tech[x][i], RECORD: "18"}, "submit": True}, 200)
    refused = await post(client, url + "/scoring/close", chair, None, 409)
    assert refused["error"]["code"] == "flags_open"
    flags = await get(client, url + "/flags", supervisor)
    assert [(f["kind"], f["member"], f["bidder"]) for f in flags["open"]] == [("deviant_score", m[4], compliant[0])]
    justified = await post(client, url + "/flags/justify", by_member[m[4]],
                           {"bidder": compliant[0], "criterion": TECH, "kind": "deviant_score",
                            "text": "该投标人施工组织设计缺少雨季施工措施，技术方案评分偏低"}, 200)
    assert justified["open"] == []
    closed = await post(client, url + "/scoring/close", chair, None, 200)
    assert closed["status"] == "scoring_closed"
    ranking = [line["bidder"] for line in closed["ranking"]]
    assert sorted(ranking) == sorted(compliant)

    # ---- the report: issued by the chair, signed by the 5, sealed by the platform last; the session closes
    refused = await post(client, url + "/report/signatures", chair, None, 409)
    assert refused["error"]["code"] == "report_not_issued"
    issued = await post(client, url + "/report", chair, None, 201)
    assert (issued["session_status"], issued["revision"], issued["supersedes"]) == ("signing", 1, None)
    assert sorted(issued["pending"]) == m and issued["signed"] == []
    refused = await post(client, url + "/report", chair, None, 409)
    assert refused["error"]["code"] == "report_already_issued"
    refused = await post(client, url + "/report/signatures", ready.experts[leaving], None, 403)
    assert refused["error"]["code"] == "not_a_member"
    sealed = await sign_all(client, url, by_member)
    assert sealed["session_status"] == "closed" and sealed["pending"] == [] and len(sealed["signed"]) == 5
    first_report = sealed["record_no"]
    pdf = await get(client, f"/api/v1/records/{first_report}", supervisor)
    await validate_report(client, pdf, names, tmp_path)
    # the report's audience: the committee, the tender's agents and supervisors; not bidders, not the public
    for reader in (agent, by_member[m[2]]):
        assert (await get(client, f"/api/v1/records/{first_report}", reader))[:5] == b"%PDF-"
    await get(client, f"/api/v1/records/{first_report}", info.bidders[1], 403)
    await get(client, f"/api/v1/records/{first_report}", None, 403)

    # bad input: candidates typed by hand for a lot with a committee; nothing changes
    opened = (await get(client, f"/api/v1/tenders/{code}/opened-bids", None))["bids"]
    typed = [{"lot": info.lot_id, "bid": b["bid"], "rank": i + 1} for i, b in enumerate(opened[:3])]
    refused = await post(client, f"/api/v1/tenders/{code}/candidates", agent, {"candidates": typed}, 409)
    assert refused["error"]["code"] == "committee_report_required"
    assert "第三十七条" in refused["error"]["details"]["statute"]
    assert await tender_status(client, code) == "evaluating"
    assert (await get(client, f"/api/v1/tenders/{code}/candidates", None))["candidates"] == []

    # ---- candidates: the top 3 of the sealed report
    published = await post(client, url + "/candidates", agent, {"publicity_days": 3}, 201)
    listed = published["candidates"]
    assert [c["bidder"] for c in listed] == ranking[:3] and [c["rank"] for c in listed] == [1, 2, 3]
    assert {(c["report_no"], c["report_revision"]) for c in listed} == {(first_report, 1)}
    assert await tender_status(client, code) == "candidates_published"
    refused = await post(client, url + "/re-evaluation", agent, {"reason": "复核"}, 409)
    assert refused["error"]["code"] == "not_sent_back"   # only an upheld objection sends the lot back

    # ---- an objection upheld (实施条例 第54条): the lot goes back to its committee
    objector = info.bidders[1]  # any bidder of the tender may object
    objection = await post(client, f"/api/v1/tenders/{code}/objections", objector,
                           {"body": "第一名的技术方案评分与其施工组织设计不符，请复核"}, 201)
    answered = await post(client, f"/api/v1/objections/{objection['objection']}/answer", agent,
                          {"answer": "经复核，异议成立，退回原评标委员会重新评审。", "upheld": True}, 200)
    assert answered["upheld"] is True
    assert await tender_status(client, code) == "evaluating"
    assert (await get(client, f"/api/v1/tenders/{code}/candidates", None))["candidates"] == []
    reopened = await post(client, url + "/re-evaluation", agent, {"reason": f"异议 {objection['objection']} 成立"}, 200)
    assert reopened["status"] == "in_progress"
    returned = await post(client, url + "/sheets/return", chair,
                          {"member_id": m[4], "bidder": compliant[0], "reason": "异议成立，请复核技术方案评分"}, 200)
    assert returned["status"] == "returned"
    await put(client, url + f"/sheets/{compliant[0]}", by_member[m[4]], {"scores": {TECH: "35"}, "submit": True}, 200)
    again = await post(client, url + "/scoring/close", chair, None, 200)
    second = await post(client, url + "/report", chair, None, 201)
    assert (second["revision"], second["supersedes"]) == (2, first_report)
    # m[3] states a dissent in writing (实施条例 第53条): the rendered revision goes stale, the next one prints it
    await post(client, url + "/report/signatures", by_member[m[1]], None, 200)
    refused = await post(client, url + "/report/dissent", by_member[m[3]], {"reasons": "   "}, 422)
    assert refused["error"]["code"] == "validation_failed"
    reasons = "不同意重新评审后的排序：第二名的技术方案明显优于第一名。"
    stale = await post(client, url + "/report/dissent", by_member[m[3]], {"reasons": reasons}, 200)
    assert stale["stale"] and stale["dissented"] == [m[3]]
    refused = await post(client, url + "/report/signatures", by_member[m[2]], None, 409)
    assert refused["error"]["code"] == "report_stale"
    third = await post(client, url + "/report", chair, None, 201)
    assert (third["revision"], third["supersedes"], third["signed"]) == (3, second["record_no"], [])
    # four sign, the dissenter among them; m[2] refuses without reasons: deemed agreement, the seal follows
    for member in (m[0], m[1], m[3], m[4]):
        state = await post(client, url + "/report/signatures", by_member[member], None, 200)
    assert state["pending"] == [m[2]] and not state["sealed"]
    sealed = await post(client, url + "/report/refusal", by_member[m[2]], None, 200)
    assert sealed["sealed"] and sealed["refused"] == [m[2]] and sealed["session_status"] == "closed"
    third_report = sealed["record_no"]
    pdf = await get(client, f"/api/v1/records/{third_report}", supervisor)
    report = await verify_pdf(pdf, client.app[RECORDS].pki)
    assert report.valid and report.sealed and len(report.signatures) == 5
    assert all(sig.intact and sig.valid and sig.trusted for sig in report.signatures)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert reasons in text and "第3版" in text and second["record_no"] in text
    republished = await post(client, url + "/candidates", agent, {"publicity_days": 3}, 201)
    assert [c["bidder"] for c in republished["candidates"]] == [line["bidder"] for line in again["ranking"]][:3]
    assert {(c["report_no"], c["report_revision"]) for c in republished["candidates"]} == {(third_report, 3)}
    assert await tender_status(client, code) == "candidates_published"

    # ---- a second objection, answered (not upheld); then the award once the publicity is over
    objection = await post(client, f"/api/v1/tenders/{code}/objections", info.bidders[2],
                           {"body": "第二名的项目业绩证明材料不全"}, 201)
    refused = await post(client, f"/api/v1/tenders/{code}/award", agent, None, 409)
    assert refused["error"]["code"] == "publicity_not_over"
    await raw_conn.execute("UPDATE award_candidate SET publicity_ends_at = now() - interval '1 second' "
                           "WHERE tender_id = $1", info.tender_id)   # the clock: 3 days pass
    refused = await post(client, f"/api/v1/tenders/{code}/award", agent, None, 409)
    assert refused["error"]["code"] == "objections_pending"
    answered = await post(client, f"/api/v1/objections/{objection['objection']}/answer", agent,
                          {"answer": "经核查，业绩证明材料齐全，异议不成立。"}, 200)
    assert answered["upheld"] is False
    awarded = await post(client, f"/api/v1/tenders/{code}/award", agent, None, 201)
    [award] = awarded["awards"]
    assert award["bidder"] == republished["candidates"][0]["bidder"]
    assert await tender_status(client, code) == "awarded"
    done = await post(client, f"/api/v1/tenders/{code}/complete", agent, {"note": "合同编号 ZSRM-2026-018"}, 200)
    assert done["status"] == "complete" and await tender_status(client, code) == "complete"

    # ---- the ledger holds every step
    tender_steps = [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 AND action LIKE 'tender.%' ORDER BY seq", f"tender:{code}")]
    expected = ["tender.evaluating", "tender.lot_candidates", "tender.candidates_published", "tender.objection",
                "tender.objection_answer", "tender.evaluating", "tender.lot_candidates", "tender.candidates_published",
                "tender.objection", "tender.objection_answer", "tender.awarded", "tender.complete"]
    assert tender_steps[-len(expected):] == expected
    session_steps = [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 AND action LIKE 'evaluation.%' ORDER BY seq",
        f"evaluation_session:{ready.session_id}")]
    for step in ("evaluation.member.withdraw", "evaluation.flag.justify", "evaluation.scoring.closed",
                 "evaluation.report.issue", "evaluation.session.signing", "evaluation.session.closed",
                 "evaluation.report.candidates", "evaluation.session.re_evaluation", "evaluation.sheet.return"):
        assert step in session_steps, step
    issues = [json.loads(r["payload"]) for r in await raw_conn.fetch(
        "SELECT payload FROM audit_entry WHERE entity = $1 AND action = 'evaluation.report.issue' ORDER BY seq",
        f"evaluation_session:{ready.session_id}")]
    assert [(p["record_no"], p["revision"], p["supersedes"]) for p in issues] == [
        (first_report, 1, None), (second["record_no"], 2, first_report), (third_report, 3, second["record_no"])]
    upheld = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE entity = $1 AND action = 'tender.evaluating' ORDER BY seq DESC "
        "LIMIT 1", f"tender:{code}"))
    assert upheld["re_evaluation"] == info.lot_id and "第五十四条" in upheld["statute"]
    dissent = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE entity = $1 AND action = 'evaluation.report.dissent'",
        f"record:{second['record_no']}"))
    assert (dissent["member"], dissent["reasons"]) == (m[3], reasons)
    refusal = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE entity = $1 AND action = 'evaluation.report.refuse'",
        f"record:{third_report}"))
    assert (refusal["member"], refusal["deemed"]) == (m[2], "agreement")
