"""The draw's venue as a reference to the evaluation session (评标会议) the committee will sit in.

A draw used to carry its venue as free text. When the lot's evaluation session exists, the draw names it
instead: the draw keeps the session's public id and, as its venue, the session's venues (main venue and
sub-venues) as they stand when the draw is requested — what the invitations tell the experts. When the draw
comes first (the usual order: the committee is drawn while the bids are sealed), it keeps its free-text venue and
evaluation writes the reference when it schedules the lot's session.

The pool sits below evaluation in the layer order (trading → expert_pool → evaluation) and never imports it:
evaluation registers how a reference resolves (`set_resolver`, done by evaluation.committee, the one adapter
between the two), and the pool stores the public id as an opaque string. A build without evaluation refuses
references with 422 session_reference_unsupported.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Unprocessable
from evidence import ledger_service as ledger
from expert_pool.models import ExpertDraw

# (session, lot id, session public id) -> the venue text; raises NotFound / Conflict for a bad reference
Resolver = Callable[[AsyncSession, int, str], Awaitable[str]]

_resolver: Resolver | None = None


def set_resolver(resolver: Resolver) -> None:
    """Evaluation's resolver of session references (called once, when evaluation is loaded)."""
    global _resolver
    _resolver = resolver


async def resolve(session: AsyncSession, lot_id: int, session_public_id: str) -> str:
    """The venue text of the lot's evaluation session; refused when evaluation is not part of this build."""
    if _resolver is None:
        raise Unprocessable("this build has no evaluation sessions to refer to: give the venue as text",
                            code="session_reference_unsupported")
    return await _resolver(session, lot_id, session_public_id)


async def refer_to_session(session: AsyncSession, lot_id: int, session_public_id: str, *, actor: str) -> str | None:
    """The lot's live original draw now refers to this evaluation session (scheduled after the draw, or anew
    after an abort); its venue text stays what the experts were told. Returns the draw's public id, None when
    the lot has no live draw. Writes `draw.session_referred` to the ledger when the reference changes."""
    draw = (await session.execute(select(ExpertDraw).where(
        ExpertDraw.lot_id == lot_id, ExpertDraw.parent_id.is_(None), ExpertDraw.status != "cancelled")
        .with_for_update())).scalar_one_or_none()
    if draw is None:
        return None
    if draw.evaluation_session != session_public_id:
        previous, draw.evaluation_session = draw.evaluation_session, session_public_id
        await session.flush()
        await ledger.append(session, actor=actor, action="draw.session_referred",
                            entity=ledger.entity_ref("draw", draw.public_id),
                            payload={"draw_id": draw.public_id, "evaluation_session": session_public_id,
                                     "previous": previous, "venue": draw.venue})
    return draw.public_id
