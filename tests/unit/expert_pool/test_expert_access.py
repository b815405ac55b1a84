"""The expert pool's access policy, role by role and state by state: pure functions, no database."""
import pytest

from core.errors import Forbidden, Unauthorized
from core.principal import Principal
from expert_pool import access
from trading.models import Tender

AGENCY, SUPERVISORS, OTHER_SUPERVISORS, BIDDER_ORG = 10, 20, 21, 30
STATES = ("published", "closed", "opening", "opened", "evaluating", "candidates_published", "awarded", "complete")


def tender(status: str = "published") -> Tender:
    return Tender(code="ZS-2026-FJSZ-00001", status=status, created_by_id=1, agent_id=AGENCY, tenderer_id=99,
                  supervisor_organisation_id=SUPERVISORS)


def who(role: str, organisation: int | None, user_id: int = 2) -> Principal:
    return Principal(user_id=user_id, public_id=f"U-{user_id}", organisation_id=organisation, roles=frozenset({role}))


ROLES = {
    "anonymous": None,
    "bidder": who("bidder", BIDDER_ORG),
    "tender_agent": who("agent", AGENCY),
    "creator": who("agent", None, user_id=1),
    "other_agent": who("agent", 11),
    "expert": who("expert", None),
    "tender_supervisor": who("supervisor", SUPERVISORS),
    "other_supervisor": who("supervisor", OTHER_SUPERVISORS),
    "admin": who("admin", None),
}
PARTIES = {"tender_agent", "creator", "tender_supervisor", "admin"}


@pytest.mark.parametrize("status", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_in_each_state(role, status):
    t, p = tender(status), ROLES[role]
    awarded = status in ("awarded", "complete")
    assert access.may_see_draw(t, p) == (role in PARTIES)
    assert access.may_see_identities(t, p) == (role == "tender_supervisor" or awarded)
    assert access.may_supply_entropy(t, p) == (role == "tender_supervisor")
    assert access.may_see_exclusions(t, p) == (role == "tender_supervisor")
    assert access.may_request(t, p) == (role in {"tender_agent", "creator", "admin"})
    assert access.may_cancel(t, p) == (role in PARTIES)
    assert access.may_read_record(t, p, "public") == (role == "tender_supervisor" or awarded)
    assert access.may_read_record(t, p, "supervisor") == (
        role == "tender_supervisor" or (awarded and role in {"other_supervisor", "admin"}))


def test_a_tender_without_a_supervising_organisation_has_no_supervisor():
    t = tender()
    t.supervisor_organisation_id = None
    assert not access.may_supply_entropy(t, ROLES["tender_supervisor"])
    assert not access.may_see_identities(t, ROLES["tender_supervisor"])


def test_refusals_carry_stable_codes():
    t = tender()
    with pytest.raises(Forbidden) as refused:
        access.check_see_draw(t, ROLES["other_supervisor"])
    assert refused.value.code == "draw_forbidden"
    with pytest.raises(Forbidden) as refused:
        access.check_supply_entropy(t, ROLES["tender_agent"])
    assert refused.value.code == "draw_forbidden"
    with pytest.raises(Forbidden) as refused:
        access.check_read_record(t, ROLES["tender_agent"])
    assert refused.value.code == "record_restricted"
    with pytest.raises(Unauthorized):
        access.check_read_record(t, None)
    assert access.check_see_draw(t, ROLES["tender_agent"]) is False
    assert access.check_see_draw(t, ROLES["tender_supervisor"]) is True
