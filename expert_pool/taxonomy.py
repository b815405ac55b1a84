"""The expert specialty taxonomy (评标专家专业分类): a tree of codes such as A → A01 → A0101.

Experts register on leaves. A draw quota may name any node: a quota on a parent code accepts experts in
every leaf below it. Pure apart from reading the packaged JSON once.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Specialty:
    """One node of the tree."""

    code: str
    zh: str
    en: str
    parent: str | None
    children: tuple[str, ...]

    @property
    def is_leaf(self) -> bool:
        return not self.children


class Taxonomy:
    """Lookup over the specialty tree: names, leaves, ancestry and quota matching."""

    def __init__(self, document: Mapping[str, Any]):
        self._nodes: dict[str, Specialty] = {}
        self._roots: list[str] = []
        for node in document.get("nodes", []):
            self._add(node, parent=None)
        if not self._nodes:
            raise ValueError("the specialty taxonomy is empty")

    def _add(self, node: Mapping[str, Any], parent: str | None) -> None:
        code, zh, en = node.get("code"), node.get("zh"), node.get("en")
        if not (isinstance(code, str) and code and isinstance(zh, str) and zh and isinstance(en, str) and en):
            raise ValueError(f"specialty node under {parent!r} needs a code, a zh and an en name")
        if code in self._nodes:
            raise ValueError(f"specialty code {code} appears twice")
        # Codes extend their parent's code, so a code alone tells where it sits (A01 under A, A0101 under A01).
        if parent is not None and not (code.startswith(parent) and len(code) > len(parent)):
            raise ValueError(f"specialty code {code} does not extend its parent {parent}")
        children = node.get("children", [])
        self._nodes[code] = Specialty(code, zh, en, parent, tuple(c["code"] for c in children))
        if parent is None:
            self._roots.append(code)
        for child in children:
            self._add(child, parent=code)

    def __contains__(self, code: object) -> bool:
        return code in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, code: str) -> Specialty:
        """The node for `code`; KeyError when unknown."""
        return self._nodes[code]

    def exists(self, code: str) -> bool:
        """Whether `code` is any node of the tree."""
        return code in self._nodes

    def is_leaf(self, code: str) -> bool:
        """Whether `code` is a leaf, the level experts register on; False for unknown codes."""
        node = self._nodes.get(code)
        return node is not None and node.is_leaf

    def name(self, code: str, lang: str = "zh") -> str:
        """The node's name in "zh" or "en"."""
        node = self._nodes[code]
        if lang == "zh":
            return node.zh
        if lang == "en":
            return node.en
        raise ValueError(f"no names in language {lang!r}")

    def path(self, code: str) -> tuple[str, ...]:
        """Codes from the root down to `code`, e.g. ("A", "A01", "A0101")."""
        chain: list[str] = []
        current: str | None = code
        while current is not None:
            chain.append(current)
            current = self._nodes[current].parent
        return tuple(reversed(chain))

    def roots(self) -> tuple[str, ...]:
        """The top-level categories in file order."""
        return tuple(self._roots)

    def leaves(self, under: str | None = None) -> Iterator[str]:
        """Leaf codes in tree order, all of them or those below (or equal to) `under`."""
        stack = [under] if under is not None else list(reversed(self._roots))
        if under is not None and under not in self._nodes:
            raise KeyError(under)
        while stack:
            code = stack.pop()
            node = self._nodes[code]
            if node.is_leaf:
                yield code
            else:
                stack.extend(reversed(node.children))

    def matches(self, quota_code: str, expert_code: str) -> bool:
        """Whether an expert registered on `expert_code` can fill a quota on `quota_code` (same node or below)."""
        if quota_code not in self._nodes or expert_code not in self._nodes:
            return False
        return quota_code in self.path(expert_code)

    def matches_any(self, quota_code: str, expert_codes: Iterator[str] | frozenset[str] | set[str]) -> bool:
        """Whether any of an expert's specialties fills a quota on `quota_code`."""
        return any(self.matches(quota_code, c) for c in expert_codes)


@functools.cache
def load_taxonomy() -> Taxonomy:
    """The packaged taxonomy, read once on first use."""
    text = resources.files("expert_pool.data").joinpath("specialties.json").read_text(encoding="utf-8")
    taxonomy = Taxonomy(json.loads(text))
    log.debug("loaded %d specialty codes", len(taxonomy))
    return taxonomy
