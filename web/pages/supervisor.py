"""Supervisor pages (监督): the live evaluation sessions of the tenders I supervise, one session's stage and each
member's progress with its open flags, suspending and resuming with a reason, and the entropy of an expert draw.

The lists are the API's own supervision handler (`evaluation.routes.supervise`, which keeps to the tenders the
caller supervises); suspend, resume and the draw's entropy are the API's handlers too, so the same rules (only
the tender's supervisors resume, a reason is required...) and ledger entries apply."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from core.errors import DomainError, NotFound
from evaluation import routes as ev
from evaluation.schemas import ResumeIn, SuspendIn
from expert_pool import routes as pool_routes
from expert_pool.schemas import EntropyIn as DrawEntropyIn
from web.api import RequestValidationFailed
from web.keys import db
from web.pages.expert import label
from web.pages.routing import FormError, Pages, act, see_other, validated

pages = Pages()
SUPERVISING = ("supervisor", "admin")



@pages.get("/supervise", "supervise.html", roles=SUPERVISING)
async def live_sessions(request: web.Request, who):
    return {"sessions": await ev.supervise(request, who=who), "label": label}


async def session_context(request: web.Request, who) -> dict[str, Any]:
    sid = request.match_info["session_id"]
    live = next((s for s in await ev.supervise(request, who=who) if s.session_id == sid), None)
    view = await ev.get_session(request, who=who)   # 403/404 as the API answers
    return {"s": live, "view": view, "label": label}


@pages.get("/supervise/sessions/{session_id}", "supervise_session.html", roles=SUPERVISING)
async def one_session(request: web.Request, who):
    return await session_context(request, who)


async def _act(request: web.Request, who, call) -> web.Response:
    return await act(request, call, template="supervise_session.html", context=lambda: session_context(request, who),
                     then=f"/supervise/sessions/{request.match_info['session_id']}")


@pages.post("/supervise/sessions/{session_id}/suspend", roles=("supervisor",))
async def suspend(request: web.Request, who):
    form = await request.post()
    body = {"reason": str(form.get("reason", "")).strip(), "fault": form.get("fault") == "yes"}
    return await _act(request, who, lambda: ev.suspend_session(request, who=who, body=validated(SuspendIn, body)))


@pages.post("/supervise/sessions/{session_id}/resume", roles=("supervisor",))
async def resume(request: web.Request, who):
    form = await request.post()
    body = {"note": str(form.get("note", "")).strip() or None}
    return await _act(request, who, lambda: ev.resume_session(request, who=who, body=validated(ResumeIn, body)))


# ---- expert draws: the supervisor's entropy -------------------------------------------------------------------

@pages.get("/supervise/draws", roles=SUPERVISING)
async def find_draw(request: web.Request, who):
    draw = request.query.get("draw", "").strip().upper()
    if not draw or not draw.replace("-", "").isalnum() or len(draw) > 16:
        raise NotFound("no such draw", code="draw_not_found")
    return see_other(f"/supervise/draws/{draw}")


@pages.get("/supervise/draws/{draw_id}", "supervise_draw.html", roles=SUPERVISING)
async def one_draw(request: web.Request, who):
    return {"d": await pool_routes.get_draw(request, who=who)}


@pages.post("/supervise/draws/{draw_id}/entropy", roles=("supervisor",))
async def draw_entropy(request: web.Request, who):
    form = await request.post()
    body = {"entropy": str(form.get("entropy", "")).strip()}
    try:
        await pool_routes.supply_entropy(request, who=who, body=validated(DrawEntropyIn, body))
    except (DomainError, RequestValidationFailed) as err:
        if isinstance(err, RequestValidationFailed):
            bad = DomainError("the request does not match the schema", code="validation_failed")
            bad.status = 422
            err = bad
        await db(request).rollback()
        raise FormError(err, "supervise_draw.html", {"d": await pool_routes.get_draw(request, who=who)}) from err
    return see_other(f"/supervise/draws/{request.match_info['draw_id']}")
