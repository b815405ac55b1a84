"""The expert's place page and the supervisor's pages over HTTP (no browser): each form runs the API's own
handler, a refusal comes back as the page with the translated message and changes nothing, and other roles are
refused as the API refuses them."""
import re

import pyotp

from core import identity_service
from tests.helpers import PASSWORD
from tests.integration.test_page_sessions import _form_token, _sign_in
from tests.integration.trading.conftest import EVALUATION

from .conftest import post

TECH = EVALUATION["criteria"][0]["name"]
STATUS = re.compile(r'id="session-status">([^<]+)<')


async def _page_user(client, username, totp=None):
    client.session.cookie_jar.clear()
    resp = await _sign_in(client, username, totp=totp)
    assert resp.status == 303, await resp.text()


async def test_the_place_page_acts_through_the_api_and_shows_refusals(client, sessions, raw_conn, started):
    s = started
    url, sid = s.ready.url, s.ready.session_id
    place = f"/sessions/{sid}/place"
    await client.put(url + "/review/requirements", headers=s.ready.info.agent.headers,
                     json={"requirements": [{"code": "C1", "title": "投标有效期", "kind": "compliance"}]})
    chair = s.members[s.chair]
    await _page_user(client, chair.username)
    page = await client.get(place, headers={"Accept-Language": "zh-CN"})
    assert page.status == 200
    text = await page.text()
    assert "资格审查与符合性审查" in text and 'value="pass"' in text

    # the chair's ballots from the form, all passing: the API's review counts them
    token = await _form_token(client, place)
    form = {"csrf_token": token, **{f"ballot:{b['organisation_id']}:C1": "pass" for b in s.bidders}}
    saved = await client.post(place + "/review", data=form, allow_redirects=False)
    assert saved.status == 303 and saved.headers["Location"] == place + "#review"
    review = await (await client.get(url + "/review", headers=chair.headers)).json()
    assert sorted((x["bidder"], x["passed"]) for x in review["mine"]) == sorted(
        (b["organisation_id"], True) for b in s.bidders)

    for member, actor in s.members.items():
        if member != s.chair:
            await post(client, url + "/review/ballots", actor, {"ballots": [
                {"bidder": b["organisation_id"], "requirement": "C1", "passed": True} for b in s.bidders]}, 200)
    await post(client, url + "/review/close", chair, None, 200)

    # an out-of-range score: the page again with the message in Chinese, nothing stored
    first = s.bidders[0]["organisation_id"]
    token = await _form_token(client, place)
    refused = await client.post(place + f"/sheets/{first}", data={"csrf_token": token, f"score:{TECH}": "45",
                                                                 "action": "save"},
                                headers={"Accept-Language": "zh-CN"})
    assert refused.status == 422
    assert "评分超出该评分因素的分值范围" in await refused.text()
    assert await (await client.get(url + "/sheets", headers=chair.headers)).json() == []
    ok = await client.post(place + f"/sheets/{first}", data={"csrf_token": token, f"score:{TECH}": "36.5",
                                                            "action": "save"}, allow_redirects=False)
    assert ok.status == 303
    [sheet] = await (await client.get(url + "/sheets", headers=chair.headers)).json()
    assert (sheet["bidder"], sheet["status"]) == (first, "draft")

    # someone outside the committee: refused as the API refuses, in their language
    outsider = s.ready.outsider
    await _page_user(client, outsider.username)
    page = await client.get(place, headers={"Accept-Language": "en"})
    assert page.status == 403 and "Only members of the committee act in this session." in await page.text()


async def test_a_supervisor_suspends_with_a_reason_and_resumes_from_the_page(client, sessions, raw_conn, started):
    s = started
    sid, url = s.ready.session_id, s.ready.url
    org = await raw_conn.fetchval("SELECT o.public_id FROM organisation o JOIN tender t "
                                  "ON t.supervisor_organisation_id = o.id WHERE t.code = $1", s.ready.info.code)
    async with sessions() as session, session.begin():
        user, _ = await identity_service.create_user(session, actor="system", username="page-supervisor",
                                                     password=PASSWORD, display_name="监督员 周", roles=["supervisor"],
                                                     organisation_public_id=org)
        secret = user.totp_secret
    await _page_user(client, "page-supervisor", totp=pyotp.TOTP(secret).now())
    live = await client.get("/supervise", headers={"Accept-Language": "zh-CN"})
    assert live.status == 200 and sid in await live.text()
    detail = f"/supervise/sessions/{sid}"
    token = await _form_token(client, detail)

    # no reason: refused with the API's validation, the session goes on
    refused = await client.post(detail + "/suspend", data={"csrf_token": token, "reason": "  "})
    assert refused.status == 422
    assert STATUS.search(await refused.text()).group(1) == "评标中"
    assert (await (await client.get(url, headers=s.ready.supervisor.headers)).json())["status"] == "in_progress"

    done = await client.post(detail + "/suspend", data={"csrf_token": token, "reason": "副场网络中断"},
                             allow_redirects=False)
    assert done.status == 303
    state = await (await client.get(url, headers=s.ready.supervisor.headers)).json()
    assert (state["status"], state["suspend_reason"]) == ("suspended", "副场网络中断")
    resumed = await client.post(detail + "/resume", data={"csrf_token": token, "note": "已恢复"},
                                allow_redirects=False)
    assert resumed.status == 303
    assert (await (await client.get(url, headers=s.ready.supervisor.headers)).json())["status"] == "in_progress"
    ledger = await raw_conn.fetch("SELECT action, payload FROM audit_entry WHERE action LIKE 'evaluation.session.%' "
                                  "ORDER BY seq DESC LIMIT 2")
    assert [r["action"] for r in ledger] == ["evaluation.session.in_progress", "evaluation.session.suspended"]

    # the committee's draw: its entropy was supplied, so the page shows it run and a second entropy is refused
    draw = f"/supervise/draws/{s.ready.draw_id}"
    page = await client.get(draw, headers={"Accept-Language": "zh-CN"})
    assert page.status == 200 and "随机数已提供，抽取已执行。" in await page.text()
    again = await client.post(draw + "/entropy", data={"csrf_token": token, "entropy": "再来一次"},
                              headers={"Accept-Language": "zh-CN"})
    assert again.status == 409 and "本次抽取的随机数已经提供。" in await again.text()

    # a member of the committee is no supervisor: the page refuses as the API does
    await _page_user(client, s.members[s.chair].username)
    assert (await client.get("/supervise")).status == 403
