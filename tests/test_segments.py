"""Segments: a write adds a segment, a delete a tombstone, a merge rewrites a few segments as one.

What these tests pin: an index made by any sequence of segment writes, deletes, replaces and merges
retrieves, scores and answers exactly as a one-shot build of the same documents does (passage ids,
fused, dense and BM25 scores, answers); BM25 over segments uses the corpus's statistics and equals
bm25s over the merged corpus; a write writes only its own segment and a commit; ``qa index`` is
incremental and resumes an interrupted run; merges follow the tiered policy, drop tombstoned
passages and carry over deletes made while they ran. Kills at each step of a write and a merge are
in ``reliability/test_rel_kill_segments.py``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from corpus_helpers import CORPUS_QUESTIONS
from index_helpers import segment_names, segments_on_disk

import qa.build
import qa.index
import qa.indexing
import qa.storage
import qa.writes
from qa.build import build_index, empty_index, merge_segments, update_index, with_changes
from qa.chunk import retrieval_text
from qa.embed import HashEmbedder
from qa.engine import Engine
from qa.index import Layered, VectorIndex
from qa.indexing import index_corpus
from qa.ingest import parse_document
from qa.records import answer_record
from qa.retrieve import MODES, bm25_scores, retrieve
from qa.storage import load_index, save_index, writer_lock
from qa.tokens import tokenize
from qa.types import Document
from qa.writes import merge_once, merge_plan, replace_segments

QUESTIONS = [*CORPUS_QUESTIONS, "Department of Motor Vehicles data", "memorandums of agreement signed nationwide"]


@pytest.fixture(scope="module")
def documents(corpus_dir: Path) -> list[Document]:
    """The default corpus cut into eight documents of about a dozen lines each: real text, several files."""
    lines = (corpus_dir / "immigration-data-sharing.txt").read_text(encoding="utf-8").splitlines()
    size = -(-len(lines) // 8)
    return [
        parse_document(f"part-{i}.txt", "\n".join(lines[start : start + size]).encode())
        for i, start in enumerate(range(0, len(lines), size))
    ]


def snapshot(index: VectorIndex) -> list[Any]:
    """Every mode's hits (ids, fused, dense and BM25 scores) and every answer: equal means the same behaviour."""
    embedder = HashEmbedder()
    hits = [
        [
            (h.passage.id, round(h.score, 9), round(h.dense_score, 6), round(h.lexical_score, 5))
            for h in retrieve(index, embedder.embed_queries([q])[0], q, k=8, mode=mode)
        ]
        for q in QUESTIONS
        for mode in MODES
    ]
    engine = Engine(index, embedder)
    answered = [{k: v for k, v in answer_record(engine.ask(q)).items() if k != "took_ms"} for q in QUESTIONS]
    return [hits, answered]


def one_by_one(documents: Sequence[Document]) -> VectorIndex:
    """An index with each document in a segment of its own, written in order."""
    index = empty_index("hash-64", 64, build_index(documents[:1], HashEmbedder()).manifest.settings)
    for doc in documents:
        index = update_index(index, HashEmbedder(), add=[doc])
    return index


def edited(doc: Document, old: str, new: str) -> Document:
    assert old in doc.text
    return parse_document(doc.id, doc.text.replace(old, new).encode())


# --- segments answer as one merged index ------------------------------------------------------------


def test_writes_one_by_one_equal_a_one_shot_build(documents: list[Document]) -> None:
    segmented = one_by_one(documents)
    assert len(segmented.segments) == len(documents) == 7
    assert segmented.manifest.n_passages == segmented.n_passages == build_index(documents, HashEmbedder()).n_passages
    assert snapshot(segmented) == snapshot(build_index(documents, HashEmbedder()))


def test_deletes_and_replaces_equal_a_one_shot_build(documents: list[Document]) -> None:
    segmented = one_by_one(documents)
    replaced = edited(documents[2], "About 80 fusion centers", "About 90 fusion centers")
    extra = parse_document("extra.md", b"# Extra\n\nFusion centers also share weather data with ports.\n")
    segmented = update_index(segmented, HashEmbedder(), remove=[documents[1].id, documents[5].id])
    segmented = update_index(segmented, HashEmbedder(), add=[replaced, extra])
    final = [d for d in documents if d.id not in {documents[1].id, documents[5].id, replaced.id}] + [replaced, extra]
    # Deleted documents' segments held nothing else: they left the commit; the replaced one did too.
    assert [ref.deleted for ref in segmented.manifest.segments] == [frozenset()] * 5  # 7 - 3 + 1
    assert sorted(segmented.documents) == sorted(d.id for d in final)
    assert snapshot(segmented) == snapshot(build_index(final, HashEmbedder()))


def test_a_tombstone_hides_a_document_its_segment_still_holds(documents: list[Document]) -> None:
    """Two documents in one segment, one deleted: its passages stay on disk but count nowhere (BM25 included)."""
    index = update_index(
        empty_index("hash-64", 64, build_index(documents[:1], HashEmbedder()).manifest.settings),
        HashEmbedder(),
        add=documents[:4],
    )
    index = update_index(index, HashEmbedder(), remove=[documents[1].id])
    (ref,) = index.manifest.segments
    assert ref.deleted == frozenset({documents[1].id})
    assert index.n_rows > index.n_passages == index.manifest.n_passages
    assert not any(p.doc_id == documents[1].id for p in index.live_passages())
    rest = [documents[0], documents[2], documents[3]]
    assert snapshot(index) == snapshot(build_index(rest, HashEmbedder()))


def test_bm25_over_segments_equals_bm25s_over_the_merged_corpus(documents: list[Document]) -> None:
    import bm25s

    index = update_index(one_by_one(documents), HashEmbedder(), remove=[documents[3].id])
    live = list(index.live_passages())
    reference = bm25s.BM25()  # Lucene's BM25, k1 1.5, b 0.75: the library's defaults
    reference.index([tokenize(retrieval_text(p)) for p in live], show_progress=False)
    for question in QUESTIONS:
        tokens = [t for t in tokenize(question) if t in index.idf]
        if not tokens:
            continue
        weights = np.asarray([index.idf[t] for t in tokens], dtype=np.float32)
        ours = {}
        for segment in index.segments:
            scores = bm25_scores(segment.postings, tokens, weights, np.float32(index.mean_length))
            ours.update((p.id, float(s)) for p, s in zip(segment.passages, scores, strict=True))
        expected = reference.get_scores(tokens)
        np.testing.assert_allclose([ours[p.id] for p in live], expected, rtol=1e-5, atol=1e-6)
    # The IDF of every token is the corpus's: bm25s's, computed over the live passages only.
    df = np.diff(np.asarray(reference.scores["indptr"]))
    n = len(live)
    expected_idf = {
        t: float(np.log(1 + (n - df[c] + 0.5) / (df[c] + 0.5))) for t, c in reference.vocab_dict.items() if c < len(df)
    }
    assert index.idf == pytest.approx(expected_idf)


# --- writes on disk ------------------------------------------------------------------------------


def _files(index_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(index_dir).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in index_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
    }


def test_a_write_writes_its_segment_and_a_commit_and_nothing_else(documents: list[Document], tmp_path: Path) -> None:
    with writer_lock(tmp_path):
        save_index(build_index(documents[:6], HashEmbedder()), tmp_path)
    before = _files(tmp_path)
    (old_segment,) = segment_names(tmp_path)
    with writer_lock(tmp_path):
        base = load_index(tmp_path, model="hash-64")
        written = save_index(update_index(base, HashEmbedder(), add=[documents[6]]), tmp_path)
    after = _files(tmp_path)
    new_segment = segment_names(tmp_path)[1]
    assert segment_names(tmp_path) == [old_segment, new_segment]
    assert {name: after[name] for name in before if name in after} == before  # nothing rewritten
    added = sorted(set(after) - set(before))
    assert added == [f"commits/{written.name}"] + sorted(
        f"segments/{new_segment}/{name}"
        for name in (
            "documents.jsonl", "manifest.json", "passage_vectors.npy", "passages.jsonl", "postings.npz",
            "postings_vocab.json", "unit_vectors.npy",
        )
    )  # fmt: skip
    # A delete writes only a commit, with the tombstone.
    with writer_lock(tmp_path):
        save_index(update_index(load_index(tmp_path), HashEmbedder(), remove=[documents[0].id]), tmp_path)
    assert sorted(set(_files(tmp_path)) - set(after)) == ["commits/00000003.json"]
    commit = json.loads((tmp_path / "current").read_text())
    assert [s["deleted"] for s in commit["segments"]] == [[documents[0].id], []]
    assert snapshot(load_index(tmp_path)) == snapshot(build_index(documents[1:7], HashEmbedder()))


def test_a_new_commit_loads_only_its_new_segments(documents: list[Document], tmp_path: Path) -> None:
    with writer_lock(tmp_path):
        save_index(build_index(documents[:4], HashEmbedder()), tmp_path)
    served = load_index(tmp_path)
    with writer_lock(tmp_path):
        save_index(update_index(load_index(tmp_path), HashEmbedder(), add=[documents[5]]), tmp_path)
    reloaded = load_index(tmp_path, previous=served)
    assert reloaded.segments[0] is served.segments[0] and len(reloaded.segments) == 2
    assert reloaded.token_cache is served.token_cache  # rows kept their meaning: the cache goes on


# --- merges ---------------------------------------------------------------------------------------


def test_the_tiered_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.writes, "MERGE_FACTOR", 3)
    notes = [parse_document(f"note-{i}.md", f"# Note {i}\n\nLlamas graze on ridge {i}.\n".encode()) for i in range(4)]
    index = one_by_one(notes[:2])
    assert [s.n_units for s in index.segments] == [1, 1]  # one passage each: the same tier
    assert merge_plan(index) == ()  # two of a tier: below the factor
    index = update_index(index, HashEmbedder(), add=[notes[2]])
    names = [s.name for s in index.segments]
    assert merge_plan(index) == tuple(names)
    merged = replace_segments(index, names, merge_segments(index, names), index)
    assert merged is not None and len(merged.segments) == 1
    # One segment of three passages beside one of one: tiers 1 and 0, nothing to merge.
    assert merge_plan(update_index(merged, HashEmbedder(), add=[notes[3]])) == ()
    # A segment with half its passages deleted or more is rewritten alone.
    shrunk = update_index(merged, HashEmbedder(), remove=[notes[0].id, notes[1].id])
    assert merge_plan(shrunk) == (merged.segments[0].name,)


def test_a_merge_equals_a_one_shot_build_and_drops_tombstones(documents: list[Document]) -> None:
    index = update_index(one_by_one(documents), HashEmbedder(), remove=[documents[4].id])
    index = update_index(
        index, HashEmbedder(), add=[edited(documents[2], "About 80 fusion centers", "About 85 fusion centers")]
    )
    names = [s.name for s in index.segments]
    merged_segment = merge_segments(index, names)
    merged = replace_segments(index, names, merged_segment, index)
    assert merged is not None and len(merged.segments) == 1 and merged.n_rows == merged.n_passages
    final = sorted(merged.documents.values(), key=lambda d: d.id)
    one_shot = build_index(final, HashEmbedder())
    # The same passages in the same order, with the same vectors, as a build of the live documents.
    assert merged_segment.passages == one_shot.segments[0].passages
    assert np.array_equal(np.asarray(merged.passage_vectors), np.asarray(one_shot.passage_vectors))
    assert snapshot(merged) == snapshot(one_shot) == snapshot(index)


def test_a_merge_carries_deletes_made_while_it_ran_and_drops_itself_when_stale(documents: list[Document]) -> None:
    since = one_by_one([])
    for pair in (documents[0:2], documents[2:4], documents[4:6]):
        since = update_index(since, HashEmbedder(), add=pair)
    names = [s.name for s in since.segments[:2]]
    merged = merge_segments(since, names)
    # While the merge ran: a document of a merged segment deleted, and a new one written.
    meanwhile = update_index(since, HashEmbedder(), remove=[documents[1].id])
    meanwhile = update_index(meanwhile, HashEmbedder(), add=[documents[6]])
    result = replace_segments(meanwhile, names, merged, since)
    assert result is not None
    assert result.manifest.segments[0].deleted == frozenset({documents[1].id})
    assert sorted(result.documents) == sorted(meanwhile.documents)
    assert snapshot(result) == snapshot(meanwhile)
    # A merged segment that writes emptied meanwhile (it left the commit): the merge is dropped.
    emptied = update_index(since, HashEmbedder(), remove=[documents[0].id, documents[1].id])
    assert replace_segments(emptied, names, merged, since) is None


def test_a_merge_streamed_into_its_files_equals_one_made_in_memory(
    documents: list[Document], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_merge reads the merged rows from the segments' files with plain reads, a few rows at a
    time (STREAM_ROWS 2 here), and writes them into the new segment's files: the segment on disk, once
    loaded, has the vectors, passages and postings of the same merge made in memory, and its files were
    written once (the manifest's checksums match what the gather wrote)."""
    monkeypatch.setattr(qa.storage, "STREAM_ROWS", 2)
    index = update_index(one_by_one(documents), HashEmbedder(), remove=[documents[4].id])
    with writer_lock(tmp_path):
        save_index(index, tmp_path)
    on_disk = load_index(tmp_path, model="hash-64", search=False)
    assert all(isinstance(s.unit_vectors, np.memmap) for s in on_disk.segments)  # read by plain reads below
    names = [s.name for s in on_disk.segments]
    streamed = qa.writes.write_merge(tmp_path, on_disk, names)
    in_memory = merge_segments(on_disk, names)
    loaded = qa.storage.load_segment(tmp_path / "segments" / streamed.name)
    assert loaded.passages == in_memory.passages and loaded.documents == in_memory.documents
    for name in ("passage_vectors", "unit_vectors"):
        assert np.array_equal(np.asarray(getattr(loaded, name)), getattr(in_memory, name)), name
    assert np.array_equal(loaded.unit_offsets, in_memory.unit_offsets)
    assert (loaded.postings.vocab, loaded.postings.rows.tolist()) == (
        in_memory.postings.vocab,
        in_memory.postings.rows.tolist(),
    )
    assert not (tmp_path / "segments" / f"{streamed.name}.tmp").exists()


def test_rows_of_a_memory_mapped_file_are_read_not_mapped(tmp_path: Path) -> None:
    """A merge reads a whole memory-mapped .npy by plain reads (a copy, not a view of the mapping); a
    slice of one, or an array in memory, is sliced."""
    matrix = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.save(tmp_path / "m.npy", matrix)
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")
    read = qa.storage._read_rows(mapped, 3, 7)
    # A read-only mapping's rows are read-only views; rows read from the file are an array of their own.
    assert not isinstance(read, np.memmap) and read.flags.writeable and np.array_equal(read, matrix[3:7])
    assert not mapped[3:7].flags.writeable
    assert np.array_equal(qa.storage._read_rows(mapped[2:], 1, 3), matrix[3:5])
    assert np.array_equal(qa.storage._read_rows(matrix, 0, 2), matrix[:2])


def test_merge_once_on_disk(documents: list[Document], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.writes, "MERGE_FACTOR", 4)
    for doc in documents[:5]:
        with writer_lock(tmp_path):
            base = load_index(tmp_path) if (tmp_path / "current").exists() else one_by_one([])
            save_index(update_index(base, HashEmbedder(), add=[doc]), tmp_path)
    before = snapshot(load_index(tmp_path))
    assert merge_once(tmp_path, lambda: load_index(tmp_path)) is True
    assert len(segment_names(tmp_path)) == 2  # four merged, one left
    assert snapshot(load_index(tmp_path)) == before
    assert merge_once(tmp_path, lambda: load_index(tmp_path)) is False  # nothing more to do


# --- qa index: incremental and resumable -----------------------------------------------------------


def _write_corpus(root: Path, documents: Sequence[Document]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for doc in documents:
        (root / doc.id).write_text(doc.text, encoding="utf-8")
    return root


def test_qa_index_adds_and_removes_only_what_changed(documents: list[Document], tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path / "corpus", documents[:6])
    first = index_corpus(corpus, tmp_path / "index", embedder=HashEmbedder())
    assert (first.added, first.removed, first.segments) == (6, 0, 1)
    (corpus / documents[0].id).unlink()
    (corpus / documents[1].id).write_text(documents[1].text + "\nA closing line about ports.\n", encoding="utf-8")
    _write_corpus(corpus, documents[6:7])
    second = index_corpus(corpus, tmp_path / "index", embedder=HashEmbedder())
    assert (second.skipped, second.added, second.removed, second.segments) == (False, 2, 1, 2)
    index = load_index(tmp_path / "index")
    assert index.manifest.segments[0].deleted == frozenset({documents[0].id, documents[1].id})
    from qa.ingest import load_corpus

    assert snapshot(index) == snapshot(build_index(load_corpus(corpus)[0], HashEmbedder()))


def test_an_interrupted_qa_index_is_taken_up_by_the_next_run(
    documents: list[Document], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _write_corpus(tmp_path / "corpus", documents)
    index_dir = tmp_path / "index"
    monkeypatch.setattr(qa.indexing, "SEGMENT_PASSAGES", 4)  # a segment every few documents
    real = qa.indexing.build_segment
    calls: list[int] = []

    def crashing(batch: Sequence[Document], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill would stop it: after two segments were written
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(qa.indexing, "build_segment", crashing)
    with pytest.raises(KeyboardInterrupt):
        index_corpus(corpus, index_dir, embedder=HashEmbedder())
    assert not (index_dir / "current").exists()  # nothing committed: no half index is ever served
    pending = json.loads((index_dir / "pending.json").read_text())
    assert len(pending["segments"]) == 2 and len(segments_on_disk(index_dir)) == 2
    done = calls[0] + calls[1]

    monkeypatch.setattr(qa.indexing, "build_segment", real)
    report = index_corpus(corpus, index_dir, embedder=HashEmbedder())
    assert (report.resumed, report.added) == (done, len(documents))
    assert not (index_dir / "pending.json").exists()
    uninterrupted = index_corpus(corpus, tmp_path / "uninterrupted", embedder=HashEmbedder())
    resumed, whole = load_index(index_dir), load_index(tmp_path / "uninterrupted")
    assert resumed.documents == whole.documents and report.n_passages == uninterrupted.n_passages
    assert snapshot(resumed) == snapshot(whole)
    assert segments_on_disk(index_dir) == sorted(segment_names(index_dir))  # the journal's leftovers pruned


def test_qa_index_merges_at_the_end(documents: list[Document], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.indexing, "SEGMENT_PASSAGES", 2)
    monkeypatch.setattr(qa.writes, "MERGE_FACTOR", 3)
    corpus = _write_corpus(tmp_path / "corpus", documents)
    report = index_corpus(corpus, tmp_path / "index", embedder=HashEmbedder())
    assert report.merges >= 1 and report.segments < len(documents)
    index = load_index(tmp_path / "index")
    assert merge_plan(index) == ()
    assert snapshot(index) == snapshot(build_index(documents, HashEmbedder()))


def test_with_changes_tombstones_documents_a_new_segment_replaces(documents: list[Document]) -> None:
    index = build_index(documents[:3], HashEmbedder())
    newer = qa.build.build_segment([edited(documents[0], "Overview", "Summary")], HashEmbedder())
    changed = with_changes(index, [(newer, frozenset())])
    assert changed.manifest.segments[0].deleted == frozenset({documents[0].id})
    assert changed.documents[documents[0].id].text.startswith(documents[0].text.split("Overview")[0])
    assert "Summary" in changed.documents[documents[0].id].text


def test_uncommitted_segments_are_not_pruned_while_a_merge_runs(documents: list[Document], tmp_path: Path) -> None:
    from qa.storage import merge_lock, prune_index, write_segment

    with writer_lock(tmp_path):
        save_index(build_index(documents[:2], HashEmbedder()), tmp_path)
    merging = qa.build.build_segment(documents[2:3], HashEmbedder())
    with merge_lock(tmp_path) as ours:
        assert ours
        write_segment(merging, tmp_path)
        prune_index(tmp_path)
        assert merging.name in segments_on_disk(tmp_path)
    prune_index(tmp_path)  # no merge runs: a segment no commit names goes
    assert merging.name not in segments_on_disk(tmp_path)
    assert os.path.isdir(tmp_path / "segments" / segment_names(tmp_path)[0])


# --- the real model: XQuAD dev and the gold set ----------------------------------------------------

XQUAD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "xquad-en-dev" / "xquad-en-dev.json"
DECOYS = [
    parse_document(
        f"decoy-{i}.md", f"# Decoy {i}\n\nThe harbour of decoy town {i} handles grain and fusion fuel.\n".encode()
    )
    for i in range(3)
]


def _segmented(index: VectorIndex, embedder: Any, groups: int) -> VectorIndex:
    """The same documents in ``groups`` segments (vectors kept), with decoy documents written and deleted
    among them: two tombstones in the first segment, and a segment of one decoy that left the commit."""
    ids = sorted(index.documents)
    parts = [part for k in range(groups) if (part := ids[k::groups])]
    pool = with_changes(index, [(qa.build.build_segment(DECOYS, embedder), frozenset())])
    parts[0] = parts[0] + [d.id for d in DECOYS[:2]]
    segments = [qa.build.segment_from(pool, part) for part in [*parts, [DECOYS[2].id]]]
    split = with_changes(empty_index(index.manifest.model, index.manifest.dim, index.manifest.settings), [
        (segment, frozenset()) for segment in segments
    ])  # fmt: skip
    split = update_index(split, embedder, remove=[d.id for d in DECOYS])
    assert split.manifest.segments[0].deleted == frozenset({DECOYS[0].id, DECOYS[1].id})
    assert len(split.segments) == len(parts) and split.n_rows > split.n_passages == index.n_passages
    return split


def _records(engine: Engine, questions: Sequence[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in answer_record(engine.ask(q)).items() if k != "took_ms"} for q in questions]


@pytest.mark.slow
@pytest.mark.model
def test_segments_answer_as_one_merged_index_on_the_gold_set(model_engine: Engine, gold: list[dict[str, Any]]) -> None:
    """The gold corpus beside tombstoned decoys that share its words: same answers, citations and scores."""
    segmented = model_engine.with_index(_segmented(model_engine.index, model_engine.embedder, 1))
    questions = [item["question"] for item in gold]
    assert _records(segmented, questions) == _records(model_engine, questions)


@pytest.mark.slow
@pytest.mark.model
def test_segments_answer_as_one_merged_index_on_xquad(embedder: Any) -> None:
    """XQuAD dev in 20 segments (and tombstoned decoys) against one segment: every answer equal."""
    if not XQUAD.is_file():
        pytest.skip(f"{XQUAD} is absent (../shared/datasets): the XQuAD comparison needs it")
    from qa.config import Settings
    from qa.engine import engine_of
    from qa.gold import load_squad

    documents, items = load_squad(XQUAD)
    merged = engine_of(build_index(documents, embedder), embedder, Settings())
    segmented = merged.with_index(_segmented(merged.index, embedder, 20))
    questions = [item.question for item in items]
    assert len(questions) > 500  # every question load_squad reads (612)
    assert _records(segmented, questions) == _records(merged, questions)


def test_a_view_updated_from_the_previous_one_equals_one_derived_afresh(
    documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write's or a merge's view is the previous one changed by the difference; it must hold what a view
    derived over every segment holds (the server serves the updated one, a restart the fresh one). The
    work is the difference's: the vocabulary is accent-folded only for tokens that appear or vanish, none
    for a merge (the live passages are the same), where a derived view folds every token."""
    folded: list[str] = []
    real_fold = qa.index.strip_accents
    monkeypatch.setattr(qa.index, "strip_accents", lambda token: folded.append(token) or real_fold(token))
    index = one_by_one(documents[:3])
    index = update_index(index, HashEmbedder(), add=documents[3:5])  # a segment of two

    def merge_all(view: VectorIndex) -> VectorIndex | None:
        names = [s.name for s in view.segments]
        return replace_segments(view, names, merge_segments(view, names), view)

    steps: list[Any] = [
        lambda view: update_index(view, HashEmbedder(), remove=[documents[3].id]),  # a tombstone, the segment stays
        # a replace: the old one's segment leaves the commit
        lambda view: update_index(view, HashEmbedder(), add=[edited(documents[0], "Overview", "Summary")]),
        lambda view: update_index(view, HashEmbedder(), add=documents[5:7], remove=[documents[1].id]),
        merge_all,  # every row moves
        lambda view: update_index(view, HashEmbedder(), add=[documents[1]]),
    ]
    for step in steps:
        folded.clear()
        index = step(index)
        changed = len(folded)
        fresh = VectorIndex(index.manifest, index.segments)
        for name in ("documents", "home", "by_id", "document_frequency", "idf", "folded", "df_histogram"):
            assert getattr(index, name) == getattr(fresh, name), name
        assert list(index.passages) == list(fresh.passages) == [index.passages[r] for r in range(index.n_rows)]
        assert np.array_equal(index.live, fresh.live) and index.length == pytest.approx(fresh.length)
        assert (index.n_passages, index.idf_ceiling) == (fresh.n_passages, fresh.idf_ceiling)
        assert changed < len(fresh.document_frequency)  # not derived: fewer tokens folded than it holds
        if step is merge_all:
            assert changed == 0 and len(index.segments) == 1


def test_views_updated_write_after_write_equal_views_derived_afresh(
    documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many writes in a row, each view updated from the one before (never derived): with the layers folded
    into their base at every other change (LAYER_MIN 1), every view still equals one derived afresh, and
    a view already served keeps what it held."""
    monkeypatch.setattr("qa.index.LAYER_MIN", 1)
    index = build_index(documents[:4], HashEmbedder())
    served = [(index, dict(index.documents), dict(index.document_frequency), index.idf_ceiling)]
    steps: list[dict[str, list[Any]]] = [
        {"add": [documents[4]]},
        {"remove": [documents[1].id]},
        {"add": [edited(documents[0], "Overview", "Summary")]},  # a replace: a tombstone and a segment
        {"add": documents[5:7]},
        {"remove": [documents[2].id, documents[5].id]},
    ]
    for step in steps:
        before, index = index, update_index(index, HashEmbedder(), **step)
        assert index.token_cache is before.token_cache  # updated, not derived
        fresh = VectorIndex(index.manifest, index.segments)
        for name in ("documents", "home", "by_id", "document_frequency", "folded", "df_histogram"):
            assert getattr(index, name) == getattr(fresh, name), name
        assert (index.idf_ceiling, index.n_passages, list(index.passages)) == (
            fresh.idf_ceiling,
            fresh.n_passages,
            list(fresh.passages),
        )
        served.append((index, dict(index.documents), dict(index.document_frequency), index.idf_ceiling))
    for view, documents_then, frequency_then, ceiling_then in served:
        assert (dict(view.documents), dict(view.document_frequency), view.idf_ceiling) == (
            documents_then,
            frequency_then,
            ceiling_then,
        )


@pytest.mark.parametrize("layer_min", [1, 3, 256])
def test_a_layered_mapping_behaves_as_a_dict_and_never_changes_once_made(
    layer_min: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random sets and removals against a plain dict: same keys, values, order-free contents and length,
    whether the changes stay layered or are folded into a new base; every earlier mapping is unchanged."""
    monkeypatch.setattr("qa.index.LAYER_MIN", layer_min)
    rng = random.Random(layer_min)
    plain: dict[int, int] = {k: k for k in range(50)}
    layered = Layered(dict(plain))
    history = [(layered, dict(plain))]
    for step in range(300):
        updates = {rng.randrange(80): step for _ in range(rng.randrange(4))}
        removed = [rng.randrange(80) for _ in range(rng.randrange(4))]
        for key in removed:
            plain.pop(key, None)
        plain.update(updates)
        layered = layered.changed(updates, removed)
        assert dict(layered) == plain and len(layered) == len(plain) and len(list(layered)) == len(plain)
        assert all((k in layered) == (k in plain) and layered.get(k) == plain.get(k) for k in range(80))
        history.append((layered, dict(plain)))
    assert all(dict(m) == then and len(m) == len(then) for m, then in history)
