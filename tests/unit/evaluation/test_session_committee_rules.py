"""The pure committee rules of a session: representatives within the third (招标投标法 第37条), the committee
complete before check-in, identity, declarations over the lot's bidders, and the chair count."""
import pytest

from core.errors import Conflict, Unprocessable
from evaluation.rules import (ChairOutcome, ReviewBallot, chair_outcome, check_all_checked_in, check_chair_candidate,
                              check_committee_complete, check_declared_bidders, check_identity, check_place_region,
                              check_representatives, check_review_ballot, review_result)


def code(excinfo) -> str:
    return excinfo.value.code


@pytest.mark.parametrize("experts, reps, planned", [(5, 0, 0), (5, 2, 2), (7, 3, 3), (4, 2, 2), (5, 1, 2)])
def test_representatives_within_a_third_and_the_draw_are_accepted(experts, reps, planned):
    check_representatives(experts=experts, representatives=reps, planned=planned)


def test_representatives_beyond_the_draw_or_the_third_are_refused():
    with pytest.raises(Unprocessable) as err:
        check_representatives(experts=5, representatives=3, planned=2)
    assert code(err) == "representatives_exceed_draw"
    with pytest.raises(Unprocessable) as err:
        check_representatives(experts=5, representatives=3, planned=3)
    assert code(err) == "experts_below_two_thirds" and err.value.details["statute"] == "招标投标法 第37条"


def test_check_in_needs_every_seat_and_every_place_and_the_start_every_member():
    check_committee_complete(expert_seats=5, experts=5, unplaced=[])
    with pytest.raises(Conflict) as err:
        check_committee_complete(expert_seats=5, experts=4, unplaced=[])
    assert code(err) == "committee_incomplete"
    with pytest.raises(Conflict) as err:
        check_committee_complete(expert_seats=5, experts=5, unplaced=["EM-1"])
    assert code(err) == "members_unplaced" and err.value.details["members"] == ["EM-1"]
    check_all_checked_in([])
    with pytest.raises(Conflict) as err:
        check_all_checked_in(["EM-2"])
    assert code(err) == "members_not_checked_in"


def test_identity_declarations_and_places():
    check_identity("44200019800101123X", "123x")
    with pytest.raises(Unprocessable) as err:
        check_identity("44200019800101123X", "1234")
    assert code(err) == "identity_mismatch"
    check_declared_bidders(["O-1"], ["O-1", "O-2"])
    with pytest.raises(Unprocessable) as err:
        check_declared_bidders(["O-9", "O-1"], ["O-1"])
    assert code(err) == "not_a_bidder" and err.value.details["organisations"] == ["O-9"]
    check_place_region(in_region=True, place_id="PL-1", site_region="440100", expert_region="440100")
    with pytest.raises(Unprocessable) as err:
        check_place_region(in_region=False, place_id="PL-1", site_region="442000", expert_region="440100")
    assert code(err) == "place_region_mismatch"


def test_a_representative_is_never_chair():
    check_chair_candidate("expert", "EM-1")
    with pytest.raises(Unprocessable) as err:
        check_chair_candidate("representative", "EM-2")
    assert code(err) == "representative_cannot_chair"


MEMBERS = ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize("votes, outcome", [
    ({}, ChairOutcome(None, None)),
    ({"a": "b", "b": "b"}, ChairOutcome(None, None)),                         # 2 of 5: not yet
    ({"a": "b", "b": "b", "c": "b"}, ChairOutcome("b", "majority")),          # 3 of 5 before everyone voted
    ({"a": "b", "b": "b", "c": "a", "d": "c", "e": "d"}, ChairOutcome("b", "plurality")),
    ({"a": "b", "b": "a", "c": "a", "d": "b", "e": "c"}, ChairOutcome(None, None, ("a", "b"))),
    ({"a": "a", "b": "b", "c": "c", "d": "d", "e": "e"}, ChairOutcome(None, None, tuple(MEMBERS))),
])
def test_the_chair_count(votes, outcome):
    assert chair_outcome(votes, MEMBERS) == outcome


def test_the_chair_count_ignores_the_order_of_ballots():
    votes = {"a": "b", "b": "a", "c": "a", "d": "b", "e": "c"}
    assert chair_outcome(dict(reversed(list(votes.items()))), MEMBERS) == chair_outcome(votes, MEMBERS)


# ---- qualification and compliance review ---------------------------------------------------------------------

FIVE = ["m1", "m2", "m3", "m4", "m5"]


def ballots(fails: dict[tuple[str, str], list[str]], bidders: list[str], requirements: list[str]) -> list:
    """Every member passes everything except the (bidder, requirement) cells listing the members who fail them."""
    return [ReviewBallot(m, b, r, m not in fails.get((b, r), []), "理由" if m in fails.get((b, r), []) else None)
            for m in FIVE for b in bidders for r in requirements]


def test_a_requirement_fails_by_majority_and_the_bid_is_rejected_with_the_reasons():
    bidders, reqs = ["A", "B", "C", "D"], ["Q1", "C1"]
    result = review_result(FIVE, bidders, reqs, ballots({("B", "C1"): ["m1", "m2", "m3"], ("C", "Q1"): ["m4", "m5"]},
                                                        bidders, reqs))
    assert result.compliant == ["A", "C", "D"] and result.lot_failed is False
    b = next(x for x in result.bidders if x.bidder == "B")
    assert b.failed == ({"requirement": "C1", "passes": 2, "fails": 3, "reasons": ["理由"] * 3},)


def test_fewer_than_three_compliant_bids_fail_the_lot():
    bidders, reqs = ["A", "B", "C", "D"], ["Q1"]
    result = review_result(FIVE, bidders, reqs, ballots({("A", "Q1"): FIVE, ("B", "Q1"): FIVE[:3]}, bidders, reqs))
    assert result.compliant == ["C", "D"] and result.lot_failed is True


def test_the_review_needs_every_ballot_and_a_fail_needs_a_reason():
    bidders, reqs = ["A", "B", "C"], ["Q1"]
    some = ballots({}, bidders, reqs)[:-1]
    with pytest.raises(Conflict) as err:
        review_result(FIVE, bidders, reqs, some)
    assert code(err) == "review_incomplete" and err.value.details["missing_count"] == 1
    assert check_review_ballot(True, "  ") is None
    with pytest.raises(Unprocessable) as err:
        check_review_ballot(False, " ")
    assert code(err) == "reason_required"
