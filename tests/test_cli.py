"""Tests for the ``qa`` command: exit codes, exact output, JSON Lines, stdin mode.

Most run in-process with click's CliRunner, so the real model loads once for the session; two run
the installed console script in a subprocess, as a user would.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from corpus_helpers import span_of

from qa.cli import main
from qa.config import get_settings
from qa.embed import HashEmbedder
from qa.indexing import index_corpus
from qa.storage import writer_lock
from qa.types import Document

QA = Path(sys.executable).parent / "qa"
ANSWER_KEYS = ["question", "answerable", "answer", "confidence", "citations", "took_ms", "reason", "answers"]
CITATION_KEYS = [
    "quote",
    "document_id",
    "document_title",
    "section",
    "section_path",
    "start",
    "end",
    "passage_id",
    "score",
    "document_metadata",
    "document_version",
    "anchor",
    "url",
    "page",
    "pages",
    "page_start",
    "page_end",
]
AGENCIES = "How many agencies participate in Secure Communities?"
# The answer to AGENCIES: the Secure Communities sentence that gives the number of agencies.
AGENCIES_ANSWER = "Over 3,000 agencies participate, sharing biometric data to identify removable noncitizens."
FUSION = "How many fusion centers are there?"
SEARCH_KEYS = ["passage_id", "document_id", "document_title", "section", "section_path", "text", "start", "end"]
SEARCH_KEYS += ["score", "highlights", "document_metadata"]


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """Settings from a clean environment: QA_INDEX_DIR points at an empty folder until a test sets it."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "no-index"))
    monkeypatch.setenv("QA_THREADS", "1")  # see conftest.embedder
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


_PROGRESS = re.compile(r"^(Loading weights|embedding):")


def messages(result: Result) -> list[str]:
    """Lines of stderr, progress bars left out."""
    return [line for line in result.stderr.splitlines() if line.strip() and not _PROGRESS.match(line)]


def json_lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_contract(record: dict[str, object], question: str) -> None:
    assert list(record) == ANSWER_KEYS
    assert record["question"] == question
    citations = record["citations"]
    assert isinstance(citations, list) and citations
    for citation in citations:
        assert list(citation) == CITATION_KEYS
    if record["answerable"]:
        assert record["answer"] == citations[0]["quote"]
    else:
        assert record["answer"] is None


# --- without the model ------------------------------------------------------------------------------


def test_help_is_instant_and_lists_the_commands() -> None:
    """The console script answers --help without importing torch, faiss or the model."""
    heavy = "('torch', 'faiss', 'sentence_transformers', 'bm25s')"
    probe = f"import sys, qa.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
    result = subprocess.run([str(QA), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "Usage: qa [OPTIONS] COMMAND [ARGS]..." in result.stdout
    for command in ("index", "ask", "search", "show"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["ask"], id="no-question"),
        pytest.param(["ask", "-k", "0", "q"], id="k-too-small"),
        pytest.param(["ask", "-k", "21", "q"], id="k-too-large"),
        pytest.param(["search"], id="no-query"),
        pytest.param(["show"], id="no-document"),
        pytest.param(["nope"], id="unknown-command"),
    ],
)
def test_usage_errors_exit_2(settings_env: pytest.MonkeyPatch, args: list[str]) -> None:
    assert invoke(*args).exit_code == 2


def test_index_of_a_missing_corpus_exits_1(settings_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = invoke("index", str(tmp_path / "missing"), "--index-dir", str(tmp_path / "index"))
    assert result.exit_code == 1
    assert result.stderr == f"Error: corpus directory {tmp_path / 'missing'} does not exist or is not a directory\n"


@pytest.fixture
def show_index(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A HashEmbedder index of files whose bytes `qa show` must reproduce exactly."""
    files = {
        "crlf.txt": "Title\r\nOverview\r\nCaf\u00e9 \u2019quoted\u2019 \U0001f600.\r\n\r\nNo final newline".encode(),
        "sub/notes.md": b"# Notes\n\n## Part\n\nTabs\there.\n\n",
    }
    corpus = tmp_path / "corpus"
    for name, data in files.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_bytes(data)
    index_dir = tmp_path / "index"
    index_corpus(corpus, index_dir, embedder=HashEmbedder())
    return index_dir, files


@pytest.mark.parametrize("doc_id", ["crlf.txt", "sub/notes.md"])
def test_show_prints_the_text_byte_for_byte(
    settings_env: pytest.MonkeyPatch, show_index: tuple[Path, dict[str, bytes]], doc_id: str
) -> None:
    index_dir, files = show_index
    settings_env.setenv("QA_INDEX_DIR", str(index_dir))
    result = invoke("show", doc_id)
    assert result.exit_code == 0
    assert result.stdout_bytes == files[doc_id]


def test_show_in_a_subprocess_prints_the_default_corpus_byte_for_byte(hash_index_dir: Path, corpus_dir: Path) -> None:
    env = {**os.environ, "QA_INDEX_DIR": str(hash_index_dir)}
    result = subprocess.run([str(QA), "show", "immigration-data-sharing.txt"], capture_output=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (corpus_dir / "immigration-data-sharing.txt").read_bytes()


def test_show_json(settings_env: pytest.MonkeyPatch, show_index: tuple[Path, dict[str, bytes]]) -> None:
    index_dir, files = show_index
    result = invoke("show", "crlf.txt", "--json", "--index-dir", str(index_dir))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "id": "crlf.txt", "title": "Title", "text": files["crlf.txt"].decode(), "metadata": {},
    }  # fmt: skip


def test_show_unknown_document_exits_1(settings_env: pytest.MonkeyPatch, hash_index_dir: Path) -> None:
    result = invoke("show", "nope.txt", "--index-dir", str(hash_index_dir))
    assert result.exit_code == 1
    assert result.stderr == "Error: no document 'nope.txt' in the index\n"
    assert result.stdout == ""


def test_show_without_an_index_exits_1(settings_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = invoke("show", "a.txt")
    assert result.exit_code == 1
    missing = tmp_path / "no-index"
    assert result.stderr == f"Error: no index in {missing}: build one with `qa index --index-dir {missing}`\n"


# --- misplaced paths and hostile input (no model: each is refused before it loads) --------------------

GOLD = Path(__file__).resolve().parent / "data" / "gold.jsonl"
NO_DOCUMENTS = "no readable documents in {} (.txt, .md, .html, .pdf)"


@pytest.mark.parametrize("bad_file", [False, True], ids=["empty-folder", "only-an-unreadable-file"])
def test_eval_of_a_corpus_without_readable_documents_exits_1(
    settings_env: pytest.MonkeyPatch, tmp_path: Path, bad_file: bool
) -> None:
    """Regression: `qa eval --corpus` on a folder without readable documents fell back to the index on disk and
    printed its figures with exit code 0; it never reported the files it skipped either."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if bad_file:
        (corpus / "bad.txt").write_bytes(b"\xff\xfe not UTF-8")
    result = invoke("eval", str(GOLD), "--corpus", str(corpus))
    assert result.exit_code == 1
    skipped = ["skipped bad.txt: not valid UTF-8 (byte 0xff at offset 0); save it as UTF-8"] if bad_file else []
    assert messages(result) == [*skipped, "Error: " + NO_DOCUMENTS.format(corpus)]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id": "g1", "question": "How many?", "answers": "zzzz9"}',
            "gold.jsonl:1: answers must be a list of non-empty strings",
        ),
        (
            '{"id": "g1", "question": "' + "fusion " * 200 + '", "answers": ["x"]}',
            "gold item 'g1': question has 1399 characters; the limit is 1000",
        ),
    ],
)
def test_eval_refuses_a_gold_file_it_cannot_score_before_the_run(
    settings_env: pytest.MonkeyPatch, tmp_path: Path, line: str, message: str
) -> None:
    """Regression: a string of answers scored containment 1.0 (each letter an answer), and a question the
    service refuses stopped the run at that item with a traceback."""
    gold = tmp_path / "gold.jsonl"
    gold.write_text(line + "\n", encoding="utf-8")
    result = invoke("eval", str(gold), "--corpus", str(tmp_path / "nothing"))
    assert result.exit_code == 1
    assert messages(result)[-1].endswith(message) and result.stdout == ""


def test_eval_checks_the_report_folder_before_the_run(settings_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Regression: a --report in a missing folder failed with a traceback after the whole run, and the
    --min-* gates were never checked."""
    report = tmp_path / "nodir" / "report.html"
    result = invoke("eval", str(GOLD), "--report", str(report), "--min-containment", "0.5")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--report': folder {report.parent} does not exist"
    )


def test_eval_without_gold_outside_the_repository_is_a_usage_error(
    settings_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Regression: the default gold set is relative to the current directory; elsewhere it was a traceback."""
    settings_env.chdir(tmp_path)
    result = invoke("eval")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '[GOLD]': no GOLD given, and the default tests/data/gold.jsonl is not in "
        f"{tmp_path}: pass GOLD"
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["index", "CORPUS"], id="index"),
        pytest.param(["index", "CORPUS", "--collection", "ghost"], id="index-collection"),
        pytest.param(["ask", "q"], id="ask"),
        pytest.param(["ask", "q", "--collection", "ghost"], id="ask-collection"),
        pytest.param(["search", "q"], id="search"),
        pytest.param(["show", "a.txt"], id="show"),
        pytest.param(["verify", "ANSWERS"], id="verify"),
        pytest.param(["eval", str(GOLD)], id="eval"),
        pytest.param(["serve"], id="serve"),
    ],
)
@pytest.mark.parametrize("inside", [False, True], ids=["the-file", "inside-the-file"])
def test_an_index_dir_that_is_a_file_exits_1(
    settings_env: pytest.MonkeyPatch, tmp_path: Path, args: list[str], inside: bool
) -> None:
    """Regression: `qa index --index-dir FILE` was a FileExistsError traceback from the writer lock."""
    a_file = tmp_path / "afile"
    a_file.write_text("x\n")
    index_dir = a_file / "sub" if inside else a_file
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Alpha.\n")
    answers = tmp_path / "answers.jsonl"
    answers.write_text("")
    args = [{"CORPUS": str(corpus), "ANSWERS": str(answers)}.get(arg, arg) for arg in args]
    result = invoke(*args, "--index-dir", str(index_dir))
    assert result.exit_code == 1
    if inside:
        expected = f"index directory {index_dir} is inside {a_file}, which is a file, not a directory"
    else:
        expected = f"index directory {a_file} is a file, not a directory"
    assert result.stderr == f"Error: {expected}\n"


def test_a_second_qa_index_says_it_waits_for_the_first(settings_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Regression: a second `qa index` on one index directory waited on the writer lock in silence. Here this
    test holds the lock; the installed script must say that it waits before it does (it is stopped then:
    everything after the lock is tested elsewhere)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Alpha.\n")
    index_dir = tmp_path / "index"
    command = [str(QA), "index", str(corpus), "--index-dir", str(index_dir)]
    with writer_lock(index_dir), subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stderr, selectors.EVENT_READ)
                assert selector.select(timeout=60), "qa index said nothing in 60 s while it waited"
            assert process.stderr.readline() == f"waiting for another qa index on {index_dir} to finish...\n"
            assert process.poll() is None
        finally:
            process.kill()


def test_writer_lock_calls_on_wait_once_then_waits(tmp_path: Path) -> None:
    """`on_wait` runs only when another holder has the lock, once, and the lock is taken when it is free."""
    taken: list[str] = []
    with writer_lock(tmp_path, on_wait=lambda: taken.append("waited")):
        taken.append("free")
    released = threading.Event()

    def hold() -> None:
        with writer_lock(tmp_path):
            holding.set()
            released.wait(timeout=60)

    holding = threading.Event()
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(timeout=60)
    with writer_lock(tmp_path, on_wait=lambda: (taken.append("waited"), released.set())):
        taken.append("after the holder")
    holder.join()
    assert taken == ["free", "waited", "after the holder"]


def _with(field: str, raw: str) -> bytes:
    """An answer line whose one citation has ``field`` set to the JSON text ``raw`` (the last of two keys wins)."""
    citation = f'"document_id": "a.md", "quote": "x", "start": 0, "end": 1, "{field}": {raw}'
    return f'{{"citations": [{{{citation}}}]}}'.encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(_with("start", "Infinity"), "citation 1: start must be a non-negative integer", id="infinity"),
        pytest.param(_with("start", "NaN"), "citation 1: start must be a non-negative integer", id="nan"),
        pytest.param(_with("end", "1.0"), "citation 1: end must be a non-negative integer", id="float"),
        pytest.param(_with("end", "true"), "citation 1: end must be a non-negative integer", id="bool"),
        pytest.param(_with("start", "-1"), "citation 1: start must be a non-negative integer", id="negative"),
        pytest.param(_with("start", '"0"'), "citation 1: start must be a non-negative integer", id="string-offset"),
        pytest.param(_with("document_id", '["a"]'), "citation 1: document_id must be a string", id="list-id"),
        pytest.param(_with("quote", "123"), "citation 1: quote must be a non-empty string", id="number-quote"),
        pytest.param(_with("quote", "null"), "citation 1: quote must be a non-empty string", id="null-quote"),
        pytest.param(_with("quote", '""'), "citation 1: quote must be a non-empty string", id="empty-quote"),
        pytest.param(b'{"citations": [7]}', "citation 1 is not a JSON object", id="number-citation"),
        pytest.param(b'{"citations": {"a": 1}}', "citations must be a list", id="citations-object"),
        pytest.param(b'{"question": "q"}', "citations must be a list", id="no-citations"),
        pytest.param(b"[" * 100_000, "the line is nested too deeply to parse", id="deep"),
        pytest.param(
            b'{"citations": [' + b"9" * 5000 + b"]}", "the line holds a number too long to read", id="long-number"
        ),
        pytest.param(b"[1, 2]", "not a JSON object", id="array"),
        pytest.param(b"not json", "the line is not valid JSON (Expecting value at character 0)", id="not-json"),
        pytest.param(b'{"question": "\xff"}', "not valid UTF-8: byte 0xff at offset 14", id="not-utf8"),
    ],
)
def test_verify_reports_each_bad_line_and_checks_the_rest(
    settings_env: pytest.MonkeyPatch,
    hash_index_dir: Path,
    corpus_document: Document,
    tmp_path: Path,
    line: bytes,
    reason: str,
) -> None:
    """Regression: Infinity, a list as document_id, a number as quote, deep nesting and bytes that are not UTF-8
    were tracebacks, and a null quote was checked as "gone"; each is one bad line now, and the next is checked."""
    text = corpus_document.text
    good = {"question": "q", "citations": [{"document_id": corpus_document.id, "quote": text[100:160],
                                            "start": 100, "end": 160}]}  # fmt: skip
    answers = tmp_path / "answers.jsonl"
    answers.write_bytes(json.dumps(good).encode() + b"\n" + line + b"\n" + json.dumps(good).encode() + b"\n")
    result = invoke("verify", str(answers), "--index-dir", str(hash_index_dir))
    assert result.exit_code == 1
    assert result.stderr == f"Error: line 2 is not an answer with citations ({reason})\n"
    assert [[r["status"] for r in record["results"]] for record in json_lines(result)] == [["current"], ["current"]]


@pytest.mark.model
def test_verify_skips_the_line_of_a_question_qa_ask_refused(
    settings_env: pytest.MonkeyPatch, embedder: object, model_index_dir: Path
) -> None:
    """`qa ask --json Q "" | qa verify -`: the refused question's error line is noted and skipped, exit code 0.
    Regression: it failed the run as a line that is not an answer."""
    asked = invoke("ask", "--json", "--index-dir", str(model_index_dir), AGENCIES, "")
    assert asked.exit_code == 1
    result = invoke("verify", "-", "--index-dir", str(model_index_dir), stdin=asked.stdout)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "line 2: a question `qa ask` refused (question is empty), skipped\n"
    (record,) = json_lines(result)
    assert record["question"] == AGENCIES and {r["status"] for r in record["results"]} == {"current"}


def test_verify_of_a_missing_file_is_a_usage_error(settings_env: pytest.MonkeyPatch, hash_index_dir: Path) -> None:
    """Regression: a FileNotFoundError traceback."""
    result = invoke("verify", "nofile.jsonl", "--index-dir", str(hash_index_dir))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: Invalid value for 'ANSWERS': File 'nofile.jsonl' does not exist."


# --- with the real model ----------------------------------------------------------------------------


@pytest.mark.model
def test_ask_without_an_index_says_to_run_qa_index(
    settings_env: pytest.MonkeyPatch, embedder: object, tmp_path: Path
) -> None:
    result = invoke("ask", AGENCIES)
    assert result.exit_code == 1
    missing = tmp_path / "no-index"
    assert messages(result) == [f"Error: no index in {missing}: build one with `qa index --index-dir {missing}`"]
    assert result.stdout == ""


@pytest.mark.model
@pytest.mark.slow
def test_ask_json_prints_one_line_per_question_in_order(model_index_dir: Path, corpus_document: Document) -> None:
    """The installed script, in its own process: JSON Lines in the order of the questions.

    The first line answers AGENCIES with the sentence that gives the number of agencies, cited
    under Secure Communities at that sentence's place in the corpus.
    """
    env = {**os.environ, "QA_INDEX_DIR": str(model_index_dir), "QA_THREADS": "1"}
    result = subprocess.run(
        [str(QA), "ask", "--json", AGENCIES, FUSION], capture_output=True, text=True, env=env, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr  # transformers' bars, twice per run, are off
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert_contract(first, AGENCIES)
    assert_contract(second, FUSION)
    assert first["answer"] == AGENCIES_ANSWER, "the answer is not the sentence that gives the number of agencies"
    assert first["citations"][0]["section_path"] == [
        "Notable Data Sharing Programs and Agreements",
        "Secure Communities",
    ], "the number of agencies is cited from the wrong section"
    assert (first["citations"][0]["start"], first["citations"][0]["end"]) == span_of(
        corpus_document.text, AGENCIES_ANSWER
    ), "the printed offsets do not point at the sentence that gives the number of agencies"


@pytest.mark.model
def test_ask_reads_questions_from_stdin(
    settings_env: pytest.MonkeyPatch, embedder: object, model_index_dir: Path
) -> None:
    settings_env.setenv("QA_INDEX_DIR", str(model_index_dir))
    result = invoke("ask", "--json", "-", stdin=f"{AGENCIES}\n\n   \n{FUSION}\r\nWho won the 2024 World Series?")
    assert result.exit_code == 0, result.stderr
    records = json_lines(result)
    assert [r["question"] for r in records] == [AGENCIES, FUSION, "Who won the 2024 World Series?"]
    for record, question in zip(records, [AGENCIES, FUSION, "Who won the 2024 World Series?"], strict=True):
        assert_contract(record, question)
    assert [r["answerable"] for r in records] == [True, True, False]


@pytest.mark.model
def test_ask_with_an_empty_question_exits_1_and_answers_the_rest(
    settings_env: pytest.MonkeyPatch, embedder: object, model_index_dir: Path
) -> None:
    result = invoke("ask", "--json", "--index-dir", str(model_index_dir), "", AGENCIES)
    assert result.exit_code == 1
    assert messages(result) == ["Error: question is empty: ''"]
    error, answer = json_lines(result)
    assert error == {"question": "", "error": "question is empty"}
    assert_contract(answer, AGENCIES)


@pytest.mark.model
def test_ask_a_question_that_was_not_utf8_gets_an_error_line_of_valid_utf8(
    settings_env: pytest.MonkeyPatch, embedder: object, model_index_dir: Path
) -> None:
    """Bytes of an argument that are not UTF-8 reach Python as lone surrogates: the question is refused, and
    its error line shows them as U+FFFD (a surrogate cannot be written as UTF-8), then the next is answered."""
    undecodable = b"\xff\xfe".decode("utf-8", "surrogateescape")
    result = invoke("ask", "--json", "--index-dir", str(model_index_dir), undecodable, AGENCIES)
    assert result.exit_code == 1
    error, answer = json_lines(result)
    assert error == {"question": "\ufffd\ufffd", "error": "question contains a lone surrogate (invalid Unicode)"}
    result.stdout.encode("utf-8")  # strict: no surrogate reached the output
    assert_contract(answer, AGENCIES)


@pytest.mark.model
def test_ask_prints_a_readable_answer(
    settings_env: pytest.MonkeyPatch, embedder: object, model_index_dir: Path, corpus_document: Document
) -> None:
    """Question, answer (the sentence that gives the number of agencies), then where it is cited:
    section path, file and the sentence's [start:end] in that file, then the confidence."""
    result = invoke("ask", "-k", "1", "--index-dir", str(model_index_dir), AGENCIES)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    start, end = span_of(corpus_document.text, AGENCIES_ANSWER)
    assert lines[:3] == [
        f"Q: {AGENCIES}",
        f"A: {AGENCIES_ANSWER}",
        "   Notable Data Sharing Programs and Agreements > Secure Communities"
        f" | immigration-data-sharing.txt [{start}:{end}]",
    ]
    assert re.fullmatch(r"   confidence [01]\.\d\d", lines[3])
    assert lines[4:] == [""]


@pytest.mark.model
def test_search_json(settings_env: pytest.MonkeyPatch, embedder: object, model_index_dir: Path) -> None:
    result = invoke("search", "fusion centers", "-k", "3", "--json", "--index-dir", str(model_index_dir))
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["query"] == "fusion centers"
    assert len(payload["results"]) == 3
    for record in payload["results"]:
        assert list(record) == SEARCH_KEYS
        text = record["text"]
        assert all(text[s:e].lower().startswith(("fusion", "center")) for s, e in record["highlights"])


@pytest.mark.model
def test_index_reports_a_bad_file_and_indexes_the_rest(
    settings_env: pytest.MonkeyPatch, embedder: object, corpus_dir: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "immigration-data-sharing.txt").write_bytes((corpus_dir / "immigration-data-sharing.txt").read_bytes())
    (corpus / "bad.txt").write_bytes(b"\xff\xfe not UTF-8")
    (corpus / "empty.md").write_bytes(b"")
    index_dir = tmp_path / "index"
    result = invoke("index", str(corpus), "--index-dir", str(index_dir))
    assert result.exit_code == 0
    lines = messages(result)
    assert lines[:2] == [
        "skipped bad.txt: not valid UTF-8 (byte 0xff at offset 0); save it as UTF-8",
        "skipped empty.md: file is empty",
    ]
    assert re.fullmatch(
        rf"Indexed 1 documents into 16 passages in \d+\.\d s \(1 added or changed, 0 removed; 1 segment\(s\)\): "
        rf"{re.escape(str(index_dir))}/commits/00000001\.json",
        lines[-1],
    )
    assert len(lines) == 3
    again = invoke("index", str(corpus), "--index-dir", str(index_dir))
    assert again.exit_code == 0
    assert messages(again) == [
        "skipped bad.txt: not valid UTF-8 (byte 0xff at offset 0); save it as UTF-8",
        "skipped empty.md: file is empty",
        "Index is up to date (1 documents, 16 passages).",
    ]
