"""Appending to, checkpointing and verifying the audit ledger inside the caller's transaction."""
from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.canonical import cj, sha256_hex
from core.db import advisory_xact_lock
from core.errors import Conflict
from core.keys import key_id, raw_public
from evidence.ledger import (ZERO_HEAD, ChainProblem, MerkleFrontier, checkpoint_body, entry_object,
                             leaf_hash, next_head, verify_chain)
from evidence.ledger_models import AuditCheckpoint, AuditEntry

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key serialising appends ("bidroom ledger" folded into a bigint)
LEDGER_LOCK_KEY = 0x6269_6472_6C65_6467
SYSTEM = "system"


def entity_ref(kind: str, ident: Any) -> str:
    """The ledger's name for a thing, e.g. tender:ZS-2026-ZFCG-00042."""
    return f"{kind}:{ident}"


async def append(session: AsyncSession, *, actor: str, action: str, entity: str,
                 payload: dict | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction; commits or rolls back with the business change."""
    payload = payload or {}
    payload_hash = sha256_hex(cj(payload))
    await advisory_xact_lock(session, LEDGER_LOCK_KEY)
    row = (await session.execute(text(
        "SELECT seq, entry_hash, clock_timestamp() AS now FROM (SELECT 1) one "
        "LEFT JOIN LATERAL (SELECT seq, entry_hash FROM audit_entry ORDER BY seq DESC LIMIT 1) last ON true"
    ))).one()
    seq = (row.seq or 0) + 1
    prev_head = bytes.fromhex(row.entry_hash) if row.entry_hash else ZERO_HEAD
    at = row.now  # database clock, microsecond precision
    e = entry_object(seq=seq, at=at, actor=actor, action=action, entity=entity, payload_sha256=payload_hash)
    head = next_head(prev_head, leaf_hash(e))
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, entity=entity, payload=payload,
                       payload_sha256=payload_hash, entry_hash=head.hex())
    session.add(entry)
    await session.flush()
    return entry


def export_entry(entry: AuditEntry) -> dict:
    """The public form of an entry: `e` plus its entry_hash."""
    e = entry_object(seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action, entity=entry.entity,
                     payload_sha256=entry.payload_sha256)
    e["entry_hash"] = entry.entry_hash
    return e


async def entries_after(session: AsyncSession, after: int, limit: int) -> list[AuditEntry]:
    result = await session.execute(
        select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit))
    return list(result.scalars())


@dataclass
class LedgerSigner:
    """The platform's Ed25519 checkpoint key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def public_key_b64(self) -> str:
        return base64.b64encode(raw_public(self.public_key)).decode()

    def sign(self, body: dict) -> str:
        return base64.b64encode(self.private_key.sign(cj(body))).decode()


def checkpoint_signature_ok(public_key: Ed25519PublicKey, cp: dict) -> bool:
    body = checkpoint_body(cp["size"], bytes.fromhex(cp["head"]), bytes.fromhex(cp["root"]))
    try:
        public_key.verify(base64.b64decode(cp["signature"]), cj(body))
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_dict(cp: AuditCheckpoint, signer: LedgerSigner | None = None) -> dict:
    out = {"size": cp.size, "head": cp.head, "root": cp.root, "signature": cp.signature, "key_id": cp.key_id}
    if signer is not None:
        out["public_key"] = signer.public_key_b64()
        out["algorithm"] = "Ed25519"
    return out


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    return (await session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))).scalar_one_or_none()


class CheckpointInvalid(Conflict):
    """The latest stored checkpoint does not verify: nothing may be built on it."""

    def __init__(self, size: int, reason: str):
        super().__init__(f"the ledger checkpoint of size {size} {reason}; no new checkpoint is made on top of it. "
                         "Run `bidroom audit verify` and investigate before anything else",
                         code="ledger_checkpoint_invalid", details={"size": size, "reason": reason})


def _check_previous(previous: AuditCheckpoint, frontier: MerkleFrontier, signer: LedgerSigner) -> None:
    """The checkpoint a new one grows from must carry a valid signature, and its stored frontier (which is not
    signed) must give the signed root; otherwise a row changed behind the platform's back would be re-signed."""
    if not checkpoint_signature_ok(signer.public_key, checkpoint_dict(previous)):
        reason = "has a signature that does not verify with the platform's ledger key"
    elif frontier.root().hex() != previous.root:
        reason = "has a stored Merkle frontier that does not give its signed root"
    else:
        return
    log.error("ledger checkpoint does not verify", extra={"size": previous.size, "reason": reason})
    raise CheckpointInvalid(previous.size, reason)


async def make_checkpoint(session: AsyncSession, signer: LedgerSigner) -> AuditCheckpoint | None:
    """Sign the current ledger size, growing the Merkle frontier from the previous checkpoint.

    The previous checkpoint's signature and frontier are verified first (CheckpointInvalid, 409
    `ledger_checkpoint_invalid`, if they do not hold). Returns the existing checkpoint when nothing was appended
    since, or None for an empty ledger.
    """
    # the same lock as appends: the ledger cannot grow while we read its tail
    await advisory_xact_lock(session, LEDGER_LOCK_KEY)
    previous = await latest_checkpoint(session)
    frontier = (MerkleFrontier.from_json(previous.size, previous.frontier) if previous else MerkleFrontier())
    if previous is not None:
        _check_previous(previous, frontier, signer)
    head_hex = previous.head if previous else None
    async for entry in _stream_entries(session, after=frontier.size):
        frontier.append(leaf_hash(_entry_e(entry)))
        head_hex = entry.entry_hash
    if frontier.size == 0:
        return None
    if previous is not None and previous.size == frontier.size:
        return previous
    body = checkpoint_body(frontier.size, bytes.fromhex(head_hex), frontier.root())
    cp = AuditCheckpoint(size=frontier.size, head=body["head"], root=body["root"], key_id=signer.key_id,
                         signature=signer.sign(body), frontier=frontier.to_json())
    session.add(cp)
    await session.flush()
    log.info("ledger checkpoint", extra={"size": cp.size, "root": cp.root})
    return cp


def _entry_e(entry: AuditEntry) -> dict:
    return entry_object(seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action,
                        entity=entry.entity, payload_sha256=entry.payload_sha256)


async def _stream_entries(session: AsyncSession, after: int = 0, batch: int = 5000) -> AsyncIterator[AuditEntry]:
    while True:
        rows = await entries_after(session, after, batch)
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].seq


async def verify_ledger(session: AsyncSession, public_key: Ed25519PublicKey) -> tuple[int, ChainProblem | None]:
    """Recompute every leaf, head and checkpoint from the stored rows; name the first bad seq."""
    cps = {cp.size: checkpoint_dict(cp) for cp in (await session.execute(select(AuditCheckpoint))).scalars()}
    rows = []
    async for entry in _stream_entries(session):
        e = _entry_e(entry)
        if sha256_hex(cj(entry.payload)) != entry.payload_sha256:
            # the payload column is evidence too: its hash must still match
            rows.append(({**e, "payload_sha256": "payload-altered"}, entry.entry_hash))
        else:
            rows.append((e, entry.entry_hash))
    return verify_chain(rows, cps, lambda cp: checkpoint_signature_ok(public_key, cp))
