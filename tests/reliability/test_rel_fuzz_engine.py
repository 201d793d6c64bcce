"""Arbitrary Unicode into ``Engine.ask`` / ``Engine.search`` and into /v1/ask and /v1/search.

RTL overrides, combining marks, emoji, lone surrogates, NUL and other controls, up to 100,000
characters: the core raises ``QueryError`` or returns a valid answer (every quote verbatim at its
offsets, JSON-encodable as UTF-8), never anything else, within a bounded time; the API answers 200,
400 or 422, never a 5xx. HashEmbedder runs most examples; a few run on the real model.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.schemas import AnswerOut, SearchOut
from qa.cli import answer_record, search_record
from qa.engine import Engine
from qa.errors import QueryError

MAX_LENGTH = 100_000
HASH_SECONDS = 5.0  # per call, on a busy 2-core machine; typical calls take milliseconds
MODEL_SECONDS = 20.0
SPECIAL = [
    "\u202e", "\u202d", "\u2066", "\u200f", "\u200b", "\u200d", "\ufeff", "\u0301", "\u0336" * 30, "\x00", "\ud800",
    "\udfff", "\U0001f999", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1fa\U0001f1f8", "\t", "\n", "\r",
    "\x7f", "\x1b[31m", "\x85", "\u2028", "\ufffd", "\uffff", "\U0010ffff", "\ufdfa", "\u0130", "\u00df", "\ufb03",
    "Z\u0351\u0352\u0357\u0358", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u4e2d\u6587", "%s%n", "' OR 1=1 --",
    "<script>alert(1)</script>", "{{7*7}}", "../../etc/passwd", "\\u0000",
]  # fmt: skip
WORDS = ["fusion", "centers", "agencies", "Secure", "Communities", "287(g)", "New", "York", "data", "How", "many", "?"]
_ANY_CHAR = st.characters(exclude_categories=())  # every code point, lone surrogates included
_VALID_CHAR = st.characters(exclude_categories=("Cc", "Cs"))  # what clean_question lets through
_PIECE = st.one_of(st.text(_ANY_CHAR, max_size=40), st.sampled_from(SPECIAL), st.sampled_from(WORDS))
_VALID_PIECE = st.one_of(
    st.text(_VALID_CHAR, max_size=40),
    st.sampled_from([s for s in SPECIAL if not any(c in s for c in "\x00\x1b\x7f\x85\ud800\udfff")]),
    st.sampled_from(WORDS),
)
_PAD = st.sampled_from(["", " ", "\n\t ", " " * 60_000, "\u3000" * 10])


@st.composite
def _question(draw: st.DrawFn, *, valid: bool) -> str:
    core = " ".join(draw(st.lists(_VALID_PIECE if valid else _PIECE, max_size=25)))
    repeat = draw(st.sampled_from([1, 1, 1, 2, 3] if valid else [1, 1, 2, 8, 60, 400, 5000]))
    pad = draw(_PAD)
    return (pad + core * repeat + pad)[:MAX_LENGTH]


def questions() -> st.SearchStrategy[str]:
    """Strings from empty to 100,000 characters: half made only of characters a question may hold
    (so most reach retrieval and extraction), half of any code point at any length."""
    return st.one_of(_question(valid=True), _question(valid=False))


def check_answer(engine: Engine, question: str, top_k: int, limit: float) -> None:
    started = time.perf_counter()
    try:
        answer = engine.ask(question, top_k=top_k)
    except QueryError:
        assert time.perf_counter() - started < limit
        return
    assert time.perf_counter() - started < limit
    assert answer.question == question.strip()
    assert 0.0 <= answer.confidence <= 1.0 and len(answer.citations) <= top_k
    assert answer.answer == (answer.citations[0].quote if answer.answerable else None)
    for citation in answer.citations:
        assert engine.index.documents[citation.document_id].text[citation.start : citation.end] == citation.quote
    record = answer_record(answer)
    json.dumps(record, ensure_ascii=False).encode("utf-8")  # no lone surrogate can reach a response
    AnswerOut.model_validate(record)


def check_search(engine: Engine, query: str, k: int, limit: float) -> None:
    started = time.perf_counter()
    try:
        results = engine.search(query, k=k)
    except QueryError:
        assert time.perf_counter() - started < limit
        return
    assert time.perf_counter() - started < limit
    assert len(results) <= k
    for result in results:
        passage = result.hit.passage
        assert result.document.text[passage.start : passage.end] == passage.text
        assert all(0 <= s < e <= len(passage.text) for s, e in result.highlights)
    records = [search_record(r) for r in results]
    json.dumps(records, ensure_ascii=False).encode("utf-8")
    SearchOut.model_validate({"query": query.strip(), "results": records})


def _examples(n: int) -> settings:
    """``n`` examples, no per-example deadline (check_* bound the time), long inputs allowed."""
    return settings(
        max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )


HASH = _examples(400)
MODEL = _examples(50)
API = _examples(200)


@HASH
@given(question=questions(), top_k=st.integers(-5, 30))
def test_ask_never_fails_on_any_text(hash_engine: Engine, question: str, top_k: int) -> None:
    if not 1 <= top_k <= 20:
        with pytest.raises(QueryError):
            hash_engine.ask(question, top_k=top_k)
        return
    check_answer(hash_engine, question, top_k, HASH_SECONDS)


@HASH
@given(query=questions(), k=st.integers(1, 50))
def test_search_never_fails_on_any_text(hash_engine: Engine, query: str, k: int) -> None:
    check_search(hash_engine, query, k, HASH_SECONDS)


@pytest.mark.model
@MODEL
@given(question=questions(), top_k=st.integers(1, 20))
def test_ask_never_fails_on_any_text_real_model(model_engine: Engine, question: str, top_k: int) -> None:
    check_answer(model_engine, question, top_k, MODEL_SECONDS)


@pytest.mark.model
@MODEL
@given(query=questions(), k=st.integers(1, 50))
def test_search_never_fails_on_any_text_real_model(model_engine: Engine, query: str, k: int) -> None:
    check_search(model_engine, query, k, MODEL_SECONDS)


def test_the_named_cases_each_end_as_an_answer_or_a_query_error(
    hash_engine: Engine, figure: Callable[..., None]
) -> None:
    cases = [*SPECIAL, " ".join(SPECIAL), "\u202e" + "How many fusion centers?", "a" * MAX_LENGTH, "?" * 1000]
    for case in cases:
        check_answer(hash_engine, case, 3, HASH_SECONDS)
        check_search(hash_engine, case, 10, HASH_SECONDS)
    figure(
        "fuzz",
        engine_examples_hash=2 * HASH.max_examples,
        engine_examples_model=2 * MODEL.max_examples,
        named_cases=len(cases),
        max_question_chars=MAX_LENGTH,
        api_examples=2 * API.max_examples,
    )


# ---- through the API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(hash_index_dir: Any) -> Iterator[TestClient]:
    from api.main import create_app
    from qa.config import Settings
    from qa.embed import HashEmbedder

    app: FastAPI = create_app(Settings(index_dir=hash_index_dir), embedder=HashEmbedder())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@API
@given(question=questions(), top_k=st.one_of(st.integers(-3, 25), st.sampled_from(["3", None, 3.5, True])))
def test_post_ask_answers_200_or_4xx(api: TestClient, question: str, top_k: Any) -> None:
    # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as a hostile client would send it
    body = json.dumps({"question": question, "top_k": top_k}).encode("ascii")
    response = api.post("/v1/ask", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400, 413, 422), response.text
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/problem+json"


@API
@given(raw=st.binary(max_size=300), path=st.sampled_from(["/v1/ask", "/v1/search"]))
def test_get_with_any_bytes_in_the_query_string_answers_200_or_4xx(api: TestClient, raw: bytes, path: str) -> None:
    """Percent-encoded bytes that are not UTF-8, NULs and surrogate encodings included."""
    response = api.get(f"{path}?q={urllib.parse.quote_from_bytes(raw)}&k=3")
    assert response.status_code in (200, 400, 422), response.text
