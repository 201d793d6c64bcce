"""Tests for ``qa.ingest``: every format, every refusal, and document ids."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pdf_helpers import pdf_file

from qa.chunk import chunk_document
from qa.errors import CorpusError
from qa.ingest import MAX_FILE_BYTES, Problem, corpus_files, load_corpus, parse_document, text_sha256


def make_pdf(lines: list[str], *, with_text: bool = True) -> bytes:
    """A minimal valid PDF whose single page shows ``lines`` (latin-1), or only a drawn line.

    Args:
        lines: Lines of text, top to bottom.
        with_text: False gives a page with no text layer, like a scan.
    """
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = ("\n".join(ops) if with_text else "0 0 m 100 100 l S").encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_file(objects)


PDF_LINES = ["Annual Report", "Budget", "The budget was 2.8 billion dollars in 2021.", "It grew every year."]


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


# --- formats -----------------------------------------------------------------------------------


def test_txt_text_is_the_decoded_file_unchanged() -> None:
    raw = "Title\r\nOverview\r\nCaf\u00e9 \u2019quoted\u2019 text \U0001f600.\r\n\r\n".encode()
    doc = parse_document("notes.txt", raw)
    assert doc.text == raw.decode("utf-8")
    assert (doc.id, doc.title, doc.format) == ("notes.txt", "Title", "txt")


def test_utf8_bom_is_not_part_of_the_text() -> None:
    doc = parse_document("bom.txt", b"\xef\xbb\xbfTitle\nText.\n")
    assert doc.text == "Title\nText.\n"


@pytest.mark.parametrize("suffix", [".md", ".markdown", ".MD"])
def test_markdown_formats(suffix: str) -> None:
    doc = parse_document("guide" + suffix, b"# Guide\n\n## Install\n\nRun it.\n")
    assert (doc.format, doc.title) == ("md", "Guide")
    assert [p.section_path for p in chunk_document(doc)] == [("Install",)]


@pytest.mark.parametrize("suffix", [".html", ".htm"])
def test_html_formats(suffix: str) -> None:
    doc = parse_document("page" + suffix, b"<h1>Page</h1><p>Hello <i>world</i>.</p>")
    assert (doc.format, doc.title, doc.text) == ("html", "Page", "Page\n\nHello world.")


def test_pdf_text_layer_is_extracted() -> None:
    doc = parse_document("reports/annual.pdf", make_pdf(PDF_LINES))
    assert doc.format == "pdf"
    assert doc.text == "\n".join(PDF_LINES)
    assert doc.title == "Annual Report"
    passages = chunk_document(doc)
    assert [(p.section_path, p.text) for p in passages] == [
        (("Budget",), "The budget was 2.8 billion dollars in 2021."),
        (("Budget",), "It grew every year."),
    ]


def test_title_falls_back_to_the_file_name() -> None:
    doc = parse_document("dir/lower-case-notes.txt", b"just some text.\nmore text.\n")
    assert doc.title == "lower-case-notes"


def test_explicit_title_wins() -> None:
    assert parse_document("a.md", b"# Heading\n\nText.\n", title="Given").title == "Given"


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_id", "data", "message"),
    [
        ("empty.txt", b"", "empty.txt: file is empty"),
        ("blank.md", b" \n\t\r\n", "blank.md: file is empty"),
        ("binary.txt", b"abc\x00def", "binary.txt: binary file (contains NUL bytes), not text"),
        (
            "latin1.txt",
            "Caf\u00e9 cr\u00e8me".encode("latin-1"),
            "latin1.txt: not valid UTF-8 (byte 0xe9 at offset 3); save it as UTF-8",
        ),
        (
            "latin1.html",
            "<p>na\u00efve</p>".encode("latin-1"),
            "latin1.html: not valid UTF-8 (byte 0xef at offset 5); save it as UTF-8",
        ),
        ("archive.pdf", zip_bytes(), "archive.pdf: not a PDF file (no %PDF header)"),
        (
            "scan.pdf",
            make_pdf([], with_text=False),
            "scan.pdf: the PDF has no text layer (a scan?); run OCR on it first",
        ),
        ("only-script.html", b"<script>alert(1)</script>", "only-script.html: no text found"),
        # Headings name sections and are never quoted: such a file was indexed as 0 passages, without a word.
        (
            "outline.md",
            b"# Plan\n\n## Goals\n\n## Risks\n",
            "outline.md: only headings, no text to quote",
        ),
        (
            "slides.pptx",
            b"PK\x03\x04",
            "slides.pptx: unsupported file type .pptx; use one of .txt, .md, .markdown, .html, .htm, .pdf",
        ),
        ("README", b"text", "README: unsupported file type (none); use one of .txt, .md, .markdown, .html, .htm, .pdf"),
    ],
)
def test_unreadable_files_are_refused_with_a_message_naming_them(doc_id: str, data: bytes, message: str) -> None:
    with pytest.raises(CorpusError) as caught:
        parse_document(doc_id, data)
    assert str(caught.value) == message


def test_truncated_pdf_is_refused() -> None:
    data = make_pdf(PDF_LINES)[:60]
    with pytest.raises(CorpusError, match=r"^cut\.pdf: "):
        parse_document("cut.pdf", data)


def test_file_over_the_size_limit_is_refused() -> None:
    with pytest.raises(CorpusError, match=rf"^big\.txt: file is larger than {MAX_FILE_BYTES} bytes$"):
        parse_document("big.txt", b"a" * (MAX_FILE_BYTES + 1))


# --- a corpus directory -------------------------------------------------------------------------


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    files = {
        "a.txt": b"Alpha\nOverview\nAlpha text.\n",
        "guides/b.md": b"# Beta\n\n## Setup\n\nBeta text.\n",
        "guides/deep/c.html": b"<h1>Gamma</h1><p>Gamma text.</p>",
        "reports/d.pdf": make_pdf(PDF_LINES),
        "bad/empty.txt": b"",
        "bad/binary.md": b"\x00\x01\x02",
        "bad/latin1.txt": "Stra\u00dfe".encode("latin-1"),
        "bad/zip.pdf": zip_bytes(),
        "bad/scan.pdf": make_pdf([], with_text=False),
        ".hidden.txt": b"Hidden\nSecret text.\n",
        ".git/notes.md": b"# Hidden folder\n\nSecret.\n",
        "guides/.drafts/e.md": b"# Draft\n\nSecret.\n",
        "image.png": b"\x89PNG\r\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_load_corpus_keeps_the_good_files_and_reports_the_bad(mixed_corpus: Path) -> None:
    documents, problems = load_corpus(mixed_corpus)
    assert [d.id for d in documents] == ["a.txt", "guides/b.md", "guides/deep/c.html", "reports/d.pdf"]
    assert [d.format for d in documents] == ["txt", "md", "html", "pdf"]
    assert problems == [
        Problem("bad/binary.md", "bad/binary.md: binary file (contains NUL bytes), not text"),
        Problem("bad/empty.txt", "bad/empty.txt: file is empty"),
        Problem("bad/latin1.txt", "bad/latin1.txt: not valid UTF-8 (byte 0xdf at offset 4); save it as UTF-8"),
        Problem("bad/scan.pdf", "bad/scan.pdf: the PDF has no text layer (a scan?); run OCR on it first"),
        Problem("bad/zip.pdf", "bad/zip.pdf: not a PDF file (no %PDF header)"),
    ]


def test_hidden_files_and_folders_and_unsupported_types_are_skipped(mixed_corpus: Path) -> None:
    ids = [path.relative_to(mixed_corpus).as_posix() for path in corpus_files(mixed_corpus)]
    assert ids == [
        "a.txt",
        "bad/binary.md",
        "bad/empty.txt",
        "bad/latin1.txt",
        "bad/scan.pdf",
        "bad/zip.pdf",
        "guides/b.md",
        "guides/deep/c.html",
        "reports/d.pdf",
    ]


def test_missing_corpus_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"corpus directory .*nowhere does not exist or is not a directory"):
        load_corpus(tmp_path / "nowhere")


def test_default_corpus_document(corpus_dir: Path) -> None:
    documents, problems = load_corpus(corpus_dir)
    assert problems == []
    (doc,) = documents
    assert doc.id == "immigration-data-sharing.txt"
    assert doc.text == (corpus_dir / doc.id).read_text(encoding="utf-8")
    assert text_sha256(doc.text) == text_sha256((corpus_dir / doc.id).read_bytes().decode())


@pytest.mark.parametrize(
    ("markup", "title"),
    [
        (b"<title>Data Retention Rules</title><p>Records are kept.</p>", "Data Retention Rules"),  # no heading
        (b"<title>Rules</title><h2>Scope</h2><p>Records are kept.</p>", "Rules"),  # no h1: the page's title
        (b"<title>Rules | Example Inc.</title><h2>Scope</h2><h1>Retention</h1><p>Kept.</p>", "Retention"),
        (b"<h2>Scope</h2><p>Records are kept.</p>", "Scope"),  # neither: the first heading, as before
    ],
)
def test_an_html_page_is_titled_by_its_h1_then_its_title_element(markup: bytes, title: str) -> None:
    assert parse_document("rules.html", markup).title == title
