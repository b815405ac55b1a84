"""The committee of a session over HTTP: formed from the lot's confirmed draw (2 experts from Guangzhou, 3 from
Zhongshan) plus the tenderer's representatives within the statutory third (招标投标法 第37条), each expert
placed at a site of their own region, automatically or by the agent."""
import json

from tests.helpers import staff

from .conftest import organisation, post
from .session_setup import committee


async def test_the_committee_comes_from_the_confirmed_draw_and_sits_in_its_own_regions(
        client, sessions, raw_conn, ready):
    admin = ready.admin
    agent = ready.info.agent
    # two more places at the main venue for the tenderer's representatives
    extra = [(await post(client, f"/api/v1/rooms/{ready.zhongshan.room}/places", admin, {"label": label}, 201))
             ["place_id"] for label in ("Z-01", "Z-02")]
    reps = [*ready.representatives,
            await staff(sessions, client, "purchaser", organisation_public_id=ready.tenderer_org)]
    outsider = await staff(sessions, client, "purchaser", organisation_public_id=await organisation(sessions))

    # a non-tenderer as representative, or more than the draw planned, are refused and nothing is stored
    for reps_in, code in (([outsider.public_id], "not_tenderer_staff"),
                          ([r.public_id for r in reps], "representatives_exceed_draw")):
        refused = await post(client, ready.url + "/committee", agent, {"representatives": reps_in}, 422)
        assert refused["error"]["code"] == code
    assert await raw_conn.fetchval("SELECT count(*) FROM evaluation_member") == 0
    # only the tender's agent forms it
    refused = await post(client, ready.url + "/committee", ready.supervisor, {}, 403)
    assert refused["error"]["code"] in ("role_forbidden", "session_forbidden")

    formed = await post(client, ready.url + "/committee", agent,
                        {"representatives": [r.public_id for r in reps[:2]]}, 200)
    experts = [m for m in formed["members"] if m["kind"] == "expert"]
    assert sorted((m["quota"], m["seat"]) for m in experts) == [("中山", 1), ("中山", 2), ("中山", 3),
                                                               ("广州", 1), ("广州", 2)]
    # every expert sits at the site of their own region; the agent does not learn who they are
    for m in experts:
        site = ready.guangzhou.site if m["region_code"] == "440100" else ready.zhongshan.site
        assert m["place"]["site_id"] == site and m["status"] == "seated"
        assert m["name"] is None and m["expert_id"] is None
    representatives = [m for m in formed["members"] if m["kind"] == "representative"]
    assert sorted(m["user_id"] for m in representatives) == sorted(r.public_id for r in reps[:2])
    assert sorted(m["place"]["place_id"] for m in representatives) == sorted(extra)
    assert all(m["place"]["venue_role"] == "main" for m in representatives)
    places = [m["place"]["place_id"] for m in formed["members"]]
    assert len(set(places)) == len(places) == 7

    # the supervisor sees the names; forming again changes nothing
    seen = await committee(client, ready, ready.supervisor)
    names = {m["expert_id"]: m["name"] for m in seen["members"] if m["kind"] == "expert"}
    assert set(names) == {e for e in ready.pool if e not in ready.backups.values()} and all(names.values())
    before = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    again = await post(client, ready.url + "/committee", agent, {}, 200)
    assert again["members"] == formed["members"]
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == before

    # the agent moves a Guangzhou expert: not to Zhongshan (422), not onto a taken place (409), to a free one
    guangzhou_member = next(m for m in experts if m["region_code"] == "440100")
    other = next(m for m in experts if m["region_code"] == "440100" and m is not guangzhou_member)
    url = ready.url + f"/members/{guangzhou_member['member_id']}/place"
    for place, status, code in ((ready.zhongshan.places[0], 422, "place_region_mismatch"),
                                (other["place"]["place_id"], 409, "place_taken"),
                                ("PL-NOSUCH", 422, "place_not_in_session")):
        resp = await client.put(url, headers=agent.headers, json={"place_id": place})
        assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)
    free = await post(client, f"/api/v1/rooms/{ready.guangzhou.room}/places", admin, {"label": "A-03"}, 201)
    resp = await client.put(url, headers=agent.headers, json={"place_id": free["place_id"]})
    assert resp.status == 200
    moved = next(m for m in (await resp.json())["members"] if m["member_id"] == guangzhou_member["member_id"])
    assert moved["place"]["place_id"] == free["place_id"]
    resp = await client.put(url, headers=ready.supervisor.headers, json={"place_id": free["place_id"]})
    assert resp.status == 403

    entries = await raw_conn.fetch("SELECT actor, action, payload FROM audit_entry WHERE entity = $1 ORDER BY seq",
                                   f"evaluation_session:{ready.session_id}")
    assert [e["action"] for e in entries] == ["evaluation.session.schedule", "evaluation.committee.form",
                                              "evaluation.member.place"]
    form = json.loads(entries[1]["payload"])
    assert form["draw_id"] == ready.draw_id and len(form["added"]) == 7 and len(form["placed"]) == 7
