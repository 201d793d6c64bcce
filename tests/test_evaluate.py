"""SQuAD loading, evaluation on a fake engine worked out by hand, the HTML report and the `qa eval` command."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qa.cite import cite
from qa.cli import main
from qa.engine import Asked
from qa.errors import CorpusError
from qa.evaluate import covers_half, evaluate
from qa.gold import GoldItem, load_jsonl, load_squad
from qa.records import CITATION_FIELDS, citation_record
from qa.report import _failure_row, render_report
from qa.retrieve import Mode
from qa.types import Alternative, Answer, Citation, Document, Hit, Passage, Span

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
    with pytest.raises(
        CorpusError, match=r"gold.jsonl:2: the text is not valid JSON \(Expecting value at character 0\)"
    ):
        load_jsonl(path)


def test_jsonl_gold_rejects_an_answerable_question_without_answers(tmp_path: Path) -> None:
    """Such an item could never count as answered right: it only lowers every figure (four slipped into
    the Title 6 set as copies of its unanswerable questions)."""
    path = tmp_path / "gold.jsonl"
    path.write_text('{"question": "ok?", "answers": ["x"]}\n{"question": "Who won?", "answers": []}\n')
    with pytest.raises(CorpusError, match=r"gold.jsonl:2: an answerable question needs at least one answer"):
        load_jsonl(path)
    path.write_text('{"question": "Who won?", "answers": [], "unanswerable": true}\n')
    assert [item.unanswerable for item in load_jsonl(path)] == [True]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        # A string of answers would count each of its letters a right answer; "false" would read as true.
        ('{"question": "How many?", "answers": "zzzz9"}', "answers must be a list of non-empty strings"),
        ('{"question": "How many?", "answers": [null]}', "answers must be a list of non-empty strings"),
        ('{"question": "How many?", "answers": [""]}', "answers must be a list of non-empty strings"),  # matches all
        ('{"question": "How many?", "answers": [{"text": "a"}]}', "answers must be a list of non-empty strings"),
        ('{"question": "How many?", "answers": ["4"], "sections": "Scope"}', "sections must be a list"),
        ('{"question": "Who won?", "answers": [], "unanswerable": "false"}', "unanswerable must be true or false"),
        ('{"question": null, "answers": ["4"]}', "question must be a non-empty string"),
        ('{"answers": ["4"]}', "question must be a non-empty string"),
        ('{"id": ["g1"], "question": "How many?", "answers": ["4"]}', "id must be a string"),
        ('{"question": "Who won?", "answers": ["x"], "unanswerable": true}', "an unanswerable question has no answers"),
        ("[" * 100_000, "the text is nested too deeply to parse"),
        ('{"question": "q?", "answers": [' + "9" * 5000 + "]}", "the text holds a number too long to read"),
    ],
)
def test_jsonl_gold_refuses_a_field_of_the_wrong_type(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "g1", "question": "ok?", "answers": ["x"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"gold.jsonl:2: {message}"):
        load_jsonl(path)


def test_jsonl_gold_refuses_a_repeated_id_and_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text(
        '{"id": "g1", "question": "a?", "answers": ["x"]}\n{"id": "g1", "question": "b?", "answers": ["y"]}\n'
    )
    with pytest.raises(CorpusError, match=r"gold.jsonl:2: id 'g1' is used on line 1 too"):
        load_jsonl(path)
    path.write_bytes(b'{"question": "caf\xe9?", "answers": ["x"]}\n')
    with pytest.raises(CorpusError, match=r"gold.jsonl: not UTF-8"):
        load_jsonl(path)
    path.write_bytes(b'\xef\xbb\xbf{"question": "ok?", "answers": ["x"]}\n')  # a byte-order mark, as corpus files
    assert [item.question for item in load_jsonl(path)] == ["ok?"]


def _squad_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = json.loads(json.dumps(SQUAD_V2))
    change(data)
    return data


def _first_qa(data: dict[str, Any]) -> dict[str, Any]:
    qa: dict[str, Any] = data["data"][0]["paragraphs"][0]["qas"][0]
    return qa


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(data={"title": "x"}), "data must be a list"),
        (lambda d: d.update(data=None), "data must be a list"),
        (lambda d: d["data"][0].update(paragraphs=None), "paragraphs must be a list"),
        (lambda d: d["data"][0]["paragraphs"][0].pop("context"), "context must be a string"),
        (lambda d: d["data"][0]["paragraphs"][0].update(qas=None), "qas must be a list"),
        (lambda d: _first_qa(d).pop("question"), "question must be a string"),
        (lambda d: _first_qa(d).update(answers=None), "answers must be a list"),
        (lambda d: _first_qa(d)["answers"][0].pop("text"), "text must be a string"),
        (lambda d: _first_qa(d)["answers"][0].update(answer_start="abc"), "answer_start must be a whole number"),
        (lambda d: _first_qa(d)["answers"][0].update(answer_start=-3), "answer_start must be a whole number"),
        (lambda d: _first_qa(d).update(is_impossible="false"), "is_impossible must be true or false"),
    ],
)
def test_a_squad_file_of_another_shape_is_refused_with_what_is_wrong(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(CorpusError, match=rf"squad.json: not a SQuAD JSON file \(.*{message}"):
        load_squad(_write(tmp_path, _squad_with(change)))


def test_a_gold_set_with_a_question_the_service_refuses_is_refused_before_any_is_asked() -> None:
    """Not halfway through the set: the work done would be lost, no report written and no gate checked."""
    items = [GoldItem("g1", "How many fusion centers are there?", ("80",)), GoldItem("g2", "fusion " * 200, ("x",))]
    with pytest.raises(CorpusError, match=r"gold item 'g2': question has 1399 characters; the limit is 1000"):
        evaluate(FakeEngine(), items)


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


# --- evaluate() on a fake engine with known rankings -------------------------------------------------

ALDA_TEXT = (
    "# Rivers\n\nThe Alda is 40 km long. It rises in the hills.\n\n"
    "# Fish\n\nTrout live in the cold Alda. Eels do too.\n\nTrout need cold water.\n\n"
    "# Bridges\n\nThe old bridge is 40 km from the sea.\n\n"
    "# Towns\n\nNobody lives in Alda town.\n\n"
    "# Weather\n\nRain falls in spring.\n\nSnow falls in winter.\n"
)
ALDA = Document("alda.md", "The Alda", ALDA_TEXT)


def _passage(section: str, text: str, *sentences: str) -> Passage:
    """The passage of ``text`` in ALDA_TEXT, its units the given sentences (else the whole text)."""
    start = ALDA_TEXT.index(text)
    units = tuple(Span(ALDA_TEXT.index(s, start), ALDA_TEXT.index(s, start) + len(s)) for s in sentences or (text,))
    return Passage(f"p-{start}", ALDA.id, (section,), start, start + len(text), text, units=units)


LENGTH = _passage("Rivers", "The Alda is 40 km long. It rises in the hills.", "The Alda is 40 km long.",
                  "It rises in the hills.")  # fmt: skip
TROUT = _passage("Fish", "Trout live in the cold Alda. Eels do too.", "Trout live in the cold Alda.", "Eels do too.")
TROUT_WATER = _passage("Fish", "Trout need cold water.")
BRIDGE = _passage("Bridges", "The old bridge is 40 km from the sea.")
TOWN = _passage("Towns", "Nobody lives in Alda town.")
RAIN = _passage("Weather", "Rain falls in spring.")
SNOW = _passage("Weather", "Snow falls in winter.")
PASSAGES = [LENGTH, TROUT, TROUT_WATER, BRIDGE, TOWN, RAIN, SNOW]


def _cite(passage: Passage, unit: int | None = None) -> Citation:
    """A citation of one unit of the passage, or of the whole passage."""
    span = passage.units[unit] if unit is not None else Span(passage.start, passage.end)
    return cite(ALDA, passage, span, 0.5)


@dataclass(frozen=True)
class Scripted:
    """What the fake engine does for one question: its ranking, its citations, whether it answers."""

    ranking: list[Passage]
    citations: list[Citation]
    answers: bool


GOLD = [
    GoldItem("g1", "How long is the Alda?", ("40 km", "the Alda is 40 km long"), sections=("Rivers",)),
    GoldItem("g2", "What lives in the Alda?", ("Trout",), sections=("Wildlife",)),
    GoldItem("g3", "Which bridge is old?", ("the old bridge",)),
    GoldItem("g4", "Who owns the Alda?", (), unanswerable=True),
]
SCRIPT = {
    # Answers with the first unit of LENGTH; BRIDGE (also holds "40 km") is ranked first.
    "How long is the Alda?": Scripted([BRIDGE, TOWN, LENGTH], [_cite(LENGTH, 0), _cite(BRIDGE)], answers=True),
    # Answers with the whole of TROUT (two units); TROUT_WATER, also relevant, is never retrieved; the
    # second citation's quote is not the text at its offsets.
    "What lives in the Alda?": Scripted(
        [TOWN, TROUT, LENGTH],
        [_cite(TROUT), replace(_cite(TOWN), quote="Nobody lives in Alda town!")],
        answers=True,
    ),
    # Answerable, but refused (a false refusal); its citation, kept for reference, holds the answer.
    "Which bridge is old?": Scripted(
        [LENGTH, TROUT, TROUT_WATER, TOWN, RAIN, BRIDGE, SNOW], [_cite(BRIDGE)], answers=False
    ),
    # Unanswerable, and refused.
    "Who owns the Alda?": Scripted([TOWN, LENGTH], [_cite(LENGTH, 0)], answers=False),
}


class FakeCorpus:
    documents = {ALDA.id: ALDA}

    def live_passages(self) -> Iterator[Passage]:
        return iter(PASSAGES)


class FakeEmbedder:
    def __init__(self) -> None:
        self.cleared = 0

    def clear_cache(self) -> None:
        self.cleared += 1


class FakeEngine:
    """An ``Answerer`` that replays SCRIPT, and records each question it is asked."""

    def __init__(self) -> None:
        self.index = FakeCorpus()
        self.embedder = FakeEmbedder()
        self.asked: list[tuple[str, int, str]] = []

    def ask_detailed(
        self, question: str, *, top_k: int = 3, mode: Mode = "hybrid", answers: int = 1, distinct: str = "quotes"
    ) -> Asked:
        self.asked.append((question, top_k, mode))
        scripted = SCRIPT[question]
        citations = tuple(scripted.citations[:top_k])
        quote = citations[0].quote if scripted.answers else None
        given = (Alternative(citations[0].quote, 0.5, citations[:1]),) if scripted.answers else ()
        answer = Answer(question, scripted.answers, quote, 0.5, citations, answers=given)
        hits = [Hit(p, 1.0 - rank / 10, rank) for rank, p in enumerate(scripted.ranking)]
        return Asked(answer, hits, evidence=0.9 if scripted.answers else 0.1, terms={"similarity": 0.5})

    def passage(self, passage_id: str) -> Passage:
        return next(p for p in PASSAGES if p.id == passage_id)


def test_evaluate_reports_each_figure_as_computed_by_hand() -> None:
    """Every aggregate of a fake engine with known rankings, answers and citations, worked out by hand."""
    engine = FakeEngine()
    result = evaluate(engine, GOLD, mode="dense", k=3)
    # One warm-up question, then each question once, each after the query cache is cleared.
    assert [q for q, _, _ in engine.asked] == [GOLD[0].question] + [item.question for item in GOLD]
    assert {(k, mode) for _, k, mode in engine.asked[1:]} == {(3, "dense")}
    assert engine.embedder.cleared == 4
    aggregate = result.aggregate
    latencies = [aggregate["latency_p50_ms"], aggregate["latency_p95_ms"], aggregate["latency_p99_ms"]]
    assert 0 <= latencies[0] <= latencies[1] <= latencies[2]  # timings vary: only their order is known
    # Relevant passages (those holding a gold answer): g1 {LENGTH, BRIDGE}, g2 {TROUT, TROUT_WATER},
    # g3 {BRIDGE}. First relevant 0-based rank: g1 0, g2 1, g3 5. Answerable: g1, g2, g3.
    ideal_of_two = 1 + 1 / math.log2(3)  # DCG of two relevant passages at ranks 0 and 1
    by_hand = {
        "n": 4,
        "n_answerable": 3,
        # g1 "The Alda is 40 km long." and g2 "Trout live in ..." hold a gold answer; g3 refused.
        "containment": 2 / 3,
        # No item gives offsets: covering a located gold span is holding a gold answer.
        "span_coverage": 2 / 3,
        # g3's citation holds "the old bridge" although it was refused.
        "containment_top3": 3 / 3,
        # One answer each (the fake gives no more): the same as containment.
        "containment_answers3": 2 / 3,
        # g1 equals its second gold after normalisation; g2 does not; g3 gave no answer.
        "exact_match": 1 / 3,
        # g1 1.0; g2 "trout live in cold alda eels do too" (8 tokens) against "trout": P = 1/8, R = 1,
        # F1 = 2 * (1/8) / (9/8) = 2/9; g3 0. Mean (1 + 2/9 + 0) / 3 = 11/27.
        "f1": 11 / 27,
        # Answered: g1 (23 characters, 1 unit), g2 (41 characters, 2 units): the medians of two values.
        "median_answer_chars": (23 + 41) / 2,
        "median_answer_units": (1 + 2) / 2,
        # g1 cites "Rivers" (listed), g2 cites "Fish" (gold lists "Wildlife"); g3 lists no section.
        "section_accuracy": 1 / 2,
        # Six citations over all four questions; g2's second quote differs from the text at its offsets.
        "quote_exactness": 5 / 6,
        "recall@1": 1 / 3,  # g1 only
        "recall@5": 2 / 3,  # g1, g2
        "recall@10": 3 / 3,
        "mrr@10": (1 / 1 + 1 / 2 + 1 / 6) / 3,
        # DCG sums 1 / log2(rank + 2) over the relevant ranks; the ideal puts every relevant passage of
        # the index first. g1: relevant at 0 and 2 of two: (1 + 1/log2(4)) / ideal_of_two = 0.9197.
        # g2: relevant at 1, TROUT_WATER never retrieved: (1/log2(3)) / ideal_of_two = 0.3869.
        # g3: relevant at 5 of one: 1/log2(7) = 0.3562.
        "ndcg@10": ((1 + 1 / 2) / ideal_of_two + (1 / math.log2(3)) / ideal_of_two + 1 / math.log2(7)) / 3,
        # Citations of answered, answerable questions: g1 both hold "40 km"; g2 TROUT yes, TOWN no.
        "citation_precision": 3 / 4,
        # g1, g2 and g3 each have a citation holding a gold answer.
        "citation_recall": 3 / 3,
        # Abstained on g3 (answerable: a false positive) and g4 (unanswerable: a true positive); no
        # unanswerable question answered. Precision 1/2, recall 1/1, F1 = 2TP / (2TP + FP + FN) = 2/3.
        "abstention_precision": 1 / 2,
        "abstention_recall": 1 / 1,
        "abstention_f1": 2 / 3,
        "false_refusal_rate": 1 / 3,  # g3 of the three answerable
        # Confidence against "the first citation holds a gold answer": g1, g2 at 0.9 both right (gap 0.1);
        # g3 (right, refused) and g4 (unanswerable) at 0.1, half right (gap 0.4): (2 * 0.1 + 2 * 0.4) / 4.
        "ece": 0.25,
    }
    assert {key: value for key, value in aggregate.items() if not key.startswith("latency")} == pytest.approx(by_hand)
    assert set(aggregate) == {*by_hand, "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"}
    assert round(aggregate["ndcg@10"], 4) == 0.5543  # (0.9197 + 0.3869 + 0.3562) / 3


def test_item_citations_are_citation_records_plus_the_evaluation_keys() -> None:
    result = evaluate(FakeEngine(), GOLD, k=3)
    g2 = result.items[1]
    assert [list(c) for c in g2.citations] == [[*CITATION_FIELDS, "exact", "has_answer"]] * 2
    trout, town = SCRIPT["What lives in the Alda?"].citations
    assert g2.citations == [
        citation_record(trout) | {"exact": True, "has_answer": True},
        citation_record(town) | {"exact": False, "has_answer": False},
    ]
    assert (g2.retrieved, g2.relevant) == ((TOWN.id, TROUT.id, LENGTH.id), frozenset({TROUT.id, TROUT_WATER.id}))


def test_the_report_reads_the_item_citations() -> None:
    pytest.importorskip("matplotlib")
    page = render_report("fake", [evaluate(FakeEngine(), GOLD, k=3)])
    assert "Citations whose quote differs from the text at its offsets: 1" in page
    help_cell = "<td class=help>mean nDCG of the gold passages in the first ten (binary relevance)</td>"
    assert f"<tr><th>ndcg@10</th><td>0.554</td>{help_cell}</tr>" in page  # each figure says what it measures
    assert "<details><summary><h2>Failures: hybrid (" in page  # failures come after the summary, folded
    assert page.index("<h2>Summary</h2>") < page.index("<details>")
    assert "Which bridge is old?" in page  # refused though answerable: a failure
    # Each failure shows the cross-encoder's logit for its best candidate; the fake engine rereads none (as
    # with QA_READER_CANDIDATES=0, or a first answer surer than QA_READER_BELOW).
    assert "<th>cross-encoder logit</th>" in page and "<td>not reread</td></tr>" in page


def test_a_failure_row_shows_the_cross_encoders_logit() -> None:
    """The report's failure row gives the best candidate's cross-encoder logit, signed, beside its terms."""
    item = dataclasses.replace(evaluate(FakeEngine(), GOLD, k=3).items[2], reader=-2.5)
    assert _failure_row(item).endswith("<td>-2.50</td></tr>")


# --- gold spans covered by half -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_id", "start", "end", "contained", "covered"),
    [
        ("d", 10, 20, 0, 1),  # the whole span
        ("d", 0, 15, 0, 1),  # its first half, exactly: 5 of 10 characters
        ("d", 0, 14, 1, 0),  # 4 of 10, whatever the text holds
        ("d", 16, 40, 0, 0),  # its last 4
        ("e", 10, 20, 1, 0),  # the same offsets in another document
    ],
)
def test_a_quote_covers_half_a_gold_span_by_its_offsets(
    doc_id: str, start: int, end: int, contained: int, covered: int
) -> None:
    """Where the gold gives offsets, a quote covers it when it overlaps at least half of one gold span's
    characters in the same document: a span that crosses a sentence's end counts for the sentence holding
    most of it."""
    item = GoldItem(id="q", question="?", answers=("x",), spans=(("d", 10, 20), ("d", 100, 102)))
    assert covers_half(item, doc_id, start, end, bool(contained)) == bool(covered)


def test_without_offsets_covering_half_is_holding_the_answer() -> None:
    """A gold set with answer texts only (or an unanswerable question) has no span to cover: the label is
    containment's."""
    assert covers_half(GoldItem(id="q", question="?", answers=("x",)), "d", 0, 5, True)
    assert not covers_half(GoldItem(id="q", question="?", answers=("x",)), "d", 0, 5, False)
    unanswerable = GoldItem(id="q", question="?", answers=(), unanswerable=True, spans=(("d", 0, 5),))
    assert not covers_half(unanswerable, "d", 0, 5, False)


def test_span_coverage_counts_the_answer_where_the_gold_locates_it() -> None:
    """The answer to "How long is the Alda?" quotes "The Alda is 40 km long.": it holds the words "40 km"
    whichever "40 km" the gold marks, but covers the gold span only when the gold marks that sentence's,
    not the bridge's."""
    length_at = ALDA_TEXT.index("40 km")
    bridge_at = ALDA_TEXT.index("40 km", ALDA_TEXT.index("The old bridge"))
    for at, covered in ((length_at, 1.0), (bridge_at, 0.0)):
        item = GoldItem("g1", "How long is the Alda?", ("40 km",), spans=((ALDA.id, at, at + 5),))
        result = evaluate(FakeEngine(), [item], k=3)
        assert result.items[-1].contained and result.items[-1].span_covered == bool(covered)
        assert (result.aggregate["containment"], result.aggregate["span_coverage"]) == (1.0, covered)
