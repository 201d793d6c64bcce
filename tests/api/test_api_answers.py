"""Several answers (``answers=n``): distinct quotes (the default) or passages, best first, each with its
confidence; none for a refusal."""

from __future__ import annotations

import json

import pytest
from api_helpers import assert_problem
from click.testing import CliRunner

from qa.cli import main
from qa.defaults import DEFAULT_MIN_SCORE

QUESTION = "Which agencies share data with ICE?"


@pytest.mark.model
def test_several_answers_are_distinct_quotes_by_default(model_client, corpus_document) -> None:
    """By default the answers are the first, then the best quotes outside it that no earlier answer repeats:
    with as many citations as answers, the same quotes in the same order as the citations."""
    body = model_client.post("/v1/ask", json={"question": QUESTION, "answers": 3, "top_k": 3}).json()
    assert body["answerable"] and len(body["answers"]) == 3
    first = body["answers"][0]
    assert first["answer"] == body["answer"] and first["citations"] == body["citations"][:1]
    quotes = [a["answer"] for a in body["answers"]]
    assert quotes == [c["quote"] for c in body["citations"]] and len(set(quotes)) == 3
    for later in body["answers"][1:]:
        (citation,) = later["citations"]
        assert citation["quote"] == corpus_document.text[citation["start"] : citation["end"]]
        assert not first["citations"][0]["start"] <= citation["start"] < first["citations"][0]["end"]
    got = model_client.get("/v1/ask", params={"q": QUESTION, "answers": 3}).json()
    assert [a["answer"] for a in got["answers"]] == quotes


@pytest.mark.model
def test_several_answers_come_from_distinct_passages(model_client, corpus_document) -> None:
    """``distinct: passages``: each answer from a passage no earlier answer came from."""
    body = model_client.post("/v1/ask", json={"question": QUESTION, "answers": 3, "distinct": "passages"}).json()
    assert body["answerable"] and 1 <= len(body["answers"]) <= 3
    first = body["answers"][0]
    assert first["answer"] == body["answer"] and first["confidence"] == body["confidence"]
    assert first["citations"] == body["citations"][:1]
    passages = [a["citations"][0]["passage_id"] for a in body["answers"]]
    assert len(set(passages)) == len(passages), "two answers from one passage"
    for given in body["answers"]:
        (citation,) = given["citations"]
        assert citation["quote"] == given["answer"] == corpus_document.text[citation["start"] : citation["end"]]
        assert 0 <= given["confidence"] <= 1
    confidences = [a["confidence"] for a in body["answers"]]
    assert confidences[0] >= DEFAULT_MIN_SCORE  # the first is the answer given; the others carry their own
    # The default is one answer; GET takes the same parameter.
    assert len(model_client.post("/v1/ask", json={"question": QUESTION}).json()["answers"]) == 1
    got = model_client.get("/v1/ask", params={"q": QUESTION, "answers": 3, "distinct": "passages"}).json()
    assert [a["answer"] for a in got["answers"]] == [a["answer"] for a in body["answers"]]


@pytest.mark.model
def test_a_refusal_gives_no_answers(model_client) -> None:
    body = model_client.post("/v1/ask", json={"question": "What is the capital of France?", "answers": 5}).json()
    assert body["answerable"] is False and body["answers"] == []


@pytest.mark.parametrize("distinct", ["sentences", "", 1])
def test_an_unknown_distinct_is_a_422(client, distinct) -> None:
    body = {"question": "fusion centers?", "answers": 2, "distinct": distinct}
    assert_problem(client.post("/v1/ask", json=body), 422)
    if isinstance(distinct, str):
        assert_problem(client.get("/v1/ask", params={"q": "fusion centers?", "distinct": distinct}), 422)


@pytest.mark.parametrize("answers", [0, 6, "2"])
def test_answers_out_of_range_is_a_422(client, answers) -> None:
    assert_problem(client.post("/v1/ask", json={"question": "fusion centers?", "answers": answers}), 422)
    if isinstance(answers, int):
        assert_problem(client.get("/v1/ask", params={"q": "fusion centers?", "answers": answers}), 422)


@pytest.mark.model
def test_qa_ask_answers_prints_each(model_index_dir, embedder, monkeypatch) -> None:
    from qa.config import get_settings

    monkeypatch.setenv("QA_INDEX_DIR", str(model_index_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["ask", QUESTION, "--answers", "3"])
        passages = CliRunner().invoke(main, ["ask", QUESTION, "--answers", "3", "--distinct", "passages", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[1].startswith("A: ") and any(line.startswith("A2: ") for line in lines)
    # "See also" lists only the citations not already given as answers: no quote is printed twice.
    quotes = [line.split(": ", 1)[1] for line in lines if line.startswith("A")] + [
        line.removeprefix("   - ") for line in lines if line.startswith("   - ")
    ]
    assert len(quotes) == len(set(quotes)) >= 3
    assert passages.exit_code == 0
    given = json.loads(passages.stdout)["answers"]
    ids = [a["citations"][0]["passage_id"] for a in given]
    assert len(given) >= 2 and len(set(ids)) == len(ids)
