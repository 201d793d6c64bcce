"""Several answers (``answers=n``): distinct passages, best first, each with its confidence; none for a refusal."""

from __future__ import annotations

import pytest
from api_helpers import assert_problem
from click.testing import CliRunner

from qa.cli import main
from qa.defaults import DEFAULT_MIN_SCORE

QUESTION = "Which agencies share data with ICE?"


@pytest.mark.model
def test_several_answers_come_from_distinct_passages(model_client, corpus_document) -> None:
    body = model_client.post("/v1/ask", json={"question": QUESTION, "answers": 3}).json()
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
    got = model_client.get("/v1/ask", params={"q": QUESTION, "answers": 3}).json()
    assert [a["answer"] for a in got["answers"]] == [a["answer"] for a in body["answers"]]


@pytest.mark.model
def test_a_refusal_gives_no_answers(model_client) -> None:
    body = model_client.post("/v1/ask", json={"question": "What is the capital of France?", "answers": 5}).json()
    assert body["answerable"] is False and body["answers"] == []


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
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[1].startswith("A: ") and any(line.startswith("A2: ") for line in lines)
