"""Sealed bids (密封投标): age encryption to a per-tender X25519 recipient, whose identity is split k-of-n.

- `shares`: at publish time a tender gets an age identity; its secret is split with Shamir (pyshamir) among
  the key holders (`split_identity_plain`; trading.keyholding encrypts each share to its holder's key). At the
  opening, k unlocked shares rebuild it with `combine_shares`, checked against the published recipient.
- `header`: what an upload is from its first bytes, and the grammar of a binary age v1 header.
- `sealer`: bids are stored only as age ciphertext. A client may seal before upload with the published
  recipient (`age -r age1… -o bid.age bid.zip`); otherwise `StreamSealer` seals the upload as it streams in.
- `opening`: `open_sealed` decrypts a stored bid with the rebuilt identity.

The names below are what other packages use; import them from `evidence.sealing`.
"""
from evidence.sealing.header import AGE_MAGIC, UploadFormat
from evidence.sealing.opening import open_sealed
from evidence.sealing.sealer import SealedUpload, StreamSealer
from evidence.sealing.shares import (MIN_PASSPHRASE_LENGTH, combine_shares, new_tender_identity,
                                     split_identity_plain)

__all__ = [
    "AGE_MAGIC",
    "MIN_PASSPHRASE_LENGTH",
    "SealedUpload",
    "StreamSealer",
    "UploadFormat",
    "combine_shares",
    "new_tender_identity",
    "open_sealed",
    "split_identity_plain",
]
