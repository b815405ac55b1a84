"""The bid bundle (投标文件包): the wire format inside a sealed bid's age file.

The bid bundle (投标文件包) is a POSIX tar archive:
- its FIRST member is a regular file `form.json` (at most 64 KiB): {"price": "1234567.00", "duration_days": 180,
  "declared": {"质量标准": "合格", ...}} checked by trading.rules (prices as decimal strings or integers);
- every other member is a regular file under `documents/` (投标文件正文、资格证明 …); directories are allowed,
  links and devices are not.

A bidder may upload the bundle plain (the server seals it as it streams in, checking form.json on the way) or
seal it first with the stock tool, `age -r <tender recipient> -o bid.age bid.tar`, and upload bid.age; a
client-sealed form is checked at the opening instead, where a bad one makes the bid invalid (撤销).

Pure, no I/O beyond in-memory buffers.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.errors import Unprocessable
from trading.rules import BidForm, parse_bid_form_json

FORM_NAME = "form.json"
DOCUMENTS_DIR = "documents/"
MAX_FORM_BYTES = 64 * 1024
_BLOCK = 512


def _bad_bundle(reason: str) -> Unprocessable:
    return Unprocessable(f"not a bid bundle: {reason}", code="invalid_bid_bundle", details={"reason": reason})


def make_bundle(form: Mapping[str, Any], documents: Mapping[str, bytes] | None = None) -> bytes:
    """A bid bundle: form.json first, then each document under documents/ (for clients, tests, demo)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [(FORM_NAME, json.dumps(dict(form), ensure_ascii=False, default=str).encode()),
                           *((DOCUMENTS_DIR + n, d) for n, d in (documents or {}).items())]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def form_from_head(head: bytes) -> BidForm | None:
    """Check form.json at the start of a plain bundle as it streams in; None while more bytes are needed."""
    if len(head) < _BLOCK:
        return None
    try:
        info = tarfile.TarInfo.frombuf(head[:_BLOCK], "utf-8", "surrogateescape")
    except tarfile.HeaderError as err:
        raise _bad_bundle("it does not start with a tar header") from err
    if info.name != FORM_NAME or not info.isreg():
        raise _bad_bundle(f"the first member must be the file {FORM_NAME}")
    if info.size > MAX_FORM_BYTES:
        raise _bad_bundle(f"{FORM_NAME} is larger than {MAX_FORM_BYTES} bytes")
    if len(head) < _BLOCK + info.size:
        return None
    return parse_bid_form_json(head[_BLOCK:_BLOCK + info.size])


@dataclass(frozen=True)
class BundleDocument:
    """A document inside an opened bid: its name, size and SHA-256."""

    name: str
    size: int
    sha256: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class OpenedBundle:
    """What a decrypted bid holds: the checked form and the list of its documents."""

    form: BidForm
    documents: list[BundleDocument]


def read_bundle(plaintext: bytes,
                on_document: Callable[[BundleDocument, bytes], None] | None = None) -> OpenedBundle:
    """Read a decrypted bid bundle; Unprocessable(invalid_bid_bundle / invalid_price / ...) when it is bad.

    `on_document`, when given, sees each document with its bytes once the whole bundle has been checked (so a
    bad bundle hands nothing out)."""
    form = form_from_head(plaintext)
    if form is None:
        raise _bad_bundle("the file ends inside form.json")
    documents = []
    contents: list[bytes] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(plaintext), mode="r:") as tar:
            for i, member in enumerate(tar):
                if i == 0 or member.isdir():
                    continue
                if not member.isreg() or not member.name.startswith(DOCUMENTS_DIR) or ".." in member.name:
                    raise _bad_bundle(f"unexpected member {member.name[:80]!r}")
                data = tar.extractfile(member).read()
                documents.append(BundleDocument(member.name[len(DOCUMENTS_DIR):], len(data),
                                                hashlib.sha256(data).hexdigest()))
                if on_document is not None:
                    contents.append(data)
    except (tarfile.TarError, EOFError) as err:
        raise _bad_bundle("the archive is damaged") from err
    if on_document is not None:
        for document, data in zip(documents, contents):
            on_document(document, data)
    return OpenedBundle(form, documents)
