"""Tender rules with no I/O: the evaluation method (评标办法), document types by magic bytes, listing cursors.

The evaluation method is stored on the tender as JSON (money and points as decimal strings) in this shape, which
the evaluation side reads back with `parse_evaluation`:

    {"method": "comprehensive",                       # 综合评估法
     "criteria": [{"name": "技术方案", "max": "40", "objective": false}, ...],
     "price_weight": "30",                            # points of the price score
     "price_formula": {"rule": "lowest_price"}        # benchmark = lowest valid price, score = b / p × weight
                    | {"rule": "mean_benchmark", "k": "0.95", "e": "1", "drop_extremes": true},
     "aggregation": "mean" | "trimmed_mean",          # trimmed mean needs 7+ experts (ALGORITHMS.md §2)
     "decimals": 2 | 3}
    {"method": "lowest_price"}                        # 经评审的最低投标价法
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import BadRequest, Unprocessable, UnsupportedMediaType
from trading.search_terms import is_cjk

log = logging.getLogger(__name__)

TOTAL_POINTS = Decimal("100")
MAX_CRITERIA = 40
CRITERION_NAME_MAX = 100
# the mean-benchmark rule multiplies the mean by K; outside this band the "benchmark" is no longer the market
K_RANGE = (Decimal("0.80"), Decimal("1.20"))


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise Unprocessable(f"{field} must be a decimal number", code="invalid_evaluation",
                            details={"field": field})
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise Unprocessable(f"{field} must be a decimal number", code="invalid_evaluation",
                            details={"field": field, "value": str(value)[:40]})
    if number != number.quantize(Decimal("0.01"), rounding="ROUND_DOWN"):
        raise Unprocessable(f"{field} has at most 2 decimal places", code="invalid_evaluation",
                            details={"field": field, "value": str(value)[:40]})
    return number


def _refuse(message: str, **details: Any) -> Unprocessable:
    return Unprocessable(message, code="invalid_evaluation", details=details)


def parse_evaluation(data: Any) -> dict[str, Any]:
    """Check an evaluation method and return its stored form; criteria maxima plus price weight must make 100."""
    if not isinstance(data, dict):
        raise _refuse("the evaluation method must be an object", field="evaluation")
    method = data.get("method")
    if method == "lowest_price":
        return {"method": "lowest_price"}
    if method != "comprehensive":
        raise _refuse("evaluation method is comprehensive or lowest_price", field="evaluation.method",
                      allowed=["comprehensive", "lowest_price"])
    raw_criteria = data.get("criteria")
    if not isinstance(raw_criteria, list) or not raw_criteria:
        raise _refuse("comprehensive scoring needs at least one criterion", field="evaluation.criteria")
    if len(raw_criteria) > MAX_CRITERIA:
        raise _refuse(f"at most {MAX_CRITERIA} criteria", field="evaluation.criteria")
    criteria, seen = [], set()
    for i, raw in enumerate(raw_criteria):
        where = f"evaluation.criteria.{i}"
        if not isinstance(raw, dict):
            raise _refuse("a criterion is an object with name, max and objective", field=where)
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > CRITERION_NAME_MAX:
            raise _refuse("a criterion needs a name of 1 to 100 characters", field=f"{where}.name")
        if name.strip() in seen:
            raise _refuse(f"criterion {name!r} appears twice", field=f"{where}.name")
        seen.add(name.strip())
        maximum = _decimal(raw.get("max"), f"{where}.max")
        if maximum <= 0:
            raise _refuse("a criterion's maximum must be above zero", field=f"{where}.max")
        objective = raw.get("objective", False)
        if not isinstance(objective, bool):
            raise _refuse("objective is true or false", field=f"{where}.objective")
        criteria.append({"name": name.strip(), "max": str(maximum), "objective": objective})
    weight = _decimal(data.get("price_weight"), "evaluation.price_weight")
    if weight <= 0:
        raise _refuse("comprehensive scoring gives the price a weight above zero", field="evaluation.price_weight")
    total = sum((Decimal(c["max"]) for c in criteria), weight)
    if total != TOTAL_POINTS:
        raise Unprocessable(f"criteria maxima plus the price weight make {total}, not 100",
                            code="evaluation_total_not_100",
                            details={"field": "evaluation", "total": str(total), "expected": "100"})
    formula = _price_formula(data.get("price_formula") or {"rule": "lowest_price"})
    aggregation = data.get("aggregation", "mean")
    if aggregation not in ("mean", "trimmed_mean"):
        raise _refuse("aggregation is mean or trimmed_mean", field="evaluation.aggregation")
    decimals = data.get("decimals", 2)
    if decimals not in (2, 3) or isinstance(decimals, bool):
        raise _refuse("scores keep 2 or 3 decimal places", field="evaluation.decimals")
    return {"method": "comprehensive", "criteria": criteria, "price_weight": str(weight),
            "price_formula": formula, "aggregation": aggregation, "decimals": decimals}


def _price_formula(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _refuse("the price formula is an object", field="evaluation.price_formula")
    rule = raw.get("rule")
    if rule == "lowest_price":
        return {"rule": "lowest_price"}
    if rule != "mean_benchmark":
        raise _refuse("price formula rule is lowest_price or mean_benchmark", field="evaluation.price_formula.rule",
                      allowed=["lowest_price", "mean_benchmark"])
    k = _decimal(raw.get("k", "1"), "evaluation.price_formula.k")
    if not K_RANGE[0] <= k <= K_RANGE[1]:
        raise _refuse("K lies between 0.80 and 1.20", field="evaluation.price_formula.k")
    e = _decimal(raw.get("e"), "evaluation.price_formula.e")
    if e <= 0:
        raise _refuse("E, the points lost per 1% deviation, must be above zero", field="evaluation.price_formula.e")
    drop = raw.get("drop_extremes", False)
    if not isinstance(drop, bool):
        raise _refuse("drop_extremes is true or false", field="evaluation.price_formula.drop_extremes")
    return {"rule": "mean_benchmark", "k": str(k), "e": str(e), "drop_extremes": drop}


# ---- documents ---------------------------------------------------------------------------------------------

SNIFF_BYTES = 8
_OOXML = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ALLOWED_DOCUMENT_TYPES = ("PDF", "ZIP (docx, xlsx)", "PNG", "JPEG")


def sniff_document_type(head: bytes, filename: str) -> str:
    """The media type of an upload judged by its first bytes (the name only tells docx from xlsx from zip).

    Refuses everything but PDF, ZIP containers, PNG and JPEG with 415 unsupported_document_type.
    """
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"PK\x03\x04"):
        suffix = filename[filename.rfind("."):].lower() if "." in filename else ""
        return _OOXML.get(suffix, "application/zip")
    raise UnsupportedMediaType("documents must be PDF, ZIP (docx, xlsx), PNG or JPEG", code="unsupported_document_type",
                               details={"allowed": list(ALLOWED_DOCUMENT_TYPES), "filename": filename})


def clean_filename(raw: str | None) -> str:
    """A display filename without directories or control characters; refuses an empty one."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name or name in (".", ".."):
        raise BadRequest("give the file's name in ?filename= or the X-Filename header", code="filename_required")
    return name[:255]


# ---- search ------------------------------------------------------------------------------------------------

def cjk_phrases(q: str | None) -> list[str]:
    """The query's runs of three or more CJK characters, which the listing re-checks as substrings.

    Bigram containment can over-match such a run (中山路 finds "中山市…山路"); one or two characters cannot.
    """
    norm = unicodedata.normalize("NFKC", q or "")
    phrases, run = [], ""
    for char in norm + " ":
        if is_cjk(char):
            run += char
            continue
        if len(run) >= 3:
            phrases.append(run)
        run = ""
    return list(dict.fromkeys(phrases))


# ---- listing cursors ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cursor:
    """Where a listing page ended: the sort, the sort key of the last row and its id."""

    sort: str
    key: str
    id: int


def encode_cursor(cursor: Cursor) -> str:
    """An opaque, URL-safe token for the next page."""
    raw = json.dumps([cursor.sort, cursor.key, cursor.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: str) -> Cursor:
    """Read a token from encode_cursor, refusing a damaged one or one made for another sort order."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        got_sort, key, row_id = json.loads(raw)
        if not isinstance(key, str) or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError("bad cursor fields")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as err:
        raise BadRequest("the cursor is not one this listing issued", code="invalid_cursor") from err
    if got_sort != sort:
        raise BadRequest("the cursor belongs to another sort order", code="invalid_cursor",
                         details={"cursor_sort": got_sort, "sort": sort})
    return Cursor(got_sort, key, row_id)
