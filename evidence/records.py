"""Signed-record documents (电子记录) and their deterministic PDF rendering with reportlab.

A record (draw record 抽取记录, opening record 开标记录, evaluation report 评标报告, ...) is a small document
model rendered to a bilingual A4 PDF with the CJK font embedded. The PDF carries empty signature fields in the
signature table and a platform-seal field, which `evidence.signing` fills one by one with incremental updates,
so the rendered bytes are never touched again. Same input, same bytes: reportlab runs with ``invariant=1``.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape

import qrcode

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.pdfdoc import (PDFArray, PDFDictionary, PDFName, PDFStream, PDFStreamFilterZCompress,
                                      PDFString)
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (BaseDocTemplate, Flowable, Frame, KeepTogether, PageTemplate, Paragraph, Spacer,
                                Table, TableStyle)

from core.clock import format_local
from evidence.fonts import WQY_ZENHEI_PATH, cjk_font

log = logging.getLogger(__name__)

SEAL_FIELD = "platform-seal"
RECORD_ATTACHMENT = "record.json"
CHECKPOINT_ATTACHMENT = "checkpoint.json"
CHECKPOINT_KEYS = ("size", "head", "root", "signature", "key_id")

PAGE_W, PAGE_H = A4
MARGIN_X = 18 * mm
MARGIN_TOP = 24 * mm
MARGIN_BOTTOM = 22 * mm
FRAME_W = PAGE_W - 2 * MARGIN_X
INK = colors.HexColor("#1f2937")
MUTED = colors.HexColor("#6b7280")
RULE = colors.HexColor("#9ca3af")
SHADE = colors.HexColor("#eef2f7")
WARNING = colors.HexColor("#b91c1c")
STATUTORY_OFF_LINE = ("法定期限校验已关闭（BIDROOM_STATUTORY_PERIODS=off），本记录仅供测试或演示。"
                      " Statutory period minimums were OFF when this record was issued: tests and demos only.")


def signature_field_name(row_index: int) -> str:
    """Name of the signature field for row `row_index` (0-based) of a record's signature table."""
    return f"signer-{row_index + 1}"


# ---- document model ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SectionHeading:
    """A bilingual section heading."""
    zh: str
    en: str


@dataclass(frozen=True)
class KeyValueBlock:
    """Labelled values: items are (label_zh, label_en, value)."""
    items: Sequence[tuple[str, str, Any]]


@dataclass(frozen=True)
class TableBlock:
    """A table with bilingual headers (zh, en) and rows of cell values."""
    headers: Sequence[tuple[str, str]]
    rows: Sequence[Sequence[Any]]
    # Relative column widths; equal when omitted.
    col_weights: Sequence[float] | None = None
    # Columns of identifiers (lot ids, codes) that must never break inside: they are as wide as their longest
    # cell and wrap only at spaces; the other columns share what is left by their weights.
    fit_cols: Sequence[int] = ()


@dataclass(frozen=True)
class TextBlock:
    """A paragraph of plain text (line breaks kept)."""
    text: str


@dataclass(frozen=True)
class SignatureTable:
    """Who signs the record: rows are (name, role_zh, role_en); each row gets its own signature field."""
    rows: Sequence[tuple[str, str, str]]


Block = SectionHeading | KeyValueBlock | TableBlock | TextBlock | SignatureTable


@dataclass(frozen=True)
class RecordDocument:
    """Everything printed on, and embedded in, one record PDF."""
    record_no: str
    kind: str
    title_zh: str
    title_en: str
    blocks: Sequence[Block] = ()
    verify_url: str | None = None
    # The signed audit-ledger checkpoint: {"size", "head", "root", "signature", "key_id"}.
    checkpoint: dict[str, Any] | None = None
    # Machine-readable data, embedded as record.json.
    attachment: Any = None
    issued_at: datetime | None = None
    platform_name: str = "bidroom"
    # False when the platform ran with BIDROOM_STATUTORY_PERIODS=off (tests, the demo): the record says so,
    # on the page and in record.json, so it can never pass for one issued under the statutory periods.
    statutory_periods: bool = True

    def __post_init__(self):
        if not self.record_no:
            raise ValueError("a record needs a record number")
        if self.issued_at is not None and self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        if self.checkpoint is not None:
            missing = [k for k in CHECKPOINT_KEYS if k not in self.checkpoint]
            if missing:
                raise ValueError(f"checkpoint lacks {', '.join(missing)}")


# ---- embedded data ----------------------------------------------------------------------------------------

def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            raise TypeError("naive datetimes cannot be embedded in a record")
        return obj.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def attachment_bytes(data: Any) -> bytes:
    """The exact bytes embedded for a JSON attachment (sorted keys, UTF-8, Decimal as string)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2, default=_json_default).encode() + b"\n"


def record_attachments(doc: RecordDocument) -> dict[str, bytes]:
    """The embedded files of a record by name: record.json always, checkpoint.json when there is one."""
    files = {RECORD_ATTACHMENT: attachment_bytes({
        "record_no": doc.record_no,
        "kind": doc.kind,
        "title": {"zh": doc.title_zh, "en": doc.title_en},
        "issued_at": doc.issued_at,
        "verify_url": doc.verify_url,
        "statutory_periods": "on" if doc.statutory_periods else "off",
        "data": doc.attachment,
    })}
    if doc.checkpoint is not None:
        files[CHECKPOINT_ATTACHMENT] = attachment_bytes(doc.checkpoint)
    return files


# ---- rendering --------------------------------------------------------------------------------------------

class _Styles:
    def __init__(self, font: str):
        self.font = font
        base = dict(fontName=font, textColor=INK, wordWrap="CJK")
        self.body = ParagraphStyle("body", fontSize=9.5, leading=13.5, **base)
        self.cell = ParagraphStyle("cell", fontSize=8.5, leading=11.5, **base)
        self.head = ParagraphStyle("head", fontSize=8, leading=10.5, **base)
        self.label = ParagraphStyle("label", fontSize=8.5, leading=11.5, **{**base, "textColor": MUTED})
        self.title_zh = ParagraphStyle("title_zh", fontSize=17, leading=23, **base)
        self.title_en = ParagraphStyle("title_en", fontSize=11, leading=15, **{**base, "textColor": MUTED})
        self.h2 = ParagraphStyle("h2", fontSize=11.5, leading=16, spaceBefore=8, spaceAfter=4, **base)
        self.small = ParagraphStyle("small", fontSize=7, leading=9.5, **{**base, "textColor": MUTED})
        self.mono = ParagraphStyle("mono", fontSize=7, leading=9.5, **base)
        self.centre_small = ParagraphStyle("centre_small", parent=self.small, alignment=TA_CENTER)
        # identifiers: break at spaces only, never inside a lot id or a code
        self.ident = ParagraphStyle("ident", fontSize=8.5, leading=11.5, fontName=font, textColor=INK,
                                    splitLongWords=0)
        self.warning = ParagraphStyle("warning", fontSize=8.5, leading=11.5, spaceBefore=2,
                                      **{**base, "textColor": WARNING})


def _plain(value: Any) -> str:
    """A cell or value as the text a reader sees."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes cannot be printed on a record")
        # Beijing time to the second with its zone; record.json keeps the exact UTC instant
        return format_local(value, seconds=True)
    return str(value)


def _text(value: Any) -> str:
    """Cell and value text as reportlab paragraph markup: escaped, line breaks kept."""
    return escape(_plain(value)).replace("\n", "<br/>")


def _bilingual(zh: str, en: str) -> str:
    return f"{escape(zh)}<br/><font size=7 color='#6b7280'>{escape(en)}</font>"


class _SignatureSlot(Flowable):
    """An empty box that becomes a signature field (widget) at exactly the place it is drawn."""

    def __init__(self, field_name: str, height: float, width: float | None = None):
        super().__init__()
        self.field_name = field_name
        self.height = height
        self.fixed_width = width

    def wrap(self, avail_w, avail_h):
        self.width = self.fixed_width or avail_w
        return self.width, self.height

    def draw(self):
        canv = self.canv
        canv.saveState()
        canv.setStrokeColor(RULE)
        canv.setDash(2, 2)
        canv.setLineWidth(0.5)
        canv.rect(0, 0, self.width, self.height, stroke=1, fill=0)
        canv.restoreState()
        x0, y0 = canv.absolutePosition(0, 0)
        x1, y1 = canv.absolutePosition(self.width, self.height)
        widget = PDFDictionary({
            "Type": PDFName("Annot"),
            "Subtype": PDFName("Widget"),
            "FT": PDFName("Sig"),
            "T": PDFString(self.field_name),
            "F": 4,  # print
            "Rect": PDFArray([round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)]),
        })
        canv._addAnnotation(widget, name=f"sigfield-{self.field_name}")
        canv.acroForm.fields.append(widget)


class _QrCode(Flowable):
    """A vector QR code (one path of dark modules) that also links to its URL."""

    def __init__(self, url: str, size: float):
        super().__init__()
        self.url = url
        self.width = self.height = size

    def draw(self):
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
        qr.add_data(self.url)
        qr.make(fit=True)
        matrix = qr.get_matrix()
        n = len(matrix)
        cell = self.width / n
        canv = self.canv
        path = canv.beginPath()
        for r, row in enumerate(matrix):
            for c, dark in enumerate(row):
                if dark:
                    path.rect(c * cell, (n - 1 - r) * cell, cell, cell)
        canv.saveState()
        canv.setFillColor(colors.black)
        canv.drawPath(path, stroke=0, fill=1)
        canv.restoreState()
        canv.linkURL(self.url, (0, 0, self.width, self.height), relative=1, thickness=0)


def _embed_files(canv: Canvas, files: dict[str, bytes]) -> None:
    """Add the files to the catalog's EmbeddedFiles name tree (PDF 1.7 §7.11.4)."""
    names: list[Any] = []
    for name in sorted(files):  # name trees are sorted by key
        data = files[name]
        stream = PDFStream(
            dictionary=PDFDictionary({
                "Type": PDFName("EmbeddedFile"),
                "Subtype": PDFName("application#2Fjson"),
                "Params": PDFDictionary({"Size": len(data), "CheckSum": PDFString(hashlib.md5(data).digest())}),
            }),
            content=data, filters=[PDFStreamFilterZCompress()])
        spec = PDFDictionary({
            "Type": PDFName("Filespec"),
            "F": PDFString(name),
            "UF": PDFString(name),
            "Desc": PDFString("machine-readable record data" if name == RECORD_ATTACHMENT
                              else "signed audit ledger checkpoint"),
            "AFRelationship": PDFName("Data"),
            "EF": PDFDictionary({"F": canv._doc.Reference(stream), "UF": canv._doc.Reference(stream)}),
        })
        names += [PDFString(name), canv._doc.Reference(spec)]
    canv._doc._catalog.Names = PDFDictionary({"EmbeddedFiles": PDFDictionary({"Names": PDFArray(names)})})


def _canvas_maker(doc: RecordDocument, font: str, files: dict[str, bytes]):
    """A canvas that holds pages back until the end, so each can say how many pages there are in all."""

    class RecordCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            # Start in the CJK font so no unembedded standard font (Helvetica) lands in the resources.
            kwargs["initialFontName"] = font
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._decorate(number, total)
                Canvas.showPage(self)
            _embed_files(self, files)
            Canvas.save(self)

        def _decorate(self, number: int, total: int) -> None:
            self.saveState()
            self.setFillColor(MUTED)
            self.setStrokeColor(RULE)
            self.setLineWidth(0.4)
            top = PAGE_H - 14 * mm
            self.setFont(font, 8)
            self.drawString(MARGIN_X, top, f"{doc.platform_name} · 电子记录 Electronic record · {doc.title_zh}")
            self.drawRightString(PAGE_W - MARGIN_X, top, f"记录编号 Record No. {doc.record_no}")
            self.line(MARGIN_X, top - 2.5 * mm, PAGE_W - MARGIN_X, top - 2.5 * mm)
            bottom = 12 * mm
            self.line(MARGIN_X, bottom + 4 * mm, PAGE_W - MARGIN_X, bottom + 4 * mm)
            self.drawString(MARGIN_X, bottom, f"记录编号 / Record No. {doc.record_no}")
            self.drawRightString(PAGE_W - MARGIN_X, bottom,
                                 f"第 {number} 页 / 共 {total} 页 · page {number} of {total}")
            self.restoreState()

    return RecordCanvas


def _table_style(font: str, *, header: bool) -> TableStyle:
    cmds = [
        ("FONTNAME", (0, 0), (-1, -1), font),
        # plain-string cells (see _cell) are drawn like the cell paragraphs
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("LEADING", (0, 0), (-1, -1), 11.5),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("GRID", (0, 0), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        cmds.append(("BACKGROUND", (0, 0), (-1, 0), SHADE))
    return TableStyle(cmds)


def _title_block(doc: RecordDocument, st: _Styles) -> list[Flowable]:
    left: list[Flowable] = [Paragraph(escape(doc.title_zh), st.title_zh),
                            Paragraph(escape(doc.title_en), st.title_en)]
    meta = f"记录编号 Record No. {escape(doc.record_no)}"
    if doc.issued_at is not None:
        meta += f"　·　出具时间 Issued {_text(doc.issued_at)}"
    left += [Spacer(1, 2 * mm), Paragraph(meta, st.label)]
    if not doc.statutory_periods:
        left.append(Paragraph(STATUTORY_OFF_LINE, st.warning))
    if doc.verify_url:
        qr = [_QrCode(doc.verify_url, 24 * mm), Paragraph("扫码验证 Scan to verify", st.centre_small)]
        table = Table([[left, qr]], colWidths=[FRAME_W - 30 * mm, 30 * mm])
    else:
        table = Table([[left]], colWidths=[FRAME_W])
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), st.font),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.8, INK),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
    return [table, Spacer(1, 4 * mm)]


def _key_value(block: KeyValueBlock, st: _Styles) -> Flowable:
    rows = [[Paragraph(_bilingual(zh, en), st.cell), Paragraph(_text(v), st.cell)] for zh, en, v in block.items]
    table = Table(rows, colWidths=[45 * mm, FRAME_W - 45 * mm])
    style = _table_style(st.font, header=False)
    style.add("BACKGROUND", (0, 0), (0, -1), SHADE)
    table.setStyle(style)
    return table


CELL_PADDING = 8  # LEFTPADDING + RIGHTPADDING of _table_style


def _col_widths(n: int, weights: Sequence[float] | None, fixed: dict[int, float] | None = None) -> list[float]:
    """Column widths over the frame: `fixed` columns get their width, the others share the rest by weight."""
    weights = list(weights) if weights else [1.0] * n
    if len(weights) != n:
        raise ValueError("col_weights must give one weight per column")
    fixed = fixed or {}
    rest = FRAME_W - sum(fixed.values())
    total = sum(w for i, w in enumerate(weights) if i not in fixed) or 1.0
    return [fixed[i] if i in fixed else rest * w / total for i, w in enumerate(weights)]


def _fit_width(block: TableBlock, col: int, st: _Styles) -> float:
    """The width that keeps every cell of `col` (and its header) on one line, capped at half the frame."""
    texts = [str(row[col]) for row in block.rows if row[col] is not None]
    widest = max([stringWidth(t, st.font, st.cell.fontSize) for t in texts] +
                 [stringWidth(block.headers[col][0], st.font, st.head.fontSize),
                  stringWidth(block.headers[col][1], st.font, 7)])
    return min(widest + CELL_PADDING + 2, FRAME_W / 2)


def _table(block: TableBlock, st: _Styles) -> Flowable:
    n = len(block.headers)
    for row in block.rows:
        if len(row) != n:
            raise ValueError(f"table row has {len(row)} cells, the header has {n}")
    fit = set(block.fit_cols)
    if not fit <= set(range(n)):
        raise ValueError("fit_cols names a column the table does not have")
    widths = _col_widths(n, block.col_weights, {i: _fit_width(block, i, st) for i in fit})
    data = [[Paragraph(_bilingual(zh, en), st.head) for zh, en in block.headers]]
    data += [[_cell(v, widths[i], st.ident if i in fit else st.cell, st) for i, v in enumerate(row)]
             for row in block.rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(_table_style(st.font, header=True))
    return table


def _cell(value: Any, width: float, style: ParagraphStyle, st: _Styles) -> Flowable | str:
    """A body cell: plain text when it fits on one line, else a wrapping paragraph.

    A Paragraph costs about half a millisecond to lay out; an evaluation report has some 15,000 cells, nearly
    all short numbers, so drawing those as strings (same font, size, leading and colour, see _table_style) is
    what keeps rendering within seconds.
    """
    text = _plain(value)
    if "\n" not in text and stringWidth(text, st.font, style.fontSize) <= width - CELL_PADDING:
        return text
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _signature_table(block: SignatureTable, st: _Styles) -> Flowable:
    headers = [("序号", "No."), ("姓名", "Name"), ("角色", "Role"), ("数字签名", "Digital signature")]
    widths = [14 * mm, 38 * mm, 48 * mm, FRAME_W - 100 * mm]
    data: list[list[Any]] = [[Paragraph(_bilingual(zh, en), st.head) for zh, en in headers]]
    for i, (name, role_zh, role_en) in enumerate(block.rows):
        data.append([Paragraph(str(i + 1), st.cell), Paragraph(_text(name), st.cell),
                     Paragraph(_bilingual(role_zh, role_en), st.cell),
                     _SignatureSlot(signature_field_name(i), 14 * mm)])
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(_table_style(st.font, header=True))
    return table


def _evidence_section(doc: RecordDocument, files: dict[str, bytes], st: _Styles) -> list[Flowable]:
    out: list[Flowable] = [Paragraph(_bilingual("存证信息", "Evidence"), st.h2)]
    rows: list[tuple[str, str, str]] = []
    if doc.checkpoint is not None:
        cp = doc.checkpoint
        rows += [("账本检查点 · 条目数", "Ledger checkpoint · size", str(cp["size"])),
                 ("链头哈希", "Chain head", str(cp["head"])),
                 ("默克尔根", "Merkle root", str(cp["root"])),
                 ("检查点签名", "Checkpoint signature", str(cp["signature"])),
                 ("签名密钥", "Signing key id", str(cp["key_id"]))]
    for name in sorted(files):
        rows.append((f"附件 {name} 摘要", f"{name} SHA-256", hashlib.sha256(files[name]).hexdigest()))
    if doc.verify_url:
        rows.append(("在线验证", "Verify online", doc.verify_url))
    table = Table([[Paragraph(_bilingual(zh, en), st.small), Paragraph(escape(v), st.mono)] for zh, en, v in rows],
                  colWidths=[45 * mm, FRAME_W - 45 * mm])
    table.setStyle(_table_style(st.font, header=False))
    out.append(table)
    out.append(Spacer(1, 2 * mm))
    out.append(Paragraph(
        "本记录由平台电子签章及签署人数字签名（PAdES）保护；任何改动都会使签名失效。附件 record.json 与 "
        "checkpoint.json 随文件嵌入。 This record is protected by PAdES digital signatures of the signers and "
        "the platform seal; any change invalidates them. record.json and checkpoint.json are embedded.",
        st.small))
    return out


def _seal_block(st: _Styles) -> Flowable:
    label = Paragraph(_bilingual("平台电子签章", "Platform seal"), st.cell)
    table = Table([[label, _SignatureSlot(SEAL_FIELD, 18 * mm, 62 * mm)]],
                  colWidths=[FRAME_W - 66 * mm, 66 * mm], hAlign="RIGHT")
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), st.font),
                               ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return table


def render_record(doc: RecordDocument, *, font_path: Path = WQY_ZENHEI_PATH) -> bytes:
    """Render the record to PDF bytes with empty signature fields; identical input gives identical bytes."""
    font = cjk_font(font_path)
    st = _Styles(font)
    files = record_attachments(doc)
    story: list[Flowable] = _title_block(doc, st)
    for block in doc.blocks:
        if isinstance(block, SectionHeading):
            story.append(Paragraph(_bilingual(block.zh, block.en), st.h2))
        elif isinstance(block, KeyValueBlock):
            story += [_key_value(block, st), Spacer(1, 3 * mm)]
        elif isinstance(block, TableBlock):
            story += [_table(block, st), Spacer(1, 3 * mm)]
        elif isinstance(block, TextBlock):
            story += [Paragraph(_text(block.text), st.body), Spacer(1, 2 * mm)]
        elif isinstance(block, SignatureTable):
            story += [Paragraph(_bilingual("签署", "Signatures"), st.h2), _signature_table(block, st),
                      Spacer(1, 3 * mm)]
        else:
            raise TypeError(f"unknown record block {type(block).__name__}")
    # The evidence block and the seal read as one unit, so they are never split across pages.
    story.append(KeepTogether([*_evidence_section(doc, files, st), Spacer(1, 4 * mm), _seal_block(st)]))

    buf = BytesIO()
    template = BaseDocTemplate(
        buf, pagesize=A4, invariant=1, leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM, title=f"{doc.title_zh} / {doc.title_en}", author=doc.platform_name,
        subject=doc.kind, creator=f"{doc.platform_name} records", keywords=[doc.kind, doc.record_no],
        lang="zh-CN")
    # A frame without padding, so tables, headings and the running header all share one left edge.
    frame = Frame(MARGIN_X, MARGIN_BOTTOM, FRAME_W, PAGE_H - MARGIN_TOP - MARGIN_BOTTOM, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    template.addPageTemplates([PageTemplate(id="record", frames=[frame])])
    template.build(story, canvasmaker=_canvas_maker(doc, font, files))
    return buf.getvalue()
