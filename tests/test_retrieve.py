"""Tests for ``qa.retrieve``: FAISS against a numpy oracle, RRF by hand, lexical search."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

import qa.index
from qa.build import update_index
from qa.embed import HashEmbedder
from qa.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, RESCORE_FACTOR, VectorIndex, make_dense
from qa.indexing import index_corpus
from qa.ingest import parse_document
from qa.retrieve import RRF_K, bm25_scores, dense_search, fuse_rrf, lexical_search, retrieve, rows_with_any
from qa.storage import load_index
from qa.tokens import tokenize


def unit_vectors(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def brute_force_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: exact inner-product top-k by numpy, best first."""
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


# --- dense search against the oracle ----------------------------------------------------------------


@pytest.mark.parametrize(("rows", "dim", "k"), [(1, 8, 1), (500, 32, 10), (2000, 64, 50)])
def test_flat_index_equals_brute_force(rows: int, dim: int, k: int) -> None:
    vectors, queries = unit_vectors(rows, dim, seed=1), unit_vectors(20, dim, seed=2)
    dense = make_dense(vectors)
    assert isinstance(dense, faiss.IndexFlatIP)
    scores, ids = dense.search(queries, k)
    expected_scores, expected_ids = brute_force_top_k(vectors, queries, k)
    assert np.array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-5)


def test_dense_search_equals_brute_force_on_the_corpus_index(hash_index: VectorIndex) -> None:
    query = HashEmbedder().embed_queries(["secure communities agencies"])[0]
    found = dense_search(hash_index, query, 100)
    scores, ids = brute_force_top_k(np.asarray(hash_index.passage_vectors), query[None, :], 16)
    assert [row for row, _ in found] == ids[0].tolist()
    np.testing.assert_allclose([score for _, score in found], scores[0], atol=1e-5)


def test_hnsw_recall_against_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above FLAT_MAX_PASSAGES make_dense switches to HNSW: its recall@10 is checked against exact search."""
    monkeypatch.setattr(qa.index, "FLAT_MAX_PASSAGES", 100)
    vectors, queries = unit_vectors(3000, 32, seed=3), unit_vectors(50, 32, seed=4)
    dense = make_dense(vectors)
    assert isinstance(dense, faiss.IndexHNSWFlat)
    assert (dense.hnsw.efConstruction, dense.hnsw.efSearch) == (HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH)
    _, ids = dense.search(queries, 10)
    _, expected = brute_force_top_k(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), expected.tolist(), strict=True)])
    assert recall >= 0.98
    assert HNSW_M == 32


def test_hnsw_index_round_trips_with_its_search_depth(
    monkeypatch: pytest.MonkeyPatch, corpus_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(qa.index, "FLAT_MAX_PASSAGES", 10)
    index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder())
    loaded = load_index(tmp_path)
    assert [s.faiss for s in loaded.segments] == ["IndexHNSWFlat"]
    assert loaded.segments[0].dense.hnsw.efSearch == HNSW_EF_SEARCH
    query = HashEmbedder().embed_queries(["fusion centers"])[0]
    _, expected = brute_force_top_k(np.asarray(loaded.passage_vectors), query[None, :], 5)
    assert [row for row, _ in dense_search(loaded, query, 5)] == expected[0].tolist()


# --- 8-bit vectors (QA_QUANTIZE_VECTORS) ------------------------------------------------------------


def test_quantized_flat_index_stores_a_quarter_and_shortlists_the_exact_top_k() -> None:
    vectors, queries = unit_vectors(2000, 64, seed=5), unit_vectors(20, 64, seed=6)
    dense = make_dense(vectors, quantize=True)
    assert isinstance(dense, faiss.IndexScalarQuantizer) and dense.ntotal == 2000
    assert dense.sa_code_size() == 64  # one byte per component, against four
    _, shortlist = dense.search(queries, 10 * RESCORE_FACTOR)
    _, expected = brute_force_top_k(vectors, queries, 10)
    assert all(set(e) <= set(s) for e, s in zip(expected.tolist(), shortlist.tolist(), strict=True))


def test_quantized_search_returns_exact_cosines_in_exact_order(corpus_dir: Path, tmp_path: Path) -> None:
    index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder(), quantize=True)
    loaded = load_index(tmp_path)
    assert loaded.quantized and [s.faiss for s in loaded.segments] == ["IndexScalarQuantizer"]
    assert loaded.manifest.settings["quantize_vectors"] is True
    query = HashEmbedder().embed_queries(["secure communities agencies"])[0]
    found = dense_search(loaded, query, 8)
    scores, ids = brute_force_top_k(np.asarray(loaded.passage_vectors), query[None, :], 8)
    assert [row for row, _ in found] == ids[0].tolist()
    np.testing.assert_allclose([score for _, score in found], scores[0], atol=1e-6)


def test_quantized_hnsw_round_trips(monkeypatch: pytest.MonkeyPatch, corpus_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setattr(qa.index, "FLAT_MAX_PASSAGES", 10)
    index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder(), quantize=True)
    loaded = load_index(tmp_path)
    assert [s.faiss for s in loaded.segments] == ["IndexHNSWSQ"] and loaded.quantized
    assert loaded.segments[0].dense.hnsw.efSearch == HNSW_EF_SEARCH
    query = HashEmbedder().embed_queries(["fusion centers"])[0]
    _, expected = brute_force_top_k(np.asarray(loaded.passage_vectors), query[None, :], 5)
    assert [row for row, _ in dense_search(loaded, query, 5)] == expected[0].tolist()


def test_switching_quantization_rebuilds_and_updates_keep_it(corpus_dir: Path, tmp_path: Path) -> None:
    assert not index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder()).skipped
    assert index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder()).skipped
    assert not index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder(), quantize=True).skipped
    assert index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder(), quantize=True).skipped
    loaded = load_index(tmp_path)
    extra = parse_document("extra.md", b"# Extra\n\nA new paragraph about fusion centers.\n")
    updated = update_index(loaded, HashEmbedder(), add=[extra])
    assert updated.quantized and updated.manifest.settings["quantize_vectors"] is True


# --- reciprocal rank fusion ------------------------------------------------------------------------


def test_fuse_rrf_exact_scores() -> None:
    fused = fuse_rrf([(1, 0.9), (2, 0.8)], [(2, 7.0), (3, 1.0)])
    assert fused == [(2, 1 / 61 + 1 / 62), (1, 1 / 61), (3, 1 / 62)]
    assert RRF_K == 61


def test_fuse_rrf_ignores_scores_and_breaks_ties_by_row() -> None:
    assert fuse_rrf([(5, 100.0)], [(3, -1.0)]) == [(3, 1 / 61), (5, 1 / 61)]
    assert fuse_rrf([(7, 0.0), (8, 0.0), (9, 0.0)]) == [(7, 1 / 61), (8, 1 / 62), (9, 1 / 63)]


def test_fuse_rrf_of_nothing() -> None:
    assert fuse_rrf() == []
    assert fuse_rrf([], []) == []


# --- lexical search ---------------------------------------------------------------------------------


def test_lexical_search_finds_a_rare_token(hash_index: VectorIndex) -> None:
    found = lexical_search(hash_index, tokenize("biometric"), 10)
    assert len(found) == 1
    assert "biometric data" in hash_index.passages[found[0][0]].text
    assert found[0][1] > 0


def test_lexical_search_stems_and_ranks(hash_index: VectorIndex) -> None:
    found = lexical_search(hash_index, tokenize("license plate readers"), 10)
    texts = [hash_index.passages[row].text for row, _ in found]
    assert texts[0].startswith("License Plate Reader Searches by Police for ICE")
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)


# How many of the default corpus's 16 passages hold a word of each question.
ROWS_WITH_ANY = {"biometric": 1, "license plate readers": 3, "data sharing ICE": 15, "zeppelin": 0, "": 0}


@pytest.mark.parametrize("question", list(ROWS_WITH_ANY))
def test_rows_with_any_are_the_rows_bm25_scores(hash_index: VectorIndex, question: str) -> None:
    """Lexical search keeps the rows holding a question word instead of scanning every score for non-zeros:
    they must be exactly the rows with a score."""
    segment = hash_index.segments[0]
    known = [t for t in tokenize(question) if t in hash_index.idf]
    idf = np.asarray([hash_index.idf[t] for t in known], dtype=np.float32)
    scores = bm25_scores(segment.postings, known, idf, np.float32(hash_index.mean_length))
    assert rows_with_any(segment.postings, known).tolist() == np.flatnonzero(scores).tolist()
    assert len(rows_with_any(segment.postings, known)) == ROWS_WITH_ANY[question]


def test_lexical_search_with_unknown_or_no_tokens(hash_index: VectorIndex) -> None:
    assert lexical_search(hash_index, tokenize("zeppelin"), 10) == []
    assert lexical_search(hash_index, [], 10) == []


# --- retrieve ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_retrieve_modes(hash_index: VectorIndex, mode: str) -> None:
    question = "How many fusion centers are there?"
    query = HashEmbedder().embed_queries([question])[0]
    hits = retrieve(hash_index, query, question, k=5, mode=mode)  # type: ignore[arg-type]  # parametrized Literal
    assert [h.rank for h in hits] == list(range(len(hits)))
    assert 1 <= len(hits) <= 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        row = hash_index.by_id[h.passage.id]
        assert h.dense_score == pytest.approx(float(hash_index.passage_vectors[row] @ query), abs=1e-5)


def test_retrieve_hybrid_scores_are_the_fused_scores(hash_index: VectorIndex) -> None:
    question = "fusion centers"
    query = HashEmbedder().embed_queries([question])[0]
    dense = dense_search(hash_index, query, 50)
    lexical = lexical_search(hash_index, tokenize(question), 50)
    hits = retrieve(hash_index, query, question, k=3)
    assert [(hash_index.by_id[h.passage.id], h.score) for h in hits] == fuse_rrf(dense, lexical)[:3]
    assert [h.lexical_score for h in hits] == [dict(lexical).get(hash_index.by_id[h.passage.id], 0.0) for h in hits]


def test_bm25_mode_needs_no_query_vector(hash_index: VectorIndex) -> None:
    hits = retrieve(hash_index, None, "biometric", k=3, mode="bm25")
    assert len(hits) == 1
    assert hits[0].dense_score == 0.0


def test_k_larger_than_the_index(hash_index: VectorIndex) -> None:
    query = HashEmbedder().embed_queries(["data"])[0]
    assert len(retrieve(hash_index, query, "data", k=100, mode="dense")) == 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Agencies' data, 3,000 ICE-run", ["agenc", "data", "3000", "ice", "run"]),
        ("Infor-\nmation SHARED in Jan. 2025", ["inform", "share", "jan", "2025"]),
        ("\ufb01nance \uff21\uff22\uff23 Stra\u00dfe", ["financ", "abc", "strass"]),  # NFKC and casefold
        ("The Agencies\u2019 data", ["agenc", "data"]),
    ],
)
def test_tokenize_folds_text_the_same_on_its_ascii_path(text: str, expected: list[str]) -> None:
    """ASCII text skips NFKC and casefold (identities there, lower-casing aside); a non-ASCII word appended
    sends the same text down the Unicode path, and both give the same tokens."""
    assert tokenize(text) == expected
    assert tokenize(text + " \u00e9t\u00e9") == [*expected, "\u00e9t\u00e9"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u0130stanbul and D\u0130YARBAKIR", ["istanbul", "diyarbakir"]),  # casefold leaves i + U+0307
        ("\u0390 \u01f0ob", ["\u0390", "\u01f0ob"]),  # casefold decomposes both; NFC composes them again
        ("q\u0301uick caf\u0065\u0301", ["quick", "caf\u00e9"]),  # a mark no letter composes with; one that does
    ],
)
def test_a_letter_that_casefold_decomposes_stays_in_its_word(text: str, expected: list[str]) -> None:
    """Before, a combining mark (one that case-folding leaves, or one in the text that composes with no
    letter) split the word: "İstanbul" was "stanbul"."""
    assert tokenize(text) == expected
    assert tokenize("Istanbul") == tokenize("\u0130stanbul")


def test_tokens_are_the_same_when_threads_stem_at_once() -> None:
    """A Snowball stemmer keeps its word in itself: shared by threads, it mixed their words up (a server
    answering two questions at once got wrong tokens, or an IndexError). Words never stemmed before, so the
    cache does not hide the stemmer."""
    import threading

    import qa.tokens

    words = [f"{stem}{suffix}" for stem in ("internationaliz", "organiz", "categoriz", "nationaliz") for suffix in
             ("ation", "ations", "ing", "ed", "es")]  # fmt: skip
    expected = {w: "".join(qa.tokens.tokenize(w)) for w in words}
    failures: list[str] = []

    def stem_all(seed: int) -> None:
        for round_ in range(200):
            qa.tokens.token_of.cache_clear()
            for word in words[seed % len(words) :] + words[: seed % len(words)]:
                got = "".join(qa.tokens.tokenize(word))
                if got != expected[word]:
                    failures.append(f"{word!r} -> {got!r}, not {expected[word]!r} (round {round_})")

    threads = [threading.Thread(target=stem_all, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_the_c_stemmer_gives_the_stems_the_lexical_indexes_were_built_with() -> None:
    """``qa.tokens`` stems with PyStemmer (Snowball in C); indexes built before it stemmed with Snowball's
    pure-Python build. The same stems keep those indexes valid (no TOKENIZER_VERSION bump): every word of
    the default corpus and the gold questions, words whose suffixes the algorithm treats specially, and
    words with letters outside a-z."""
    from snowballstemmer.english_stemmer import EnglishStemmer

    import qa.tokens

    root = Path(__file__).resolve().parent.parent
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((root / "corpus").rglob("*")) if p.is_file())
    text += (root / "tests" / "data" / "gold.jsonl").read_text(encoding="utf-8")
    words = {w.replace(",", "") for w in qa.tokens._TOKEN.findall(text.lower())}
    words |= {"generously", "dying", "skies", "news", "cosmos", "sses", "ies", "yyy", "y", "o'neill", "don’t",
              "café", "naïve", "résumé", "straße", "maizière", "istanbul"}  # fmt: skip
    assert len(words) > 500
    python = EnglishStemmer()
    c = qa.tokens._stemmer()
    assert {w: c.stemWord(w) for w in words} == {w: python.stemWord(w) for w in words}
    assert qa.tokens.stem("authorizes") == qa.tokens.stem("authorized") == "author"


def test_a_stored_hnsw_index_is_read_when_first_searched(
    monkeypatch: pytest.MonkeyPatch, corpus_dir: Path, tmp_path: Path
) -> None:
    """A view loaded without searching (a build, or a shard of ``qa serve --ray`` for the segments it does not
    search) leaves dense.faiss unread; the first search reads it; one that holds another count than the
    segment's passages is refused when read."""
    import qa.storage
    from qa.errors import IndexFormatError

    monkeypatch.setattr(qa.index, "FLAT_MAX_PASSAGES", 10)
    index_corpus(corpus_dir, tmp_path, embedder=HashEmbedder())
    (segment,) = load_index(tmp_path, search=False).segments
    assert segment._dense is None and segment.faiss == "IndexHNSWFlat"
    assert segment.dense.ntotal == len(segment.passages) == 16 and segment._dense is not None
    assert load_index(tmp_path).segments[0]._dense is not None  # a server's load reads it at once
    assert segment.path is not None
    with pytest.raises(IndexFormatError, match="inconsistent with its manifest"):
        qa.storage._read_dense(segment.path, 17)
