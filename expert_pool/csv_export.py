"""Writing the expert pool as CSV (专家库导出), in the import's own format, safe to open in a spreadsheet. Pure.

A cell that begins with `=`, `+`, `-` or `@` (or a tab or carriage return before one) is a formula to Excel, WPS
and LibreOffice: a name imported as `=HYPERLINK(...)` would run when an administrator opens the export (CSV
injection, OWASP). Such cells are written with a leading apostrophe, which spreadsheets show as text and the
import (csv_import.unescape) takes off again, so an export imports back to the same data.
"""
from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# the import's English headers, in the order the export writes them (csv_import.HEADERS reads each back)
COLUMNS = ("name", "id_card_no", "phone", "province_code", "city_code", "category", "title", "specialties",
           "employer_name", "employer_credit_code")


def neutralise(cell: str) -> str:
    """The cell as a spreadsheet shows it without evaluating it."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def write_rows(rows: Iterable[Sequence[str]]) -> bytes:
    """UTF-8 CSV with a BOM (so Excel reads the Chinese text), header first, every cell neutralised."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([neutralise(c) for c in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
