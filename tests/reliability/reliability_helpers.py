"""Helpers for the reliability tests: a live uvicorn on loopback, the problem shape, PDFs, corpora, snapshots."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from corpus_helpers import CORPUS_QUESTIONS as QUESTIONS
from http_helpers import assert_problem as assert_problem
from http_helpers import free_port
from http_helpers import live_server as live_server
from pdf_helpers import one_page_pdf_packed, pdf_file, stream

from qa.cli import answer_record
from qa.engine import Engine

API_KEY = "reliability-key-9f3c1e"
_WORD = re.compile(r"\w+")


def answers(engine: Engine, questions: Sequence[str] = QUESTIONS) -> list[dict[str, Any]]:
    """The answer objects of ``questions``, without timings: equal lists mean the same answers."""
    out = []
    for question in questions:
        record = answer_record(engine.ask(question))
        record.pop("took_ms")
        out.append(record)
    return out


def write_corpus(root: Path, files: int, paragraphs: int) -> Path:
    """A generated Markdown corpus: ``files`` documents of ``paragraphs`` two-sentence paragraphs."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        body = "\n\n".join(
            f"Paragraph {j} of file {i} is about topic{i % 17} and item{j}. It also names word{i * 7 + j}."
            for j in range(paragraphs)
        )
        (root / f"doc{i:04d}.md").write_text(f"# Document {i}\n\n## Part\n\n{body}\n", encoding="utf-8")
    return root


def text_pdf(lines: Sequence[str] = ("Annual report", "The budget was 2.8 billion dollars."), **kw: Any) -> bytes:
    """One page showing ``lines`` in Helvetica."""
    ops = b"BT /F1 12 Tf 14 TL 72 720 Td " + b" ".join(b"(%s) Tj T*" % line.encode("latin-1") for line in lines)
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream(ops + b" ET", **kw),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def zero_page_pdf() -> bytes:
    return pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])


def scanned_pdf() -> bytes:
    """A page that only draws a line: no text layer, like a scan."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            stream(b"0 0 m 100 100 l S"),
        ]
    )


def surrogate_pdf() -> bytes:
    """Text whose ToUnicode map gives lone surrogates and NUL: pypdf returns them as they are."""
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
        b"1 begincodespacerange <00> <FF> endcodespacerange 3 beginbfchar <41> <D800> <42> <0000> <43> <DC00> "
        b"endbfchar endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream(b"BT /F1 12 Tf 72 720 Td (Budget ABC report) Tj ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
            stream(cmap),
        ]
    )


def bomb_pdf(megabytes: int = 200) -> bytes:
    """A page whose compressed content stream (about 200 KB) inflates to ``megabytes``: a decompression bomb."""
    packer = zlib.compressobj(9)
    block = b"A" * (1 << 20)
    packed = packer.compress(b"BT /F1 12 Tf 72 720 Td (")
    packed += b"".join(packer.compress(block) for _ in range(megabytes))
    packed += packer.compress(b") Tj ET") + packer.flush()
    return one_page_pdf_packed(packed)


def cyclic_pdf() -> bytes:
    """A page tree that contains itself."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )


class CrcEmbedder:
    """A fast fake model for building big indexes in tests: each word (crc32) picks a fixed random vector.

    Like ``HashEmbedder`` (shared words give similar vectors, no meaning), about 20 times faster:
    the US Code corpus (20,000 passages, 42,000 texts) embeds in about two seconds.
    """

    TABLE_ROWS = 4096

    def __init__(self, dim: int = 32) -> None:
        self._dim = dim
        self._table = np.random.default_rng(20261125).standard_normal((self.TABLE_ROWS, dim))

    @property
    def name(self) -> str:
        return f"crc-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self._dim))
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower()) or [text]
            rows[i] = self._table[
                [zlib.crc32(w.encode("utf-8", "surrogatepass")) % self.TABLE_ROWS for w in words]
            ].sum(0)
        norms = np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(rows / norms, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_passages(texts)


# ---- a real `qa serve` -----------------------------------------------------------------------------

QA = Path(sys.executable).with_name("qa")
READY_WITHIN = 120.0  # model load and index verification, on a busy machine


class QaServe:
    """A ``qa serve`` subprocess on a free loopback port, its output appended to ``log``."""

    def __init__(self, index_dir: Path, log: Path, **settings: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        env.update({"QA_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1", **settings})
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(QA), "serve", "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1]],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, status: int = 200) -> httpx.Response:
        """Wait until /readyz answers ``status`` (200: ready; 503: up, but not ready)."""
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                if response.status_code == status:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"/readyz never answered {status}:\n{self.log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        return self.process.returncode
