"""The agent's tender wizard over HTTP: a draft from the form, refused as the API refuses it (the points must make
100; the statute's bidding period at publish) with the form filled again and nothing stored; then the draft's key
holders and its publication from the tender's desk; then a lot's expert draw requested, and cancelled with a
reason, from the lot's evaluation desk. The statutory periods are enforced in this module."""
import re
from datetime import datetime, timedelta

import pyotp
import pyrage
import pytest

from core import identity_service
from core.clock import SHANGHAI
from tests.helpers import PASSWORD
from tests.integration.test_page_sessions import _form_token, _sign_in
from expert_pool.taxonomy import load_taxonomy
from trading import keyholding

from tests.integration.expert_pool.conftest import employed_experts

from .conftest import organisation

NEW = "/manage/tenders/new"


@pytest.fixture
def settings(settings):
    return settings.with_(statutory_periods=True)


async def _staff(sessions, username: str, role: str, organisation_id: str) -> tuple[str, str]:
    """A staff account with an enrolled holder key; returns (public id, TOTP secret)."""
    async with sessions() as session, session.begin():
        user, _ = await identity_service.create_user(session, actor="system", username=username, password=PASSWORD,
                                                     display_name=f"{role} {username}", roles=[role],
                                                     organisation_public_id=organisation_id)
        recipient = str(pyrage.x25519.Identity.generate().to_public())
        await keyholding.store_holder_key(session, user, recipient, b"unused: no bids are opened here",
                                          actor="system")
        return user.public_id, user.totp_secret


def _form(token: str, tenderer: str, supervision: str, *, days: int, points: tuple[str, str, str]) -> dict:
    deadline = (datetime.now(SHANGHAI) + timedelta(days=days)).strftime("%Y-%m-%dT09:30")
    clarification = (datetime.now(SHANGHAI) + timedelta(days=days - 3)).strftime("%Y-%m-%dT17:00")
    return {"csrf_token": token, "title": "中山市东区污水管网改造工程", "title_en": "Zhongshan sewer works",
            "description": "详见招标文件", "tenderer": tenderer, "supervisor_organisation": supervision,
            "region_code": "ZS", "subtype": "FJSZ-SG", "method": "open", "budget": "9000000.00",
            "lot_title": ["第一标段 管网", "第二标段 泵站", "", "", ""],
            "lot_budget": ["6000000.00", "3000000.00", "", "", ""],
            "evaluation_method": "comprehensive",
            "criterion_name": ["施工组织设计", "项目业绩", "", "", "", ""],
            "criterion_max": [points[0], points[1], "", "", "", ""], "criterion_objective": ["1"],
            "price_weight": points[2], "price_rule": "lowest_price", "aggregation": "mean", "decimals": "2",
            "clarification_end_at": clarification, "bid_deadline_at": deadline, "opening_at": deadline,
            "key_threshold": "2", "key_holder_count": "2"}


async def test_an_agent_drafts_names_the_key_holders_and_publishes_from_the_pages(client, sessions, raw_conn):
    agency = await organisation(sessions, "中山市明诚招标代理有限公司")
    tenderer = await organisation(sessions, "中山市水务工程建设中心")
    supervision = await organisation(sessions, "中山市公共资源交易监督管理办公室")
    agent_id, secret = await _staff(sessions, "wizard-agent", "agent", agency)
    supervisor_id, _ = await _staff(sessions, "wizard-supervisor", "supervisor", supervision)
    signed_in = await _sign_in(client, "wizard-agent", totp=pyotp.TOTP(secret).now())
    assert signed_in.status == 303

    page = await client.get(NEW, headers={"Accept-Language": "zh-CN"})
    assert page.status == 200
    text = await page.text()
    # the statute beside the deadline, the organisations to choose from, the live total's script
    assert "招标投标法 第二十四条" in text and "中山市水务工程建设中心" in text and "/static/js/wizard.js" in text
    assert (await client.get("/manage")).status == 200 and 'href="/manage/tenders/new"' in await (
        await client.get("/manage")).text()
    before = await raw_conn.fetchval("SELECT count(*) FROM tender")
    ledger = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")

    # 40 + 20 + 30 = 90 points: refused as the API refuses it, the form comes back filled, nothing is stored
    token = await _form_token(client, NEW)
    refused = await client.post(NEW, data=_form(token, tenderer, supervision, days=30, points=("40", "20", "30")),
                                headers={"Accept-Language": "zh-CN"})
    assert refused.status == 422
    text = await refused.text()
    assert "中山市东区污水管网改造工程" in text and 'value="施工组织设计"' in text  # what was typed is kept
    assert await raw_conn.fetchval("SELECT count(*) FROM tender") == before
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == ledger

    # 50 + 20 + 30 = 100, but a bidding period of 10 days: saved as a draft, refused at publish with the statute
    token = await _form_token(client, NEW)
    saved = await client.post(NEW, data=_form(token, tenderer, supervision, days=10, points=("50", "20", "30")),
                              allow_redirects=False)
    assert saved.status == 303, await saved.text()
    code = re.match(r"/manage/tenders/([^#]+)#draft", saved.headers["Location"]).group(1)
    row = await raw_conn.fetchrow("SELECT status, method, family, subtype, budget, evaluation, key_threshold, "
                                  "key_holder_count FROM tender WHERE code = $1", code)
    assert (row["status"], row["method"], row["family"], row["subtype"]) == ("draft", "open", "FJSZ", "FJSZ-SG")
    assert str(row["budget"]) == "9000000.00" and (row["key_threshold"], row["key_holder_count"]) == (2, 2)
    assert '"objective": true' in row["evaluation"] and '"price_weight": "30"' in row["evaluation"]
    lots = await raw_conn.fetch("SELECT l.title, l.budget FROM lot l JOIN tender t ON t.id = l.tender_id "
                                "WHERE t.code = $1 ORDER BY l.lot_no", code)
    assert [(x["title"], str(x["budget"])) for x in lots] == [("第一标段 管网", "6000000.00"),
                                                              ("第二标段 泵站", "3000000.00")]

    desk = f"/manage/tenders/{code}"
    text = await (await client.get(desk, headers={"Accept-Language": "zh-CN"})).text()
    # the people who may hold the key: the agent's own organisation's agents and the supervising organisation's
    assert f'value="{agent_id}"' in text and f'value="{supervisor_id}"' in text

    token = await _form_token(client, desk)
    named = await client.post(desk + "/key-holders", data={"csrf_token": token, "holder": [agent_id, supervisor_id],
                                                           "threshold": "2"}, allow_redirects=False)
    assert named.status == 303 and named.headers["Location"] == desk + "#draft"
    assert [r["holder"] for r in await raw_conn.fetch(
        "SELECT u.public_id AS holder FROM tender_key_holder h JOIN app_user u ON u.id = h.user_id "
        "JOIN tender t ON t.id = h.tender_id WHERE t.code = $1 ORDER BY h.position", code)] == [agent_id,
                                                                                              supervisor_id]
    # one person alone cannot hold the whole key (two organisations): refused on the page, holders unchanged
    token = await _form_token(client, desk)
    alone = await client.post(desk + "/key-holders", data={"csrf_token": token, "holder": [agent_id],
                                                           "threshold": "2"})
    assert alone.status == 422
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_key_holder h JOIN tender t ON t.id = h.tender_id "
                                   "WHERE t.code = $1", code) == 2

    token = await _form_token(client, desk)
    short = await client.post(desk + "/publish", data={"csrf_token": token}, headers={"Accept-Language": "zh-CN"})
    assert short.status == 422
    assert "招标投标法 第二十四条" in await short.text()
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", code) == "draft"

    # the draft is edited in the wizard's form: it comes back as saved; 90 points are refused again with nothing
    # changed; then the statutory period and a new budget for the second lot are saved
    edit = desk + "/edit"
    assert f'href="{edit}"' in text
    text = await (await client.get(edit, headers={"Accept-Language": "zh-CN"})).text()
    assert f'action="{edit}"' in text and 'value="第二标段 泵站"' in text and 'value="3000000.00"' in text
    assert 'value="施工组织设计"' in text and 'value="ZS" readonly' in text
    assert re.search(r'id="bid_deadline_at"[^>]*value="[0-9-]+T09:30"', text)
    updated_before = await raw_conn.fetchval("SELECT updated_at FROM tender WHERE code = $1", code)
    token = await _form_token(client, edit)
    refused = await client.post(edit, data=_form(token, tenderer, supervision, days=25, points=("40", "20", "30")))
    assert refused.status == 422 and f'action="{edit}"' in await refused.text()
    assert await raw_conn.fetchval("SELECT updated_at FROM tender WHERE code = $1", code) == updated_before
    form = _form(token, tenderer, supervision, days=25, points=("50", "20", "30"))
    form["lot_budget"] = ["6000000.00", "2500000.00", "", "", ""]
    form["budget"] = "8500000.00"
    token = await _form_token(client, edit)
    saved = await client.post(edit, data={**form, "csrf_token": token}, allow_redirects=False)
    assert saved.status == 303 and saved.headers["Location"] == desk + "#draft", await saved.text()
    assert str(await raw_conn.fetchval("SELECT budget FROM tender WHERE code = $1", code)) == "8500000.00"
    assert [str(r["budget"]) for r in await raw_conn.fetch(
        "SELECT l.budget FROM lot l JOIN tender t ON t.id = l.tender_id WHERE t.code = $1 ORDER BY l.lot_no",
        code)] == ["6000000.00", "2500000.00"]
    edits = await raw_conn.fetch("SELECT payload FROM audit_entry WHERE action = 'tender.edit' AND entity = $1",
                                 f"tender:{code}")
    assert len(edits) == 1 and "budget" in edits[0]["payload"] and "bid_deadline_at" in edits[0]["payload"]

    token = await _form_token(client, desk)
    published = await client.post(desk + "/publish", data={"csrf_token": token}, allow_redirects=False)
    assert published.status == 303 and published.headers["Location"] == f"/tenders/{code}"
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", code) == "published"
    notice = await (await client.get(f"/api/v1/tenders/{code}")).json()
    assert notice["status"] == "published" and [lot["title"] for lot in notice["lots"]] == ["第一标段 管网",
                                                                                          "第二标段 泵站"]

    # the first lot's expert draw, requested from its evaluation desk before any session is scheduled
    lot = notice["lots"][0]["lot_id"]
    evaluation = f"/manage/tenders/{code}/lots/{lot}/evaluation"
    text = await (await client.get(evaluation, headers={"Accept-Language": "zh-CN"})).text()
    assert 'id="draw-form"' in text and "本标段尚未申请专家抽取" in text
    specialty = load_taxonomy().roots()[0]  # a top-level specialty takes every expert below it
    await employed_experts(sessions, 8, specialty="A0101", city="442000")
    session_at = (datetime.now(SHANGHAI) + timedelta(days=30)).strftime("%Y-%m-%dT09:00")
    draw_form = {"session_at": session_at, "venue": "中山市公共资源交易中心 第3评标室",
                 "quota_name": ["土建", "造价", ""], "quota_specialty": [specialty, specialty, ""],
                 "quota_region": ["442000", "", ""], "quota_count": ["3", "", ""], "quota_backups": ["1", "1", ""],
                 "representatives": "0", "reply_minutes": "30"}
    token = await _form_token(client, evaluation)
    # 3 experts: a committee is 5 or more (招标投标法 第37条); refused in Chinese, the conditions kept
    refused = await client.post(evaluation.replace("/evaluation", "/draws"),
                                data={"csrf_token": token, **draw_form, "quota_name": ["土建", "", ""],
                                      "quota_specialty": [specialty, "", ""], "quota_backups": ["1", "", ""]},
                                headers={"Accept-Language": "zh-CN"})
    text = await refused.text()
    assert refused.status == 422 and 'value="土建"' in text and "招标投标法 第三十七条" in text
    assert await raw_conn.fetchval("SELECT count(*) FROM expert_draw") == 0
    token = await _form_token(client, evaluation)
    requested = await client.post(evaluation.replace("/evaluation", "/draws"), allow_redirects=False,
                                  data={"csrf_token": token, **draw_form, "quota_count": ["3", "2", ""]})
    assert requested.status == 303, re.findall(r"class=\"alert[^>]*>(.*?)<", await requested.text(), re.S)
    assert requested.headers["Location"] == evaluation + "#draw"
    draw = await raw_conn.fetchrow("SELECT public_id, status, quotas, venue FROM expert_draw")
    assert (draw["status"], draw["venue"]) == ("awaiting_entropy", "中山市公共资源交易中心 第3评标室")
    assert '"count": 3' in draw["quotas"] and '"count": 2' in draw["quotas"] and '"region": "442000"' in draw["quotas"]
    text = await (await client.get(evaluation, headers={"Accept-Language": "zh-CN"})).text()
    assert draw["public_id"] in text and "等待监督人员提供随机数" in text and 'id="draw-form"' not in text
    # cancelled with a reason, the lot may request its draw again
    token = await _form_token(client, evaluation)
    cancelled = await client.post(f"{evaluation.replace('/evaluation', '/draws')}/{draw['public_id']}/cancel",
                                  data={"csrf_token": token, "reason": "评标时间调整"}, allow_redirects=False)
    assert cancelled.status == 303
    assert await raw_conn.fetchval("SELECT status FROM expert_draw") == "cancelled"
    text = await (await client.get(evaluation)).text()
    assert 'id="draw-form"' in text and "评标时间调整" in text


async def test_only_agents_open_the_wizard(client, sessions):
    supervision = await organisation(sessions)
    _, secret = await _staff(sessions, "wizard-watcher", "supervisor", supervision)
    assert (await _sign_in(client, "wizard-watcher", totp=pyotp.TOTP(secret).now())).status == 303
    assert (await client.get(NEW)).status == 403
    token = await _form_token(client, "/tenders")
    assert (await client.post(NEW, data={"csrf_token": token, "title": "x"})).status == 403
