"""Bad input gets a clear 4xx JSON error with a stable code, never a 5xx."""
import pytest

from tests.helpers import bidder


async def _error(resp):
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body["error"]) >= {"code", "message", "request_id"}
    return resp.status, body["error"]


async def test_malformed_json_is_400_invalid_json(client):
    resp = await client.post("/api/v1/auth/login", data=b'{"username": ', headers={"Content-Type": "application/json"})
    status, error = await _error(resp)
    assert (status, error["code"]) == (400, "invalid_json")


async def test_schema_violations_are_422_with_field_paths(client):
    resp = await client.post("/api/v1/auth/register", json={
        "username": "x", "password": "short", "role": "bidder", "organisation": {"name": "a"}, "extra": 1})
    status, error = await _error(resp)
    assert (status, error["code"]) == (422, "validation_failed")
    paths = {e["path"] for e in error["details"]["errors"]}
    assert {"body.username", "body.password", "body.display_name", "body.organisation.name",
            "body.organisation.social_credit_code", "body.extra"} <= paths


async def test_unknown_route_is_a_json_404(client):
    status, error = await _error(await client.get("/api/v1/no-such-thing"))
    assert (status, error["code"]) == (404, "not_found")


async def test_wrong_method_is_a_json_405(client):
    status, error = await _error(await client.delete("/api/v1/me"))
    assert (status, error["code"]) == (405, "method_not_allowed")


async def test_body_over_the_limit_is_413(client, settings):
    big = b'{"username": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
    resp = await client.post("/api/v1/auth/login", data=big, headers={"Content-Type": "application/json"})
    status, error = await _error(resp)
    assert (status, error["code"]) == (413, "payload_too_large")


async def test_wrong_content_type_is_415(client):
    resp = await client.post("/api/v1/auth/login", data=b"username=a", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    status, error = await _error(resp)
    assert (status, error["code"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize("header,code", [
    ("Bearer nonsense", "token_malformed"),
    ("Basic dXNlcjpwYXNz", "authentication_malformed"),
    ("Bearer ", "authentication_malformed"),
])
async def test_bad_credentials_are_401_with_a_stable_code(client, header, code):
    status, error = await _error(await client.get("/api/v1/me", headers={"Authorization": header}))
    assert (status, error["code"]) == (401, code)


async def test_missing_credentials_are_401(client):
    status, error = await _error(await client.get("/api/v1/me"))
    assert (status, error["code"]) == (401, "authentication_required")


async def test_json_array_instead_of_object_is_422(client):
    status, error = await _error(await client.post("/api/v1/auth/login", json=[1, 2]))
    assert status == 422


async def test_query_parameters_are_validated(client, sessions):
    from tests.helpers import staff
    admin = await staff(sessions, client, "admin")
    status, error = await _error(await client.get("/api/v1/admin/users?limit=abc", headers=admin.headers))
    assert status == 422 and error["details"]["errors"][0]["path"] == "query.limit"


async def test_every_response_carries_the_security_headers(client):
    for resp in [await client.get("/healthz"), await client.get("/nope"), await client.get("/api/v1/openapi.json")]:
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Request-Id"]


async def test_health_readiness_metrics_and_openapi(client):
    assert (await client.get("/healthz")).status == 200
    ready = await (await client.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["schema"]
    await client.get("/api/v1/me")
    metrics = await (await client.get("/metrics")).text()
    assert 'bidroom_http_requests_total{method="GET",route="/api/v1/me",status="401"}' in metrics
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[-1] in spec["components"]["schemas"]
    assert "429" in login["responses"]
    assert spec["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
    docs = await client.get("/api/v1/docs")
    assert docs.status == 200 and "openapi.json" in await docs.text()


async def test_readiness_fails_when_the_schema_is_behind_this_build(client, raw_conn):
    heads = (await (await client.get("/readyz")).json())["schema"]
    await raw_conn.execute("DELETE FROM alembic_version WHERE version_num = $1", heads[-1])
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["status"] == "schema_out_of_date" and heads[-1] in body["expected"]
