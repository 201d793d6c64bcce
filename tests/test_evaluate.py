"""SQuAD loading, aggregation, the HTML report and the `qa eval` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.cli import main
from qa.errors import CorpusError
from qa.gold import GoldItem, load_jsonl, load_squad
from qa.types import Passage

ROOT = Path(__file__).resolve().parents[1]
XQUAD = ROOT.parent / "shared" / "datasets" / "xquad-en-dev" / "xquad-en-dev.json"

SQUAD_V2 = {
    "version": "v2.0",
    "data": [
        {
            "title": "Tiny_Article",
            "paragraphs": [
                {
                    "context": "The river is 40 km long. It rises in the hills.",
                    "qas": [
                        {"id": "q1", "question": "How long is the river?",
                         "answers": [{"text": "40 km", "answer_start": 13}]},
                        {"id": "q2", "question": "Who owns the river?", "answers": [], "is_impossible": True},
                    ],
                },
                {
                    "context": "Fish live there.",
                    "qas": [{"id": "q3", "question": "What lives there?",
                             "answers": [{"text": "Fish", "answer_start": 0}]}],
                },
            ],
        }
    ],
}  # fmt: skip


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_squad_v2_builds_one_document_per_article_with_mapped_answers(tmp_path: Path) -> None:
    documents, items = load_squad(_write(tmp_path, SQUAD_V2))
    assert [d.id for d in documents] == ["001-Tiny-Article.md"]
    doc = documents[0]
    assert doc.title == "Tiny Article"
    assert doc.text == "# Tiny Article\n\nThe river is 40 km long. It rises in the hills.\n\nFish live there.\n"
    assert [(i.id, i.unanswerable) for i in items] == [("q1", False), ("q2", True), ("q3", False)]
    assert items[0].spans == (("001-Tiny-Article.md", 29, 34),)
    assert items[0].paragraph == ("001-Tiny-Article.md", 16, 63)
    assert items[1].spans == () and items[1].paragraph is None
    assert doc.text[65:69] == "Fish" and items[2].spans == (("001-Tiny-Article.md", 65, 69),)


def test_squad_answer_at_a_wrong_offset_is_refused(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(SQUAD_V2))
    broken["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    with pytest.raises(CorpusError, match="not at its offset"):
        load_squad(_write(tmp_path, broken))


def test_xquad_answers_lie_inside_their_paragraphs() -> None:
    if not XQUAD.is_file():
        pytest.skip(f"XQuAD dev file not found at {XQUAD} (shared/datasets is absent)")
    documents, items = load_squad(XQUAD)
    texts = {d.id: d.text for d in documents}
    assert (len(documents), len(items)) == (24, 612)
    for item in items:
        assert item.paragraph is not None
        doc_id, p_start, p_end = item.paragraph
        for span_doc, start, end in item.spans:
            assert span_doc == doc_id and p_start <= start < end <= p_end
            assert texts[doc_id][start:end] in item.answers


def test_jsonl_gold_rejects_a_line_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"question": "ok?", "answers": ["x"]}\nnot json\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"gold.jsonl:2: not JSON"):
        load_jsonl(path)


def test_relevance_uses_the_paragraph_for_squad_and_the_answer_text_otherwise() -> None:
    from qa.evaluate import is_relevant

    passage = Passage("p", "d.md", (), 20, 40, "The river is 40 km long.")
    squad_item = GoldItem("q", "?", ("40 km",), paragraph=("d.md", 16, 63))
    assert is_relevant(squad_item, passage)
    assert not is_relevant(GoldItem("q", "?", ("40 km",), paragraph=("d.md", 41, 63)), passage)
    assert is_relevant(GoldItem("q", "?", ("40 KM",)), passage)
    assert not is_relevant(GoldItem("q", "?", ("50 km",)), passage)


@pytest.mark.model
def test_qa_eval_json_report_and_gates(tmp_path: Path) -> None:
    """One run: all three modes side by side, the JSON keys, a self-contained report, gates met."""
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        main,
        ["eval", str(ROOT / "tests" / "data" / "gold.jsonl"), "--corpus", str(ROOT / "corpus"), "--mode", "all",
         "--json", "--report", str(report), "--min-containment", "0.95", "--min-quote-exactness", "1.0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert list(payload["modes"]) == ["bm25", "dense", "hybrid"]
    hybrid = payload["modes"]["hybrid"]
    assert hybrid["n"] == 60 and hybrid["n_answerable"] == 48
    assert hybrid["quote_exactness"] == 1.0
    for key in ("containment", "containment_top3", "recall@1", "recall@5", "mrr@10", "ndcg@10",
                "citation_precision", "abstention_f1", "false_refusal_rate", "latency_p99_ms"):  # fmt: skip
        assert key in hybrid
    page = report.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "data:image/png;base64," in page
    assert "Failures: hybrid" in page
    assert "What penalties apply to officials who violate" in page  # the on-topic question still answered


@pytest.mark.model
def test_qa_eval_exits_non_zero_when_a_gate_is_missed() -> None:
    result = CliRunner().invoke(
        main,
        ["eval", str(ROOT / "tests" / "data" / "gold.jsonl"), "--corpus", str(ROOT / "corpus"),
         "--min-containment", "1.01"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "gate not met: containment" in result.output
