"""The demo leaves an evaluation to walk through at once: a tender opened with 4 bids, its committee of 5 drawn
2 + 3 across the Guangzhou and Zhongshan centres, the session scheduled at its main venue and sub-venue with
every member placed. Walked here as its users would, over HTTP: the agent opens check-in, every drawn expert
signs in with the demo login and checks in, the evaluation starts and the committee elects its chair."""
import io
import re

from rich.console import Console

from evaluation.demo import DEMO_TENDER_TITLE
from tests.integration.core.test_demo_walk import sign_in
from web.demo import seed_demo


async def test_the_demo_committee_signs_in_checks_in_and_elects_its_chair(settings, client, raw_conn):
    out = io.StringIO()
    await seed_demo(settings, console=Console(file=out, width=240), only_if_empty=True, tenders=0, experts=200)
    printed = out.getvalue()
    agent = await sign_in(client, "agent")

    found = await (await client.get("/api/v1/tenders", params={"q": "中心小学教学楼"})).json()
    [tender] = [t for t in found["items"] if t["title"] == DEMO_TENDER_TITLE]
    assert tender["status"] == "opened"
    detail = await (await client.get(f"/api/v1/tenders/{tender['code']}", headers=agent.headers)).json()
    lot_id = detail["lots"][0]["lot_id"]
    opened = await (await client.get(f"/api/v1/tenders/{tender['code']}/opened-bids")).json()
    assert [b["status"] for b in opened["bids"]] == ["opened"] * 4

    [session] = await (await client.get(f"/api/v1/lots/{lot_id}/evaluation-sessions", headers=agent.headers)).json()
    url = f"/api/v1/evaluation-sessions/{session['session_id']}"
    assert session["status"] == "scheduled" and session["session_id"] in printed
    assert (session["main_venue"]["region_code"], [v["region_code"] for v in session["sub_venues"]]) == \
        ("442000", ["440100"])
    committee = await (await client.get(url + "/committee", headers=agent.headers)).json()
    by_region = sorted(m["place"]["region_code"] for m in committee["members"])
    assert by_region == ["440100"] * 2 + ["442000"] * 3
    draw = await (await client.get(f"/api/v1/draws/{committee['draw_id']}", headers=agent.headers)).json()
    assert draw["evaluation_session"] == session["session_id"]

    # the agent opens check-in; each drawn expert signs in with the demo login and checks in at their place
    resp = await client.post(url + "/check-in/open", headers=agent.headers)
    assert resp.status == 200, await resp.text()
    # the demo printed each member's login beside their member id (the agent's view keeps experts anonymous)
    logins = dict((m, u) for u, m in re.findall(r"(expert\d+)\s*│[^│\n]*│\s*(EM-[0-9A-Z]+)", printed))
    assert set(logins) == {m["member_id"] for m in committee["members"]}
    experts = {}
    for member in committee["members"]:
        expert = experts[member["member_id"]] = await sign_in(client, logins[member["member_id"]])
        declaration = await (await client.get(url + "/declaration", headers=expert.headers)).json()
        assert len(declaration) == 4
        me = await (await client.get("/api/v1/me/expert", headers=expert.headers)).json()
        resp = await client.post(url + "/check-in", headers=expert.headers, json={
            "id_card_last4": me["id_card_no"][-4:], "commitment": True, "conflicts": []})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "checked_in"

    # the evaluation starts (the tender moves to evaluating) and a majority elects the chair
    resp = await client.post(url + "/start", headers=agent.headers)
    assert resp.status == 200, await resp.text()
    detail = await (await client.get(f"/api/v1/tenders/{tender['code']}", headers=agent.headers)).json()
    assert detail["status"] == "evaluating"
    chair = sorted(experts)[0]
    for voter in sorted(experts)[:3]:
        resp = await client.post(url + "/chair/votes", headers=experts[voter].headers, json={"candidate": chair})
        assert resp.status == 200, await resp.text()
    standing = await resp.json()
    assert (standing["chair"], standing["how"]) == (chair, "majority")

    # the members read the opened bids
    bids = await (await client.get(url + "/bids", headers=experts[chair].headers)).json()
    assert len(bids) == 4 and all(len(b["documents"]) == 2 for b in bids)
    resp = await client.get(bids[0]["documents"][0]["url"], headers=experts[chair].headers)
    assert resp.status == 200 and "投标" in (await resp.read()).decode()
