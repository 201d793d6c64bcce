"""Tests for ``qa.isolate.parse_isolated``: the same documents as ``parse_document``, from a child killed at a deadline.

No mocks: every test starts real child processes from the fork server, and the deadline test
parses a real PDF that keeps pypdf busy for seconds.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pdf_helpers import SLOW_PDF, one_page_pdf

from qa.errors import CorpusError
from qa.ingest import parse_document
from qa.isolate import ParseTimeout, parse_isolated
from qa.types import Block, Document

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts child processes in /proc")


REPORT_PDF = one_page_pdf(b"BT /F1 12 Tf 14 TL 72 720 Td (Annual report) Tj T* (The budget was 2.8 billion.) Tj T* ET")
NOTES_MD = (
    b"# Budget notes\n\nThe budget was 2.8 billion dollars.\n\n## Items\n\n- roads\n- schools\n\n"
    b"| Year | Amount |\n| --- | --- |\n| 2024 | 2.8 |\n"
)
NOTES_TXT = "Budget notes\n\nThe budget was 2.8 billion dollars: 中文, 𝔘, \u2028, \x01, \ufffd.\n".encode()
PAGE_HTML = (
    b"<html><head><title>T</title></head><body><h1>Report</h1><p>The budget was <b>2.8</b> billion.</p>"
    b"<ul><li>roads</li><li>schools</li></ul></body></html>"
)
FILES = {"notes.md": NOTES_MD, "notes.txt": NOTES_TXT, "page.html": PAGE_HTML, "report.pdf": REPORT_PDF}


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (children, their children, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def is_parse_child(pid: int) -> bool:
    """Whether ``pid`` was forked by multiprocessing's fork server (a parse's child runs the server's command
    line), and not, say, a process that a server left by an earlier test of the session started since."""
    try:
        return b"forkserver" in (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:  # it exited while we looked
        return False


def left_over(warm: set[int], wait: float = 5.0) -> set[int]:
    """The parse children among this process's descendants that were not there when ``warm`` was taken,
    waiting up to ``wait`` seconds for them to go (the child has exited when ``parse_isolated`` returns, but
    the listing may lag it under load)."""
    deadline = time.monotonic() + wait
    while (new := {pid for pid in descendants(os.getpid()) - warm if is_parse_child(pid)}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.01)
    return new


@pytest.fixture
def warm_processes() -> set[int]:
    """The fork server started (by one parse), and this process's descendants at that point."""
    parse_isolated("warm.txt", b"warm", seconds=10)
    return descendants(os.getpid())


@pytest.mark.parametrize("doc_id", sorted(FILES))
def test_the_child_returns_the_in_process_document(doc_id: str) -> None:
    """The same Document, blocks included, as parse_document for Markdown, text, HTML and a real PDF."""
    document = parse_isolated(doc_id, FILES[doc_id], seconds=10)
    assert document == parse_document(doc_id, FILES[doc_id])
    assert document.format == doc_id.rsplit(".", 1)[1]


def test_markdown_blocks_come_back_exactly() -> None:
    """Headings keep their level and each list item and table row is its own block, at exact offsets."""
    document = parse_isolated("notes.md", NOTES_MD, seconds=10)
    assert (document.id, document.title, document.format) == ("notes.md", "Budget notes", "md")
    assert document.blocks == (
        Block("heading", 2, 14, 1),
        Block("paragraph", 16, 51, 0),
        Block("heading", 56, 61, 2),
        Block("list_item", 63, 70, 0),
        Block("list_item", 71, 80, 0),
        Block("table_header", 82, 99, 0),
        Block("table_row", 114, 128, 0),
    )


def test_pdf_text_comes_back_exactly() -> None:
    """The PDF's extracted text, pypdf's line breaks included."""
    document = parse_isolated("report.pdf", REPORT_PDF, seconds=10)
    assert document.text == "Annual report\nThe budget was 2.8 billion."
    assert document.title == "Annual report"


@pytest.mark.parametrize("title", ["Given title", "Given \ud800 title with a lone surrogate"])
def test_a_given_title_comes_back_exactly(title: str) -> None:
    """The caller's title replaces the heading, even one holding a lone surrogate (sent with surrogatepass)."""
    document = parse_isolated("notes.md", NOTES_MD, title=title, seconds=10)
    assert document.title == title
    assert document == parse_document("notes.md", NOTES_MD, title=title)


def test_a_20_mb_document_comes_back_whole() -> None:
    """A 20 MB result does not deadlock (the parent reads before joining) and every code point survives.

    The text holds every 97th code point from U+0001 to U+10FFFF, surrogates left out: controls, line
    separators, combining marks, astral characters.
    """
    sample = "".join(chr(c) for c in range(1, 0x110000, 97) if not 0xD800 <= c <= 0xDFFF)
    paragraph = f"Paragraph {sample} ends here."
    text = "Big file\n\n" + "\n\n".join(paragraph for _ in range(20_000_000 // len(paragraph.encode())))
    data = text.encode()
    assert len(data) > 19_900_000
    document = parse_isolated("big.txt", data, seconds=30)
    assert document.text == text
    assert document == parse_document("big.txt", data)


@pytest.mark.parametrize(
    ("doc_id", "data", "message"),
    [
        ("empty.txt", b" \n\n ", "empty.txt: file is empty"),
        ("bad.txt", b"abc\xffdef", "bad.txt: not valid UTF-8 (byte 0xff at offset 3); save it as UTF-8"),
        ("binary.md", b"a\x00b", "binary.md: binary file (contains NUL bytes), not text"),
        ("archive.pdf", b"PK\x03\x04", "archive.pdf: not a PDF file (no %PDF header)"),
        (
            "data.csv",
            b"a,b",
            "data.csv: unsupported file type .csv; use one of .txt, .md, .markdown, .html, .htm, .pdf",
        ),
    ],
)
def test_a_corpus_error_in_the_child_keeps_its_message(doc_id: str, data: bytes, message: str) -> None:
    """parse_document's CorpusError is raised in the parent as a CorpusError (400) with the same message."""
    with pytest.raises(CorpusError) as caught:
        parse_isolated(doc_id, data, seconds=10)
    assert type(caught.value) is CorpusError
    assert str(caught.value) == message
    assert caught.value.status == 400


def test_a_parse_past_its_deadline_is_killed(warm_processes: set[int]) -> None:
    """A PDF that takes 9 s in process raises ParseTimeout (422) within 2 s at seconds=0.5, and leaves no process.

    Regression: the parse went on in an abandoned thread after the server had answered 503.
    """
    started = time.monotonic()
    with pytest.raises(ParseTimeout) as caught:
        parse_isolated("slow.pdf", SLOW_PDF, seconds=0.5)
    took = time.monotonic() - started
    assert 0.5 <= took < 2.0
    assert str(caught.value) == "slow.pdf: parsing took longer than 0.5 s; the file is too complex to index here"
    assert caught.value.status == 422
    assert isinstance(caught.value, CorpusError)
    assert multiprocessing.active_children() == []
    assert left_over(warm_processes) == set()


def test_a_child_killed_by_a_signal_is_an_unparsable_file(warm_processes: set[int]) -> None:
    """A child that dies without answering (here SIGKILL from outside, as the OOM killer does) gives
    CorpusError "<id>: the file could not be parsed" at once, not a wait for the deadline."""
    outcome: list[BaseException] = []

    def parse() -> None:
        try:
            parse_isolated("slow.pdf", SLOW_PDF, seconds=20)
        except CorpusError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=parse)
    worker.start()
    deadline = time.monotonic() + 5
    while not (new := descendants(os.getpid()) - warm_processes) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(new) == 1
    assert all(is_parse_child(pid) for pid in new)  # what left_over looks for, so its checks can fail
    killed_at = time.monotonic()
    os.kill(new.pop(), signal.SIGKILL)
    worker.join(5)
    assert not worker.is_alive()
    assert time.monotonic() - killed_at < 1.0
    assert [(type(exc), str(exc)) for exc in outcome] == [(CorpusError, "slow.pdf: the file could not be parsed")]
    assert left_over(warm_processes) == set()


def test_concurrent_calls_from_threads_each_get_their_document(warm_processes: set[int]) -> None:
    """Four threads parsing at once each get their own file's document (each call has its own process and pipe)."""
    doc_ids = sorted(FILES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        documents = list(pool.map(lambda doc_id: parse_isolated(doc_id, FILES[doc_id], seconds=10), doc_ids))
    assert documents == [parse_document(doc_id, FILES[doc_id]) for doc_id in doc_ids]
    assert [d.id for d in documents] == ["notes.md", "notes.txt", "page.html", "report.pdf"]
    assert left_over(warm_processes) == set()


def test_concurrent_timeouts_and_results_do_not_mix(warm_processes: set[int]) -> None:
    """Two slow PDFs timing out beside two quick files: the quick ones return, the slow ones raise, none is left."""
    jobs = [("slow-1.pdf", SLOW_PDF), ("notes.md", NOTES_MD), ("slow-2.pdf", SLOW_PDF), ("report.pdf", REPORT_PDF)]

    def run(job: tuple[str, bytes]) -> Document | str:
        try:
            return parse_isolated(*job, seconds=1.0)
        except ParseTimeout as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, jobs))
    assert results == [
        "slow-1.pdf: parsing took longer than 1 s; the file is too complex to index here",
        parse_document("notes.md", NOTES_MD),
        "slow-2.pdf: parsing took longer than 1 s; the file is too complex to index here",
        parse_document("report.pdf", REPORT_PDF),
    ]
    assert left_over(warm_processes) == set()


@pytest.mark.parametrize("seconds", [0, -1.0])
def test_a_deadline_must_be_positive(seconds: float) -> None:
    """seconds <= 0 is a programming error, refused before any process starts."""
    with pytest.raises(ValueError, match=r"^seconds \(.*\) must be positive$"):
        parse_isolated("notes.md", NOTES_MD, seconds=seconds)


SCRIPT = """\
import sys
from qa.cli import main
import module_nobody_imported_xyz

if __name__ == "__main__":
    pass
"""


def test_the_fork_server_preloads_a_scripts_imports_that_this_process_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a script (the `qa` console script) the fork server imports the script's top-level imports
    that this process has already imported, so children running the script again find them loaded;
    one this process never imported is left out (its import could fail and stop the fork server)."""
    import types

    import qa.cli  # noqa: F401  # as the console script has imported it
    from qa.isolate import main_preload

    script = tmp_path / "qa"
    script.write_text(SCRIPT, encoding="utf-8")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    fake.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", fake)
    assert main_preload() == ["sys", "qa.cli"]


@pytest.mark.parametrize(("name", "preload"), [("benchmarks.writes", ["benchmarks.writes"]), ("qa.__main__", [])])
def test_the_fork_server_preloads_a_python_m_module_unless_children_skip_it(
    name: str, preload: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m NAME``: children run NAME again, so the fork server imports it; a ``X.__main__``
    module, which children do not run again, is not imported."""
    import importlib.machinery
    import types

    from qa.isolate import main_preload

    fake = types.ModuleType("__main__")
    fake.__spec__ = importlib.machinery.ModuleSpec(name, None)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    assert main_preload() == preload


def test_children_under_a_script_do_not_import_its_modules_again(tmp_path: Path) -> None:
    """A program run as a script that imports qa.cli parses five files: qa.cli is imported twice in all
    (by the program, and once by the fork server), not once more by every child, as before."""
    script = tmp_path / "serve_like.py"
    script.write_text(
        "from qa.cli import main\n"
        "from qa.isolate import parse_isolated\n"
        "if __name__ == '__main__':\n"
        "    for i in range(5):\n"
        "        parse_isolated(f'n{i}.md', b'# Note\\n\\nGoats graze.\\n', seconds=30)\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [line.split("|")[-1].strip() for line in done.stderr.splitlines()].count("qa.cli") == 2
