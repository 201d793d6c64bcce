"""Tests for ``qa.engine``: input rules, confidence, answers' citations, search highlights, updates.

Plumbing runs on ``HashEmbedder``; what depends on meaning runs on the real model (``model`` marker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from corpus_helpers import span_of
from index_helpers import RecordingEmbedder

from qa.build import build_index, update_index
from qa.chunk import chunk_document, retrieval_text, unit_texts
from qa.embed import HashEmbedder
from qa.engine import MAX_QUESTION_CHARS, Engine, clean_question, highlight_spans
from qa.errors import DocumentNotFound, QueryError
from qa.index import VectorIndex
from qa.ingest import parse_document
from qa.tokens import tokenize
from qa.types import Answer, Document

DEFAULT_DOC_ID = "immigration-data-sharing.txt"
# The Secure Communities sentence that gives the number of participating agencies.
AGENCIES_SENTENCE = "Over 3,000 agencies participate, sharing biometric data to identify removable noncitizens."


def assert_answer_contract(answer: Answer, index: VectorIndex) -> None:
    """Every citation quotes its document verbatim, from inside its passage; the answer is the first quote."""
    assert 0.0 <= answer.confidence <= 1.0
    assert answer.took_ms >= 0
    for c in answer.citations:
        document = index.documents[c.document_id]
        assert document.text[c.start : c.end] == c.quote
        passage = index.passages[index.by_id[c.passage_id]]
        assert passage.doc_id == c.document_id
        assert passage.start <= c.start < c.end <= passage.end
        assert c.section_path == passage.section_path
        assert c.section == (passage.section_path[-1] if passage.section_path else document.title)
        assert c.document_title == document.title
        assert 0.0 <= c.score <= 1.0
    if answer.answerable:
        assert answer.citations and answer.answer == answer.citations[0].quote
        assert answer.reason == ""
    else:
        assert answer.answer is None
        assert answer.reason


@pytest.fixture(scope="module")
def hash_engine(hash_index: VectorIndex) -> Engine:
    return Engine(hash_index, HashEmbedder())


# --- clean_question ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "question is empty"),
        ("   \n\t ", "question is empty"),
        ("\u200b\u200b", "question is empty"),  # zero-width spaces only: nothing to answer
        ("\ufeff", "question is empty"),  # a byte-order mark alone
        (" \u200d\u2060 ", "question is empty"),
        ("x" * (MAX_QUESTION_CHARS + 1), "question has 1001 characters; the limit is 1000"),
        ("a\x00b", "question contains a control character (U+0000)"),
        ("bell\x07", "question contains a control character (U+0007)"),
        ("del\x7f", "question contains a control character (U+007F)"),
        ("\ud800", "question contains a lone surrogate (invalid Unicode)"),
        ("why \udfff?", "question contains a lone surrogate (invalid Unicode)"),
        (None, "question must be a string"),
        (b"bytes", "question must be a string"),
    ],
)
def test_clean_question_refuses(question: Any, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        clean_question(question)
    assert str(caught.value) == message
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("  What is 287(g)?  ", "What is 287(g)?"),
        ("a\tb\nc\r\nd", "a\tb\nc\r\nd"),
        ("x" * MAX_QUESTION_CHARS, "x" * MAX_QUESTION_CHARS),
        ("  " + "x" * MAX_QUESTION_CHARS + "\n", "x" * MAX_QUESTION_CHARS),  # the limit applies after trimming
        ("Who’s in charge? \U0001f600", "Who’s in charge? \U0001f600"),
        ("zero\u200bwidth", "zero\u200bwidth"),  # a format character, not a control character
    ],
)
def test_clean_question_accepts(question: str, expected: str) -> None:
    assert clean_question(question) == expected


# --- confidence -------------------------------------------------------------------------------------


def test_confidence_is_the_scorers_for_the_best_candidate(hash_engine: Engine) -> None:
    """The answer's confidence is the shipped scorer's probability for its best candidate, and each
    citation's score is the scorer's for that candidate."""
    asked = hash_engine.ask_detailed("How many agencies participate in Secure Communities?")
    _, ranked = hash_engine.ranked(asked.answer.question)
    assert asked.answer.confidence == asked.evidence == ranked[0].confidence
    assert 0.0 <= asked.answer.confidence <= 1.0
    assert asked.answer.citations[0].score == ranked[0].confidence
    # The terms are the confidence's logit less its bias, one per input of the scorer.
    z = sum(asked.terms.values()) + hash_engine.model.confidence_bias
    assert round(1 / (1 + np.exp(-z)), 4) == asked.answer.confidence


# --- answering (plumbing) ----------------------------------------------------------------------------


def test_answer_contract_with_hash_embedder(hash_engine: Engine) -> None:
    for question in ["How many agencies participate in Secure Communities?", "fusion centers", "zeppelin?"]:
        assert_answer_contract(hash_engine.ask(question), hash_engine.index)


def test_threshold_decides_answerable(hash_index: VectorIndex) -> None:
    question = "How many agencies participate in Secure Communities?"
    always = Engine(hash_index, HashEmbedder(), min_score=-10.0).ask(question)
    never = Engine(hash_index, HashEmbedder(), min_score=10.0).ask(question)
    assert always.answerable and never.confidence == always.confidence  # confidence ignores the threshold
    assert not never.answerable and never.answer is None
    # A refusal says why (qa.scorer.refusal_reason, pinned in test_scorer); an answer has no reason.
    assert never.reason.startswith(("no passage", "the closest passage", "these documents", "several passages"))
    assert always.reason == ""
    # Abstaining still lists the closest passages, for reference.
    assert [c.quote for c in never.citations] == [c.quote for c in always.citations]


def test_evidence_equal_to_the_threshold_answers_with_its_confidence(hash_index: VectorIndex) -> None:
    question = "How many agencies participate in Secure Communities?"
    evidence = Engine(hash_index, HashEmbedder()).ask_detailed(question).evidence
    answer = Engine(hash_index, HashEmbedder(), min_score=evidence).ask(question)
    assert answer.answerable
    assert answer.confidence == evidence


@pytest.mark.parametrize("top_k", [0, 21, -1])
def test_top_k_out_of_range(hash_engine: Engine, top_k: int) -> None:
    with pytest.raises(QueryError, match=rf"^top_k \({top_k}\) must be between 1 and 20$"):
        hash_engine.ask("fusion centers", top_k=top_k)


@pytest.mark.parametrize("top_k", [1, 2, 20])
def test_top_k_bounds_the_citations(hash_engine: Engine, top_k: int) -> None:
    answer = hash_engine.ask("fusion centers", top_k=top_k)
    assert 1 <= len(answer.citations) <= top_k


def test_ask_trims_the_question(hash_engine: Engine) -> None:
    assert hash_engine.ask("  fusion centers \n").question == "fusion centers"


def test_ask_refuses_a_bad_question(hash_engine: Engine) -> None:
    with pytest.raises(QueryError, match="question is empty"):
        hash_engine.ask(" ")


def test_unknown_document_and_passage(hash_engine: Engine) -> None:
    with pytest.raises(DocumentNotFound, match=r"^no document with this id in the index$"):
        hash_engine.document("nope.txt")
    with pytest.raises(DocumentNotFound, match=r"^no passage with this id in the index$"):
        hash_engine.passage("abc")
    passage = hash_engine.index.passages[3]
    assert hash_engine.passage(passage.id) == passage
    assert hash_engine.document("immigration-data-sharing.txt").text.startswith("Expansion of Data Sharing")


# --- search highlights -------------------------------------------------------------------------------


def _all_offsets(text: str, word: str) -> list[tuple[int, int]]:
    spans, at = [], text.find(word)
    while at >= 0:
        spans.append((at, at + len(word)))
        at = text.find(word, at + 1)
    return spans


def test_search_highlights_are_offsets_of_query_words(hash_engine: Engine) -> None:
    results = hash_engine.search("biometric agencies", k=3, mode="bm25")
    top = results[0]
    text = top.hit.passage.text
    assert top.hit.passage.section_path[-1] == "Secure Communities"
    assert list(top.highlights) == sorted(_all_offsets(text, "agencies") + _all_offsets(text, "biometric"))
    assert [text[s:e] for s, e in top.highlights] == ["agencies", "agencies", "biometric"]
    for result in results:
        for s, e in result.highlights:
            assert set(tokenize(result.hit.passage.text[s:e])) & {"biometr", "agenc"}


def test_highlights_keep_numbers_and_apostrophes_whole() -> None:
    text = "Over 3,000 agencies; California’s SB 54 and 2.8 billion."
    words = set(tokenize("3,000 California 2.8"))
    assert [text[s:e] for s, e in highlight_spans(text, words)] == ["3,000", "California’s", "2.8"]


@pytest.mark.parametrize("k", [0, 51])
def test_search_k_out_of_range(hash_engine: Engine, k: int) -> None:
    with pytest.raises(QueryError, match=rf"^k \({k}\) must be between 1 and 50$"):
        hash_engine.search("fusion", k=k)


# --- updates reuse unchanged vectors ------------------------------------------------------------------


NEW_DOC = b"# Zeppelins\n\n## History\n\nAirships flew in 1900. They carried mail.\n\n- Hydrogen\n- Helium\n"


@pytest.fixture
def base_index(corpus_document: Document) -> VectorIndex:
    return build_index([corpus_document], HashEmbedder())


def _rows(index: VectorIndex) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Passage vector and unit vectors of every passage, by passage id."""
    return {passage_id: (index.passage_vectors[i], index.unit_vectors_of(i)) for passage_id, i in index.by_id.items()}


def _assert_reused(before: VectorIndex, after: VectorIndex) -> None:
    old, new = _rows(before), _rows(after)
    for passage_id in old.keys() & new.keys():
        assert np.array_equal(old[passage_id][0], new[passage_id][0])
        assert np.array_equal(old[passage_id][1], new[passage_id][1])


def test_update_adds_a_document_embedding_only_its_passages(base_index: VectorIndex) -> None:
    embedder = RecordingEmbedder()
    new_doc = parse_document("zeppelins.md", NEW_DOC)
    updated = update_index(base_index, embedder, add=[new_doc])
    new_passages = chunk_document(new_doc)
    assert embedder.embedded == [retrieval_text(p) for p in new_passages] + [
        t for p in new_passages for t in unit_texts(p)
    ]
    assert sorted(updated.documents) == ["immigration-data-sharing.txt", "zeppelins.md"]
    assert updated.n_passages == 16 + len(new_passages)
    _assert_reused(base_index, updated)
    # The old segment is shared, not copied; the new one holds the new document alone.
    assert updated.segments[0] is base_index.segments[0]
    assert updated.segments[1].dense.ntotal == len(new_passages) == len(updated.segments[1].passages)
    assert sorted(base_index.documents) == ["immigration-data-sharing.txt"]  # the old index is untouched


def test_update_replaces_a_document_embedding_only_the_changed_passage(
    base_index: VectorIndex, corpus_document: Document
) -> None:
    embedder = RecordingEmbedder()
    text = corpus_document.text.replace("Over 3,000 agencies", "Over 3,100 agencies")
    updated = update_index(base_index, embedder, add=[parse_document(corpus_document.id, text.encode())])
    (changed,) = [p for p in updated.live_passages() if p.id not in base_index.by_id]
    assert "Over 3,100 agencies" in changed.text
    assert embedder.embedded == [retrieval_text(changed), *unit_texts(changed)]
    assert updated.n_passages == 16
    # The new version is a segment of its own; the old segment, holding nothing live, leaves the commit.
    assert len(updated.segments) == 1 and updated.segments[0] is not base_index.segments[0]
    _assert_reused(base_index, updated)


def test_update_removes_a_document_without_embedding(base_index: VectorIndex) -> None:
    with_new = update_index(base_index, HashEmbedder(), add=[parse_document("zeppelins.md", NEW_DOC)])
    embedder = RecordingEmbedder()
    removed = update_index(with_new, embedder, remove=["zeppelins.md"])
    assert embedder.embedded == []
    assert list(removed.live_passages()) == base_index.passages
    # The new document's segment holds nothing live any more, so it leaves the commit.
    assert removed.segments == base_index.segments and removed.manifest.segments == base_index.manifest.segments
    assert removed.n_passages == base_index.n_passages
    assert {k: [v.tolist() for v in vs] for k, vs in _rows(removed).items()} == {
        k: [v.tolist() for v in vs] for k, vs in _rows(base_index).items()
    }


def test_update_removing_an_unknown_document(base_index: VectorIndex) -> None:
    with pytest.raises(DocumentNotFound, match=r"^no document with this id in the index$"):
        update_index(base_index, HashEmbedder(), remove=["ghost.txt"])


# --- the real model --------------------------------------------------------------------------------


@pytest.mark.model
def test_every_gold_citation_is_verbatim(model_engine: Engine, gold: list[dict[str, Any]]) -> None:
    """The offset invariant over every citation of every gold question, curly apostrophes included."""
    cited = 0
    for item in gold:
        answer = model_engine.ask(item["question"])
        assert answer.citations, item["id"]
        assert_answer_contract(answer, model_engine.index)
        cited += len(answer.citations)
    assert cited >= len(gold)


@pytest.mark.model
def test_numbers_come_from_the_right_sentence(model_engine: Engine) -> None:
    """A "how many" question is answered with the sentence that gives that number, cited where it stands.

    "How many agencies participate in Secure Communities?" gets the sentence stating that over 3,000
    agencies participate (not the section's other sentence, which gives no number), and its citation
    points at that sentence in the corpus, under Secure Communities.
    """
    answer = model_engine.ask("How many agencies participate in Secure Communities?")
    assert answer.answerable, f"refused instead of giving the number of agencies: {answer.reason}"
    assert answer.answer == AGENCIES_SENTENCE, "the answer is not the sentence that gives the number of agencies"
    first = answer.citations[0]
    assert first.document_id == DEFAULT_DOC_ID
    assert (first.section, first.section_path) == (
        "Secure Communities",
        ("Notable Data Sharing Programs and Agreements", "Secure Communities"),
    ), "the number of agencies is cited from the wrong section"
    text = model_engine.index.documents[first.document_id].text
    assert (first.start, first.end) == span_of(text, AGENCIES_SENTENCE), (
        "the citation's offsets do not point at the sentence that gives the number of agencies"
    )


@pytest.mark.model
def test_quote_after_curly_apostrophes_has_code_point_offsets(model_engine: Engine, corpus_dir: Path) -> None:
    answer = model_engine.ask("Which California law limits cooperation with federal immigration authorities?")
    assert_answer_contract(answer, model_engine.index)
    quote = next(c for c in answer.citations if "SB 54" in c.quote)
    raw = (corpus_dir / quote.document_id).read_bytes()
    # Two U+2019 (3 bytes, 1 code point each) come before it: its byte offset is 4 more.
    text = model_engine.index.documents[quote.document_id].text
    assert text[: quote.start].count("\u2019") == 2
    assert raw.index(quote.quote.encode()) == quote.start + 4


@pytest.mark.model
def test_out_of_corpus_question_abstains(model_engine: Engine) -> None:
    answer = model_engine.ask("Who won the 2024 World Series?")
    assert not answer.answerable
    assert answer.answer is None
    assert answer.confidence < 0.5
    assert answer.reason == "these documents never mention “World Series”"


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("How many fusion centers are located in Texas?", "these documents never mention “Texas”"),
        ("What was ICE's total annual budget in 2024?", "the closest passage is about another period"),
    ],
)
def test_a_refusal_says_why(model_engine: Engine, question: str, reason: str) -> None:
    answer = model_engine.ask(question)
    assert (answer.answerable, answer.answer, answer.reason) == (False, None, reason)


# --- with the cross-encoder ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_engine(model_engine: Engine) -> Engine:
    """The shipped cross-encoder rereads the first ranking's best candidates, for every question."""
    from qa.defaults import DEFAULT_READER_CANDIDATES
    from qa.reader import load_reader

    return Engine(
        model_engine.index, model_engine.embedder, reader=load_reader(), reread=DEFAULT_READER_CANDIDATES,
        reread_below=1.0,
    )  # fmt: skip


@pytest.mark.model
def test_the_cross_encoder_rereads_and_its_logit_is_reported(read_engine: Engine) -> None:
    """With the cross-encoder the reranker decides: its confidence's terms include the cross-encoder's, the
    best candidate's logit is reported, and the quote is still verbatim at its offsets."""
    asked = read_engine.ask_detailed("How many agencies participate in Secure Communities?")
    assert asked.answer.answerable, asked.answer.reason
    assert asked.answer.answer == AGENCIES_SENTENCE
    assert {"reader", "ranking"} <= set(asked.terms)
    assert asked.reader is not None and asked.reader > 0
    assert_answer_contract(asked.answer, read_engine.index)


@pytest.mark.model
def test_the_cross_encoder_reads_the_answer_after_its_headings(read_engine: Engine) -> None:
    """The logit reported is the cross-encoder's score of the answer read after its section's headings
    ("Notable Data Sharing Programs and Agreements › Secure Communities: Over 3,000 ..."), not of the
    sentence alone: what it was trained on (``fitting.reader.with_headings``)."""
    from qa.reader import read_as

    question = "How many agencies participate in Secure Communities?"
    asked = read_engine.ask_detailed(question)
    citation = asked.answer.citations[0]
    assert citation.quote == AGENCIES_SENTENCE
    headings = " › ".join(citation.section_path[-2:])
    assert headings == "Notable Data Sharing Programs and Agreements › Secure Communities"
    assert read_engine.reader is not None
    (with_headings, alone) = read_engine.reader.score(
        question, [read_as(AGENCIES_SENTENCE, headings), AGENCIES_SENTENCE]
    )
    assert asked.reader == pytest.approx(float(with_headings), abs=1e-4) and with_headings != alone


@pytest.mark.model
def test_without_the_cross_encoder_the_first_ranker_decides(model_engine: Engine) -> None:
    """``reread=0`` (QA_READER_CANDIDATES=0) or no reader: no cross-encoder term, no logit reported."""
    asked = model_engine.ask_detailed("How many agencies participate in Secure Communities?")
    assert "reader" not in asked.terms and asked.reader is None
    off = Engine(model_engine.index, model_engine.embedder, reader=None, reread=4)
    assert off.reranker is None and off.ask_detailed("How many agencies participate?").reader is None


@pytest.mark.model
def test_a_copy_over_another_index_keeps_the_cross_encoder(read_engine: Engine) -> None:
    copy = read_engine.with_index(read_engine.index)
    assert (copy.reader, copy.reread, copy.reread_below, copy.reranker, copy.min_score) == (
        read_engine.reader, read_engine.reread, read_engine.reread_below, read_engine.reranker,
        read_engine.min_score,
    )  # fmt: skip


@pytest.mark.model
def test_only_a_first_answer_below_the_gate_is_reread(model_engine: Engine, read_engine: Engine) -> None:
    """``reread_below`` (QA_READER_BELOW): a question whose first answer's confidence is at or above it keeps
    the first ranker's answer and confidence, unread; just above that confidence, it is reread."""
    question = "How many agencies participate in Secure Communities?"
    first = model_engine.ask_detailed(question)  # the first ranker alone
    assert 0 < first.evidence < 1
    at = Engine(read_engine.index, read_engine.embedder, reader=read_engine.reader, reread=read_engine.reread,
                reread_below=first.evidence)  # fmt: skip
    kept = at.ask_detailed(question)
    assert (kept.reader, kept.evidence, kept.answer.answer) == (None, first.evidence, first.answer.answer)
    assert "reader" not in kept.terms
    above = Engine(read_engine.index, read_engine.embedder, reader=read_engine.reader, reread=read_engine.reread,
                   reread_below=first.evidence + 0.0001)  # fmt: skip
    read = above.ask_detailed(question)
    assert read.reader is not None and "reader" in read.terms
    assert read.evidence == read_engine.ask_detailed(question).evidence
