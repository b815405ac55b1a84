"""An expert's registration data (专家入库信息) checked field by field. Pure.

One checker serves both the admin's JSON form and each row of a CSV import, so the two can never disagree
about what a valid expert is. It reports every problem it finds, not only the first, because an import report
should let the admin fix a row in one go.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from core.errors import Unprocessable
from core.identity_rules import normalise_uscc
from expert_pool.personal import normalise_id_card, normalise_phone
from expert_pool.regions import check_expert_region
from expert_pool.taxonomy import Taxonomy

CATEGORIES = {"technical": "technical", "economic": "economic", "技术": "technical", "经济": "economic"}
MAX_SPECIALTIES = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one field."""

    field: str
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class ExpertProfile:
    """A checked expert, ready to be stored; the employer and account are named, not yet resolved."""

    name: str
    id_card_no: str
    phone: str
    province_code: str
    city_code: str
    category: str
    title: str
    specialties: tuple[str, ...]
    employer_id: str | None = None            # O-XXXXXX of an existing organisation
    employer_name: str | None = None          # or the employer by name and social credit code
    employer_credit_code: str | None = None
    username: str | None = None               # an existing account with the expert role to link


class ProfileRefused(Unprocessable):
    """The expert's data has problems; `details.problems` lists them all."""

    code = "invalid_expert"


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return value.strip() if isinstance(value, str) else ""


def _specialties(value: Any) -> list[str]:
    if isinstance(value, str):
        for sep in ("；", "|", ",", "，", " "):
            value = value.replace(sep, ";")
        return [v.strip().upper() for v in value.split(";") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [v.strip().upper() for v in value if isinstance(v, str) and v.strip()]
    return []


def check_profile(raw: Mapping[str, Any], taxonomy: Taxonomy) -> tuple[ExpertProfile | None, list[Problem]]:
    """Check every field of one expert; returns the profile when there is no problem, else the problems."""
    problems: list[Problem] = []

    def refuse(field: str, code: str, message: str) -> None:
        problems.append(Problem(field, code, message))

    name = _text(raw, "name")
    if not 2 <= len(name) <= 50:
        refuse("name", "invalid_name", "the name must have 2 to 50 characters")
    id_card = phone = ""
    try:
        id_card = normalise_id_card(_text(raw, "id_card_no"))
    except Unprocessable as err:
        refuse("id_card_no", err.code, err.message)
    try:
        phone = normalise_phone(_text(raw, "phone"))
    except Unprocessable as err:
        refuse("phone", err.code, err.message)
    province, city = _text(raw, "province_code"), _text(raw, "city_code")
    try:
        check_expert_region(province, city)
    except Unprocessable as err:
        refuse(str(err.details.get("field", "city_code")), err.code, err.message)
    category = CATEGORIES.get(_text(raw, "category").lower())
    if category is None:
        refuse("category", "invalid_category", "the category must be technical (技术) or economic (经济)")
    title = _text(raw, "title")
    if len(title) > 50:
        refuse("title", "invalid_title", "the title may have at most 50 characters")
    codes = _specialties(raw.get("specialties"))
    if not codes:
        refuse("specialties", "no_specialties", "an expert needs at least one specialty code")
    elif len(codes) > MAX_SPECIALTIES or len(set(codes)) != len(codes):
        refuse("specialties", "invalid_specialties", f"list 1 to {MAX_SPECIALTIES} distinct specialty codes")
    unknown = [c for c in codes if c not in taxonomy]
    if unknown:
        refuse("specialties", "unknown_specialty", f"unknown specialty codes: {', '.join(unknown)}")
    not_leaves = [c for c in codes if c in taxonomy and not taxonomy.is_leaf(c)]
    if not_leaves:
        refuse("specialties", "specialty_not_leaf",
               f"experts register on leaf codes; {', '.join(not_leaves)} have codes below them")
    employer_id = _text(raw, "employer_id") or None
    employer_name = _text(raw, "employer_name") or None
    credit = _text(raw, "employer_credit_code") or None
    if credit is not None:
        try:
            credit = normalise_uscc(credit)
        except Unprocessable as err:
            refuse("employer_credit_code", err.code, err.message)
        if employer_name is None or not 2 <= len(employer_name) <= 200:
            refuse("employer_name", "invalid_employer", "an employer given by credit code needs its name")
    elif employer_name is not None and employer_id is None:
        refuse("employer_credit_code", "invalid_employer",
               "an employer given by name needs its unified social credit code")
    username = _text(raw, "username") or None
    if problems:
        return None, problems
    assert category is not None
    return ExpertProfile(name=name, id_card_no=id_card, phone=phone, province_code=province, city_code=city,
                         category=category, title=title, specialties=tuple(codes), employer_id=employer_id,
                         employer_name=employer_name, employer_credit_code=credit, username=username), []


def require_profile(raw: Mapping[str, Any], taxonomy: Taxonomy) -> ExpertProfile:
    """The checked profile, or ProfileRefused naming the first problem's code and listing them all."""
    profile, problems = check_profile(raw, taxonomy)
    if profile is None:
        first = problems[0]
        raise ProfileRefused(f"{first.field}: {first.message}", code=first.code,
                             details={"problems": [p.to_json() for p in problems]})
    return profile
