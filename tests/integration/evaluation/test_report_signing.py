"""The evaluation report on real PostgreSQL: issued unsigned, signed by each member with their own certificate,
sealed last; every signature validated by pyHanko and by poppler's pdfsig, every revision passing `qpdf --check`.
"""
from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.errors import Conflict, Forbidden, Unprocessable
from core.principal import Principal
from evaluation.report import build_report, report_signers
from evaluation.report_signing import (DISSENT, REFUSE, dissents_filed, file_dissent, finalise, issue_report,
                                       refuse_to_sign, sign_report, signing_state)
from evaluation.score_record import verify
from evidence.records import RECORD_ATTACHMENT, SEAL_FIELD
from evidence.records_service import get_record
from evidence.signing import verify_pdf
from tests.unit.evaluation.test_report import MEMBERS, pdf_text, sample_input
from web.keys import RECORDS

ENTITY = "evaluation_session:S-7Q4M2K"
SIGNERS = report_signers(sample_input())


def principal(public_id: str, n: int = 1) -> Principal:
    return Principal(user_id=n, public_id=public_id, organisation_id=None, roles=frozenset({"expert"}))


CHAIR = principal("E-GZ0001")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian: qpdf / poppler-utils / libnss3-tools)"
    return path


def qpdf_check(pdf: bytes, tmp: Path) -> None:
    path = tmp / "check.pdf"
    path.write_bytes(pdf)
    run = subprocess.run([_tool("qpdf"), "--check", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No syntax or stream encoding errors found" in run.stdout


async def _issue(client, sessions):
    ctx = client.app[RECORDS]
    async with sessions() as session, session.begin():
        record = await issue_report(session, ctx, build_report(sample_input()), who=CHAIR, entity=ENTITY)
        return ctx, record.record_no


async def _sign(sessions, ctx, record_no: str, public_id: str):
    async with sessions() as session, session.begin():
        record = await get_record(session, record_no)
        record = await sign_report(session, ctx, record, SIGNERS, who=principal(public_id))
        return await ctx.load(record.storage_key)


async def _finalise(sessions, ctx, record_no: str):
    async with sessions() as session, session.begin():
        record = await finalise(session, ctx, await get_record(session, record_no), SIGNERS, who=CHAIR)
        return await ctx.load(record.storage_key)


async def _actions(raw_conn, record_no: str) -> list[str]:
    return [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", f"record:{record_no}")]


def _pdfsig(path: Path, *extra: str) -> list[str]:
    run = subprocess.run([_tool("pdfsig"), *extra, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return re.split(r"^Signature #\d+:", run.stdout, flags=re.M)[1:]


async def test_five_members_sign_in_turn_then_the_seal_and_every_signature_validates(client, sessions, raw_conn,
                                                                                     tmp_path):
    ctx, record_no = await _issue(client, sessions)
    async with sessions() as session:
        record = await get_record(session, record_no)
        assert record.status == "signing" and record.signers == []
        rendered = await ctx.load(record.storage_key)
    qpdf_check(rendered, tmp_path)
    assert (await verify_pdf(rendered, ctx.pki)).signatures == []

    revisions = [rendered]
    # members sign in an order of their own, not the table's
    for m in (MEMBERS[2], MEMBERS[0], MEMBERS[4], MEMBERS[1], MEMBERS[3]):
        revisions.append(await _sign(sessions, ctx, record_no, m.public_id))
        assert revisions[-1].startswith(revisions[-2])   # an incremental update: earlier bytes untouched
        qpdf_check(revisions[-1], tmp_path)
    final = await _finalise(sessions, ctx, record_no)
    assert final.startswith(revisions[-1])
    qpdf_check(final, tmp_path)

    report = await verify_pdf(final, ctx.pki)
    assert report.valid and report.sealed
    assert [s.signer_public_id for s in report.signatures] == [
        "E-ZS0003", "E-GZ0001", "U-TR0005", "E-GZ0002", "E-ZS0004", None]
    assert [s.signer_name for s in report.signatures][:5] == ["张伟", "欧阳娜娜", "王芳", "司马相如", "李娜"]
    assert [s.field_name for s in report.signatures] == ["signer-3", "signer-1", "signer-5", "signer-2",
                                                         "signer-4", SEAL_FIELD]
    for sig in report.signatures:
        assert sig.intact and sig.valid and sig.trusted and sig.timestamp_valid and sig.has_validation_data
        assert sig.bottom_line, sig.problem

    path = tmp_path / f"{record_no}.pdf"
    path.write_bytes(final)
    sections = _pdfsig(path)
    assert len(sections) == 6
    assert all("Signature Validation: Signature is Valid." in s for s in sections)
    assert "Total document signed" in sections[-1]
    nss = tmp_path / "nss"
    nss.mkdir()
    root = tmp_path / "root.pem"
    root.write_bytes(ctx.pki.root_cert_pem())
    subprocess.run([_tool("certutil"), "-N", "-d", f"sql:{nss}", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run([_tool("certutil"), "-A", "-d", f"sql:{nss}", "-n", "bidroom-root", "-t", "CT,C,C", "-i",
                    str(root)], check=True, capture_output=True)
    trusted = _pdfsig(path, "-nssdir", f"sql:{nss}")
    assert all("Certificate Validation: Certificate is Trusted." in s for s in trusted)
    for m in MEMBERS:
        assert f"Signer Certificate Common Name: {m.name}" in "".join(trusted)

    reader = PdfReader(io.BytesIO(final))
    embedded = json.loads(reader.attachments[RECORD_ATTACHMENT][0])
    assert embedded["record_no"] == record_no and embedded["kind"] == "evaluation_report"
    assert verify(embedded["data"]) == []
    text = "".join(p.extract_text() for p in reader.pages)
    assert "欧阳娜娜" in text and "投标保证金未按招标文件要求提交" in text and record_no in text

    assert await _actions(raw_conn, record_no) == ["record.render", *["record.sign"] * 6, "record.seal",
                                                   "evaluation.report.finalise"]
    issued = await raw_conn.fetchrow("SELECT payload FROM audit_entry WHERE entity = $1 AND action = $2",
                                     ENTITY, "evaluation.report.issue")
    assert json.loads(issued["payload"])["record_no"] == record_no


async def test_a_refusal_without_reasons_counts_as_agreement_and_does_not_block_the_seal(client, sessions,
                                                                                          raw_conn):
    ctx, record_no = await _issue(client, sessions)
    for m in MEMBERS[:4]:
        await _sign(sessions, ctx, record_no, m.public_id)
    with pytest.raises(Conflict) as caught:
        await _finalise(sessions, ctx, record_no)
    assert caught.value.code == "report_signatures_pending"
    assert caught.value.details["pending"] == ["U-TR0005"]

    async with sessions() as session, session.begin():
        state = await refuse_to_sign(session, await get_record(session, record_no), SIGNERS,
                                     who=principal("U-TR0005"))
    assert state.refused == ("U-TR0005",) and state.complete and not state.stale
    final = await _finalise(sessions, ctx, record_no)
    report = await verify_pdf(final, ctx.pki)
    assert report.sealed and len(report.signatures) == 5
    actions = await _actions(raw_conn, record_no)
    assert actions[-4:] == [REFUSE, "record.sign", "record.seal", "evaluation.report.finalise"]
    payload = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE entity = $1 AND action = 'evaluation.report.finalise'",
        f"record:{record_no}"))
    assert payload["refused_deemed_agreement"] == ["U-TR0005"] and len(payload["signed"]) == 4


async def test_a_dissent_filed_after_rendering_makes_the_report_stale(client, sessions, raw_conn):
    ctx, record_no = await _issue(client, sessions)
    await _sign(sessions, ctx, record_no, "E-GZ0001")
    dissenter = principal("E-ZS0004")
    async with sessions() as session, session.begin():
        record = await get_record(session, record_no)
        with pytest.raises(Unprocessable) as caught:
            await file_dissent(session, record, SIGNERS, who=dissenter, reasons="   ")
        assert caught.value.code == "dissent_without_reasons"
    assert DISSENT not in await _actions(raw_conn, record_no)

    async with sessions() as session, session.begin():
        state = await file_dissent(session, await get_record(session, record_no), SIGNERS, who=dissenter,
                                   reasons="不同意排序：第2名的施工组织设计更优。")
    assert state.stale and state.dissented == ("E-ZS0004",)
    for action in (lambda: _sign(sessions, ctx, record_no, "E-GZ0002"), lambda: _finalise(sessions, ctx, record_no)):
        with pytest.raises(Conflict) as caught:
            await action()
        assert caught.value.code == "report_stale"
    async with sessions() as session:
        record = await get_record(session, record_no)
        assert record.status == "signing" and len(record.signers) == 1
    reasons = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE entity = $1 AND action = $2", f"record:{record_no}", DISSENT))
    assert reasons["reasons"] == "不同意排序：第2名的施工组织设计更优。" and reasons["member"] == "E-ZS0004"

    # the next revision prints the dissent, and is signed and sealed as usual
    async with sessions() as session, session.begin():
        filed = await dissents_filed(session, await get_record(session, record_no))
        revised = build_report(sample_input(dissents=filed, revision=2, supersedes=record_no))
        again = await issue_report(session, ctx, revised, who=CHAIR, entity=ENTITY)
        new_no = again.record_no
    for m in MEMBERS:
        await _sign(sessions, ctx, new_no, m.public_id)
    final = await _finalise(sessions, ctx, new_no)
    assert (await verify_pdf(final, ctx.pki)).sealed
    text = pdf_text(final)
    assert "不同意排序：第2名的施工组织设计更优。" in text and record_no in text and "评标报告（第2版）" in text


async def test_only_members_sign_each_once_and_nothing_after_the_seal(client, sessions, raw_conn):
    ctx, record_no = await _issue(client, sessions)
    with pytest.raises(Forbidden) as caught:
        await _sign(sessions, ctx, record_no, "U-OUTSIDER1")
    assert caught.value.code == "not_a_member"
    await _sign(sessions, ctx, record_no, "E-GZ0001")
    with pytest.raises(Conflict) as caught:
        await _sign(sessions, ctx, record_no, "E-GZ0001")
    assert caught.value.code == "already_signed"
    async with sessions() as session, session.begin():
        with pytest.raises(Conflict) as caught:
            await refuse_to_sign(session, await get_record(session, record_no), SIGNERS, who=CHAIR)
        assert caught.value.code == "already_signed"
    for m in MEMBERS[1:]:
        await _sign(sessions, ctx, record_no, m.public_id)
    before = await _actions(raw_conn, record_no)
    await _finalise(sessions, ctx, record_no)
    for action in (lambda: _sign(sessions, ctx, record_no, "E-GZ0002"), lambda: _finalise(sessions, ctx, record_no)):
        with pytest.raises(Conflict) as caught:
            await action()
        assert caught.value.code == "record_sealed"
    assert await _actions(raw_conn, record_no) == [*before, "record.sign", "record.seal",
                                                   "evaluation.report.finalise"]
    async with sessions() as session:
        state = await signing_state(session, await get_record(session, record_no), SIGNERS)
    assert state.sealed and state.complete and len(state.signed) == 5


async def test_two_members_signing_at_once_both_land_in_the_file(client, sessions):
    ctx, record_no = await _issue(client, sessions)
    await asyncio.gather(_sign(sessions, ctx, record_no, "E-GZ0002"), _sign(sessions, ctx, record_no, "E-ZS0003"))
    async with sessions() as session:
        record = await get_record(session, record_no)
        pdf = await ctx.load(record.storage_key)
    report = await verify_pdf(pdf, ctx.pki)
    assert sorted(s.signer_public_id for s in report.signatures) == ["E-GZ0002", "E-ZS0003"]
    assert all(s.bottom_line for s in report.signatures)
