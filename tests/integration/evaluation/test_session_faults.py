"""Suspension, resumption and the venue fault timers over HTTP and the scheduler: a fault before the start
unresolved for 2 h lets the tenderer decide; a fault during the evaluation unresolved for 4 h seals the
materials, aborts the session and asks the agent for a new committee.

"Time passes" by moving the fault's report time and its job's due time back by the same amount in the
database, so the handler judges the wait by the database clock as it would in production."""
import json
from datetime import timedelta

from tests.helpers import staff
from web.keys import SCHEDULER

from .conftest import organisation, post
from .session_setup import check_in_all


async def pass_time(raw_conn, session_id: str, hours: int, *, fault_too: bool = True) -> None:
    key = f"evaluation_session:{session_id}:fault"
    await raw_conn.execute("UPDATE scheduled_job SET due_at = due_at - make_interval(hours => $1) "
                           "WHERE dedupe_key = $2 AND status = 'pending'", hours, key)
    if fault_too:
        await raw_conn.execute("UPDATE evaluation_session SET fault_at = fault_at - make_interval(hours => $1) "
                               "WHERE public_id = $2", hours, session_id)


async def fault_job(raw_conn, session_id: str):
    return await raw_conn.fetchrow(
        "SELECT j.due_at - s.fault_at AS wait, j.status FROM scheduled_job j, evaluation_session s "
        "WHERE j.dedupe_key = $1 AND s.public_id = $2 AND j.status = 'pending'",
        f"evaluation_session:{session_id}:fault", session_id)


async def inbox(client, actor) -> list[dict]:
    return await (await client.get("/api/v1/notifications", headers=actor.headers)).json()


async def test_both_fault_timers_fire_through_the_scheduler(client, sessions, raw_conn, ready):
    agent, supervisor, url = ready.info.agent, ready.supervisor, ready.url
    scheduler = client.server.app[SCHEDULER]
    await scheduler.run_due()  # the draw's record jobs, due at once, out of the way
    tenderer_staff = ready.representatives[0]
    stranger = await staff(sessions, client, "supervisor", organisation_public_id=await organisation(sessions))
    await post(client, url + "/committee", agent, {}, 200)
    await post(client, url + "/check-in/open", agent, None, 200)

    # who may suspend: the tender's supervisor (any reason), its agent (a venue fault only); a reason is needed
    for actor, body, status in ((agent, {"reason": "暂停"}, 403), (stranger, {"reason": "暂停"}, 403),
                                (ready.outsider, {"reason": "故障", "fault": True}, 403),
                                (supervisor, {"reason": ""}, 422), (supervisor, {"reason": "   "}, 422)):
        resp = await client.post(url + "/suspend", headers=actor.headers, json=body)
        assert resp.status == status, await resp.text()
    assert (await (await client.get(url, headers=agent.headers)).json())["status"] == "check_in"

    # 1. a fault before the start: the 2 h timer
    reported = await post(client, url + "/suspend", agent, {"reason": "中山分会场视频链路中断", "fault": True}, 200)
    assert (reported["status"], reported["suspended_from"]) == ("suspended", "check_in") and reported["fault_at"]
    assert (await fault_job(raw_conn, ready.session_id))["wait"] == timedelta(hours=2)
    refused = await post(client, url + "/fault-decision", tenderer_staff, {"go_on": True, "reason": "继续"}, 409)
    assert refused["error"]["code"] == "no_decision_pending"

    # woken with the fault only just reported (the job's time moved, not the fault's): nothing happens yet
    await pass_time(raw_conn, ready.session_id, 2, fault_too=False)
    assert await scheduler.run_due() == 1
    assert (await (await client.get(url, headers=agent.headers)).json())["fault_outcome"] is None
    assert (await fault_job(raw_conn, ready.session_id))["wait"] == timedelta(hours=2)

    # two hours on: the tenderer is told to decide
    await pass_time(raw_conn, ready.session_id, 2)
    assert await scheduler.run_due() == 1
    waiting = await (await client.get(url, headers=agent.headers)).json()
    assert (waiting["status"], waiting["fault_outcome"]) == ("suspended", "tenderer_decides")
    notes = [n for n in await inbox(client, tenderer_staff) if n["kind"] == "evaluation.fault_decision"]
    assert len(notes) == 1 and notes[0]["data"]["session_id"] == ready.session_id
    for actor in (stranger, ready.outsider):
        resp = await client.post(url + "/fault-decision", headers=actor.headers, json={"go_on": True, "reason": "x"})
        assert resp.status == 403
    resumed = await post(client, url + "/fault-decision", tenderer_staff,
                         {"go_on": True, "reason": "链路已恢复，继续评标"}, 200)
    assert (resumed["status"], resumed["suspended_from"], resumed["fault_outcome"]) == ("check_in", None, None)

    # a supervisor's suspension during the evaluation, resumed only by a supervisor
    await check_in_all(client, raw_conn, ready)
    await post(client, url + "/start", agent, None, 200)
    paused = await post(client, url + "/suspend", supervisor, {"reason": "核实专家身份"}, 200)
    assert (paused["suspended_from"], paused["suspend_reason"], paused["fault_at"]) == (
        "in_progress", "核实专家身份", None)
    assert await fault_job(raw_conn, ready.session_id) is None
    resp = await client.post(url + "/resume", headers=agent.headers, json={})
    assert resp.status == 403
    resp = await client.post(url + "/resume", headers=stranger.headers, json={})
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "session_forbidden")
    back = await post(client, url + "/resume", supervisor, {"note": "已核实"}, 200)
    assert back["status"] == "in_progress"
    refused = await post(client, url + "/resume", supervisor, {}, 409)
    assert refused["error"]["code"] == "illegal_transition"

    # 2. a fault during the evaluation: the 4 h timer seals, aborts and asks for a new committee
    await post(client, url + "/suspend", agent, {"reason": "广州副场断电", "fault": True}, 200)
    assert (await fault_job(raw_conn, ready.session_id))["wait"] == timedelta(hours=4)
    await pass_time(raw_conn, ready.session_id, 4)
    assert await scheduler.run_due() == 1
    ended = await (await client.get(url, headers=supervisor.headers)).json()
    assert ended["status"] == "aborted" and "广州副场断电" in ended["ended_reason"]
    assert len(ended["materials_sha256"]) == 64
    entries = {r["action"]: json.loads(r["payload"]) for r in await raw_conn.fetch(
        "SELECT action, payload FROM audit_entry WHERE entity = $1", f"evaluation_session:{ready.session_id}")}
    assert entries["evaluation.session.materials_sealed"]["sha256"] == ended["materials_sha256"]
    assert len(entries["evaluation.session.materials_sealed"]["materials"]["members"]) == 5
    assert entries["evaluation.committee.renewal_requested"]["lot"] == ready.info.lot_id
    assert entries["evaluation.session.aborted"]["from"] == "suspended"
    notes = [n for n in await inbox(client, agent) if n["kind"] == "evaluation.new_committee"]
    assert len(notes) == 1 and notes[0]["data"]["lot_id"] == ready.info.lot_id
    # aborted is final
    refused = await post(client, url + "/abort", supervisor, {"reason": "再次终止"}, 409)
    assert refused["error"]["code"] == "illegal_transition"
    # the tender stays evaluating: the lot gets a new session with a new committee
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", ready.info.code) == "evaluating"


async def test_a_supervisor_aborts_a_session_before_it_starts_and_nothing_is_sealed(
        client, sessions, raw_conn, ready):
    refused = await post(client, ready.url + "/abort", ready.outsider, {"reason": "x"}, 403)
    assert refused["error"]["code"] == "session_forbidden"
    ended = await post(client, ready.url + "/abort", ready.supervisor, {"reason": "招标人撤回评标安排"}, 200)
    assert (ended["status"], ended["ended_reason"], ended["materials_sha256"]) == (
        "aborted", "招标人撤回评标安排", None)
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", ready.info.code) == "opened"
