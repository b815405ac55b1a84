"""Personal data of experts: the resident ID card number (居民身份证号码), the mobile number, and their masks.

Pure. The ID card number follows GB 11643-1999: six digits of the issuing region, the birth date as YYYYMMDD,
a three-digit sequence and a check character computed by ISO 7064 MOD 11-2.
"""
from __future__ import annotations

import re
from datetime import date

from core.errors import Unprocessable

ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK = "10X98765432"  # indexed by the weighted sum mod 11
_ID_CARD_RE = re.compile(r"^[1-9]\d{5}(\d{8})\d{3}[0-9X]$")
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def id_card_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the check character needs exactly 17 digits")
    return ID_CARD_CHECK[sum(int(d) * w for d, w in zip(first17, ID_CARD_WEIGHTS)) % 11]


def id_card_problem(number: str) -> str | None:
    """Why `number` is not a valid 18-character ID card number, or None when it is."""
    m = _ID_CARD_RE.match(number)
    if m is None:
        return "must be 17 digits followed by a digit or X"
    birth = m.group(1)
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        return f"holds an impossible birth date {birth}"
    if born.year < 1900:
        return f"holds an implausible birth year {born.year}"
    if id_card_check_char(number[:17]) != number[17]:
        return "has a wrong check character"
    return None


def normalise_id_card(number: str) -> str:
    """Strip blanks and upper-case a trailing x; refuse with `invalid_id_card` unless it is valid."""
    cleaned = re.sub(r"\s+", "", number or "").upper()
    problem = id_card_problem(cleaned)
    if problem:
        raise Unprocessable(f"the ID card number {problem}", code="invalid_id_card", details={"field": "id_card_no"})
    return cleaned


def normalise_phone(number: str) -> str:
    """A mainland mobile number of 11 digits (an optional +86 and separators are removed)."""
    cleaned = re.sub(r"[\s-]+", "", number or "")
    if cleaned.startswith("+86"):
        cleaned = cleaned[3:]
    if not _MOBILE_RE.match(cleaned):
        raise Unprocessable("the phone must be an 11-digit mainland mobile number", code="invalid_phone",
                            details={"field": "phone"})
    return cleaned


def mask_id_card(number: str) -> str:
    """Keep the first three and last four characters, e.g. 440***********123X."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_phone(number: str) -> str:
    """Keep the first three and last four digits, e.g. 138****5678."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
