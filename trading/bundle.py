"""The bid bundle (投标文件包): the wire format inside a sealed bid's age file, and its streaming check.

The bid bundle (投标文件包) is a POSIX tar archive (ustar, pax or GNU tar's own format):
- its FIRST member is a regular file `form.json` (at most 64 KiB): {"price": "1234567.00", "duration_days": 180,
  "declared": {"质量标准": "合格", ...}} checked by trading.rules (prices as decimal strings or integers);
- every other member is a regular file under `documents/` (投标文件正文、资格证明 …); directories under
  `documents/` are allowed. Nothing else is: no hard or symbolic links, no devices or FIFOs, no GNU sparse files
  (a 10 KiB sparse member can declare a 50 GiB file), no vendor member types;
- names are safe: valid UTF-8, relative, no `..` or `.` component, no empty component, no NUL, control
  character or backslash, at most MAX_NAME_BYTES bytes, each name once;
- at most `BundleLimits.max_members` members (directories count) and at most `BundleLimits.max_bytes` bytes in
  all members together, judged from each header before its data is read.

`BundleScanner` checks all of this as bytes are pushed into it, one chunk at a time, keeping nothing but
form.json (≤ 64 KiB), the names seen and a running SHA-256 per document. The upload path feeds it the plain
bundle as it streams in, so a bad bundle is refused before it is stored; the opening feeds it the plaintext as
pyrage decrypts, so a client-sealed bundle is held to the same rules with the same bounded memory.

A bidder may upload the bundle plain (the server seals it as it streams in) or seal it first with the stock
tool, `age -r <tender recipient> -o bid.age bid.tar`, and upload bid.age; a client-sealed bundle can only be
checked at the opening, where a bad one makes the bid invalid (撤销, 电子招标投标办法 第31条).

Pure, no I/O.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from core.errors import Unprocessable
from trading.rules import BidForm, parse_bid_form_json

FORM_NAME = "form.json"
DOCUMENTS_DIR = "documents/"
MAX_FORM_BYTES = 64 * 1024
MAX_NAME_BYTES = 1024          # a whole member name, UTF-8 encoded
MAX_PAX_BYTES = 64 * 1024      # one pax extended header's records
MAX_LONGNAME_BYTES = 4096      # one GNU long-name member
DEFAULT_MAX_MEMBERS = 1000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_BLOCK = 512

# stable error codes (422)
INVALID = "invalid_bid_bundle"                 # not a tar archive, damaged, or members in the wrong place
MEMBER_NOT_ALLOWED = "bundle_member_not_allowed"  # a link, device, FIFO, sparse or unknown member type
UNSAFE_NAME = "bundle_unsafe_name"
TOO_MANY_MEMBERS = "bundle_too_many_members"
TOO_LARGE = "bundle_too_large"

_REGULAR = (b"0", b"\0", b"7")  # 7: contiguous file, a regular file to every reader
_NOT_ALLOWED = {b"1": "hard_link", b"2": "symbolic_link", b"3": "character_device", b"4": "block_device",
                b"6": "fifo", b"K": "link", b"S": "sparse"}


def _bad_bundle(reason: str) -> Unprocessable:
    return Unprocessable(f"not a bid bundle: {reason}", code=INVALID, details={"reason": reason})


def _not_allowed(kind: str, name: str | None = None) -> Unprocessable:
    details: dict[str, Any] = {"reason": kind}
    if name is not None:
        details["member"] = name[:120]
    return Unprocessable(f"a bid bundle holds regular files only; it has a {kind.replace('_', ' ')} member",
                         code=MEMBER_NOT_ALLOWED, details=details)


def _unsafe(reason: str, name: str) -> Unprocessable:
    return Unprocessable(f"unsafe member name in the bid bundle: {reason}", code=UNSAFE_NAME,
                         details={"reason": reason, "member": name[:120]})


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


@dataclass(frozen=True)
class BundleLimits:
    """How big a bundle may be: members (directories count) and bytes in all members together."""

    max_members: int = DEFAULT_MAX_MEMBERS
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.max_members < 1 or self.max_bytes < 1:
            raise ValueError("bundle limits must be positive")


def _number(field: bytes) -> int:
    """A tar numeric field: octal text, or GNU base-256 when the high bit of the first byte is set."""
    if field and field[0] & 0x80:
        if field[0] & 0x40:
            raise _bad_bundle("a header holds a negative number")
        value = field[0] & 0x3F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as err:
        raise _bad_bundle("a header holds a malformed number") from err


def _text(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = _number(block[148:156])
    except Unprocessable:
        return False
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    signed = unsigned - 256 * sum(1 for b in block[:148] + block[156:] if b >= 0x80)  # some old tars sum signed
    return stored in (unsigned, signed)


def _pax_records(data: bytes) -> dict[str, bytes]:
    """`<len> <key>=<value>\\n` records of a pax extended header (values kept as bytes)."""
    out: dict[str, bytes] = {}
    pos, end = 0, len(data.rstrip(b"\0"))
    while pos < end:
        space = data.find(b" ", pos)
        if space < 0:
            raise _bad_bundle("a pax header is malformed")
        try:
            length = int(data[pos:space])
        except ValueError as err:
            raise _bad_bundle("a pax header is malformed") from err
        record = data[pos:pos + length]
        if length <= space - pos or len(record) != length or not record.endswith(b"\n") or b"=" not in record:
            raise _bad_bundle("a pax header is malformed")
        key, _, value = record[space - pos + 1:-1].partition(b"=")
        try:
            out[key.decode("utf-8")] = value
        except UnicodeDecodeError as err:
            raise _bad_bundle("a pax header is malformed") from err
        pos += length
    return out


def _check_pax(records: dict[str, bytes], name: str | None) -> None:
    """Refuse what a pax header can smuggle in: sparse maps, link targets, names that are not UTF-8."""
    for key in records:
        if key.startswith("GNU.sparse."):
            raise _not_allowed("sparse", name)
    if "linkpath" in records:
        raise _not_allowed("link", name)
    if records.get("hdrcharset") not in (None, b"ISO-IR 10646 2000 UTF-8"):
        raise _unsafe("not_utf8", name or "")


def check_name(raw: bytes) -> str:
    """A member name as text, refused unless it is safe (see the module docstring)."""
    shown = raw.decode("utf-8", "replace")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _unsafe("not_utf8", shown) from None
    if len(raw) > MAX_NAME_BYTES:
        raise _unsafe("too_long", shown)
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name):
        raise _unsafe("control_character", shown)  # NUL included
    if "\\" in name:
        raise _unsafe("backslash", shown)
    if name.startswith("/"):
        raise _unsafe("absolute_path", shown)
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if any(p == ".." for p in parts):
        raise _unsafe("parent_directory", shown)
    if any(p in ("", ".") for p in parts):
        raise _unsafe("empty_component", shown)
    return name


class DocumentSink(Protocol):
    """Where a scanner hands each document's bytes as they pass: `begin`, `write` for every piece, then `end`
    with the document's name, size and digest. A bundle refused later is the sink owner's to discard."""

    def begin(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def end(self, document: BundleDocument) -> None: ...


class BundleScanner:
    """Check a bid bundle pushed in chunk by chunk (`feed`), then `finish` to get its form and documents.

    Raises Unprocessable with a stable code (see the module constants, or trading.rules' codes for a bad form)
    as soon as the bytes seen so far break a rule; after that the scanner is spent. Memory is bounded by
    form.json, one pax or long-name header, and the set of names (≤ max_members × MAX_NAME_BYTES).
    """

    def __init__(self, limits: BundleLimits | None = None, sink: "DocumentSink | None" = None) -> None:
        self.limits = limits or BundleLimits()
        self._sink = sink                 # sees each document's bytes as they stream past (the opening keeps them)
        self._buf = bytearray()           # a header block, or a pax / long-name member's data, being gathered
        self._state = "header"            # header | data | special | end
        self._remaining = 0               # data bytes of the current member still to come
        self._padding = 0                 # zero padding after the current member's data
        self._special: bytes = b""        # the type of the special member being gathered (x, g, L)
        self._pax: dict[str, bytes] | None = None
        self._longname: bytes | None = None
        self._started = False             # a valid header has been seen
        self._members = 0
        self._bytes = 0
        self._names: set[str] = set()
        self._form_data: bytearray | None = None
        self._form: BidForm | None = None
        self._doc: tuple[str, int, Any] | None = None  # name, size, hasher of the document being read
        self.documents: list[BundleDocument] = []

    @property
    def form(self) -> BidForm | None:
        """The checked form once form.json has been read."""
        return self._form

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        pos = 0
        while pos < len(view):
            if self._state == "end":
                if view[pos:].tobytes().strip(b"\0"):
                    raise _bad_bundle("there are bytes after the end of the archive")
                return
            if self._state == "data":
                pos = self._data(view, pos)
            elif self._state == "special":
                pos = self._gather_special(view, pos)
            else:
                take = min(_BLOCK - len(self._buf), len(view) - pos)
                self._buf += view[pos:pos + take]
                pos += take
                if len(self._buf) == _BLOCK:
                    block, self._buf = bytes(self._buf), bytearray()
                    self._header(block)

    def finish(self) -> OpenedBundle:
        """The archive is complete: check that it ended cleanly and return what it holds."""
        if self._state in ("data", "special") or self._buf:
            raise _bad_bundle("the archive is truncated")
        if self._pax is not None or self._longname is not None:
            raise _bad_bundle("the archive ends after an extended header")
        if self._form is None:
            raise _bad_bundle(f"the first member must be the file {FORM_NAME}")
        return OpenedBundle(self._form, list(self.documents))

    # -- parts --------------------------------------------------------------------------------------------
    def _data(self, view: memoryview, pos: int) -> int:
        if self._remaining:
            take = min(self._remaining, len(view) - pos)
            piece = view[pos:pos + take]
            if self._form_data is not None:
                self._form_data += piece
            elif self._doc is not None:
                self._doc[2].update(piece)
                if self._sink is not None:
                    self._sink.write(bytes(piece))
            self._remaining -= take
            pos += take
            if self._remaining == 0:
                self._member_done()
        if self._remaining == 0:
            take = min(self._padding, len(view) - pos)
            self._padding -= take
            pos += take
            if self._padding == 0:
                self._state = "header"
        return pos

    def _gather_special(self, view: memoryview, pos: int) -> int:
        take = min(self._remaining, len(view) - pos)
        self._buf += view[pos:pos + take]
        self._remaining -= take
        pos += take
        if self._remaining == 0:
            data, self._buf = bytes(self._buf), bytearray()
            self._special_done(data)
        return pos

    def _special_done(self, data: bytes) -> None:
        if self._special == b"L":
            self._longname = data.rstrip(b"\0")
        else:
            records = _pax_records(data)
            if self._special == b"g":
                _check_pax(records, None)
                if {"path", "size"} & records.keys():
                    raise _bad_bundle("a global pax header sets member names or sizes")
            else:
                self._pax = records
        self._state = "data" if self._padding else "header"  # only the padding is left

    def _member_done(self) -> None:
        if self._form_data is not None:
            data, self._form_data = bytes(self._form_data), None
            self._form = parse_bid_form_json(data)
        elif self._doc is not None:
            name, size, hasher = self._doc
            document = BundleDocument(name[len(DOCUMENTS_DIR):], size, hasher.hexdigest())
            self.documents.append(document)
            self._doc = None
            if self._sink is not None:
                self._sink.end(document)

    def _header(self, block: bytes) -> None:
        if not any(block):
            if self._pax is not None or self._longname is not None:
                raise _bad_bundle("the archive ends after an extended header")
            self._state = "end"
            return
        if not _checksum_ok(block):
            if not self._started:
                raise _bad_bundle("it does not start with a tar header")
            raise _bad_bundle("a header checksum does not match (the archive is damaged)")
        self._started = True
        kind = block[156:157]
        size = _number(block[124:136])
        if kind in (b"x", b"g", b"L"):
            if (kind == b"x" and self._pax is not None) or (kind == b"L" and self._longname is not None):
                raise _bad_bundle("two extended headers for one member")
            limit = MAX_LONGNAME_BYTES if kind == b"L" else MAX_PAX_BYTES
            if size > limit:
                raise _bad_bundle("an extended header is too long")
            self._special, self._remaining = kind, size
            self._padding = -size % _BLOCK
            self._state = "special"
            if not size:
                self._special_done(b"")
            return
        raw_name = self._raw_name(block)
        shown = raw_name.decode("utf-8", "replace")
        if kind in _NOT_ALLOWED:
            raise _not_allowed(_NOT_ALLOWED[kind], shown)
        if kind not in _REGULAR and kind != b"5":
            raise _not_allowed("unknown_type", shown)
        pax, self._pax, self._longname = self._pax or {}, None, None
        if pax:
            _check_pax(pax, shown)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError as err:
                    raise _bad_bundle("a pax header holds a malformed size") from err
                if size < 0:
                    raise _bad_bundle("a pax header holds a negative size")
        is_dir = kind == b"5" or (kind == b"\0" and raw_name.endswith(b"/"))
        self._members += 1
        if self._members > self.limits.max_members:
            raise Unprocessable(f"a bid bundle holds at most {self.limits.max_members} members",
                                code=TOO_MANY_MEMBERS, details={"max_members": self.limits.max_members})
        name = check_name(raw_name)
        self._bytes += size
        if self._bytes > self.limits.max_bytes:
            raise Unprocessable(f"the files in a bid bundle come to at most {self.limits.max_bytes} bytes",
                                code=TOO_LARGE, details={"max_bytes": self.limits.max_bytes, "member": name[:120]})
        key = name.rstrip("/")
        if key in self._names:
            raise _unsafe("duplicate", name)
        self._names.add(key)
        first = self._members == 1
        if first:
            if name != FORM_NAME or is_dir:
                raise _bad_bundle(f"the first member must be the file {FORM_NAME}")
            if size > MAX_FORM_BYTES:
                raise _bad_bundle(f"{FORM_NAME} is larger than {MAX_FORM_BYTES} bytes")
            self._form_data = bytearray()
        elif is_dir:
            if not (name.rstrip("/") + "/").startswith(DOCUMENTS_DIR):
                raise _bad_bundle(f"unexpected member {name[:80]!r}")
            if size:
                raise _bad_bundle("a directory member holds data")
        else:
            if not name.startswith(DOCUMENTS_DIR) or name.endswith("/") or name == DOCUMENTS_DIR:
                raise _bad_bundle(f"unexpected member {name[:80]!r}")
            self._doc = (name, size, hashlib.sha256())
            if self._sink is not None:
                self._sink.begin()
        self._remaining, self._padding = size, -size % _BLOCK
        self._state = "data"
        if size == 0:
            self._member_done()
            if not self._padding:
                self._state = "header"

    def _raw_name(self, block: bytes) -> bytes:
        pax_path = (self._pax or {}).get("path")
        if pax_path is not None:
            return pax_path
        if self._longname is not None:
            return self._longname
        name = _text(block[0:100])
        if block[257:263] == b"ustar\0":  # POSIX ustar: a name may be split between prefix and name
            prefix = _text(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        return name


def form_from_head(head: bytes) -> BidForm | None:
    """Check form.json at the start of a plain bundle; None while more bytes are needed."""
    scanner = BundleScanner()
    scanner.feed(head)
    return scanner.form


def read_bundle(plaintext: bytes, limits: BundleLimits | None = None) -> OpenedBundle:
    """Read a whole decrypted bid bundle held in memory (tools and tests; the opening streams instead)."""
    scanner = BundleScanner(limits)
    scanner.feed(plaintext)
    return scanner.finish()
