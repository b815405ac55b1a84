"""Who may see or do what to a tender's expert draws. Pure functions of the tender, the caller and the edition.

Supervision is per tender: only supervisors of the tender's supervising organisation (行政监督部门,
`tender.supervisor_organisation_id`) are the draw's supervisors. Supervisors of other organisations are
strangers here, like another agency's agent or a bidder: refused with `draw_forbidden`.

The committee is secret until the award (PRODUCT.md "Rules": the member list is kept secret until the award), so
identities — who was drawn, invited, or excluded — are for the tender's supervisors, and for everyone once
the award is made (`trading.access.may_see_identities`).
"""
from __future__ import annotations

from core.errors import Forbidden, Unauthorized
from core.principal import Principal
from trading.access import is_awarded, is_supervisor_of, may_manage, may_see_identities
from trading.models import Tender

PUBLIC_EDITION, SUPERVISOR_EDITION = "public", "supervisor"

__all__ = ["may_request", "may_see_draw", "may_supply_entropy", "may_see_exclusions", "may_cancel",
           "may_read_record", "may_see_identities", "check_request", "check_see_draw", "check_supply_entropy",
           "check_see_exclusions", "check_cancel", "check_read_record"]


def may_request(tender: Tender, who: Principal | None) -> bool:
    """The tender's agents request its draws (an admin manages too)."""
    return may_manage(tender, who)


def may_see_draw(tender: Tender, who: Principal | None) -> bool:
    """The draw notice (counts and confirmations): the tender's agents, admins and the tender's supervisors."""
    return may_manage(tender, who) or is_supervisor_of(tender, who)


def may_supply_entropy(tender: Tender, who: Principal | None) -> bool:
    """Only a supervisor of the tender's supervising organisation executes its draws."""
    return is_supervisor_of(tender, who)


def may_see_exclusions(tender: Tender, who: Principal | None) -> bool:
    """Who avoidance left out, and why (leave, declared ties): the tender's supervisors only, before and after."""
    return is_supervisor_of(tender, who)


def may_cancel(tender: Tender, who: Principal | None) -> bool:
    """A draw is cancelled, with a written reason, by the tender's agents or its supervisors."""
    return may_manage(tender, who) or is_supervisor_of(tender, who)


def may_read_record(tender: Tender, who: Principal | None, edition: str = PUBLIC_EDITION) -> bool:
    """A draw's record (either edition, its record.json, its verification): the tender's supervisors until the
    award; after it, anyone for the public edition, and supervisors and admins for the edition with names."""
    if is_supervisor_of(tender, who):
        return True
    if not is_awarded(tender):
        return False
    if edition == SUPERVISOR_EDITION:
        return who is not None and who.has("supervisor", "admin")
    return True


def _forbidden(tender: Tender, message: str) -> Forbidden:
    return Forbidden(message, code="draw_forbidden", details={"tender": tender.code})


def check_request(tender: Tender, who: Principal) -> None:
    if not may_request(tender, who):
        raise Forbidden("only the tender's agent may request its expert draws", code="not_your_tender",
                        details={"tender": tender.code})


def check_see_draw(tender: Tender, who: Principal) -> bool:
    """Refuse anyone but the tender's agents, admins and supervisors; returns whether identities are visible."""
    if not may_see_draw(tender, who):
        raise _forbidden(tender, "this draw is confidential")
    return may_see_identities(tender, who)


def check_supply_entropy(tender: Tender, who: Principal) -> None:
    if not may_supply_entropy(tender, who):
        raise _forbidden(tender, "only a supervisor of the tender's supervising organisation supplies entropy")


def check_see_exclusions(tender: Tender, who: Principal) -> None:
    if not may_see_exclusions(tender, who):
        raise _forbidden(tender, "only the tender's supervisors see who avoidance excluded")


def check_cancel(tender: Tender, who: Principal) -> None:
    if not may_cancel(tender, who):
        raise _forbidden(tender, "only the tender's agent or its supervisors may cancel a draw")


def check_read_record(tender: Tender, who: Principal | None, edition: str = PUBLIC_EDITION) -> None:
    """Refuse a draw record (or its verification) to whoever may not read it now: 401 asks anonymous callers
    to sign in before the award; 403 `record_restricted` otherwise."""
    if may_read_record(tender, who, edition):
        return
    if who is None:
        raise Unauthorized("sign in as the tender's supervisor to see this draw record before the award",
                           code="authentication_required")
    raise Forbidden("until the award only the tender's supervisors may read a draw's record",
                    code="record_restricted", details={"edition": edition})
