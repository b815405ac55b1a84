"""The agent's documents and clarifications on the tender's desk, over HTTP as a browser sends them: a document
uploaded with the multipart form (the type judged by its bytes, refused in the user's language and nothing stored
otherwise) and listed publicly; a bidder's question shown with the organisation that asked it, an empty answer
refused, and the answer published to every bidder without the asker (政府采购货物和服务招标投标管理办法 第27条)."""
import re

import pyotp
from aiohttp import FormData

from tests.helpers import bidder
from tests.integration.test_page_sessions import _form_token, _sign_in
from tests.integration.trading.conftest import published_tender

from .test_tender_wizard_pages import _staff

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _upload(token: str, title: str, filename: str, data: bytes) -> FormData:
    form = FormData()
    form.add_field("csrf_token", token)
    form.add_field("title", title)
    form.add_field("document_type", "biddingDocuments")
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    return form


async def test_the_agent_uploads_documents_and_answers_questions_from_the_desk(client, sessions, desk, raw_conn):
    tender = await published_tender(client, sessions, desk)
    code = tender["code"]
    _, secret = await _staff(sessions, "desk-agent", "agent", desk.agency)  # a colleague of the tender's agent
    assert (await _sign_in(client, "desk-agent", totp=pyotp.TOTP(secret).now())).status == 303
    page = f"/manage/tenders/{code}"
    text = await (await client.get(page, headers={"Accept-Language": "zh-CN"})).text()
    assert 'id="document-form"' in text and "尚无提问" in text and "/static/js/upload.js" in text

    # an executable is refused by its first bytes, in Chinese, and nothing is stored
    token = await _form_token(client, page)
    before = await raw_conn.fetchval("SELECT count(*) FROM tender_document")
    refused = await client.post(f"{page}/documents?csrf_token={token}", headers={"Accept-Language": "zh-CN"},
                                data=_upload(token, "工具", "setup.pdf", b"MZ\x90\x00" + bytes(2000)))
    assert refused.status == 415 and 'class="alert"' in await refused.text()
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_document") == before

    # a PDF is stored, recorded in the ledger and listed on the desk and on the public notice
    token = await _form_token(client, page)
    saved = await client.post(f"{page}/documents?csrf_token={token}", allow_redirects=False,
                              data=_upload(token, "招标文件（第二版）", "招标文件.pdf", PDF))
    assert saved.status == 303 and saved.headers["Location"] == f"{page}#documents", await saved.text()
    public = await (await client.get(f"/api/v1/tenders/{code}")).json()
    doc = next(d for d in public["documents"] if d["title"] == "招标文件（第二版）")
    assert (doc["media_type"], doc["size_bytes"], doc["filename"]) == ("application/pdf", len(PDF), "招标文件.pdf")
    assert await (await client.get(f"/api/v1/documents/{doc['document_id']}")).read() == PDF
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_document") == before + 1
    assert "招标文件（第二版）" in await (await client.get(page)).text()

    # a registered bidder asks; the desk shows the question and who asked
    b = await bidder(client, org_name="中山市恒信建设工程有限公司")
    assert (await client.post(f"/api/v1/lots/{tender['lots'][0]['lot_id']}/registrations",
                              headers=b.headers)).status == 201
    asked = await client.post(f"/api/v1/tenders/{code}/clarifications", headers=b.headers,
                              json={"question": "第二标段的工期是否可以顺延？"})
    assert asked.status == 201
    question = (await asked.json())["clarification_id"]
    text = await (await client.get(page, headers={"Accept-Language": "zh-CN"})).text()
    assert "第二标段的工期是否可以顺延？" in text and "中山市恒信建设工程有限公司" in text
    answer_url = f"{page}/clarifications/{question}/answer"
    assert f'action="{answer_url}"' in text

    token = await _form_token(client, page)
    empty = await client.post(answer_url, data={"csrf_token": token, "answer": "  "})
    assert empty.status == 422
    assert await raw_conn.fetchval("SELECT answer FROM clarification") is None
    token = await _form_token(client, page)
    answered = await client.post(answer_url, data={"csrf_token": token, "answer": "工期不顺延，详见招标文件第三章。"},
                                 allow_redirects=False)
    assert answered.status == 303 and answered.headers["Location"] == f"{page}#clarifications"
    listed = await (await client.get(f"/api/v1/tenders/{code}/clarifications")).json()
    assert [(q["question"], q["answer"], q["asked_by"]) for q in listed] == [
        ("第二标段的工期是否可以顺延？", "工期不顺延，详见招标文件第三章。", None)]
    text = await (await client.get(page)).text()
    assert "工期不顺延" in text and not re.search(rf'action="{re.escape(answer_url)}"', text)

