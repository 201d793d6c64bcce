"""Hostile files, through ``POST /v1/documents`` (multipart) and through ``qa index`` on a corpus directory.

Each gets a clear 4xx (or a named problem in the indexing report), or is indexed safely; either way
the rest of the corpus is untouched: the same passages, vectors and answers before and after.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import (
    API_KEY,
    QUESTIONS,
    answers,
    assert_problem,
    bomb_pdf,
    cyclic_pdf,
    scanned_pdf,
    surrogate_pdf,
    text_pdf,
    zero_page_pdf,
)

from qa.embed import HashEmbedder
from qa.engine import Engine
from qa.errors import CorpusError
from qa.index import VectorIndex
from qa.indexing import index_corpus
from qa.ingest import MAX_FILE_BYTES, parse_document
from qa.storage import load_index

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ORIGINAL = "immigration-data-sharing.txt"
HUGE_LINE = b"x" * 5_000_000  # 5 MB without a space or a newline
SCRIPTED_HTML = (
    b"<html><head><title>t</title><script>stealCookies('SCRIPT-BODY-1')</script>"
    b"<style>body{background:url('javascript:STYLE-BODY')}</style></head>"
    b'<body onload="ONLOAD-HANDLER()"><h1>Llama care</h1>'
    b'<p onclick="CLICK-HANDLER()">Llamas need <b>fresh</b> water.</p>'
    b'<img src=x onerror="ERROR-HANDLER()"><a href="javascript:HREF-SCRIPT()">Feeding</a>'
    b"<SCRIPT type=module>import('SCRIPT-BODY-2')</SCRIPT >"
    b"<svg onload=SVG-HANDLER()><script>SCRIPT-BODY-3</script></svg>"
    b'<iframe srcdoc="<script>SCRIPT-BODY-4</script>"></iframe><noscript>NOSCRIPT-BODY</noscript>'
    b"<template><script>SCRIPT-BODY-5</script></template><!-- <script>SCRIPT-BODY-6</script> -->"
    b'<p>Shear them in spring.</p><img src=x onerror="UNTERMINATED-HANDLER()"'
)
SCRIPTED_TEXT = "Llama care\n\nLlamas need fresh water.\n\nFeeding\n\nShear them in spring."
HIDDEN = ("SCRIPT-BODY", "STYLE-BODY", "HANDLER", "HREF-SCRIPT", "NOSCRIPT", "stealCookies", "javascript")


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document>Secret</w:document>")
    return buffer.getvalue()


# (file name, content, status, fragment of the problem's detail or of the field error)
REFUSED: list[tuple[str, bytes, int, str]] = [
    ("empty.txt", b"", 400, "empty.txt: file is empty"),
    ("blank.md", b"  \n\t\r\n  ", 400, "blank.md: file is empty"),
    ("binary.txt", bytes(range(256)) * 64, 400, "binary.txt: binary file (contains NUL bytes), not text"),
    ("latin1.md", "# Caf\u00e9\n\nCr\u00e8me.".encode("latin-1"), 400, "latin1.md: not valid UTF-8 (byte 0xe9"),
    ("utf16.txt", "Hello".encode("utf-16"), 400, "utf16.txt: UTF-16 text, not UTF-8; save it as UTF-8"),
    ("garbage.html", bytes(range(128, 256)) * 8, 400, "garbage.html: not valid UTF-8"),
    ("zero-pages.pdf", zero_page_pdf(), 400, "zero-pages.pdf: the PDF has no pages"),
    ("scan.pdf", scanned_pdf(), 400, "scan.pdf: the PDF has no text layer (a scan?); run OCR on it first"),
    ("archive.pdf", zip_bytes(), 400, "archive.pdf: not a PDF file (no %PDF header)"),
    ("bomb.pdf", bomb_pdf(), 400, "bomb.pdf: cannot read the PDF (LimitReachedError"),
    ("cyclic.pdf", cyclic_pdf(), 400, "cyclic.pdf: cannot read the PDF (PdfReadError: Detected cyclic page"),
    ("truncated.pdf", text_pdf()[:120], 400, "truncated.pdf: cannot read the PDF"),
    ("only-script.html", b"<script>alert(1)</script><style>p{}</style>", 400, "only-script.html: no text found"),
    ("slides.pptx", b"PK\x03\x04", 422, "document_id must end with one of .txt"),
    ("../escape.md", b"# Escape\n\nText.", 422, "must not contain empty, '.' or '..' path segments"),
    ("dir/../../etc/passwd.md", b"# P\n\nText.", 422, "must not contain empty, '.' or '..' path segments"),
    ("/etc/passwd.md", b"# P\n\nText.", 422, "must be a relative path"),
    ("a\\..\\b.md", b"# P\n\nText.", 422, "must use '/' as separator"),
    ("nul\x00name.md", b"# P\n\nText.", 422, "contains a control character"),
    ("esc\x1b[31mname.md", b"# P\n\nText.", 422, "contains a control character"),
    # A right-to-left override makes the name read "md.png": ids must not look like other ids.
    ("\u202egnp.md", b"# Mirror\n\nRTL override in the name.", 422, "an invisible format or separator character"),
    # 5 MB without a space make 3,334 passages: more indexing work than one write may cause.
    ("huge-line.txt", HUGE_LINE, 413, "the document makes 3,334 passages; one document may make at most 500"),
]
# (file name, content, the stored text or a check of it)
INDEXED: list[tuple[str, bytes, Callable[[str], bool]]] = [
    ("scripted.html", SCRIPTED_HTML, lambda text: text == SCRIPTED_TEXT),
    ("surrogates.pdf", surrogate_pdf(), lambda text: text == "\ufffdudget \ufffd\ufffd\ufffd report"),
    ("zalgo.md", ("# Z\u0301\u0302\u0303\n\n" + "e\u0301" * 5000 + " \U0001f999").encode(), lambda text: True),
]

# `qa index` is the operator's tool: no bound on a document's passages there.
CORPUS_INDEXED = [("huge-line.txt", HUGE_LINE, lambda text: text == HUGE_LINE.decode()), *INDEXED]


def multipart(name: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body written byte for byte, so names reach the server unescaped (httpx percent-encodes NUL)."""
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="' + name.encode("utf-8") + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--b0undary--\r\n"
    )
    return body, {**AUTH, "Content-Type": "multipart/form-data; boundary=b0undary"}


def state(client: TestClient) -> dict[str, Any]:
    """What a reader sees of the original corpus: its document, its answers and its search results."""
    asked = [client.post("/v1/ask", json={"question": q}).json() for q in QUESTIONS]
    for answer in asked:
        answer.pop("took_ms")
    return {
        "document": client.get(f"/v1/documents/{ORIGINAL}").json(),
        "answers": asked,
        "search": [client.get("/v1/search", params={"q": q, "k": 5}).json() for q in QUESTIONS[:2]],
    }


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Any:
    with TestClient(make_app(api_keys=[API_KEY])) as client:
        yield client


def test_hostile_uploads_are_refused_or_indexed_safely(client: TestClient, figure: Callable[..., None]) -> None:
    before = state(client)
    for name, data, status, fragment in REFUSED:
        body, headers = multipart(name, data)
        response = client.post("/v1/documents", content=body, headers=headers)
        problem = assert_problem(response, status)
        assert fragment in problem["detail"] + " ".join(e["msg"] for e in problem.get("errors", [])), name
    assert state(client) == before
    assert client.get("/v1/documents").json()["total"] == 1
    for name, data, check in INDEXED:
        body, headers = multipart(name, data)
        response = client.post("/v1/documents", content=body, headers=headers)
        assert response.status_code == 201, (name, response.text)
        stored = client.get(f"/v1/documents/{name}").json()["text"]
        assert check(stored), name
        assert not any(word in stored for word in HIDDEN), name
    after = state(client)
    assert after["document"] == before["document"]
    for name, _, _ in INDEXED:
        assert client.delete(f"/v1/documents/{name}", headers=AUTH).status_code == 204
    assert state(client) == before
    figure(
        "hostile_files",
        api_refused=len(REFUSED),
        api_indexed_safely=len(INDEXED),
        pdf_mutations=PDF_EXAMPLES,
        html_examples=HTML_EXAMPLES,
    )


def test_html_script_bodies_and_handlers_never_reach_the_text() -> None:
    doc = parse_document("scripted.html", SCRIPTED_HTML)
    assert doc.text == SCRIPTED_TEXT
    assert [doc.text[b.start : b.end] for b in doc.blocks] == SCRIPTED_TEXT.split("\n\n")


# HTML made of whole elements: the words inside scripts, styles, comments and attributes are marked.
_VISIBLE = st.sampled_from(["Llamas", "graze", "on", "ridges", "&amp;", "&lt;b&gt;", "\u202e", "e\u0301", "\U0001f999"])
_HOSTILE = st.sampled_from(
    [
        "<script>MARK()</script>", "<SCRIPT>MARK</SCRIPT>", "<script type=module>MARK</script >",
        "<script>if (a </script\n>", "<style>MARK{}</style>", "<!-- MARK -->", "<img src=x onerror=MARK()>",
        '<a href="javascript:MARK()">', "<svg onload=MARK()>", "<iframe srcdoc='<script>MARK</script>'></iframe>",
        "<noscript>MARK</noscript>", "<template>MARK</template>", "<p onclick='MARK()'>", "<math>MARK</math>",
        "<object data=MARK>MARK</object>", "<title>MARK</title>", "<!DOCTYPE MARK>", "<?MARK?>",
    ]
)  # fmt: skip
_STRUCTURE = st.sampled_from(["<p>", "</p>", "<h2>", "</h2>", "<li>", "</li>", "<tr><td>", "</td></tr>", "<br>", " "])
_TAIL = st.sampled_from(["", "<img src=x onerror=MARK()", "<script>MARK", "<!-- MARK", "<p onclick='MARK"])


HTML_EXAMPLES = 300
PDF_EXAMPLES = 400


@settings(max_examples=HTML_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.one_of(_VISIBLE, _HOSTILE, _STRUCTURE), max_size=40), tail=_TAIL)
def test_fuzzed_html_keeps_markup_and_scripts_out(parts: list[str], tail: str) -> None:
    markup = " ".join(parts) + tail
    try:
        doc = parse_document("f.html", markup.encode())
    except CorpusError as exc:
        assert str(exc) in ("f.html: no text found", "f.html: file is empty", "f.html: only headings, no text to quote")
        return
    assert "MARK" not in doc.text
    assert all(doc.text[b.start : b.end].strip() for b in doc.blocks)


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    inserts = [b"[", b"<<", b">>", b" 0 R", b"9999999999", b"-1", b"/Filter /FlateDecode", b"(", b")", b"\\"]
    for kind, where, value in edits:
        where %= max(1, len(out))
        if kind == 0:
            out[where : where + 1] = bytes([value % 256])
        elif kind == 1:
            del out[where : where + 1 + value % 20]
        elif kind == 2:
            out[where:where] = inserts[value % len(inserts)]
        else:
            del out[max(where, 16) :]
    return bytes(out)


_PDFS = [text_pdf(), text_pdf(flate=True), surrogate_pdf(), scanned_pdf()]
_EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8)


@settings(max_examples=PDF_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(range(len(_PDFS))), edits=_EDITS)
def test_damaged_pdfs_are_refused_or_read_never_crash(base: int, edits: list[tuple[int, int, int]]) -> None:
    """Regression: pypdf raised LimitReachedError (a self-referencing stream) and NotImplementedError
    (an unknown filter name) on damaged PDFs; neither was caught, so the upload was a 500 and
    `qa index` stopped with a traceback instead of skipping the file."""
    try:
        doc = parse_document("f.pdf", _mutate(_PDFS[base], edits))
    except CorpusError as exc:
        assert str(exc).startswith("f.pdf: ")
        return
    assert not any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in doc.text)


# ---- a corpus directory ---------------------------------------------------------------------------


def _hostile_corpus(root: Path, corpus_dir: Path, outside: Path, *, refused_only: bool = False) -> dict[str, str]:
    """The default corpus plus hostile files; returns the problem expected for each refused file."""
    root.mkdir()
    (root / ORIGINAL).write_bytes((corpus_dir / ORIGINAL).read_bytes())
    expected: dict[str, str] = {}
    for name, data, status, fragment in REFUSED:
        if status == 400:  # the 422s are names a directory cannot hold, or unsupported types (not listed)
            (root / name).write_bytes(data)
            expected[name] = fragment
    for name, data, _ in [] if refused_only else CORPUS_INDEXED:
        (root / name).write_bytes(data)
    (root / "\u202egnp.md").write_bytes(b"# Mirror\n\nRTL override in the name.")
    expected["\u202egnp.md"] = "the file name contains a control character, an invisible format or separator"
    bad_name = os.fsdecode(b"not-utf8-\xff.md")
    (root / bad_name).write_bytes(b"# Name\n\nText.")
    expected[bad_name] = (
        "the file name contains a control character, an invisible format or separator character, or is not valid UTF-8"
    )
    (root / "new\nline.md").write_bytes(b"# Name\n\nText.")
    expected["new\nline.md"] = "the file name contains a control character"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "passwd.txt").symlink_to(outside)
    expected["passwd.txt"] = "passwd.txt: a link to a file outside the corpus directory"
    if not refused_only:
        (root / "inside-link.txt").symlink_to(root / ORIGINAL)  # a link within the corpus is read
    with (root / "sparse.txt").open("wb") as handle:  # 60 MB on paper, nothing on disk: refused before reading
        handle.truncate(MAX_FILE_BYTES + (10 << 20))
    expected["sparse.txt"] = f"sparse.txt: file is larger than {MAX_FILE_BYTES} bytes"
    # Links to nothing, and a loop of two links, are reported rather than passed over in silence.
    (root / "dangling.md").symlink_to(root / "gone.md")
    expected["dangling.md"] = "dangling.md: cannot read the file (No such file or directory)"
    (root / "loop-a.md").symlink_to(root / "loop-b.md")
    (root / "loop-b.md").symlink_to(root / "loop-a.md")
    expected["loop-a.md"] = expected["loop-b.md"] = "cannot read the file (Too many levels of symbolic links)"
    # The same name in NFC and NFD is one id: the first (by code point) is read, the other reported.
    if not refused_only:
        (root / "cafe\u0301.md").write_bytes(b"# NFD\n\nThe train departs at dawn.")
        (root / "caf\u00e9.md").write_bytes(b"# NFC\n\nThe train departs at noon.")
        expected["caf\u00e9.md"] = "caf\u00e9.md: another file's name is the same once normalized (NFC); rename one"
    os.mkfifo(root / "pipe.txt")  # reading it would block forever: not a regular file, not listed
    (root / "folder.md").mkdir()
    return expected


def _passages_of(index: VectorIndex, doc_id: str) -> list[tuple[Any, ...]]:
    return [
        (p.id, p.start, p.end, p.text, p.section_path, tuple(np.round(index.passage_vectors[i], 6)))
        for i, p in enumerate(index.passages)
        if p.doc_id == doc_id
    ]


def test_hostile_corpus_files_are_reported_and_the_rest_indexed(
    corpus_dir: Path, hash_index: VectorIndex, tmp_path: Path, figure: Callable[..., None]
) -> None:
    """Regression: a file name that is not UTF-8 stopped `qa index` with UnicodeEncodeError while saving
    (ids with lone surrogates cannot be written), and a link to /etc/passwd was indexed."""
    expected = _hostile_corpus(tmp_path / "corpus", corpus_dir, tmp_path / "outside-secret.txt")
    report = index_corpus(tmp_path / "corpus", tmp_path / "index", embedder=HashEmbedder())
    problems = {p.document_id: p.message for p in report.problems}
    assert sorted(problems) == sorted(expected)
    for name, fragment in expected.items():
        assert fragment in problems[name], (name, problems[name])
    index = load_index(tmp_path / "index", model="hash-64")
    indexed = sorted([ORIGINAL, "inside-link.txt", "caf\u00e9.md"] + [name for name, _, _ in CORPUS_INDEXED])
    assert sorted(index.documents) == indexed
    for name, _, check in CORPUS_INDEXED:
        assert check(index.documents[name].text) and not any(w in index.documents[name].text for w in HIDDEN)
    assert "dawn" in index.documents["caf\u00e9.md"].text  # the NFD file, read first; the NFC one not over it
    assert _passages_of(index, ORIGINAL) == _passages_of(hash_index, ORIGINAL)
    figure("hostile_files", corpus_refused=len(expected), corpus_indexed_safely=len(CORPUS_INDEXED) + 1)


def test_refused_corpus_files_leave_no_trace(corpus_dir: Path, hash_engine: Engine, tmp_path: Path) -> None:
    """Refused files change nothing: the index equals the one of the clean corpus, answers included."""
    _hostile_corpus(tmp_path / "corpus", corpus_dir, tmp_path / "outside.txt", refused_only=True)
    index_corpus(tmp_path / "corpus", tmp_path / "index", embedder=HashEmbedder())
    index = load_index(tmp_path / "index", model="hash-64")
    assert index.documents == hash_engine.index.documents
    assert _passages_of(index, ORIGINAL) == _passages_of(hash_engine.index, ORIGINAL)
    assert answers(hash_engine.with_index(index)) == answers(hash_engine)


def test_qa_index_cli_on_only_hostile_files_exits_1(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data, _, _ in REFUSED[:8]:
        (corpus / name).write_bytes(data)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("qa")), "index", str(corpus), "--index-dir", str(tmp_path / "index")],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("QA_")},
    )
    assert result.returncode == 1
    assert f"Error: no readable documents in {corpus}" in result.stderr
    for name, _, _, fragment in REFUSED[:8]:
        assert f"skipped {fragment}" in result.stderr, name
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "index" / "current").exists()


@pytest.mark.model
@pytest.mark.slow
def test_qa_index_cli_skips_hostile_files_and_indexes_the_rest(
    corpus_dir: Path, tmp_path: Path, figure: Callable[..., None]
) -> None:
    """The real command, real model: every hostile file is named on stderr, the rest is indexed, exit 0."""
    expected = _hostile_corpus(tmp_path / "corpus", corpus_dir, tmp_path / "outside.txt")
    (tmp_path / "corpus" / "huge-line.txt").unlink()  # 6,668 passages: minutes on the real model, seconds on hash
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    command = [str(Path(sys.executable).with_name("qa")), "index", str(tmp_path / "corpus")]
    result = subprocess.run(
        [*command, "--index-dir", str(tmp_path / "index")], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name, fragment in expected.items():
        assert fragment in result.stderr, name
    index = load_index(tmp_path / "index", model="all-MiniLM-L6-v2")
    assert ORIGINAL in index.documents and "passwd.txt" not in index.documents
    assert "root:x:0:0" not in "".join(d.text for d in index.documents.values())
    figure("hostile_files", cli_refused=len(expected))
