"""Bad draw input gets a clear 4xx with a stable code, and changes nothing: no draw, no invitation, no job, no
ledger entry."""
from .conftest import employed_experts, session_time, sign_in, tender_with_lot

TABLES = ("expert_draw", "expert_draw_exclusion", "expert_invitation", "scheduled_job", "audit_entry",
          "notification", "expert_service")


async def snapshot(raw_conn) -> dict:
    counts = {t: await raw_conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    counts["draws"] = [tuple(r) for r in await raw_conn.fetch(
        "SELECT public_id, status, entropy, seed FROM expert_draw ORDER BY id")]
    counts["invitations"] = [tuple(r) for r in await raw_conn.fetch(
        "SELECT public_id, status, replied_at FROM expert_invitation ORDER BY id")]
    return counts


def quota(**over) -> dict:
    return {"name": "土建", "specialty": "A0101", "region": "440100", "count": 5, "backups": 1, **over}


async def test_bad_draw_requests_are_refused_with_stable_codes_and_leave_no_trace(
        client, sessions, raw_conn, agent, supervisor):
    info = await tender_with_lot(sessions, agent)
    pool = await employed_experts(sessions, 6, specialty="A0101", city="440100", account=True)
    url = f"/api/v1/lots/{info.lot_id}/draws"

    def body(*quotas, **over):
        return {"session_at": session_time(), "venue": "中山 1号评标室", "quotas": list(quotas), **over}

    refused = [
        (body(quota(specialty="Z9999")), "unknown_specialty"),
        (body(quota(count=0)), "invalid_count"),
        (body(quota(count=-3)), "invalid_count"),
        (body(quota(backups=-1)), "invalid_backups"),
        (body(quota(count=4), quota(name="造价", specialty="C0101", region=None, count=2)), "committee_even"),
        (body(quota(count=3)), "committee_too_small"),
        (body(quota(count=3), representatives=2), "experts_below_two_thirds"),
        (body(quota(count=7)), "insufficient_candidates"),
        (body(quota(), session_at="2020-01-01T09:00:00+08:00"), "session_in_past"),
    ]
    before = await snapshot(raw_conn)
    for payload, code in refused:
        resp = await client.post(url, headers=agent.headers, json=payload)
        error = (await resp.json())["error"]
        assert (resp.status, error["code"]) == (422, code), payload
        assert error["message"]
    insufficient = await client.post(url, headers=agent.headers, json=body(quota(count=7)))
    assert (await insufficient.json())["error"]["details"] == {
        "quota": "土建", "eligible": 6, "required": 7, "employers": 6, "guaranteed": 6}
    assert await snapshot(raw_conn) == before

    # Entropy twice: the second is refused and the draw, its seed and the ledger stay as they were.
    resp = await client.post(url, headers=agent.headers, json=body(quota()))
    assert resp.status == 201
    draw_id = (await resp.json())["draw_id"]
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                             json={"entropy": "first 第一次"})
    assert resp.status == 200
    invitations = {i["expert_id"]: i["invitation_id"] for i in (await resp.json())["invitations"]}
    before = await snapshot(raw_conn)
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                             json={"entropy": "second 第二次"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "entropy_already_supplied")
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers, json={"entropy": ""})
    assert resp.status == 422
    assert await snapshot(raw_conn) == before

    # An accept after the deadline (before the timeout job has run): refused, the invitation stays as it was.
    expert_id, invitation_id = next(iter(invitations.items()))
    username = next(e.username for e in pool if e.expert_id == expert_id)
    expert = await sign_in(client, username)
    await raw_conn.execute("UPDATE expert_invitation SET reply_by = now() - interval '1 second' "
                           "WHERE public_id = $1", invitation_id)
    before = await snapshot(raw_conn)
    resp = await client.post(f"/api/v1/invitations/{invitation_id}/accept", headers=expert.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "invitation_expired")
    resp = await client.post(f"/api/v1/invitations/{invitation_id}/decline", headers=expert.headers,
                             json={"reason": "too late 太迟"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "invitation_expired")
    assert await snapshot(raw_conn) == before
