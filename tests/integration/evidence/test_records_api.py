"""Records through the API: issued and archived, downloaded by audience, verified by upload and by the CLI."""
import io
import os
import subprocess
import sys

import asyncpg
import pytest
from pypdf import PdfReader, PdfWriter

from evidence.records import KeyValueBlock, SignatureTable, TableBlock, signature_field_name
from evidence.records_service import RecordContent, issue_record
from evidence.signing import SignerSpec
from tests.helpers import bidder, register_bidder, staff
from web.keys import RECORDS


def content(kind="opening") -> RecordContent:
    return RecordContent(
        kind=kind, title_zh="开标记录", title_en="Bid opening record",
        blocks=[KeyValueBlock([("项目编号", "Tender code", "ZS-2026-ZFCG-00042")]),
                TableBlock([("投标人", "Bidder"), ("报价", "Price")], [["中山市恒信建设工程有限公司", "1,234,567.00"]]),
                SignatureTable([("张伟", "监督人", "Supervisor")])],
        attachment={"tender": "ZS-2026-ZFCG-00042", "bids": [{"bidder": "中山市恒信建设工程有限公司",
                                                               "price": "1234567.00"}]})


async def _issue(client, sessions, *, audience="public", signers=()):
    ctx = client.app[RECORDS]
    async with sessions() as session, session.begin():
        record = await issue_record(session, ctx, actor="system", entity="tender:ZS-2026-ZFCG-00042",
                                    content=content(), signers=signers, audience=audience)
        return record.record_no, record.sha256


async def test_an_issued_record_downloads_verifies_and_is_archived(client, sessions, raw_conn):
    await register_bidder(client)  # something in the ledger for the checkpoint to cover
    record_no, digest = await _issue(client, sessions, signers=[
        SignerSpec.person(signature_field_name(0), "U-ZW0001", "张伟")])
    resp = await client.get(f"/api/v1/records/{record_no}")
    assert resp.status == 200 and resp.content_type == "application/pdf"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{record_no}.pdf"'
    pdf = await resp.read()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "开标记录" in text and "中山市恒信建设工程有限公司" in text and record_no in text

    resp = await client.post("/api/v1/records/verify", data=pdf, headers={"Content-Type": "application/pdf"})
    report = await resp.json()
    assert resp.status == 200, report
    assert report["valid"] and report["sealed"] and report["archived"]
    assert report["record"]["record_no"] == record_no and report["record"]["final"]
    assert [s["signer_public_id"] for s in report["signatures"]] == ["U-ZW0001", None]
    assert all(s["intact"] and s["trusted"] and s["timestamp_valid"] for s in report["signatures"])

    actions = [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", f"record:{record_no}")]
    assert actions == ["record.render", "record.sign", "record.sign", "record.seal"]
    info = await (await client.get(f"/api/v1/records/{record_no}/verification")).json()
    assert info["sha256"] == digest and info["status"] == "sealed" and info["checkpoint_size"] >= 1


async def test_a_resaved_pdf_is_not_an_archived_record(client, sessions):
    record_no, _ = await _issue(client, sessions)
    pdf = await (await client.get(f"/api/v1/records/{record_no}")).read()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    out = io.BytesIO()
    writer.write(out)
    resp = await client.post("/api/v1/records/verify", data=out.getvalue(),
                             headers={"Content-Type": "application/pdf"})
    report = await resp.json()
    assert resp.status == 200
    assert report["archived"] is False and report["record"] is None


async def test_restricted_records_follow_their_audience(client, sessions):
    record_no, _ = await _issue(client, sessions, audience="supervisors")
    assert (await client.get(f"/api/v1/records/{record_no}")).status == 403
    someone = await bidder(client)
    resp = await client.get(f"/api/v1/records/{record_no}", headers=someone.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "record_restricted")
    agent = await staff(sessions, client, "agent")
    assert (await client.get(f"/api/v1/records/{record_no}", headers=agent.headers)).status == 403
    supervisor = await staff(sessions, client, "supervisor")
    assert (await client.get(f"/api/v1/records/{record_no}", headers=supervisor.headers)).status == 200
    info = await (await client.get(f"/api/v1/records/{record_no}/verification")).json()
    assert info["signers"] is None  # restricted editions do not name their signers publicly


async def test_sealed_records_and_their_revisions_cannot_be_changed(client, sessions, raw_conn):
    record_no, _ = await _issue(client, sessions)
    with pytest.raises(asyncpg.PostgresError, match="immutable"):
        await raw_conn.execute("UPDATE record SET sha256 = 'x' WHERE record_no = $1", record_no)
    with pytest.raises(asyncpg.PostgresError, match="immutable"):
        await raw_conn.execute("DELETE FROM record_revision")


async def test_pki_files_are_public(client):
    root = await client.get("/api/v1/pki/root.pem")
    assert root.status == 200 and (await root.read()).startswith(b"-----BEGIN CERTIFICATE-----")
    crl = await client.get("/api/v1/pki/crl")
    assert crl.status == 200 and (await crl.read())[:1] == b"\x30"  # a DER SEQUENCE


@pytest.mark.parametrize("body,code", [
    (b"hello, this is not a pdf", "not_a_pdf"),
    (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", "malformed_pdf"),
    (b"", "not_a_pdf"),
])
async def test_verify_refuses_bad_uploads_with_a_clear_4xx(client, body, code):
    resp = await client.post("/api/v1/records/verify", data=body, headers={"Content-Type": "application/pdf"})
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == code


async def test_verify_refuses_a_truncated_record(client, sessions):
    record_no, _ = await _issue(client, sessions)
    pdf = await (await client.get(f"/api/v1/records/{record_no}")).read()
    resp = await client.post("/api/v1/records/verify", data=pdf[: len(pdf) // 2],
                             headers={"Content-Type": "application/pdf"})
    assert 400 <= resp.status < 500


async def test_verify_refuses_an_oversized_upload(client, settings):
    async def body():
        chunk = b"%PDF-1.7\n" + b"0" * (1024 * 1024)
        for _ in range(settings.verify_max_bytes // len(chunk) + 2):
            yield chunk
    resp = await client.post("/api/v1/records/verify", data=body(), headers={"Content-Type": "application/pdf"})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "upload_too_large"


async def test_verify_refuses_other_media_types(client):
    resp = await client.post("/api/v1/records/verify", data=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status == 415


async def test_records_verify_cli_checks_signatures_and_the_archive(client, sessions, settings, tmp_path):
    record_no, _ = await _issue(client, sessions)
    pdf = await (await client.get(f"/api/v1/records/{record_no}")).read()
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf)
    bad = tmp_path / "bad.pdf"
    flipped = bytearray(pdf)
    flipped[len(pdf) // 3] ^= 0x01
    bad.write_bytes(bytes(flipped))
    env = {**os.environ, "BIDROOM_DATABASE_URL": settings.database_url, "BIDROOM_DATA_DIR": str(settings.data_dir),
           "BIDROOM_LOG_FORMAT": "text", "COLUMNS": "200"}
    ok = subprocess.run([sys.executable, "-m", "web.cli", "records", "verify", str(good)], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert record_no in ok.stdout and "VALID" in ok.stdout
    tampered = subprocess.run([sys.executable, "-m", "web.cli", "records", "verify", str(bad)], env=env,
                              capture_output=True, text=True, timeout=120)
    assert tampered.returncode != 0
