"""Read source files into documents: plain text, Markdown, HTML and PDF.

A document's id is its path relative to the corpus root with POSIX
separators. Its ``text`` is what every offset refers to: the decoded file for
``.txt`` and ``.md``, the extracted text for HTML and PDF.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import struct
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qa.errors import CorpusError
from qa.htmltext import html_page
from qa.metadata import MetadataError, MetaValue, clean_metadata
from qa.structure import heading_anchors, heading_text, parse_blocks
from qa.types import Block, Document

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
# Larger files are refused rather than read into memory whole.
MAX_FILE_BYTES = 50 * 1024 * 1024
# Lone surrogates cannot be written as UTF-8 (the index files would fail to save) and NUL is refused in
# text files: a PDF's ToUnicode map can produce both, so they become U+FFFD in the extracted text.
_UNWRITABLE = re.compile("[\x00\ud800-\udfff]")
MAX_DOCUMENT_ID_CHARS = 255
# Control, lone-surrogate, format (zero-width, bidirectional overrides) and line/paragraph separator
# characters: invisible or reordering in an id, so two ids that look alike could name different documents.
_UNSEEN_CATEGORIES = frozenset({"Cc", "Cs", "Cf", "Zl", "Zp"})
# Markdown front matter: a YAML block fenced by '---' lines at the very start of the file.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# The metadata file beside a corpus file: 'report.pdf' has 'report.pdf.meta.json'.
SIDECAR_SUFFIX = ".meta.json"


@dataclass(frozen=True, slots=True)
class Problem:
    """A file that was left out of the index, and why."""

    document_id: str
    message: str


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _decode(data: bytes, doc_id: str) -> str:
    for encoding, marks in (
        ("UTF-32", (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")),
        ("UTF-16", (b"\xff\xfe", b"\xfe\xff")),
    ):
        # A byte-order mark, and the NUL bytes of Latin letters in that encoding: text, but not UTF-8.
        if data.startswith(marks) and b"\x00" in data[len(marks[0]) :] and _decodes(data, encoding):
            raise CorpusError(f"{doc_id}: {encoding} text, not UTF-8; save it as UTF-8")
    if b"\x00" in data:
        raise CorpusError(f"{doc_id}: binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{doc_id}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from exc


def _pdf_text(data: bytes, doc_id: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A PDF's text, its pages' texts joined by blank lines (by a line break where a page ends mid-sentence,
    so the sentence goes on over the break), without the running headers and footers (``running_lines``),
    and where each page with text starts: (1-based page number, offset in the text). Pages without text are
    left out of both."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    if not data.lstrip().startswith(b"%PDF"):
        raise CorpusError(f"{doc_id}: not a PDF file (no %PDF header)")
    # pypdf parses untrusted bytes: besides its own errors (a decompression bomb is LimitReachedError,
    # which is not a PdfReadError), damaged files raise these built-in ones (found by fuzzing).
    failures = (
        PyPdfError, DependencyError, NotImplementedError, ValueError, KeyError, IndexError, TypeError,
        AttributeError, ZeroDivisionError, OverflowError, AssertionError, RecursionError, struct.error,
    )  # fmt: skip
    try:
        reader = PdfReader(io.BytesIO(data))
        # An empty user password is how a PDF that only restricts printing or copying is encrypted: viewers
        # open it without asking, and so does this.
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorpusError(f"{doc_id}: the PDF is encrypted (it needs a password to open)")
        if len(reader.pages) == 0:
            raise CorpusError(f"{doc_id}: the PDF has no pages")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except failures as exc:
        raise CorpusError(f"{doc_id}: cannot read the PDF ({exc.__class__.__name__}: {exc})") from exc
    running = running_lines(pages)
    numbered = [(number, kept) for number, page in enumerate(pages, 1) if (kept := _without(page, running))]
    if not numbered:
        raise CorpusError(f"{doc_id}: the PDF has no text layer (a scan?); run OCR on it first")
    parts, starts, at = [], [], 0
    for i, (number, page) in enumerate(numbered):
        starts.append((number, at))
        parts.append(page)
        at += len(page)
        if i + 1 < len(numbered):
            # A page that ends mid-sentence goes on over the break as over a line's end; else a new paragraph.
            gap = "\n" if page[-1] not in _SENTENCE_ENDS else "\n\n"
            parts.append(gap)
            at += len(gap)
    # One character for one: the offsets of the pages hold after the replacement.
    return _UNWRITABLE.sub("\ufffd", "".join(parts)), tuple(starts)


# What ends a page's last sentence (a closing quote or bracket after its stop, a colon before a list).
_SENTENCE_ENDS = frozenset(".!?:;\"'”’)]")
# A page's running header or footer is among its first or last RUNNING_DEPTH lines.
RUNNING_DEPTH = 2


def _running_key(line: str) -> str:
    """A line as a running header or footer repeats it: numbers (the page's) read alike, spaces folded."""
    return " ".join(re.sub(r"\d+", "#", line).split()).casefold()


def running_lines(pages: Sequence[str]) -> frozenset[str]:
    """The running headers and footers of a PDF's pages (``_running_key`` of each): a line among the first or
    last RUNNING_DEPTH lines of at least half the pages with text, and of two at least ("ACME Corp
    Confidential", "Page 2 of 9"). Quoted, they would interrupt a sentence that runs over a page break."""
    texts = [page for page in pages if page]
    if len(texts) < 2:
        return frozenset()
    seen: dict[str, int] = {}
    for page in texts:
        lines = [line for line in page.splitlines() if line.strip()]
        edges = {_running_key(line) for line in lines[:RUNNING_DEPTH] + lines[-RUNNING_DEPTH:]}
        for key in edges:
            seen[key] = seen.get(key, 0) + 1
    return frozenset(key for key, count in seen.items() if count >= max(2, (len(texts) + 1) // 2) and key)


def _without(page: str, running: frozenset[str]) -> str:
    """``page`` without the running lines at its top and bottom (``running_lines``), stripped."""
    if not running:
        return page
    lines = page.split("\n")
    for _ in range(RUNNING_DEPTH):
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines and _running_key(lines[0]) in running:
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and _running_key(lines[-1]) in running:
            lines.pop()
    return "\n".join(lines).strip()


def has_unseen_char(value: str) -> bool:
    """Whether ``value`` holds a control, format, separator or lone-surrogate character."""
    return any(unicodedata.category(c) in _UNSEEN_CATEGORIES for c in value)


def normalize_id(value: str) -> str:
    """The canonical form of a document id (NFC), under which it is stored and looked up."""
    return unicodedata.normalize("NFC", value)


def check_document_id(value: str) -> str:
    """A valid document id in canonical form: a relative POSIX path with a supported suffix, in NFC.

    An id is only ever a key (sources are stored under a hash of it), but ids also show up in citations
    and URLs, so path tricks are refused outright, and so are characters that would let two ids look the
    same (zero-width, bidirectional controls); NFC and NFD spellings of one name are the same id.

    Raises:
        ValueError: Naming the rule the id breaks (the id itself is never repeated).
    """
    if not value or len(value) > MAX_DOCUMENT_ID_CHARS:
        raise ValueError(f"document_id must be 1 to {MAX_DOCUMENT_ID_CHARS} characters")
    if has_unseen_char(value):
        raise ValueError(
            "document_id contains a control character, an invisible format or separator character "
            "(zero-width, bidirectional) or invalid Unicode"
        )
    value = normalize_id(value)
    if value != value.strip():
        raise ValueError("document_id must not start or end with whitespace")
    if "\\" in value:
        raise ValueError("document_id must use '/' as separator, not '\\'")
    if value.startswith("/"):
        raise ValueError("document_id must be a relative path, not an absolute one")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise ValueError("document_id must not contain empty, '.' or '..' path segments")
    suffix = PurePosixPath(value).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(f"document_id must end with one of {', '.join(SUPPORTED_SUFFIXES)}")
    return value


def _title(text: str, blocks: tuple[Block, ...], doc_id: str, page_title: str | None = None) -> str:
    """The first ``h1``, else an HTML page's ``<title>``, else the first heading, else the file's name."""
    headings = [b for b in blocks if b.kind == "heading"]
    first_h1 = next((b for b in headings if b.level == 1), None) if page_title else None
    if first_h1 is not None:
        return heading_text(text, first_h1)
    if page_title:
        return page_title
    return heading_text(text, headings[0]) if headings else PurePosixPath(doc_id).stem or doc_id


def front_matter(text: str, doc_id: str) -> tuple[dict[str, MetaValue], int]:
    """The metadata of a Markdown file's YAML front matter, and where its body starts (0 without one).

    The front matter stays in the document's text (offsets are into the file as written) but is
    neither searched nor quoted. YAML dates become ISO 8601 strings.

    Raises:
        CorpusError: If the front matter is not a YAML mapping, or breaks a metadata rule.
    """
    import yaml

    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, 0
    try:
        data = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        raise CorpusError(f"{doc_id}: the front matter is not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise CorpusError(f"{doc_id}: the front matter must be a YAML mapping of fields")
    data = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in data.items()}
    try:
        return clean_metadata(data), match.end()
    except MetadataError as exc:
        raise CorpusError(f"{doc_id}: front matter: {exc}") from None


def with_metadata(doc: Document, metadata: dict[str, MetaValue]) -> Document:
    """``doc`` with ``metadata`` set over what it had (a sidecar over front matter); its title comes along."""
    if not metadata:
        return doc
    merged = {**doc.metadata, **metadata}
    title = metadata.get("title")
    return dataclasses.replace(doc, metadata=merged, title=title if isinstance(title, str) else doc.title)


def parse_document(
    doc_id: str, data: bytes, *, title: str | None = None, metadata: dict[str, MetaValue] | None = None
) -> Document:
    """Turn a file's bytes into a document, choosing the parser by the id's suffix.

    Args:
        doc_id: The document id (its relative path); its suffix picks the parser.
        data: The file's content.
        title: A title to use instead of the metadata's or the first heading.
        metadata: Checked metadata (``qa.metadata.clean_metadata``), set over the front matter's.

    Returns:
        The parsed document.

    Raises:
        CorpusError: If the file is empty, binary, not UTF-8, an unreadable PDF,
            of an unsupported type, has no text, or bad front matter.
    """
    suffix = PurePosixPath(doc_id).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CorpusError(
            f"{doc_id}: unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if len(data) > MAX_FILE_BYTES:
        raise CorpusError(f"{doc_id}: file is larger than {MAX_FILE_BYTES} bytes")
    if not data.strip():
        raise CorpusError(f"{doc_id}: file is empty")
    anchors: tuple[tuple[int, str], ...] = ()
    pages: tuple[tuple[int, int], ...] = ()
    page_title: str | None = None  # an HTML page's <title>
    if suffix == ".pdf":
        (text, pages), fmt = _pdf_text(data, doc_id), "pdf"
        blocks = parse_blocks(text)
    elif suffix in (".html", ".htm"):
        page = html_page(_decode(data, doc_id))
        text, blocks, anchors, page_title, fmt = page.text, page.blocks, page.anchors, page.title, "html"
    else:
        text = _decode(data, doc_id)
        fmt = "txt" if suffix == ".txt" else "md"
        found, body = front_matter(text, doc_id) if fmt == "md" else ({}, 0)
        metadata = {**found, **(metadata or {})}
        blocks = tuple(
            Block(b.kind, b.start + body, b.end + body, b.level)
            for b in parse_blocks(text[body:], markdown=fmt == "md")
        )
        anchors = heading_anchors(text, blocks) if fmt == "md" else ()
    if not text.strip() or not blocks:
        raise CorpusError(f"{doc_id}: no text found")
    if all(b.kind == "heading" for b in blocks):  # a heading is a section's name, never quoted: nothing to answer from
        raise CorpusError(f"{doc_id}: only headings, no text to quote")
    named = metadata.get("title") if metadata else None
    title = title or (named if isinstance(named, str) else None) or _title(text, blocks, doc_id, page_title)
    return Document(doc_id, title, text, blocks, fmt, metadata or {}, anchors, pages)


def corpus_files(root: Path) -> list[Path]:
    """Supported files under ``root``, sorted, hidden files and folders left out; a link to nothing (or to
    itself) is among them, so that reading it reports it."""
    files = [
        path
        for path in root.rglob("*")
        if (path.is_file() or (path.is_symlink() and not path.exists()))
        and path.suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _refuse_path(path: Path, root: Path, doc_id: str) -> str | None:
    """Why a corpus file is not read before opening it, or None.

    A file name that is not valid UTF-8 decodes to lone surrogates, which no index
    file can store; a control character would show up in every citation; a link
    out of the corpus would index whatever it points at (``/etc/passwd``).
    """
    if has_unseen_char(doc_id):
        return (
            f"{doc_id!r}: the file name contains a control character, an invisible format or separator "
            "character, or is not valid UTF-8; rename it"
        )
    # os.path.realpath, not Path.resolve: on a link loop the latter raises RuntimeError before Python 3.13.
    if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)):
        return f"{doc_id}: a link to a file outside the corpus directory; copy the file in instead"
    if path.stat().st_size > MAX_FILE_BYTES:
        return f"{doc_id}: file is larger than {MAX_FILE_BYTES} bytes"
    return None


def load_corpus(
    root: Path, *, parse: Callable[[list[tuple[str, bytes]]], list[Document | Problem]] | None = None
) -> tuple[list[Document], list[Problem]]:
    """Read every supported file under ``root``.

    Files that cannot be read are reported, not raised, so one bad file does
    not stop the rest of the corpus from being indexed. Links to files outside
    ``root`` are not followed.

    Args:
        root: The corpus directory.
        parse: Parses all files' (id, bytes) at once, in order (``qa.cluster`` parses them as Ray
            tasks); by default each file is parsed here as it is read.

    Returns:
        The documents, sorted by id, and the problems found.

    Raises:
        CorpusError: If ``root`` is not a directory.
    """
    if not root.is_dir():
        raise CorpusError(f"corpus directory {root} does not exist or is not a directory")
    if parse is None:
        read = [item if isinstance(item, Problem) else parse_or_problem(*item) for item in corpus_bytes(root)]
    else:
        items = list(corpus_bytes(root))
        parsed = iter(parse([item for item in items if not isinstance(item, Problem)]))
        read = [item if isinstance(item, Problem) else next(parsed) for item in items]
    read = [with_sidecar(root, item) if isinstance(item, Document) else item for item in read]
    return [d for d in read if isinstance(d, Document)], [p for p in read if isinstance(p, Problem)]


def with_sidecar(root: Path, doc: Document) -> Document | Problem:
    """``doc`` with the metadata of its sidecar file (``NAME.meta.json`` beside ``NAME``), if it has one.

    A sidecar that cannot be read, is not a JSON object or breaks a metadata rule keeps its document
    out of the index, with the reason: indexing it without the metadata asked for would be wrong.
    """
    path = root / f"{doc.id}{SIDECAR_SUFFIX}"
    name = f"{doc.id}{SIDECAR_SUFFIX}"
    if not path.is_file():
        return doc
    try:
        if path.stat().st_size > 1024 * 1024:
            return Problem(doc.id, f"{name}: larger than 1 MiB")
        return with_metadata(doc, clean_metadata(json.loads(path.read_text(encoding="utf-8"))))
    except (OSError, ValueError, MetadataError) as exc:  # ValueError: not UTF-8, not JSON
        return Problem(doc.id, f"{name}: {exc}")


def corpus_bytes(root: Path) -> Iterator[tuple[str, bytes] | Problem]:
    """Each supported file under ``root`` as its document id and bytes, or why it is not read, in id order.

    Two names that differ only in their Unicode normal form (NFC and NFD "café.md") are one id: the second
    is reported, not read over the first."""
    seen: set[str] = set()
    for path in corpus_files(root):
        doc_id = normalize_id(path.relative_to(root).as_posix())
        if doc_id in seen:
            yield Problem(doc_id, f"{doc_id}: another file's name is the same once normalized (NFC); rename one")
            continue
        seen.add(doc_id)
        try:
            refusal = _refuse_path(path, root, doc_id)
            yield Problem(doc_id, refusal) if refusal is not None else (doc_id, path.read_bytes())
        except OSError as exc:
            yield Problem(doc_id, f"{doc_id}: cannot read the file ({exc.strerror or exc})")


def parse_or_problem(doc_id: str, data: bytes) -> Document | Problem:
    """``parse_document``, with a file it refuses reported as a Problem."""
    try:
        return parse_document(doc_id, data)
    except CorpusError as exc:
        return Problem(doc_id, str(exc))


def text_sha256(text: str) -> str:
    """sha256 of a document's text, as stored in the index."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
