"""PDFs built by hand, byte for byte: for parser tests and hostile uploads."""

from __future__ import annotations

import zlib
from collections.abc import Sequence


def pdf_file(objects: Sequence[bytes], *, root: int = 1) -> bytes:
    """A PDF of the given objects (numbered from 1) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def stream(data: bytes, *, flate: bool = False) -> bytes:
    if flate:
        data = zlib.compress(data)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def one_page_pdf(content: bytes) -> bytes:
    """One Helvetica page whose content stream (Flate-compressed) is ``content``."""
    return one_page_pdf_packed(zlib.compress(content, 9))


def one_page_pdf_packed(packed: bytes) -> bytes:
    """One Helvetica page whose content stream is ``packed``, already Flate-compressed."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


# 2 MiB of `0 0 m` (move-to) operators compress to 4.7 KB; pypdf's text extraction walks each of the
# 350,000 operators in Python: 9 s in process on the 2-core test machine (1 MiB: 4.5 s).
SLOW_PDF = one_page_pdf(b"BT /F1 12 Tf 72 720 Td (slow) Tj ET " + b"0 0 m " * (2 * 1024 * 1024 // 6))
