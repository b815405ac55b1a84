"""Venue device accounts: the unattended boxes that publish a room's camera (全景).

- A centre admin creates a device for a site. The device is an account of its own (role `device`, no password,
  no TOTP, no organisation) with a row in media_device naming its site.
- Its credential is a long-lived random secret, shown once when issued and stored only as SHA-256. A device may
  hold several (a replacement box is given a new one before the old one is revoked). Each issuance and each
  revocation is a ledger entry.
- The device trades its credential for an ordinary short-lived access token (`device_token`, an OAuth-style
  client-credentials exchange; `auth.device_token` in the ledger), which it sends on the room camera's
  publishing WebSocket.
- Revoking a credential also ends every access token the device holds (app_user.sessions_revoked_at): a box
  that keeps another credential trades it again.
- What a device may do is decided elsewhere: evaluation.media.grants lets it publish only the room camera of a
  room of its own site booked for a live session; web.api refuses it every other route (`devices=True` marks
  the few it may call).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import Conflict, NotFound, Unauthorized
from core.identity_models import User
from core.ids import public_id
from core.principal import Principal
from core.tokens import TokenIssuer
from evaluation import venues
from evaluation.media.models import MediaDevice, MediaDeviceCredential
from evaluation.models import Site
from evidence import ledger_service as ledger

DEVICE_ROLE = "device"
SECRET_PREFIX = "bdv_"
NO_PASSWORD = "!device: signs in with its credential only"  # never a valid Argon2 hash


@dataclass
class Issued:
    """A credential as issued: the secret is in this answer and nowhere else."""

    credential: MediaDeviceCredential
    secret: str


@dataclass
class DeviceView:
    device: MediaDevice
    site: Site
    user: User
    credentials: list[MediaDeviceCredential]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def entity(device: MediaDevice) -> str:
    return ledger.entity_ref("media_device", device.public_id)


async def _issue(session: AsyncSession, who: Principal, device: MediaDevice) -> Issued:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    credential = MediaDeviceCredential(public_id=public_id("DC", 6), device_id=device.id, secret_hash=_hash(secret),
                                       issued_by_id=who.user_id, issued_at=await db_now(session))
    session.add(credential)
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="media.device.credential_issue", entity=entity(device),
                        payload={"device": device.public_id, "credential": credential.public_id})
    return Issued(credential, secret)


async def create_device(session: AsyncSession, *, who: Principal, site_public_id: str,
                        name: str) -> tuple[DeviceView, Issued]:
    """A device account for a site, with its first credential."""
    venues._require_admin(who)
    site = await venues.get_site(session, site_public_id)
    if site.status != "active":
        raise Conflict("a retired site takes no new devices", code="site_retired",
                       details={"site_id": site.public_id})
    device_pid = public_id("DV", 6)
    user = User(public_id=public_id("U"), username=f"device-{device_pid.lower()}", display_name=name,
                password_hash=NO_PASSWORD, roles=[DEVICE_ROLE])
    session.add(user)
    await session.flush()
    device = MediaDevice(public_id=device_pid, user_id=user.id, site_id=site.id, name=name,
                         created_by_id=who.user_id)
    session.add(device)
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="media.device.create", entity=entity(device),
                        payload={"device": device.public_id, "site": site.public_id, "name": name,
                                 "account": user.public_id})
    issued = await _issue(session, who, device)
    return DeviceView(device, site, user, [issued.credential]), issued


async def _device(session: AsyncSession, device_public_id: str, *, lock: bool = False) -> MediaDevice:
    q = select(MediaDevice).where(MediaDevice.public_id == device_public_id)
    device = (await session.execute(q.with_for_update() if lock else q)).scalar_one_or_none()
    if device is None:
        raise NotFound("no such device", code="device_not_found", details={"device_id": device_public_id})
    return device


async def _view(session: AsyncSession, device: MediaDevice) -> DeviceView:
    site = (await session.execute(select(Site).where(Site.id == device.site_id))).scalar_one()
    user = (await session.execute(select(User).where(User.id == device.user_id))).scalar_one()
    creds = list((await session.execute(select(MediaDeviceCredential).where(
        MediaDeviceCredential.device_id == device.id).order_by(MediaDeviceCredential.id))).scalars())
    return DeviceView(device, site, user, creds)


async def issue_credential(session: AsyncSession, *, who: Principal, device_public_id: str) -> tuple[DeviceView,
                                                                                                     Issued]:
    """Another credential for a device (say, for a replacement box)."""
    venues._require_admin(who)
    device = await _device(session, device_public_id, lock=True)
    issued = await _issue(session, who, device)
    return await _view(session, device), issued


async def revoke_credential(session: AsyncSession, *, who: Principal, device_public_id: str,
                            credential_public_id: str) -> DeviceView:
    """Revoke a credential; every access token the device holds ends with it."""
    venues._require_admin(who)
    device = await _device(session, device_public_id, lock=True)
    credential = (await session.execute(select(MediaDeviceCredential).where(
        MediaDeviceCredential.public_id == credential_public_id, MediaDeviceCredential.device_id == device.id)
        .with_for_update())).scalar_one_or_none()
    if credential is None:
        raise NotFound("no such credential of this device", code="credential_not_found",
                       details={"device_id": device.public_id, "credential_id": credential_public_id})
    if credential.revoked_at is not None:
        raise Conflict("this credential is already revoked", code="credential_revoked",
                       details={"credential_id": credential.public_id})
    now = await db_now(session)
    credential.revoked_at, credential.revoked_by_id = now, who.user_id
    user = (await session.execute(select(User).where(User.id == device.user_id).with_for_update())).scalar_one()
    user.sessions_revoked_at = now
    await ledger.append(session, actor=who.public_id, action="media.device.credential_revoke", entity=entity(device),
                        payload={"device": device.public_id, "credential": credential.public_id,
                                 "access_tokens_revoked_at": now.isoformat()})
    return await _view(session, device)


async def site_devices(session: AsyncSession, *, who: Principal, site_public_id: str) -> list[DeviceView]:
    venues._require_admin(who)
    site = await venues.get_site(session, site_public_id)
    devices = (await session.execute(select(MediaDevice).where(MediaDevice.site_id == site.id)
                                     .order_by(MediaDevice.id))).scalars()
    return [await _view(session, d) for d in devices]


async def device_token(session: AsyncSession, *, device_public_id: str, secret: str, issuer: TokenIssuer) -> str:
    """Trade a device's credential for an access token (the ledger records each)."""
    refused = Unauthorized("unknown device or wrong secret", code="device_credentials_invalid")
    row = (await session.execute(select(MediaDevice, MediaDeviceCredential, User)
                                 .join(MediaDeviceCredential, MediaDeviceCredential.device_id == MediaDevice.id)
                                 .join(User, User.id == MediaDevice.user_id)
                                 .where(MediaDeviceCredential.secret_hash == _hash(secret))
                                 .with_for_update(of=MediaDeviceCredential))).one_or_none()
    if row is None or not hmac.compare_digest(row[0].public_id, device_public_id):
        raise refused
    device, credential, user = row
    if credential.revoked_at is not None:
        raise Unauthorized("this device credential was revoked", code="device_credential_revoked",
                           details={"credential_id": credential.public_id})
    if not user.is_active:
        raise Unauthorized("account is disabled or gone", code="account_disabled")
    credential.last_used_at = await db_now(session)
    await ledger.append(session, actor=user.public_id, action="auth.device_token", entity=entity(device),
                        payload={"device": device.public_id, "credential": credential.public_id})
    return issuer.issue(sub=user.public_id, roles=[DEVICE_ROLE], org=None)


async def site_of(session: AsyncSession, who: Principal) -> tuple[str, int] | None:
    """The device's (public id, site id), or None when this account is not a device."""
    if not who.has(DEVICE_ROLE):
        return None
    row = (await session.execute(select(MediaDevice.public_id, MediaDevice.site_id).where(
        MediaDevice.user_id == who.user_id))).one_or_none()
    return (row[0], row[1]) if row else None
