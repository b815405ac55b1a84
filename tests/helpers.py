"""Helpers that act as real users through the HTTP API."""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pyotp
from core import identity_service
from core.identity_rules import uscc_check_char

PASSWORD = "correct-horse-7battery"
_n = itertools.count(1)


def social_credit_code(seq: int | None = None) -> str:
    """A checksum-valid unified social credit code, distinct per call."""
    seq = next(_n) if seq is None else seq
    first17 = f"914420{seq:011d}"[:17]
    return first17 + uscc_check_char(first17)


async def register_bidder(client, username: str | None = None, org_name: str | None = None) -> dict:
    username = username or f"bidder{next(_n)}"
    resp = await client.post("/api/v1/auth/register", json={
        "username": username, "password": PASSWORD, "display_name": org_name or f"{username} 公司",
        "role": "bidder", "organisation": {"name": org_name or f"中山市{username}建设有限公司",
                                           "social_credit_code": social_credit_code()}})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def login(client, username: str, password: str = PASSWORD, totp: str | None = None) -> dict:
    body = {"username": username, "password": password}
    if totp:
        body["totp"] = totp
    resp = await client.post("/api/v1/auth/login", json=body)
    assert resp.status == 200, await resp.text()
    return await resp.json()


@dataclass
class Actor:
    """A signed-in user: the headers to send and who they are."""

    headers: dict
    public_id: str
    username: str
    tokens: dict

    @property
    def token(self) -> str:
        """The access token (what a browser sends as the first message of a media socket)."""
        return self.tokens["access_token"]


async def staff(sessions, client, role: str, username: str | None = None,
                organisation_public_id: str | None = None) -> Actor:
    """Create a staff account directly (as `bidroom users create` would) and sign it in."""
    username = username or f"{role}{next(_n)}"
    async with sessions() as session, session.begin():
        user, _ = await identity_service.create_user(session, actor="system", username=username, password=PASSWORD,
                                                     display_name=f"{role} {username}", roles=[role],
                                                     organisation_public_id=organisation_public_id)
        secret = user.totp_secret
    tokens = await login(client, username, totp=pyotp.TOTP(secret).now() if secret else None)
    return Actor(auth(tokens), user.public_id, username, tokens)


async def bidder(client, username: str | None = None, org_name: str | None = None) -> Actor:
    """Register a bidder with its organisation and sign it in."""
    user = await register_bidder(client, username, org_name)
    tokens = await login(client, user["username"])
    return Actor(auth(tokens), user["public_id"], user["username"], tokens)


def auth(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def submit_share(client, code: str, headers: dict, passphrase: str, *, attempts: int = 5):
    """A key holder's share for the opening of tender `code`, sent as the holder's client sends it: a 503
    key_unlock_busy (the server too loaded to run the key's scrypt; the share was not used) is sent again after its
    Retry-After. Returns (status, body) of the last answer."""
    for _ in range(attempts):
        resp = await client.post(f"/api/v1/tenders/{code}/opening/shares", json={"passphrase": passphrase},
                                 headers=headers)
        body = await resp.json()
        if resp.status != 503 or body["error"]["code"] != "key_unlock_busy":
            return resp.status, body
        await asyncio.sleep(int(resp.headers.get("Retry-After", "1")))
    return resp.status, body
