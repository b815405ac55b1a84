"""The evaluation report's content: every item of the report list, bilingual, Chinese names, tables that fit."""
from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from pypdf import PdfReader

from core.errors import Conflict, Unprocessable
from evaluation import flags as fl
from evaluation.report import (
    BIDDERS_PER_TABLE, RECORD_KIND, TENDERER_REP, BidderInfo, Clarification, Dissent, ReportInput, ReportMember,
    ReviewOutcome, Venue, build_report, report_signers,
)
from evaluation.score_record import ALGORITHM, verify
from evaluation.scoring import Evaluation, evaluate
from evidence.records import (RECORD_ATTACHMENT, KeyValueBlock, RecordDocument, SectionHeading, SignatureTable,
                              TableBlock, TextBlock, render_record)
from tests.unit.evaluation.tables import bidders, comprehensive, scoring_input

UTC = timezone.utc
MEMBERS = (
    ReportMember("E-GZ0001", "欧阳娜娜", "广东省公共资源交易中心（广州）", place="主场 3号评标室 A1",
                 checked_in_at=datetime(2026, 12, 1, 1, 2, tzinfo=UTC)),
    ReportMember("E-GZ0002", "司马相如", "广东省公共资源交易中心（广州）", place="主场 3号评标室 A2",
                 checked_in_at=datetime(2026, 12, 1, 1, 4, tzinfo=UTC)),
    ReportMember("E-ZS0003", "张伟", "中山市公共资源交易中心", place="副场 2号评标室 B1",
                 checked_in_at=datetime(2026, 12, 1, 1, 1, tzinfo=UTC)),
    ReportMember("E-ZS0004", "李娜", "中山市公共资源交易中心", place="副场 2号评标室 B2",
                 checked_in_at=datetime(2026, 12, 1, 1, 3, tzinfo=UTC)),
    ReportMember("U-TR0005", "王芳", "中山市公共资源交易中心", role=TENDERER_REP, place="副场 2号评标室 B3",
                 checked_in_at=datetime(2026, 12, 1, 1, 5, tzinfo=UTC)),
)
BIDDERS = (BidderInfo("B-HX01", "中山市恒信建设工程有限公司"), BidderInfo("B-YD02", "广东粤达市政工程有限公司"),
           BidderInfo("B-NF03", "南方路桥集团有限公司"), BidderInfo("B-JC04", "珠江建筑安装工程有限公司"))


def sample_scoring():
    """5 members score 3 compliant bidders on 3 criteria (C01 objective); B-JC04 was rejected at review.

    张伟 (E-ZS0003) gives B-NF03 4 on 施工组织设计 where the others give 12–13: a deviant (畸高畸低) and low score.
    """
    method = comprehensive([("施工组织设计", 15, False), ("项目管理机构", 10, False), ("企业业绩", 5, True)],
                           price_weight=70)
    committee = tuple(m.public_id for m in MEMBERS)
    bids = bidders(("B-HX01", "1180000.00", True), ("B-YD02", "1215000.00", True),
                   ("B-NF03", "1199000.00", True), ("B-JC04", "990000.00", False))
    table = {
        "B-HX01": {"施工组织设计": "13 12 13 12 13", "项目管理机构": "9 8 8 9 8", "企业业绩": "5 5 5 5 5"},
        "B-YD02": {"施工组织设计": "11 12 11 12 12", "项目管理机构": "8 8 7 8 8", "企业业绩": "4 4 4 4 4"},
        "B-NF03": {"施工组织设计": "12 13 4 12 13", "项目管理机构": "9 9 9 9 9", "企业业绩": "5 5 5 5 5"},
    }
    data = scoring_input(method, committee, bids, table)
    return data, evaluate(data)


def sample_input(**changes) -> ReportInput:
    data, ev = sample_scoring()
    flags = tuple(fl.detect_flags(data.method, data.members, data.sheets))
    justifications = tuple(fl.Justification(f.kind, f.member, f.bidder, f.criterion, f.score,
                                            "施工组织设计缺少冬季施工措施，重大缺陷。The plan lacks winter works.")
                           for f in flags)
    inp = ReportInput(
        tender_code="ZS-2026-ZFCG-00042", tender_title="中山市博爱路改造工程", lot_id="L-01",
        lot_title="第一标段 道路工程", session_id="S-7Q4M2K",
        started_at=datetime(2026, 12, 1, 1, 30, tzinfo=UTC), scoring_closed_at=datetime(2026, 12, 1, 6, 0, tzinfo=UTC),
        venues=(Venue("main", "广东省公共资源交易中心", "3号评标室", "广州市"),
                Venue("sub", "中山市公共资源交易中心", "2号评标室", "中山市")),
        members=MEMBERS, chair="E-GZ0001", opening_record_no="R-OPEN0042", bidders=BIDDERS,
        review=(ReviewOutcome("B-HX01", True), ReviewOutcome("B-YD02", True), ReviewOutcome("B-NF03", True),
                ReviewOutcome("B-JC04", False, ("投标保证金未按招标文件要求提交",
                                                 "项目经理无有效安全生产考核合格证"))),
        scoring=data, evaluation=ev, flags=flags, justifications=justifications,
        dissents=(Dissent("E-ZS0004", "认为第2名投标人的施工组织设计优于第1名，不同意排序。"
                                      "I consider the second bidder's plan better than the first's."),),
        clarifications=(Clarification("B-YD02", "请说明报价中的暂列金额", "暂列金额为50,000元，已含在总价内",
                                      datetime(2026, 12, 1, 3, 0, tzinfo=UTC)),),
        opened_at=datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    return replace(inp, **changes)


def render(content, record_no="R-EVAL0001") -> bytes:
    return render_record(RecordDocument(record_no=record_no, kind=content.kind, title_zh=content.title_zh,
                                        title_en=content.title_en, blocks=content.blocks,
                                        attachment=content.attachment,
                                        issued_at=datetime(2026, 12, 1, 7, 0, tzinfo=UTC)))


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def attached_record(pdf: bytes) -> dict:
    reader = PdfReader(io.BytesIO(pdf))
    return json.loads(reader.attachments[RECORD_ATTACHMENT][0])


@pytest.fixture(scope="module")
def sample_pdf() -> bytes:
    return render(build_report(sample_input()))


def _headings(content) -> list[str]:
    return [b.en for b in content.blocks if isinstance(b, SectionHeading)]


def test_the_report_has_every_item_of_the_list_in_order():
    content = build_report(sample_input())
    assert content.kind == RECORD_KIND and (content.title_zh, content.title_en) == ("评标报告", "Evaluation report")
    heads = _headings(content)
    expected = ["Basic data", "Venues", "Evaluation committee", "Qualification and compliance review",
                "Method and criteria", "Aggregated scores and ranking", "Aggregated score per criterion",
                "Recommended candidates", "Score flags and justifications", "Dissent", "Clarifications",
                "Each member's score tables"]
    assert [h for h in heads if not h.startswith("Score table of")] == expected
    assert [h for h in heads if h.startswith("Score table of")] == [
        f"Score table of {m.public_id}" for m in MEMBERS]
    assert isinstance(content.blocks[-1], SignatureTable)


def test_every_label_is_bilingual():
    for block in build_report(sample_input()).blocks:
        if isinstance(block, SectionHeading):
            assert block.zh and block.en and block.zh != block.en
        elif isinstance(block, KeyValueBlock):
            assert all(zh and en and zh != en for zh, en, _ in block.items)
        elif isinstance(block, TableBlock):
            assert all(zh and en for zh, en in block.headers)
        elif isinstance(block, SignatureTable):
            assert all(zh and en for _, zh, en in block.rows)
        elif isinstance(block, TextBlock):
            assert any("\u4e00" <= ch <= "\u9fff" for ch in block.text) and any(ch.isascii() and ch.isalpha()
                                                                             for ch in block.text)


def test_the_signature_rows_follow_the_committee_and_name_the_chair():
    content = build_report(sample_input())
    table = content.blocks[-1]
    assert [r[0] for r in table.rows] == [m.name for m in MEMBERS]
    assert table.rows[0][1:] == ("评标委员会组长", "Committee chair")
    assert table.rows[4][1:] == ("招标人代表", "Tenderer representative")
    signers = report_signers(sample_input())
    assert [(s.public_id, s.field_name) for s in signers] == [
        (m.public_id, f"signer-{i}") for i, m in enumerate(MEMBERS, start=1)]


def test_the_machine_data_is_the_published_score_record_and_verifies(sample_pdf):
    record = attached_record(sample_pdf)
    assert record["kind"] == RECORD_KIND
    data = record["data"]
    assert data["algorithm"] == ALGORITHM
    assert verify(data) == []
    assert [line["bidder"] for line in data["ranking"]] == [
        line.bidder for line in sample_input().evaluation.ranking]
    # a tampered cent is caught by the outsider's recomputation
    data["ranking"][0]["total"] = str(D(data["ranking"][0]["total"]) + D("0.01"))
    assert verify(data)


def test_the_pdf_prints_the_chinese_names_reasons_flags_dissent_and_candidates(sample_pdf):
    text = pdf_text(sample_pdf)
    for name in ("欧阳娜娜", "司马相如", "张伟", "李娜", "王芳", "中山市恒信建设工程有限公司", "珠江建筑安装工程有限公司"):
        assert name in text, name
    for item in ("投标保证金未按招标文件要求提交", "项目经理无有效安全生产考核合格证", "R-OPEN0042",
                 "冬季施工措施", "不同意排序", "暂列金额为50,000元", "广东省公共资源交易中心", "主场", "副场",
                 "2026-12-01 09:02", "评标委员会组长", "畸高畸低"):
        assert item in text, item
    ranking = sample_input().evaluation.ranking
    first = dict((b.id, b.name) for b in BIDDERS)[ranking[0].bidder]
    assert first in text.split("Recommended candidates")[1]


def test_the_aggregated_table_prints_the_evaluation_figures():
    inp = sample_input()
    content = build_report(inp)
    agg = next(b for b in content.blocks if isinstance(b, TableBlock) and ("总分", "Total") in b.headers
               and ("排名", "Rank") in b.headers)
    assert [row[0] for row in agg.rows] == [line.rank for line in inp.evaluation.ranking]
    assert [row[-1] for row in agg.rows] == [str(line.total) for line in inp.evaluation.ranking]
    rejected = next(b for b in content.blocks if isinstance(b, TableBlock) and ("否决理由", "Reasons for rejection")
                    in b.headers)
    assert [row[4] for row in rejected.rows] == ["通过\ncompliant"] * 3 + ["否决\nrejected"]


def test_member_tables_hold_each_members_own_scores():
    inp = sample_input()
    content = build_report(inp)
    blocks = list(content.blocks)
    i = next(k for k, b in enumerate(blocks) if isinstance(b, SectionHeading) and b.en == "Score table of E-ZS0003")
    table = blocks[i + 1]
    assert isinstance(table, TableBlock)
    # bidders 1..3 (B-JC04 was rejected and is not scored), criteria down the page, then the technical total
    assert table.headers[1:] == [("1号", "B-HX01"), ("2号", "B-YD02"), ("3号", "B-NF03")]
    assert table.rows[0] == ["C01 施工组织设计", "13", "11", "4"]
    assert table.rows[-1][1:] == ["26", "22", "18"]


def test_large_tables_are_split_so_they_fit_the_page():
    """30 criteria × 50 bidders: each table has at most BIDDERS_PER_TABLE bidder columns."""
    from bench.evaluation import build_input
    from evaluation.scoring import tie_drawer
    data = build_input(3, 20, 30)
    ev = evaluate(data, draw_tie=tie_drawer(bytes(32), "t", "EV-T"))
    members = tuple(ReportMember(m, f"专家{i}", "中山市公共资源交易中心") for i, m in enumerate(data.members))
    inp = ReportInput(
        tender_code="T", tender_title="大型项目", lot_id="L", lot_title="一标段", session_id="S", started_at=None,
        scoring_closed_at=None, venues=(), members=members, chair=members[0].public_id, opening_record_no="R-1",
        bidders=tuple(BidderInfo(b.id, f"第{b.id}号投标人有限公司") for b in data.bidders),
        review=tuple(ReviewOutcome(b.id, b.compliant, () if b.compliant else ("资格不符",)) for b in data.bidders),
        scoring=data, evaluation=ev,
        flags=tuple(fl.detect_flags(data.method, data.members, data.sheets)),
        justifications=tuple(fl.Justification(f.kind, f.member, f.bidder, f.criterion, f.score, "理由 reason")
                             for f in fl.detect_flags(data.method, data.members, data.sheets)))
    content = build_report(inp)
    wide = [b for b in content.blocks if isinstance(b, TableBlock) and b.headers[0] == ("评分因素", "Criterion")]
    compliant = sum(1 for b in data.bidders if b.compliant)
    per_sheet = -(-compliant // BIDDERS_PER_TABLE)
    assert len(wide) == per_sheet * (1 + len(data.members))
    assert all(len(t.headers) <= 2 + BIDDERS_PER_TABLE for t in wide)
    pdf = render(content)
    reader = PdfReader(io.BytesIO(pdf))
    width = float(reader.pages[0].mediabox.width)
    # nothing is drawn past the right margin: every page is A4 and its text stays inside it
    for page in reader.pages:
        assert float(page.mediabox.width) == width
        xs: list[float] = []
        page.extract_text(visitor_text=lambda t, cm, tm, fd, fs: xs.append(tm[4] * cm[0] + cm[4]) if t.strip()
                          else None)
        assert max(xs) < width - 20


def test_a_lowest_price_report_has_evaluated_prices_and_no_score_tables():
    from evaluation.scoring import Adjustment, Bidder, Method, ScoringInput
    data = ScoringInput(Method.lowest_price(), tuple(m.public_id for m in MEMBERS), (
        Bidder("B-HX01", D("1180000.00"), True, (Adjustment("工期延长 longer duration", D("20000.00")),)),
        Bidder("B-YD02", D("1190000.00"), True), Bidder("B-NF03", D("1185000.00"), True),
        Bidder("B-JC04", D("990000.00"), False)))
    inp = sample_input(scoring=data, evaluation=evaluate(data), flags=(), justifications=())
    content = build_report(inp)
    agg = next(b for b in content.blocks if isinstance(b, TableBlock) and ("价格调整", "Adjustments") in b.headers)
    assert [row[1] for row in agg.rows] == ["3. 南方路桥集团有限公司", "2. 广东粤达市政工程有限公司",
                                            "1. 中山市恒信建设工程有限公司"]
    assert agg.rows[2][-1] == "1,200,000.00"
    assert verify(json.loads(json.dumps(content.attachment))) == []
    assert "Each member's score tables" in _headings(content)
    assert not any(isinstance(b, TableBlock) and b.headers[0] == ("评分因素", "Criterion") for b in content.blocks)


def test_a_revision_says_which_report_it_replaces():
    content = build_report(sample_input(revision=2, supersedes="R-EVAL0001"))
    assert content.title_zh == "评标报告（第2版）"
    basic = content.blocks[1]
    assert ("替代报告", "Supersedes report", "R-EVAL0001") in basic.items


@pytest.mark.parametrize("changes, error, code", [
    ({"chair": "E-NOBODY"}, Unprocessable, "report_chair_not_member"),
    ({"chair": "U-TR0005"}, Unprocessable, "report_chair_not_expert"),
    ({"dissents": (Dissent("E-GZ0002", "  "),)}, Unprocessable, "dissent_without_reasons"),
    ({"dissents": (Dissent("E-NOBODY", "理由"),)}, Unprocessable, "report_unknown_dissenter"),
    ({"review": (ReviewOutcome("B-HX01", True), ReviewOutcome("B-YD02", True), ReviewOutcome("B-NF03", True),
                 ReviewOutcome("B-JC04", False))}, Unprocessable, "report_rejection_without_reason"),
    ({"review": (ReviewOutcome("B-HX01", True), ReviewOutcome("B-YD02", True), ReviewOutcome("B-NF03", False, ("x",)),
                 ReviewOutcome("B-JC04", False, ("y",)))}, Unprocessable, "report_review_mismatch"),
    ({"bidders": BIDDERS[:3]}, Unprocessable, "report_bidders_mismatch"),
    ({"members": MEMBERS[:4]}, Unprocessable, "report_unknown_scorer"),
    ({"justifications": ()}, Conflict, "flags_open"),
])
def test_inconsistent_inputs_are_refused_before_rendering(changes, error, code):
    with pytest.raises(error) as caught:
        build_report(sample_input(**changes))
    assert caught.value.code == code


def test_a_ranking_with_a_pending_tie_cannot_be_reported():
    inp = sample_input()
    data = inp.scoring
    # two bidders with identical prices and sheets stay tied until a draw settles them
    from evaluation.scoring import Bidder, Sheet, ScoringInput
    twin = Bidder("B-JC04", D("1180000.00"), True)
    sheets = data.sheets + tuple(Sheet(s.member, "B-JC04", s.scores) for s in data.sheets if s.bidder == "B-HX01")
    tied = ScoringInput(data.method, data.members, data.bidders[:3] + (twin,), sheets)
    ev: Evaluation = evaluate(tied)
    assert ev.pending_ties
    review = inp.review[:3] + (ReviewOutcome("B-JC04", True),)
    with pytest.raises(Exception) as caught:
        build_report(replace(inp, scoring=tied, evaluation=ev, review=review))
    assert caught.value.code == "tie_draw_pending"
