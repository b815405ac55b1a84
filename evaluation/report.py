"""The evaluation report (评标报告): what its signed PDF carries. Pure: no I/O, no clock, no ORM.

`build_report(ReportInput)` turns everything the committee produced into an `evidence.records_service.RecordContent`
(kind "evaluation_report"), bilingual throughout, with every item of the report list of PRODUCT.md and
招标投标法实施条例 第53条 / 《评标委员会和评标方法暂行规定》第42条:

- basic data: tender, lot, method, session times, venues (主场/副场);
- the committee: members with their sites, places and check-in times, and the chair (组长);
- the opening record's number;
- the compliant and rejected bids, with the reasons of the qualification and compliance review;
- the method and its criteria;
- each member's score table and the aggregated table (汇总表), from `evaluation.scoring`;
- the ranking and the recommended candidates (top 3 by default);
- the flags of ALGORITHMS.md §2 with their written justifications;
- any dissent (不同意见): the member and their written reasons;
- clarifications (澄清、说明);
- one signature row per member, in committee order, then the platform seal.

The machine data (`record.json`'s `data`) is exactly the published `bidroom-score-v1` record of
`evaluation.score_record.build_record`, so `score_record.verify(data)` recomputes the ranking from the PDF alone.

Long tables stay on the page: score tables list the criteria down the page and at most `BIDDERS_PER_TABLE`
bidders across, one table per group of bidders, so 30 criteria × 50 bidders is 7 narrow tables per member rather
than one that runs off the paper. Bidders are numbered once, in the review table (投标人序号), and every score
table refers to them by that number.

Dissent is part of the report's content, and the PDF is fixed once rendered: reasons collected before rendering
are printed here. A dissent filed after rendering makes the report stale (see `evaluation.report_signing`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping, Sequence

from core.clock import format_local
from core.errors import Conflict, Unprocessable
from evaluation import flags as flag_rules
from evaluation.score_record import build_record
from evaluation.scoring import (
    COMPREHENSIVE, LOWEST_PRICE, TRIMMED_MEAN, Evaluation, LowestPriceFormula, MeanBenchmarkFormula, ScoringInput,
    candidates as top_candidates, decimal_str,
)
from evidence.records import (Block, KeyValueBlock, SectionHeading, SignatureTable, TableBlock, TextBlock,
                              signature_field_name)
from evidence.records_service import RecordContent

log = logging.getLogger(__name__)

__all__ = ["RECORD_KIND", "BIDDERS_PER_TABLE", "Venue", "ReportMember", "BidderInfo", "ReviewOutcome",
           "Dissent", "Clarification", "ReportInput", "ReportSigner", "build_report", "report_signers",
           "criterion_code"]

RECORD_KIND = "evaluation_report"
BIDDERS_PER_TABLE = 8
NAMED_CRITERIA = 12        # up to this many criteria, score tables print each criterion's name beside its code
EXPERT, TENDERER_REP = "expert", "tenderer_representative"

ROLE_LABELS = {EXPERT: ("评标专家", "Evaluation expert"),
               TENDERER_REP: ("招标人代表", "Tenderer representative")}
CHAIR_LABEL = ("评标委员会组长", "Committee chair")
VENUE_LABELS = {"main": ("主场", "Main venue"), "sub": ("副场", "Sub-venue")}
FLAG_LABELS = {flag_rules.INCONSISTENT_OBJECTIVE: ("客观分不一致", "Inconsistent objective score"),
               flag_rules.DEVIANT: ("畸高畸低", "Deviant score"),
               flag_rules.LOW: ("低分需说明理由", "Low score")}
METHOD_LABELS = {COMPREHENSIVE: ("综合评估法", "Comprehensive evaluation"),
                 LOWEST_PRICE: ("经评审的最低投标价法", "Lowest evaluated price")}
AGGREGATION_LABELS = {"mean": ("算术平均", "Arithmetic mean of the members' scores"),
                      TRIMMED_MEAN: ("去掉一个最高分和一个最低分后平均",
                                     "Mean after dropping one highest and one lowest score")}


# ---- input ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Venue:
    """A place the session sits in: the main venue (主场) or a sub-venue (副场)."""

    role: str            # main | sub
    site: str            # the trading centre, e.g. 广东省公共资源交易中心
    room: str
    region: str | None = None


@dataclass(frozen=True)
class ReportMember:
    """One committee member as the report lists them; the order of `ReportInput.members` is the signing order."""

    public_id: str
    name: str
    site: str
    role: str = EXPERT
    place: str | None = None              # 席位
    checked_in_at: datetime | None = None


@dataclass(frozen=True)
class BidderInfo:
    """A bidder as read out at the opening: the scoring id and the name printed on the report."""

    id: str
    name: str


@dataclass(frozen=True)
class ReviewOutcome:
    """The qualification and compliance review (资格/符合性审查) of one bidder, decided by majority."""

    bidder: str
    compliant: bool
    reasons: tuple[str, ...] = ()         # why it was rejected (every failed requirement), by the committee


@dataclass(frozen=True)
class Dissent:
    """A member's written disagreement with the result (不同意见及理由, 实施条例 第53条)."""

    member: str
    reasons: str


@dataclass(frozen=True)
class Clarification:
    """A clarification the committee asked of a bidder, and the answer (澄清、说明或者补正)."""

    bidder: str
    question: str
    answer: str
    at: datetime | None = None


@dataclass(frozen=True)
class ReportInput:
    """Everything the report prints; `scoring` and `evaluation` are exactly what `evaluation.scoring` computed."""

    tender_code: str
    tender_title: str
    lot_id: str
    lot_title: str
    session_id: str
    started_at: datetime | None
    scoring_closed_at: datetime | None
    venues: tuple[Venue, ...]
    members: tuple[ReportMember, ...]
    chair: str                            # the chair's public id
    opening_record_no: str
    bidders: tuple[BidderInfo, ...]
    review: tuple[ReviewOutcome, ...]
    scoring: ScoringInput
    evaluation: Evaluation
    flags: tuple[flag_rules.Flag, ...] = ()
    justifications: tuple[flag_rules.Justification, ...] = ()
    dissents: tuple[Dissent, ...] = ()
    clarifications: tuple[Clarification, ...] = ()
    candidate_count: int = 3
    revision: int = 1                     # a re-evaluation after an upheld objection is a new revision
    supersedes: str | None = None         # the record number of the report this revision replaces
    opened_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ReportSigner:
    """Who signs which field of the report: one per member, in committee order.

    `public_id` is the member as the report lists them (the committee's member id); `account` is the public id
    of the person's own account, whose certificate signs (the same when not given)."""

    public_id: str
    name: str
    field_name: str
    account: str | None = None

    @property
    def signer_id(self) -> str:
        return self.account or self.public_id


# ---- checks -----------------------------------------------------------------------------------------------

def _check(inp: ReportInput) -> None:
    """The report describes one consistent, finished evaluation; anything else is refused before rendering."""
    member_ids = [m.public_id for m in inp.members]
    if not member_ids:
        raise Unprocessable("the report needs the committee", code="report_no_members")
    if len(set(member_ids)) != len(member_ids):
        raise Unprocessable("a member is listed twice", code="report_duplicate_member")
    if inp.chair not in member_ids:
        raise Unprocessable("the chair must be a member of the committee", code="report_chair_not_member",
                            details={"chair": inp.chair})
    chair = next(m for m in inp.members if m.public_id == inp.chair)
    if chair.role == TENDERER_REP:
        # 《评标委员会和评标方法暂行规定》第11条: the chair is elected from the experts.
        raise Unprocessable("a tenderer representative cannot chair the committee", code="report_chair_not_expert")
    unknown = sorted(set(inp.scoring.members) - set(member_ids))
    if unknown:
        raise Unprocessable("scores by someone outside the committee", code="report_unknown_scorer",
                            details={"members": unknown})
    names = {b.id for b in inp.bidders}
    scored = {b.id: b for b in inp.scoring.bidders}
    reviewed = {r.bidder: r for r in inp.review}
    if set(scored) != names or set(reviewed) != names:
        raise Unprocessable("the bidders, the review and the scoring input must name the same bids",
                            code="report_bidders_mismatch",
                            details={"named": sorted(names), "scored": sorted(scored), "reviewed": sorted(reviewed)})
    for b in inp.bidders:
        if reviewed[b.id].compliant != scored[b.id].compliant:
            raise Unprocessable("the review and the scoring input disagree on a bid", code="report_review_mismatch",
                                details={"bidder": b.id})
        if not reviewed[b.id].compliant and not any(r.strip() for r in reviewed[b.id].reasons):
            # 《评标委员会和评标方法暂行规定》第42条: the report states why each rejected bid was rejected.
            raise Unprocessable("a rejected bid needs its reasons", code="report_rejection_without_reason",
                                details={"bidder": b.id})
    for d in inp.dissents:
        if d.member not in member_ids:
            raise Unprocessable("a dissent by someone outside the committee", code="report_unknown_dissenter",
                                details={"member": d.member})
        if not d.reasons.strip():
            # 实施条例 第53条: a dissent is stated in writing, with reasons.
            raise Unprocessable("a dissent needs written reasons", code="dissent_without_reasons",
                                details={"member": d.member})
    still_open = flag_rules.open_flags(inp.flags, inp.justifications)
    if still_open:
        raise Conflict("every flag must be corrected or justified before the report", code="flags_open",
                       details={"flags": [f.to_json() for f in still_open[:20]], "count": len(still_open)})
    if inp.candidate_count < 1:
        raise Unprocessable("at least one candidate is recommended", code="report_candidate_count")


# ---- helpers ----------------------------------------------------------------------------------------------

def criterion_code(index: int) -> str:
    """The short code of the criterion at `index` (0-based), used as score-table row label: C01, C02, ..."""
    return f"C{index + 1:02d}"


def _money(value: Decimal | None) -> str:
    return "—" if value is None else format(value, ",f")


def _num(value: Decimal | None) -> str:
    return "—" if value is None else decimal_str(value)


def _time(at: datetime | None) -> str:
    return format_local(at) if at is not None else "—"


def _group(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i:i + size] for i in range(0, len(seq), size)] or [seq]


def report_signers(inp: ReportInput, accounts: Mapping[str, str] | None = None) -> tuple[ReportSigner, ...]:
    """The signature fields of the report: row i of the signature table is member i of the committee.
    `accounts` maps a member id to the public id of the account that signs for them (their own certificate)."""
    accounts = accounts or {}
    return tuple(ReportSigner(m.public_id, m.name, signature_field_name(i), accounts.get(m.public_id))
                 for i, m in enumerate(inp.members))


def _price_rule(inp: ReportInput) -> str:
    method = inp.scoring.method
    formula = method.price_formula
    if isinstance(formula, LowestPriceFormula):
        return (f"基准价为最低有效报价，价格分 = 基准价 / 报价 × {_num(method.price_weight)}\n"
                f"Benchmark = the lowest valid price; price score = benchmark / price × {_num(method.price_weight)}")
    if isinstance(formula, MeanBenchmarkFormula):
        drop = ("，有效报价不少于5家时去掉最高和最低报价" if formula.drop_extremes else "")
        drop_en = (", dropping the highest and lowest when 5 or more valid prices remain"
                   if formula.drop_extremes else "")
        return (f"基准价 = 有效报价平均值{drop} × K（K = {_num(formula.k)}）；偏离基准价每1%扣 {_num(formula.e)} 分，"
                f"最低0分，满分 {_num(method.price_weight)}\n"
                f"Benchmark = mean of the valid prices{drop_en} × K (K = {_num(formula.k)}); {_num(formula.e)} points "
                f"off per 1% of deviation, floor 0, out of {_num(method.price_weight)}")
    return "—"


# ---- sections ---------------------------------------------------------------------------------------------

def _basic(inp: ReportInput) -> list[Block]:
    kind_zh, kind_en = METHOD_LABELS.get(inp.scoring.method.kind, (inp.scoring.method.kind,) * 2)
    items: list[tuple[str, str, Any]] = [
        ("项目编号", "Tender code", inp.tender_code),
        ("项目名称", "Tender title", inp.tender_title),
        ("标段", "Lot", f"{inp.lot_id} {inp.lot_title}"),
        ("评标办法", "Evaluation method", f"{kind_zh} {kind_en}"),
        ("评标会议", "Evaluation session", inp.session_id),
        ("评标开始时间", "Session started", _time(inp.started_at)),
        ("评分截止时间", "Scoring closed", _time(inp.scoring_closed_at)),
        ("开标记录编号", "Opening record No.", inp.opening_record_no),
    ]
    if inp.opened_at is not None:
        items.append(("开标时间", "Opened at", _time(inp.opened_at)))
    items.append(("报告版本", "Revision", str(inp.revision)))
    if inp.supersedes:
        items.append(("替代报告", "Supersedes report", inp.supersedes))
    out: list[Block] = [SectionHeading("基本情况", "Basic data"), KeyValueBlock(items)]
    if inp.venues:
        rows = [[f"{VENUE_LABELS.get(v.role, (v.role, v.role))[0]} {VENUE_LABELS.get(v.role, (v.role, v.role))[1]}",
                 v.site, v.room, v.region or "—"] for v in inp.venues]
        out += [SectionHeading("评标场地", "Venues"),
                TableBlock([("场地", "Venue"), ("交易中心", "Site"), ("评标室", "Room"), ("地区", "Region")], rows,
                           col_weights=(1.4, 3.2, 1.8, 1.4))]
    return out


def _committee(inp: ReportInput) -> list[Block]:
    rows = []
    for i, m in enumerate(inp.members, start=1):
        zh, en = CHAIR_LABEL if m.public_id == inp.chair else ROLE_LABELS.get(m.role, (m.role, m.role))
        rows.append([i, m.name, m.public_id, f"{zh}\n{en}", m.site + (f"\n{m.place}" if m.place else ""),
                     _time(m.checked_in_at)])
    chair = next(m for m in inp.members if m.public_id == inp.chair)
    return [SectionHeading("评标委员会", "Evaluation committee"),
            TableBlock([("序号", "No."), ("姓名", "Name"), ("编号", "ID"), ("角色", "Role"),
                        ("评标地点 / 席位", "Site / place"), ("签到时间", "Checked in")], rows,
                       col_weights=(0.6, 1.3, 1.4, 2.3, 3.2, 1.9)),
            TextBlock(f"评标委员会由 {len(inp.members)} 人组成，推选 {chair.name} 为组长。\n"
                      f"The committee has {len(inp.members)} members and elected {chair.name} as its chair.")]


def _review(inp: ReportInput, numbers: dict[str, int]) -> list[Block]:
    scored = {b.id: b for b in inp.scoring.bidders}
    reviewed = {r.bidder: r for r in inp.review}
    rows = []
    for b in inp.bidders:
        r = reviewed[b.id]
        result = "通过\ncompliant" if r.compliant else "否决\nrejected"
        rows.append([numbers[b.id], b.name, b.id, _money(scored[b.id].price), result,
                     "\n".join(x for x in r.reasons if x.strip()) or "—"])
    compliant = sum(1 for r in inp.review if r.compliant)
    return [SectionHeading("资格及符合性审查", "Qualification and compliance review"),
            TableBlock([("序号", "No."), ("投标人", "Bidder"), ("编号", "ID"), ("投标报价（元）", "Price (CNY)"),
                        ("审查结论", "Result"), ("否决理由", "Reasons for rejection")], rows,
                       col_weights=(0.6, 3.0, 1.3, 1.8, 1.3, 3.5)),
            TextBlock(f"投标 {len(inp.bidders)} 家，通过审查 {compliant} 家，否决 {len(inp.bidders) - compliant} 家。"
                      f"以下评分表以序号指代投标人。\n"
                      f"{len(inp.bidders)} bids; {compliant} compliant, {len(inp.bidders) - compliant} rejected. "
                      f"The score tables below refer to bidders by this number.")]


def _method(inp: ReportInput) -> list[Block]:
    method = inp.scoring.method
    kind_zh, kind_en = METHOD_LABELS.get(method.kind, (method.kind,) * 2)
    items: list[tuple[str, str, Any]] = [("评标办法", "Method", f"{kind_zh} {kind_en}"),
                                         ("计算精度", "Decimals", f"{method.decimals} 位小数 decimal places")]
    if method.kind == LOWEST_PRICE:
        items.append(("评审价格", "Evaluated price", "投标报价加减经量化的价格调整\n"
                                                      "The bid price plus or minus the quantified adjustments"))
        return [SectionHeading("评标办法及评审标准", "Method and criteria"), KeyValueBlock(items)]
    agg_zh, agg_en = AGGREGATION_LABELS.get(method.aggregation or "", (method.aggregation or "—",) * 2)
    items += [("评分汇总", "Aggregation", f"{agg_zh}\n{agg_en}"),
              ("价格分", "Price score", _price_rule(inp))]
    rows = [[criterion_code(i), c.name, _num(c.max), "客观 objective" if c.objective else "主观 subjective"]
            for i, c in enumerate(method.criteria)]
    rows.append(["P", "价格分 Price score", _num(method.price_weight), "公式 formula"])
    return [SectionHeading("评标办法及评审标准", "Method and criteria"), KeyValueBlock(items),
            TableBlock([("代码", "Code"), ("评分因素", "Criterion"), ("满分", "Max"), ("类型", "Type")], rows,
                       col_weights=(0.8, 5.0, 1.0, 1.6))]


def _criteria_by_bidder_tables(inp: ReportInput, numbers: dict[str, int], bidders: Sequence[str], value, *,
                               with_max: bool) -> list[Block]:
    """Criteria down, bidders across in groups: `value(bidder, criterion_name)` gives each cell's number.

    With many criteria the rows carry the code alone (the method's table names them), which keeps the rows one
    line high; the member tables leave out the maxima, which the aggregated table and the method's table print.
    """
    method = inp.scoring.method
    named = len(method.criteria) <= NAMED_CRITERIA
    out: list[Block] = []
    for group in _group(list(bidders), BIDDERS_PER_TABLE):
        headers = [("评分因素", "Criterion")] + ([("满分", "Max")] if with_max else [])
        headers += [(f"{numbers[b]}号", b) for b in group]
        rows = []
        totals = {b: Decimal(0) for b in group}
        for i, c in enumerate(method.criteria):
            row: list[Any] = [f"{criterion_code(i)} {c.name}" if named else criterion_code(i)]
            if with_max:
                row.append(_num(c.max))
            for b in group:
                v = value(b, c.name)
                totals[b] += v
                row.append(decimal_str(v))
            rows.append(row)
        rows.append(["技术分合计 Technical", *([""] if with_max else []), *(decimal_str(totals[b]) for b in group)])
        weights = ((3.0 if named else 1.6), *((1.0,) if with_max else ()), *([1.2] * len(group)))
        out.append(TableBlock(headers, rows, col_weights=weights))
    return out


def _aggregated(inp: ReportInput, numbers: dict[str, int], names: dict[str, str]) -> list[Block]:
    method = inp.scoring.method
    ev = inp.evaluation
    out: list[Block] = [SectionHeading("评分汇总及排序", "Aggregated scores and ranking")]
    if method.kind == LOWEST_PRICE:
        adjustments = {b.id: b.adjustments for b in inp.scoring.bidders}
        rows = [[line.rank, f"{numbers[line.bidder]}. {names[line.bidder]}", _money(line.price),
                 "\n".join(f"{a.reason}: {'+' if a.amount >= 0 else ''}{_money(a.amount)}"
                           for a in adjustments[line.bidder]) or "—",
                 _money(line.evaluated_price)] for line in ev.ranking]
        out.append(TableBlock([("排名", "Rank"), ("投标人", "Bidder"), ("投标报价（元）", "Price (CNY)"),
                               ("价格调整", "Adjustments"), ("评审价格（元）", "Evaluated price")], rows,
                              col_weights=(0.7, 3.2, 1.8, 3.0, 1.8)))
        return out
    rows = [[line.rank, f"{numbers[line.bidder]}. {names[line.bidder]}", _money(line.price), _num(line.technical),
             _num(line.price_score), _num(line.total)] for line in ev.ranking]
    out.append(TableBlock([("排名", "Rank"), ("投标人", "Bidder"), ("投标报价（元）", "Price (CNY)"),
                           ("技术分", "Technical"), ("价格分", "Price score"), ("总分", "Total")], rows,
                          col_weights=(0.7, 3.6, 1.9, 1.2, 1.2, 1.2)))
    if ev.benchmark is not None:
        out.append(TextBlock(f"价格基准值（未取整） Price benchmark (unrounded): {_benchmark(ev, method.decimals)}"))
    if method.criteria:
        by_bidder = {line.bidder: line for line in ev.ranking}
        agg_zh, agg_en = AGGREGATION_LABELS.get(method.aggregation or "", ("", ""))
        out.append(SectionHeading("各评分因素汇总得分", "Aggregated score per criterion"))
        out.append(TextBlock(f"{agg_zh}。{agg_en}."))
        out += _criteria_by_bidder_tables(inp, numbers, [line.bidder for line in ev.ranking],
                                          lambda b, c: by_bidder[b].criteria[c], with_max=True)
    return out


def _benchmark(ev: Evaluation, decimals: int) -> str:
    b = ev.benchmark
    assert b is not None
    whole, rest = divmod(b.numerator * 10 ** (decimals + 2), b.denominator)
    shown = Decimal(whole).scaleb(-(decimals + 2))
    return f"{shown:,f}" + ("…" if rest else "")


def _member_tables(inp: ReportInput, numbers: dict[str, int]) -> list[Block]:
    method = inp.scoring.method
    out: list[Block] = [SectionHeading("评标委员会成员评分表", "Each member's score tables")]
    if method.kind == LOWEST_PRICE or not method.criteria:
        out.append(TextBlock("经评审的最低投标价法不设评分因素，无个人评分表。\n"
                             "The lowest evaluated price method has no criteria, hence no individual score tables."))
        return out
    sheets = {(s.member, s.bidder): s.scores for s in inp.scoring.sheets}
    compliant = [b.id for b in inp.scoring.bidders if b.compliant]
    by_id = {m.public_id: m for m in inp.members}
    for member in inp.scoring.members:
        m = by_id[member]
        out.append(SectionHeading(f"评分表：{m.name}（{m.public_id}）", f"Score table of {m.public_id}"))
        out += _criteria_by_bidder_tables(inp, numbers, compliant,
                                          lambda b, c, member=member: sheets[(member, b)][c], with_max=False)
    return out


def _candidates(inp: ReportInput, numbers: dict[str, int], names: dict[str, str]) -> list[Block]:
    ev = inp.evaluation
    chosen = top_candidates(ev, inp.candidate_count)   # refused while a tie waits for its draw
    lines = {line.bidder: line for line in ev.ranking}
    lowest = inp.scoring.method.kind == LOWEST_PRICE
    rows = [[i, f"{numbers[b]}. {names[b]}", b, _money(lines[b].price),
             _money(lines[b].evaluated_price) if lowest else _num(lines[b].total)]
            for i, b in enumerate(chosen, start=1)]
    out: list[Block] = [
        SectionHeading("推荐的中标候选人", "Recommended candidates"),
        TableBlock([("顺序", "Order"), ("投标人", "Bidder"), ("编号", "ID"), ("投标报价（元）", "Price (CNY)"),
                    ("评审价格（元）", "Evaluated price") if lowest else ("总分", "Total")], rows or [["—"] * 5],
                   col_weights=(0.8, 4.0, 1.4, 1.9, 1.6))]
    if ev.tie_draws:
        draws = "；".join(f"{r.get('draw_id', '—')}" for r in ev.tie_draws)
        out.append(TextBlock(f"得分相同的投标人按随机抽签确定顺序，抽签记录：{draws}。\n"
                             f"Bidders still tied were ordered by a verifiable draw: {draws}."))
    return out


def _flags(inp: ReportInput, numbers: dict[str, int]) -> list[Block]:
    method = inp.scoring.method
    codes = {c.name: criterion_code(i) for i, c in enumerate(method.criteria)}
    names = {m.public_id: m.name for m in inp.members}
    by_key: dict[tuple[str, str, str, str], list[flag_rules.Justification]] = {}
    for j in inp.justifications:
        by_key.setdefault((j.kind, j.member, j.bidder, j.criterion), []).append(j)
    rows = []
    for f in inp.flags:
        reason = next((j.text for j in by_key.get(f.key, ()) if j.closes(f)), "—")
        zh, en = FLAG_LABELS.get(f.kind, (f.kind, f.kind))
        figures = f"{decimal_str(f.score)}"
        if f.reference is not None:
            figures += f"\n参照 ref. {decimal_str(f.reference)}"
        if f.limit is not None:
            figures += f"\n界限 limit {decimal_str(f.limit)}"
        rows.append([f"{zh}\n{en}", names.get(f.member, f.member), numbers.get(f.bidder, f.bidder),
                     f"{codes.get(f.criterion, '')} {f.criterion}", figures, reason])
    out: list[Block] = [SectionHeading("评分提示及说明", "Score flags and justifications")]
    if not rows:
        out.append(TextBlock("无评分提示。No score was flagged."))
        return out
    out.append(TableBlock([("提示", "Flag"), ("成员", "Member"), ("投标人", "Bidder"), ("评分因素", "Criterion"),
                           ("分值", "Score"), ("书面说明", "Written justification")], rows,
                          col_weights=(1.6, 1.3, 0.8, 2.0, 1.4, 3.6)))
    return out


def _dissent(inp: ReportInput) -> list[Block]:
    names = {m.public_id: m.name for m in inp.members}
    out: list[Block] = [SectionHeading("不同意见", "Dissent")]
    if inp.dissents:
        out.append(TableBlock([("成员", "Member"), ("不同意见及理由", "Written reasons")],
                              [[f"{names[d.member]}\n{d.member}", d.reasons] for d in inp.dissents],
                              col_weights=(1.6, 6.0)))
    else:
        out.append(TextBlock("评标委员会成员对评标结果无书面不同意见。\n"
                             "No member stated a dissent in writing."))
    out.append(TextBlock("依《招标投标法实施条例》第五十三条，对评标结果有不同意见的成员应以书面形式说明其不同意见和理由；"
                         "拒绝在评标报告上签字且不书面说明不同意见和理由的，视为同意评标结果。\n"
                         "Under Article 53 of the Regulation on the Implementation of the Bidding Law, a member who "
                         "disagrees states the dissent and reasons in writing; a member who refuses to sign without "
                         "written reasons is deemed to agree with the result."))
    return out


def _clarifications(inp: ReportInput, numbers: dict[str, int]) -> list[Block]:
    out: list[Block] = [SectionHeading("澄清、说明或补正", "Clarifications")]
    if not inp.clarifications:
        out.append(TextBlock("评标过程中未要求投标人澄清。No clarification was requested."))
        return out
    rows = [[numbers.get(c.bidder, c.bidder), c.question, c.answer, _time(c.at)] for c in inp.clarifications]
    out.append(TableBlock([("投标人", "Bidder"), ("问题", "Question"), ("答复", "Answer"), ("时间", "At")], rows,
                          col_weights=(0.8, 3.2, 3.2, 1.6)))
    return out


def _signatures(inp: ReportInput) -> list[Block]:
    rows = []
    for m in inp.members:
        zh, en = CHAIR_LABEL if m.public_id == inp.chair else ROLE_LABELS.get(m.role, (m.role, m.role))
        rows.append((m.name, zh, en))
    return [SignatureTable(rows)]


# ---- the report -------------------------------------------------------------------------------------------

def report_title(inp: ReportInput) -> tuple[str, str]:
    """The bilingual title; a re-evaluation says which revision it is."""
    if inp.revision > 1:
        return f"评标报告（第{inp.revision}版）", f"Evaluation report (revision {inp.revision})"
    return "评标报告", "Evaluation report"


def build_report(inp: ReportInput) -> RecordContent:
    """The report's printed content and machine data; refused (4xx) if the inputs are not one finished evaluation."""
    _check(inp)
    numbers = {b.id: i for i, b in enumerate(inp.bidders, start=1)}
    names = {b.id: b.name for b in inp.bidders}
    blocks: list[Block] = [
        *_basic(inp), *_committee(inp), *_review(inp, numbers), *_method(inp),
        *_aggregated(inp, numbers, names), *_candidates(inp, numbers, names), *_flags(inp, numbers),
        *_dissent(inp), *_clarifications(inp, numbers),
    ]
    for note in inp.notes:
        blocks.append(TextBlock(note))
    blocks += _member_tables(inp, numbers)
    blocks.append(TextBlock("评标委员会成员逐一以本人数字证书签署，平台电子签章最后加盖。附件 record.json 的 data 字段为 "
                            "bidroom-score-v1 评分记录，可用 `score verify` 独立复算排名。\n"
                            "Each member signs with their own certificate; the platform seal comes last. The data "
                            "field of the attached record.json is the bidroom-score-v1 scoring record, from which "
                            "`score verify` recomputes the ranking independently."))
    blocks += _signatures(inp)
    title_zh, title_en = report_title(inp)
    return RecordContent(kind=RECORD_KIND, title_zh=title_zh, title_en=title_en, blocks=blocks,
                         attachment=build_record(inp.scoring, inp.evaluation))
