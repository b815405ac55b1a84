"""Tender documents: streamed upload checked by magic bytes, SHA-256, size limit, public download once published."""
import hashlib

from aiohttp.test_utils import TestClient, TestServer

from tests.integration.trading.conftest import create_draft, publish
from web.app import create_app

PDF = b"%PDF-1.7\n" + "招标文件 第一章 投标人须知\n".encode() * 200 + b"%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
DOCX = b"PK\x03\x04" + b"\x14\x00" * 40


async def _upload(client, desk, code, data, *, filename="招标文件.pdf", **params):
    return await client.post(f"/api/v1/tenders/{code}/documents", data=data,
                             params={"filename": filename, **params},
                             headers={**desk.agent.headers, "Content-Type": "application/octet-stream"})


async def test_an_upload_returns_its_sha256_and_becomes_public_with_the_tender(client, sessions, desk):
    draft = await create_draft(client, desk)
    resp = await _upload(client, desk, draft["code"], PDF, title="招标文件（正文）")
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (doc["media_type"], doc["size_bytes"], doc["title"]) == ("application/pdf", len(PDF), "招标文件（正文）")
    path = f"/api/v1/documents/{doc['document_id']}"
    assert (await client.get(path)).status == 404  # a draft's documents are not public yet
    await publish(client, sessions, desk, draft["code"])
    download = await client.get(path)
    assert download.status == 200
    assert await download.read() == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert "filename*=UTF-8''%E6%8B%9B%E6%A0%87" in download.headers["Content-Disposition"]
    detail = await (await client.get(f"/api/v1/tenders/{draft['code']}")).json()
    assert [d["document_id"] for d in detail["documents"]] == [doc["document_id"]]


async def test_office_files_and_images_are_recognised_by_their_first_bytes(client, desk):
    draft = await create_draft(client, desk)
    docx = await (await _upload(client, desk, draft["code"], DOCX, filename="工程量清单.docx")).json()
    png = await (await _upload(client, desk, draft["code"], PNG, filename="总平面图.pdf")).json()
    assert docx["media_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert png["media_type"] == "image/png"  # the bytes decide, not the name


async def test_other_file_types_are_refused_with_415_and_leave_nothing_behind(client, desk, raw_conn, settings):
    draft = await create_draft(client, desk)
    for data, name in ((b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100, "setup.pdf"),
                       (b"<html><script>alert(1)</script>", "notice.pdf"), (b"GIF89a" + b"\x00" * 20, "x.gif")):
        resp = await _upload(client, desk, draft["code"], data, filename=name)
        assert resp.status == 415
        assert (await resp.json())["error"]["code"] == "unsupported_document_type"
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_document") == 0
    stored = settings.storage_dir / "documents"
    assert not stored.exists() or not any(p.is_file() for p in stored.rglob("*"))


async def test_an_upload_over_the_limit_is_refused_with_413(client, settings, desk, raw_conn):
    # a second server on the same database and keys, configured with a 1,000-byte upload limit
    async with TestClient(TestServer(create_app(settings.with_(max_upload_bytes=1000)))) as small:
        draft = await create_draft(small, desk)
        resp = await _upload(small, desk, draft["code"], PDF)
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "upload_too_large"
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_document") == 0


async def test_an_upload_needs_a_filename_and_the_octet_stream_type(client, desk):
    draft = await create_draft(client, desk)
    no_name = await client.post(f"/api/v1/tenders/{draft['code']}/documents", data=PDF,
                                headers={**desk.agent.headers, "Content-Type": "application/octet-stream"})
    assert no_name.status == 400 and (await no_name.json())["error"]["code"] == "filename_required"
    header_name = await client.post(f"/api/v1/tenders/{draft['code']}/documents", data=PDF, headers={
        **desk.agent.headers, "Content-Type": "application/octet-stream", "X-Filename": "../../etc/passwd.pdf"})
    assert header_name.status == 201 and (await header_name.json())["filename"] == "passwd.pdf"
    wrong_type = await client.post(f"/api/v1/tenders/{draft['code']}/documents", json={"a": 1},
                                   params={"filename": "a.pdf"}, headers=desk.agent.headers)
    assert wrong_type.status == 415


async def test_each_upload_leaves_a_ledger_entry_with_its_hash(client, desk, raw_conn):
    draft = await create_draft(client, desk)
    doc = await (await _upload(client, desk, draft["code"], PDF)).json()
    payload = await raw_conn.fetchval("SELECT payload FROM audit_entry WHERE action = 'tender.document.upload'")
    assert doc["sha256"] in payload and doc["document_id"] in payload


async def test_a_bidder_cannot_upload_tender_documents(client, desk):
    from tests.helpers import bidder
    draft = await create_draft(client, desk)
    someone = await bidder(client)
    resp = await client.post(f"/api/v1/tenders/{draft['code']}/documents", data=PDF, params={"filename": "a.pdf"},
                             headers={**someone.headers, "Content-Type": "application/octet-stream"})
    assert resp.status == 403


async def test_a_cancelled_tender_takes_no_more_documents_and_nothing_is_stored(client, desk, raw_conn, settings):
    draft = await create_draft(client, desk)
    await client.post(f"/api/v1/tenders/{draft['code']}/cancel", json={"reason": "项目取消"},
                      headers=desk.agent.headers)
    resp = await _upload(client, desk, draft["code"], PDF)
    assert resp.status == 409 and (await resp.json())["error"]["details"]["current"] == "cancelled"
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_document") == 0
    stored = settings.storage_dir / "documents"
    assert not stored.exists() or not any(p.is_file() for p in stored.rglob("*"))
