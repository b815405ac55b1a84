"""Hostile JSON through the API: oversized, deeply nested, invalid UTF-8, NaN and huge numbers, NUL characters and
lone surrogates in names and strings, in bodies, query strings and paths.

Each is refused with a 4xx JSON error and a stable code, reading no more than the body limit, and changes nothing:
no account, organisation, ledger entry or idempotency record appears."""
from __future__ import annotations

import tracemalloc

import pytest

from core.settings import Settings
from tests.helpers import PASSWORD, bidder, social_credit_code
from tests.hostile.state import snapshot
from web.api import MAX_JSON_DEPTH

BODY_LIMIT = 1024 * 1024


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    """The tests' settings with the default 1 MiB body limit, so 100,000 brackets fit under it."""
    return Settings(data_dir=tmp_path / "var", database_url=db_url, run_scheduler=False, log_json=False,
                    public_url="http://127.0.0.1:8080", max_body_bytes=BODY_LIMIT, statutory_periods=False)


def registration(username: str = "hostile1", org_name: str = "中山市敌意测试有限公司") -> dict:
    return {"username": username, "password": PASSWORD, "display_name": "敌意测试", "role": "bidder",
            "organisation": {"name": org_name, "social_credit_code": social_credit_code()}}


async def refused(resp) -> tuple[int, str]:
    assert resp.content_type == "application/json", await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] and error["message"] and error["request_id"]
    return resp.status, error["code"]


async def post_raw(client, path: str, body: bytes, headers: dict | None = None):
    return await client.post(path, data=body, headers={"Content-Type": "application/json", **(headers or {})})


async def test_an_oversized_body_is_413_read_no_further_than_the_limit(client, raw_conn):
    before = await snapshot(raw_conn)
    chunk = b" " * (64 * 1024)

    async def forty_mib():  # streamed, chunked: the client holds one chunk at a time
        yield b'{"username": "'
        for _ in range(40 * 16):
            yield chunk
        yield b'"}'

    tracemalloc.start()
    try:
        resp = await client.post("/api/v1/auth/register", data=forty_mib(),
                                 headers={"Content-Type": "application/json"})
        status, code = await refused(resp)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (status, code) == (413, "payload_too_large")
    # the server buffered about the limit, not the 40 MiB sent
    assert peak < 8 * BODY_LIMIT, peak
    assert await snapshot(raw_conn) == before


@pytest.mark.parametrize("body", [
    b"[" * 100_000,                                   # 100k brackets, never closed
    b"[" * 100_000 + b"]" * 100_000,                  # and closed
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
], ids=["open-brackets", "closed-brackets", "objects"])
async def test_deep_nesting_is_422_json_too_deep(client, raw_conn, body):
    before = await snapshot(raw_conn)
    status, code = await refused(await post_raw(client, "/api/v1/auth/register", body))
    assert (status, code) == (422, "json_too_deep")
    assert await snapshot(raw_conn) == before


async def test_nesting_just_past_the_limit_inside_a_valid_request_is_422(client, raw_conn):
    before = await snapshot(raw_conn)
    body = registration()
    body["display_name"] = [[]]
    for _ in range(MAX_JSON_DEPTH):
        body["display_name"] = [body["display_name"]]
    resp = await client.post("/api/v1/auth/register", json=body)
    status, code = await refused(resp)
    assert (status, code) == (422, "json_too_deep")
    assert (await resp.json())["error"]["details"]["path"].startswith("body.display_name.0.0")
    assert await snapshot(raw_conn) == before


@pytest.mark.parametrize("body,code", [
    (b'{"username": "\xff\xfe\xfd", "password": "x"}', "invalid_json"),          # invalid UTF-8
    (b'{"username": "\xc0\xaf"}', "invalid_json"),                               # overlong encoding of "/"
    (b'{"username": "a", "password": "b", "x": NaN}', "invalid_json"),
    (b'{"username": "a", "password": "b", "x": -Infinity}', "invalid_json"),
    (b'{"username": "a", "password": "b", "x": ' + b"9" * 100_000 + b"}", "invalid_json"),  # over int's digit limit
    (b"\x00\x00\x00{", "invalid_json"),
], ids=["invalid-utf8", "overlong-utf8", "nan", "infinity", "huge-integer", "nul-bytes"])
async def test_undecodable_bodies_are_400_invalid_json(client, raw_conn, body, code):
    before = await snapshot(raw_conn)
    for path in ("/api/v1/auth/register", "/api/v1/auth/login"):
        assert await refused(await post_raw(client, path, body)) == (400, code)
    assert await snapshot(raw_conn) == before


@pytest.mark.parametrize("field,value,code", [
    ("username", "evil\u0000name", "nul_character"),
    ("display_name", "中山\u0000公司", "nul_character"),
    ("org", "中山市\u0000建设有限公司", "nul_character"),
    ("display_name", "lone \ud800 surrogate", "invalid_unicode"),
    ("key", "na\u0000me", "nul_character"),
])
async def test_nul_and_lone_surrogates_in_strings_are_422(client, raw_conn, field, value, code):
    before = await snapshot(raw_conn)
    body = registration()
    if field == "org":
        body["organisation"]["name"] = value
    elif field == "key":
        body[value] = "x"
    else:
        body[field] = value
    # json.dumps writes \\u0000 and \\ud800 escapes: valid JSON text that decodes to the hostile string
    resp = await client.post("/api/v1/auth/register", json=body)
    assert await refused(resp) == (422, code)
    assert await snapshot(raw_conn) == before


async def test_nul_in_a_query_or_path_parameter_is_422_not_a_database_error(client, raw_conn):
    someone = await bidder(client)
    before = await snapshot(raw_conn)
    for url in ("/api/v1/tenders?q=a%00b", "/api/v1/tenders/ZS-2026%00", "/api/v1/records/R%00",
                ):
        resp = await client.get(url, headers=someone.headers)
        status, code = await refused(resp)
        assert status == 422 and code in ("nul_character", "invalid_unicode", "validation_failed"), (url, code)
    # a write with a NUL path parameter changes nothing either
    resp = await client.post("/api/v1/lots/L%00/registrations", headers=someone.headers)
    assert await refused(resp) == (422, "nul_character")
    assert await snapshot(raw_conn) == before


async def test_a_hostile_idempotent_post_stores_no_record(client, raw_conn):
    before = await snapshot(raw_conn)
    resp = await post_raw(client, "/api/v1/auth/login", b"[" * 100_000, headers={"Idempotency-Key": "k1"})
    assert await refused(resp) == (422, "json_too_deep")
    assert await snapshot(raw_conn) == before
