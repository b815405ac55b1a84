"""Confirmations: seats, replacement by backups in order, and when a supplementary draw is needed."""
from hypothesis import given, strategies as st

from expert_pool.seating import (InvitationStatus as S, SeatInvitation, employers_to_exclude, filled, initial_offers,
                                 plan_seats, replacement_queues, supplementary_quotas, confirmation_counts)

RESULT = [{"quota": "土建", "primaries": ["E-A", "E-B"], "backups": ["E-C", "E-D"]},
          {"quota": "造价", "primaries": ["E-E"], "backups": []}]
SEATS = {"土建": 2, "造价": 1}


def invitations(*rows):
    return [SeatInvitation(e, q, s, st_) for e, q, s, st_ in rows]


def test_primaries_are_invited_to_seats_in_drawn_order():
    offers = initial_offers(RESULT)
    assert [(o.quota, o.seat, o.expert_id) for o in offers] == [("土建", 1, "E-A"), ("土建", 2, "E-B"),
                                                                 ("造价", 1, "E-E")]


def test_a_decline_offers_the_seat_to_the_first_unused_backup_of_the_same_quota():
    queues = replacement_queues(SEATS, [RESULT])
    plan = plan_seats(SEATS, queues, invitations(("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.DECLINED),
                                                 ("E-E", "造价", 1, S.PENDING)))
    assert [(o.quota, o.seat, o.expert_id) for o in plan.offers] == [("土建", 2, "E-C")]
    assert not plan.needs_supplementary_draw


def test_a_backup_who_also_declines_passes_the_seat_to_the_next_backup():
    queues = replacement_queues(SEATS, [RESULT])
    plan = plan_seats(SEATS, queues, invitations(("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.DECLINED),
                                                 ("E-C", "土建", 2, S.EXPIRED), ("E-E", "造价", 1, S.ACCEPTED)))
    assert [o.expert_id for o in plan.offers] == ["E-D"]


def test_a_member_withdrawn_at_the_bid_deadline_frees_the_seat_and_a_conflicting_backup_is_skipped():
    queues = replacement_queues(SEATS, [RESULT])
    plan = plan_seats(SEATS, queues, invitations(("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.WITHDRAWN),
                                                 ("E-E", "造价", 1, S.PENDING)), unavailable={"E-C"})
    assert [(o.quota, o.seat, o.expert_id) for o in plan.offers] == [("土建", 2, "E-D")]
    # with every backup struck, the seat is a shortfall
    plan = plan_seats(SEATS, queues, invitations(("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.WITHDRAWN),
                                                 ("E-E", "造价", 1, S.PENDING)), unavailable={"E-C", "E-D"})
    assert plan.offers == () and plan.shortfall == {"土建": 1}
    counts = confirmation_counts(SEATS, invitations(("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.WITHDRAWN)))
    assert counts["土建"]["withdrawn"] == 1 and counts["土建"]["open"] == 1


def test_a_seat_without_backups_left_is_a_shortfall_calling_for_a_supplementary_draw():
    queues = replacement_queues(SEATS, [RESULT])
    plan = plan_seats(SEATS, queues, invitations(("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.ACCEPTED),
                                                 ("E-E", "造价", 1, S.EXPIRED)))
    assert plan.offers == ()
    assert plan.shortfall == {"造价": 1}
    quotas = [{"name": "土建", "specialty": "A01", "count": 2, "backups": 2},
              {"name": "造价", "specialty": "C01", "count": 1, "backups": 0, "region": "442000"}]
    assert supplementary_quotas(quotas, plan.shortfall) == [
        {"name": "造价", "specialty": "C01", "count": 1, "backups": 0, "region": "442000"}]


def test_a_supplementary_draws_primaries_then_backups_join_the_queue_after_the_original_backups():
    supplementary = [{"quota": "造价", "primaries": ["E-X"], "backups": ["E-Y"]}]
    queues = replacement_queues(SEATS, [RESULT, supplementary])
    assert queues == {"土建": ["E-C", "E-D"], "造价": ["E-X", "E-Y"]}
    plan = plan_seats(SEATS, queues, invitations(("E-E", "造价", 1, S.DECLINED)))
    assert [(o.quota, o.seat, o.expert_id) for o in plan.offers] == [("土建", 1, "E-C"), ("土建", 2, "E-D"),
                                                                     ("造价", 1, "E-X")]


def test_the_committee_is_formed_only_when_every_seat_is_accepted():
    rows = [("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.ACCEPTED), ("E-E", "造价", 1, S.PENDING)]
    assert not filled(SEATS, invitations(*rows))
    rows[2] = ("E-E", "造价", 1, S.ACCEPTED)
    assert filled(SEATS, invitations(*rows))


def test_counts_show_accepted_pending_and_open_seats_without_names():
    counts = confirmation_counts(SEATS, invitations(("E-A", "土建", 1, S.ACCEPTED), ("E-B", "土建", 2, S.DECLINED)))
    assert counts["土建"] == {"seats": 2, "accepted": 1, "pending": 0, "open": 1, "declined": 1, "expired": 0, "withdrawn": 0}
    assert counts["造价"]["open"] == 1


def test_a_supplementary_draw_avoids_employers_of_everyone_who_may_still_serve():
    picked = {"E-A": "O-1", "E-B": "O-2", "E-C": "O-3"}
    assert employers_to_exclude(picked, gone={"E-B"}) == {"O-1", "O-3"}


@given(st.data())
def test_replacing_decliners_one_reply_at_a_time_seats_the_same_people_as_the_spec_replacement(data):
    # ALGORITHMS.md §1 "Replacement": the primaries who stay, then the first backups who do not decline,
    # whatever order the replies come in.
    primaries = [f"E-P{i}" for i in range(data.draw(st.integers(1, 4)))]
    backups = [f"E-B{i}" for i in range(data.draw(st.integers(0, 4)))]
    declined = set(data.draw(st.lists(st.sampled_from(primaries + backups), unique=True)))
    result = [{"quota": "q", "primaries": primaries, "backups": backups}]
    seats = {"q": len(primaries)}
    queues = replacement_queues(seats, [result])
    rows: list[SeatInvitation] = [SeatInvitation(o.expert_id, o.quota, o.seat, S.PENDING)
                                  for o in initial_offers(result)]
    while any(r.status is S.PENDING for r in rows):
        pending = [i for i, r in enumerate(rows) if r.status is S.PENDING]
        k = data.draw(st.sampled_from(pending))
        r = rows[k]
        rows[k] = SeatInvitation(r.expert_id, r.quota, r.seat, S.DECLINED if r.expert_id in declined else S.ACCEPTED)
        plan = plan_seats(seats, queues, rows)
        rows += [SeatInvitation(o.expert_id, o.quota, o.seat, S.PENDING) for o in plan.offers]
    staying = [p for p in primaries if p not in declined]
    promoted = [b for b in backups if b not in declined][:len(primaries) - len(staying)]
    assert {r.expert_id for r in rows if r.status is S.ACCEPTED} == set(staying + promoted)
    assert plan_seats(seats, queues, rows).shortfall.get("q", 0) == len(primaries) - len(staying) - len(promoted)
