"""Audit ledger hashing (ALGORITHMS.md §3): leaves, the hash chain and RFC 9162 Merkle roots. Pure, no I/O."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from core.canonical import cj

ZERO_HEAD = bytes(32)
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def format_at(at: datetime) -> str:
    """ISO-8601 UTC with microseconds, e.g. 2026-11-25T06:30:00.123456Z."""
    if at.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_object(*, seq: int, at: datetime | str, actor: str, action: str, entity: str,
                 payload_sha256: str) -> dict:
    """The entry `e` exactly as it is hashed and exported."""
    return {
        "seq": seq,
        "at": at if isinstance(at, str) else format_at(at),
        "actor": actor,
        "action": action,
        "entity": entity,
        "payload_sha256": payload_sha256,
    }


def leaf_hash_of_bytes(data: bytes) -> bytes:
    """RFC 9162 leaf hash: H(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def leaf_hash(entry: dict) -> bytes:
    """leaf_n = H(0x00 || cj(e))."""
    return leaf_hash_of_bytes(cj(entry))


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def next_head(prev_head: bytes, leaf: bytes) -> bytes:
    """head_n = H(head_{n-1} || leaf_n)."""
    return hashlib.sha256(prev_head + leaf).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1 Merkle tree hash over leaf hashes (recursive definition)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


@dataclass
class MerkleFrontier:
    """The perfect subtrees covering leaves 1..size, so roots grow in O(log n) per leaf."""

    size: int = 0
    # (height, hash) from the largest subtree on the left to the smallest on the right
    nodes: list[tuple[int, bytes]] = field(default_factory=list)

    def append(self, leaf: bytes) -> None:
        height, node = 0, leaf
        while self.nodes and self.nodes[-1][0] == height:
            _, left = self.nodes.pop()
            node = node_hash(left, node)
            height += 1
        self.nodes.append((height, node))
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.nodes:
            return hashlib.sha256(b"").digest()
        root = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            root = node_hash(left, root)
        return root

    def to_json(self) -> list[list]:
        return [[h, node.hex()] for h, node in self.nodes]

    @classmethod
    def from_json(cls, size: int, nodes: list[list]) -> "MerkleFrontier":
        return cls(size=size, nodes=[(int(h), bytes.fromhex(x)) for h, x in nodes])


def checkpoint_body(size: int, head: bytes, root: bytes) -> dict:
    """The signed part of a checkpoint."""
    return {"size": size, "head": head.hex(), "root": root.hex()}


@dataclass
class ChainProblem:
    seq: int
    reason: str


def verify_chain(rows: Iterable[tuple[dict, str]], checkpoints: dict[int, dict] | None = None,
                 check_signature=None) -> tuple[int, ChainProblem | None]:
    """Recompute leaves, heads and checkpoints over (entry, entry_hash_hex) rows in seq order.

    Returns (entries checked, first problem or None). `checkpoints` maps size -> checkpoint dict with
    head, root and signature; `check_signature(checkpoint) -> bool` verifies its Ed25519 signature.
    """
    checkpoints = checkpoints or {}
    head = ZERO_HEAD
    frontier = MerkleFrontier()
    expected_seq = 1
    count = 0
    for entry, entry_hash in rows:
        if entry["seq"] != expected_seq:
            return count, ChainProblem(expected_seq, f"sequence gap: found {entry['seq']}")
        leaf = leaf_hash(entry)
        head = next_head(head, leaf)
        frontier.append(leaf)
        if head.hex() != entry_hash:
            return count, ChainProblem(entry["seq"], "entry hash does not match the recomputed chain")
        cp = checkpoints.get(entry["seq"])
        if cp is not None:
            if cp["head"] != head.hex() or cp["root"] != frontier.root().hex():
                return count, ChainProblem(entry["seq"], "checkpoint head or root does not match")
            if check_signature is not None and not check_signature(cp):
                return count, ChainProblem(entry["seq"], "checkpoint signature is invalid")
        count += 1
        expected_seq += 1
    for size in sorted(checkpoints):
        if size > count:
            return count, ChainProblem(count + 1, f"checkpoint of size {size} covers entries that are missing")
    return count, None
