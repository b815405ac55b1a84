"""Confirmations (专家确认): who is invited to which seat, and when a supplementary draw (补抽) is needed. Pure.

A draw's quotas give seats: quota "土建" with count 3 has seats 1–3. The draw's primaries are invited to the
seats in order. When an invitation is declined or times out, the seat is offered to the next person in the
quota's replacement queue: the draw's backups in order (ALGORITHMS.md §1 "Replacement"), then, once a
supplementary draw has run, its primaries and backups for that quota. A seat nobody is left to fill is a
shortfall, which the service answers with a supplementary draw over the same quota.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


class InvitationStatus(enum.StrEnum):
    """Where one invitation stands."""

    PENDING = "pending"      # sent, waiting for the expert's reply
    ACCEPTED = "accepted"    # the expert confirmed: the seat is filled
    DECLINED = "declined"    # refused with a reason
    EXPIRED = "expired"      # no reply before the deadline
    WITHDRAWN = "withdrawn"  # re-screened at the bid deadline: the expert now conflicts with a bidder
    CANCELLED = "cancelled"  # the draw itself was cancelled


OCCUPYING = frozenset({InvitationStatus.PENDING, InvitationStatus.ACCEPTED})


@dataclass(frozen=True)
class SeatInvitation:
    """One invitation as seating cares about it."""

    expert_id: str
    quota: str
    seat: int
    status: InvitationStatus


@dataclass(frozen=True)
class SeatOffer:
    """Invite `expert_id` to seat `seat` of `quota`."""

    quota: str
    seat: int
    expert_id: str


@dataclass(frozen=True)
class SeatPlan:
    """What to do next: the invitations to send and the seats no one is left for, per quota."""

    offers: tuple[SeatOffer, ...]
    shortfall: Mapping[str, int]

    @property
    def needs_supplementary_draw(self) -> bool:
        return any(self.shortfall.values())


def replacement_queues(quota_names: Sequence[str], results: Iterable[Sequence[Mapping[str, Any]]],
                       ) -> dict[str, list[str]]:
    """Each quota's replacement order: the first draw's backups, then each later draw's primaries and backups.

    `results` are the published `result` lists of the original draw and its supplementary draws, oldest first.
    """
    queues: dict[str, list[str]] = {name: [] for name in quota_names}
    for i, result in enumerate(results):
        for entry in result:
            queue = queues.setdefault(entry["quota"], [])
            if i > 0:
                queue.extend(entry["primaries"])
            queue.extend(entry["backups"])
    return queues


def initial_offers(result: Sequence[Mapping[str, Any]]) -> list[SeatOffer]:
    """The first invitations of a draw: each quota's primaries to seats 1, 2, ... in drawn order."""
    return [SeatOffer(entry["quota"], seat, expert_id)
            for entry in result for seat, expert_id in enumerate(entry["primaries"], start=1)]


def plan_seats(seats: Mapping[str, int], queues: Mapping[str, Sequence[str]],
               invitations: Iterable[SeatInvitation], unavailable: Iterable[str] = ()) -> SeatPlan:
    """Offer every open seat (no pending or accepted invitation) to the next uninvited person in its queue.

    `unavailable` are queued people who may no longer be invited (a backup found to conflict with a bidder at
    the bid deadline): they are skipped like those already invited."""
    invitations = list(invitations)
    invited = {i.expert_id for i in invitations} | set(unavailable)
    occupied = {(i.quota, i.seat) for i in invitations if i.status in OCCUPYING}
    offers: list[SeatOffer] = []
    shortfall: dict[str, int] = {}
    for quota, count in seats.items():
        queue = iter([e for e in queues.get(quota, ()) if e not in invited])
        missing = 0
        for seat in range(1, count + 1):
            if (quota, seat) in occupied:
                continue
            expert_id = next(queue, None)
            if expert_id is None:
                missing += 1
                continue
            invited.add(expert_id)
            offers.append(SeatOffer(quota, seat, expert_id))
        if missing:
            shortfall[quota] = missing
    return SeatPlan(offers=tuple(offers), shortfall=shortfall)


def filled(seats: Mapping[str, int], invitations: Iterable[SeatInvitation]) -> bool:
    """Whether every seat of every quota has an accepted invitation: the committee is formed."""
    accepted = {(i.quota, i.seat) for i in invitations if i.status is InvitationStatus.ACCEPTED}
    return all((q, s) in accepted for q, n in seats.items() for s in range(1, n + 1))


def confirmation_counts(seats: Mapping[str, int], invitations: Iterable[SeatInvitation]) -> dict[str, dict[str, int]]:
    """Per quota: seats, how many are accepted, pending, and open; what agents may see before the award."""
    invitations = list(invitations)
    out: dict[str, dict[str, int]] = {}
    for quota, count in seats.items():
        mine = [i for i in invitations if i.quota == quota]
        accepted = len({i.seat for i in mine if i.status is InvitationStatus.ACCEPTED})
        pending = len({i.seat for i in mine if i.status is InvitationStatus.PENDING})
        out[quota] = {"seats": count, "accepted": accepted, "pending": pending,
                      "open": count - accepted - pending,
                      "declined": sum(1 for i in mine if i.status is InvitationStatus.DECLINED),
                      "expired": sum(1 for i in mine if i.status is InvitationStatus.EXPIRED),
                      "withdrawn": sum(1 for i in mine if i.status is InvitationStatus.WITHDRAWN)}
    return out


def supplementary_quotas(quotas: Sequence[Mapping[str, Any]], shortfall: Mapping[str, int]) -> list[dict[str, Any]]:
    """The quotas of a supplementary draw: the short quotas in original order, count = seats left open.

    Specialty, region and backups are kept, so later declines again have backups to fall back on.
    """
    return [{**q, "count": shortfall[q["name"]]} for q in quotas if shortfall.get(q["name"], 0) > 0]


def employers_to_exclude(picked: Mapping[str, str], gone: Iterable[str]) -> set[str]:
    """Employers a supplementary draw must avoid: those of everyone picked before who may still serve.

    `picked` maps each previously drawn expert to their employer; `gone` are those who declined or timed
    out and so will never sit. Unused backups count as possibly serving: they may still be promoted.
    """
    gone = set(gone)
    return {employer for expert_id, employer in picked.items() if expert_id not in gone}
