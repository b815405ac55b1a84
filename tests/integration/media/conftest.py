"""Media tests: short segments (5 s) so a 20 s publication closes several, and an evaluation session in progress
reached through the API alone (the `live` state): the evaluation tests' lot ready for its session (4 sealed bids
opened, a committee of 5 drawn 2 + 3 from Guangzhou and Zhongshan; tests/integration/evaluation/session_setup.py),
then a room camera at each venue, the committee formed with one tenderer representative, everyone checked in, the
evaluation started and the chair elected. Beside it, another tender's session with its own committee, for the
refusals. The state is built once per run and copied for each test (tests/integration/lot_states.py)."""
from __future__ import annotations

from dataclasses import dataclass

from tests.helpers import Actor, staff
from tests.integration.evaluation.conftest import at, post
from tests.integration.evaluation.session_setup import Ready, ready_lot, start
from tests.integration.expert_pool.conftest import add_expert, organisation, sign_in, tender_with_lot
from tests.integration.lot_states import fixtures


@dataclass
class Member:
    member_id: str
    place_id: str
    person: Actor                    # signs in on the pages too, with tests.helpers.PASSWORD
    kind: str = "expert"


@dataclass
class Other:
    """Another tender's session, scheduled with its committee formed: one of its experts, its supervisor, and that
    expert's place."""
    session_id: str
    expert: Actor
    supervisor: Actor
    place_id: str


@dataclass
class Live:
    session_id: str
    members: list[Member]            # members[0] is the chair; the tenderer's representative is last
    supervisor: Actor                # a supervisor of the tender
    camera_place: str                # the main venue's room camera (全景), Zhongshan
    agent: Actor
    admin: Actor
    sub_camera_place: str            # the sub venue's room camera, Guangzhou
    other: Other

    @property
    def experts(self) -> list[Member]:
        return [m for m in self.members if m.kind == "expert"]

    @property
    def representative(self) -> Member:
        return next(m for m in self.members if m.kind == "representative")


async def another_session(sessions, client, admin: Actor) -> Other:
    """Another tender's lot, supervised by another organisation, with a committee of 5 drawn from a pool of its own
    and accepted, its session scheduled in a room of its own and its committee formed, all through the API."""
    agency = await organisation(sessions, "中山市信达招标代理有限公司")
    supervising = await organisation(sessions, "广州市住房和城乡建设局")
    agent = await staff(sessions, client, "agent", organisation_public_id=agency)
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=supervising)
    tender = await tender_with_lot(sessions, agent, supervisor_org=supervising)
    pool = {e.expert_id: e for e in [await add_expert(sessions, specialty="A0102", city="442000",
                                                      employer=await organisation(sessions), account=True)
                                     for _ in range(5)]}
    draw = await post(client, f"/api/v1/lots/{tender.lot_id}/draws", agent, {
        "session_at": at(6, 9), "venue": "中山市公共资源交易中心",
        "quotas": [{"name": "中山", "specialty": "A0102", "region": "442000", "count": 5, "backups": 0}]}, 201)
    drawn = await post(client, f"/api/v1/draws/{draw['draw_id']}/entropy", supervisor, {"entropy": "5be1c0d2"}, 200)
    experts = {}
    for invitation in drawn["invitations"]:
        expert = experts[invitation["expert_id"]] = await sign_in(client, pool[invitation["expert_id"]].username)
        await post(client, f"/api/v1/invitations/{invitation['invitation_id']}/accept", expert, None, 200)
    site = await post(client, "/api/v1/sites", admin, {"name": "中山市公共资源交易中心（东区）", "region_code": "442000"}, 201)
    room = await post(client, f"/api/v1/sites/{site['site_id']}/rooms", admin, {"name": "第2评标室"}, 201)
    for i in range(5):
        await post(client, f"/api/v1/rooms/{room['room_id']}/places", admin, {"label": f"C-{i + 1:02d}"}, 201)
    booking = await post(client, f"/api/v1/rooms/{room['room_id']}/bookings", agent, {
        "starts_at": at(6, 8), "ends_at": at(6, 18), "label": "第一标段评标", "tender": tender.code,
        "lot": tender.lot_id}, 201)
    session = await post(client, f"/api/v1/lots/{tender.lot_id}/evaluation-sessions", agent,
                         {"main_booking": booking["booking_id"]}, 201)
    await post(client, f"/api/v1/evaluation-sessions/{session['session_id']}/committee", agent, {}, 200)
    # which expert sits where, as the tender's supervisor sees the committee
    resp = await client.get(f"/api/v1/evaluation-sessions/{session['session_id']}/committee",
                            headers=supervisor.headers)
    assert resp.status == 200, await resp.text()
    first = next(m for m in (await resp.json())["members"] if m["kind"] == "expert")
    return Other(session["session_id"], experts[first["expert_id"]], supervisor,
                 first["place"]["place_id"])


async def in_progress(sessions, client, raw_conn, ready: Ready) -> Live:
    """From a lot ready for its session to the evaluation in progress: a room camera at each venue and a place for
    the representative, then `start` with the tenderer's first purchaser as representative (the committee formed,
    everyone checked in, the session started, the first expert member chair)."""
    cameras = {}
    for venue in (ready.zhongshan, ready.guangzhou):
        cameras[venue.room] = (await post(client, f"/api/v1/rooms/{venue.room}/places", ready.admin,
                                          {"label": "全景", "camera_position": True}, 201))["place_id"]
    await post(client, f"/api/v1/rooms/{ready.zhongshan.room}/places", ready.admin, {"label": "Z-01"}, 201)
    representative = ready.representatives[0]
    started = await start(client, raw_conn, ready, [representative])
    resp = await client.get(ready.url + "/committee", headers=ready.info.agent.headers)
    assert resp.status == 200, await resp.text()
    formed = (await resp.json())["members"]
    place_of = {m["member_id"]: m["place"]["place_id"] for m in formed}
    experts = sorted(started.members)   # the chair first
    members = [Member(m, place_of[m], started.members[m]) for m in experts]
    members += [Member(m["member_id"], m["place"]["place_id"], representative, "representative")
                for m in formed if m["kind"] == "representative"]
    return Live(ready.session_id, members, ready.supervisor, cameras[ready.zhongshan.room], ready.info.agent,
                ready.admin, cameras[ready.guangzhou.room], await another_session(sessions, client, ready.admin))


async def _build_ready(sessions, client, raw_conn, _base) -> Ready:
    return await ready_lot(sessions, client, raw_conn)


async def _build_live(sessions, client, raw_conn, ready: Ready) -> Live:
    return await in_progress(sessions, client, raw_conn, ready)


LIVE_STATES = {"media_ready": (None, _build_ready), "live": ("media_ready", _build_live)}

lot_templates, db_url, settings, pytest_collection_modifyitems, _states = fixtures(
    LIVE_STATES, "media-live", media_segment_s=5.0, media_watchdog_s=0.5)
live = _states["live"]
