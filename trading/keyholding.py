"""Key holding (持钥): personal holder keys, a tender's k-of-n key holders, and sealing a tender at publish.

Holders cannot all be present when a tender is published, so each holder enrols once with a passphrase: the
server makes an age X25519 identity for them and keeps it only wrapped under that passphrase (age scrypt).
At publish the tender's identity is split k-of-n and each share is encrypted to its holder's recipient, which
needs no passphrase. At the opening each holder unwraps their own key with their passphrase and so their share.

The platform's share (when a tender allows one) is encrypted to a platform holder key whose identity is
wrapped with AES-GCM under a key derived from the master secret: a file outside the database, so the database
alone never holds enough to open a bid.

scrypt wrap and unwrap cost ~1.6 s and 512 MiB each and hold the GIL: they run in a process pool
(`wrap_holder_identity`, `unwrap_holder_identity` are the picklable workers). Enrolments reach the pool through
a bounded gate (`ScryptGate`: a full gate answers 429) and wrap before any database work, so a burst of them
never holds connections idle in transactions.

Only agents and supervisors (`KEY_HOLDER_ROLES`) hold keys, and a tender's person holders come from at least two
organisations (`check_holder_split`).

A tender's k and n count people only: k of its n person holders must send their passphrases to open it, whether
or not the platform holds a share too. When it does, the identity is split with threshold k + 1 among n + 1
shares (`shares_needed`): the platform's share plus k people's, or k + 1 people's without it. The platform's
share with k - 1 people's is below the threshold and rebuilds nothing, so k distinct people are needed however
the shares are counted: the platform's share only ever adds to theirs.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pyrage
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, NotFound, RateLimited, Unprocessable
from core.identity_models import User
from core.settings import ensure_secret_file
from evidence import ledger_service as ledger
from evidence import sealing
from trading.access import is_supervisor_of, principal_of
from trading.lifecycle import TenderStatus
from trading.models import HolderKey, Tender, TenderKeyHolder

log = logging.getLogger(__name__)

_PLATFORM_INFO = b"bidroom/trading/platform-key-holder/v1"
_NONCE = 12


# ---------------------------------------------------------------------------------------------------------------
# The platform keyring: AES-GCM under a key derived from the master secret
# ---------------------------------------------------------------------------------------------------------------

class PlatformKeyring:
    """Seals small secrets (the platform holder identity, unlocked opening shares) under the master secret."""

    def __init__(self, master_secret: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PLATFORM_INFO).derive(master_secret)
        self._aead = AESGCM(key)

    @classmethod
    def from_keys_dir(cls, keys_dir: Path) -> PlatformKeyring:
        """The keyring of this installation (the same master secret file the PKI uses)."""
        return cls(ensure_secret_file(Path(keys_dir) / "master.secret"))

    def seal(self, data: bytes, *, context: str) -> bytes:
        """Encrypt `data`, bound to `context` (e.g. the table and row it is stored for)."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data, context.encode())

    def open(self, sealed: bytes, *, context: str) -> bytes:
        """Decrypt what `seal` made for the same context."""
        from cryptography.exceptions import InvalidTag
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode())
        except (InvalidTag, ValueError) as err:
            raise Unprocessable("a platform-held secret does not open with this installation's master secret",
                                code="platform_key_mismatch") from err


PLATFORM_IDENTITY_CONTEXT = "holder_key:platform"


# ---------------------------------------------------------------------------------------------------------------
# Process-pool workers (module-level so they pickle)
# ---------------------------------------------------------------------------------------------------------------

def wrap_holder_identity(passphrase: str) -> tuple[str, bytes]:
    """A new holder identity: (recipient, identity wrapped under `passphrase` with age scrypt). Slow."""
    identity, recipient = sealing.new_tender_identity()
    return recipient, pyrage.passphrase.encrypt(identity.encode("ascii"), passphrase)


class ScryptBusy(Exception):
    """age refused to run the key's scrypt work factor on a machine this loaded (see `unwrap_holder_identity`)."""


# age measures the machine on every decryption and refuses a work factor far above what it can do in about a
# second ("Excessive work parameter"); a key wrapped on a quiet machine then looks "too expensive" while the
# machine is saturated. That is not a wrong passphrase: it is retried, and then reported as busy.
_EXCESSIVE_WORK = "Excessive work"
UNWRAP_ATTEMPTS = 4


def unwrap_holder_identity(wrapped: bytes, passphrase: str) -> str | None:
    """The holder identity inside `wrapped`, or None when the passphrase does not open it. Slow.

    Raises ScryptBusy when age still refuses the work factor as excessive after UNWRAP_ATTEMPTS tries."""
    for attempt in range(UNWRAP_ATTEMPTS):
        try:
            return pyrage.passphrase.decrypt(wrapped, passphrase).decode("ascii")
        except pyrage.DecryptError as err:
            if not str(err).startswith(_EXCESSIVE_WORK):
                return None
            time.sleep(0.25 * (attempt + 1))
    raise ScryptBusy("the machine is too loaded to run this key's scrypt work factor now")


async def run_in_pool(pool: Executor | None, fn, *args):
    """Run a slow sealing step in the pool (or a thread when none is configured, e.g. in a script)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, fn, *args)


class ScryptGate:
    """Admission to the scrypt pool for enrolments: at most `capacity` jobs in flight (running or waiting);
    one more is refused at once with 429 holder_key_busy and a Retry-After, never queued without bound.

    The pool runs `workers` jobs at a time, each ~1.6 s and 512 MiB, so the wait of the last admitted job is
    bounded by capacity / workers jobs. Callers hold no database connection while they wait (see
    `wrap_new_holder_key`)."""

    SECONDS_PER_JOB = 2

    def __init__(self, capacity: int, workers: int) -> None:
        self.capacity = max(1, capacity)
        self.workers = max(1, workers)
        self.in_flight = 0

    def retry_after(self) -> int:
        return max(1, -(-self.in_flight // self.workers) * self.SECONDS_PER_JOB)

    async def run(self, pool: Executor | None, fn, *args):
        if self.in_flight >= self.capacity:
            raise RateLimited("key-holder enrolment is busy; try again shortly", code="holder_key_busy",
                              retry_after=self.retry_after(), details={"in_flight": self.in_flight})
        self.in_flight += 1
        try:
            return await run_in_pool(pool, fn, *args)
        finally:
            self.in_flight -= 1


_GATES: "weakref.WeakKeyDictionary[Executor, ScryptGate]" = weakref.WeakKeyDictionary()
_SCRIPT_GATE: ScryptGate | None = None  # enrolments without a pool (scripts): threads, one gate


def scrypt_gate(pool: Executor | None, capacity: int) -> ScryptGate:
    """The enrolment gate of `pool` (one per pool, made on first use with `capacity`)."""
    global _SCRIPT_GATE
    if pool is None:
        if _SCRIPT_GATE is None:
            _SCRIPT_GATE = ScryptGate(capacity, 1)
        return _SCRIPT_GATE
    gate = _GATES.get(pool)
    if gate is None:
        gate = _GATES[pool] = ScryptGate(capacity, getattr(pool, "_max_workers", 1))
    return gate


def check_passphrase(passphrase: str) -> None:
    """Refuse passphrases shorter than sealing.MIN_PASSPHRASE_LENGTH (422 weak_passphrase)."""
    if not isinstance(passphrase, str) or len(passphrase) < sealing.MIN_PASSPHRASE_LENGTH:
        raise Unprocessable(f"passphrases need at least {sealing.MIN_PASSPHRASE_LENGTH} characters",
                            code="weak_passphrase", details={"min_length": sealing.MIN_PASSPHRASE_LENGTH})


# ---------------------------------------------------------------------------------------------------------------
# Enrolment
# ---------------------------------------------------------------------------------------------------------------

async def store_holder_key(session: AsyncSession, user: User, recipient: str, wrapped_identity: bytes, *,
                           actor: str) -> HolderKey:
    """Make (recipient, wrapped identity) the user's current holder key; the old one stays for old tenders."""
    await session.execute(update(HolderKey).where(HolderKey.user_id == user.id, HolderKey.retired_at.is_(None),
                                                  HolderKey.kind == "person").values(retired_at=func.now()))
    key = HolderKey(kind="person", user_id=user.id, recipient=recipient, wrapped_identity=wrapped_identity)
    session.add(key)
    await session.flush()
    await ledger.append(session, actor=actor, action="holder_key.enrol", entity=f"user:{user.public_id}",
                        payload={"recipient": recipient})
    return key


def check_may_enrol(roles: Iterable[str], public_id: str) -> None:
    """Only accounts with a key-holding role enrol a holder key: 403 key_holder_role otherwise."""
    if not may_hold_keys(roles):
        raise Forbidden(f"only {' and '.join(KEY_HOLDER_ROLES)} accounts hold tender keys", code="key_holder_role",
                        details={"user": public_id, "needs_one_of": list(KEY_HOLDER_ROLES)})


async def wrap_new_holder_key(gate: ScryptGate, pool: Executor | None, passphrase: str) -> tuple[str, bytes]:
    """The slow half of an enrolment, with no database work: check the passphrase, then make and wrap a new
    identity in the pool through the gate (429 holder_key_busy when it is full). Returns (recipient, wrapped).
    Call it before opening the transaction that stores the key, so no connection waits on scrypt."""
    check_passphrase(passphrase)
    return await gate.run(pool, wrap_holder_identity, passphrase)


async def enrol_holder(session: AsyncSession, pool: Executor | None, user: User, passphrase: str, *,
                       actor: str, gate: ScryptGate | None = None) -> HolderKey:
    """Enrol `user` as a key holder: a new personal identity wrapped under their passphrase (slow, pooled).

    For scripts (the demo) that already hold `session`: the HTTP route calls `wrap_new_holder_key` before it
    touches the database, then `store_holder_key`."""
    check_may_enrol(user.roles, user.public_id)
    recipient, wrapped = await wrap_new_holder_key(gate or scrypt_gate(pool, 1), pool, passphrase)
    return await store_holder_key(session, user, recipient, wrapped, actor=actor)


async def current_holder_key(session: AsyncSession, user_id: int) -> HolderKey | None:
    """The user's current (not retired) holder key, if they enrolled."""
    return (await session.execute(select(HolderKey).where(
        HolderKey.user_id == user_id, HolderKey.kind == "person", HolderKey.retired_at.is_(None)))).scalar_one_or_none()


async def ensure_platform_key(session: AsyncSession, keyring: PlatformKeyring) -> HolderKey:
    """The platform's current holder key, made on first start and replaced if the master secret changed."""
    key = (await session.execute(select(HolderKey).where(
        HolderKey.kind == "platform", HolderKey.retired_at.is_(None)).with_for_update())).scalar_one_or_none()
    if key is not None:
        try:
            keyring.open(key.wrapped_identity, context=PLATFORM_IDENTITY_CONTEXT)
            return key
        except Unprocessable:
            log.warning("the platform holder key does not open with this master secret; making a new one")
            key.retired_at = func.now()
            await session.flush()
    identity, recipient = sealing.new_tender_identity()
    key = HolderKey(kind="platform", user_id=None, recipient=recipient,
                    wrapped_identity=keyring.seal(identity.encode("ascii"), context=PLATFORM_IDENTITY_CONTEXT))
    session.add(key)
    await session.flush()
    await ledger.append(session, actor="system", action="holder_key.platform", entity="platform",
                        payload={"recipient": recipient})
    return key


# ---------------------------------------------------------------------------------------------------------------
# A tender's key holders
# ---------------------------------------------------------------------------------------------------------------

# Who may hold a share of a tender's key: the agency's agents, who run the opening, and supervisors of the
# supervising organisation (行政监督部门, 招标投标法实施条例 第4条). Bidders, experts, tenderers' staff and
# platform administrators never do: the platform's own share is held by the platform, not by an account.
KEY_HOLDER_ROLES = ("agent", "supervisor")
# A tender key must never open for one person: k, the people whose shares are needed, is at least 2, and the
# platform's share never stands in for a person. Before the deadline nobody may decrypt a bid (招标投标法 第28条;
# 电子招标投标办法 第26条): a key one person can rebuild would let that person do it.
MIN_PEOPLE_TO_OPEN = 2
MIN_HOLDER_ORGANISATIONS = 2
KEY_SPLIT_STATUTE = "招标投标法 第28条, 电子招标投标办法 第26条"


def may_hold_keys(roles: Iterable[str]) -> bool:
    """Whether an account with these roles may enrol a holder key and be named a key holder."""
    return any(role in KEY_HOLDER_ROLES for role in roles or ())


def shares_needed(people: int, platform_share: bool) -> int:
    """The Shamir threshold of a tender key needing `people` people's shares: one more when the platform holds a
    share, so the platform's share only ever adds to k people's, never replaces one."""
    return people + (1 if platform_share else 0)


def check_key_split(people_needed: int, people: int) -> None:
    """k of n people: 2 <= k <= n (422 invalid_threshold, naming k, n and the statute)."""
    if isinstance(people_needed, bool) or not isinstance(people_needed, int) \
            or not MIN_PEOPLE_TO_OPEN <= people_needed <= people:
        raise Unprocessable(
            f"the threshold k counts people and must satisfy 2 <= k <= n, n the number of person holders: opening "
            f"needs the shares of at least two people, and the platform's share never counts as one "
            f"({KEY_SPLIT_STATUTE})", code="invalid_threshold",
            details={"k": people_needed, "n": people, "min_people": MIN_PEOPLE_TO_OPEN})


def check_holder_split(users: Sequence[User], threshold: int) -> None:
    """The rules on a tender's person holders: each has a key-holding role (422 key_holder_role), they come from
    at least two organisations (422 key_holders_one_organisation), and k of them are needed, 2 <= k <= n
    (`check_key_split`)."""
    wrong_role = [u.public_id for u in users if not may_hold_keys(u.roles)]
    if wrong_role:
        raise Unprocessable(f"only accounts with a key-holding role ({', '.join(KEY_HOLDER_ROLES)}) hold a "
                            "tender's key", code="key_holder_role",
                            details={"holders": wrong_role, "roles": list(KEY_HOLDER_ROLES)})
    organisations = {u.organisation_id for u in users if u.organisation_id is not None}
    if len(organisations) < MIN_HOLDER_ORGANISATIONS or any(u.organisation_id is None for u in users):
        raise Unprocessable("a tender's key holders come from at least two organisations (e.g. the agency and "
                            "the supervising organisation), so no single organisation can open the bids",
                            code="key_holders_one_organisation",
                            details={"organisations": len(organisations), "min": MIN_HOLDER_ORGANISATIONS})
    check_key_split(threshold, len(users))


def check_supervisor_holders(tender: Tender, users: Iterable[User]) -> None:
    """A supervisor holds a tender's key only for a tender their organisation supervises (行政监督部门,
    招标投标法实施条例 第4条); other supervisors are strangers to it. Refuses 422 supervisor_not_of_tender."""
    strangers = [u.public_id for u in users
                 if "supervisor" in u.roles and not is_supervisor_of(tender, principal_of(u))]
    if strangers:
        raise Unprocessable("a supervisor holds keys only of tenders their organisation supervises "
                            "(招标投标法实施条例 第4条)", code="supervisor_not_of_tender",
                            details={"holders": strangers})


@dataclass(frozen=True)
class KeyHolderView:
    """One key holder of a tender as shown to the agent."""

    position: int
    holder: str          # user public id, or "platform"
    enrolled: bool
    share_issued: bool


async def set_key_holders(session: AsyncSession, tender: Tender, holder_ids: list[str], threshold: int, *,
                          actor: str) -> list[KeyHolderView]:
    """Name a draft tender's person key holders (user public ids) and k, how many of them must unlock their
    shares to open; n is the number of people named. The platform's share, when the tender has one, is held
    beside them and adds one to the Shamir threshold (`shares_needed`)."""
    if tender.status != TenderStatus.DRAFT.value:
        raise Conflict("key holders are named while the tender is a draft", code="not_draft",
                       details={"current": tender.status})
    if len(set(holder_ids)) != len(holder_ids):
        raise Unprocessable("a key holder is named twice", code="duplicate_key_holder")
    n = len(holder_ids)
    check_key_split(threshold, n)
    users = {u.public_id: u for u in (await session.execute(
        select(User).where(User.public_id.in_(holder_ids)))).scalars()} if holder_ids else {}
    unknown = [h for h in holder_ids if h not in users]
    if unknown:
        raise NotFound("no such user", code="unknown_key_holder", details={"holders": unknown})
    check_holder_split([users[h] for h in holder_ids], threshold)
    check_supervisor_holders(tender, users.values())
    not_enrolled = [h for h in holder_ids if await current_holder_key(session, users[h].id) is None]
    if not_enrolled:
        raise Conflict("every key holder must enrol a holder key first", code="key_holder_not_enrolled",
                       details={"holders": not_enrolled})
    await session.execute(delete(TenderKeyHolder).where(TenderKeyHolder.tender_id == tender.id))
    for i, h in enumerate(holder_ids, start=1):
        session.add(TenderKeyHolder(tender_id=tender.id, position=i, user_id=users[h].id))
    if tender.platform_holds_share:
        session.add(TenderKeyHolder(tender_id=tender.id, position=n + 1, user_id=None))
    # widen before narrowing so the k <= n check constraint holds at every step
    tender.key_holder_count = n
    tender.key_threshold = threshold
    await session.flush()
    await ledger.append(session, actor=actor, action="tender.key_holders", entity=f"tender:{tender.code}",
                        payload={"holders": holder_ids, "platform": bool(tender.platform_holds_share),
                                 "k": threshold, "n": n})
    return await key_holders(session, tender)


async def key_holders(session: AsyncSession, tender: Tender) -> list[KeyHolderView]:
    """The tender's key holders in order, with whether each is enrolled and has a share."""
    rows = (await session.execute(
        select(TenderKeyHolder, User.public_id).outerjoin(User, User.id == TenderKeyHolder.user_id)
        .where(TenderKeyHolder.tender_id == tender.id).order_by(TenderKeyHolder.position))).all()
    out = []
    for row, public_id in rows:
        enrolled = True if row.user_id is None else await current_holder_key(session, row.user_id) is not None
        out.append(KeyHolderView(position=row.position, holder=public_id or "platform", enrolled=enrolled,
                                 share_issued=row.encrypted_share is not None))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Sealing at publish
# ---------------------------------------------------------------------------------------------------------------

async def seal_at_publish(session: AsyncSession, tender: Tender, *, actor: str) -> None:
    """Give `tender` its age recipient: a fresh identity split k-of-n, each share encrypted to its holder.

    Raises Conflict(key_holders_not_ready) when holders are missing or not enrolled. The identity itself is
    never stored: after this returns only the holders together can rebuild it.
    """
    if tender.age_recipient:
        raise Conflict("this tender is already sealed", code="already_sealed",
                       details={"recipient": tender.age_recipient})
    rows = list((await session.execute(select(TenderKeyHolder).where(TenderKeyHolder.tender_id == tender.id)
                                        .order_by(TenderKeyHolder.position).with_for_update())).scalars())
    people = [r for r in rows if r.user_id is not None]
    platform_rows = [r for r in rows if r.user_id is None]
    # The platform's share follows the tender's flag as it stands at publish.
    if tender.platform_holds_share and not platform_rows:
        extra = TenderKeyHolder(tender_id=tender.id, position=max((r.position for r in rows), default=0) + 1)
        session.add(extra)
        platform_rows = [extra]
    elif not tender.platform_holds_share and platform_rows:
        for r in platform_rows:
            await session.delete(r)
        platform_rows = []
    holders = people + platform_rows
    n, k = len(people), tender.key_threshold   # people: k of n must unlock
    # the supervising organisation and the holders' roles may have changed since the holders were named
    person_users = [await session.get(User, r.user_id) for r in people]
    if people:
        check_holder_split(person_users, k)
    check_supervisor_holders(tender, person_users)
    missing: list[str] = []
    keys: list[HolderKey] = []
    for row in people:
        key = await current_holder_key(session, row.user_id)
        if key is None:
            missing.append((await session.get(User, row.user_id)).public_id)
        else:
            keys.append(key)
    platform_key = None
    if platform_rows:
        platform_key = (await session.execute(select(HolderKey).where(
            HolderKey.kind == "platform", HolderKey.retired_at.is_(None)))).scalar_one_or_none()
        if platform_key is None:
            missing.append("platform")
    if not people or missing or not MIN_PEOPLE_TO_OPEN <= k <= n:
        raise Conflict("the tender's key holders are not ready: name at least two enrolled holders and a "
                       "threshold 2 <= k <= n", code="key_holders_not_ready",
                       details={"not_enrolled": missing, "k": k, "n": n})
    if platform_key is not None:
        keys.append(platform_key)
    identity, recipient = sealing.new_tender_identity()
    # the platform's share raises the threshold by one: it joins k people's shares, it never replaces one
    threshold = shares_needed(k, platform_key is not None)
    shares = sealing.split_identity_plain(identity, threshold, len(holders))
    del identity  # only the shares leave this function
    for row, key, share in zip(holders, keys, shares):
        row.holder_key_id = key.id
        row.encrypted_share = pyrage.encrypt(share, [pyrage.x25519.Recipient.from_str(key.recipient)])
    tender.key_holder_count = n
    tender.age_recipient = recipient
    await session.flush()
    await ledger.append(session, actor=actor, action="tender.sealed", entity=f"tender:{tender.code}",
                        payload={"recipient": recipient, "k": k, "n": n, "platform_share": platform_key is not None,
                                 "shares_needed": threshold, "holder_keys": [key.recipient for key in keys]})
    log.info("tender %s sealed to %s: %d of %d people%s", tender.code, recipient, k, n,
             " and the platform's share" if platform_key is not None else "")
