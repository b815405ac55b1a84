"""The Atom feed of new tenders is well-formed Atom 1.0 with Chinese titles."""
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import pytest

from trading.feed import ATOM_NS, FeedEntry, atom_feed

A = f"{{{ATOM_NS}}}"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def _feed(entries):
    return ET.fromstring(atom_feed(entries, feed_id="https://bidroom.example/api/v1/tenders/feed.atom",
                                   self_url="https://bidroom.example/api/v1/tenders/feed.atom",
                                   alternate_url="https://bidroom.example/api/v1/tenders", title="招标公告",
                                   author="中山市公共资源交易中心", updated=T0))


def test_the_feed_carries_every_element_atom_requires_with_utc_times():
    entry = FeedEntry("ZS-2026-FJSZ-00042", "中山市道路改造工程 & 管网", "https://bidroom.example/t/1", T0, T0,
                      "预算 100.00 CNY", "FJSZ-SG", "房建市政/施工")
    root = _feed([entry])
    assert root.tag == f"{A}feed"
    assert root.find(f"{A}updated").text == "2026-03-02T01:00:00Z"
    assert root.find(f"{A}author/{A}name").text == "中山市公共资源交易中心"
    item = root.find(f"{A}entry")
    assert item.find(f"{A}title").text == "中山市道路改造工程 & 管网（ZS-2026-FJSZ-00042）"
    assert item.find(f"{A}id").text.endswith("#ZS-2026-FJSZ-00042")
    assert item.find(f"{A}category").attrib == {"term": "FJSZ-SG", "label": "房建市政/施工"}
    assert item.find(f"{A}link").get("rel") == "alternate"


def test_an_empty_feed_is_still_valid_and_naive_times_are_refused():
    assert _feed([]).findall(f"{A}entry") == []
    with pytest.raises(ValueError):
        _feed([FeedEntry("ZS-2026-FJSZ-00001", "x", "u", datetime(2026, 1, 1), T0, "s")])
