"""Running the pool: CSV import with a per-row report, masked personal data, suspension, statistics per expert,
the familiar-faces report, and the demo seed."""
import io
import re

from rich.console import Console
from rich.progress import Progress

from expert_pool.demo import id_card, seed_demo
from expert_pool.regions import GUANGDONG_CITIES
from tests.helpers import social_credit_code

from .conftest import employed_experts, session_time, sign_in, tender_with_lot


async def test_an_admin_imports_experts_from_csv_and_gets_a_report_per_row(client, raw_conn, admin, supervisor):
    good = id_card(424242, "442000")
    csv = ("姓名,身份证号,手机号,省份代码,城市代码,类别,职称,专业代码,工作单位,统一社会信用代码\n"
           f"陈建华,{good},13912345678,440000,442000,technical,高级工程师,A0101;A0102,中山市建筑设计院,"
           f"{social_credit_code()}\n"
           f"李明,{good[:-1]}{'0' if good[-1] != '0' else '1'},13912345679,440000,442000,technical,工程师,A0101,,\n"
           f"王芳,{id_card(515151, '440100')},13912345670,440000,440100,economic,高级会计师,Z9999,,\n"
           f"陈建华,{good},13912345678,440000,442000,technical,高级工程师,A0101,,\n")
    before = await raw_conn.fetchval("SELECT count(*) FROM expert")
    resp = await client.post("/api/v1/experts/import", headers={**admin.headers, "Content-Type": "text/csv"},
                             data=csv.encode("gb18030"))
    report = await resp.json()
    assert resp.status == 200, report
    assert (report["total"], report["imported"], report["refused"]) == (4, 1, 3)
    rows = {r["line"]: r for r in report["rows"]}
    assert rows[2]["status"] == "imported" and rows[2]["expert_id"].startswith("E-")
    assert [p["code"] for p in rows[3]["problems"]] == ["invalid_id_card"]
    assert [(p["field"], p["code"]) for p in rows[4]["problems"]] == [("specialties", "unknown_specialty")]
    assert [p["code"] for p in rows[5]["problems"]] == ["duplicate_in_file"]
    assert await raw_conn.fetchval("SELECT count(*) FROM expert") == before + 1
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'expert.import'") == 1
    # a non-admin may not import
    resp = await client.post("/api/v1/experts/import", headers={**supervisor.headers, "Content-Type": "text/csv"},
                             data=csv.encode())
    assert resp.status == 403

    # ID card and phone are masked for supervisors, shown to admins.
    expert_id = rows[2]["expert_id"]
    seen = await (await client.get(f"/api/v1/experts/{expert_id}", headers=supervisor.headers)).json()
    assert seen["masked"] and seen["id_card_no"] != good and seen["id_card_no"][:3] == good[:3]
    assert "*" in seen["phone"] and seen["employer"]["name"] == "中山市建筑设计院"
    listed = await (await client.get("/api/v1/experts?city_code=442000", headers=supervisor.headers)).json()
    assert [e["id_card_no"] for e in listed] == [seen["id_card_no"]]
    full = await (await client.get(f"/api/v1/experts/{expert_id}", headers=admin.headers)).json()
    assert not full["masked"] and full["id_card_no"] == good and full["phone"] == "13912345678"

    # Suspension needs a reason; a retired expert cannot come back.
    url = f"/api/v1/experts/{expert_id}/status"
    resp = await client.post(url, headers=admin.headers, json={"status": "suspended"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "reason_required")
    resp = await client.post(url, headers=admin.headers, json={"status": "suspended", "reason": "信用评价不合格"})
    assert (await resp.json())["status_reason"] == "信用评价不合格"
    resp = await client.post(url, headers=supervisor.headers, json={"status": "active"})
    assert resp.status == 403
    await client.post(url, headers=admin.headers, json={"status": "retired", "reason": "退休"})
    resp = await client.post(url, headers=admin.headers, json={"status": "active"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "expert_retired")
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'expert.status'") == 2


async def test_statistics_show_draw_frequency_acceptance_rate_and_familiar_faces(
        client, sessions, agent, supervisor, admin):
    info = await tender_with_lot(sessions, agent)
    pool = await employed_experts(sessions, 6, specialty="A0101", city="440100", account=True)
    accounts = {e.expert_id: await sign_in(client, e.username) for e in pool}
    resp = await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_time(), "venue": "广州 1号评标室",
        "quotas": [{"name": "土建", "specialty": "A0101", "count": 5, "backups": 1}]})
    draw_id = (await resp.json())["draw_id"]
    drawn = await (await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                                     json={"entropy": "stats"})).json()
    first, second = drawn["invitations"][0], drawn["invitations"][1]
    await client.post(f"/api/v1/invitations/{first['invitation_id']}/accept", headers=accounts[first["expert_id"]].headers)
    await client.post(f"/api/v1/invitations/{second['invitation_id']}/decline",
                      headers=accounts[second["expert_id"]].headers, json={"reason": "生病 ill"})

    stats = await (await client.get("/api/v1/expert-statistics/draws", headers=admin.headers)).json()
    by_id = {s["expert_id"]: s for s in stats}
    assert len(by_id) == 6 and all(s["drawn"] == 1 for s in stats)
    assert (by_id[first["expert_id"]]["accepted"], by_id[first["expert_id"]]["acceptance_rate"]) == (1, "1.0000")
    assert (by_id[second["expert_id"]]["declined"], by_id[second["expert_id"]]["acceptance_rate"]) == (1, "0.0000")
    backup = drawn["result"][0]["backups"][0]["expert_id"]
    assert by_id[backup]["invited"] == 1 and by_id[backup]["acceptance_rate"] is None  # promoted, not yet answered
    one = await (await client.get(f"/api/v1/expert-statistics/draws?expert_id={first['expert_id']}",
                                  headers=supervisor.headers)).json()
    assert [s["expert_id"] for s in one] == [first["expert_id"]]

    # Until the award, a confirmed seat is the committee's secret: not in familiar faces, and in an expert's
    # history only for the expert and the tender's supervisors.
    faces_url = "/api/v1/expert-statistics/familiar-faces?min_count=1"
    assert await (await client.get(faces_url, headers=supervisor.headers)).json() == []
    history_url = f"/api/v1/experts/{first['expert_id']}/history"
    for who, rows in ((admin, 0), (supervisor, 1), (accounts[first["expert_id"]], 1)):
        assert len(await (await client.get(history_url, headers=who.headers)).json()) == rows
    # once the tender is awarded the service counts in both: checked on a lot awarded through the API, in
    # tests/integration/evaluation/test_draws_through_the_states.py


async def test_demo_seed_fills_the_pool_with_realistic_guangdong_experts_once(sessions, raw_conn):
    out = io.StringIO()
    console = Console(file=out, width=120)
    with Progress(console=console) as progress:
        await seed_demo(sessions, console, progress, {"experts": 200, "password": "bidroom-demo-2026"})
    rows = await raw_conn.fetch("SELECT e.name, e.city_code, e.province_code, e.specialties, e.user_id, o.name AS "
                                "employer FROM expert e JOIN organisation o ON o.id = e.employer_id")
    assert len(rows) == 200
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", r["name"]) for r in rows)
    assert all(r["province_code"] == "440000" and r["city_code"] in GUANGDONG_CITIES for r in rows)
    assert len({r["city_code"] for r in rows}) >= 5 and len({r["employer"] for r in rows}) >= 10
    assert all(r["user_id"] is not None for r in rows) and "expert001 … expert200" in out.getvalue()
    with Progress(console=console) as progress:
        await seed_demo(sessions, console, progress, {"experts": 200})
    assert await raw_conn.fetchval("SELECT count(*) FROM expert") == 200
    assert "already seeded" in out.getvalue()
