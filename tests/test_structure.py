"""Tests for ``qa.structure`` (and HTML structure through ``qa.ingest.parse_document``)."""

from __future__ import annotations

import pytest

from qa.htmltext import html_document
from qa.ingest import parse_document
from qa.structure import heading_anchors, looks_like_heading, parse_blocks, section_paths, split_lines, title_block
from qa.types import Block, Document


def _outline(text: str, blocks: tuple[Block, ...]) -> list[tuple[str, int, str, tuple[str, ...]]]:
    """(kind, level, text, section path) of every block."""
    return [
        (b.kind, b.level, text[b.start : b.end], path)
        for b, path in zip(blocks, section_paths(text, blocks), strict=True)
    ]


def outline(text: str, *, markdown: bool = False) -> list[tuple[str, int, str, tuple[str, ...]]]:
    return _outline(text, parse_blocks(text, markdown=markdown))


# --- the default corpus ----------------------------------------------------------------

TITLE = "Expansion of Data Sharing and Interoperability Between Immigration and Law Enforcement Agencies"
PROGRAMS = "Notable Data Sharing Programs and Agreements"

# Every heading of the default corpus with its level: the title, six sections, five nested ones.
CORPUS_HEADINGS = [
    (1, TITLE),
    (2, "Overview"),
    (2, PROGRAMS),
    (3, "Secure Communities"),
    (3, "287(g) Agreements"),
    (3, "Fusion Centers"),
    (3, "Data from State and Local Agencies"),
    (3, "Private Sector Data Purchases"),
    (2, "Relevant Data and Metrics"),
    (2, "Potential Impact on New York City"),
    (2, "Legal and Policy Considerations"),
]


def test_corpus_headings_and_levels(corpus_document: Document) -> None:
    text = corpus_document.text
    headings = [(b.level, text[b.start : b.end]) for b in corpus_document.blocks if b.kind == "heading"]
    assert headings == CORPUS_HEADINGS


def test_corpus_block_kinds(corpus_document: Document) -> None:
    kinds = [b.kind for b in corpus_document.blocks]
    assert kinds.count("paragraph") == 8
    assert kinds.count("table_header") == 1
    assert kinds.count("table_row") == 6
    assert kinds.count("list_item") == 8
    # The "---|---|---|" separator line is not a block.
    assert all("---" not in corpus_document.text[b.start : b.end] for b in corpus_document.blocks)


def test_corpus_title(corpus_document: Document) -> None:
    first_line = corpus_document.text.split("\n", 1)[0]
    assert corpus_document.title == first_line == TITLE
    assert title_block(corpus_document.blocks) == corpus_document.blocks[0]


# --- Markdown --------------------------------------------------------------------------


def test_markdown_headings_nest_by_hash_count() -> None:
    text = "# Top\n\nIntro para\nwrapped line.\n\n## Sub A\n\nText A.\n\n### Deep\n\n- item one\n- item two\n\n"
    text += "## Sub B\n\nText B.\n"
    assert outline(text, markdown=True) == [
        ("heading", 1, "Top", ()),
        ("paragraph", 0, "Intro para\nwrapped line.", ()),
        ("heading", 2, "Sub A", ("Sub A",)),
        ("paragraph", 0, "Text A.", ("Sub A",)),
        ("heading", 3, "Deep", ("Sub A", "Deep")),
        ("list_item", 0, "- item one", ("Sub A", "Deep")),
        ("list_item", 0, "- item two", ("Sub A", "Deep")),
        ("heading", 2, "Sub B", ("Sub B",)),
        ("paragraph", 0, "Text B.", ("Sub B",)),
    ]


def test_markdown_heading_offsets_exclude_hashes_and_closing_hashes() -> None:
    text = "Preface.\n\n##   Methods ##  \n\nBody.\n"
    heading = next(b for b in parse_blocks(text, markdown=True) if b.kind == "heading")
    assert (heading.start, heading.end, heading.level) == (text.index("Methods"), text.index("Methods") + 7, 2)


def test_markdown_two_top_headings_are_both_in_paths() -> None:
    """With a second level-1 heading the first is a section, not a title left out of paths."""
    text = "# One\n\nA.\n\n# Two\n\nB.\n"
    assert title_block(parse_blocks(text, markdown=True)) is None
    assert [path for *_, path in outline(text, markdown=True)] == [("One",), ("One",), ("Two",), ("Two",)]


def test_markdown_heading_span_is_trimmed() -> None:
    """Pins a bug: ``_MD_HEADING`` skips only spaces and tabs after the hashes, so in "# \\u00a0Title"
    (a no-break space, common in converted documents) the heading block starts at the no-break space.
    Section paths are unaffected (heading_text collapses whitespace), but block spans are not trimmed
    like every other block's. Found by the Hypothesis test in test_chunk.py ("# \\u2028- ")."""
    text = "# \u00a0Title\n\nText.\n"
    heading = parse_blocks(text, markdown=True)[0]
    assert text[heading.start : heading.end] == "Title"


def test_markdown_hash_without_space_is_not_a_heading() -> None:
    assert [kind for kind, *_ in outline("#hashtag text\n", markdown=True)] == ["paragraph"]


def test_markdown_table_with_header_separator() -> None:
    text = "# Doc\n\n## Data\n\n| Name | Count |\n| :--- | ---: |\n| Alpha | 3 |\n| Beta | 4 |\n"
    assert outline(text, markdown=True)[2:] == [
        ("table_header", 0, "| Name | Count |", ("Data",)),
        ("table_row", 0, "| Alpha | 3 |", ("Data",)),
        ("table_row", 0, "| Beta | 4 |", ("Data",)),
    ]


def test_markdown_comment_in_code_fence_is_not_a_heading() -> None:
    """Pins a bug: a shell comment inside a fenced code block becomes a heading, and the text after
    the fence is filed under it (section ("install deps",) instead of the section of "Run this:")."""
    text = "# Setup\n\nRun this:\n\n```bash\n# install deps\npip install x\n```\n\nThen done.\n"
    rows = outline(text, markdown=True)
    assert all(block_text != "install deps" for kind, _, block_text, _ in rows if kind == "heading")
    paths = {block_text: path for _, _, block_text, path in rows}
    assert paths["Then done."] == paths["Run this:"]


# --- plain text --------------------------------------------------------------------------


def test_numbered_plain_text_headings_nest_by_number() -> None:
    text = "Report\n1 Intro\nThis is intro text.\n1.1 Scope\nScope text here.\n1.2 Limits\nLimits text.\n"
    text += "2 Methods\nMethods text.\n"
    assert outline(text) == [
        ("heading", 1, "Report", ()),
        ("heading", 2, "1 Intro", ("1 Intro",)),
        ("paragraph", 0, "This is intro text.", ("1 Intro",)),
        ("heading", 3, "1.1 Scope", ("1 Intro", "1.1 Scope")),
        ("paragraph", 0, "Scope text here.", ("1 Intro", "1.1 Scope")),
        ("heading", 3, "1.2 Limits", ("1 Intro", "1.2 Limits")),
        ("paragraph", 0, "Limits text.", ("1 Intro", "1.2 Limits")),
        ("heading", 2, "2 Methods", ("2 Methods",)),
        ("paragraph", 0, "Methods text.", ("2 Methods",)),
    ]


def test_parent_heading_followed_by_heading_takes_children() -> None:
    text = "Title\nPrograms\nAlpha\nAlpha text.\nBeta\nBeta text.\nMetrics\nName | Value |\n"
    assert outline(text) == [
        ("heading", 1, "Title", ()),
        ("heading", 2, "Programs", ("Programs",)),
        ("heading", 3, "Alpha", ("Programs", "Alpha")),
        ("paragraph", 0, "Alpha text.", ("Programs", "Alpha")),
        ("heading", 3, "Beta", ("Programs", "Beta")),
        ("paragraph", 0, "Beta text.", ("Programs", "Beta")),
        # A table after prose children ends the child run: back to the top level.
        ("heading", 2, "Metrics", ("Metrics",)),
        ("table_row", 0, "Name | Value |", ("Metrics",)),
    ]


def test_a_long_run_of_short_lines_is_prose_not_nested_headings() -> None:
    names = "Ada Lovelace\nAlan Turing\nGrace Hopper\nEdsger Dijkstra\nBarbara Liskov\nDonald Knuth\nJohn Backus\n"
    text = "Title\nPeople\n" + names + "They wrote programs.\n"
    # Nine short lines in a row: prose, soft-wrapped into one paragraph with the sentence after them.
    assert outline(text) == [("paragraph", 0, text.rstrip("\n"), ())]
    chain = "Part One\nChapter 1\nSection A\nIt begins.\n"  # three in a row still nest
    assert [level for _, level, _, _ in outline(chain)][:3] == [1, 2, 3]


def test_thousands_of_short_lines_parse_flat_and_fast() -> None:
    text = "".join(f"Line number {i} of a list\n" for i in range(20_000)) + "The end.\n"
    doc = parse_document("list.txt", text.encode())
    paths = section_paths(doc.text, doc.blocks)
    assert max(len(path) for path in paths) == 0
    assert {block.kind for block in doc.blocks} == {"paragraph"}


def test_wrapped_line_after_unfinished_sentence_is_not_a_heading() -> None:
    """A short capitalised line continuing an unfinished sentence stays prose, in one paragraph."""
    first = "Programs like these enable local law enforcement agencies in many places and states, like"
    text = f"Title\nOverview\n{first}\nSecure Communities\nto share data.\nA new sentence.\n"
    assert outline(text) == [
        ("heading", 1, "Title", ()),
        ("heading", 2, "Overview", ("Overview",)),
        ("paragraph", 0, f"{first}\nSecure Communities\nto share data.", ("Overview",)),
        # A line after a finished sentence starts a new paragraph.
        ("paragraph", 0, "A new sentence.", ("Overview",)),
    ]


def test_hard_wrapped_paragraph_lines_are_not_headings() -> None:
    """Pins a bug: in plain text hard-wrapped at 60 columns, the first line of each paragraph
    ("Since 9/11, reforms have increased data sharing among") reads as a heading, so the
    paragraph is filed under a fake section and its first line is in no passage."""
    text = (
        "Overview\n"
        "Since 9/11, reforms have increased data sharing among\n"
        "federal, state, and local agencies, integrating immigration\n"
        "enforcement with counterterrorism efforts.\n"
        "\n"
        "The expansion of these initiatives in 2025 includes rapid\n"
        "growth in 287(g) agreements with over 800 Memorandums of\n"
        "Agreement signed nationwide.\n"
    )
    rows = outline(text)
    assert [block_text for kind, _, block_text, _ in rows if kind == "heading"] == ["Overview"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Overview", True),
        ("287(g) Agreements", True),
        ("Secure Communities", True),
        ("This ends with a period.", False),
        ("Ends with a colon:", False),
        ("lower case start", False),
        ("Metric | Value | Notes |", False),
        ("- A bullet", False),
        ("2024", False),  # no letter
        ("One two three four five six seven eight nine ten eleven twelve", True),
        ("One two three four five six seven eight nine ten eleven twelve thirteen", False),
        ("A" * 101, False),
        ("", False),
    ],
)
def test_looks_like_heading(line: str, expected: bool) -> None:
    assert looks_like_heading(line) is expected


def test_first_line_title_may_be_longer() -> None:
    long_title = " ".join(["Word"] * 20)
    assert not looks_like_heading(long_title)
    assert looks_like_heading(long_title, first=True)


def test_last_line_is_not_a_heading() -> None:
    """A heading introduces something: a capitalised last line without a stop is prose."""
    assert [kind for kind, *_ in outline("Intro text.\nThe End")] == ["paragraph", "paragraph"]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_breaks_are_kept_out_of_blocks(newline: str) -> None:
    text = newline.join(["Title", "Overview", "Some text here.", "- item", ""])
    rows = outline(text)
    assert [(kind, block_text) for kind, _, block_text, _ in rows] == [
        ("heading", "Title"),
        ("heading", "Overview"),
        ("paragraph", "Some text here."),
        ("list_item", "- item"),
    ]


def test_split_lines_offsets() -> None:
    text = "a\r\nbb\rccc\n\nd"
    assert [(line.start, line.end, line.text) for line in split_lines(text)] == [
        (0, 1, "a"),
        (3, 5, "bb"),
        (6, 9, "ccc"),
        (10, 10, ""),
        (11, 12, "d"),
    ]


def test_blocks_are_trimmed() -> None:
    text = "Title\n\n   Indented text.\t \n"
    paragraph = parse_blocks(text)[-1]
    assert text[paragraph.start : paragraph.end] == "Indented text."


# --- HTML ----------------------------------------------------------------------------------

HTML = (
    "<!doctype html><html><head><title>Ignored</title><style>p{}</style></head><body>"
    "<h1>Main</h1><p>Intro.</p><h2>Part</h2><p>Body <b>bold</b>.</p><script>alert(1)</script>"
    "<h3>Deeper</h3><ul><li>One</li><li>Two</li></ul>"
    "<h2>Numbers</h2><table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>"
    "<h6>Six</h6><p>Tail &amp; end.</p></body></html>"
)


def test_html_headings_h1_to_h6() -> None:
    doc = parse_document("site/page.html", HTML.encode())
    assert doc.format == "html"
    assert doc.title == "Main"
    blocks = ["Main", "Intro.", "Part", "Body bold.", "Deeper", "One", "Two", "Numbers", "A | B |", "1 | 2 |", "Six"]
    assert doc.text == "\n\n".join([*blocks, "Tail & end."])
    assert _outline(doc.text, doc.blocks) == [
        ("heading", 1, "Main", ()),
        ("paragraph", 0, "Intro.", ()),
        ("heading", 2, "Part", ("Part",)),
        ("paragraph", 0, "Body bold.", ("Part",)),
        ("heading", 3, "Deeper", ("Part", "Deeper")),
        ("list_item", 0, "One", ("Part", "Deeper")),
        ("list_item", 0, "Two", ("Part", "Deeper")),
        ("heading", 2, "Numbers", ("Numbers",)),
        ("table_header", 0, "A | B |", ("Numbers",)),
        ("table_row", 0, "1 | 2 |", ("Numbers",)),
        ("heading", 6, "Six", ("Numbers", "Six")),
        ("paragraph", 0, "Tail & end.", ("Numbers", "Six")),
    ]


def test_html_without_closing_head_tag_keeps_body() -> None:
    """Pins a bug: ``head`` is a skipped element, and the skip only ends at ``</head>``; HTML5 lets
    authors omit that end tag, so parse_document raises CorpusError("no text found")."""
    doc = parse_document("page.html", b"<html><head><meta charset=utf-8><title>T</title><body><h1>Hi</h1><p>Body.</p>")
    assert doc.text == "Hi\n\nBody."


def test_html_list_item_wrapping_a_paragraph_is_a_list_item() -> None:
    """Pins a bug: ``<p>`` inside ``<li>`` flushes the empty buffer, which resets the pending kind
    to "paragraph" before the item's text arrives (htmltext._Collector._flush)."""
    doc = parse_document("list.html", b"<h1>T</h1><ul><li><p>One item.</p></li><li>Two</li></ul>")
    assert [(b.kind, doc.text[b.start : b.end]) for b in doc.blocks] == [
        ("heading", "T"),
        ("list_item", "One item."),
        ("list_item", "Two"),
    ]


@pytest.mark.parametrize(
    ("markup", "blocks"),
    [
        # HTML5 lets a cell end at the next cell and a row at the next row: every cell is kept.
        (
            "<h1>Rates</h1><table><tr><th>Region<th>Fee\n<tr><td>Scotland<td>14 pounds\n<tr><td>Wales<td>9\n</table>"
            "<p>After.</p>",
            [
                ("heading", "Rates"),
                ("table_header", "Region | Fee |"),
                ("table_row", "Scotland | 14 pounds |"),
                ("table_row", "Wales | 9 |"),
                ("paragraph", "After."),
            ],
        ),
        # Paragraphs and line breaks inside a cell are the cell's text; the row stays one row.
        (
            "<table><tr><th>Office</th><th>Manager</th></tr><tr><td><p>Glasgow depot</p></td><td><p>Fiona Reid</p>"
            "</td></tr><tr><td>Cardiff<br>(temporary)</td><td><ul><li>Owen<li>Price</ul></td></tr></table>",
            [
                ("table_header", "Office | Manager |"),
                ("table_row", "Glasgow depot | Fiona Reid |"),
                ("table_row", "Cardiff (temporary) | Owen Price |"),
            ],
        ),
        # A table inside a cell is that cell's text; a cell outside any row implies its row.
        (
            "<table><tr><td>outer <table><tr><td>in1<td>in2</table> tail<td>second</table><td>lone<td>cells",
            [("table_row", "outer in1 in2 tail | second |"), ("table_row", "lone | cells |")],
        ),
        # An item ends at the next item of its list, and the list's end ends the last: what follows is prose.
        (
            "<ul><li>a<li>b</ul><p>1. Not an item.</p><ol><li>x<ul><li>y</li></ul><li>z</ol>",
            [
                ("list_item", "a"),
                ("list_item", "b"),
                ("paragraph", "1. Not an item."),
                ("list_item", "x"),
                ("list_item", "y"),
                ("list_item", "z"),
            ],
        ),
    ],
)
def test_html_end_tags_that_html5_leaves_out_end_where_a_browser_ends_them(
    markup: str, blocks: list[tuple[str, str]]
) -> None:
    """Pins content loss: an unclosed ``td`` was dropped at the next cell and an unclosed row at the next
    row, a ``<p>`` in a cell split its row into paragraphs, and an unclosed ``li`` made the rest of the page
    list items (``qa.htmltext._Collector``)."""
    doc = parse_document("page.html", markup.encode())
    assert [(b.kind, doc.text[b.start : b.end]) for b in doc.blocks] == blocks


@pytest.mark.parametrize(
    ("markup", "anchored"),
    [
        ("<p>Before.</p><table><tr><td>a<td id=fee>b</table>", "a | b |"),
        # The id of a row that ends an unclosed one points at its own row, not at the one it ends.
        ("<table><tr><td>1<tr id=fee><td>2</table>", "2 |"),
        ("<table><tr><td>1<tbody id=fee><tr><td>2</table>", "2 |"),
        ("<p>Text<td id=fee>cell</td>", "cell |"),  # a cell that implies its row, after open paragraph text
    ],
)
def test_an_id_inside_a_table_points_at_its_row(markup: str, anchored: str) -> None:
    text, blocks, anchors = html_document(markup)
    ((start, name),) = anchors
    block = next(b for b in blocks if b.start == start)
    assert (name, text[block.start : block.end]) == ("fee", anchored)


def test_a_stray_cell_end_tag_keeps_the_paragraph_before_it() -> None:
    """Browsers ignore a ``</td>`` outside a cell; the text before it stays, as a paragraph."""
    text, blocks, _ = html_document("<p>Fee: 10</td> pounds</p><table><tr><td>a</td> stray <td>b</td></table>")
    assert text == "Fee: 10 pounds\n\na | b |"


@pytest.mark.parametrize(
    ("name", "source", "blocks"),
    [
        # GitHub's two-column table without outer pipes: one pipe per row, under a rule that has one too.
        (
            "prices.md",
            b"# Prices\n\nProduct | Price\n--- | ---\nGadget | 7 dollars\nWidget | 9 dollars\n\nAfter the table.\n",
            [
                ("heading", "Prices"),
                ("table_header", "Product | Price"),
                ("table_row", "Gadget | 7 dollars"),
                ("table_row", "Widget | 9 dollars"),
                ("paragraph", "After the table."),
            ],
        ),
        (
            "ages.txt",
            b"Ages\n\nName | Age\n---|---\nAnn | 3\n",
            [("heading", "Ages"), ("table_header", "Name | Age"), ("table_row", "Ann | 3")],
        ),
        # One pipe in prose, or over a horizontal rule without one, is not a table.
        (
            "prose.md",
            b"# Doc\n\nEither this | or that.\n\n---\n\nOne | more.\nLast | line.\n",
            [("heading", "Doc"), ("paragraph", "Either this | or that."), ("paragraph", "One | more.\nLast | line.")],
        ),
    ],
)
def test_a_table_whose_rows_have_one_pipe_is_a_table_under_its_rule(
    name: str, source: bytes, blocks: list[tuple[str, str]]
) -> None:
    """Pins a gap: rows needed two pipes, so "Gadget | 7 dollars" ran into one paragraph with the other rows
    and "the price of a Gadget" quoted both rows at confidence 0.27."""
    doc = parse_document(name, source)
    assert [(b.kind, doc.text[b.start : b.end]) for b in doc.blocks] == blocks


def test_a_hash_line_indented_four_spaces_is_code_not_a_heading() -> None:
    """CommonMark: up to three spaces may indent a heading; four (or a tab) make an indented code block, whose
    "# comment" became a level-1 heading and left the section path of everything after it."""
    doc = parse_document(
        "c.md", b"# Title\n\nCode:\n\n    # not a heading\n    x = 1\n\n\t# nor this\n\n   ## Three\n\nT.\n"
    )
    assert [(b.kind, doc.text[b.start : b.end]) for b in doc.blocks] == [
        ("heading", "Title"),
        ("paragraph", "Code:"),
        ("paragraph", "# not a heading\n    x = 1"),
        ("paragraph", "# nor this"),
        ("heading", "Three"),
        ("paragraph", "T."),
    ]


# --- documents nobody tuned for: wrapped prose, setext, Markdown's non-text lines, wrapped list items ----------


@pytest.mark.parametrize(
    "line",
    [
        "The agency was created in 2003. The",  # a sentence's end inside the line: wrapped prose
        "The report was then sent to",  # ends on a small word
        "Funds are held by the",
    ],
)
def test_a_line_of_wrapped_prose_is_no_heading(line: str) -> None:
    text = f"Department Overview\n{line}\nSecretary of Homeland Security leads it.\n"
    kinds = [(kind, body) for kind, _, body, _ in outline(text)]
    assert kinds == [
        ("heading", "Department Overview"),
        ("paragraph", f"{line}\nSecretary of Homeland Security leads it."),
    ]


@pytest.mark.parametrize("line", ["Chapter 1. Scope", "Section A", "Plan B", "Part II. General Provisions"])
def test_headings_with_a_number_or_a_capital_at_the_end_stay_headings(line: str) -> None:
    assert looks_like_heading(line)


def test_setext_headings_take_their_level_and_the_underline_is_no_block() -> None:
    text = "User Guide\n==========\n\nInstallation\n------------\nRun the installer.\n\nUsage\n---\nRun it.\n"
    assert outline(text, markdown=True) == [
        ("heading", 1, "User Guide", ()),
        ("heading", 2, "Installation", ("Installation",)),
        ("paragraph", 0, "Run the installer.", ("Installation",)),
        ("heading", 2, "Usage", ("Usage",)),
        ("paragraph", 0, "Run it.", ("Usage",)),
    ]


def test_an_underlined_plain_text_heading_keeps_its_underline_out_of_the_text() -> None:
    text = (
        "Project Notes\n=============\n\nOverview\n--------\nThe tool parses logs.\n\n"
        "Limits\n------\nFiles over 2 GB are skipped.\n"
    )
    assert [(kind, body) for kind, _, body, _ in outline(text)] == [
        ("heading", "Project Notes"),
        ("heading", "Overview"),
        ("paragraph", "The tool parses logs."),
        ("heading", "Limits"),
        ("paragraph", "Files over 2 GB are skipped."),
    ]


def test_markdown_lines_that_are_no_text_make_no_block() -> None:
    """Thematic breaks, comments (one line or several) and link reference definitions are left out."""
    text = (
        "# Notes\n\nThe server runs on port 8080.\n\n***\n\n* * *\n\n<!-- TODO: remove this note -->\n\n"
        '<!--\nan internal\nnote\n-->\n\n[guide]: https://example.com/guide "The guide"\n\nIt restarts nightly.\n'
    )
    assert [(kind, body) for kind, _, body, _ in outline(text, markdown=True)] == [
        ("heading", "Notes"),
        ("paragraph", "The server runs on port 8080."),
        ("paragraph", "It restarts nightly."),
    ]


@pytest.mark.parametrize("rule", ["|--|--|", "| :-: | :-: |", "--|--", "-- | --"])
def test_a_table_rule_may_have_one_dash_a_column(rule: str) -> None:
    text = f"Plan | Seats\n{rule}\nTeam | 10\n"
    assert [(kind, body) for kind, _, body, _ in outline(text, markdown=True)] == [
        ("table_header", "Plan | Seats"),
        ("table_row", "Team | 10"),
    ]


def test_a_heading_reads_as_its_shown_text_and_its_anchor_is_githubs() -> None:
    text = "# Guide\n\n## [Install](#install)\n\nInstall it.\n\n## **Bold** heading `code`\n\nText.\n"
    blocks = parse_blocks(text, markdown=True)
    assert [path for _, _, _, path in _outline(text, blocks)][-1] == ("Bold heading code",)
    assert [name for _, name in heading_anchors(text, blocks)] == ["guide", "install", "bold-heading-code"]


def test_a_list_item_wrapped_over_lines_is_one_item() -> None:
    markdown = (
        "1. Download the package, which\n   takes five minutes.\n"
        "- The first bullet wraps\nonto a lazy continuation line.\n"
    )
    assert [(kind, body) for kind, _, body, _ in outline(markdown, markdown=True)] == [
        ("list_item", "1. Download the package, which\n   takes five minutes."),
        ("list_item", "- The first bullet wraps\nonto a lazy continuation line."),
    ]
    plain = (
        "Rules\n- Book flights at least\n    fourteen days ahead.\n- Hotels need approval\nby a manager.\n"
        "- Taxis are allowed\nMeals are paid up to 50 USD.\n"
    )
    assert [(kind, body) for kind, _, body, _ in outline(plain)][1:] == [
        ("list_item", "- Book flights at least\n    fourteen days ahead."),
        ("list_item", "- Hotels need approval\nby a manager."),
        ("list_item", "- Taxis are allowed"),  # a capital after an unindented break starts a paragraph
        ("paragraph", "Meals are paid up to 50 USD."),
    ]


def test_a_plain_text_line_ending_in_an_abbreviation_goes_on() -> None:
    text = "Minutes\nThe meeting was chaired by Dr.\nSmith, who presented the findings.\nIt ended at noon.\n"
    assert [(kind, body) for kind, _, body, _ in outline(text)][1:] == [
        ("paragraph", "The meeting was chaired by Dr.\nSmith, who presented the findings."),
        ("paragraph", "It ended at noon."),
    ]


def test_plain_text_numbered_as_an_outline_nests_its_top_sections_too() -> None:
    """ "1. Introduction" reads as a list item, unless the text is numbered as an outline ("1.1 Purpose")."""
    text = (
        "Employee Handbook\n\n1. Introduction\n\nThis handbook describes company policy.\n\n1.1 Purpose\n\n"
        "The purpose is to inform staff.\n\n2. Leave Policy\n\nStaff receive twenty days of leave.\n\n"
        "2.1 Sick Leave\n\nSick leave requires a note after three days.\n"
    )
    assert [(kind, level, body) for kind, level, body, _ in outline(text) if kind == "heading"] == [
        ("heading", 1, "Employee Handbook"),
        ("heading", 2, "1. Introduction"),
        ("heading", 3, "1.1 Purpose"),
        ("heading", 2, "2. Leave Policy"),
        ("heading", 3, "2.1 Sick Leave"),
    ]
    assert outline(text)[-1][3] == ("2. Leave Policy", "2.1 Sick Leave")
    plain_list = "Shopping\n\n1. Buy milk\n2. Buy eggs\n"  # no outline: a list
    assert [kind for kind, _, _, _ in outline(plain_list)] == ["heading", "list_item", "list_item"]
