"""Avoidance (回避): each rule excludes the right expert with a stable reason code."""
from datetime import datetime, timedelta, timezone

import pytest

from expert_pool.rules import (DrawContext, ExclusionReason, ExpertRecord, ExpertStatus, LeavePeriod,
                               ServiceRecord, exclusion_reasons, screen_experts)

SESSION = datetime(2026, 3, 10, 9, 0, tzinfo=timezone(timedelta(hours=8)))
CONTEXT = DrawContext(tenderer_id="O-TENDERER", bidder_ids=frozenset({"O-BID1", "O-BID2"}), session_at=SESSION,
                      authority_ids=frozenset({"O-BUREAU"}), monthly_cap=4, familiar_window_days=90)


def expert(**changes) -> ExpertRecord:
    fields = {"public_id": "E-AAAAAA", "employer_id": "O-UNIV", "specialties": frozenset({"A0101"})}
    fields.update(changes)
    return ExpertRecord(**fields)


def reasons(**changes) -> tuple[ExclusionReason, ...]:
    return exclusion_reasons(expert(**changes), CONTEXT)


def test_an_unconnected_active_expert_is_eligible():
    assert reasons() == ()


def test_expert_employed_by_the_tenderer_is_excluded():
    assert reasons(employer_id="O-TENDERER") == (ExclusionReason.EMPLOYER_IS_TENDERER,)


def test_expert_employed_by_a_bidder_is_excluded():
    assert reasons(employer_id="O-BID2") == (ExclusionReason.EMPLOYER_IS_BIDDER,)


def test_expert_employed_by_the_competent_authority_is_excluded():
    assert reasons(employer_id="O-BUREAU") == (ExclusionReason.EMPLOYER_IS_AUTHORITY,)


def test_expert_who_declared_ties_to_a_bidder_is_excluded():
    assert reasons(declared_conflicts=frozenset({"O-BID1"})) == (ExclusionReason.DECLARED_CONFLICT,)


def test_a_declared_tie_to_an_unrelated_company_does_not_exclude():
    assert reasons(declared_conflicts=frozenset({"O-ELSEWHERE"})) == ()


def test_expert_on_leave_at_session_time_is_excluded_but_not_after_the_leave_ends():
    leave = LeavePeriod(SESSION - timedelta(days=1), SESSION + timedelta(hours=1))
    assert reasons(leave=(leave,)) == (ExclusionReason.ON_LEAVE,)
    ended = LeavePeriod(SESSION - timedelta(days=3), SESSION)
    assert reasons(leave=(ended,)) == ()


def test_suspended_and_retired_experts_are_excluded():
    assert reasons(status=ExpertStatus.SUSPENDED) == (ExclusionReason.SUSPENDED,)
    assert reasons(status=ExpertStatus.RETIRED) == (ExclusionReason.RETIRED,)


def test_expert_at_the_monthly_cap_is_excluded_and_one_below_is_not():
    assert reasons(draws_this_month=4) == (ExclusionReason.OVER_MONTHLY_CAP,)
    assert reasons(draws_this_month=3) == ()


def test_no_monthly_cap_means_no_exclusion_for_busy_experts():
    context = DrawContext(tenderer_id="O-TENDERER", session_at=SESSION)
    assert exclusion_reasons(expert(draws_this_month=40), context) == ()


def test_expert_who_served_the_same_tenderer_within_the_window_is_a_familiar_face():
    recent = ServiceRecord("O-TENDERER", SESSION - timedelta(days=30))
    assert reasons(service_history=(recent,)) == (ExclusionReason.FAMILIAR_FACE,)


def test_service_for_the_same_tenderer_before_the_window_or_for_another_tenderer_is_fine():
    old = ServiceRecord("O-TENDERER", SESSION - timedelta(days=91))
    other = ServiceRecord("O-OTHER", SESSION - timedelta(days=1))
    assert reasons(service_history=(old, other)) == ()


def test_several_reasons_are_all_reported_suspension_first():
    found = reasons(status=ExpertStatus.SUSPENDED, employer_id="O-BID1", draws_this_month=9)
    assert found == (ExclusionReason.SUSPENDED, ExclusionReason.EMPLOYER_IS_BIDDER,
                     ExclusionReason.OVER_MONTHLY_CAP)


def test_screening_lists_eligible_experts_and_counts_exclusions_by_main_reason():
    pool = [
        expert(public_id="E-1"),
        expert(public_id="E-2", employer_id="O-TENDERER"),
        expert(public_id="E-3", employer_id="O-BID1", draws_this_month=9),
        expert(public_id="E-4", employer_id="O-BID2"),
        expert(public_id="E-5", status=ExpertStatus.RETIRED),
    ]
    screening = screen_experts(pool, CONTEXT)
    assert [e.public_id for e in screening.eligible] == ["E-1"]
    assert screening.reason("E-3") is ExclusionReason.EMPLOYER_IS_BIDDER
    assert screening.reason("E-1") is None
    assert screening.counts() == {"retired": 1, "employer_is_tenderer": 1, "employer_is_bidder": 2}


def test_reason_codes_are_the_stable_strings_clients_rely_on():
    assert {r.value for r in ExclusionReason} == {
        "employer_is_tenderer", "employer_is_bidder", "employer_is_authority", "declared_conflict", "on_leave",
        "suspended", "retired", "over_monthly_cap", "familiar_face", "already_picked", "employer_serving"}


def test_a_supplementary_screening_excludes_those_already_picked_and_colleagues_of_those_still_serving():
    pool = [expert(public_id="E-1", employer_id="O-A"), expert(public_id="E-2", employer_id="O-B"),
            expert(public_id="E-3", employer_id="O-C"), expert(public_id="E-4", employer_id=None)]
    screening = screen_experts(pool, CONTEXT, already_picked=frozenset({"E-1"}),
                               employers_serving=frozenset({"O-B", "E-4"}))
    assert [e.public_id for e in screening.eligible] == ["E-3"]
    assert screening.counts() == {"already_picked": 1, "employer_serving": 2}


def test_naive_session_times_are_refused():
    with pytest.raises(ValueError):
        DrawContext(tenderer_id="O-T", session_at=datetime(2026, 3, 10, 9, 0))
