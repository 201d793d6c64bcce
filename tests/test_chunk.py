"""Tests for ``qa.chunk``: passages of the default corpus, and the offset invariant on any text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa.chunk import chunk_document, linearize_row, passage_id, retrieval_text, unit_texts
from qa.errors import CorpusError
from qa.ingest import parse_document
from qa.sentences import HARD_MAX_CHARS
from qa.structure import parse_blocks
from qa.types import Document, Passage

PROGRAMS = "Notable Data Sharing Programs and Agreements"
METRICS = ("Relevant Data and Metrics",)
NYC = ("Potential Impact on New York City",)
LEGAL = ("Legal and Policy Considerations",)
HEADER = "Metric | Value | Notes |"

# Every passage of the default corpus, in order: (section path, kind, first words).
CORPUS_PASSAGES = [
    (("Overview",), "prose", "Since 9/11, reforms have"),
    (("Overview",), "prose", "Information sources include Department"),
    (("Overview",), "prose", "The expansion of these"),
    ((PROGRAMS, "Secure Communities"), "prose", "Operational nationwide, Secure Communities"),
    ((PROGRAMS, "287(g) Agreements"), "prose", "Authorized under the Illegal"),
    ((PROGRAMS, "Fusion Centers"), "prose", "About 80 fusion centers"),
    ((PROGRAMS, "Data from State and Local Agencies"), "prose", "Local databases such as"),
    ((PROGRAMS, "Private Sector Data Purchases"), "prose", "ICE and related agencies"),
    (METRICS, "table_row", "287(g) MOAs Signed (2025)"),
    (METRICS, "table_row", "287(g) Trained Participants (Jan-Mar"),
    (METRICS, "table_row", "Number of Fusion Centers"),
    (METRICS, "table_row", "State Driver\u2019s License Issuance"),
    (METRICS, "table_row", "ICE Surveillance Budget (2008-2021)"),
    (METRICS, "table_row", "License Plate Reader Searches"),
    (NYC, "list", "Operational coordination between NYC"),
    (LEGAL, "list", "Data sharing occurs under"),
]

TABLE_ROWS = [
    "287(g) MOAs Signed (2025) | 832 | Agreements across 40 states, several hundred agencies |",
    "287(g) Trained Participants (Jan-Mar 2025) | 625 | Across 141 agencies covering task force and jail enforcement "
    "models |",
    "Number of Fusion Centers | ~80 | Operating nationwide including New York State |",
    "State Driver\u2019s License Issuance Regardless of Immigration Status | 19 states + DC + Puerto Rico | Varied "
    "information sharing agreements with ICE |",
    "ICE Surveillance Budget (2008-2021) | $2.8 billion | Data collection, sharing, and surveillance expenditures |",
    "License Plate Reader Searches by Police for ICE (since June 2024) | 4,000+ | Searches on private LPR systems "
    "assisting federal immigration enforcement |",
]

_BULLET = re.compile(r"^(?:[-*+\u2022]|\d+[.)])\s+")


def _unit_strings(doc: Document, passage: Passage) -> list[str]:
    return [doc.text[u.start : u.end] for u in passage.units]


def assert_offsets(doc: Document, passages: list[Passage]) -> None:
    """The offset invariant: passages and their units are exact, trimmed, ordered, disjoint slices."""
    previous_end = 0
    for p in passages:
        assert doc.text[p.start : p.end] == p.text
        assert p.text and p.text == p.text.strip()
        assert p.start >= previous_end, "passages overlap or are out of order"
        assert p.units, "a passage has at least one answer unit"
        assert (p.units[0].start, p.units[-1].end) == (p.start, p.end)
        unit_end = p.start
        for u in p.units:
            assert p.start <= unit_end <= u.start < u.end <= p.end
            unit = doc.text[u.start : u.end]
            assert unit == unit.strip()
            unit_end = u.end
        previous_end = p.end


@pytest.fixture(scope="module")
def passages(corpus_document: Document) -> list[Passage]:
    return chunk_document(corpus_document)


# --- the default corpus -------------------------------------------------------------------


def test_corpus_passage_count(passages: list[Passage]) -> None:
    assert len(passages) == len(CORPUS_PASSAGES) == 16


@pytest.mark.parametrize(("i", "path", "kind", "first_words"), [(i, *row) for i, row in enumerate(CORPUS_PASSAGES)])
def test_corpus_passage_sections(
    passages: list[Passage], i: int, path: tuple[str, ...], kind: str, first_words: str
) -> None:
    p = passages[i]
    assert (p.section_path, p.kind) == (path, kind)
    # The bullet is compared apart: test_list_units_leave_the_bullet_out pins it.
    assert _BULLET.sub("", p.text).startswith(first_words)


def test_secure_communities_numbers_sit_under_their_nested_section(passages: list[Passage]) -> None:
    (p,) = [p for p in passages if "Over 3,000 agencies participate" in p.text]
    assert p.section_path == (PROGRAMS, "Secure Communities")


def test_each_table_row_is_its_own_passage(corpus_document: Document, passages: list[Passage]) -> None:
    rows = [p for p in passages if p.kind == "table_row"]
    assert [p.text for p in rows] == TABLE_ROWS
    for p in rows:
        assert p.section_path == METRICS
        assert p.context == HEADER
        assert [(u.start, u.end) for u in p.units] == [(p.start, p.end)]
        assert p.start == corpus_document.text.index(p.text)


def test_table_row_is_retrieved_by_its_column_names(passages: list[Passage]) -> None:
    row = next(p for p in passages if p.text.startswith("Number of Fusion Centers"))
    assert unit_texts(row) == [
        "Metric: Number of Fusion Centers; Value: ~80; Notes: Operating nationwide including New York State"
    ]
    assert retrieval_text(row) == "Relevant Data and Metrics\n" + unit_texts(row)[0]


def test_list_items_keep_their_heading(corpus_document: Document, passages: list[Passage]) -> None:
    nyc, legal = (p for p in passages if p.kind == "list")
    assert (nyc.section_path, len(nyc.units)) == (NYC, 4)
    assert (legal.section_path, len(legal.units)) == (LEGAL, 4)
    assert "e.g., California\u2019s SB 54 limits cooperation." in _unit_strings(corpus_document, legal)[1]


def test_list_units_leave_the_bullet_out(corpus_document: Document, passages: list[Passage]) -> None:
    """Regression: ``_BULLET`` began with ``^``, which with ``match(text, pos)`` anchors at the start of
    the whole string, not at ``pos``; so list units and list passages started with "- "."""
    nyc = next(p for p in passages if p.section_path == NYC)
    assert _unit_strings(corpus_document, nyc)[0].startswith("Operational coordination between NYC")
    assert nyc.text.startswith("Operational coordination")


def test_prose_units_are_whole_sentences(corpus_document: Document, passages: list[Passage]) -> None:
    secure = next(p for p in passages if p.section_path[-1:] == ("Secure Communities",))
    assert _unit_strings(corpus_document, secure) == [
        "Operational nationwide, Secure Communities enables local law enforcement agencies to screen individuals "
        "booked into custody against federal immigration databases.",
        "Over 3,000 agencies participate, sharing biometric data to identify removable noncitizens.",
    ]


def test_offset_invariant_on_the_corpus(corpus_document: Document, passages: list[Passage]) -> None:
    assert_offsets(corpus_document, passages)


def test_headings_are_in_no_passage(corpus_document: Document, passages: list[Passage]) -> None:
    headings = [b for b in corpus_document.blocks if b.kind == "heading"]
    for p in passages:
        assert all(h.end <= p.start or h.start >= p.end for h in headings)


def test_curly_apostrophes_count_as_one_character(
    corpus_dir: Path, corpus_document: Document, passages: list[Passage]
) -> None:
    raw = (corpus_dir / "immigration-data-sharing.txt").read_bytes()
    assert corpus_document.text == raw.decode("utf-8")
    assert corpus_document.text.count("\u2019") == 3
    assert len(raw) - len(corpus_document.text) == 6  # each U+2019 is 3 bytes and 1 code point
    assert passages[-1].end == len(corpus_document.text) == 4342
    row = passages[11]
    assert row.text == TABLE_ROWS[3]
    # The row's first U+2019 is its first in the file: code points and bytes agree at its start, not at its end.
    assert row.start == raw.index(b"State Driver") == 2689
    assert row.end == raw.index(b"\nICE Surveillance") - 2


def test_passage_ids_are_stable_and_content_addressed(corpus_document: Document, passages: list[Passage]) -> None:
    again = chunk_document(corpus_document)
    assert [p.id for p in again] == [p.id for p in passages]
    assert len({p.id for p in passages}) == len(passages)
    first = passages[0]
    assert first.id == passage_id(first.doc_id, first.start, first.end, first.text)
    assert len(first.id) == 20
    assert passage_id("a.txt", 0, 3, "abc") != passage_id("b.txt", 0, 3, "abc")
    assert passage_id("a.txt", 0, 3, "abc") != passage_id("a.txt", 0, 3, "abd")


def test_a_same_length_edit_changes_only_its_own_passage_id(corpus_document: Document) -> None:
    before = chunk_document(corpus_document)
    text = corpus_document.text.replace("Over 3,000 agencies", "Over 3,100 agencies")
    edited = chunk_document(parse_document(corpus_document.id, text.encode()))
    changed = [i for i, (a, b) in enumerate(zip(before, edited, strict=True)) if a.id != b.id]
    assert changed == [3]


# --- packing ----------------------------------------------------------------------------------


def test_passages_are_bounded_and_never_split_a_sentence() -> None:
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(40)]
    text = "Title\nSection\n" + " ".join(sentences) + "\n"
    doc = parse_document("long.txt", text.encode())
    chunks = chunk_document(doc, max_chars=200)
    assert len(chunks) > 1
    assert all(len(p.text) <= 200 for p in chunks)
    assert [doc.text[u.start : u.end] for p in chunks for u in p.units] == sentences
    assert_offsets(doc, chunks)


def test_one_over_long_sentence_is_a_passage_of_its_own() -> None:
    long_sentence = "This sentence " + "goes on and on " * 20 + "until it stops."
    text = "Title\nSection\nShort one. " + long_sentence + " Short two.\n"
    doc = parse_document("x.txt", text.encode())
    chunks = chunk_document(doc, max_chars=100)
    assert [p.text for p in chunks] == ["Short one.", long_sentence, "Short two."]


def test_unbroken_line_is_cut_at_the_hard_cap() -> None:
    line = "Y" + "y" * 9_999  # a capital: a line starting in lower case would continue the heading above
    text = "Title\nSection\n" + line + "\n"
    doc = parse_document("blob.txt", text.encode())
    chunks = chunk_document(doc)
    assert len(chunks) == 7
    assert all(len(u_text) <= HARD_MAX_CHARS for p in chunks for u_text in _unit_strings(doc, p))
    assert "".join(p.text for p in chunks) == line
    assert_offsets(doc, chunks)


MISSION = """# Title 6
## (b) Mission

The primary mission of the Department is to

(A) prevent terrorist attacks;

(B) reduce vulnerability;

Other duties are set out elsewhere.

## (c) Scope

The scope covers the following:

- ports
- borders
"""


def _passage_texts(text: str, max_chars: int = 800) -> list[tuple[tuple[str, ...], str]]:
    doc = parse_document("mission.md", text.encode())
    return [(p.section_path, p.text) for p in chunk_document(doc, max_chars=max_chars)]


def test_a_paragraph_that_leads_in_keeps_its_list() -> None:
    mission = ("(b) Mission",)  # the first heading is the title
    assert _passage_texts(MISSION) == [
        (
            mission,
            "The primary mission of the Department is to\n\n(A) prevent terrorist attacks;\n\n"
            "(B) reduce vulnerability;",
        ),  # fmt: skip
        (mission, "Other duties are set out elsewhere."),  # not a list item: the list has ended
        (("(c) Scope",), "The scope covers the following:\n\n- ports\n- borders"),
    ]


def test_a_lead_in_takes_one_plain_paragraph_and_stays_in_bounds_and_in_its_section() -> None:
    wrapped = "# A\n\nThe rule applies to\n\nevery agency in the state.\n\nIt took effect in 2019.\n"
    assert [t for _, t in _passage_texts(wrapped)] == ["The rule applies to\n\nevery agency in the state.",
                                                        "It took effect in 2019."]  # fmt: skip
    assert [t for _, t in _passage_texts(MISSION, max_chars=80)][:3] == [
        "The primary mission of the Department is to\n\n(A) prevent terrorist attacks;",
        "(B) reduce vulnerability;",
        "Other duties are set out elsewhere.",
    ]
    heading_between = "# A\n\nThe rule applies to\n\n# B\n\n(A) every agency;\n"
    assert [t for _, t in _passage_texts(heading_between)] == ["The rule applies to", "(A) every agency;"]


def test_a_caption_keeps_the_paragraph_it_heads_and_ends_a_list() -> None:
    text = (
        "# Law\n\n## (a) Office\n\n(1) In general\n\nThere is an Office.\n\n(2) Duties\n\nThe Director shall\n\n"
        "(A) lead programs;\n\n(B) develop and implement\n\n(i) plans; and\n\n(3) Head of Office\n\nIt has a head.\n"
    )
    assert [t for _, t in _passage_texts(text)] == [
        "(1) In general\n\nThere is an Office.",
        "(2) Duties\n\nThe Director shall\n\n(A) lead programs;\n\n(B) develop and implement\n\n(i) plans; and",
        "(3) Head of Office\n\nIt has a head.",  # a caption starts afresh: "(3) Head of Office" ends the list
    ]


def test_max_chars_must_be_positive(corpus_document: Document) -> None:
    with pytest.raises(ValueError, match=r"max_chars \(0\) must be at least 1"):
        chunk_document(corpus_document, max_chars=0)


def test_linearize_row_falls_back_to_the_row_when_cells_do_not_match() -> None:
    assert linearize_row("A | B |", "1 | 2 | 3 |") == "1 | 2 | 3 |"
    assert linearize_row("", "1 | 2 |") == "1 | 2 |"
    assert linearize_row("Metric | Value |", "Fusion Centers | ~80 |") == "Metric: Fusion Centers; Value: ~80"


def test_hard_wrapped_sentence_stays_whole() -> None:
    """Regression: in .txt (and PDF text, which pypdf returns line by line) every line was its own
    paragraph block, so a sentence wrapped over two lines became two passages and two units."""
    first_line = "The agency shares its records with the police, the courts and the local schools and"
    text = f"Title\nScope\n{first_line}\nclinics under written agreements. It reviews them every year.\n"
    doc = parse_document("wrapped.txt", text.encode())
    units = [doc.text[u.start : u.end] for p in chunk_document(doc) for u in p.units]
    assert units == [
        f"{first_line}\nclinics under written agreements.",
        "It reviews them every year.",
    ]


# --- the offset invariant on random text --------------------------------------------------------

_PIECES = st.sampled_from(
    ["\n", "\r\n", "\r", "\n\n", "\t", " ", "  ", "- ", "* ", "\u2022 ", "1. ", "2) ", "| ", " | ", "|", "---|---",
     "# ", "## ", "#", "###### ", ". ", "? ", "! ", "Dr. ", "U.S. ", "e.g., ", "2.8", "\u2019", "\u201c", "\u201d",
     "\U0001F600", "\u00e9", "\u200b", "\u2028", "\x0b", "\x0c", "\x85", "Title", "Overview", "word", "A", "1.1 ", "Zz"]
)  # fmt: skip
RANDOM_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=60).map("".join)
HYPOTHESIS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(
    text=st.one_of(RANDOM_TEXT, st.text(max_size=400)),
    suffix=st.sampled_from([".txt", ".md"]),
    max_chars=st.integers(1, 300),
)
@example(text="# \u2028# ", suffix=".txt", max_chars=1)  # "#" marks around a Unicode space: start > end once
def test_offset_invariant_on_random_text(text: str, suffix: str, max_chars: int) -> None:
    blocks = parse_blocks(text, markdown=suffix == ".md")
    previous_end = 0
    for b in blocks:
        assert previous_end <= b.start < b.end <= len(text)
        if b.kind != "heading":  # a Markdown heading's span may start with odd whitespace: see test_structure
            assert text[b.start : b.end] == text[b.start : b.end].strip()
        previous_end = b.end
    doc = Document("random" + suffix, "t", text, blocks, suffix[1:])
    assert_offsets(doc, chunk_document(doc, max_chars=max_chars))


_HTML_TAGS = st.sampled_from(
    ["p", "h1", "h2", "h6", "li", "ul", "td", "th", "tr", "table", "div", "br", "pre", "script", "b"]
)


@HYPOTHESIS
@given(
    segments=st.lists(st.tuples(_HTML_TAGS, st.one_of(RANDOM_TEXT, st.text(max_size=40)), st.booleans()), max_size=10)
)
@example(segments=[("td", "", True), ("td", "0", True)])  # a row implied around cells, its first cell empty
@example(segments=[("tr", "a", False), ("td", "b", False), ("li", "c", False), ("p", "d", True)])
def test_offset_invariant_on_random_html(segments: list[tuple[str, str, bool]]) -> None:
    """Any mix of elements, each closed or left open (HTML5 lets many end tags be left out)."""
    markup = "".join(f"<{tag}>{text}" + (f"</{tag}>" if closed else "") for tag, text, closed in segments)
    try:
        doc = parse_document("random.html", markup.encode("utf-8", "surrogatepass"))
    except CorpusError:
        return  # no text, or not UTF-8 (a lone surrogate): refused, not crashed
    previous_end = 0
    for b in doc.blocks:
        assert previous_end <= b.start < b.end <= len(doc.text)
        previous_end = b.end
    assert_offsets(doc, chunk_document(doc, max_chars=120))
