"""Every route through TestClient on the real model, with exact JSON bodies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from corpus_helpers import span_of

import qa.cli
from qa.chunk import passage_id
from qa.cli import answer_record, search_record
from qa.ingest import text_sha256

pytestmark = pytest.mark.model

DOC_ID = "immigration-data-sharing.txt"
TITLE = "Expansion of Data Sharing and Interoperability Between Immigration and Law Enforcement Agencies"
# The sentence that gives the number of fusion centers: the answer to "How many fusion centers are there?".
FUSION = "About 80 fusion centers are federally overseen but locally operated nationwide, including New York."
FUSION_ROW = "Number of Fusion Centers | ~80 | Operating nationwide including New York State |"
# The Fusion Centers section's one paragraph, one passage of the corpus, which FUSION opens.
FUSION_PASSAGE = (
    f"{FUSION} These centers integrate intelligence from federal, state, local, tribal, and private entities,"
    " supporting shared situational awareness and operational coordination."
)
QUESTIONS = [
    "How many fusion centers are there?",
    "How many 287(g) agreements exist as of July 2025?",
    "What is the capital of France?",
    "  Which state law limits cooperation with federal immigration authorities?  ",
]


def without_took(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "took_ms"}


def fusion_passage_id(document_text: str) -> str:
    """The id the chunker gives the Fusion Centers passage: the content address of its text at its place."""
    return passage_id(DOC_ID, *span_of(document_text, FUSION_PASSAGE), FUSION_PASSAGE)


def test_ask_answers_with_a_verbatim_cited_quote(model_client, corpus_document) -> None:
    """The answer to "How many fusion centers are there?" is the metrics table's row that gives their number.

    The one citation quotes that row verbatim, at its place in the corpus, from its own passage (a table row
    is one); the confidence is pinned too, so a scoring change shows here. (The Fusion Centers sentence
    "About 80 fusion centers ..." holds the same number and was quoted by the weights fitted from 2026-12-02
    until the rebuild on chunker version 5: the choice between the two follows the fitted weights.)
    """
    body = model_client.post("/v1/ask", json={"question": "How many fusion centers are there?", "top_k": 1}).json()
    assert isinstance(body.pop("took_ms"), float)
    start, end = span_of(corpus_document.text, FUSION_ROW)
    citation = {
        "quote": FUSION_ROW,
        "document_id": DOC_ID,
        "document_title": TITLE,
        "section": "Relevant Data and Metrics",
        "section_path": ["Relevant Data and Metrics"],
        "start": start,
        "end": end,
        "passage_id": passage_id(DOC_ID, start, end, FUSION_ROW),
        "score": 0.3713,
        "document_metadata": {},
        "document_version": text_sha256(corpus_document.text),
        "anchor": None,
        "url": None,
        "page": None,
        "pages": None,
        "page_start": None,
        "page_end": None,
    }
    assert body == {
        "question": "How many fusion centers are there?",
        "answerable": True,
        "answer": FUSION_ROW,
        "confidence": 0.3713,
        "citations": [citation],
        "reason": None,
        "answers": [{"answer": FUSION_ROW, "confidence": 0.3713, "citations": [citation]}],
    }, "the answer is not the row that gives the number of fusion centers, or its confidence moved"


def test_ask_abstains_when_the_documents_do_not_say(model_client) -> None:
    """A refusal carries its reason: here the hard rule on a name the briefing never mentions."""
    body = model_client.get("/v1/ask", params={"q": "What is the capital of France?"}).json()
    assert body["answerable"] is False and body["answer"] is None and len(body["citations"]) == 3
    assert body["reason"] == "these documents never mention “France”"


def test_a_refusal_by_the_scorer_names_what_was_missing(model_client) -> None:
    """A question the scorer refuses says which feature pulled its confidence down (qa.scorer.refusal_reason)."""
    body = model_client.get("/v1/ask", params={"q": "How long should I boil an egg for a soft yolk?"}).json()
    assert body["answerable"] is False
    assert body["reason"] == "no passage is close in meaning to the question"


@pytest.mark.parametrize("question", QUESTIONS)
def test_ask_equals_the_core_answer_and_get_equals_post(model_client, model_engine, question: str) -> None:
    expected = without_took(answer_record(model_engine.ask(question, top_k=2)))
    posted = model_client.post("/v1/ask", json={"question": question, "top_k": 2}).json()
    got = model_client.get("/v1/ask", params={"q": question, "k": 2}).json()
    assert without_took(posted) == expected
    assert without_took(got) == expected


def test_ask_equals_qa_ask_json(model_client, model_engine, monkeypatch) -> None:
    """The API's answer object is what `qa ask --json` prints (same engine, so same model and index)."""
    monkeypatch.setattr(qa.cli, "open_engine", lambda index_dir, collection: model_engine)
    result = CliRunner().invoke(qa.cli.main, ["ask", "--json", *QUESTIONS[:3]])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    served = [model_client.post("/v1/ask", json={"question": q}).json() for q in QUESTIONS[:3]]
    assert [without_took(r) for r in served] == [without_took(r) for r in printed]


def test_search_returns_passages_with_highlights(model_client, model_engine, corpus_document) -> None:
    """A search for "fusion centers" ranks the Fusion Centers passage first and highlights, in it,
    every occurrence of the words searched for ("fusion" once, "centers" twice) and nothing else."""
    body = model_client.get("/v1/search", params={"q": "fusion centers", "k": 2}).json()
    assert body == {
        "query": "fusion centers",
        "results": [search_record(r) for r in model_engine.search("fusion centers", k=2)],
    }
    first = body["results"][0]
    assert (first["text"], first["section"]) == (FUSION_PASSAGE, "Fusion Centers"), (
        "the first result is not the Fusion Centers passage"
    )
    assert first["passage_id"] == fusion_passage_id(corpus_document.text)
    words = [[m.start(), m.end()] for m in re.finditer(r"\b(?:fusion|centers)\b", FUSION_PASSAGE, re.IGNORECASE)]
    assert first["highlights"] == words, "the highlights are not every searched-for word of the passage"
    assert [first["text"][s:e] for s, e in first["highlights"]] == ["fusion", "centers", "centers"]
    assert len(model_client.get("/v1/search?q=data").json()["results"]) == 10


def test_documents_list_and_one(model_client, corpus_document) -> None:
    sections = [
        ("Expansion of Data Sharing and Interoperability Between Immigration and Law Enforcement Agencies", 1),
        ("Overview", 2),
        ("Notable Data Sharing Programs and Agreements", 2),
        ("Secure Communities", 3),
        ("287(g) Agreements", 3),
        ("Fusion Centers", 3),
        ("Data from State and Local Agencies", 3),
        ("Private Sector Data Purchases", 3),
        ("Relevant Data and Metrics", 2),
        ("Potential Impact on New York City", 2),
        ("Legal and Policy Considerations", 2),
    ]
    listing = model_client.get("/v1/documents").json()
    assert listing["total"] == 1 and listing["offset"] == 0 and listing["limit"] == 100
    (summary,) = listing["documents"]
    assert [(s["title"], s["level"]) for s in summary.pop("sections")] == sections
    assert summary == {
        "document_id": DOC_ID,
        "title": TITLE,
        "format": "txt",
        "length": 4342,
        "sha256": text_sha256(corpus_document.text),
        "version": text_sha256(corpus_document.text),
        "passages": 16,
        "metadata": {},
    }
    document = model_client.get(f"/v1/documents/{DOC_ID}").json()
    assert document["text"] == corpus_document.text
    for section in document["sections"]:
        assert document["text"][section["start"] : section["end"]].strip() == section["title"]
    assert model_client.get("/v1/documents?offset=1").json()["documents"] == []


def test_passage_by_id(model_client, corpus_document) -> None:
    """The Fusion Centers passage, asked for by its id, comes back whole: its text, its place, its section."""
    start, end = span_of(corpus_document.text, FUSION_PASSAGE)
    fusion_id = fusion_passage_id(corpus_document.text)
    body = model_client.get(f"/v1/passages/{fusion_id}").json()
    assert body == {
        "passage_id": fusion_id,
        "document_id": DOC_ID,
        "document_title": TITLE,
        "section": "Fusion Centers",
        "section_path": ["Notable Data Sharing Programs and Agreements", "Fusion Centers"],
        "kind": "prose",
        "text": FUSION_PASSAGE,
        "start": start,
        "end": end,
        "document_metadata": {},
    }


def test_health_readiness_and_metrics(model_client) -> None:
    assert model_client.get("/healthz").json() == {"status": "ok"}
    assert model_client.get("/readyz").json() == {
        "status": "ready",
        "documents": 1,
        "passages": 16,
        "model": "all-MiniLM-L6-v2",
    }
    model_client.get("/v1/documents/missing.txt")
    text = model_client.get("/metrics").text
    assert 'qa_http_requests_total{collection="default",method="GET",route="/readyz",status="200"}' in text
    assert (
        'qa_http_requests_total{collection="default",method="GET",route="/v1/documents/{document_id:path}",'
        'status="404"}' in text
    )
    assert (
        'qa_http_request_duration_seconds_bucket{collection="default",le="0.005",method="GET",route="/healthz",'
        'status="200"}' in text
    )
    assert 'qa_index_passages{collection="default"} 16.0' in text
    assert 'qa_index_documents{collection="default"} 1.0' in text
    assert "qa_model_load_seconds " in text


def test_openapi_lists_every_endpoint(model_client) -> None:
    schema = model_client.get("/openapi.json").json()
    assert {path: sorted(ops) for path, ops in schema["paths"].items()} == {
        "/healthz": ["get"],
        "/readyz": ["get"],
        "/v1/ask": ["get", "post"],
        "/v1/search": ["get"],
        "/v1/passages/{passage_id}": ["get"],
        "/v1/documents": ["get", "post"],
        "/v1/documents/{document_id}": ["delete", "get"],
        "/v1/collections": ["get", "post"],
        "/v1/collections/{name}": ["delete"],
        "/v1/collections/{collection}/ask": ["get", "post"],
        "/v1/collections/{collection}/search": ["get"],
        "/v1/collections/{collection}/passages/{passage_id}": ["get"],
        "/v1/collections/{collection}/documents": ["get", "post"],
        "/v1/collections/{collection}/documents/{document_id}": ["delete", "get"],
        "/v1/verify": ["post"],
        "/v1/collections/{collection}/verify": ["post"],
    }
    ask = schema["paths"]["/v1/ask"]["post"]
    assert ask["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AnswerOut"
    }
    assert ask["responses"]["422"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
    }
    upload = schema["paths"]["/v1/documents"]["post"]["requestBody"]["content"]
    assert sorted(upload) == ["application/json", "multipart/form-data"]


def test_model_app_loads_the_model_itself(model_index_dir: Path) -> None:
    """Without an injected engine the lifespan loads the model and index named by the settings."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from qa.config import Settings

    with TestClient(create_app(Settings(index_dir=model_index_dir))) as client:
        assert client.get("/readyz").json()["model"] == "all-MiniLM-L6-v2"
        load = [line for line in client.get("/metrics").text.splitlines() if line.startswith("qa_model_load_seconds ")]
        assert float(load[0].split()[1]) > 0
