"""The supervision view over HTTP: the tender's supervisors see every live session with its stage, each
member's place, check-in and progress, and the open score flags; other supervisors see none of it."""
from tests.helpers import staff

from .conftest import organisation, post

URL = "/api/v1/supervision/evaluation-sessions"


async def test_supervisors_follow_live_sessions_stage_places_progress_and_flags(
        client, sessions, raw_conn, started):
    s = started
    url, supervisor = s.ready.url, s.ready.supervisor
    m = sorted(s.members)

    seen = await (await client.get(URL, headers=supervisor.headers)).json()
    assert [x["session_id"] for x in seen] == [s.ready.session_id]
    live = seen[0]
    assert (live["status"], live["stage"], live["chair"]) == ("in_progress", "review", s.chair)
    assert len(live["members"]) == 5
    for p in live["members"]:
        member = p["member"]
        assert member["status"] == "checked_in" and member["checked_in_at"] and member["name"]
        assert member["place"]["site_id"] in (s.ready.guangzhou.site, s.ready.zhongshan.site)
    assert sorted(p["member"]["member_id"] for p in live["members"] if p["voted_chair"]) == m[:3]

    # other supervisors, the agent and the members see no supervision list of this tender
    stranger = await staff(sessions, client, "supervisor", organisation_public_id=await organisation(sessions))
    assert await (await client.get(URL, headers=stranger.headers)).json() == []
    for actor in (s.ready.info.agent, s.members[m[0]]):
        assert (await client.get(URL, headers=actor.headers)).status == 403

    # review closed, one low score submitted: the stage is scoring, the member's progress and the flag show
    bidders = [b["organisation_id"] for b in s.bidders]
    await client.put(url + "/review/requirements", headers=s.ready.info.agent.headers,
                     json={"requirements": [{"code": "Q1", "title": "资质", "kind": "qualification"}]})
    for actor in s.members.values():
        await post(client, url + "/review/ballots", actor,
                   {"ballots": [{"bidder": x, "requirement": "Q1", "passed": True} for x in bidders]}, 200)
    await post(client, url + "/review/close", s.members[s.chair], None, 200)
    resp = await client.put(url + f"/sheets/{bidders[0]}", headers=s.members[m[2]].headers,
                            json={"scores": {"技术方案": "10", "项目业绩": "18"}, "submit": True})
    assert resp.status == 200
    live = (await (await client.get(URL, headers=supervisor.headers)).json())[0]
    assert (live["stage"], live["sheets_expected"], live["review_ballots_expected"]) == ("scoring", 4, 4)
    progress = {p["member"]["member_id"]: p for p in live["members"]}
    assert progress[m[2]]["sheets_submitted"] == 1 and progress[m[1]]["sheets_submitted"] == 0
    assert all(p["review_ballots"] == 4 for p in progress.values())
    assert [(f["kind"], f["member"], f["bidder"]) for f in live["open_flags"]] == [("low_score", m[2], bidders[0])]

    # an aborted session leaves the live list
    await post(client, url + "/abort", supervisor, {"reason": "评标现场秩序混乱"}, 200)
    assert await (await client.get(URL, headers=supervisor.headers)).json() == []
