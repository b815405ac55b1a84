"""The tender key split k-of-n among key holders, each share wrapped under the holder's passphrase.

Wrapping and unwrapping run age's scrypt (about 1.5 s each here), so the split and the unwraps happen once per
module and the tests share them.
"""
import base64
import itertools
import json
import os

import pytest

from core.errors import Forbidden, Unprocessable
from evidence.sealing import (AGE_MAGIC, combine_shares, new_tender_identity, open_sealed, recipient_of,
                              seal_bytes, share_info, split_identity, unwrap_share)

PASSPHRASES = ["agent passphrase 招标代理", "supervisor passphrase 监督", "platform passphrase 平台"]


@pytest.fixture(scope="module")
def tender_key():
    identity, recipient = new_tender_identity()
    return identity, recipient


@pytest.fixture(scope="module")
def wrapped(tender_key):
    return split_identity(tender_key[0], 2, 3, PASSPHRASES)


@pytest.fixture(scope="module")
def shares(wrapped):
    return [unwrap_share(w, p) for w, p in zip(wrapped, PASSPHRASES)]


def edited(envelope, **changes):
    """A share envelope with some fields changed, as a tampering holder could produce it."""
    data = json.loads(envelope)
    data.update(changes)
    return json.dumps(data).encode()


def test_a_new_tender_identity_is_an_age_x25519_key_pair():
    identity, recipient = new_tender_identity()
    assert identity.startswith("AGE-SECRET-KEY-1")
    assert recipient.startswith("age1")
    assert recipient_of(identity) == recipient


def test_wrapped_shares_are_age_passphrase_files_that_do_not_contain_the_key(tender_key, wrapped):
    identity, _ = tender_key
    assert len(wrapped) == 3
    for blob in wrapped:
        assert blob.startswith(AGE_MAGIC)
        assert b"\n-> scrypt " in blob
        assert identity.encode() not in blob
    assert len(set(wrapped)) == 3


def test_an_unwrapped_share_names_its_threshold_and_tender_but_is_not_the_key(tender_key, shares):
    identity, recipient = tender_key
    info = share_info(shares[0])
    assert (info.k, info.n, info.recipient) == (2, 3, recipient)
    assert identity.encode() not in shares[0]


@pytest.mark.parametrize("pair", list(itertools.combinations(range(3), 2)))
def test_any_two_of_three_key_holders_rebuild_the_tender_key(pair, tender_key, shares):
    identity, recipient = tender_key
    assert combine_shares([shares[i] for i in pair], recipient) == identity


def test_two_holders_open_a_bid_sealed_to_the_tender(tender_key, shares):
    _, recipient = tender_key
    sealed = seal_bytes("投标报价 5230000.00".encode(), recipient)
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


def test_a_wrong_passphrase_is_refused_as_forbidden(wrapped):
    with pytest.raises(Forbidden) as err:
        unwrap_share(wrapped[0], PASSPHRASES[1])
    assert err.value.code == "wrong_passphrase"
    assert err.value.status == 403


def test_something_that_is_not_a_wrapped_share_is_refused_without_running_scrypt(tender_key):
    for blob in (b"hello", seal_bytes(b"not a share", tender_key[1])):
        with pytest.raises(Unprocessable) as err:
            unwrap_share(blob, PASSPHRASES[0])
        assert err.value.code == "malformed_share"


def test_a_share_that_is_not_an_envelope_is_refused_when_combining(shares):
    with pytest.raises(Unprocessable) as err:
        combine_shares([shares[0], b"{}"])
    assert err.value.code == "malformed_share"


@pytest.mark.parametrize("k, n, passphrases, code", [
    (1, 3, PASSPHRASES, "invalid_threshold"),
    (4, 3, PASSPHRASES, "invalid_threshold"),
    (2, 3, PASSPHRASES[:2], "invalid_threshold"),
    (2, 3, ["short", *PASSPHRASES[1:]], "weak_passphrase"),
])
def test_a_split_that_one_holder_could_open_alone_or_with_bad_passphrases_is_refused(k, n, passphrases, code,
                                                                                     tender_key):
    with pytest.raises(Unprocessable) as err:
        split_identity(tender_key[0], k, n, passphrases)
    assert err.value.code == code


def test_splitting_something_that_is_not_an_identity_is_refused():
    with pytest.raises(Unprocessable) as err:
        split_identity("AGE-SECRET-KEY-1NOTAKEY", 2, 3, PASSPHRASES)
    assert err.value.code == "invalid_identity"
