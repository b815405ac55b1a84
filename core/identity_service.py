"""Identity use cases: registration, login, token rotation, sessions and staff accounts. Never commits."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import db_now
from core.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized, Unprocessable
from core.identity_models import (ROLES, TOTP_REQUIRED_ROLES, LoginThrottle, Organisation, RefreshToken, User)
from core.identity_rules import normalise_uscc, password_problem
from core.ids import public_id
from core.principal import Principal
from core.passwords import hash_password, verify_password
from core.tokens import TokenIssuer, new_refresh_token, refresh_token_hash
from core.totp import TotpSecretUnreadable, TotpVault, is_sealed, matching_step
from evidence import ledger_service as ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Throttle:
    """Sign-in limits; see `reserve_attempt` for how they combine.

    max_account: attempts on one account from one client per window; max_ip: attempts from one client over all
    accounts per window; backoff_after / backoff_max_s: the slower per-account backoff."""

    max_account: int
    max_ip: int
    window_s: int
    backoff_after: int = 10
    backoff_max_s: int = 300


@dataclass
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


class RefreshReused(Exception):
    """A rotated refresh token came back: its whole family must be revoked."""

    def __init__(self, family_id: uuid.UUID, user_public_id: str):
        super().__init__("refresh token reuse")
        self.family_id = family_id
        self.user_public_id = user_public_id


def check_password_policy(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise Unprocessable(f"password {problem}", code="weak_password", details={"field": "password"})


async def ensure_username_free(session: AsyncSession, username: str) -> None:
    taken = (await session.execute(select(User.id).where(User.username == username))).first()
    if taken:
        raise Conflict("that username is taken", code="username_taken", details={"username": username})


class UsernameUnavailable(Unprocessable):
    """Self-registration with a name that cannot be had, answered like any other invalid field.

    The answer has the status and shape of a schema validation failure (422 `validation_failed`, one error on
    body.username) and does not say whether the name is taken: it is checked last, after every other field and
    the organisation, so a probe must be an otherwise complete, valid registration with an unregistered social
    credit code, and a free name answers by creating a real, ledgered account. Refusals are also counted per
    client address and throttled (identity.routes), so probing names costs addresses."""

    def __init__(self) -> None:
        super().__init__("the request does not match the schema", code="validation_failed", details={"errors": [
            {"path": "body.username", "message": "this username cannot be used; choose another",
             "type": "value_error"}]})


async def organisation_pk(session: AsyncSession, organisation_public_id: str | None) -> int | None:
    """The row id of an organisation named by its public id (None for None); 404 when there is none."""
    if not organisation_public_id:
        return None
    org_id = (await session.execute(select(Organisation.id).where(
        Organisation.public_id == organisation_public_id))).scalar_one_or_none()
    if org_id is None:
        raise NotFound("no such organisation", code="organisation_not_found",
                       details={"organisation_id": organisation_public_id})
    return org_id


async def create_organisation(session: AsyncSession, *, actor: str, name: str, social_credit_code: str | None,
                              kind: str = "company", region_code: str | None = None) -> Organisation:
    code = normalise_uscc(social_credit_code) if social_credit_code else None
    if code and (await session.execute(select(Organisation.id).where(
            Organisation.social_credit_code == code))).first():
        raise Conflict("an organisation with this social credit code is already registered",
                       code="organisation_already_registered", details={"social_credit_code": code})
    org = Organisation(public_id=public_id("O"), name=name, social_credit_code=code, kind=kind,
                       region_code=region_code)
    session.add(org)
    await session.flush()
    await ledger.append(session, actor=actor, action="organisation.create", entity=f"organisation:{org.public_id}",
                        payload={"name": name, "social_credit_code": code, "kind": kind})
    return org


async def register(session: AsyncSession, *, username: str, password: str, display_name: str, role: str,
                   org_name: str, social_credit_code: str, region_code: str | None = None,
                   email: str | None = None, phone: str | None = None) -> User:
    """Self-registration of a bidder or intermediary together with its organisation."""
    if role not in ("bidder", "intermediary"):
        raise Forbidden("only bidders and intermediaries register themselves", code="role_not_self_registering")
    check_password_policy(password)
    user_pid = public_id("U")
    org = await create_organisation(session, actor=user_pid, name=org_name, social_credit_code=social_credit_code,
                                    kind="company", region_code=region_code)
    # last of all, so that the answer for a taken name tells nothing the other checks would not (see the class)
    if (await session.execute(select(User.id).where(User.username == username))).first():
        raise UsernameUnavailable()
    user = User(public_id=user_pid, organisation_id=org.id, username=username, display_name=display_name,
                email=email, phone=phone, password_hash=await hash_password(password), roles=[role])
    session.add(user)
    await session.flush()
    await ledger.append(session, actor=user.public_id, action="user.register", entity=f"user:{user.public_id}",
                        payload={"username": username, "roles": [role], "organisation": org.public_id})
    return user


async def create_user(session: AsyncSession, *, actor: str, username: str, password: str, display_name: str,
                      roles: list[str], organisation_public_id: str | None = None, email: str | None = None,
                      phone: str | None = None, vault: TotpVault | None = None) -> tuple[User, str | None]:
    """An admin creates staff, experts and supervisors. Returns the user and a TOTP URI when one is required.

    With a vault the TOTP secret is stored sealed at once; without one (fixtures that have no keys directory)
    it is stored plain and sealed at the first sign-in."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise Unprocessable("unknown roles", code="unknown_role", details={"roles": unknown})
    check_password_policy(password)
    await ensure_username_free(session, username)
    org_id = await organisation_pk(session, organisation_public_id)
    totp_secret = pyotp.random_base32() if TOTP_REQUIRED_ROLES.intersection(roles) else None
    user_pid = public_id("U")
    stored = vault.seal(totp_secret, owner=user_pid) if totp_secret and vault else totp_secret
    user = User(public_id=user_pid, organisation_id=org_id, username=username, display_name=display_name,
                email=email, phone=phone, password_hash=await hash_password(password), roles=sorted(set(roles)),
                totp_secret=stored)
    session.add(user)
    await session.flush()
    await ledger.append(session, actor=actor, action="user.create", entity=f"user:{user.public_id}",
                        payload={"username": username, "roles": user.roles, "organisation": organisation_public_id})
    uri = pyotp.TOTP(totp_secret).provisioning_uri(name=username, issuer_name="bidroom") if totp_secret else None
    return user, uri


def throttle_keys(username: str, client: str) -> tuple[str, str, str]:
    """The counters one sign-in touches: (account, client) pair, client, account."""
    return f"pair:{username}|{client}", f"ip:{client}", f"acct:{username}"


async def reserve_attempt(session: AsyncSession, *, username: str, client: str, throttle: Throttle) -> None:
    """Count a sign-in attempt before its password is looked at, and refuse it (429) if it is over a limit.

    Run this in a short transaction of its own that commits at once, before the password is checked: the
    counters are incremented and read back in one statement (INSERT ... ON CONFLICT DO UPDATE ... RETURNING), so
    parallel guesses each see their own number and no more than the limit ever reach the password check.
    An attempt counts until it succeeds (`forget_success` takes it back), so guesses in flight count too.

    The limits, designed so that a stranger cannot lock out an agent or a key holder:
    - per (account, client): `max_account` attempts per window. Failing from one address throttles that address
      for that account only; the owner signing in from anywhere else is not affected.
    - per client: `max_ip` attempts per window over all accounts (password spraying from one address). With
      BIDROOM_TRUSTED_PROXIES the client is the forwarded address, so a proxy does not merge everyone.
    - per account, the slower backoff: once the account has `backoff_after` failures in the window (from any
      clients), a client that has itself already tried this account must wait 2^(failures - backoff_after)
      seconds (at most `backoff_max_s`) after the account's last failure. A client with no attempts on the
      account is never slowed by it, so the right password from a clean address always gets through; an attacker
      with many addresses gets one guess per fresh address, then the backoff.
    A successful sign-in clears its pair counter and the account counter and returns the client's attempt.
    """
    pair_key, ip_key, acct_key = throttle_keys(username, client)
    rows = {r.key: r for r in (await session.execute(text(
        "INSERT INTO login_throttle AS t (key, failures, window_started_at) VALUES (:pair, 1, now()), (:ip, 1, now()) "
        "ON CONFLICT (key) DO UPDATE SET "
        " failures = CASE WHEN t.window_started_at > now() - make_interval(secs => :w) THEN t.failures + 1 ELSE 1 END,"
        " window_started_at = CASE WHEN t.window_started_at > now() - make_interval(secs => :w) "
        "  THEN t.window_started_at ELSE now() END "
        "RETURNING key, failures, "
        " EXTRACT(EPOCH FROM (window_started_at + make_interval(secs => :w) - now())) AS left_s"),
        {"pair": pair_key, "ip": ip_key, "w": throttle.window_s})).all()}
    for key, limit in ((pair_key, throttle.max_account), (ip_key, throttle.max_ip)):
        if rows[key].failures > limit:
            raise RateLimited("too many sign-in attempts from this address; wait before trying again",
                              code="login_throttled", retry_after=max(1, int(rows[key].left_s) + 1),
                              details={"scope": "account" if key == pair_key else "address"})
    if rows[pair_key].failures <= 1:
        return  # a client with no earlier attempt on this account: the account backoff does not apply
    acct = (await session.execute(text(
        "SELECT failures, EXTRACT(EPOCH FROM (last_failure_at + make_interval(secs => "
        " LEAST(:cap, power(2, GREATEST(failures - :after, 0)))::int) - now())) AS left_s "
        "FROM login_throttle WHERE key = :k AND window_started_at > now() - make_interval(secs => :w)"),
        {"k": acct_key, "w": throttle.window_s, "after": throttle.backoff_after,
         "cap": throttle.backoff_max_s})).one_or_none()
    if acct is not None and acct.failures >= throttle.backoff_after and acct.left_s is not None and acct.left_s > 0:
        raise RateLimited("this account has many failed sign-ins; wait before trying again from this address",
                          code="login_throttled", retry_after=max(1, int(acct.left_s) + 1),
                          details={"scope": "account_backoff"})


async def record_login_failure(session: AsyncSession, *, username: str, throttle: Throttle) -> None:
    """Count a failed password or code on the account (for its backoff); the caller keeps the change."""
    await session.execute(text(
        "INSERT INTO login_throttle AS t (key, failures, window_started_at, last_failure_at) "
        "VALUES (:k, 1, now(), now()) ON CONFLICT (key) DO UPDATE SET "
        " failures = CASE WHEN t.window_started_at > now() - make_interval(secs => :w) THEN t.failures + 1 ELSE 1 END,"
        " window_started_at = CASE WHEN t.window_started_at > now() - make_interval(secs => :w) "
        "  THEN t.window_started_at ELSE now() END, last_failure_at = now()"),
        {"k": throttle_keys(username, "")[2], "w": throttle.window_s})


async def forget_success(session: AsyncSession, *, username: str, client: str) -> None:
    """A successful sign-in: its pair and account counters go, and its attempt no longer counts for the client."""
    pair_key, ip_key, acct_key = throttle_keys(username, client)
    await session.execute(text("DELETE FROM login_throttle WHERE key = ANY(:keys)"), {"keys": [pair_key, acct_key]})
    await session.execute(text("UPDATE login_throttle SET failures = GREATEST(failures - 1, 0) WHERE key = :k"),
                          {"k": ip_key})


async def sweep_login_throttle(session: AsyncSession, *, window_s: int, backoff_max_s: int) -> int:
    """Delete counters whose window and backoff are both over (a guessed name leaves a row behind)."""
    result = await session.execute(text(
        "DELETE FROM login_throttle WHERE window_started_at <= now() - make_interval(secs => :w) "
        "AND (last_failure_at IS NULL OR last_failure_at <= now() - make_interval(secs => :b))"),
        {"w": window_s, "b": backoff_max_s})
    return result.rowcount


async def authenticate(session: AsyncSession, *, username: str, password: str, totp: str | None,
                       vault: TotpVault | None = None) -> User:
    """Check password and, for roles that need it, the TOTP code. Raises Unauthorized with a stable code.

    A TOTP code is accepted once: the step it belongs to is recorded, and a code of that step or an earlier one
    is refused (`totp_reused`), also when two requests race with the same code (one conditional UPDATE).
    A legacy plaintext secret is sealed here, at its first successful use, when a vault is given."""
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    ok = await verify_password(user.password_hash if user else None, password)
    if not ok or user is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    if not user.is_active:
        raise Unauthorized("this account is disabled", code="account_disabled")
    if TOTP_REQUIRED_ROLES.intersection(user.roles):
        if not user.totp_secret:
            raise Unauthorized("second factor not enrolled; ask an administrator", code="totp_not_enrolled")
        if not totp:
            raise Unauthorized("a one-time code is required for this account", code="totp_required")
        if is_sealed(user.totp_secret) and vault is None:
            raise RuntimeError("a sealed TOTP secret needs the TOTP vault")
        try:
            secret = vault.open(user.totp_secret, owner=user.public_id) if vault else user.totp_secret
        except TotpSecretUnreadable:
            log.error("a stored TOTP secret does not open", extra={"user": user.public_id})
            raise Unauthorized("the second factor of this account cannot be read; ask an administrator to enrol it "
                               "again", code="totp_unreadable") from None
        now = await db_now(session)
        step = matching_step(secret, totp, now.timestamp())
        if step is None:
            raise Unauthorized("the one-time code is wrong or expired", code="totp_invalid")
        fresh = (await session.execute(text(
            "UPDATE app_user SET totp_last_step = :step WHERE id = :id "
            "AND (totp_last_step IS NULL OR totp_last_step < :step) RETURNING id"),
            {"step": step, "id": user.id})).first()
        if fresh is None:
            raise Unauthorized("this one-time code was already used; wait for the next one", code="totp_reused")
        if vault is not None and not is_sealed(user.totp_secret):
            user.totp_secret = vault.seal(secret, owner=user.public_id)
    return user


async def _org_public_id(session: AsyncSession, organisation_id: int | None) -> str | None:
    if organisation_id is None:
        return None
    return (await session.execute(select(Organisation.public_id).where(
        Organisation.id == organisation_id))).scalar_one_or_none()


async def issue_tokens(session: AsyncSession, user: User, issuer: TokenIssuer, *, refresh_ttl_s: int,
                       family_id: uuid.UUID | None = None) -> IssuedTokens:
    now = await db_now(session)
    token, digest = new_refresh_token()
    session.add(RefreshToken(family_id=family_id or uuid.uuid4(), user_id=user.id, token_hash=digest,
                             expires_at=now + timedelta(seconds=refresh_ttl_s)))
    access = issuer.issue(sub=user.public_id, roles=list(user.roles),
                          org=await _org_public_id(session, user.organisation_id), now=now)
    await session.flush()
    return IssuedTokens(access, token, issuer.ttl_s, user)


async def login(session: AsyncSession, *, username: str, password: str, totp: str | None, issuer: TokenIssuer,
                refresh_ttl_s: int, client: str = "unknown", vault: TotpVault | None = None) -> IssuedTokens:
    user = await authenticate(session, username=username, password=password, totp=totp, vault=vault)
    await forget_success(session, username=username, client=client)
    tokens = await issue_tokens(session, user, issuer, refresh_ttl_s=refresh_ttl_s)
    await ledger.append(session, actor=user.public_id, action="auth.login", entity=f"user:{user.public_id}")
    return tokens


async def rotate_refresh(session: AsyncSession, token: str, issuer: TokenIssuer, *,
                         refresh_ttl_s: int) -> IssuedTokens:
    """Exchange a refresh token for a new pair. A second use of a rotated token raises RefreshReused."""
    row = (await session.execute(select(RefreshToken).where(
        RefreshToken.token_hash == refresh_token_hash(token)).with_for_update())).scalar_one_or_none()
    if row is None:
        raise Unauthorized("unknown refresh token", code="refresh_invalid")
    user = await session.get(User, row.user_id)
    now = await db_now(session)
    if row.revoked_at is not None:
        raise Unauthorized("this session was ended; sign in again", code="refresh_revoked")
    if row.rotated_at is not None:
        raise RefreshReused(row.family_id, user.public_id)
    if row.expires_at <= now:
        raise Unauthorized("refresh token expired; sign in again", code="refresh_expired")
    if not user.is_active:
        raise Unauthorized("this account is disabled", code="account_disabled")
    row.rotated_at = now
    tokens = await issue_tokens(session, user, issuer, refresh_ttl_s=refresh_ttl_s, family_id=row.family_id)
    await ledger.append(session, actor=user.public_id, action="auth.refresh", entity=f"user:{user.public_id}",
                        payload={"family": str(row.family_id)})
    return tokens


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, *, actor: str, reason: str) -> int:
    result = await session.execute(update(RefreshToken).where(
        RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)).values(revoked_at=text("now()")))
    await ledger.append(session, actor=actor, action="auth.session_revoke", entity=f"session:{family_id}",
                        payload={"reason": reason})
    return result.rowcount


async def logout(session: AsyncSession, token: str, *, actor: str) -> None:
    row = (await session.execute(select(RefreshToken).where(
        RefreshToken.token_hash == refresh_token_hash(token)))).scalar_one_or_none()
    if row is not None:
        await revoke_family(session, row.family_id, actor=actor, reason="logout")


async def kill_sessions(session: AsyncSession, *, actor: str, user_public_id: str) -> int:
    """End every session of a user: refresh tokens revoked, access tokens refused from now on."""
    user = await get_user(session, user_public_id)
    user.sessions_revoked_at = await db_now(session)
    result = await session.execute(update(RefreshToken).where(
        RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None)).values(revoked_at=text("now()")))
    await ledger.append(session, actor=actor, action="user.sessions_kill", entity=f"user:{user.public_id}",
                        payload={"refresh_tokens_revoked": result.rowcount})
    return result.rowcount


async def change_password(session: AsyncSession, who: Principal, *, current_password: str, new_password: str,
                          keep_family: uuid.UUID | None = None) -> int:
    """The signed-in user replaces their password, proving the current one (OWASP ASVS 4.0 V2.1.5/V2.1.6).

    Every other session ends: refresh tokens outside `keep_family` (the caller's own session, when known) are
    revoked. Access tokens already issued elsewhere live out their short lifetime. Returns how many refresh
    tokens were revoked."""
    user = (await session.execute(select(User).where(User.public_id == who.public_id).with_for_update())
            ).scalar_one_or_none()
    if user is None or not await verify_password(user.password_hash, current_password):
        raise Unauthorized("the current password is wrong", code="invalid_current_password")
    check_password_policy(new_password)
    if await verify_password(user.password_hash, new_password):
        raise Unprocessable("the new password must differ from the current one", code="password_unchanged",
                            details={"field": "new_password"})
    user.password_hash = await hash_password(new_password)
    query = update(RefreshToken).where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
    if keep_family is not None:
        query = query.where(RefreshToken.family_id != keep_family)
    result = await session.execute(query.values(revoked_at=text("now()")))
    await ledger.append(session, actor=user.public_id, action="user.password_change", entity=f"user:{user.public_id}",
                        payload={"refresh_tokens_revoked": result.rowcount})
    return result.rowcount


async def session_family(session: AsyncSession, refresh_token: str | None, user_public_id: str) -> uuid.UUID | None:
    """The family of a refresh token that belongs to this user, or None."""
    if not refresh_token:
        return None
    return (await session.execute(select(RefreshToken.family_id).join(User, User.id == RefreshToken.user_id).where(
        RefreshToken.token_hash == refresh_token_hash(refresh_token), User.public_id == user_public_id,
        RefreshToken.revoked_at.is_(None)))).scalar_one_or_none()


async def get_user(session: AsyncSession, user_public_id: str) -> User:
    user = (await session.execute(select(User).where(User.public_id == user_public_id))).scalar_one_or_none()
    if user is None:
        raise NotFound("no such user", code="user_not_found", details={"user_id": user_public_id})
    return user


def profile_json(row) -> dict:
    """The signed-in user's own view, from the row read when authenticating (no further query)."""
    org = None
    if row["org_public_id"] is not None:
        org = {"public_id": row["org_public_id"], "name": row["org_name"],
               "social_credit_code": row["org_social_credit_code"], "kind": row["org_kind"],
               "region_code": row["org_region_code"]}
    return {"public_id": row["public_id"], "username": row["username"], "display_name": row["display_name"],
            "roles": list(row["roles"]), "organisation": org, "is_active": row["is_active"],
            "totp_enrolled": row["totp_enrolled"], "created_at": row["created_at"].isoformat()}


def _with_organisation():
    return select(User, Organisation).outerjoin(Organisation, Organisation.id == User.organisation_id)


async def list_users(session: AsyncSession, *, after_public_id: str | None,
                     limit: int) -> list[tuple[User, Organisation | None]]:
    query = _with_organisation().order_by(User.public_id).limit(limit)
    if after_public_id:
        query = query.where(User.public_id > after_public_id)
    return [(r[0], r[1]) for r in await session.execute(query)]


async def organisation_of(session: AsyncSession, user: User) -> Organisation | None:
    return await session.get(Organisation, user.organisation_id) if user.organisation_id else None
