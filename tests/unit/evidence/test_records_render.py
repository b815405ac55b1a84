"""Record PDFs: bilingual text that extracts exactly, an embedded CJK font, page numbering, embedded data."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pypdf
import pytest

from evidence.fonts import FontMissing
from evidence.records import (SEAL_FIELD, KeyValueBlock, RecordDocument, SectionHeading, SignatureTable, TableBlock,
                              TextBlock, render_record, signature_field_name)

COMMITTEE = [("张伟", "评标委员会主任", "Committee chair"), ("李娜", "评标专家", "Expert"),
             ("欧阳娜娜", "评标专家", "Expert")]
CHECKPOINT = {"size": 1024, "head": "a1" * 32, "root": "b2" * 32, "signature": "c2lnbmF0dXJl" * 7, "key_id": "k1-Zt9"}


def three_signer_record(*, score_rows: int = 5, **changes) -> RecordDocument:
    """An evaluation report signed by 张伟, 李娜 and 欧阳娜娜, used across the evidence tests."""
    doc = RecordDocument(
        record_no="PB-2026-000123",
        kind="evaluation_report",
        title_zh="评标报告",
        title_en="Bid Evaluation Report",
        issued_at=datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc),
        verify_url="https://bidroom.example.cn/verify/PB-2026-000123",
        checkpoint=CHECKPOINT,
        attachment={"tender": "T-2026-0042", "winner": "甲建设有限公司", "score": Decimal("88.50")},
        blocks=[
            SectionHeading("项目信息", "Project"),
            KeyValueBlock(items=[("项目名称", "Project name", "市政道路改造工程（一标段）"),
                                 ("开标时间", "Opening time", datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc))]),
            TableBlock(headers=[("排名", "Rank"), ("投标人", "Bidder"), ("得分", "Score")],
                       rows=[[i + 1, f"第{i + 1}投标人有限公司", f"{90 - i}.25"] for i in range(score_rows)]),
            TextBlock("评标委员会按照招标文件规定的评标办法进行评审。\nEvaluated per the tender documents."),
            SignatureTable(rows=COMMITTEE),
        ],
    )
    return replace(doc, **changes) if changes else doc


def _reader(pdf: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(BytesIO(pdf))


def _text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in _reader(pdf).pages]


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render_record(three_signer_record())


def test_chinese_names_and_both_titles_extract_exactly(rendered):
    text = "\n".join(_text(rendered))
    for expected in ("张伟", "李娜", "欧阳娜娜", "评标报告", "Bid Evaluation Report", "市政道路改造工程（一标段）",
                     "评标委员会主任", "Committee chair", "2026-11-20 09:30:00 UTC+8"):
        assert expected in text


def test_every_font_is_embedded_as_a_truetype_subset(rendered):
    reader = _reader(rendered)
    fonts = {}
    for page in reader.pages:
        for name, ref in page["/Resources"]["/Font"].items():
            fonts[name] = ref.get_object()
    assert fonts, "the record uses no fonts at all"
    for font in fonts.values():
        descriptor = font["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor
        assert "WenQuanYiZenHei" in font["/BaseFont"]


def test_every_page_carries_the_record_number_and_page_x_of_y():
    pdf = render_record(three_signer_record(score_rows=120))
    pages = _text(pdf)
    total = len(pages)
    assert total >= 3
    for number, text in enumerate(pages, start=1):
        assert f"第 {number} 页 / 共 {total} 页 · page {number} of {total}" in text
        assert text.count("PB-2026-000123") >= 2  # header and footer


def test_same_record_renders_to_identical_bytes(rendered):
    assert render_record(three_signer_record()) == rendered


def test_a_changed_name_changes_the_bytes(rendered):
    changed = three_signer_record(blocks=[SignatureTable(rows=[("张伟", "评标专家", "Expert")])])
    assert render_record(changed) != rendered


def test_record_data_and_checkpoint_are_embedded_as_json_files(rendered):
    attachments = _reader(rendered).attachments
    assert set(attachments) == {"record.json", "checkpoint.json"}
    record = json.loads(attachments["record.json"][0])
    assert record["record_no"] == "PB-2026-000123"
    assert record["kind"] == "evaluation_report"
    assert record["data"] == {"tender": "T-2026-0042", "winner": "甲建设有限公司", "score": "88.50"}
    assert json.loads(attachments["checkpoint.json"][0]) == CHECKPOINT


def test_checkpoint_is_printed_on_the_record(rendered):
    text = re.sub(r"\s+", "", "".join(_text(rendered)))
    for key in ("head", "root", "signature", "key_id"):
        assert CHECKPOINT[key] in text
    assert "1024" in text


def test_each_signer_row_and_the_seal_get_an_empty_signature_field(rendered):
    fields = _reader(rendered).get_fields()
    expected = {signature_field_name(i) for i in range(len(COMMITTEE))} | {SEAL_FIELD}
    assert set(fields) == expected
    for field in fields.values():
        assert field["/FT"] == "/Sig"
        assert field.get("/V") is None


def test_qr_code_links_to_the_verify_url(rendered):
    first = _reader(rendered).pages[0]
    uris = [a.get_object()["/A"]["/URI"] for a in first["/Annots"] if a.get_object()["/Subtype"] == "/Link"]
    assert uris == ["https://bidroom.example.cn/verify/PB-2026-000123"]


def test_missing_font_file_stops_rendering_with_font_missing(tmp_path: Path):
    with pytest.raises(FontMissing, match="fonts-wqy-zenhei"):
        render_record(three_signer_record(), font_path=tmp_path / "absent.ttc")


def test_naive_issue_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        three_signer_record(issued_at=datetime(2026, 11, 25, 6, 30))


def test_incomplete_checkpoint_is_refused():
    with pytest.raises(ValueError, match="signature"):
        three_signer_record(checkpoint={"size": 1, "head": "00", "root": "00", "key_id": "k"})


def test_markup_characters_in_values_print_literally():
    doc = three_signer_record(blocks=[TextBlock("A<B> & C </para>")])
    assert "A<B> & C </para>" in _text(render_record(doc))[0]


def test_times_print_in_beijing_time_to_the_second_and_record_json_keeps_exact_utc():
    at = datetime(2026, 12, 1, 2, 3, 4, 567890, tzinfo=timezone.utc)
    pdf = render_record(three_signer_record(issued_at=at, attachment={"opened_at": at}))
    text = "\n".join(_text(pdf))
    assert "2026-12-01 10:03:04 UTC+8" in text and ".567890" not in text and "+00:00" not in text
    data = json.loads(_reader(pdf).attachments["record.json"][0])
    assert data["issued_at"] == "2026-12-01T02:03:04.567890Z" and data["data"]["opened_at"] == data["issued_at"]


def test_a_record_issued_with_the_statutory_periods_off_says_so_on_the_page_and_in_its_data():
    on = render_record(three_signer_record())
    off = render_record(three_signer_record(statutory_periods=False))
    assert "BIDROOM_STATUTORY_PERIODS=off" not in "\n".join(_text(on))
    assert "BIDROOM_STATUTORY_PERIODS=off" in "\n".join(_text(off))
    assert json.loads(_reader(on).attachments["record.json"][0])["statutory_periods"] == "on"
    assert json.loads(_reader(off).attachments["record.json"][0])["statutory_periods"] == "off"


def test_identifier_columns_never_break_inside_an_id():
    lot = "ZS-2026-FJSZ-00042-L01"
    table = TableBlock(headers=[("序号", "No."), ("投标人", "Bidder"), ("标段", "Lot"), ("投标报价（元）", "Price"),
                                ("工期（日）", "Days"), ("其他声明", "Declared")],
                       rows=[[1, "中山市恒信建设工程有限公司", lot, "300,000.00", 180, "质量标准：合格"]],
                       col_weights=[0.5, 2.8, 1.0, 1.3, 0.8, 1.8], fit_cols=(2,))
    lines = "\n".join(_text(render_record(three_signer_record(blocks=[table])))).splitlines()
    assert any(lot in line for line in lines)
    with pytest.raises(ValueError):
        render_record(three_signer_record(blocks=[replace(table, fit_cols=(7,))]))
