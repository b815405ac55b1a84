"""Ledger hashing against RFC 9162 vectors and the chain rules of ALGORITHMS.md §3."""
import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

import rfc8785
from hypothesis import given, strategies as st

from evidence.ledger import (MerkleFrontier, ZERO_HEAD, entry_object, leaf_hash, leaf_hash_of_bytes,
                             merkle_root, next_head, verify_chain)

SHANGHAI = ZoneInfo("Asia/Shanghai")

# The standard 8 leaf inputs of the Certificate Transparency Merkle tree test vectors.
CT_LEAVES = [bytes.fromhex(x) for x in [
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f"]]


def test_empty_tree_root_is_sha256_of_nothing():
    assert merkle_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleFrontier().root() == merkle_root([])


def test_eight_leaf_certificate_transparency_root():
    leaves = [leaf_hash_of_bytes(x) for x in CT_LEAVES]
    assert merkle_root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_incremental_frontier_matches_recursive_root_at_every_size():
    frontier = MerkleFrontier()
    leaves = []
    for i in range(70):
        leaf = leaf_hash_of_bytes(i.to_bytes(4, "big"))
        leaves.append(leaf)
        frontier.append(leaf)
        assert frontier.root() == merkle_root(leaves)
        restored = MerkleFrontier.from_json(frontier.size, frontier.to_json())
        assert restored.root() == frontier.root()


def test_leaf_is_hash_of_zero_byte_and_the_entrys_canonical_json_written_out_by_hand():
    e = entry_object(seq=1, at="2026-11-25T06:30:00.000001Z", actor="U-ABC", action="tender.publish",
                     entity="tender:ZS-2026-ZFCG-00042", payload_sha256="ab" * 32)
    canonical = (b'{"action":"tender.publish","actor":"U-ABC","at":"2026-11-25T06:30:00.000001Z",'
                 b'"entity":"tender:ZS-2026-ZFCG-00042","payload_sha256":"' + b"ab" * 32 + b'","seq":1}')
    assert leaf_hash(e) == hashlib.sha256(b"\x00" + canonical).digest()


def test_an_entry_with_chinese_and_a_large_sequence_number_hashes_as_written_out_by_hand():
    e = entry_object(seq=9007199254740991, at=datetime(2026, 11, 25, 14, 30, 0, 7, tzinfo=SHANGHAI),
                     actor="U-张伟", action="bid.receive", entity="tender:招标-1", payload_sha256="0f" * 32)
    canonical = ('{"action":"bid.receive","actor":"U-张伟","at":"2026-11-25T06:30:00.000007Z",'
                 '"entity":"tender:招标-1","payload_sha256":"' + "0f" * 32 + '","seq":9007199254740991}')
    assert leaf_hash(e) == hashlib.sha256(b"\x00" + canonical.encode("utf-8")).digest()


@given(st.integers(min_value=1, max_value=2**53 - 1), st.text(max_size=30), st.text(max_size=30),
       st.text(max_size=30), st.text(min_size=1, max_size=20))
def test_leaf_hashes_agree_with_an_independent_rfc8785_implementation(seq, actor, action, entity, at):
    e = entry_object(seq=seq, at=at, actor=actor, action=action, entity=entity, payload_sha256="cd" * 32)
    assert leaf_hash(e) == hashlib.sha256(b"\x00" + rfc8785.dumps(e)).digest()


def test_head_chain_starts_from_32_zero_bytes():
    leaf = leaf_hash_of_bytes(b"x")
    assert next_head(ZERO_HEAD, leaf) == hashlib.sha256(bytes(32) + leaf).digest()


def _chain(n):
    rows, head = [], ZERO_HEAD
    for seq in range(1, n + 1):
        e = entry_object(seq=seq, at="2026-11-25T06:30:00.000000Z", actor="system", action="a",
                         entity=f"x:{seq}", payload_sha256="00" * 32)
        head = next_head(head, leaf_hash(e))
        rows.append((e, head.hex()))
    return rows


@given(st.integers(min_value=1, max_value=40), st.data())
def test_verify_names_the_first_altered_entry(n, data):
    rows = _chain(n)
    assert verify_chain(rows) == (n, None)
    bad = data.draw(st.integers(min_value=1, max_value=n))
    entry, h = rows[bad - 1]
    rows[bad - 1] = ({**entry, "actor": "mallory"}, h)
    checked, problem = verify_chain(rows)
    assert problem is not None and problem.seq == bad and checked == bad - 1
