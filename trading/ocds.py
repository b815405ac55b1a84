"""Open Contracting Data Standard 1.1 export: releases, release packages and record packages. Pure, no I/O.

Builders take plain snapshots and return plain dicts. Money stays `Decimal` inside those dicts (jsonschema counts
Decimal as a JSON number); serialize with `to_json`, which writes each Decimal as an exact JSON number, so a
budget of 12345678901234.56 never passes through a binary float.

Mapping choices (documented here because data users will ask):
- ocid = "<prefix>-<tender id>"; the tender id is stable from the draft on, while the code may come later.
- tender.status: draft → planning; published…candidates_published → active; awarded/complete → complete;
  cancelled → cancelled; failed (流标) → unsuccessful. Our own state goes to tender.statusDetails.
- procurementMethod: open → open, invitational → selective, competitive negotiation and inquiry → limited,
  single source → direct; the Chinese name goes to procurementMethodDetails.
- Roles: the tenderer (招标人/采购人) is buyer; the agent (招标代理) is procuringEntity, or the tenderer when
  there is no agent; bidders are tenderer; winners of active awards are supplier.
- Bidders are disclosed only once the bids are opened (开标), as the opening record is public and the list of
  bidders before it is not. Awards are disclosed only from the candidates' publicity notice (中标候选人公示);
  candidates show as pending awards, the winner as an active one. For a cancelled or failed tender the snapshot's
  opened_at / candidates_published_at say how far it got.
- Lots use the OCDS lots extension, named in each package's `extensions`.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Sequence

from core.errors import Unprocessable
from trading.codes import load_categories
from trading.lifecycle import OPENED_STATES, ProcurementMethod, TenderStatus, Timeline, as_method, as_status

log = logging.getLogger(__name__)

OCDS_VERSION = "1.1"
LOTS_EXTENSION = ("https://raw.githubusercontent.com/open-contracting-extensions/ocds_lots_extension/v1.1.5/"
                  "extension.json")
# org-id.guide's register for Chinese organisations; the unified social credit code (统一社会信用代码) has been
# the registration number there since 2015.
ORG_ID_SCHEME = "CN-SAIC"
CATEGORY_SCHEME = "BIDROOM-TRADING-CATEGORY"
_OCID_PREFIX_RE = re.compile(r"^ocds-[a-z0-9]{6}$")

S = TenderStatus
TENDER_STATUS: dict[TenderStatus, str] = {
    S.DRAFT: "planning",
    S.PUBLISHED: "active",
    S.CLOSED: "active",
    S.OPENING: "active",
    S.OPENED: "active",
    S.EVALUATING: "active",
    S.CANDIDATES_PUBLISHED: "active",
    S.AWARDED: "complete",
    S.COMPLETE: "complete",
    S.CANCELLED: "cancelled",
    S.FAILED: "unsuccessful",
}
RELEASE_TAG: dict[TenderStatus, str] = {
    S.DRAFT: "planning",
    S.PUBLISHED: "tender",
    S.CLOSED: "tenderUpdate",
    S.OPENING: "tenderUpdate",
    S.OPENED: "tenderUpdate",
    S.EVALUATING: "tenderUpdate",
    S.CANDIDATES_PUBLISHED: "award",
    S.AWARDED: "award",
    S.COMPLETE: "awardUpdate",
    S.CANCELLED: "tenderCancellation",
    S.FAILED: "tenderUpdate",
}
M = ProcurementMethod
PROCUREMENT_METHOD: dict[ProcurementMethod, tuple[str, str]] = {
    M.OPEN: ("open", "公开招标"),
    M.INVITATIONAL: ("selective", "邀请招标"),
    M.COMPETITIVE_NEGOTIATION: ("limited", "竞争性谈判"),
    M.INQUIRY: ("limited", "询价"),
    M.SINGLE_SOURCE: ("direct", "单一来源采购"),
}
# Our award states → OCDS awardStatus.
AWARD_STATUS = {"candidate": "pending", "awarded": "active", "cancelled": "cancelled", "unsuccessful": "unsuccessful"}
_RANK_TITLES = {1: "第一中标候选人", 2: "第二中标候选人", 3: "第三中标候选人"}


@dataclass(frozen=True)
class OrgRef:
    """An organisation as it appears in open data."""

    id: str
    name: str
    social_credit_code: str | None = None  # 统一社会信用代码


@dataclass(frozen=True)
class LotSnapshot:
    """A lot (标段/包) with its own budget."""

    id: str
    title: str
    budget: Decimal | None = None


@dataclass(frozen=True)
class AwardSnapshot:
    """A candidate or a winner for the tender or one lot."""

    id: str
    supplier: OrgRef
    value: Decimal
    date: datetime
    status: str = "candidate"  # candidate | awarded | cancelled | unsuccessful
    lot_id: str | None = None
    rank: int | None = None    # 1 for 第一中标候选人


@dataclass(frozen=True)
class DocumentSnapshot:
    """A published document: notice, tender documents, clarification, result notice."""

    id: str
    title: str
    url: str
    document_type: str  # OCDS documentType, e.g. tenderNotice, biddingDocuments, clarifications, awardNotice
    published_at: datetime
    format: str | None = None  # media type


@dataclass(frozen=True)
class TenderSnapshot:
    """Everything the open-data export needs to know about one tender at one moment."""

    id: str
    code: str | None
    title: str
    status: TenderStatus | str
    method: ProcurementMethod | str
    family: str
    tenderer: OrgRef
    updated_at: datetime
    subtype: str | None = None
    description: str | None = None
    budget: Decimal | None = None
    currency: str = "CNY"
    agent: OrgRef | None = None
    lots: Sequence[LotSnapshot] = ()
    timeline: Timeline | None = None
    bidders: Sequence[OrgRef] = ()      # the organisations whose bids were opened
    tenderer_count: int = 0             # organisations with a bid at the deadline, opened or still sealed
    awards: Sequence[AwardSnapshot] = ()
    documents: Sequence[DocumentSnapshot] = ()
    published_at: datetime | None = None
    opened_at: datetime | None = None  # set once the opening record (开标记录) exists
    candidates_published_at: datetime | None = None  # set once the candidates are publicly announced
    title_en: str | None = None  # the English title, as the OCDS language variation title_en


def iso(at: datetime) -> str:
    """OCDS date-time: RFC 3339 in UTC, e.g. 2026-03-01T01:00:00Z; refuses naive datetimes."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise Unprocessable("OCDS dates must carry a timezone", code="naive_datetime")
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def money(amount: Decimal, currency: str = "CNY") -> dict[str, Any]:
    """An OCDS Value; the amount stays an exact Decimal (see to_json)."""
    if isinstance(amount, float) or not isinstance(amount, (Decimal, int)):
        raise TypeError("money amounts must be Decimal or int, never float")
    amount = Decimal(amount)
    if not amount.is_finite():
        raise ValueError("money amounts must be finite")
    return {"amount": amount, "currency": currency}


def ocid(ocid_prefix: str, tender_id: str) -> str:
    """The open contracting id of a tender."""
    if not _OCID_PREFIX_RE.match(ocid_prefix):
        raise ValueError(f"an OCID prefix looks like ocds-abc123, not {ocid_prefix!r}")
    return f"{ocid_prefix}-{tender_id}"


class _Parties:
    """Collects parties in first-seen order, merging roles of an organisation that appears twice."""

    def __init__(self) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}

    def add(self, org: OrgRef, role: str) -> dict[str, str]:
        party = self._by_id.get(org.id)
        if party is None:
            party = {"id": org.id, "name": org.name, "roles": []}
            if org.social_credit_code:
                party["identifier"] = {"scheme": ORG_ID_SCHEME, "id": org.social_credit_code, "legalName": org.name}
            self._by_id[org.id] = party
        if role not in party["roles"]:
            party["roles"].append(role)
        return {"id": org.id, "name": org.name}

    def as_list(self) -> list[dict[str, Any]]:
        return list(self._by_id.values())


def _discloses_bidders(snapshot: TenderSnapshot, status: TenderStatus) -> bool:
    return status in OPENED_STATES or snapshot.opened_at is not None


def _discloses_awards(snapshot: TenderSnapshot, status: TenderStatus) -> bool:
    # Candidates are public from their publicity notice (中标候选人公示) on; before it the ranking is secret.
    return status in (S.CANDIDATES_PUBLISHED, S.AWARDED, S.COMPLETE) or snapshot.candidates_published_at is not None


def _items(snapshot: TenderSnapshot) -> list[dict[str, Any]]:
    """One item per lot (or one for the whole tender) carrying the trading category as its classification."""
    catalogue = load_categories()
    family = catalogue.family(snapshot.family)
    if snapshot.subtype:
        sub = catalogue.check_pair(snapshot.family, snapshot.subtype)
        classification = {"scheme": CATEGORY_SCHEME, "id": sub.code, "description": f"{family.zh}/{sub.zh}"}
    else:
        classification = {"scheme": CATEGORY_SCHEME, "id": family.code, "description": family.zh}
    if not snapshot.lots:
        return [{"id": "1", "description": snapshot.title, "classification": classification}]
    return [{"id": lot.id, "description": lot.title, "classification": classification, "relatedLot": lot.id}
            for lot in snapshot.lots]


def _tender(snapshot: TenderSnapshot, status: TenderStatus, parties: _Parties,
            procuring_entity: dict[str, str]) -> dict[str, Any]:
    method = as_method(snapshot.method)
    ocds_method, method_zh = PROCUREMENT_METHOD[method]
    tender: dict[str, Any] = {
        "id": snapshot.code or snapshot.id,
        "title": snapshot.title,
        "status": TENDER_STATUS[status],
        "statusDetails": status.value,
        "procuringEntity": procuring_entity,
        "procurementMethod": ocds_method,
        "procurementMethodDetails": method_zh,
        "submissionMethod": ["electronicSubmission"],
        "items": _items(snapshot),
    }
    if snapshot.title_en:
        tender["title_en"] = snapshot.title_en
    if snapshot.description:
        tender["description"] = snapshot.description
    if snapshot.subtype:
        category = load_categories().subtype(snapshot.subtype).ocds_category
        if category:
            tender["mainProcurementCategory"] = category
    if snapshot.budget is not None:
        tender["value"] = money(snapshot.budget, snapshot.currency)
    if snapshot.timeline is not None:
        t = snapshot.timeline
        tender["tenderPeriod"] = {"startDate": iso(t.published_at), "endDate": iso(t.bid_deadline)}
        tender["enquiryPeriod"] = {"startDate": iso(t.published_at), "endDate": iso(t.clarification_end)}
        tender["awardPeriod"] = {"startDate": iso(t.opening_at)}
    if snapshot.lots:
        tender["lots"] = [_lot(lot, snapshot.currency, status) for lot in snapshot.lots]
    if _discloses_bidders(snapshot, status):
        # a lot failed unopened (fewer than 3 bids, 实施条例 第44条) keeps its bidders secret; its count is public
        if snapshot.bidders:
            tender["tenderers"] = [parties.add(org, "tenderer") for org in snapshot.bidders]
        tender["numberOfTenderers"] = max(snapshot.tenderer_count, len(snapshot.bidders))
    if snapshot.documents:
        tender["documents"] = [_document(doc) for doc in snapshot.documents]
    return tender


def _lot(lot: LotSnapshot, currency: str, status: TenderStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"id": lot.id, "title": lot.title, "status": TENDER_STATUS[status]}
    if lot.budget is not None:
        out["value"] = money(lot.budget, currency)
    return out


def _document(doc: DocumentSnapshot) -> dict[str, Any]:
    out = {"id": doc.id, "documentType": doc.document_type, "title": doc.title, "url": doc.url,
           "datePublished": iso(doc.published_at), "language": "zh"}
    if doc.format:
        out["format"] = doc.format
    return out


def _award(award: AwardSnapshot, currency: str, parties: _Parties) -> dict[str, Any]:
    try:
        ocds_status = AWARD_STATUS[award.status]
    except KeyError as err:
        raise Unprocessable(f"unknown award status {award.status!r}", code="unknown_award_status",
                            details={"status": award.status, "allowed": list(AWARD_STATUS)}) from err
    role = "supplier" if ocds_status == "active" else "tenderer"
    out: dict[str, Any] = {
        "id": award.id,
        "status": ocds_status,
        "date": iso(award.date),
        "value": money(award.value, currency),
        "suppliers": [parties.add(award.supplier, role)],
    }
    if award.rank is not None:
        out["title"] = _RANK_TITLES.get(award.rank, f"第{award.rank}名中标候选人")
    if award.lot_id is not None:
        out["relatedLots"] = [award.lot_id]
    return out


def release(snapshot: TenderSnapshot, ocid_prefix: str) -> dict[str, Any]:
    """One OCDS release describing the tender as it stands in `snapshot`."""
    status = as_status(snapshot.status)
    the_ocid = ocid(ocid_prefix, snapshot.id)
    parties = _Parties()
    buyer = parties.add(snapshot.tenderer, "buyer")
    procuring = parties.add(snapshot.agent, "procuringEntity") if snapshot.agent else \
        parties.add(snapshot.tenderer, "procuringEntity")
    tender = _tender(snapshot, status, parties, procuring)
    awards = [_award(a, snapshot.currency, parties) for a in snapshot.awards] \
        if _discloses_awards(snapshot, status) else []
    stamp = snapshot.updated_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    out: dict[str, Any] = {
        "ocid": the_ocid,
        "id": f"{the_ocid}-{status.value}-{stamp}",
        "date": iso(snapshot.updated_at),
        "tag": [RELEASE_TAG[status]],
        "initiationType": "tender",
        "language": "zh",
        "parties": parties.as_list(),
        "buyer": buyer,
        "tender": tender,
    }
    if awards:
        out["awards"] = awards
    return out


def _publisher(publisher: str | dict[str, Any]) -> dict[str, Any]:
    return {"name": publisher} if isinstance(publisher, str) else dict(publisher)


def _extensions(releases: Iterable[dict[str, Any]]) -> list[str]:
    return [LOTS_EXTENSION] if any("lots" in r.get("tender", {}) for r in releases) else []


def release_package(releases: Sequence[dict[str, Any]], uri: str, published_date: datetime,
                    publisher: str | dict[str, Any], *, license_url: str | None = None) -> dict[str, Any]:
    """An OCDS release package around `releases` (one or more)."""
    if not releases:
        raise ValueError("a release package holds at least one release")
    package: dict[str, Any] = {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": iso(published_date),
        "publisher": _publisher(publisher),
        "releases": list(releases),
    }
    extensions = _extensions(releases)
    if extensions:
        package["extensions"] = extensions
    if license_url:
        package["license"] = license_url
    return package


def compiled_release(releases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The current state of one contracting process.

    Our releases are full snapshots (each restates the whole tender), so the newest release already is the
    compiled state; it is re-tagged "compiled" with its own id.
    """
    newest = max(releases, key=lambda r: r["date"])
    return {**newest, "id": f"{newest['ocid']}-compiled", "tag": ["compiled"]}


def record_package(releases_by_ocid: Iterable[Sequence[dict[str, Any]]], uri: str, published_date: datetime,
                   publisher: str | dict[str, Any], *, packages: Sequence[str] = (),
                   license_url: str | None = None) -> dict[str, Any]:
    """An OCDS record package: one record per contracting process with its releases (oldest first) embedded."""
    records = []
    all_releases: list[dict[str, Any]] = []
    for group in releases_by_ocid:
        group = sorted(group, key=lambda r: r["date"])
        if not group:
            continue
        ocids = {r["ocid"] for r in group}
        if len(ocids) != 1:
            raise ValueError(f"a record holds the releases of one ocid, got {sorted(ocids)}")
        records.append({"ocid": group[0]["ocid"], "releases": group, "compiledRelease": compiled_release(group)})
        all_releases.extend(group)
    if not records:
        raise ValueError("a record package holds at least one record")
    package: dict[str, Any] = {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": iso(published_date),
        "publisher": _publisher(publisher),
        "records": records,
    }
    if packages:
        package["packages"] = list(packages)
    extensions = _extensions(all_releases)
    if extensions:
        package["extensions"] = extensions
    if license_url:
        package["license"] = license_url
    return package


def _encode(obj: Any, out: list[str]) -> None:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError("JSON has no NaN or infinity")
        out.append(format(obj, "f"))  # plain digits, never an exponent and never via float
    elif isinstance(obj, float):
        raise TypeError("floats are not written to OCDS output; use Decimal")
    elif isinstance(obj, dict):
        out.append("{")
        for i, (key, value) in enumerate(obj.items()):
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings")
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(value, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _encode(value, out)
        out.append("]")
    else:
        out.append(json.dumps(obj, ensure_ascii=False))


def to_json(obj: Any) -> str:
    """Compact UTF-8 JSON with Decimal written as exact numbers (json.dumps cannot do this without floats)."""
    out: list[str] = []
    _encode(obj, out)
    return "".join(out)
