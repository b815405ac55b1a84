"""Issuing, signing, serving and verifying records. Every domain issues its PDFs through here."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import db_now
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.ids import public_id
from evidence import ledger_service as ledger
from evidence.pki import Pki
from evidence.records import Block, RecordDocument, render_record
from evidence.records_models import Record, RecordRevision
from evidence.signing import SEAL_FIELD, SignerSpec, VerificationReport, sign_once, verify_pdf

log = logging.getLogger(__name__)

AUDIENCES = ("public", "staff", "supervisors")
STAFF_ROLES = ("agent", "supervisor", "admin", "purchaser")


@dataclass
class RecordContent:
    """What a domain wants on a record; the service adds number, checkpoint, QR link and time."""

    kind: str
    title_zh: str
    title_en: str
    blocks: Sequence[Block]
    attachment: Any = None


@dataclass
class RecordsContext:
    """The resources records need: the PKI, where the files live, the ledger key and the public address."""

    pki: Pki
    directory: Path
    public_url: str
    ledger_signer: ledger.LedgerSigner
    sessions: async_sessionmaker | None = None
    statutory_periods: bool = True  # settings.statutory_periods: records issued with it off say so
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def verify_url(self, record_no: str) -> str:
        return f"{self.public_url}/api/v1/records/{record_no}/verification"

    def store(self, data: bytes) -> tuple[str, str]:
        """Write bytes content-addressed (sha256) with an atomic rename; returns (sha256, storage key)."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"records/{digest[:2]}/{digest}.pdf"
        path = self.directory / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return digest, key

    def load(self, key: str) -> bytes:
        return (self.directory / key).read_bytes()


async def fresh_checkpoint(ctx: RecordsContext) -> dict | None:
    """Sign a checkpoint in its own short transaction, so the ledger lock is not held while PDFs are signed."""
    if ctx.sessions is None:
        return None
    async with ctx.sessions() as side, side.begin():
        cp = await ledger.make_checkpoint(side, ctx.ledger_signer)
        return ledger.checkpoint_dict(cp) if cp else None


async def issue_record(session: AsyncSession, ctx: RecordsContext, *, actor: str, entity: str,
                       content: RecordContent, signers: Sequence[SignerSpec] = (), seal: bool = True,
                       audience: str = "public", checkpoint: dict | None = None) -> Record:
    """Render the record, add the given signatures in order and (by default) the platform seal, and archive it.

    Persons who sign later (e.g. experts one by one) are added with `add_signature`, then `seal_record`.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}")
    record_no = public_id("R", 8)
    issued_at = await db_now(session)
    if checkpoint is None:
        checkpoint = await fresh_checkpoint(ctx)
    doc = RecordDocument(record_no=record_no, kind=content.kind, title_zh=content.title_zh,
                         title_en=content.title_en, blocks=content.blocks, verify_url=ctx.verify_url(record_no),
                         checkpoint=checkpoint, attachment=content.attachment, issued_at=issued_at,
                         statutory_periods=ctx.statutory_periods)
    pdf = await asyncio.to_thread(render_record, doc)
    digest, key = ctx.store(pdf)
    record = Record(record_no=record_no, kind=content.kind, entity=entity, audience=audience, status="signing",
                    sha256=digest, size=len(pdf), storage_key=key, signers=[], created_by=actor,
                    checkpoint_size=checkpoint["size"] if checkpoint else None)
    session.add(record)
    await session.flush()
    session.add(RecordRevision(record_id=record.id, seq=0, sha256=digest, size=len(pdf), storage_key=key))
    await session.flush()
    await ledger.append(session, actor=actor, action="record.render", entity=f"record:{record_no}",
                        payload={"kind": content.kind, "subject": entity, "sha256": digest,
                                 "checkpoint_size": record.checkpoint_size})
    for spec in signers:
        await add_signature(session, ctx, record, spec, actor=actor)
    if seal:
        await seal_record(session, ctx, record, actor=actor)
    return record


async def add_signature(session: AsyncSession, ctx: RecordsContext, record: Record, spec: SignerSpec, *,
                        actor: str) -> Record:
    """One more signature as an incremental update; the earlier bytes stay untouched."""
    if record.status == "sealed":
        raise Conflict("the record is sealed; nothing can be added", code="record_sealed")
    signed = await sign_once(ctx.load(record.storage_key), ctx.pki, spec)
    digest, key = ctx.store(signed)
    seq = len(record.signers) + 1
    now = await db_now(session)
    session.add(RecordRevision(record_id=record.id, seq=seq, sha256=digest, size=len(signed), storage_key=key,
                               signed_field=spec.field_name, signer=spec.public_id or "platform"))
    record.signers = [*record.signers, {"field": spec.field_name, "public_id": spec.public_id or "platform",
                                        "name": spec.name or "bidroom", "at": now.isoformat()}]
    record.sha256, record.size, record.storage_key = digest, len(signed), key
    await session.flush()
    await ledger.append(session, actor=actor, action="record.sign", entity=f"record:{record.record_no}",
                        payload={"field": spec.field_name, "signer": spec.public_id or "platform",
                                 "sha256": digest})
    return record


async def seal_record(session: AsyncSession, ctx: RecordsContext, record: Record, *, actor: str) -> Record:
    """Apply the platform seal last; the record is final from then on."""
    await add_signature(session, ctx, record, SignerSpec.seal(), actor=actor)
    sealed_at = await db_now(session)  # before touching the row: autoflush must not write status alone
    record.status, record.sealed_at = "sealed", sealed_at
    await session.flush()
    await ledger.append(session, actor=actor, action="record.seal", entity=f"record:{record.record_no}",
                        payload={"sha256": record.sha256, "size": record.size})
    return record


async def get_record(session: AsyncSession, record_no: str) -> Record:
    record = (await session.execute(select(Record).where(Record.record_no == record_no))).scalar_one_or_none()
    if record is None:
        raise NotFound("no such record", code="record_not_found", details={"record_no": record_no})
    return record


def check_access(record: Record, roles: frozenset[str] | None) -> None:
    """Public records for anyone; staff records for staff; supervisor editions for supervisors and admins."""
    if record.audience == "public":
        return
    allowed = STAFF_ROLES if record.audience == "staff" else ("supervisor", "admin")
    if not roles:
        raise Forbidden("sign in to read this record", code="record_restricted")
    if not roles.intersection(allowed):
        raise Forbidden("your role may not read this record", code="record_restricted",
                        details={"audience": record.audience})


async def find_archived(session: AsyncSession, digest: str) -> tuple[Record, RecordRevision | None] | None:
    """The record whose final bytes, or one of whose signed revisions, have exactly this SHA-256."""
    record = (await session.execute(select(Record).where(Record.sha256 == digest))).scalars().first()
    if record is not None:
        return record, None
    row = (await session.execute(select(Record, RecordRevision).join(
        RecordRevision, RecordRevision.record_id == Record.id).where(RecordRevision.sha256 == digest))).first()
    return (row[0], row[1]) if row else None


async def verify_upload(session: AsyncSession | None, ctx_or_pki, pdf: bytes) -> dict:
    """Signature report plus whether the bytes are exactly an archived record."""
    pki = ctx_or_pki.pki if isinstance(ctx_or_pki, RecordsContext) else ctx_or_pki
    report: VerificationReport = await verify_pdf(pdf, pki)
    digest = hashlib.sha256(pdf).hexdigest()
    archived = None
    if session is not None:
        found = await find_archived(session, digest)
        if found is not None:
            record, revision = found
            archived = {"record_no": record.record_no, "kind": record.kind, "entity": record.entity,
                        "final": revision is None and record.status == "sealed",
                        "revision": revision.seq if revision else None}
    return {"sha256": digest, "archived": archived is not None, "record": archived, **report.as_dict()}
