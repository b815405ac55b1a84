"""The pages' cookie session and CSRF token over HTTP: staff sign in with TOTP through the same service, the API
never accepts the page cookie, sign-out and an admin's "end sessions" end a page session, refusals are pages."""
import re

import pyotp

from core import identity_service
from tests.helpers import PASSWORD, register_bidder

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


async def _form_token(client, path="/signin") -> str:
    resp = await client.get(path)
    assert resp.status == 200
    return TOKEN.search(await resp.text()).group(1)


async def _sign_in(client, username, password=PASSWORD, totp=None):
    token = await _form_token(client)
    data = {"csrf_token": token, "username": username, "password": password}
    if totp:
        data["totp"] = totp
    return await client.post("/signin", data=data, allow_redirects=False)


async def test_the_csrf_cookie_is_httponly_strict_and_every_unsafe_page_request_needs_the_token(client):
    resp = await client.get("/signin")
    cookie = resp.cookies["bidroom_csrf"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    refused = await client.post("/signin", data={"username": "x", "password": "y"})
    assert refused.status == 403 and "csrf_failed" in await refused.text()
    as_json = await client.post("/signout", data={}, headers={"Accept": "application/json"})
    assert as_json.status == 403 and (await as_json.json())["error"]["code"] == "csrf_failed"
    wrong = await client.put("/tenders/ZS-2026-FJSZ-00001/lots/X/bid", data=b"x",
                             headers={"X-CSRF-Token": "0" * 64, "Accept": "application/json"})
    assert wrong.status == 403


async def test_staff_sign_in_with_totp_and_the_api_ignores_the_page_cookie(client, sessions):
    async with sessions() as session, session.begin():
        user, _ = await identity_service.create_user(session, actor="system", username="page-agent",
                                                     password=PASSWORD, display_name="代理 王", roles=["agent"])
        secret = user.totp_secret
    refused = await _sign_in(client, "page-agent")
    assert refused.status == 401
    assert "one-time code" in await refused.text() or "动态验证码" in await refused.text()
    assert "bidroom_session" not in refused.cookies
    ok = await _sign_in(client, "page-agent", totp=pyotp.TOTP(secret).now())
    assert ok.status == 303 and ok.headers["Location"] == "/manage"  # an agent lands on the tenders they manage
    session_cookie = ok.cookies["bidroom_session"]
    assert session_cookie["httponly"] and session_cookie["samesite"] == "Strict"
    page = await client.get("/tenders")
    assert "代理 王" in await page.text()
    api = await client.get("/api/v1/me")  # the cookie jar carries the page cookie; the API wants a bearer token
    assert api.status == 401 and (await api.json())["error"]["code"] == "authentication_required"


async def test_sign_out_and_an_admins_end_of_sessions_end_the_page_session(client, sessions):
    user = await register_bidder(client, "page-bidder")
    assert (await _sign_in(client, "page-bidder")).status == 303
    assert (await client.get("/me/bids", allow_redirects=False)).status == 200
    kept = client.session.cookie_jar.filter_cookies(client.make_url("/"))["bidroom_session"].value
    token = await _form_token(client, "/me/bids")
    out = await client.post("/signout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303
    client.session.cookie_jar.update_cookies({"bidroom_session": kept})  # a copy kept by someone else
    gone = await client.get("/me/bids", allow_redirects=False)
    assert gone.status == 303 and gone.headers["Location"].startswith("/signin")

    assert (await _sign_in(client, "page-bidder")).status == 303
    assert (await client.get("/me/bids", allow_redirects=False)).status == 200
    async with sessions() as session, session.begin():
        await identity_service.kill_sessions(session, actor="system", user_public_id=user["public_id"])
    assert (await client.get("/me/bids", allow_redirects=False)).status == 303


async def test_a_bidder_page_refuses_other_roles_like_the_api(client, sessions):
    async with sessions() as session, session.begin():
        await identity_service.create_user(session, actor="system", username="page-expert", password=PASSWORD,
                                           display_name="专家", roles=["expert"])
    assert (await _sign_in(client, "page-expert")).status == 303
    resp = await client.get("/me/bids")
    assert resp.status == 403 and "role_forbidden" in await resp.text()


async def test_the_language_link_sets_the_preference_and_goes_back(client):
    resp = await client.get("/lang/en?next=/tenders%3Fq%3D%E4%B8%AD%E5%B1%B1", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/tenders?q=中山"
    assert resp.cookies["bidroom_lang"].value == "en" and resp.cookies["bidroom_lang"]["samesite"] == "Strict"
    page = await client.get("/tenders")
    assert '<html lang="en">' in await page.text() and 'hreflang="zh-CN"' in await page.text()
    elsewhere = await client.get("/lang/zh_CN?next=https://elsewhere.example/", allow_redirects=False)
    assert elsewhere.headers["Location"] == "/"  # never sent to another site


async def test_unknown_pages_and_bad_listing_queries_are_pages_in_the_readers_language(client):
    missing = await client.get("/no-such-page", headers={"Accept-Language": "en"})
    assert missing.status == 404 and "There is no such page." in await missing.text()
    bad = await client.get("/tenders?status=nonsense", headers={"Accept-Language": "zh-CN"})
    assert bad.status in (400, 422) and "<html lang=\"zh-CN\">" in await bad.text()
    api = await client.get("/api/v1/no-such-route")
    assert api.status == 404 and (await api.json())["error"]["code"] == "not_found"
