"""Reading an expert import file (专家批量导入): CSV with English or Chinese headers, UTF-8 or GB18030. Pure.

Spreadsheets saved in mainland China are often GB18030 (Excel's "CSV" on a Chinese Windows), so when the bytes
are not UTF-8 they are read as GB18030 rather than refused.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from core.errors import Unprocessable

MAX_ROWS = 10_000

# header as written in the file -> field of expert_pool.profile
HEADERS = {
    "name": "name", "姓名": "name",
    "id_card_no": "id_card_no", "身份证号": "id_card_no", "身份证号码": "id_card_no",
    "phone": "phone", "手机": "phone", "手机号": "phone", "手机号码": "phone",
    "province_code": "province_code", "省份代码": "province_code",
    "city_code": "city_code", "城市代码": "city_code",
    "employer_id": "employer_id",
    "employer_name": "employer_name", "工作单位": "employer_name",
    "employer_credit_code": "employer_credit_code", "统一社会信用代码": "employer_credit_code",
    "单位统一社会信用代码": "employer_credit_code",
    "category": "category", "类别": "category",
    "title": "title", "职称": "title",
    "specialties": "specialties", "专业": "specialties", "专业代码": "specialties",
    "username": "username", "账号": "username",
}
REQUIRED = ("name", "id_card_no", "phone", "province_code", "city_code", "category", "specialties")


@dataclass(frozen=True)
class CsvRow:
    """One data row: its line number in the file (the header is line 1) and its fields by profile name."""

    line: int
    fields: dict[str, str]
    extra_cells: int = 0   # cells beyond the header's columns: the row is refused, its data is shifted


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM), else GB18030."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as err:
        raise Unprocessable("the file is neither UTF-8 nor GB18030 text", code="csv_encoding") from err


def unescape(cell: str) -> str:
    """A cell that the export neutralised ('=..., '+..., see csv_export) back to its text."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@", "\t", "\r") else cell


def read_rows(data: bytes, *, max_rows: int = MAX_ROWS) -> list[CsvRow]:
    """The data rows of an import file; the whole file is refused only when its header or size is wrong."""
    text = decode(data)
    if "\x00" in text:
        # no text column can hold it, and no spreadsheet writes it: a binary file, or a crafted one
        raise Unprocessable("the file contains NUL characters; CSV text expected", code="csv_nul_character",
                            details={"line": text.count("\n", 0, text.index("\x00")) + 1})
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration as err:
        raise Unprocessable("the file is empty; a header row is expected", code="csv_empty") from err
    except csv.Error as err:
        raise Unprocessable(f"the header row cannot be read: {err}", code="csv_malformed") from err
    names = [h.strip() for h in header]
    unknown = [h for h in names if h not in HEADERS]
    fields = [HEADERS.get(h) for h in names]
    missing = [f for f in REQUIRED if f not in fields]
    duplicated = sorted({f for f in fields if f is not None and fields.count(f) > 1})
    if unknown or missing or duplicated:
        raise Unprocessable("the header row does not match the import format", code="csv_header",
                            details={"unknown": unknown, "missing": missing, "duplicated": duplicated,
                                     "expected": sorted(set(HEADERS.values()))})
    rows: list[CsvRow] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank lines, common at the end of exported sheets
            if len(rows) >= max_rows:
                raise Unprocessable(f"at most {max_rows} rows per file", code="csv_too_many_rows",
                                    details={"max_rows": max_rows})
            padded = cells + [""] * (len(fields) - len(cells))
            row = {f: unescape(padded[i].strip()) for i, f in enumerate(fields) if f is not None}
            rows.append(CsvRow(line=reader.line_num, fields=row, extra_cells=max(0, len(cells) - len(fields))))
    except csv.Error as err:
        raise Unprocessable(f"line {reader.line_num} cannot be read: {err}", code="csv_malformed",
                            details={"line": reader.line_num}) from err
    if not rows:
        raise Unprocessable("the file has a header but no rows", code="csv_empty")
    return rows
