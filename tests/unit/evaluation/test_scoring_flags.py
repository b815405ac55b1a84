"""Flags of ALGORITHMS.md §2 that block closing scoring: inconsistent objective, deviant (畸高畸低), low score."""
from decimal import Decimal as D

from evaluation.flags import DEVIANT, INCONSISTENT_OBJECTIVE, LOW, FlagRules, Justification, detect_flags, open_flags
from tests.unit.evaluation.tables import comprehensive, members, sheets_from

# 技术方案 max 40: deviant beyond 8 points from the others' mean, low below 24
# 业绩 max 10, objective: low below 6
METHOD = comprehensive([("技术方案", "40", False), ("业绩", "10", True)], "50")


def kinds(flags):
    return [(f.kind, f.member, f.bidder, f.criterion) for f in flags]


def test_a_score_more_than_20_percent_of_max_from_the_others_mean_is_deviant():
    # M5 gives 38; the others 28, 29, 30, 29 → their mean 29, distance 9 > 8 → deviant
    # M1's others: 29, 30, 29, 38 → mean 31.5, distance 3.5 → fine (and so for M2..M4)
    sheets = sheets_from({"B1": {"技术方案": "28 29 30 29 38", "业绩": "8 8 8 8 8"}}, members(5))
    flags = detect_flags(METHOD, members(5), sheets)
    assert kinds(flags) == [(DEVIANT, "M5", "B1", "技术方案")]
    assert flags[0].to_json() == {"kind": DEVIANT, "member": "M5", "bidder": "B1", "criterion": "技术方案",
                                  "score": "38", "reference": "29.00", "limit": "8.00"}


def test_exactly_20_percent_away_is_not_deviant_and_the_threshold_is_configurable():
    # M5 37 vs the others' mean 29: distance exactly 8 = 20% of 40 → no flag ("more than")
    sheets = sheets_from({"B1": {"技术方案": "28 29 30 29 37", "业绩": "8 8 8 8 8"}}, members(5))
    assert detect_flags(METHOD, members(5), sheets) == []
    # at 15% the limit is 6 points: M5 is flagged; M1 (others' mean 31.25, distance 3.25) is not
    strict = detect_flags(METHOD, members(5), sheets, FlagRules(deviation=D("0.15")))
    assert kinds(strict) == [(DEVIANT, "M5", "B1", "技术方案")]


def test_different_scores_on_an_objective_criterion_flag_the_members_off_the_majority():
    sheets = sheets_from({"B1": {"技术方案": "30 30 30 30 30", "业绩": "8 8 7 8 8"}}, members(5))
    flags = detect_flags(METHOD, members(5), sheets)
    assert kinds(flags) == [(INCONSISTENT_OBJECTIVE, "M3", "B1", "业绩")]
    assert flags[0].reference == D("8")
    # no majority (8 8 7 7 9): every member must correct or explain
    split = sheets_from({"B1": {"技术方案": "30 30 30 30 30", "业绩": "8 8 7 7 9"}}, members(5))
    assert [f.member for f in detect_flags(METHOD, members(5), split) if f.kind == INCONSISTENT_OBJECTIVE] == \
        ["M1", "M2", "M3", "M4", "M5"]


def test_a_score_below_60_percent_of_max_needs_a_reason():
    # 24 is exactly 60% of 40: not low; 23.99 is. 业绩 5.99 < 6 is low too (same for all: consistent).
    sheets = sheets_from({"B1": {"技术方案": "24 23.99 24 24 24", "业绩": "5.99 5.99 5.99 5.99 5.99"}}, members(5))
    flags = detect_flags(METHOD, members(5), sheets)
    assert kinds(flags) == [(LOW, "M2", "B1", "技术方案")] + [(LOW, m, "B1", "业绩") for m in members(5)]
    assert flags[0].limit == D("24.00")


def test_a_flag_stays_open_until_justified_for_that_very_score_or_corrected():
    committee = members(5)
    sheets = sheets_from({"B1": {"技术方案": "28 29 30 29 38", "业绩": "8 8 8 8 8"},
                          "B2": {"技术方案": "20 30 30 30 30", "业绩": "8 8 8 8 8"}}, committee)
    flags = detect_flags(METHOD, committee, sheets)
    # B2: M1's 20 is 10 below the others' 30 (deviant) and below 24 (low)
    assert kinds(flags) == [(DEVIANT, "M5", "B1", "技术方案"), (DEVIANT, "M1", "B2", "技术方案"),
                            (LOW, "M1", "B2", "技术方案")]
    why = Justification(DEVIANT, "M5", "B1", "技术方案", D("38"), "方案中BIM应用明显优于其他投标人")
    blank = Justification(LOW, "M1", "B2", "技术方案", D("20"), "   ")
    stale = Justification(DEVIANT, "M1", "B2", "技术方案", D("19"), "written about an earlier score")
    assert kinds(open_flags(flags, [why, blank, stale])) == [(DEVIANT, "M1", "B2", "技术方案"),
                                                              (LOW, "M1", "B2", "技术方案")]
    # M1 corrects the score to 27: the others' mean is 30 (distance 3), and 27 ≥ 24 → both flags are gone
    corrected = sheets_from({"B1": {"技术方案": "28 29 30 29 38", "业绩": "8 8 8 8 8"},
                             "B2": {"技术方案": "27 30 30 30 30", "业绩": "8 8 8 8 8"}}, committee)
    assert open_flags(detect_flags(METHOD, committee, corrected), [why]) == []


def test_flags_work_on_the_sheets_submitted_so_far():
    # only two members have submitted: M2's 38 is 10 away from M1's 28 → both are deviant from each other
    sheets = sheets_from({"B1": {"技术方案": "28 38", "业绩": "8 8"}}, ("M1", "M2"))
    assert kinds(detect_flags(METHOD, members(5), sheets)) == [(DEVIANT, "M1", "B1", "技术方案"),
                                                               (DEVIANT, "M2", "B1", "技术方案")]
    # a lone sheet has nobody to differ from
    assert detect_flags(METHOD, members(5), sheets[:1]) == []
