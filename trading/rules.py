"""Bid form (投标函 / 开标一览表) validation: price, duration and declared values. Pure, no I/O.

The form travels inside the sealed bid, so the authoritative check runs at the opening on the decrypted form
(`parse_bid_form_json`); clients can run the same check before sealing.

Number policy: prices are Decimal end to end. JSON must be parsed with `parse_float=Decimal` (as
`parse_bid_form_json` does); a Python float reaching these functions has already been rounded, so it is refused
rather than guessed at. Accepted inputs are Decimal, int and plain decimal strings such as "1234.50".
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from core.errors import Unprocessable

log = logging.getLogger(__name__)

# Numeric(18, 2): 16 integer digits and 2 decimals.
PRICE_MAX = Decimal("9999999999999999.99")
CENT = Decimal("0.01")
_PRICE_TEXT_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")

DURATION_MAX_DAYS = 3650  # ten years: longer is a typo, not a schedule
DECLARED_MAX_ENTRIES = 50
DECLARED_KEY_MAX = 64
DECLARED_VALUE_MAX = 500


def _price_error(reason: str, value: Any) -> Unprocessable:
    return Unprocessable(f"invalid price: {reason}", code="invalid_price",
                         details={"field": "price", "reason": reason, "value": str(value)[:40]})


def parse_price(value: Any) -> Decimal:
    """A bid price in CNY as Decimal quantized to cents; refuses floats, non-numbers, <= 0 and > Numeric(18,2)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise _price_error("send the price as a decimal string or integer, not a binary float", value)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if not _PRICE_TEXT_RE.match(text):
            raise _price_error("not a plain decimal number", value)
        try:
            amount = Decimal(text)
        except InvalidOperation as err:  # the pattern should make this unreachable; keep the refusal honest
            raise _price_error("not a plain decimal number", value) from err
    else:
        raise _price_error("not a number", value)
    if not amount.is_finite():
        raise _price_error("not a finite number", value)
    if amount <= 0:
        raise _price_error("must be greater than zero", value)
    if amount > PRICE_MAX:  # before quantize, which overflows the decimal context on absurd values
        raise _price_error("larger than 9999999999999999.99", value)
    if amount != amount.quantize(CENT, rounding="ROUND_DOWN"):
        raise _price_error("at most 2 decimal places", value)
    return amount.quantize(CENT)


def parse_duration_days(value: Any) -> int:
    """A delivery or construction period (工期/交货期) in whole days, 1 to 3650."""
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= DURATION_MAX_DAYS:
        raise Unprocessable("duration must be a whole number of days from 1 to 3650", code="invalid_duration",
                            details={"field": "duration_days", "value": str(value)[:40]})
    return value


def parse_declared_values(value: Any) -> dict[str, str]:
    """Other declared items (e.g. 质量标准, 项目经理): a small dict of short strings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Unprocessable("declared values must be an object of strings", code="invalid_declared_values",
                            details={"field": "declared"})
    if len(value) > DECLARED_MAX_ENTRIES:
        raise Unprocessable(f"at most {DECLARED_MAX_ENTRIES} declared values", code="invalid_declared_values",
                            details={"field": "declared", "count": len(value)})
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip() or len(key) > DECLARED_KEY_MAX:
            raise Unprocessable(f"declared value names must be 1 to {DECLARED_KEY_MAX} characters",
                                code="invalid_declared_values", details={"field": "declared", "key": str(key)[:80]})
        if not isinstance(item, str) or len(item) > DECLARED_VALUE_MAX:
            raise Unprocessable(f"declared values must be strings of at most {DECLARED_VALUE_MAX} characters",
                                code="invalid_declared_values", details={"field": "declared", "key": key})
        out[key.strip()] = item.strip()
    return out


@dataclass(frozen=True)
class BidForm:
    """The priced part of a bid as read out at the opening (开标一览表)."""

    price: Decimal
    duration_days: int
    declared: dict[str, str] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready form with the price as a decimal string, so no float ever touches it."""
        return {"price": format(self.price, "f"), "duration_days": self.duration_days, "declared": dict(self.declared)}


def validate_bid_form(raw: Mapping[str, Any]) -> BidForm:
    """Check a bid form given as a mapping with price, duration_days and optional declared."""
    if not isinstance(raw, Mapping):
        raise Unprocessable("the bid form must be an object", code="invalid_bid_form")
    unknown = sorted(set(raw) - {"price", "duration_days", "declared"})
    if unknown:
        raise Unprocessable("unknown fields in the bid form", code="invalid_bid_form", details={"unknown": unknown})
    for required in ("price", "duration_days"):
        if required not in raw:
            raise Unprocessable(f"the bid form needs {required}", code="invalid_bid_form",
                                details={"missing": required})
    return BidForm(price=parse_price(raw["price"]), duration_days=parse_duration_days(raw["duration_days"]),
                   declared=parse_declared_values(raw.get("declared")))


def parse_bid_form_json(data: bytes | str) -> BidForm:
    """Parse and check a bid form from JSON, reading every JSON number with a fraction as Decimal."""
    try:
        raw = json.loads(data, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise Unprocessable("the bid form is not valid JSON", code="invalid_bid_form") from err
    return validate_bid_form(raw)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")
