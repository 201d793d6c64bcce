"""Stored citations checked against the documents as they are now (``qa.verify``, ``/v1/verify``, ``qa verify``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_helpers import API_KEY, assert_problem
from click.testing import CliRunner

from qa.cite import document_version
from qa.cli import main
from qa.ingest import parse_document, text_sha256
from qa.verify import Cited, Verdict, nearest, verify, verify_one

AUTH = {"Authorization": f"Bearer {API_KEY}"}
TEXT = "# Notes\n\nThe zebra census counted 4,213 zebras. The heron census counted 58 nests.\n"
ZEBRAS = "The zebra census counted 4,213 zebras."
HERONS = "The heron census counted 58 nests."


def _doc(text: str):
    return parse_document("notes.md", text.encode())


def test_each_status_with_its_offsets_and_version() -> None:
    """current at the same offsets; moved to the nearest occurrence; gone when the quote or the document is."""
    start = TEXT.index(ZEBRAS)
    cited = Cited("notes.md", ZEBRAS, start, start + len(ZEBRAS))
    version = text_sha256(TEXT)
    assert verify_one(cited, _doc(TEXT)) == Verdict("current", start, start + len(ZEBRAS), version)
    moved = "# Notes\n\nA new first sentence.\n\n" + TEXT[len("# Notes\n\n") :]
    new_start = moved.index(ZEBRAS)
    assert verify_one(cited, _doc(moved)) == Verdict("moved", new_start, new_start + len(ZEBRAS), text_sha256(moved))
    edited = TEXT.replace("4,213", "4,300")
    assert verify_one(cited, _doc(edited)) == Verdict("gone", None, None, text_sha256(edited))
    assert verify_one(cited, None) == Verdict("gone", None, None, None)
    # Offsets past the end, or reversed, never index out of the text.
    assert verify_one(Cited("notes.md", ZEBRAS, 10**6, 10**6 + 5), _doc(TEXT)).status == "moved"
    assert verify_one(Cited("notes.md", "nowhere", 5, 2), _doc(TEXT)).status == "gone"


def test_the_nearest_occurrence_wins() -> None:
    text = "ab x ab x ab"
    assert [nearest(text, "ab", near) for near in (0, 4, 6, 11, 100)] == [0, 5, 5, 10, 10]
    assert nearest(text, "zz", 3) is None and nearest(text, "", 3) is None


def test_verify_keeps_the_order_and_looks_each_document_up() -> None:
    documents = {"notes.md": _doc(TEXT)}
    start = TEXT.index(HERONS)
    cited = [Cited("gone.md", HERONS, 0, 5), Cited("notes.md", HERONS, start, start + len(HERONS))]
    assert [v.status for v in verify(cited, documents.get)] == ["gone", "current"]


def test_document_version_is_the_text_sha256() -> None:
    assert document_version(TEXT) == text_sha256(TEXT) == document_version(TEXT[:])


# ---- over HTTP ------------------------------------------------------------------------------------


def test_citations_from_ask_are_current_then_moved_then_gone(client) -> None:
    """Edit, move and delete: /v1/verify follows each, in order, and ask's citations carry the version."""
    assert client.post("/v1/documents", json={"document_id": "notes.md", "text": TEXT}, headers=AUTH).status_code == 201
    answer = client.post("/v1/ask", json={"question": "How many zebras did the census count?", "top_k": 1}).json()
    (citation,) = answer["citations"]
    assert citation["quote"] == ZEBRAS and citation["document_version"] == text_sha256(TEXT)
    summary = client.get("/v1/documents/notes.md").json()
    assert summary["version"] == summary["sha256"] == text_sha256(TEXT)
    other = {**citation, "quote": "not in any document", "document_id": "missing.md"}

    def check() -> list[dict]:
        response = client.post("/v1/verify", json={"citations": [citation, other]})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    start = TEXT.index(ZEBRAS)
    assert check() == [
        {"status": "current", "start": start, "end": start + len(ZEBRAS), "document_version": text_sha256(TEXT)},
        {"status": "gone", "start": None, "end": None, "document_version": None},
    ]
    moved = "# Notes\n\nSeen from the ridge.\n\n" + TEXT[len("# Notes\n\n") :]
    client.post("/v1/documents", json={"document_id": "notes.md", "text": moved}, headers=AUTH)
    at = moved.index(ZEBRAS)
    assert check()[0] == {
        "status": "moved",
        "start": at,
        "end": at + len(ZEBRAS),
        "document_version": text_sha256(moved),
    }
    edited = moved.replace("4,213", "4,300")
    client.post("/v1/documents", json={"document_id": "notes.md", "text": edited}, headers=AUTH)
    assert check()[0] == {"status": "gone", "start": None, "end": None, "document_version": text_sha256(edited)}
    client.delete("/v1/documents/notes.md", headers=AUTH)
    assert check()[0] == {"status": "gone", "start": None, "end": None, "document_version": None}


@pytest.mark.parametrize(
    "body",
    [
        {"citations": [{"document_id": "a.md", "quote": "x", "start": -1, "end": 2}]},
        {"citations": [{"document_id": "a.md", "start": 0, "end": 2}]},
        {"citations": [{"document_id": "a.md", "quote": "x", "start": "0", "end": 2}]},
        {"citations": "all"},
        {"citations": [{"document_id": "a.md", "quote": "x", "start": 0, "end": 1}] * 10_001},
    ],
)
def test_bad_verify_bodies_are_422(client, body) -> None:
    assert_problem(client.post("/v1/verify", json=body), 422)


def test_qa_verify_reads_answers_as_qa_ask_json_prints_them(
    tmp_path: Path, hash_index_dir: Path, corpus_document
) -> None:
    quote = corpus_document.text[100:160]
    good = {
        "question": "q1",
        "citations": [{"document_id": corpus_document.id, "quote": quote, "start": 100, "end": 160}],
    }
    gone = {"question": "q2", "citations": [{"document_id": "nope.md", "quote": quote, "start": 1, "end": 61}]}
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps(good) + "\n" + json.dumps(gone) + "\n")
    result = CliRunner().invoke(main, ["verify", str(answers), "--index-dir", str(hash_index_dir)])
    assert result.exit_code == 0, result.output
    version = text_sha256(corpus_document.text)
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"question": "q1", "results": [{"status": "current", "start": 100, "end": 160, "document_version": version}]},
        {"question": "q2", "results": [{"status": "gone", "start": None, "end": None, "document_version": None}]},
    ]
    answers.write_text("not json\n")
    bad = CliRunner().invoke(main, ["verify", str(answers), "--index-dir", str(hash_index_dir)])
    assert bad.exit_code == 1 and "line 1 is not an answer with citations" in bad.stderr
