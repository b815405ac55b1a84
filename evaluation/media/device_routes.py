"""HTTP endpoints of venue device accounts (the room cameras' unattended boxes): centre admins create them for a
site and issue and revoke their credentials; a device trades its credential for an access token. Thin:
evaluation.media.devices decides."""
from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from evaluation.media import devices
from web.api import Api
from web.keys import SETTINGS, TOKENS, Principal, db

api = Api("media-devices")

ADMIN = ("admin",)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DeviceIn(_In):
    name: str = Field(min_length=1, max_length=100, description="e.g. 第1评标室全景摄像机")


class DeviceTokenIn(_In):
    device_id: str = Field(min_length=1, max_length=16)
    secret: str = Field(min_length=1, max_length=200)


class CredentialOut(BaseModel):
    credential_id: str
    issued_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class DeviceOut(BaseModel):
    device_id: str
    site_id: str
    name: str
    account: str = Field(description="the device's own account (role device)")
    credentials: list[CredentialOut]
    created_at: datetime


class IssuedOut(BaseModel):
    device: DeviceOut
    credential_id: str
    secret: str = Field(description="shown once, now: only its SHA-256 is kept")


class DeviceTokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


def _out(view: devices.DeviceView) -> DeviceOut:
    return DeviceOut(device_id=view.device.public_id, site_id=view.site.public_id, name=view.device.name,
                     account=view.user.public_id, created_at=view.device.created_at,
                     credentials=[CredentialOut(credential_id=c.public_id, issued_at=c.issued_at,
                                                revoked_at=c.revoked_at, last_used_at=c.last_used_at)
                                  for c in view.credentials])


def _issued(view: devices.DeviceView, issued: devices.Issued) -> IssuedOut:
    return IssuedOut(device=_out(view), credential_id=issued.credential.public_id, secret=issued.secret)


@api.post("/api/v1/sites/{site_id}/devices", summary="Add a venue device (a room camera's box) to a site, with its "
          "first credential", body=DeviceIn, response=IssuedOut, status=201, roles=ADMIN, errors=(403, 404, 409, 422))
async def create_device(request: web.Request, who: Principal, body: DeviceIn):
    view, issued = await devices.create_device(db(request), who=who, site_public_id=request.match_info["site_id"],
                                               name=body.name)
    return _issued(view, issued)


@api.get("/api/v1/sites/{site_id}/devices", summary="A site's venue devices and their credentials (never the "
         "secrets)", response=list[DeviceOut], roles=ADMIN, errors=(403, 404))
async def list_devices(request: web.Request, who: Principal):
    return [_out(v) for v in await devices.site_devices(db(request), who=who,
                                                        site_public_id=request.match_info["site_id"])]


@api.post("/api/v1/media/devices/{device_id}/credentials", summary="Issue another credential to a device",
          response=IssuedOut, status=201, roles=ADMIN, errors=(403, 404))
async def issue_credential(request: web.Request, who: Principal):
    view, issued = await devices.issue_credential(db(request), who=who,
                                                  device_public_id=request.match_info["device_id"])
    return _issued(view, issued)


@api.post("/api/v1/media/devices/{device_id}/credentials/{credential_id}/revoke",
          summary="Revoke a device credential; the device's access tokens end with it", response=DeviceOut,
          roles=ADMIN, errors=(403, 404, 409))
async def revoke_credential(request: web.Request, who: Principal):
    view = await devices.revoke_credential(db(request), who=who, device_public_id=request.match_info["device_id"],
                                           credential_public_id=request.match_info["credential_id"])
    return _out(view)


@api.post("/api/v1/media/devices/token", summary="A device trades its credential for an access token",
          body=DeviceTokenIn, response=DeviceTokenOut, auth=False, devices=True, errors=(401, 422))
async def device_token(request: web.Request, body: DeviceTokenIn):
    token = await devices.device_token(db(request), device_public_id=body.device_id, secret=body.secret,
                                       issuer=request.app[TOKENS])
    return DeviceTokenOut(access_token=token, expires_in=request.app[SETTINGS].access_token_ttl_s)
