"""Enrolment links: an admin invites an expert of the pool or a new member of staff to set up their own sign-in.

The admin never learns either factor: the person chooses the password, and for roles that need a second factor
scans a TOTP secret that only becomes theirs once they have typed a first valid code from it. A link is single
use, lasts ENROLMENT_TTL by the database clock, and a new link for the same person revokes the older ones.
Never commits: the caller's unit of work does.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import pyotp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import identity_service as accounts
from core.clock import db_now, passed
from core.errors import Conflict, Gone, NotFound, Unprocessable
from core.identity_models import ROLES, SELF_REGISTERING_ROLES, TOTP_REQUIRED_ROLES, Organisation, User
from core.ids import public_id
from core.passwords import hash_password
from core.principal import Principal
from core.totp import TotpSecretUnreadable, TotpVault, is_sealed, matching_step
from evidence import ledger_service as ledger
from expert_pool.models import Expert
from identity.models import EXPERT_ACCOUNT, STAFF_ACCOUNT, EnrolmentToken

ENROLMENT_TTL = timedelta(hours=72)
# the token travels in the query string or the body, never in the path: request logs record the path
ENROLMENT_PATH = "/api/v1/enrolment"
EXPERT_ROLE = "expert"
# a password hash no password verifies against: the account cannot sign in until its enrolment is completed
NO_PASSWORD = "!enrolment-pending"
TOTP_ISSUER = "bidroom"


@dataclass(frozen=True)
class IssuedLink:
    """A new enrolment link; `token` exists only here, the database keeps its SHA-256."""

    enrolment: EnrolmentToken
    token: str
    user: User | None = None
    expert: Expert | None = None


@dataclass(frozen=True)
class EnrolmentView:
    """What a link is for, as the person holding it sees it."""

    enrolment: EnrolmentToken
    user: User | None
    expert: Expert | None
    organisation: Organisation | None

    @property
    def needs_totp(self) -> bool:
        return bool(TOTP_REQUIRED_ROLES.intersection(self.enrolment.roles))

    @property
    def needs_username(self) -> bool:
        return self.enrolment.purpose == EXPERT_ACCOUNT


def enrolment_url(public_url: str, token: str) -> str:
    """The link to send: the public read of the enrolment (GET /api/v1/enrolment?token=...)."""
    return f"{public_url.rstrip('/')}{ENROLMENT_PATH}?token={quote(token)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _actor(who: Principal | None) -> str:
    return who.public_id if who is not None else ledger.SYSTEM


def _entity(enrolment: EnrolmentToken) -> str:
    return ledger.entity_ref("enrolment", enrolment.public_id)


async def _new_public_id(session: AsyncSession) -> str:
    while True:
        candidate = public_id("EN")
        if (await session.execute(select(EnrolmentToken.id).where(EnrolmentToken.public_id == candidate))).first() \
                is None:
            return candidate


async def _revoke_open_links(session: AsyncSession, *, user_id: int | None = None,
                             expert_id: int | None = None) -> list[str]:
    """Revoke the unused links of the same person; returns their public ids."""
    target = EnrolmentToken.user_id == user_id if user_id is not None else EnrolmentToken.expert_id == expert_id
    rows = await session.execute(update(EnrolmentToken).where(
        target, EnrolmentToken.used_at.is_(None), EnrolmentToken.revoked_at.is_(None))
        .values(revoked_at=await db_now(session)).returning(EnrolmentToken.public_id))
    return sorted(rows.scalars())


async def _issue(session: AsyncSession, who: Principal | None, *, purpose: str, roles: list[str],
                 user: User | None = None, expert: Expert | None = None,
                 ttl: timedelta = ENROLMENT_TTL) -> IssuedLink:
    revoked = await _revoke_open_links(session, user_id=user.id if user else None,
                                       expert_id=expert.id if expert else None)
    token = secrets.token_urlsafe(32)
    now = await db_now(session)
    enrolment = EnrolmentToken(public_id=await _new_public_id(session), token_hash=token_hash(token), purpose=purpose,
                               user_id=user.id if user else None, expert_id=expert.id if expert else None,
                               roles=roles, created_by_id=who.user_id if who is not None else None,
                               created_at=now, expires_at=now + ttl)
    session.add(enrolment)
    await session.flush()
    await ledger.append(session, actor=_actor(who), action="enrolment.create", entity=_entity(enrolment), payload={
        "purpose": purpose, "roles": roles, "user": user.public_id if user else None,
        "expert": expert.public_id if expert else None, "expires_at": enrolment.expires_at.isoformat(),
        "revoked": revoked})
    return IssuedLink(enrolment, token, user, expert)


# ---------------------------------------------------------------------------------------------------------
# The admin's side.

async def invite_expert(session: AsyncSession, who: Principal | None, expert_public_id: str, *,
                        ttl: timedelta = ENROLMENT_TTL) -> IssuedLink:
    """A link with which an expert of the pool who has no login makes one; it is linked to the expert."""
    expert = (await session.execute(select(Expert).where(Expert.public_id == expert_public_id)
                                    .with_for_update())).scalar_one_or_none()
    if expert is None:
        raise NotFound("no such expert", code="expert_not_found", details={"expert_id": expert_public_id})
    if expert.user_id is not None:
        raise Conflict("this expert already has a login", code="expert_already_linked",
                       details={"expert_id": expert_public_id})
    return await _issue(session, who, purpose=EXPERT_ACCOUNT, roles=[EXPERT_ROLE], expert=expert, ttl=ttl)


async def link_account(session: AsyncSession, who: Principal | None, expert_public_id: str, username: str) -> User:
    """Link an existing account with the expert role to an expert of the pool who has no login."""
    expert = (await session.execute(select(Expert).where(Expert.public_id == expert_public_id)
                                    .with_for_update())).scalar_one_or_none()
    if expert is None:
        raise NotFound("no such expert", code="expert_not_found", details={"expert_id": expert_public_id})
    if expert.user_id is not None:
        raise Conflict("this expert already has a login", code="expert_already_linked",
                       details={"expert_id": expert_public_id})
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if user is None:
        raise NotFound("no such account", code="user_not_found", details={"username": username})
    if EXPERT_ROLE not in user.roles:
        raise Unprocessable("the account does not have the expert role", code="user_not_expert",
                            details={"username": username, "roles": list(user.roles)})
    linked = (await session.execute(select(Expert.public_id).where(Expert.user_id == user.id))).scalar_one_or_none()
    if linked is not None:
        raise Conflict("the account already belongs to another expert", code="user_already_linked",
                       details={"username": username, "expert_id": linked})
    expert.user_id = user.id
    await session.flush()
    revoked = await _revoke_open_links(session, expert_id=expert.id)
    await ledger.append(session, actor=_actor(who), action="expert.account_link",
                        entity=ledger.entity_ref("expert", expert.public_id),
                        payload={"user": user.public_id, "username": username, "revoked_links": revoked})
    return user


def _check_staff_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise Unprocessable("unknown roles", code="unknown_role", details={"roles": unknown})
    if EXPERT_ROLE in roles:
        raise Unprocessable("expert accounts are enrolled from the expert's entry in the pool "
                            "(POST /api/v1/admin/experts/{expert_id}/enrolment)", code="expert_role_by_pool",
                            details={"roles": roles})
    self_registering = sorted(SELF_REGISTERING_ROLES.intersection(roles))
    if self_registering:
        raise Unprocessable("bidders and intermediaries register themselves with their organisation",
                            code="role_not_self_registering", details={"roles": self_registering})
    return sorted(set(roles))


async def invite_staff(session: AsyncSession, who: Principal | None, *, username: str, display_name: str,
                       roles: list[str], organisation_public_id: str | None = None, email: str | None = None,
                       phone: str | None = None, ttl: timedelta = ENROLMENT_TTL) -> IssuedLink:
    """Create a staff account that cannot sign in yet, and the link with which its owner sets both factors."""
    roles = _check_staff_roles(roles)
    await accounts.ensure_username_free(session, username)
    org_id = await accounts.organisation_pk(session, organisation_public_id)
    user = User(public_id=public_id("U"), organisation_id=org_id, username=username, display_name=display_name,
                email=email, phone=phone, password_hash=NO_PASSWORD, roles=roles, is_active=False)
    session.add(user)
    await session.flush()
    await ledger.append(session, actor=_actor(who), action="user.create", entity=f"user:{user.public_id}",
                        payload={"username": username, "roles": roles, "organisation": organisation_public_id,
                                 "by": "enrolment"})
    return await _issue(session, who, purpose=STAFF_ACCOUNT, roles=roles, user=user, ttl=ttl)


def enrolment_pending(user: User) -> bool:
    """Whether a user was made for an enrolment that has not been completed yet."""
    return user.password_hash == NO_PASSWORD


async def reinvite_user(session: AsyncSession, who: Principal | None, user_public_id: str, *,
                        ttl: timedelta = ENROLMENT_TTL) -> IssuedLink:
    """A fresh link for a staff account whose enrolment was never completed (the old link expired or got lost)."""
    user = await accounts.get_user(session, user_public_id)
    if not enrolment_pending(user):
        raise Conflict("this account has already been set up by its owner", code="user_already_enrolled",
                       details={"user_id": user_public_id})
    return await _issue(session, who, purpose=STAFF_ACCOUNT, roles=list(user.roles), user=user, ttl=ttl)


async def revoke(session: AsyncSession, who: Principal | None, enrolment_public_id: str) -> EnrolmentToken:
    enrolment = (await session.execute(select(EnrolmentToken).where(
        EnrolmentToken.public_id == enrolment_public_id).with_for_update())).scalar_one_or_none()
    if enrolment is None:
        raise NotFound("no such enrolment link", code="enrolment_not_found",
                       details={"enrolment_id": enrolment_public_id})
    if enrolment.used_at is not None:
        raise Conflict("this link has already been used", code="enrolment_used",
                       details={"enrolment_id": enrolment_public_id})
    if enrolment.revoked_at is None:
        enrolment.revoked_at = await db_now(session)
        await session.flush()
        await ledger.append(session, actor=_actor(who), action="enrolment.revoke", entity=_entity(enrolment))
    return enrolment


# ---------------------------------------------------------------------------------------------------------
# The invited person's side.

async def _usable(session: AsyncSession, token: str, *, for_update: bool = False) -> EnrolmentToken:
    """The link's row when it can still be used, judged by the database clock; 404 or 410 otherwise."""
    query = select(EnrolmentToken).where(EnrolmentToken.token_hash == token_hash(token))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    enrolment = (await session.execute(query)).scalar_one_or_none()
    if enrolment is None:
        raise NotFound("this enrolment link is not known", code="enrolment_not_found")
    details = {"enrolment_id": enrolment.public_id}
    if enrolment.used_at is not None:
        raise Gone("this enrolment link has already been used; sign in instead", code="enrolment_used",
                   details=details)
    if enrolment.revoked_at is not None:
        raise Gone("this enrolment link was withdrawn; ask the administrator for a new one",
                   code="enrolment_revoked", details=details)
    if passed(enrolment.expires_at, await db_now(session)):
        raise Gone("this enrolment link has expired; ask the administrator for a new one", code="enrolment_expired",
                   details={**details, "expired_at": enrolment.expires_at.isoformat()})
    return enrolment


async def view(session: AsyncSession, token: str) -> EnrolmentView:
    enrolment = await _usable(session, token)
    user = await session.get(User, enrolment.user_id) if enrolment.user_id else None
    expert = await session.get(Expert, enrolment.expert_id) if enrolment.expert_id else None
    org = await session.get(Organisation, user.organisation_id) if user and user.organisation_id else None
    return EnrolmentView(enrolment, user, expert, org)


def _totp_name(current: EnrolmentView) -> str:
    """The account name an authenticator app shows next to the codes."""
    return current.user.username if current.user is not None else current.enrolment.public_id


def _pending_owner(enrolment: EnrolmentToken) -> str:
    """The associated data a pending secret is sealed to: its enrolment, so it opens for no other row."""
    return f"enrolment:{enrolment.public_id}"


async def offer_totp(session: AsyncSession, token: str, *, vault: TotpVault | None = None) -> str:
    """A new TOTP secret for the person to scan; it becomes theirs when the enrolment completes with a valid code.

    Returns the provisioning URI. Asking again replaces the secret (a lost scan is simply repeated). The
    pending secret is stored sealed under the master secret when a vault is given (the HTTP route always gives
    one), like the secrets of enrolled accounts: a database dump does not reveal a second factor in the making."""
    enrolment = await _usable(session, token, for_update=True)
    current = await view(session, token)
    if not current.needs_totp:
        raise Conflict("this account does not use a second factor", code="totp_not_needed",
                       details={"roles": list(enrolment.roles)})
    secret = pyotp.random_base32()
    enrolment.pending_totp_secret = vault.seal(secret, owner=_pending_owner(enrolment)) if vault else secret
    await session.flush()
    await ledger.append(session, actor=ledger.SYSTEM, action="enrolment.totp_offer", entity=_entity(enrolment))
    return pyotp.TOTP(secret).provisioning_uri(name=_totp_name(current), issuer_name=TOTP_ISSUER)


def _pending_secret(enrolment: EnrolmentToken, vault: TotpVault | None) -> str:
    """The pending secret in clear: sealed values are opened (a vault is then required), plaintext as it is."""
    stored = enrolment.pending_totp_secret
    if not is_sealed(stored):
        return stored
    if vault is None:
        raise Conflict("the pending second factor is sealed; complete the enrolment through the API",
                       code="totp_sealed")
    try:
        return vault.open(stored, owner=_pending_owner(enrolment))
    except TotpSecretUnreadable as err:
        raise Conflict("the offered TOTP secret no longer opens on this installation; scan a new one "
                       "(POST /api/v1/enrolment/totp)", code="totp_not_started") from err


async def complete(session: AsyncSession, token: str, *, password: str, username: str | None = None,
                   totp: str | None = None, vault: TotpVault | None = None) -> User:
    """Use the link: set the password (and the second factor), make or activate the account, link the expert.

    The second factor is stored sealed under the master secret when a vault is given (the HTTP route always
    gives one), and the first code's time step is recorded, so that code cannot also sign in."""
    enrolment = await _usable(session, token, for_update=True)
    current = await view(session, token)
    accounts.check_password_policy(password)
    secret = step = None
    if current.needs_totp:
        if enrolment.pending_totp_secret is None:
            raise Conflict("scan the TOTP secret first (POST /api/v1/enrolment/totp)", code="totp_not_started")
        if not totp:
            raise Unprocessable("type the first one-time code from your authenticator app to finish",
                                code="totp_required", details={"field": "totp"})
        pending = _pending_secret(enrolment, vault)
        step = matching_step(pending, totp, (await db_now(session)).timestamp())
        if step is None:
            raise Unprocessable("the one-time code is wrong or expired", code="totp_invalid",
                                details={"field": "totp"})
        secret = pending
    password_hash = await hash_password(password)
    now = await db_now(session)
    if enrolment.purpose == EXPERT_ACCOUNT:
        user = await _expert_account(session, enrolment, username=username, password_hash=password_hash)
    else:
        if username is not None and username != current.user.username:
            raise Unprocessable("the username of a staff account is the one the administrator chose",
                                code="username_fixed", details={"username": current.user.username})
        user = (await session.execute(select(User).where(User.id == enrolment.user_id).with_for_update())).scalar_one()
        user.password_hash = password_hash
        user.totp_secret = vault.seal(secret, owner=user.public_id) if secret and vault else secret
        user.totp_last_step = step if secret else None
        user.is_active = True
    enrolment.used_at = now
    enrolment.pending_totp_secret = None
    await session.flush()
    await ledger.append(session, actor=user.public_id, action="enrolment.complete", entity=_entity(enrolment),
                        payload={"purpose": enrolment.purpose, "user": user.public_id, "username": user.username,
                                 "roles": list(user.roles), "totp": secret is not None,
                                 "expert": current.expert.public_id if current.expert else None})
    return user


async def _expert_account(session: AsyncSession, enrolment: EnrolmentToken, *, username: str | None,
                          password_hash: str) -> User:
    if not username:
        raise Unprocessable("choose a username", code="username_required", details={"field": "username"})
    expert = (await session.execute(select(Expert).where(Expert.id == enrolment.expert_id).with_for_update()
                                    .execution_options(populate_existing=True))).scalar_one()
    if expert.user_id is not None:
        raise Conflict("this expert already has a login", code="expert_already_linked",
                       details={"expert_id": expert.public_id})
    await accounts.ensure_username_free(session, username)
    # a neutral display name: an expert's identity stays inside the pool
    user = User(public_id=public_id("U"), username=username, display_name=f"评标专家 {username}",
                password_hash=password_hash, roles=[EXPERT_ROLE])
    session.add(user)
    await session.flush()
    expert.user_id = user.id
    enrolment.user_id = user.id
    await session.flush()
    await ledger.append(session, actor=user.public_id, action="expert.account_link",
                        entity=ledger.entity_ref("expert", expert.public_id),
                        payload={"user": user.public_id, "username": username, "enrolment": enrolment.public_id})
    return user

