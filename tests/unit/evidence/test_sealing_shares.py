"""The tender key split k-of-n among key holders, and rebuilt from any k of the shares at the opening."""
import base64
import itertools
import json
import os

import pyrage
import pytest

from core.errors import Unprocessable
from evidence.sealing import combine_shares, new_tender_identity, open_sealed, split_identity_plain


def client_seal(data: bytes, recipient: str) -> bytes:
    """What a bidder's age client produces when sealing to the tender's published recipient."""
    return pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(recipient)])


@pytest.fixture(scope="module")
def tender_key():
    identity, recipient = new_tender_identity()
    return identity, recipient


@pytest.fixture(scope="module")
def shares(tender_key):
    return split_identity_plain(tender_key[0], 2, 3)


def edited(envelope, **changes):
    """A share envelope with some fields changed, as a tampering holder could produce it."""
    data = json.loads(envelope)
    data.update(changes)
    return json.dumps(data).encode()


def test_a_new_tender_identity_is_an_age_x25519_key_pair():
    identity, recipient = new_tender_identity()
    assert identity.startswith("AGE-SECRET-KEY-1")
    assert recipient.startswith("age1")
    assert str(pyrage.x25519.Identity.from_str(identity).to_public()) == recipient
    assert new_tender_identity() != (identity, recipient)


def test_each_share_names_its_threshold_and_tender_but_is_not_the_key(tender_key, shares):
    identity, recipient = tender_key
    assert len(shares) == 3 and len(set(shares)) == 3
    for share in shares:
        envelope = json.loads(share)
        assert (envelope["k"], envelope["n"], envelope["recipient"]) == (2, 3, recipient)
        assert identity.encode() not in share
        assert identity.encode() not in base64.b64decode(envelope["share"])


@pytest.mark.parametrize("pair", list(itertools.combinations(range(3), 2)))
def test_any_two_of_three_key_holders_rebuild_the_tender_key(pair, tender_key, shares):
    identity, recipient = tender_key
    assert combine_shares([shares[i] for i in pair], recipient) == identity


def test_two_holders_open_a_bid_sealed_to_the_tender(tender_key, shares):
    _, recipient = tender_key
    sealed = client_seal("投标报价 5230000.00".encode(), recipient)
    rebuilt = combine_shares([shares[2], shares[0]], recipient)
    assert open_sealed(sealed, rebuilt).decode() == "投标报价 5230000.00"


def test_one_share_alone_cannot_rebuild_the_key_even_if_given_twice(shares):
    for given in ([shares[1]], [shares[1], shares[1]]):
        with pytest.raises(Unprocessable) as err:
            combine_shares(given)
        assert err.value.code == "insufficient_shares"
        assert err.value.details == {"required": 2, "given": 1}


def test_one_real_share_with_a_forged_second_share_does_not_yield_the_key(shares):
    real_part = base64.b64decode(json.loads(shares[0])["share"])
    forged_part = bytearray(os.urandom(len(real_part)))
    forged_part[-1] = real_part[-1] % 255 + 1  # the last byte is the x coordinate: make it differ
    forged = edited(shares[0], share=base64.b64encode(bytes(forged_part)).decode())
    with pytest.raises(Unprocessable) as err:
        combine_shares([shares[0], forged])
    assert err.value.code == "identity_mismatch"


def test_shares_checked_against_another_tenders_recipient_are_refused(shares):
    _, other_recipient = new_tender_identity()
    with pytest.raises(Unprocessable) as err:
        combine_shares(shares[:2], other_recipient)
    assert err.value.code == "identity_mismatch"


def test_shares_claiming_another_recipient_rebuild_a_key_that_does_not_match_it(shares):
    _, other_recipient = new_tender_identity()
    relabelled = [edited(s, recipient=other_recipient) for s in shares[:2]]
    with pytest.raises(Unprocessable) as err:
        combine_shares(relabelled)
    assert err.value.code == "identity_mismatch"


def test_shares_from_different_splits_cannot_be_mixed(shares):
    with pytest.raises(Unprocessable) as err:
        combine_shares([shares[0], edited(shares[1], k=3)])
    assert err.value.code == "mismatched_shares"


def test_a_share_that_is_not_an_envelope_is_refused_when_combining(shares):
    with pytest.raises(Unprocessable) as err:
        combine_shares([shares[0], b"{}"])
    assert err.value.code == "malformed_share"


@pytest.mark.parametrize("k, n", [(1, 3), (4, 3), (0, 0), (2, 256), (True, 3), (2, 3.0)])
def test_a_split_that_one_holder_could_open_alone_or_that_is_not_k_of_n_is_refused(k, n, tender_key):
    with pytest.raises(Unprocessable) as err:
        split_identity_plain(tender_key[0], k, n)
    assert err.value.code == "invalid_threshold"


def test_splitting_something_that_is_not_an_identity_is_refused():
    with pytest.raises(Unprocessable) as err:
        split_identity_plain("AGE-SECRET-KEY-1NOTAKEY", 2, 3)
    assert err.value.code == "invalid_identity"


def test_the_largest_split_rebuilds_from_exactly_its_threshold(tender_key):
    identity, recipient = tender_key
    shares = split_identity_plain(identity, 3, 255)
    assert len(shares) == 255
    assert combine_shares(shares[100:103], recipient) == identity
    with pytest.raises(Unprocessable) as err:
        combine_shares(shares[:2], recipient)
    assert err.value.details == {"required": 3, "given": 2}


def test_no_shares_at_all_are_refused():
    with pytest.raises(Unprocessable) as err:
        combine_shares([])
    assert (err.value.code, err.value.details) == ("insufficient_shares", {"given": 0})
