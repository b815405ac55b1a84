"""Hostile bid bundles: tar archives built in code with `tarfile`, each breaking one bundle rule.

Every bundle starts with a valid form.json, so the refusal is due to the hostile member alone, and each comes
with the stable error code and reason (`details.reason`, where the code has one) that it must get:
- GNU sparse members (old GNU `S` type with a sparse map, and pax sparse 1.0), declaring 50 GiB in a few KiB;
- a hard link and a symbolic link (to /etc/passwd), a character device, a FIFO;
- path traversal (`..`), an absolute path, a NUL and a control character in a name, a name that is not UTF-8;
- 10,000 members;
- a header declaring a 50 GiB file (GNU base-256 size, and a pax `size` record) followed by a few bytes.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass

HUGE = 50 * 2**30  # 50 GiB
FORM = json.dumps({"price": "1000000.00", "duration_days": 90, "declared": {"质量标准": "合格"}}).encode()


@dataclass(frozen=True)
class HostileTar:
    """One hostile bundle: a short name for test ids, its bytes, and what it must be refused with."""

    name: str
    data: bytes
    code: str
    reason: str | None = None


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode, info.mtime = size, kind, linkname, 0o644, 0
    return info


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT, *,
         encoding: str = "utf-8") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, encoding=encoding, errors="surrogateescape") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _with_form(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    return _tar([(_info("form.json", len(FORM)), FORM), *members], fmt)


def _form_only(fmt: int) -> bytes:
    """form.json alone, without the end-of-archive blocks, for appending raw members after it."""
    out = io.BytesIO()
    info = _info("form.json", len(FORM))
    out.write(info.tobuf(fmt, "utf-8", "surrogateescape"))
    out.write(FORM + b"\0" * (-len(FORM) % 512))
    return out.getvalue()


def _checksum(block: bytearray) -> bytearray:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return block


def gnu_sparse() -> bytes:
    """An old-GNU sparse member (type S): 4 KiB stored, a sparse map and a real size of 50 GiB."""
    header = bytearray(_info("documents/disk.img", 4096).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    header[386:398] = b"%011o\0" % (HUGE - 4096)   # sparse map entry 1: offset
    header[398:410] = b"%011o\0" % 4096            # ... and length: the only bytes stored
    header[483:495] = b"\x80" + HUGE.to_bytes(11, "big")  # realsize, base-256
    data = _form_only(tarfile.GNU_FORMAT) + bytes(_checksum(header)) + b"\xAA" * 4096
    return data + b"\0" * 1024


def pax_sparse() -> bytes:
    """A pax sparse 1.0 member (GNU tar --sparse --format=posix): records say the file is 50 GiB."""
    info = _info("documents/GNUSparseFile.0/disk.img", 512)
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "documents/disk.img",
                        "GNU.sparse.realsize": str(HUGE)}
    return _with_form((info, b"1\n" + b"%d\n%d\n" % (HUGE - 1, 1) + b"\0" * 500))


def hard_link() -> bytes:
    return _with_form((_info("documents/form-again.json", kind=tarfile.LNKTYPE, linkname="form.json"), b""))


def symbolic_link() -> bytes:
    return _with_form((_info("documents/passwd", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), b""))


def character_device() -> bytes:
    info = _info("documents/zero", kind=tarfile.CHRTYPE)
    info.devmajor, info.devminor = 1, 5
    return _with_form((info, b""))


def fifo() -> bytes:
    return _with_form((_info("documents/pipe", kind=tarfile.FIFOTYPE), b""))


def named(name: str, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A bundle whose second member is a regular file under `name` (which may be hostile)."""
    return _with_form((_info(name, 5), b"hello"), fmt=fmt)


def nul_in_name() -> bytes:
    """A pax path record with a NUL inside: a header field would end at the NUL, a pax record does not."""
    info = _info("documents/a.pdf", 5)
    info.pax_headers = {"path": "documents/a\0.pdf"}
    return _with_form((info, b"hello"))


def not_utf8_name() -> bytes:
    """A GNU-format name holding the bytes FF FE, which are not UTF-8."""
    return _tar([(_info("form.json", len(FORM)), FORM), (_info("documents/\udcff\udcfe.pdf", 5), b"hello")],
                tarfile.GNU_FORMAT)


def many_members(count: int = 10_000) -> bytes:
    """form.json and `count` empty documents (about 5 MiB of headers)."""
    return _tar([(_info("form.json", len(FORM)), FORM)] + [(_info(f"documents/{i:05d}.pdf"), b"")
                                                             for i in range(count)], tarfile.USTAR_FORMAT)


def huge_declared(fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A header declaring a 50 GiB file (GNU base-256 size, or a pax size record), then 1 KiB of it."""
    info = _info("documents/huge.bin", HUGE)
    header = info.tobuf(fmt, "utf-8", "surrogateescape")
    return _form_only(fmt) + header + b"\xAB" * 1024


def corpus() -> list[HostileTar]:
    """Every hostile bundle with its expected refusal."""
    return [
        HostileTar("gnu_sparse", gnu_sparse(), "bundle_member_not_allowed", "sparse"),
        HostileTar("pax_sparse", pax_sparse(), "bundle_member_not_allowed", "sparse"),
        HostileTar("hard_link", hard_link(), "bundle_member_not_allowed", "hard_link"),
        HostileTar("symbolic_link", symbolic_link(), "bundle_member_not_allowed", "symbolic_link"),
        HostileTar("character_device", character_device(), "bundle_member_not_allowed", "character_device"),
        HostileTar("fifo", fifo(), "bundle_member_not_allowed", "fifo"),
        HostileTar("parent_traversal", named("documents/../../etc/cron.d/x"), "bundle_unsafe_name",
                   "parent_directory"),
        HostileTar("absolute_path", named("/etc/passwd"), "bundle_unsafe_name", "absolute_path"),
        HostileTar("nul_in_name", nul_in_name(), "bundle_unsafe_name", "control_character"),
        HostileTar("control_in_name", named("documents/a\x1b[31m.pdf"), "bundle_unsafe_name", "control_character"),
        HostileTar("not_utf8_name", not_utf8_name(), "bundle_unsafe_name", "not_utf8"),
        HostileTar("ten_thousand_members", many_members(), "bundle_too_many_members"),
        HostileTar("huge_declared_gnu", huge_declared(tarfile.GNU_FORMAT), "bundle_too_large"),
        HostileTar("huge_declared_pax", huge_declared(tarfile.PAX_FORMAT), "bundle_too_large"),
    ]
