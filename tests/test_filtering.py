"""Filtered retrieval (``where=``) against brute force over the matching passages, and metadata in the index.

The oracle scores every live passage of a matching document directly (cosine with the stored vectors,
BM25 with the index's statistics) and takes the best ``n``, ties in corpus order: filtered dense and
lexical search must return exactly that, across segments, tombstones, flat and graph segments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# At the top, not in the test: importing test_filters inside a running @given test ran its module-level
# @given decorators there, which Hypothesis refuses as nested (when this file ran without test_filters.py).
from test_filters import reference

from qa import retrieve as retrieve_module
from qa.build import build_index, update_index
from qa.embed import HashEmbedder
from qa.engine import Engine
from qa.filters import FilterError, parse_filter, schema_of
from qa.index import VectorIndex
from qa.ingest import load_corpus, parse_document
from qa.retrieve import bm25_scores, dense_search, lexical_search, retrieve
from qa.storage import load_index, save_index
from qa.tokens import tokenize

TOPICS = ["retention", "sharing", "biometric", "budget", "warrant", "privacy", "audit", "training"]
TAGS = ["policy", "hr", "legal", "draft"]


def _document(i: int) -> tuple[str, bytes, dict[str, object]]:
    words = [TOPICS[(i + j) % len(TOPICS)] for j in range(3)]
    text = "\n\n".join(
        f"Paragraph {p} of document {i} covers {words[p % 3]} rules and {words[(p + 1) % 3]} duties in detail."
        for p in range(1 + i % 4)
    )
    metadata: dict[str, object] = {"tags": [TAGS[i % 4], TAGS[(i // 4) % 4]], "year": 2015 + i % 10}
    if i % 3:
        metadata["date"] = f"20{10 + i % 15:02d}-0{1 + i % 9}-1{i % 10}"
    if i % 5 == 0:
        metadata["reviewed"] = i % 2 == 0
    return f"doc{i:02d}.md", f"# Document {i}\n\n{text}\n".encode(), metadata


@pytest.fixture(scope="module")
def index() -> VectorIndex:
    """Three segments (a later one replacing two documents), one document deleted: 36 documents live."""
    from qa.metadata import clean_metadata

    docs = [parse_document(d, data, metadata=clean_metadata(m)) for d, data, m in map(_document, range(40))]
    embedder = HashEmbedder()
    index = build_index(docs[:20], embedder)
    index = update_index(index, embedder, add=docs[20:40])
    index = update_index(index, embedder, add=[docs[3], docs[25]], remove=["doc07.md", "doc31.md", "doc12.md"])
    assert len(index.segments) == 3 and len(index.documents) == 37
    return index


def _oracle_rows(index: VectorIndex, data: dict[str, object]) -> list[int]:
    """Live rows of the documents the raw filter lets through, by the plain reference evaluator."""
    return [
        row
        for row in range(index.n_rows)
        if index.live[row]
        and reference(data, index.passages[row].doc_id, index.documents[index.passages[row].doc_id].metadata)
    ]


def _top(index: VectorIndex, scored: list[tuple[int, float]], n: int) -> list[int]:
    return [row for row, _ in sorted(scored, key=lambda x: (-x[1], index.position(x[0])))[:n]]


def _brute_dense(index: VectorIndex, rows: list[int], query: np.ndarray, n: int) -> list[int]:
    scores = np.asarray(index.passage_vectors[rows] @ query, dtype=np.float32) if rows else []
    return _top(index, [(r, float(s)) for r, s in zip(rows, scores, strict=True)], n)


def _brute_lexical(index: VectorIndex, rows: list[int], tokens: list[str], n: int) -> list[int]:
    known = [t for t in tokens if t in index.idf]
    idf = np.asarray([index.idf[t] for t in known], dtype=np.float32)
    scored = []
    for row in rows:
        segment_index, local = index.locate(row)
        segment = index.segments[segment_index]
        score = bm25_scores(segment.postings, known, idf, np.float32(index.mean_length))[local] if known else 0.0
        if score > 0:
            scored.append((row, float(score)))
    return _top(index, scored, n)


leaf = st.one_of(
    st.builds(lambda t: {"tags": t}, st.sampled_from(TAGS)),
    st.builds(lambda t: {"tags": {"in": t}}, st.lists(st.sampled_from(TAGS), min_size=1, max_size=3)),
    st.builds(
        lambda op, y: {"year": {op: y}},
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        st.integers(2013, 2026),
    ),  # fmt: skip
    st.builds(
        lambda op, d: {"date": {op: d}},
        st.sampled_from(["gt", "gte", "lt", "lte"]),
        st.sampled_from(["2012-01-01", "2015-06-15", "2019-03-13", "2024-12-31"]),
    ),  # fmt: skip
    st.builds(lambda b: {"reviewed": b}, st.booleans()),
    st.builds(
        lambda ids: {"document_id": {"in": ids}},
        st.lists(st.sampled_from([f"doc{i:02d}.md" for i in range(40)]), min_size=1, max_size=6),
    ),  # fmt: skip
)


def filters_of(depth: int) -> st.SearchStrategy[dict[str, object]]:
    """Filters nested up to ``depth`` combinators deep."""
    if depth == 0:
        return leaf
    inner = filters_of(depth - 1)
    return st.one_of(
        leaf,
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"and": fs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"or": fs}),
        inner.map(lambda f: {"not": f}),
    )


filters = filters_of(2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=filters, n=st.integers(1, 12), topic=st.sampled_from(TOPICS))
def test_filtered_search_is_brute_force_over_the_matching_passages(index, data, n, topic) -> None:
    """Dense and lexical top-n under any filter equal the oracle's, and n come back when n match."""
    where = parse_filter(data, schema_of((d.id, d.metadata) for d in index.documents.values()))
    rows = _oracle_rows(index, data)
    query = HashEmbedder().embed_queries([f"{topic} rules"])[0]
    dense = [row for row, _ in dense_search(index, query, n, where=where)]
    assert dense == _brute_dense(index, rows, query, n)
    assert len(dense) == min(n, len(rows))
    tokens = tokenize(f"{topic} duties")
    lexical = [row for row, _ in lexical_search(index, tokens, n, where=where)]
    assert lexical == _brute_lexical(index, rows, tokens, n)


def test_a_graph_segment_is_filtered_exactly_too(index, monkeypatch) -> None:
    """HNSW segments: few matching rows are scored exactly; many go through the graph with a selector."""
    import faiss

    from qa.index import make_dense

    for segment in index.segments:  # the same vectors in graphs (built for the test: the segments are small)
        monkeypatch.setattr(segment, "faiss", "IndexHNSWFlat")
        graph = make_dense(np.asarray(segment.passage_vectors, dtype=np.float32))
        if not isinstance(graph, faiss.IndexHNSWFlat):
            graph = faiss.IndexHNSWFlat(graph.d, 32, faiss.METRIC_INNER_PRODUCT)
            graph.add(np.asarray(segment.passage_vectors, dtype=np.float32))
        monkeypatch.setattr(segment, "_dense", graph)
    query = HashEmbedder().embed_queries(["retention rules"])[0]
    data = {"tags": {"in": ["policy", "legal"]}}
    expected = _brute_dense(index, _oracle_rows(index, data), query, 10)
    where = parse_filter(data, schema_of((d.id, d.metadata) for d in index.documents.values()))
    assert [r for r, _ in dense_search(index, query, 10, where=where)] == expected
    monkeypatch.setattr(retrieve_module, "EXACT_FILTERED_ROWS", 0)  # through the graph: small graphs are exact
    assert [r for r, _ in dense_search(index, query, 10, where=where)] == expected


def test_retrieve_keeps_to_the_filter_and_fills_k(index) -> None:
    """Hybrid retrieval under a filter: k hits, every one from a matching document."""
    engine = Engine(index, HashEmbedder(), reread=0)
    where = engine.parse_filter({"tags": "legal", "year": {"gte": 2020}})
    allowed = {d.id for d in index.documents.values() if "legal" in d.metadata["tags"] and d.metadata["year"] >= 2020}
    hits = retrieve(index, HashEmbedder().embed_queries(["audit duties"])[0], "audit duties", k=5, where=where)
    assert len(hits) == 5 and {h.passage.doc_id for h in hits} <= allowed
    answer = engine.ask("Which audit duties are covered?", where=where)
    assert answer.citations and {c.document_id for c in answer.citations} <= allowed
    assert all(c.document_metadata == index.documents[c.document_id].metadata for c in answer.citations)


def test_a_filter_no_document_matches_gives_nothing(index) -> None:
    engine = Engine(index, HashEmbedder(), reread=0)
    where = engine.parse_filter({"document_id": "nothing.md"})
    assert engine.search("retention", where=where) == []
    answer = engine.ask("What are the retention rules?", where=where)
    assert not answer.answerable and answer.citations == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"year": "2020"}, "'year'"),
        ({"reviewed": {"gte": True}}, "'reviewed'"),
        ({"date": {"gte": "last year"}}, "'date'"),
    ],
)
def test_the_engine_checks_filters_against_the_index(index, data, message) -> None:
    """An unknown field or a value of the wrong type is a FilterError (422) naming the field."""
    with pytest.raises(FilterError, match=message) as caught:
        Engine(index, HashEmbedder(), reread=0).parse_filter(data)
    assert caught.value.status == 422


def test_metadata_survives_saving_and_loading(index, tmp_path: Path) -> None:
    save_index(index, tmp_path / "index")
    loaded = load_index(tmp_path / "index", model=HashEmbedder().name)
    assert {d.id: d.metadata for d in loaded.documents.values()} == {d.id: d.metadata for d in index.documents.values()}
    assert loaded.documents["doc05.md"].metadata == {
        "tags": ("hr",), "year": 2020, "date": "2015-06-15", "reviewed": False,
    }  # fmt: skip


def test_sidecars_and_front_matter_give_metadata_at_index_time(tmp_path: Path) -> None:
    """A sidecar sets fields over the front matter's; its title becomes the document's; a bad one is a problem."""
    (tmp_path / "a.md").write_text(
        "---\ntitle: From front matter\ntags: [policy]\ndate: 2024-05-01\n---\n# Heading\n\nBody text here.\n"
    )
    (tmp_path / "b.txt").write_text("Plain text body.\n")
    (tmp_path / "b.txt.meta.json").write_text(json.dumps({"title": "B title", "tags": ["hr"], "pages": 3}))
    (tmp_path / "a.md.meta.json").write_text(json.dumps({"language": "en"}))
    (tmp_path / "c.txt").write_text("Another body.\n")
    (tmp_path / "c.txt.meta.json").write_text(json.dumps({"tags": "not a list"}))
    documents, problems = load_corpus(tmp_path)
    by_id = {d.id: d for d in documents}
    assert by_id["a.md"].metadata == {
        "title": "From front matter", "tags": ("policy",), "date": "2024-05-01", "language": "en",
    }  # fmt: skip
    assert by_id["a.md"].title == "From front matter"
    text = by_id["a.md"].text
    assert text.startswith("---\ntitle:") and all(b.start >= text.index("# Heading") for b in by_id["a.md"].blocks)
    assert by_id["b.txt"].metadata == {"title": "B title", "tags": ("hr",), "pages": 3}
    assert by_id["b.txt"].title == "B title"
    assert [(p.document_id, p.message) for p in problems] == [
        ("c.txt", "c.txt.meta.json: metadata.tags must be a list of strings")
    ]
