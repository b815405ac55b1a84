"""Sealing bid uploads as they stream in, client-sealed uploads, and opening sealed bids.

The sealer is driven the way the bid service drives it: `awrite` for each chunk, then `aclose`.
"""
import asyncio
import base64
import hashlib
import io
import os
import subprocess
import tracemalloc

import pytest

import pyrage

from core.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from evidence.sealing import AGE_MAGIC, StreamSealer, UploadFormat, new_tender_identity, open_sealed
from evidence.sealing.header import age_header_end, detect_format, parse_age_header

MARKER = "投标报价：伍佰贰拾叁万元整 BID-PRICE-5230000".encode()


@pytest.fixture(scope="module")
def tender_key():
    return new_tender_identity()


def bid_document(size=300_000):
    """A bid file with a recognisable phrase inside."""
    filler = os.urandom(size)
    return filler[: size // 2] + MARKER + filler[size // 2:]


def chunks(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


def client_seal(data: bytes, recipient: str) -> bytes:
    """What a bidder's age client produces when sealing to the tender's published recipient."""
    return pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(recipient)])


async def seal_into(out, data, recipient, chunk_size=65536, **kwargs):
    with StreamSealer(out, recipient, max_bytes=kwargs.pop("max_bytes", 10 * 2**20), **kwargs) as sealer:
        for chunk in chunks(data, chunk_size):
            await sealer.awrite(chunk)
        return await sealer.aclose()


async def seal(data, recipient, chunk_size=65536, **kwargs):
    out = io.BytesIO()
    result = await seal_into(out, data, recipient, chunk_size, **kwargs)
    return result, out.getvalue()


async def test_a_plaintext_upload_is_stored_only_as_age_ciphertext_that_opens_with_the_tender_key(tender_key):
    identity, recipient = tender_key
    document = bid_document()
    result, stored = await seal(document, recipient, chunk_size=10_000)
    assert stored.startswith(AGE_MAGIC)
    assert MARKER not in stored
    assert result.format is UploadFormat.PLAINTEXT and result.sealed_by == "server"
    assert result.sha256 == hashlib.sha256(stored).hexdigest()
    assert (result.size, result.received) == (len(stored), len(document))
    assert open_sealed(stored, identity) == document


async def test_the_stock_age_tool_opens_what_the_server_sealed(tender_key, tmp_path):
    identity, recipient = tender_key
    document = bid_document()
    _, stored = await seal(document, recipient)
    (tmp_path / "key.txt").write_text(identity + "\n")
    (tmp_path / "bid.age").write_bytes(stored)
    opened = subprocess.run(["age", "-d", "-i", str(tmp_path / "key.txt"), str(tmp_path / "bid.age")],
                            capture_output=True, check=True).stdout
    assert opened == document


async def test_a_bid_sealed_with_the_age_cli_is_stored_unchanged_and_opens_with_the_tender_key(tender_key, tmp_path):
    identity, recipient = tender_key
    document = bid_document()
    (tmp_path / "bid.zip").write_bytes(document)
    subprocess.run(["age", "-r", recipient, "-o", str(tmp_path / "bid.age"), str(tmp_path / "bid.zip")], check=True)
    client_sealed = (tmp_path / "bid.age").read_bytes()
    result, stored = await seal(client_sealed, recipient, chunk_size=7)  # tiny chunks split the header anywhere
    assert stored == client_sealed
    assert result.format is UploadFormat.AGE and result.sealed_by == "client"
    assert result.sha256 == hashlib.sha256(client_sealed).hexdigest()
    assert open_sealed(stored, identity) == document


async def test_a_bid_sealed_into_a_file_opens_from_its_path(tender_key, tmp_path):
    identity, recipient = tender_key
    document = bid_document(1_000_000)
    path = tmp_path / "bid.age"
    with open(path, "wb") as out:
        result = await seal_into(out, document, recipient, max_bytes=2 * 2**20)
    assert result.size == path.stat().st_size
    assert open_sealed(path, identity) == document


@pytest.mark.parametrize("where", ["header", "payload start", "last chunk"])
def test_a_corrupted_sealed_bid_cannot_be_opened_and_says_so(where, tender_key):
    identity, recipient = tender_key
    stored = bytearray(client_seal(bid_document(), recipient))
    index = {"header": 40, "payload start": age_header_end(stored) + 20, "last chunk": len(stored) - 5}[where]
    stored[index] ^= 0x01
    with pytest.raises(Unprocessable) as err:
        open_sealed(bytes(stored), identity)
    assert err.value.code == "undecryptable"


def test_a_bid_sealed_to_another_tender_or_cut_short_cannot_be_opened(tender_key):
    identity, _ = tender_key
    _, other_recipient = new_tender_identity()
    sealed = client_seal(b"bid", other_recipient)
    for blob in (sealed, sealed[:-10], b""):
        with pytest.raises(Unprocessable) as err:
            open_sealed(blob, identity)
        assert err.value.code == "undecryptable"


async def test_a_disk_error_while_sealing_reaches_the_uploader_as_itself(tender_key):
    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as err:
        await seal_into(FullDisk(), bytes(2 * 2**20), tender_key[1])
    assert err.value.errno == 28


async def test_an_armoured_age_upload_is_refused_with_a_hint(tender_key, tmp_path):
    _, recipient = tender_key
    (tmp_path / "bid.zip").write_bytes(b"PK\x03\x04 bid")
    armoured = subprocess.run(["age", "-a", "-r", recipient, str(tmp_path / "bid.zip")], capture_output=True,
                              check=True).stdout
    with pytest.raises(UnsupportedMediaType) as err:
        await seal(armoured, recipient)
    assert err.value.code == "armored_not_accepted"


async def test_an_openpgp_message_is_refused_as_a_seal_the_opening_cannot_read(tender_key):
    with pytest.raises(UnsupportedMediaType) as err:
        await seal(b"-----BEGIN PGP MESSAGE-----\n\nhQEMA...\n-----END PGP MESSAGE-----\n", tender_key[1])
    assert err.value.code == "unsupported_seal"


def b64(n):
    return base64.b64encode(os.urandom(n)).rstrip(b"=")


async def test_a_passphrase_sealed_age_file_is_refused_because_the_tender_key_cannot_open_it(tender_key):
    header = AGE_MAGIC + b"-> scrypt " + b64(16) + b" 18\n" + b64(32) + b"\n--- " + b64(32) + b"\n"
    with pytest.raises(UnsupportedMediaType) as err:
        await seal(header + os.urandom(64), tender_key[1])
    assert err.value.code == "not_sealed_to_tender"


@pytest.mark.parametrize("blob", [
    AGE_MAGIC + b"this is not a stanza\n--- " + b"A" * 43 + b"\n" + b"x" * 64,
    AGE_MAGIC + b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 43 + b"\n",
    AGE_MAGIC + b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 43 + b"\n--- " + b"A" * 43 + b"\n" + b"short",
])
async def test_a_malformed_or_truncated_client_sealed_file_is_refused(blob, tender_key):
    with pytest.raises(Unprocessable) as err:
        await seal(blob, tender_key[1])
    assert err.value.code == "malformed_age"


def test_the_header_of_a_real_age_file_parses_with_its_grease_stanza(tender_key):
    sealed = client_seal(b"bid", tender_key[1])
    stanzas = parse_age_header(sealed[:age_header_end(sealed)])
    assert stanzas[0][0] == "X25519"


@pytest.mark.parametrize("head, complete, expected", [
    (b"age-encryption.org/v1\n-> X25519", False, UploadFormat.AGE),
    (b"age-encry", False, None),
    (b"age-encry", True, UploadFormat.PLAINTEXT),
    (b"age-encryption.org/v2\n", False, UploadFormat.OTHER_SEALED),
    (b"\n  -----BEGIN AGE ENCRYPTED FILE-----\n", False, UploadFormat.AGE_ARMORED),
    (b"-----BEGIN", False, None),
    (b"%PDF-1.7\n", False, UploadFormat.PLAINTEXT),
    (b"PK\x03\x04", False, UploadFormat.PLAINTEXT),
])
def test_uploads_are_told_apart_from_their_first_bytes(head, complete, expected):
    assert detect_format(head, complete=complete) is expected


async def test_a_tiny_upload_that_looks_like_the_start_of_an_age_header_is_sealed_as_plaintext(tender_key):
    identity, recipient = tender_key
    result, stored = await seal(b"age", recipient)
    assert result.format is UploadFormat.PLAINTEXT
    assert open_sealed(stored, identity) == b"age"


async def test_an_upload_over_the_limit_is_refused_as_too_large(tender_key):
    with pytest.raises(PayloadTooLarge) as err:
        await seal(bytes(200_000), tender_key[1], max_bytes=150_000)
    assert err.value.code == "upload_too_large"
    assert err.value.status == 413


async def test_an_empty_upload_is_refused(tender_key):
    sealer = StreamSealer(io.BytesIO(), tender_key[1], max_bytes=100)
    with pytest.raises(Unprocessable) as err:
        await sealer.aclose()
    assert err.value.code == "empty_upload"


async def test_leaving_the_block_on_an_error_abandons_the_upload(tender_key):
    with pytest.raises(ConnectionResetError):
        with StreamSealer(io.BytesIO(), tender_key[1], max_bytes=10**6) as sealer:
            await sealer.awrite(b"first part of a bid")
            raise ConnectionResetError("client went away")
    with pytest.raises(RuntimeError):
        await sealer.awrite(b"more")


def test_an_invalid_recipient_is_refused_before_anything_is_stored():
    with pytest.raises(Unprocessable) as err:
        StreamSealer(io.BytesIO(), "age1notarecipient", max_bytes=100)
    assert err.value.code == "invalid_recipient"


async def test_sealing_an_8_mib_upload_holds_only_a_few_chunks_in_memory(tender_key, tmp_path):
    identity, recipient = tender_key
    chunk = os.urandom(65536)
    tracemalloc.start()
    try:
        with open(tmp_path / "bid.age", "wb") as out:
            sealer = StreamSealer(out, recipient, max_bytes=16 * 2**20)
            for _ in range(128):
                await sealer.awrite(chunk)
            result = await sealer.aclose()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.received == 8 * 2**20
    assert peak < 1 * 2**20  # an eighth of the upload: no full-plaintext buffer anywhere
    with open(tmp_path / "bid.age", "rb") as src:
        digest = hashlib.sha256()
        while block := src.read(2**20):
            digest.update(block)
    assert digest.hexdigest() == result.sha256


async def test_a_coroutine_can_seal_an_upload_without_blocking_the_event_loop(tender_key):
    identity, recipient = tender_key
    document = bid_document(500_000)

    async def upload():
        for chunk in chunks(document, 16384):
            await asyncio.sleep(0)
            yield chunk

    out = io.BytesIO()
    sealer = StreamSealer(out, recipient, max_bytes=10**6, queue_depth=2)
    async for chunk in upload():
        await sealer.awrite(chunk)
    result = await sealer.aclose()
    assert result.format is UploadFormat.PLAINTEXT
    assert open_sealed(out.getvalue(), identity) == document
