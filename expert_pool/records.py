"""The draw record (专家抽取记录): what the signed PDF of an expert draw carries. Pure: no I/O.

Two editions: the public edition names experts only by public id (E-XXXXXX), as the published verification
record does; the supervisor edition (监督版) adds their names. Both carry the request, the eligible count, the
exclusion counts by reason, the commitment, entropy and seed, the result, and the verification JSON as the
embedded attachment, so that `bidroom draw verify` can re-run the draw from the PDF alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from core.clock import format_local
from evidence.randomness import ALGORITHM
from expert_pool.regions import region_name
from expert_pool.taxonomy import load_taxonomy

log = logging.getLogger(__name__)

PUBLIC, SUPERVISOR = "public", "supervisor"
RECORD_KIND = "expert_draw"

REASON_LABELS: dict[str, tuple[str, str]] = {
    "retired": ("已退出专家库", "Retired from the pool"),
    "suspended": ("暂停抽取", "Suspended"),
    "on_leave": ("请假", "On leave at the session time"),
    "employer_is_tenderer": ("任职于招标人", "Employed by the tenderer"),
    "employer_is_bidder": ("任职于投标人", "Employed by a bidder"),
    "employer_is_authority": ("任职于行政监督部门", "Employed by the competent authority"),
    "declared_conflict": ("申报利害关系", "Declared a conflict of interest"),
    "over_monthly_cap": ("超过当月评标次数上限", "Over the monthly cap"),
    "familiar_face": ("近期评审过同一招标人项目", "Served the same tenderer recently"),
    "already_picked": ("已在本次抽取中被抽中", "Already drawn for this committee"),
    "employer_serving": ("同单位专家已在委员会中", "A colleague may still sit on the committee"),
}
STATUS_LABELS: dict[str | None, str] = {
    "accepted": "已确认 accepted", "declined": "已拒绝 declined", "expired": "超时 timed out",
    "pending": "待确认 pending", None: "未通知 not invited",
}


@dataclass(frozen=True)
class DrawnExpert:
    """One line of the result: who was drawn for which quota, in what role, and where their reply stands."""

    quota: str
    role: str                 # primary / backup
    order: int                # position within the quota's primaries or backups
    expert_id: str
    name: str | None = None   # supervisor edition only
    confirmation: str | None = None


@dataclass(frozen=True)
class DrawRecord:
    """The content of one draw record, edition included."""

    edition: str
    record_no: str | None     # the archive's number once the PDF is issued
    draw_id: str
    supplements: str | None
    tender_code: str
    tender_title: str
    lot_id: str
    lot_title: str
    session_at: datetime
    venue: str
    members: int
    representatives: int
    quotas: tuple[Mapping[str, Any], ...]
    considered: int
    eligible: int
    exclusion_counts: Mapping[str, int]
    commitment: str
    entropy: str
    seed: str
    candidates_sha256: str
    executed_at: datetime
    drawn: tuple[DrawnExpert, ...]
    verification: Mapping[str, Any]
    signers: tuple[tuple[str, str, str], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The record as JSON (datetimes in ISO 8601, Beijing time)."""
        return {
            "edition": self.edition, "record_no": self.record_no, "kind": RECORD_KIND, "draw_id": self.draw_id,
            "supplements": self.supplements, "tender": {"code": self.tender_code, "title": self.tender_title},
            "lot": {"id": self.lot_id, "title": self.lot_title}, "session_at": _iso(self.session_at),
            "venue": self.venue, "members": self.members, "representatives": self.representatives,
            "quotas": [dict(q) for q in self.quotas], "considered": self.considered, "eligible": self.eligible,
            "exclusion_counts": dict(self.exclusion_counts), "commitment": self.commitment, "entropy": self.entropy,
            "seed": self.seed, "candidates_sha256": self.candidates_sha256, "executed_at": _iso(self.executed_at),
            "drawn": [{k: v for k, v in d.__dict__.items() if k != "name" or self.edition == SUPERVISOR}
                      for d in self.drawn],
            "verification": dict(self.verification),
        }

    @property
    def title(self) -> tuple[str, str]:
        """The record's bilingual title, edition included."""
        if self.edition == SUPERVISOR:
            return "评标专家抽取记录（监督版）", "Expert draw record (supervisor edition)"
        return "评标专家抽取记录", "Expert draw record"

    def blocks(self) -> list[Any]:
        """The printed content as evidence.records blocks."""
        from evidence import records as rec  # the PDF library is only needed when a PDF is made

        supervisor = self.edition == SUPERVISOR
        request_items = [
            ("抽取编号", "Draw", self.draw_id),
            ("项目编号", "Tender", f"{self.tender_code} {self.tender_title}"),
            ("标段", "Lot", f"{self.lot_id} {self.lot_title}"),
            ("评标时间", "Session", _local(self.session_at)),
            ("评标地点", "Venue", self.venue),
            ("委员会人数", "Committee members", self.members),
            ("招标人代表", "Tenderer representatives", self.representatives),
        ]
        if self.supplements:
            request_items.append(("补抽原抽取", "Supplements draw", self.supplements))
        # who asked and who supplied the entropy; the platform seal attests the record, nobody signs for them
        request_items += [(role_zh, role_en, name) for name, role_zh, role_en in self.signers]
        quota_rows = [[q["name"], f"{q['specialty']} {q.get('specialty_zh', '')}",
                       region_name(q["region"]) if q.get("region") else "不限 any", q["count"], q["backups"]]
                      for q in self.quotas]
        exclusion_rows = [[f"{reason_label(reason)[0]} {reason_label(reason)[1]}", count]
                          for reason, count in self.exclusion_counts.items()]
        result_headers = [("抽取条件", "Quota"), ("身份", "Role"), ("顺序", "Order"), ("专家编号", "Expert")]
        if supervisor:
            result_headers.append(("姓名", "Name"))
        result_headers.append(("出具时确认情况", "Confirmation at issue"))
        result_rows = []
        for d in self.drawn:
            row: list[Any] = [d.quota, "正选 primary" if d.role == "primary" else "备选 backup", d.order, d.expert_id]
            if supervisor:
                row.append(d.name or "")
            row.append(STATUS_LABELS.get(d.confirmation, d.confirmation or ""))
            result_rows.append(row)
        return [
            rec.SectionHeading("抽取申请", "Request"), rec.KeyValueBlock(request_items),
            rec.SectionHeading("抽取条件", "Quotas"),
            rec.TableBlock([("名称", "Name"), ("专业", "Specialty"), ("地区", "Region"), ("人数", "Count"),
                            ("备选", "Backups")], quota_rows, col_weights=(2, 4, 2, 1, 1)),
            rec.SectionHeading("回避", "Avoidance"),
            rec.KeyValueBlock([("符合专业地区条件", "Matching the quotas", self.considered),
                               ("回避后可抽取", "Eligible after avoidance", self.eligible)]),
            rec.TableBlock([("回避原因", "Reason"), ("人数", "Experts")], exclusion_rows or [["无 none", 0]],
                           col_weights=(4, 1)),
            rec.SectionHeading("随机数", "Randomness"),
            rec.KeyValueBlock([("算法", "Algorithm", ALGORITHM), ("承诺值", "Commitment", self.commitment),
                               ("监督随机数", "Supervisor entropy", self.entropy), ("种子", "Seed", self.seed),
                               ("候选名单摘要", "Candidates SHA-256", self.candidates_sha256),
                               ("抽取时间", "Executed", _local(self.executed_at))]),
            rec.SectionHeading("抽取结果", "Result"),
            rec.TableBlock(result_headers, result_rows),
            rec.TextBlock("验证：附件 record.json 的 data 字段即验证记录，可用 `bidroom draw verify` 重新计算。\n"
                          "Verification: the data field of the attached record.json is the verification record; "
                          "`bidroom draw verify` recomputes the draw from it."),
        ]

    def to_content(self) -> Any:
        """What evidence.records_service.issue_record needs: kind, title, blocks and the verification JSON."""
        from evidence.records_service import RecordContent

        title_zh, title_en = self.title
        return RecordContent(kind=RECORD_KIND, title_zh=title_zh, title_en=title_en, blocks=self.blocks(),
                             attachment=dict(self.verification))

    def to_document(self, *, verify_url: str | None = None, checkpoint: dict[str, Any] | None = None,
                    issued_at: datetime | None = None) -> Any:
        """The evidence.records.RecordDocument to render (previews; issued records go through to_content)."""
        from evidence import records as rec

        title_zh, title_en = self.title
        return rec.RecordDocument(
            record_no=self.record_no or record_no(self.draw_id, self.edition), kind=RECORD_KIND, title_zh=title_zh,
            title_en=title_en, blocks=self.blocks(), verify_url=verify_url, checkpoint=checkpoint,
            attachment=dict(self.verification), issued_at=issued_at)


def reason_label(reason: str) -> tuple[str, str]:
    """The bilingual label of an exclusion reason (the code itself when unknown)."""
    return REASON_LABELS.get(reason, (reason, reason))


def _iso(at: datetime) -> str:
    """record.json keeps the exact instant in UTC; the page shows Beijing time (format_local)."""
    return at.astimezone(timezone.utc).isoformat()


def _local(at: datetime) -> str:
    return format_local(at)


def record_no(draw_id: str, edition: str) -> str:
    """A provisional number for previews, e.g. DR-D-7Q4M2K (public) or DR-D-7Q4M2K-S (supervisor)."""
    return f"DR-{draw_id}" + ("-S" if edition == SUPERVISOR else "")


def build_draw_record(*, draw: Any, tender: Any, lot: Any, confirmations: Mapping[str, str],
                      verification: Mapping[str, Any], edition: str = PUBLIC,
                      names: Mapping[str, str] | None = None, supplements: str | None = None,
                      signers: Sequence[tuple[str, str, str]] = (), issued_no: str | None = None) -> DrawRecord:
    """The record of an executed draw; `names` (public id -> name) is used in the supervisor edition only.

    `draw`, `tender` and `lot` are read by attribute (the ORM rows); `confirmations` maps public ids to the
    status of their invitation for this committee.
    """
    if edition not in (PUBLIC, SUPERVISOR):
        raise ValueError(f"unknown edition {edition!r}")
    if draw.entropy is None or draw.result is None:
        raise ValueError("only an executed draw has a record")
    taxonomy = load_taxonomy()
    show_names = edition == SUPERVISOR
    drawn: list[DrawnExpert] = []
    for entry in draw.result:
        for role, ids in (("primary", entry["primaries"]), ("backup", entry["backups"])):
            for order, expert_id in enumerate(ids, start=1):
                drawn.append(DrawnExpert(entry["quota"], role, order, expert_id,
                                         (names or {}).get(expert_id) if show_names else None,
                                         confirmations.get(expert_id)))
    quotas = tuple({**q, "specialty_zh": taxonomy.name(q["specialty"]), "specialty_en":
                    taxonomy.name(q["specialty"], "en")} for q in draw.quotas)
    return DrawRecord(
        edition=edition, record_no=issued_no, draw_id=draw.public_id,
        supplements=supplements, tender_code=tender.code, tender_title=tender.title, lot_id=lot.public_id,
        lot_title=lot.title, session_at=draw.session_at, venue=draw.venue, members=draw.members,
        representatives=draw.representatives, quotas=quotas, considered=draw.considered_count,
        eligible=draw.eligible_count, exclusion_counts=dict(draw.exclusion_counts), commitment=draw.commitment,
        entropy=draw.entropy, seed=draw.seed, candidates_sha256=draw.candidates_digest,
        executed_at=draw.executed_at, drawn=tuple(drawn), verification=verification, signers=tuple(signers))
