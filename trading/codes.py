"""Trading categories (交易类别) and tender codes such as ZS-2026-ZFCG-00042. Pure, no I/O beyond package data."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

from core.errors import NotFound, Unprocessable

log = logging.getLogger(__name__)

# The yearbook counts four trading families split into 27 sub-types; the loader holds the data to that shape.
EXPECTED_FAMILIES = ("FJSZ", "TDKY", "ZFCG", "GYCQ")
EXPECTED_SUBTYPE_COUNT = 27
OCDS_CATEGORIES = ("goods", "works", "services")

TENDER_SEQ_MAX = 99_999
TENDER_YEAR_RANGE = (2000, 2099)
_REGION_RE = re.compile(r"^[A-Z0-9]{2,8}$")


@dataclass(frozen=True)
class SubType:
    """One of the 27 trading sub-types, e.g. ZFCG-HW 货物类."""

    code: str
    family: str
    zh: str
    en: str
    # goods / works / services for OCDS mainProcurementCategory; None where the deal is a sale or lease
    # (land grants, equity transfers), which OCDS procurement categories do not describe.
    ocds_category: str | None


@dataclass(frozen=True)
class TradingFamily:
    """One of the four trading families (交易大类)."""

    code: str
    zh: str
    en: str
    subtypes: tuple[SubType, ...]


@dataclass(frozen=True)
class Catalogue:
    """The whole category tree with lookups by code."""

    families: tuple[TradingFamily, ...]

    def family(self, code: str) -> TradingFamily:
        """The family with this code, or NotFound(unknown_family)."""
        for fam in self.families:
            if fam.code == code:
                return fam
        raise NotFound(f"unknown trading family {code!r}", code="unknown_family",
                       details={"family": code, "allowed": [f.code for f in self.families]})

    def subtype(self, code: str) -> SubType:
        """The sub-type with this code, or NotFound(unknown_subtype)."""
        for fam in self.families:
            for sub in fam.subtypes:
                if sub.code == code:
                    return sub
        raise NotFound(f"unknown trading sub-type {code!r}", code="unknown_subtype", details={"subtype": code})

    def all_subtypes(self) -> tuple[SubType, ...]:
        """Every sub-type, family by family, in catalogue order."""
        return tuple(sub for fam in self.families for sub in fam.subtypes)

    def check_pair(self, family: str, subtype: str) -> SubType:
        """The sub-type, after checking it belongs to the family (refuses ZFCG with FJSZ-SG, say)."""
        fam = self.family(family)
        sub = self.subtype(subtype)
        if sub.family != fam.code:
            raise Unprocessable(f"sub-type {subtype} does not belong to family {family}", code="subtype_mismatch",
                                details={"family": family, "subtype": subtype,
                                         "allowed": [s.code for s in fam.subtypes]})
        return sub


def parse_catalogue(data: dict) -> Catalogue:
    """Build and check a catalogue from its JSON form; a malformed file is a packaging bug, so ValueError."""
    families = []
    seen: set[str] = set()
    for raw_family in data["families"]:
        fam_code = raw_family["code"]
        subtypes = []
        for raw in raw_family["subtypes"]:
            code = raw["code"]
            if not code.startswith(fam_code + "-"):
                raise ValueError(f"sub-type {code} is not prefixed by its family {fam_code}")
            if raw.get("ocds_category") not in (*OCDS_CATEGORIES, None):
                raise ValueError(f"sub-type {code} has an unknown OCDS category {raw.get('ocds_category')!r}")
            if not raw["zh"] or not raw["en"]:
                raise ValueError(f"sub-type {code} needs both a Chinese and an English name")
            subtypes.append(SubType(code=code, family=fam_code, zh=raw["zh"], en=raw["en"],
                                    ocds_category=raw.get("ocds_category")))
        for code in [fam_code, *(s.code for s in subtypes)]:
            if code in seen:
                raise ValueError(f"category code {code} appears twice")
            seen.add(code)
        families.append(TradingFamily(code=fam_code, zh=raw_family["zh"], en=raw_family["en"],
                                      subtypes=tuple(subtypes)))
    catalogue = Catalogue(families=tuple(families))
    if tuple(f.code for f in catalogue.families) != EXPECTED_FAMILIES:
        raise ValueError(f"expected families {EXPECTED_FAMILIES}, got {[f.code for f in catalogue.families]}")
    if len(catalogue.all_subtypes()) != EXPECTED_SUBTYPE_COUNT:
        raise ValueError(f"expected {EXPECTED_SUBTYPE_COUNT} sub-types, got {len(catalogue.all_subtypes())}")
    return catalogue


@lru_cache(maxsize=1)
def load_categories() -> Catalogue:
    """The packaged catalogue (trading/data/categories.json), read once."""
    text = resources.files("trading").joinpath("data/categories.json").read_text(encoding="utf-8")
    return parse_catalogue(json.loads(text))


class TenderCode(NamedTuple):
    """The parts of a tender code (项目编号)."""

    region: str
    year: int
    family: str
    seq: int

    def __str__(self) -> str:
        return f"{self.region}-{self.year:04d}-{self.family}-{self.seq:05d}"


def tender_code(region_code: str, year: int, family: str, seq: int) -> str:
    """The public tender code, e.g. tender_code("ZS", 2026, "ZFCG", 42) == "ZS-2026-ZFCG-00042"."""
    problems: dict[str, str] = {}
    if not isinstance(region_code, str) or not _REGION_RE.match(region_code):
        problems["region_code"] = "2 to 8 upper-case letters or digits"
    if isinstance(year, bool) or not isinstance(year, int) or not TENDER_YEAR_RANGE[0] <= year <= TENDER_YEAR_RANGE[1]:
        problems["year"] = f"a year from {TENDER_YEAR_RANGE[0]} to {TENDER_YEAR_RANGE[1]}"
    if not isinstance(family, str) or family not in EXPECTED_FAMILIES:
        problems["family"] = "one of " + ", ".join(EXPECTED_FAMILIES)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= TENDER_SEQ_MAX:
        problems["seq"] = f"a sequence number from 1 to {TENDER_SEQ_MAX}"
    if problems:
        raise Unprocessable("invalid tender code parts", code="invalid_tender_code", details=problems)
    return str(TenderCode(region_code, year, family, seq))
