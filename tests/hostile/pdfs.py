"""Hostile PDFs, built in code: each is small on the wire and is meant to make a naive reader spend far more
memory or time than its size. The verification upload must refuse each with a clear 4xx.

The files are hand-assembled (objects, a classic cross-reference table, a trailer) so that nothing in them
depends on a PDF library's idea of a sane document.
"""
from __future__ import annotations

import zlib

MiB = 1024 * 1024


def assemble(objects: list[bytes], *, root: int = 1) -> bytes:
    """A PDF of the given object bodies (object i + 1 is objects[i]) with a classic xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n").encode()
    return bytes(out)


def stream(data: bytes, *, extra: str = "", flate: bool = False) -> bytes:
    head = f"<< /Length {len(data)}{' /Filter /FlateDecode' if flate else ''} {extra}>>\nstream\n".encode()
    return head + data + b"\nendstream"


def deflated_zeros(size: int) -> bytes:
    """`size` zero bytes deflated, made a MiB at a time (never held whole): about 1 KiB per MiB."""
    deflater = zlib.compressobj(9)
    chunk = bytes(MiB)
    parts = [deflater.compress(chunk) for _ in range(size // MiB)]
    parts.append(deflater.flush())
    return b"".join(parts)


def deflate_bomb(inflated: int = 512 * MiB) -> bytes:
    """A one-page PDF whose document security store (/DSS) holds a "certificate" stream that inflates to
    `inflated` bytes: about 500 KiB on the wire for 512 MiB. Any validator reads the DSS to check signatures
    offline."""
    bomb = deflated_zeros(inflated)
    return assemble([
        b"<< /Type /Catalog /Pages 2 0 R /DSS 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Type /DSS /Certs [5 0 R] >>",
        stream(bomb, flate=True),
    ])


def object_stream_bomb(inflated: int = 512 * MiB) -> bytes:
    """A PDF whose interactive form (/AcroForm, where signature fields live) sits in a compressed object stream
    that inflates to `inflated` bytes (zeros after the object): a validator must inflate it to find the
    signatures at all. About 500 KiB on the wire for 512 MiB."""
    header = b"2 0 "
    deflater = zlib.compressobj(9)
    parts = [deflater.compress(header + b"<< /Fields [] >>\n")]
    chunk = bytes(MiB)
    parts += [deflater.compress(chunk) for _ in range(inflated // MiB)]
    parts.append(deflater.flush())
    objstm = stream(b"".join(parts), flate=True, extra=f"/Type /ObjStm /N 1 /First {len(header)} ")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in ((1, b"<< /Type /Catalog /Pages 3 0 R /AcroForm 2 0 R >>"),
                         (3, b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>"),
                         (4, b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 595 842] >>"),
                         (5, objstm)):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    offsets[6] = len(out)
    # object 2 is the first object of object stream 5: only a cross-reference stream can say so
    rows = [(0, 0, 65535), (1, offsets[1], 0), (2, 5, 0), (1, offsets[3], 0), (1, offsets[4], 0),
            (1, offsets[5], 0), (1, offsets[6], 0)]
    table = b"".join(t.to_bytes(1, "big") + f.to_bytes(4, "big") + g.to_bytes(2, "big") for t, f, g in rows)
    out += b"6 0 obj\n" + stream(table, extra=f"/Type /XRef /Size {len(rows)} /W [1 4 2] /Root 1 0 R ") \
        + b"\nendobj\n"
    out += f"startxref\n{offsets[6]}\n%%EOF\n".encode()
    return bytes(out)


def many_signature_fields(count: int = 2000) -> bytes:
    """A one-page PDF with `count` empty signature fields (each a widget on the page): about 100 KiB for 2,000.
    A validator that looks at every field before deciding does `count` times the work of a real record."""
    first_field = 4
    refs = " ".join(f"{first_field + i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + refs.encode() + b"] /SigFlags 3 >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [" + refs.encode() + b"] >>",
    ]
    objects += [f"<< /FT /Sig /T (Signature{i}) /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /F 2 /P 3 0 R >>"
                .encode() for i in range(count)]
    return assemble(objects)
