"""Chair election (推选组长) over HTTP on a committee of 5 experts and 2 tenderer representatives: one vote each,
a representative cannot be chair, and a tie among the leaders is settled by a verifiable draw with the
supervisor's entropy, recomputed here from the ledger."""
import json

from evidence import randomness as rnd

from .conftest import post
from .session_setup import check_in_all, member_experts


async def test_members_elect_a_chair_and_a_tie_is_settled_by_a_verifiable_draw(
        client, sessions, raw_conn, ready):
    admin = ready.admin
    agent, url = ready.info.agent, ready.url
    for label in ("Z-01", "Z-02"):
        await post(client, f"/api/v1/rooms/{ready.zhongshan.room}/places", admin, {"label": label}, 201)
    reps = ready.representatives
    formed = await post(client, url + "/committee", agent, {"representatives": [r.public_id for r in reps]}, 200)
    await post(client, url + "/check-in/open", agent, None, 200)
    await check_in_all(client, raw_conn, ready)
    for rep in reps:
        await post(client, url + "/check-in", rep, {"commitment": True}, 200)
    # voting waits for the start
    experts = {m: ready.experts[e] for m, e in (await member_experts(raw_conn, ready.session_id)).items()}
    a, b, c, d, e = sorted(experts)
    refused = await post(client, url + "/chair/votes", experts[a], {"candidate": a}, 409)
    assert refused["error"]["code"] == "session_not_in_progress"
    await post(client, url + "/start", agent, None, 200)

    rep_members = {m["user_id"]: m["member_id"] for m in formed["members"] if m["kind"] == "representative"}
    voters = {**experts, **{rep_members[r.public_id]: r for r in reps}}

    # refusals change nothing: a non-member, a representative as candidate, a stranger as candidate
    for actor in (agent, ready.outsider, ready.supervisor):
        refused = await post(client, url + "/chair/votes", actor, {"candidate": a}, 403)
        assert refused["error"]["code"] in ("not_a_member", "role_forbidden")
    refused = await post(client, url + "/chair/votes", experts[a], {"candidate": rep_members[reps[0].public_id]}, 422)
    assert refused["error"]["code"] == "representative_cannot_chair"
    refused = await post(client, url + "/chair/votes", experts[a], {"candidate": "EM-NOTAMEMB"}, 422)
    assert refused["error"]["code"] == "not_a_member_candidate"
    assert await raw_conn.fetchval("SELECT count(*) FROM evaluation_chair_vote") == 0

    # 3 for a, 3 for b, 1 for c: no majority of 7, a and b level
    ballots = {a: b, b: a, c: a, d: b, e: a, rep_members[reps[0].public_id]: b,
               rep_members[reps[1].public_id]: c}
    standing = None
    for voter, candidate in ballots.items():
        standing = await post(client, url + "/chair/votes", voters[voter], {"candidate": candidate}, 200)
        if voter == a:
            again = await post(client, url + "/chair/votes", voters[a], {"candidate": c}, 409)
            assert again["error"]["code"] == "already_voted"
    assert (standing["chair"], standing["votes_cast"], standing["members"]) == (None, 7, 7)
    assert standing["tied"] == sorted([a, b]) and len(standing["commitment"]) == 64
    assert await raw_conn.fetchval("SELECT count(*) FROM evaluation_chair_vote") == 7

    # the tender's supervisor supplies the entropy; the agent may not
    resp = await client.post(url + "/chair/draw", headers=agent.headers, json={"entropy": "x"})
    assert resp.status == 403
    elected = await post(client, url + "/chair/draw", ready.supervisor, {"entropy": "8d41c7e2a05f"}, 200)
    assert elected["how"] == "draw" and elected["chair"] in (a, b)
    entry = json.loads(await raw_conn.fetchval(
        "SELECT payload FROM audit_entry WHERE action = 'evaluation.chair.elected' AND entity = $1",
        f"evaluation_session:{ready.session_id}"))
    # anyone can recompute the draw from the ledger: the secret matches its commitment, the seed and the order
    secret = bytes.fromhex(entry["secret"])
    assert rnd.commitment(secret) == elected["commitment"] == entry["commitment"]
    candidates = [{"id": m} for m in entry["tied"]]
    seed = rnd.compute_seed(secret, entry["entropy"], entry["request"], candidates)
    assert seed.hex() == entry["seed"] == elected["seed"]
    assert rnd.rank(seed, candidates)[0]["id"] == elected["chair"]
    tie = json.loads(await raw_conn.fetchval("SELECT payload FROM audit_entry WHERE action = 'evaluation.chair.tie'"))
    assert tie["commitment"] == elected["commitment"] and "secret" not in tie

    # elected once: further votes and draws are refused
    refused = await post(client, url + "/chair/draw", ready.supervisor, {"entropy": "again"}, 409)
    assert refused["error"]["code"] == "chair_elected"
    seen = await (await client.get(url + "/chair", headers=ready.supervisor.headers)).json()
    assert seen["chair"] == elected["chair"]
