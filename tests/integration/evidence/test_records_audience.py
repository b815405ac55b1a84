"""A record's audience follows the visibility of what it records, at the moment of each request.

A domain registers an audience rule for its kind of entity; every route of the archive then asks it: the
download, the verification page, the list by entity and the verification by upload. A record archived for
`entity` with no rule registered for its kind is readable by nobody (fail closed). Records are stored through
core.storage: content-addressed, nothing left behind in the temporary directory.
"""
import hashlib

from evidence.records import KeyValueBlock
from evidence.records_service import RecordContent, issue_record, register_audience
from tests.helpers import staff
from web.keys import RECORDS

# who the probe rule admits right now, by user public id; tests change it between requests
ADMITTED: set[str] = set()


async def probe_rule(session, entity_id, who) -> bool:
    return who is not None and who.public_id in ADMITTED


register_audience("probe", probe_rule)


def content() -> RecordContent:
    return RecordContent(kind="probe_record", title_zh="测试记录", title_en="Probe record",
                         blocks=[KeyValueBlock([("编号", "Number", "P-1")])], attachment={"probe": 1})


async def issue(client, sessions, entity: str, audience: str) -> tuple[str, str]:
    ctx = client.app[RECORDS]
    async with sessions() as session, session.begin():
        record = await issue_record(session, ctx, actor="system", entity=entity, content=content(),
                                    audience=audience)
        return record.record_no, record.storage_key


async def status_and_code(resp) -> tuple[int, str | None]:
    body = await resp.json()
    return resp.status, (body.get("error") or {}).get("code")


async def test_a_record_follows_its_entitys_rule_on_every_route_at_the_moment_of_the_request(
        client, sessions, settings):
    ADMITTED.clear()
    record_no, key = await issue(client, sessions, "probe:P-1", "entity")
    agent = await staff(sessions, client, "agent")
    admin = await staff(sessions, client, "admin")
    pdf = (settings.storage_dir / key).read_bytes()
    assert hashlib.sha256(pdf).hexdigest() == key.rsplit("/", 1)[-1].removesuffix(".pdf")

    async def readable_by(who) -> dict[str, bool]:
        headers = who.headers if who else {}
        download = await client.get(f"/api/v1/records/{record_no}", headers=headers)
        page = await client.get(f"/api/v1/records/{record_no}/verification", headers=headers)
        upload = await client.post("/api/v1/records/verify", data=pdf,
                                   headers={**headers, "Content-Type": "application/pdf"})
        listed = (await (await client.get("/api/v1/records?entity=probe:P-1", headers=headers)).json()
                  if who else None)
        for resp in (download, page, upload):
            assert resp.status in (200, 403), resp.status
            if resp.status == 403:
                assert (await status_and_code(resp))[1] == "record_restricted"
        return {"download": download.status == 200, "page": page.status == 200, "upload": upload.status == 200,
                "listed": bool(listed) if who else None}

    nothing = {"download": False, "page": False, "upload": False, "listed": False}
    assert await readable_by(agent) == nothing and await readable_by(admin) == nothing
    assert (await readable_by(None)) == {**nothing, "listed": None}
    # the rule's answer changes: the very next request follows it
    ADMITTED.add(agent.public_id)
    assert await readable_by(agent) == {"download": True, "page": True, "upload": True, "listed": True}
    assert await readable_by(admin) == nothing
    ADMITTED.clear()
    assert await readable_by(agent) == nothing


async def test_the_rule_also_narrows_records_archived_for_a_wider_audience(client, sessions):
    ADMITTED.clear()
    record_no, _ = await issue(client, sessions, "probe:P-2", "public")
    assert (await client.get(f"/api/v1/records/{record_no}")).status == 403
    supervisor = await staff(sessions, client, "supervisor")
    ADMITTED.add(supervisor.public_id)
    assert (await client.get(f"/api/v1/records/{record_no}", headers=supervisor.headers)).status == 200
    # ... and the archived audience still applies on top of the rule
    staff_only, _ = await issue(client, sessions, "probe:P-3", "supervisors")
    agent = await staff(sessions, client, "agent")
    ADMITTED.add(agent.public_id)
    assert (await client.get(f"/api/v1/records/{staff_only}", headers=agent.headers)).status == 403
    assert (await client.get(f"/api/v1/records/{staff_only}", headers=supervisor.headers)).status == 200
    ADMITTED.clear()


async def test_an_entity_record_without_a_registered_rule_is_readable_by_nobody(client, sessions, settings):
    record_no, _ = await issue(client, sessions, "unruled:X-1", "entity")
    admin = await staff(sessions, client, "admin")
    for who in (None, admin):
        resp = await client.get(f"/api/v1/records/{record_no}", headers=who.headers if who else {})
        assert await status_and_code(resp) == (403, "record_restricted")
    # the archive's files went through core.storage: the temporary directory is left empty
    assert list((settings.storage_dir / "tmp").iterdir()) == []
