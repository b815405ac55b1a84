"""Keyset cursors of the public listing and the OCDS release feed: opaque, URL-safe, bound to their sort."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from core.errors import BadRequest


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
