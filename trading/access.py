"""Who may see or do what to a tender: pure functions of the tender, the caller and (where it matters) the time.

Every trading and expert-pool service asks these, and the route-table access tests check them. No I/O here.
"""
from __future__ import annotations

from core.errors import Forbidden
from core.identity_models import User
from core.principal import Principal
from trading.models import Tender

# tender states from which the award is known, so the committee is no longer secret (PRODUCT.md: secret until
# the award)
AWARDED_STATES = frozenset({"awarded", "complete"})


def may_manage(tender: Tender, who: Principal | None) -> bool:
    """The tender's agents: its creator, and agents of its agency. Admins manage too."""
    if who is None:
        return False
    if who.has("admin"):
        return True
    return who.has("agent") and (who.user_id == tender.created_by_id or
                                 (who.organisation_id is not None and who.organisation_id == tender.agent_id))


def is_supervisor_of(tender: Tender, who: Principal | None) -> bool:
    """A supervisor of the tender's supervising organisation (行政监督部门); other supervisors are strangers."""
    return (who is not None and who.has("supervisor") and tender.supervisor_organisation_id is not None
            and who.organisation_id == tender.supervisor_organisation_id)


def is_awarded(tender: Tender) -> bool:
    """Whether the award is made: from then on the committee's identities are public."""
    return tender.status in AWARDED_STATES


def may_see_identities(tender: Tender, who: Principal | None) -> bool:
    """Experts' identities on a tender's draws: its supervisors always, everyone once the award is made."""
    return is_supervisor_of(tender, who) or is_awarded(tender)


def require_manager(tender: Tender, who: Principal | None) -> None:
    """Refuse 403 not_tender_agent unless `who` manages this tender (see `may_manage`)."""
    if not may_manage(tender, who):
        raise Forbidden("only the tender's agent may do this", code="not_tender_agent",
                        details={"tender": tender.code})


def principal_of(user: User) -> Principal:
    """The principal of a user row, to ask the policy about someone other than the caller (a key holder)."""
    return Principal(user_id=user.id, public_id=user.public_id, organisation_id=user.organisation_id,
                     roles=frozenset(user.roles or ()))
