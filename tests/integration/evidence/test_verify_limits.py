"""The public verification upload under abuse: hostile PDFs, a per-client rate limit and a bounded pool.

Every refusal is a 4xx JSON error with a stable code; nothing is written (the ledger stays as it was)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.hostile import pdfs
from tests.integration.evidence.test_records_api import _issue
from web.keys import REFUSALS

PDF = {"Content-Type": "application/pdf"}
URL = "/api/v1/records/verify"


async def _post(client, data: bytes, headers=None):
    resp = await client.post(URL, data=data, headers={**PDF, **(headers or {})})
    return resp, await resp.json()


async def _ledger_size(raw_conn) -> int:
    return await raw_conn.fetchval("SELECT count(*) FROM audit_entry")


@pytest.mark.parametrize("name, pdf", [
    ("a compressed DSS stream inflating to 512 MiB", pdfs.deflate_bomb),
    ("an object stream holding the form, inflating to 512 MiB", pdfs.object_stream_bomb),
])
async def test_a_deflate_bomb_is_refused_with_a_clear_422(client, raw_conn, name, pdf):
    before = await _ledger_size(raw_conn)
    data = pdf()
    assert len(data) < 1024 * 1024  # small on the wire
    resp, body = await _post(client, data)
    assert resp.status == 422, body
    assert body["error"]["code"] == "pdf_inflates_too_much"
    assert body["error"]["details"]["limit_bytes"] <= 64 * 1024 * 1024
    assert await _ledger_size(raw_conn) == before
    # the same file without the payload is an ordinary unsigned PDF
    resp, body = await _post(client, pdf(0))
    assert resp.status == 200 and body["signed"] is False and body["archived"] is False


async def test_a_pdf_with_2000_signature_fields_is_refused_before_any_is_parsed(client, raw_conn):
    before = await _ledger_size(raw_conn)
    resp, body = await _post(client, pdfs.many_signature_fields(2000))
    assert resp.status == 422, body
    assert body["error"]["code"] == "too_many_signature_fields"
    assert await _ledger_size(raw_conn) == before


async def test_the_size_limit_fits_a_real_record_and_refuses_one_byte_more(settings, sessions):
    app_settings = settings.with_(verify_max_bytes=256 * 1024)
    async with _client(app_settings) as client:
        record_no, _ = await _issue(client, sessions)
        pdf = await (await client.get(f"/api/v1/records/{record_no}")).read()
        assert len(pdf) < app_settings.verify_max_bytes
        resp, body = await _post(client, pdf)
        assert resp.status == 200 and body["valid"] and body["archived"]
        resp, body = await _post(client, pdf + b"\0" * (app_settings.verify_max_bytes - len(pdf) + 1))
        assert resp.status == 413 and body["error"]["code"] == "upload_too_large"
        assert body["error"]["details"]["limit_bytes"] == app_settings.verify_max_bytes


async def test_each_client_address_has_its_own_rate_limit_behind_a_trusted_proxy(settings):
    app_settings = settings.with_(verify_per_minute=2, trusted_proxies=("127.0.0.1/32",))
    small = pdfs.deflate_bomb(0)
    alice, bob = {"X-Forwarded-For": "203.0.113.5"}, {"X-Forwarded-For": "203.0.113.6"}
    async with _client(app_settings) as client:
        for _ in range(2):
            resp, _ = await _post(client, small, alice)
            assert resp.status == 200
        resp, body = await _post(client, small, alice)
        assert resp.status == 429 and body["error"]["code"] == "verify_rate_limited"
        assert int(resp.headers["Retry-After"]) >= 1
        # another client behind the same proxy is not affected
        resp, _ = await _post(client, small, bob)
        assert resp.status == 200
        # a client cannot pick another's bucket by writing the header itself: the proxy appends the real
        # address, and only the rightmost entry the trusted proxy vouched for counts
        resp, body = await _post(client, small, {"X-Forwarded-For": "203.0.113.6, 203.0.113.5"})
        assert resp.status == 429 and body["error"]["code"] == "verify_rate_limited"


async def test_a_client_that_ignores_retry_after_waits_longer_for_its_next_refusal(settings):
    """A 429 is held before it is answered; a client that asks again before its Retry-After has passed is held
    longer (rate_limited_repeat_hold_s, jittered down to half), so a flood of clients that never wait costs the
    server one request each per hold. Other clients are not affected."""
    app_settings = settings.with_(verify_per_minute=2, trusted_proxies=("127.0.0.1/32",),
                                  rate_limited_hold_s=0, rate_limited_repeat_hold_s=1.5)
    small = pdfs.deflate_bomb(0)
    alice, bob = {"X-Forwarded-For": "203.0.113.5"}, {"X-Forwarded-For": "203.0.113.6"}
    async with _client(app_settings) as client:
        book = client.server.app[REFUSALS]
        for _ in range(2):
            assert (await _post(client, small, alice))[0].status == 200
        resp, _ = await _post(client, small, alice)  # the first refusal
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 2
        started = time.monotonic()
        resp, body = await _post(client, small, alice)  # at once, ignoring the Retry-After
        assert resp.status == 429 and body["error"]["code"] == "verify_rate_limited"
        assert time.monotonic() - started >= 0.75  # held at least half of the 1.5 s
        assert book.ignored("addr:203.0.113.5", time.monotonic())
        # the other client behind the same proxy is served, and was never refused
        assert (await _post(client, small, bob))[0].status == 200
        assert not book.ignored("addr:203.0.113.6", time.monotonic())


async def test_a_full_validation_pool_answers_429_with_retry_after(settings, sessions):
    app_settings = settings.with_(verify_queue=1, verify_per_minute=100)
    async with _client(app_settings) as client:
        record_no, _ = await _issue(client, sessions)
        pdf = await (await client.get(f"/api/v1/records/{record_no}")).read()
        answers = await asyncio.gather(*[_post(client, pdf) for _ in range(4)])
        statuses = sorted(resp.status for resp, _ in answers)
        assert 200 in statuses and 429 in statuses and set(statuses) <= {200, 429}
        for resp, body in answers:
            if resp.status == 429:
                assert body["error"]["code"] == "verify_busy" and int(resp.headers["Retry-After"]) >= 1
            else:
                assert body["valid"] and body["archived"]
        # once the pool is free again, the next upload is served
        resp, body = await _post(client, pdf)
        assert resp.status == 200 and body["valid"]


class _client:
    """A test client of an app built with other settings (the shared fixture's app has the defaults)."""

    def __init__(self, settings):
        self.settings = settings

    async def __aenter__(self) -> TestClient:
        from web.app import create_app
        self.client = TestClient(TestServer(create_app(self.settings)))
        await self.client.start_server()
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.close()


async def test_an_oversized_upload_is_answered_413_without_the_server_reading_its_body(client, raw_conn):
    """A caller that posts 64 MiB again and again must not make the server read 64 MiB each time: the 413 comes from
    Content-Length, the socket is not read any more, and the connection closes soon after the answer."""
    before = await _ledger_size(raw_conn)
    claimed = 64 * 1024 * 1024
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"POST {URL} HTTP/1.1\r\nHost: bidroom\r\nContent-Type: application/pdf\r\n"
                 f"Content-Length: {claimed}\r\n\r\n".encode())
    chunk = b"%PDF-1.7\n" + b"\0" * (1024 * 1024 - 9)
    sent = 0

    async def send_all() -> None:
        nonlocal sent
        while sent < claimed:
            writer.write(chunk)
            await writer.drain()  # waits while the server is not reading
            sent += len(chunk)
    sending = asyncio.create_task(send_all())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status_line, *header_lines = head.decode().split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in header_lines if line)}
        assert status_line.startswith("HTTP/1.1 413"), status_line
        assert headers["connection"].lower() == "close"  # no keep-alive after an unread body
        body = await reader.readexactly(int(headers["content-length"]))
        assert json.loads(body)["error"]["code"] == "upload_too_large"
        # the connection is closed by the server (the client sees its end or a reset) ...
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 30) == b""
        # ... before the body was sent: what the kernels buffer is all that left the client
        await asyncio.sleep(0.2)
        assert sent < claimed // 4, sent
    finally:
        sending.cancel()
        with contextlib.suppress(BaseException):
            await sending
        writer.close()
    assert await _ledger_size(raw_conn) == before
    # the server goes on answering
    resp, body = await _post(client, pdfs.deflate_bomb(0))
    assert resp.status == 200 and body["signed"] is False
