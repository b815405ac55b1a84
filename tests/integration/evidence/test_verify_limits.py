"""The public verification upload under abuse: hostile PDFs, a per-client rate limit and a bounded pool.

Every refusal is a 4xx JSON error with a stable code; nothing is written (the ledger stays as it was)."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.hostile import pdfs
from tests.integration.evidence.test_records_api import _issue

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
