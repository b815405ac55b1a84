"""The signed draw records (专家抽取记录) of executed draws: their content, issue, listing and audience.

A draw record names the drawn experts, so it follows the draw's visibility at the moment of each request
(expert_pool.access.may_read_record): the tender's supervisors until the award, then everyone for the public
edition. The rule is registered with evidence.records_service for every record about a `draw:` entity, so the
archive's own routes (download, verification page, record list, verification by upload) apply it too.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict
from core.identity_models import User
from core.principal import Principal
from evidence import ledger_service as ledger
from evidence import randomness as rnd
from evidence.records_models import Record
from evidence.records_service import RecordsContext, fresh_checkpoint, issue_record, may_read, register_audience
from expert_pool import access
from expert_pool.draws import DrawState, draw_entity, draw_state
from expert_pool.models import Expert, ExpertDraw
from expert_pool.records import PUBLIC, RECORD_KIND, SUPERVISOR, DrawRecord, build_draw_record
from trading.models import Tender

log = logging.getLogger(__name__)

ENTITY_KIND = "draw"
# the archive's audience for each edition: the public edition follows the draw (the audience rule below);
# the edition with names is for supervisors, and the rule restricts it to the tender's until the award
RECORD_AUDIENCES = {PUBLIC: "entity", SUPERVISOR: "supervisors"}
EDITIONS = {audience: edition for edition, audience in RECORD_AUDIENCES.items()} | {"public": PUBLIC}


async def draw_audience(session: AsyncSession, draw_public_id: str, who: Principal | None) -> bool:
    """The audience rule of records about a draw: whoever may read the draw's public edition now."""
    tender = (await session.execute(select(Tender).join(ExpertDraw, ExpertDraw.tender_id == Tender.id)
                                    .where(ExpertDraw.public_id == draw_public_id))).scalar_one_or_none()
    return tender is not None and access.may_read_record(tender, who, PUBLIC)


def register() -> None:
    """Register the draw's audience rule with the records archive (called when the expert pool's routes load)."""
    register_audience(ENTITY_KIND, draw_audience)


def verification(draw: ExpertDraw) -> dict[str, Any]:
    """The published record of an executed draw (ALGORITHMS.md §1), recomputed from the stored inputs."""
    if draw.entropy is None:
        raise Conflict("the draw has not been executed yet", code="draw_not_executed",
                       details={"draw_id": draw.public_id})
    record = rnd.verification_record(request=draw.request, candidates=draw.candidates, secret=bytes(draw.secret),
                                     entropy=draw.entropy)
    if record["result"] != draw.result or record["seed"] != draw.seed:
        # never publish a record that disagrees with what was acted upon
        raise RuntimeError(f"draw {draw.public_id} does not recompute to its stored result")
    return record


async def names_of(session: AsyncSession, public_ids) -> dict[str, str]:
    """Experts' names by public id, for the views that may show identities."""
    wanted = sorted(set(public_ids))
    if not wanted:
        return {}
    rows = await session.execute(select(Expert.public_id, Expert.name).where(Expert.public_id.in_(wanted)))
    return {pid: name for pid, name in rows.all()}


async def issued(session: AsyncSession, draw: ExpertDraw) -> list[Record]:
    """The issued record PDFs of one draw, oldest first."""
    return list((await session.execute(select(Record).where(
        Record.entity == draw_entity(draw), Record.kind == RECORD_KIND).order_by(Record.id))).scalars())


def edition_of(record: Record) -> str:
    return EDITIONS.get(record.audience, record.audience)


async def record_content(session: AsyncSession, state: DrawState, *, edition: str = PUBLIC,
                         issued_no: str | None = None) -> DrawRecord:
    """The draw record of an executed draw: the public edition, or the supervisor edition with names."""
    draw = state.draw
    if issued_no is None:
        issued_no = next((r.record_no for r in await issued(session, draw) if edition_of(r) == edition), None)
    record = verification(draw)
    confirmations = {pid: i.status for i, pid in state.invitations}
    picks = [pid for r in draw.result for pid in (*r["primaries"], *r["backups"])]
    names = await names_of(session, picks) if edition == SUPERVISOR else None
    signers = []
    for user_id, role_zh, role_en in ((state.root.requested_by_id, "招标代理", "Tender agent"),
                                      (draw.entropy_by_id, "监督人员", "Supervisor")):
        if user_id is not None:
            name = (await session.execute(select(User.display_name).where(User.id == user_id))).scalar_one()
            signers.append((name, role_zh, role_en))
    return build_draw_record(draw=draw, tender=state.tender, lot=state.lot, confirmations=confirmations,
                             verification=record, edition=edition, names=names,
                             supplements=state.root.public_id if draw.id != state.root.id else None,
                             signers=signers, issued_no=issued_no)


async def issue_draw_records(session: AsyncSession, ctx: RecordsContext, draw_public_id: str) -> list[Record]:
    """Issue the signed draw record PDFs of an executed draw (public and supervisor editions); idempotent."""
    state = await draw_state(session, draw_public_id)
    draw = state.draw
    if draw.result is None:
        raise Conflict("the draw has not been executed yet", code="draw_not_executed",
                       details={"draw_id": draw.public_id})
    have = {edition_of(r) for r in await issued(session, draw)}
    if have >= set(RECORD_AUDIENCES):
        return []
    # One checkpoint for both editions, signed before this transaction writes to the ledger: a second
    # checkpoint would wait for the ledger lock this transaction then holds.
    checkpoint = await fresh_checkpoint(ctx)
    out: list[Record] = []
    for edition in (PUBLIC, SUPERVISOR):
        if edition in have:
            continue
        content = await record_content(session, state, edition=edition, issued_no="")
        record = await issue_record(session, ctx, actor=ledger.SYSTEM, entity=draw_entity(draw),
                                    content=content.to_content(), audience=RECORD_AUDIENCES[edition],
                                    checkpoint=checkpoint)
        out.append(record)
        log.info("draw %s: %s record %s issued", draw.public_id, edition, record.record_no)
    return out


async def readable(session: AsyncSession, records: list[Record], who: Principal | None) -> dict[str, bool]:
    """Per record number: whether `who` may read that record now (the archive's own answer)."""
    return {r.record_no: await may_read(session, r, who) for r in records}
