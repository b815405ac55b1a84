"""An Atom 1.0 feed (RFC 4287) of newly published tenders. Pure: entries in, UTF-8 XML bytes out."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence
from xml.etree import ElementTree as ET

log = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
ET.register_namespace("", ATOM_NS)


@dataclass(frozen=True)
class FeedEntry:
    """One tender notice in the feed."""

    code: str
    title: str
    url: str
    published: datetime
    updated: datetime
    summary: str
    category: str | None = None        # sub-type code, e.g. ZFCG-HW
    category_label: str | None = None  # 政府采购/货物类


def _stamp(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("Atom dates carry a timezone")
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _el(parent: ET.Element, tag: str, value: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if value is not None:
        node.text = value
    return node


def entry_id(feed_id: str, code: str) -> str:
    """A stable entry id: the feed's id with the tender code as fragment."""
    return f"{feed_id}#{code}"


def atom_feed(entries: Sequence[FeedEntry], *, feed_id: str, self_url: str, alternate_url: str, title: str,
              author: str, updated: datetime) -> bytes:
    """The feed document; `updated` is the newest entry's time (or now for an empty feed)."""
    root = ET.Element(f"{{{ATOM_NS}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "zh-CN"})
    _el(root, "id", feed_id)
    _el(root, "title", title)
    _el(root, "updated", _stamp(updated))
    _el(_el(root, "author"), "name", author)
    _el(root, "link", rel="self", type="application/atom+xml", href=self_url)
    _el(root, "link", rel="alternate", type="application/json", href=alternate_url)
    _el(root, "generator", "bidroom")
    for item in entries:
        entry = _el(root, "entry")
        _el(entry, "id", entry_id(feed_id, item.code))
        _el(entry, "title", f"{item.title}（{item.code}）")
        _el(entry, "link", rel="alternate", type="application/json", href=item.url)
        _el(entry, "published", _stamp(item.published))
        _el(entry, "updated", _stamp(item.updated))
        _el(entry, "summary", item.summary)
        if item.category:
            attrs = {"term": item.category}
            if item.category_label:
                attrs["label"] = item.category_label
            _el(entry, "category", **attrs)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
