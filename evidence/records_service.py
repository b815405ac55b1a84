"""Issuing, signing, serving and verifying records. Every domain issues its PDFs through here.

Who may read a record follows the visibility of what it records, at the moment of the request. Each record
has an archived audience (public, staff, supervisors, or `entity`: whoever the entity's rule admits), and a
domain may register an audience rule for its kind of entity (`register_audience("draw", rule)`): then the rule
must admit the caller too, for every record about such an entity, on every route that reaches one (download,
verification page, lists, verification by upload). A record is never more visible than what it records.
Evidence imports no domain: the domains register their rules at import.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import db_now
from core.errors import Conflict, Forbidden, NotFound
from core.ids import public_id
from core.principal import Principal
from core.storage import Storage
from evidence import ledger_service as ledger
from evidence.pki import Pki
from evidence.records import Block, RecordDocument, render_record
from evidence.records_models import Record, RecordRevision
from evidence.signing import SEAL_FIELD, SignerSpec, VerificationReport, sign_once, verify_pdf

log = logging.getLogger(__name__)

AUDIENCES = ("public", "staff", "supervisors", "entity")
STAFF_ROLES = ("agent", "supervisor", "admin", "purchaser")
RECORDS_KIND = "records"  # the storage kind: records/<aa>/<sha256>.pdf

# (session, entity id, caller) -> whether the caller may see records about that entity now
AudienceRule = Callable[[AsyncSession, str, "Principal | None"], Awaitable[bool]]
_AUDIENCE_RULES: dict[str, AudienceRule] = {}


def register_audience(entity_kind: str, rule: AudienceRule) -> None:
    """Make every record about entities of this kind (entity "kind:id") follow `rule`. Registering again
    replaces the rule (apps are built more than once in one process)."""
    _AUDIENCE_RULES[entity_kind] = rule


def audience_rule(entity_kind: str) -> AudienceRule | None:
    return _AUDIENCE_RULES.get(entity_kind)


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

    storage: Storage = field(init=False)

    def __post_init__(self) -> None:
        self.storage = Storage(self.directory)

    async def store(self, data: bytes) -> tuple[str, str]:
        """Write the bytes content-addressed (records/<aa>/<sha256>.pdf) through core.storage: fsync, then
        rename, off the event loop. Returns (sha256, storage key)."""
        stored = await self.storage.put_bytes(data, kind=RECORDS_KIND, suffix=".pdf")
        return stored.sha256, stored.key

    async def load(self, key: str) -> bytes:
        return await self.storage.read_bytes(key)


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
    digest, key = await ctx.store(pdf)
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
    signed = await sign_once(await ctx.load(record.storage_key), ctx.pki, spec)
    digest, key = await ctx.store(signed)
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


def _split(entity: str) -> tuple[str, str]:
    kind, _, entity_id = entity.partition(":")
    return kind, entity_id


async def may_read(session: AsyncSession, record: Record, who: Principal | None) -> bool:
    """Whether `who` may read this record now: the entity's audience rule, if its kind registered one, and the
    record's archived audience (public: anyone; staff: agents, purchasers, supervisors, admins; supervisors:
    supervisors and admins; entity: whoever the rule admits, nobody when no rule is registered)."""
    kind, entity_id = _split(record.entity)
    rule = _AUDIENCE_RULES.get(kind)
    if rule is not None and not await rule(session, entity_id, who):
        return False
    if record.audience == "entity":
        return rule is not None
    if record.audience == "public":
        return True
    allowed = STAFF_ROLES if record.audience == "staff" else ("supervisor", "admin")
    return who is not None and who.has(*allowed)


async def check_access(session: AsyncSession, record: Record, who: Principal | None) -> None:
    """Refuse a record the caller may not read now: 403 `record_restricted` (the same for everyone refused, so
    the answer does not tell who may read it)."""
    if not await may_read(session, record, who):
        raise Forbidden("sign in with a role that may read this record" if who is None else
                        "you may not read this record now", code="record_restricted",
                        details={"record_no": record.record_no})


async def entity_visible(session: AsyncSession, entity: str, who: Principal | None) -> bool:
    """Whether the entity's rule (if any) lets `who` see records about it now: its number, signers and list."""
    kind, entity_id = _split(entity)
    rule = _AUDIENCE_RULES.get(kind)
    return rule is None or await rule(session, entity_id, who)


async def records_about(session: AsyncSession, entity: str, who: Principal | None) -> list[Record]:
    """The records about one entity that `who` may read now, oldest first."""
    if not await entity_visible(session, entity, who):
        return []
    rows = (await session.execute(select(Record).where(Record.entity == entity).order_by(Record.id))).scalars()
    return [r for r in rows if await may_read(session, r, who)]


async def find_archived(session: AsyncSession, digest: str) -> tuple[Record, RecordRevision | None] | None:
    """The record whose final bytes, or one of whose signed revisions, have exactly this SHA-256."""
    record = (await session.execute(select(Record).where(Record.sha256 == digest))).scalars().first()
    if record is not None:
        return record, None
    row = (await session.execute(select(Record, RecordRevision).join(
        RecordRevision, RecordRevision.record_id == Record.id).where(RecordRevision.sha256 == digest))).first()
    return (row[0], row[1]) if row else None


async def verify_upload(session: AsyncSession | None, ctx_or_pki, pdf: bytes, *,
                        who: Principal | None = None, report: dict | None = None) -> dict:
    """Signature report plus whether the bytes are exactly an archived record.

    With a session (the HTTP route), an archived record the caller may not read now is refused with 403
    `record_restricted`: the archive does not confirm or describe a record to someone outside its audience.
    Without one (the offline CLI), only the signatures are checked. `report` is the signature report when the
    caller already validated the file (the route does, in the bounded worker pool, before it touches the
    database); otherwise it is validated here."""
    pki = ctx_or_pki.pki if isinstance(ctx_or_pki, RecordsContext) else ctx_or_pki
    digest = hashlib.sha256(pdf).hexdigest()
    if report is None:
        verdict: VerificationReport = await verify_pdf(pdf, pki)
        report = verdict.as_dict()
    found = await find_archived(session, digest) if session is not None else None
    if found is not None:
        await check_access(session, found[0], who)
    archived = None
    if session is not None:
        if found is not None:
            record, revision = found
            archived = {"record_no": record.record_no, "kind": record.kind, "entity": record.entity,
                        "final": revision is None and record.status == "sealed",
                        "revision": revision.seq if revision else None}
    return {"sha256": digest, "archived": archived is not None, "record": archived, **report}
