"""The public listing (GET /api/v1/tenders) and the OCDS release feed's walk by last update: keyset pages on
plain SQL over the search-term GIN index."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, Unprocessable
from trading.codes import load_categories
from trading.lifecycle import TenderStatus, as_status
from trading.listing import search_terms
from trading.listing.cursors import Cursor, decode_cursor, encode_cursor
from trading.listing.search_terms import cjk_phrases
from trading.models import Tender

PAGE_MAX = 100

# ---- listing -------------------------------------------------------------------------------------------------

SORTS = ("deadline", "published")


@dataclass(frozen=True)
class ListingFilter:
    """The public listing's filters (all optional)."""

    q: str | None = None
    category: str | None = None
    region: str | None = None
    status: str | None = None
    budget_min: Decimal | None = None
    budget_max: Decimal | None = None
    deadline_from: datetime | None = None
    deadline_to: datetime | None = None
    sort: str = "deadline"
    cursor: str | None = None
    limit: int = 20


# the text a phrase is looked for in: what the search terms index (search_terms.tender_terms), lot titles too
PHRASE_HAYSTACK = ("concat_ws(' ', t.title, t.title_en, t.description, o.name, "
                   "(SELECT string_agg(l.title, ' ') FROM lot l WHERE l.tender_id = t.id))")

LIST_COLUMNS = ("t.id", "t.code", "t.title", "t.title_en", "t.status", "t.family", "t.subtype", "t.method",
                "t.region_code", "t.budget", "t.currency", "t.published_at", "t.clarification_end_at", "t.bid_deadline_at",
                "t.opening_at", "o.name AS tenderer_name")


def listing_sql(f: ListingFilter) -> tuple[str, list[Any]]:
    """The SQL and positional arguments behind GET /api/v1/tenders (also run bare by bench/listing.py).

    Plain asyncpg SQL rather than an ORM statement: this is the platform's hottest public read, and building and
    compiling a statement per request cost more than the query itself.
    """
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["t.status <> 'draft'"]
    if f.q:
        terms = search_terms.query_terms(f.q)
        if terms:
            where.append(f"t.search_terms @> {arg(terms)}::text[]")  # on the GIN index
        for phrase in cjk_phrases(f.q):  # bigrams found apart are not the phrase: re-check it as a substring
            where.append(f"strpos({PHRASE_HAYSTACK}, {arg(phrase)}) > 0")
    if f.category:
        if "-" in f.category:
            load_categories().subtype(f.category)
            where.append(f"t.subtype = {arg(f.category)}")
        else:
            load_categories().family(f.category)
            where.append(f"t.family = {arg(f.category)}")
    if f.region:
        where.append(f"t.region_code = {arg(f.region)}")
    if f.status:
        status = as_status(f.status)
        if status is TenderStatus.DRAFT:
            raise Unprocessable("drafts are not public", code="status_not_public", details={"status": "draft"})
        where.append(f"t.status = {arg(status.value)}")
    if f.budget_min is not None:
        where.append(f"t.budget >= {arg(f.budget_min)}")
    if f.budget_max is not None:
        where.append(f"t.budget <= {arg(f.budget_max)}")
    if f.deadline_from is not None:
        where.append(f"t.bid_deadline_at >= {arg(f.deadline_from)}")
    if f.deadline_to is not None:
        where.append(f"t.bid_deadline_at <= {arg(f.deadline_to)}")
    if f.sort not in SORTS:
        raise Unprocessable("sort is deadline or published", code="invalid_sort", details={"allowed": list(SORTS)})
    column, direction, compare = ("t.bid_deadline_at", "ASC", ">") if f.sort == "deadline" else \
        ("t.published_at", "DESC", "<")
    if f.cursor:
        cur = decode_cursor(f.cursor, f.sort)
        try:
            key = datetime.fromisoformat(cur.key)
        except ValueError as err:
            raise BadRequest("the cursor is not one this listing issued", code="invalid_cursor") from err
        where.append(f"({column}, t.id) {compare} ({arg(key)}, {arg(cur.id)})")
    limit = min(max(f.limit, 1), PAGE_MAX)
    sql = (f"SELECT {', '.join(LIST_COLUMNS)} FROM tender t JOIN organisation o ON o.id = t.tenderer_id "
           f"WHERE {' AND '.join(where)} ORDER BY {column} {direction}, t.id {direction} LIMIT {arg(limit + 1)}")
    return sql, args


async def list_tenders(db: Any, f: ListingFilter) -> tuple[list[Any], str | None]:
    """One page of public tenders and the cursor of the next page (None on the last); `db` is an asyncpg pool
    or connection."""
    sql, args = listing_sql(f)
    rows = await db.fetch(sql, *args)
    limit = min(max(f.limit, 1), PAGE_MAX)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        key = last["bid_deadline_at"] if f.sort == "deadline" else last["published_at"]
        next_cursor = encode_cursor(Cursor(f.sort, key.isoformat(), last["id"]))
    return list(rows), next_cursor


async def latest_published(db: Any, limit: int = 50) -> list[Any]:
    """The newest public tenders by publication time, for the Atom feed."""
    rows, _ = await list_tenders(db, ListingFilter(sort="published", limit=limit))
    return rows


async def tenders_updated(session: AsyncSession, *, since: datetime | None, until: datetime | None,
                          after: tuple[datetime, int] | None, limit: int) -> list[Tender]:
    """Public tenders by last update (oldest first), for the OCDS release feed."""
    conditions = [Tender.status != TenderStatus.DRAFT.value]
    if since is not None:
        conditions.append(Tender.updated_at >= since)
    if until is not None:
        conditions.append(Tender.updated_at < until)
    if after is not None:
        conditions.append(tuple_(Tender.updated_at, Tender.id) > tuple_(*after))
    rows = await session.execute(select(Tender).where(*conditions).order_by(Tender.updated_at, Tender.id)
                                 .limit(limit + 1))
    return list(rows.scalars())


