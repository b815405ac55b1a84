"""Who may manage venues, book rooms and follow evaluation sessions: pure functions of the caller and the
tender concerned. No I/O here.

Tender access itself (its agents, its supervisors) is trading.access; this module only combines it.
"""
from __future__ import annotations

from core.principal import Principal
from trading.access import is_supervisor_of, may_manage, may_see_identities
from trading.models import Tender


def may_manage_venues(who: Principal | None) -> bool:
    """Centre admins create, change and retire sites, rooms and places (统一场地管理)."""
    return who is not None and who.has("admin")


def may_book(tender: Tender | None, who: Principal | None) -> bool:
    """An agent books a room for a tender they manage; an admin books for any purpose, with or without one."""
    if who is None:
        return False
    if tender is None:
        return who.has("admin")
    return may_manage(tender, who)


def may_cancel(tender: Tender | None, who: Principal | None) -> bool:
    """Whoever may book for the booking's purpose may cancel it."""
    return may_book(tender, who)


def _runs_or_supervises(tender: Tender | None, who: Principal | None) -> bool:
    if who is None:
        return False
    if who.has("admin"):
        return True
    return tender is not None and (may_manage(tender, who) or is_supervisor_of(tender, who))


def may_see_purpose(tender: Tender | None, who: Principal | None) -> bool:
    """A booking's tender and label: admins, the tender's agents and its supervisors. Everyone else signed in
    sees only that the room is taken, and when: where and when a committee sits stays with those who run it."""
    return _runs_or_supervises(tender, who)


def may_schedule_session(tender: Tender, who: Principal | None) -> bool:
    """The tender's agents (and admins) schedule its lots' evaluation sessions."""
    return may_manage(tender, who)


def may_see_session(tender: Tender, who: Principal | None) -> bool:
    """A session, its venues and its progress: the tender's agents, its supervisors and admins."""
    return _runs_or_supervises(tender, who)


def may_run_session(tender: Tender, who: Principal | None) -> bool:
    """The tender's agents (and admins) form the committee, place its members and move the session forward."""
    return may_manage(tender, who)


def may_suspend(tender: Tender, who: Principal | None, *, fault: bool) -> bool:
    """A supervisor of the tender suspends a session for any reason; the tender's agents report a venue fault."""
    return is_supervisor_of(tender, who) or (fault and may_manage(tender, who))


def may_resume(tender: Tender, who: Principal | None) -> bool:
    """Only the tender's supervisors resume a suspended session."""
    return is_supervisor_of(tender, who)


def may_abort(tender: Tender, who: Principal | None) -> bool:
    """The tender's supervisors and agents end a session that cannot go on."""
    return is_supervisor_of(tender, who) or may_manage(tender, who)


def may_decide_after_fault(tender: Tender, who: Principal | None) -> bool:
    """After an unresolved fault before the start, the tenderer (招标人) decides: its own staff, or its agent."""
    if who is None:
        return False
    return who.organisation_id is not None and who.organisation_id == tender.tenderer_id or may_manage(tender, who)


def may_see_member_identities(tender: Tender, who: Principal | None) -> bool:
    """Experts' names on a committee: the tender's supervisors always, everyone concerned once awarded."""
    return may_see_identities(tender, who)


def may_read_report(tender: Tender, who: Principal | None, *, member: bool) -> bool:
    """The evaluation report (评标报告) of a session: the committee that signs it (`member`), the tender's agents,
    who hand it to the tenderer with the candidates (招标投标法实施条例 第53条), the tender's supervisors, and admins.

    It names the experts, whose identities stay with those concerned until the award, and it holds every
    member's scores, which are never published: bidders and the public see the candidates and the award, not
    the report. Members of a later committee do not read an earlier committee's report unless they sat on it."""
    if who is None:
        return False
    return member or _runs_or_supervises(tender, who)
def may_read_bids(member_status: str | None) -> bool:
    """The opened bids' documents: the committee's members who have checked in (identity confirmed, commitment
    and avoidance declaration signed), and nobody else — not the tender's agents, its supervisors or admins:
    the evaluation runs in strict confidence (评标在严格保密的情况下进行, 招标投标法 第38条). `member_status` is
    the caller's membership of the session (None: not a member)."""
    return member_status == "checked_in"
